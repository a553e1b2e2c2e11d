"""Running a model over a frame sequence: in windows for models that look both ways, step by step for streams.

Windows are sized in vsr/pipeline/window_size.py. A model that offers `forward_window` (BasicVSR++) gets
windows with look-ahead only and carries its forward state from one to the next, one state per tile position;
any other windowed model gets its context frames on both sides.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from functools import partial

import numpy as np
import torch
from torch import nn

from vsr.errors import VsrError
from vsr.io.frames import Frame
from vsr.pipeline.greyscale import keep_greyscale
from vsr.pipeline.scenes import split_at_cuts
from vsr.pipeline.tensors import images_to_tensor, tensor_to_images
from vsr.pipeline.tiles import run_tiled, upscale_tiled
from vsr.pipeline.window_size import AUTO, Chunk, WindowPlan, WindowStats, canvas_dtype, plan_windows
from vsr.pipeline.windows import Window, chunk_windows

PRECISIONS = {"fp16": torch.float16, "bf16": torch.bfloat16}


# A working model's pixels stay near [0, 1]; a thousand times full scale can only come from broken weights.
ABSURD_OUTPUT = 1000.0


class NonFiniteOutput(VsrError):
    """The model gave NaN, infinite or absurd pixels: damaged weights, or an overflow in half precision."""

    def __init__(self) -> None:
        super().__init__(None, "the model's output holds NaN, infinite or absurdly large values (damaged weights, "
                               "or an overflow: try --precision fp32); nothing was written")


def finite(sr: torch.Tensor) -> torch.Tensor:
    """`sr`, once it is known to hold only sane values; a black or garbage video must not exit 0.

    Where torch overflows to infinity, OpenVINO on some CPUs stays finite with values near 1e28: both are caught.
    """
    if not torch.isfinite(sr).all() or sr.abs().max() > ABSURD_OUTPUT:
        raise NonFiniteOutput
    return sr


def uses_streaming(model: nn.Module) -> bool:
    """Recurrent models that stream go frame by frame; per-frame and bidirectional models go by windows."""
    return bool(getattr(model, "streams", False)) and model.context_frames != 0


def resolve_precision(precision: str, model: nn.Module, device: torch.device) -> str:
    """'auto' is fp16 on a GPU for models that declare themselves half_safe, fp32 otherwise; models that choose
    their own precision (OpenVINO's) get no autocast at all."""
    if getattr(model, "own_precision", False):
        return "fp32"
    if precision != "auto":
        return precision
    return "fp16" if device.type == "cuda" and getattr(model, "half_safe", False) else "fp32"


def autocast(device: torch.device, precision: str):
    """Mixed precision for fp16/bf16; the models keep their precision-critical parts (flow, sampling) in fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=PRECISIONS[precision])


def upscale_frames(frames: Iterable[Frame], model: nn.Module, device: torch.device, chunk: Chunk = AUTO,
                   streaming: bool | None = None, tile: int = 0, tile_overlap: int = 16,
                   scene_cuts: bool = True, precision: str = "auto",
                   on_window: Callable[[list[Frame]], None] | None = None,
                   stats: WindowStats | None = None) -> Iterator[Frame]:
    """Output frame i carries input frame i's pts; memory holds one window, whatever the length.

    `chunk` is the core frames of a window, or "auto": as many as fit half the free memory, measured for the
    first frame's size. `tile` > 0 runs the model on overlapping tiles of that many input pixels; `scene_cuts`
    runs each shot as an independent sequence, so that no frame of one shot influences another's; `precision`
    is auto, fp32, fp16 or bf16. `on_window`, if given, sees the core frames of each window before they are
    upscaled: where the windows meet is where a chunked model could show seams. `stats`, if given, gets the
    window plan and counts the frames computed and output.
    """
    streaming = uses_streaming(model) if streaming is None else streaming
    precision = resolve_precision(precision, model, device)
    modes = partial(_inference_modes, device, precision)
    stats = WindowStats() if stats is None else stats
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        return
    height, width = first.image.shape[:2]
    stats.plan = plan = plan_windows(model, chunk, height, width, device, precision, tile, streaming,
                                     tile_overlap=tile_overlap, pixel_dtype=first.image.dtype)
    for scene in _scenes(itertools.chain([first], frames), model, scene_cuts):
        if streaming:
            yield from _upscale_stepwise(scene, model, device, tile, tile_overlap, modes, stats)
        else:
            yield from _upscale_windows(scene, model, device, plan, plan.tile or tile, tile_overlap, on_window,
                                        modes, stats)


@contextlib.contextmanager
def _inference_modes(device: torch.device, precision: str):
    """Inference mode and autocast, entered around each model call and never held across a yield.

    Both are thread state: a generator suspended inside them would leave them on for whoever runs meanwhile
    (the caller, or a stage chained after this one), and a generator closed out of order would restore them
    wrongly.
    """
    with torch.inference_mode(), autocast(device, precision):
        yield


def _scenes(frames: Iterable[Frame], model: nn.Module, scene_cuts: bool) -> Iterable[Iterable[Frame]]:
    """A model without temporal context cannot mix shots, so it is spared the detection."""
    if scene_cuts and model.context_frames != 0:
        return split_at_cuts(frames)
    return [frames]


def _model_input(model: nn.Module, images: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """The clip as the model takes it: float, or uint8 for models that declare integer_pixels."""
    as_float = not (getattr(model, "integer_pixels", False) and images[0].dtype == np.uint8)
    return images_to_tensor(images, device, as_float)


def _upscale_windows(frames: Iterable[Frame], model: nn.Module, device: torch.device, plan: WindowPlan, tile: int,
                     overlap: int, on_window: Callable[[list[Frame]], None] | None, modes,
                     stats: WindowStats) -> Iterator[Frame]:
    """Called once per shot, so that each shot starts with nothing carried."""
    carries: dict[int, object] = {}  # what each tile position's window hands the next
    for window in chunk_windows(frames, plan.size, plan.look_ahead, plan.look_back):
        if on_window is not None:
            on_window(window.core)
        stats.computed += len(window.items)
        stats.output += len(window.core)
        with modes():
            outputs = _window_images(window, model, device, carries if plan.carries else None, tile,
                                     overlap)
        for frame, image in zip(window.core, outputs):
            yield replace(frame, image=keep_greyscale(frame.image, image))
        del outputs  # the next window must not run while this one's images are held here as well


def _window_images(window: Window[Frame], model: nn.Module, device: torch.device, carries: dict[int, object] | None,
                   tile: int, overlap: int) -> list[np.ndarray]:
    """The core frames' upscaled images; the window's float input and output die on return, so that they are
    never alive beside the next window's (the window size counts them once)."""
    images = [frame.image for frame in window.items]
    clip = _model_input(model, images, device)
    canvas = canvas_dtype(images[0].dtype)
    if carries is not None:
        run = partial(_window_tile, model, carries, len(window.core))
        sr = run_tiled(run, clip, model.scale, model.size_multiple, tile, overlap, canvas)
    else:
        sr = upscale_tiled(model, clip, tile, overlap, canvas)[:, window.core_start:window.core_stop]
    return tensor_to_images(finite(sr), images[0].dtype)


def _window_tile(model: nn.Module, carries: dict[int, object], core: int, tile: torch.Tensor,
                 index: int) -> torch.Tensor:
    """One window on one tile, going on from that tile position's carry: tiles sit at the same place in every
    frame, so each position's forward propagation continues as it would on a clip of that tile alone."""
    sr, carries[index] = model.forward_window(tile, core, carries.get(index))
    return sr


def _upscale_stepwise(frames: Iterable[Frame], model: nn.Module, device: torch.device, tile: int,
                      overlap: int, modes, stats: WindowStats) -> Iterator[Frame]:
    """Called once per shot, so that each shot starts from no state."""
    states: dict[int, object] = {}  # one recurrent state per tile
    for frame in frames:
        stats.computed += 1
        stats.output += 1
        with modes():
            lr = _model_input(model, [frame.image], device)
            sr = run_tiled(partial(_step_tile, model, states), lr, model.scale, model.size_multiple, tile, overlap)
            image = tensor_to_images(finite(sr), frame.image.dtype)[0]
        yield replace(frame, image=keep_greyscale(frame.image, image))


def _step_tile(model: nn.Module, states: dict[int, object], tile: torch.Tensor, index: int) -> torch.Tensor:
    """One step on one tile, with that tile's own state: tiles sit at the same place in every frame."""
    sr, states[index] = model.step(tile[:, 0], states.get(index))
    return sr[:, None]
