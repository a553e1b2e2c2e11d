"""`vsr export`: our models as ONNX files, for the rest of the ecosystem (ONNX Runtime, TensorRT, OpenVINO).

A streaming FRVSR is exported as one step, (frame, previous_lr, previous_sr) -> sr, with the recurrent state
as plain inputs: the caller feeds each output back. The first frame of a stream passes itself as
previous_lr and zeros as previous_sr, which gives exactly the no-history step. An FRVSR whose motion is
OpenCV's DIS (`frvsr`) has no flow network to export: its step is (frame, previous_sr, flow) -> sr, where flow
(1, 2, H, W) is DIS (medium preset) from the grey 8-bit frame to the previous one, as vsr/ops/dis_flow.py
computes it, and zeros with zero previous_sr on a stream's first frame. A per-frame network is
(frame) -> sr. Height and width are dynamic; frames are (1, 3, H, W) float RGB in [0, 1], H and W
multiples of the model's size_multiple.

A windowed model (BasicVSR++) is exported whole over a fixed window of frames at a fixed frame size,
(1, T, 3, H, W) -> (1, T, 3, 4H, 4W): its traced graph keeps Python decisions on sizes (padding to SPyNet's
minimum, resizing to multiples of 32) as they were for the size traced. Run it on overlapping windows and
keep each window's middle frames, as `vsr run` does: a frame needs a few neighbours on each side for its
full quality.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vsr.backends.frame_graphs import SingleFrame
from vsr.errors import VsrError
from vsr.io.destination import check_destination, commit, discard, start_partial
from vsr.models.basicvsrpp import BasicVSRPlusPlus
from vsr.models.frvsr import FRVSR, FRVSRState
from vsr.models.srvgg import SRVGGNetCompact

OPSET = 17


class FRVSRStep(nn.Module):
    """One FRVSR step with its state as inputs, for export."""

    def __init__(self, model: FRVSR) -> None:
        super().__init__()
        self.model = model

    def forward(self, frame: torch.Tensor, previous_lr: torch.Tensor, previous_sr: torch.Tensor) -> torch.Tensor:
        return self.model.step(frame, FRVSRState(previous_lr, previous_sr))[0]


class FlowGivenStep(nn.Module):
    """One step of an FRVSR with DIS motion, the flow an input (computed outside the graph), for export."""

    def __init__(self, model: FRVSR) -> None:
        super().__init__()
        self.model = model

    def forward(self, frame: torch.Tensor, previous_sr: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        return self.model.step_along(frame, previous_sr, flow)


@dataclass(frozen=True)
class FixedShape:
    """The window (frames) and low-res frame size a windowed model is exported for."""

    frames: int = 7
    width: int = 0
    height: int = 0


def export_onnx(model: nn.Module, name: str, target: Path, overwrite: bool,
                fixed: FixedShape = FixedShape()) -> list[str]:
    """Write `model` to `target` as ONNX; returns the graph's input names. `fixed` is for windowed models."""
    if importlib.util.find_spec("onnx") is None:
        raise VsrError(None, "vsr export needs the onnx package: pip install 'vsr[onnx]'")
    if target.suffix != ".onnx":
        raise VsrError(target, "the output must end in .onnx")
    check_destination(target, overwrite, reads=(getattr(model, "weights_file", None),))
    module, examples, names, dynamic = _graph(model.eval(), name, fixed)
    temporary = start_partial(target)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notes on Python shape arithmetic
            torch.onnx.export(module, examples, str(temporary), input_names=names, output_names=["sr"],
                              dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
        commit(temporary, target)
    finally:
        discard(temporary)
    return names


def _graph(model: nn.Module, name: str, fixed: FixedShape):
    """(module, example inputs, input names, dynamic axes) of the model's exportable form."""
    multiple = getattr(model, "size_multiple", 1)
    h, w = 2 * max(multiple, 8), 3 * max(multiple, 8)
    frame = torch.rand(1, 3, h, w)
    space, upscaled = {2: "height", 3: "width"}, {2: "out_height", 3: "out_width"}
    if isinstance(model, FRVSR) and model.fnet is None:
        previous_sr, flow = torch.rand(1, 3, model.scale * h, model.scale * w), torch.randn(1, 2, h, w)
        names = ["frame", "previous_sr", "flow"]
        dynamic = {"frame": space, "previous_sr": upscaled, "flow": space, "sr": upscaled}
        return FlowGivenStep(model), (frame, previous_sr, flow), names, dynamic
    if isinstance(model, FRVSR):
        previous_sr = torch.rand(1, 3, model.scale * h, model.scale * w)
        names = ["frame", "previous_lr", "previous_sr"]
        dynamic = {"frame": space, "previous_lr": space, "previous_sr": upscaled, "sr": upscaled}
        return FRVSRStep(model), (frame, frame, previous_sr), names, dynamic
    if isinstance(model, SRVGGNetCompact):
        return SingleFrame(model), (frame,), ["frame"], {"frame": space, "sr": upscaled}
    if isinstance(model, BasicVSRPlusPlus):
        if fixed.width <= 0 or fixed.height <= 0 or fixed.frames <= 0:
            raise VsrError(None, f"{name} exports for one window and frame size: give --size WxH (the low-res "
                                 "input) and --window N")
        return model, (torch.rand(1, fixed.frames, 3, fixed.height, fixed.width),), ["frames"], None
    raise VsrError(None, f"model {name} has no ONNX export yet: only the FRVSR family (frvsr, frvsr-real, "
                         "tecogan), BasicVSR++ and per-frame networks (realesr-animevideov3) export")
