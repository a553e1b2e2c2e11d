"""`vsr export`: our models as ONNX files, for the rest of the ecosystem (ONNX Runtime, TensorRT, OpenVINO).

A streaming FRVSR is exported as one step, (frame, previous_lr, previous_sr) -> sr, with the recurrent state
as plain inputs: the caller feeds each output back. The first frame of a stream passes itself as
previous_lr and zeros as previous_sr, which gives exactly the no-history step. A per-frame network is
(frame) -> sr. Height and width are dynamic; frames are (1, 3, H, W) float RGB in [0, 1], H and W
multiples of the model's size_multiple.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import torch
from torch import nn

from vsr.backends.frame_graphs import SingleFrame
from vsr.errors import VsrError
from vsr.io.destination import check_destination, commit, discard, temporary_sibling
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


def export_onnx(model: nn.Module, name: str, target: Path, overwrite: bool) -> list[str]:
    """Write `model` to `target` as ONNX; returns the graph's input names."""
    if importlib.util.find_spec("onnx") is None:
        raise VsrError(None, "vsr export needs the onnx package: pip install 'vsr[onnx]'")
    if target.suffix != ".onnx":
        raise VsrError(target, "the output must end in .onnx")
    check_destination(target, overwrite, reads=(getattr(model, "weights_file", None),))
    module, examples, names, dynamic = _graph(model.eval(), name)
    temporary = temporary_sibling(target)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notes on Python shape arithmetic
            torch.onnx.export(module, examples, str(temporary), input_names=names, output_names=["sr"],
                              dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
        commit(temporary, target)
    finally:
        discard(temporary)
    return names


def _graph(model: nn.Module, name: str):
    """(module, example inputs, input names, dynamic axes) of the model's exportable form."""
    multiple = getattr(model, "size_multiple", 1)
    h, w = 2 * max(multiple, 8), 3 * max(multiple, 8)
    frame = torch.rand(1, 3, h, w)
    space, upscaled = {2: "height", 3: "width"}, {2: "out_height", 3: "out_width"}
    if isinstance(model, FRVSR):
        previous_sr = torch.rand(1, 3, model.scale * h, model.scale * w)
        names = ["frame", "previous_lr", "previous_sr"]
        dynamic = {"frame": space, "previous_lr": space, "previous_sr": upscaled, "sr": upscaled}
        return FRVSRStep(model), (frame, frame, previous_sr), names, dynamic
    if isinstance(model, SRVGGNetCompact):
        return SingleFrame(model), (frame,), ["frame"], {"frame": space, "sr": upscaled}
    raise VsrError(None, f"model {name} has no ONNX export yet: only the FRVSR family (frvsr, frvsr-real, "
                         "tecogan) and per-frame networks (realesr-animevideov3) export")
