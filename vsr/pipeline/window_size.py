"""How many frames a window holds: as many as fit a memory budget (`--chunk auto`), or as many as asked.

A bidirectional model keeps every frame's features, for every branch, until its window is reconstructed, so
its memory grows with the window while its overhead shrinks: a window of C core frames also runs the
look-ahead frames after it (and, for models that cannot carry state from window to window, as many before
it), which are computed and thrown away. The largest window that fits wastes least; a shot shorter than it
runs as one window, with no overhead at all.

The budget is a share of what is free: RAM, or GPU memory on a GPU. The model's own need is measured once per
frame size and precision, by running it on shape-only tensors (vsr/pipeline/peak_bytes.py) for two short
window lengths. Its peak is the larger of several phases' (propagation, with large fixed scratch; then
reconstruction, holding every frame's features), and a short window peaks in a phase that grows more slowly
than the one a long window peaks in: so the bytes per frame are the larger of the growth of the peak and of
what is held for every frame at the end, which bounds the peak of any longer window from above.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from vsr.io.memory import available_memory
from vsr.pipeline.chunk_option import AUTO, Chunk, parse_chunk
from vsr.pipeline.peak_bytes import Usage, measure_bytes
from vsr.pipeline.tiles import tile_count, tiled_pixel_ratio

BUDGET_SHARE = 0.5  # of free memory: room for operator workspaces, the allocator's slack, the other stages
MAX_WINDOW = 1000  # frames: beyond it the look-ahead costs under 1% and the output would wait too long
FIXED_WINDOW = 8  # models without temporal context: any window gives the same frames, this one small batches
# Tile sizes (input pixels) `--chunk auto` may choose when whole frames leave room for only a short window, whose
# look-ahead would then cost more than tiles' overlaps do; largest first.
AUTO_TILES = (768, 512, 384, 256, 192)
PROBE_FRAMES = (2, 3)  # window lengths measured: two, since one frame runs no optical flow
# Per frame, outside the model: the decoded low-res image and its stacked copy (per input pixel); the 8-bit
# result (per output pixel); on tiles, the canvas the tiles are blended into (per output pixel: float16 for 8-bit
# video, float32 for more bits). Once per window, not per frame: the float32 copy one frame is rounded from and its
# two 8-bit forms.
INPUT_BYTES_PER_PIXEL = 8
OUTPUT_BYTES_PER_PIXEL = 3
ROUNDING_BYTES_PER_PIXEL = 18
# On tiles, for every frame of the window (context too): the whole frame in float32, and its copy padded to the
# model's size multiple, which the tiles are cut from. Untiled, the model's own measurement holds its input.
TILED_CLIP_BYTES_PER_PIXEL = 24


@dataclass(frozen=True)
class WindowPlan:
    """How a sequence is cut for the model, and why."""

    size: int  # core frames per window (1 for models that stream)
    look_ahead: int  # frames after each core, computed and dropped
    look_back: int  # frames before each core: 0 where the model carries its forward state across windows
    # "stream", "fixed" (--chunk N), "per-frame" (no temporal context), "auto" (sized to the budget), or
    # "unmeasured" (auto, but the model's memory could not be measured: FIXED_WINDOW frames)
    mode: str
    budget: int | None = None  # bytes the window may take (auto only)
    need: int | None = None  # bytes the chosen window takes by the measurement (auto only)
    note: str = ""  # why the memory could not be measured ("unmeasured")
    tile: int = 0  # tiles (input pixels) auto chose because whole frames fit too short a window; 0: none chosen
    whole_frame_size: int = 0  # with such tiles, the window whole frames would have had

    @property
    def frame_overhead(self) -> float:
        """Frames computed per frame output in a long shot: the core plus the context around it."""
        return (self.size + self.look_ahead + self.look_back) / self.size

    @property
    def carries(self) -> bool:
        return self.mode != "stream" and self.look_back == 0 and self.look_ahead > 0

    def describe(self, frame_count: int | None = None) -> str:
        """One line for `vsr run`: the window chosen, its context, and the budget behind it."""
        if self.mode == "stream":
            return "the model streams frame by frame (--chunk does not apply)"
        if self.mode == "per-frame":
            return f"windows of {_frames(self.size)} (the model sees each frame alone: nothing computed twice)"
        tiles = (f" on {self.tile}-pixel tiles (whole frames would fit windows of "
                 f"{_frames(self.whole_frame_size)})") if self.tile else ""
        if self.mode == "auto" and frame_count and frame_count <= self.size:
            return (f"windows of up to {_frames(self.size)}{tiles}, {_bytes(self.budget)} budget: this "
                    f"{frame_count}-frame clip runs as one window per shot")
        windows = f"windows of {_frames(self.size)}"
        if self.look_back:
            windows += f" + {self.look_back} before and {self.look_ahead} after"
        elif self.look_ahead:
            windows += f" + {self.look_ahead} of look-ahead (forward state carried)"
        if self.mode == "auto":
            over = f"; even one frame needs {_bytes(self.need)}: --tile lowers it" if self.need > self.budget else ""
            return f"{windows}{tiles}, {_bytes(self.budget)} budget{over}"
        if self.mode == "unmeasured":
            return f"{windows}: the model's memory could not be measured ({self.note})"
        return f"{windows}, as --chunk {self.size} asks"


@dataclass
class WindowStats:
    """What a run's windows cost: frames the model computed against frames it gave, filled in as it runs."""

    plan: WindowPlan | None = None
    computed: int = 0
    output: int = 0

    @property
    def overhead(self) -> float:
        """Frames computed per frame output: 1.0 when nothing is computed twice or thrown away."""
        return self.computed / self.output if self.output else 1.0


def canvas_dtype(pixel_dtype: np.dtype) -> torch.dtype:
    """What tiles are blended in: float16 is exact enough for 8-bit video and halves the canvas."""
    return torch.float16 if np.dtype(pixel_dtype) == np.uint8 else torch.float32


def carries_state(model: nn.Module) -> bool:
    """Models offering forward_window(lr, core, carry) hand their forward state from window to window."""
    return callable(getattr(model, "forward_window", None))


def plan_windows(model: nn.Module, chunk: Chunk, height: int, width: int, device: torch.device,
                 precision: str = "fp32", tile: int = 0, streaming: bool = False,
                 budget: int | None = None, tile_overlap: int = 16, pixel_dtype: np.dtype = np.uint8) -> WindowPlan:
    """The windows for frames of `height` x `width`: `chunk` core frames, or under "auto" the most that fit
    `budget` bytes (default: half of what is free on `device`).

    Under "auto" without --tile, large frames may fit only a window shorter than its look-ahead: most of what
    the model computes would be thrown away. The plan then takes the tile size (AUTO_TILES) with the least
    work per output pixel, counting both the windows' context and the tiles' overlaps. `pixel_dtype` is the
    video's (8-bit or more), which sets the canvas's precision.
    """
    chunk = parse_chunk(chunk)
    if streaming:
        return WindowPlan(1, 0, 0, "stream")
    context = model.context_frames
    look_back = 0 if carries_state(model) else context
    if context == 0:
        return WindowPlan(FIXED_WINDOW if chunk == AUTO else chunk, 0, 0, "per-frame")
    if chunk != AUTO:
        return WindowPlan(chunk, context, look_back, "fixed")
    budget = int(BUDGET_SHARE * free_bytes(device)) if budget is None else budget
    try:
        whole = _fitted(model, context, look_back, height, width, device, precision, tile, budget, tile_overlap,
                        pixel_dtype)
        if tile > 0:
            return whole
        multiple = getattr(model, "size_multiple", 1)
        best, best_work = whole, whole.frame_overhead if whole.need <= whole.budget else math.inf
        for candidate in (size for size in AUTO_TILES if size < max(height, width)):
            plan = _fitted(model, context, look_back, height, width, device, precision, candidate, budget,
                           tile_overlap, pixel_dtype)
            work = plan.frame_overhead * tiled_pixel_ratio(height, width, candidate, tile_overlap, multiple)
            if work < best_work and plan.need <= budget:
                best, best_work = replace(plan, tile=candidate, whole_frame_size=whole.size), work
        return best
    except Exception as error:  # noqa: BLE001 - an operator without a shape-only form must not stop the run
        return WindowPlan(FIXED_WINDOW, context, look_back, "unmeasured", note=f"{type(error).__name__}: {error}")


def _fitted(model: nn.Module, context: int, look_back: int, height: int, width: int, device: torch.device,
            precision: str, tile: int, budget: int, overlap: int = 16,
            pixel_dtype: np.dtype = np.uint8) -> WindowPlan:
    """The longest window of frames this size (seen by the model on `tile` tiles) that fits `budget`."""
    fixed, per_frame = window_memory(model, height, width, device, precision, tile)
    tiles = tile_count(height, width, tile, overlap, getattr(model, "size_multiple", 1))
    clip = TILED_CLIP_BYTES_PER_PIXEL * height * width if tiles > 1 else 0
    per_core = per_frame + clip + _pipeline_bytes(model.scale, height, width, tiles > 1, pixel_dtype)
    extra = (fixed + (per_frame + clip) * (context + look_back) + _rounding_bytes(model.scale, height, width)
             + tiles * carry_memory(model, height, width, device, precision, tile))
    size = int(max(1, min(MAX_WINDOW, (budget - extra) // per_core)))
    return WindowPlan(size, context, look_back, "auto", budget, extra + per_core * size)


def free_bytes(device: torch.device) -> int:
    """What can still be allocated where the model runs."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return available_memory()


# Per model, per (height, width, device, precision): (fixed bytes, bytes per frame, bytes of the carry)
_MEASURED: weakref.WeakKeyDictionary[nn.Module, dict[tuple, tuple[int, int, int]]] = weakref.WeakKeyDictionary()


def window_memory(model: nn.Module, height: int, width: int, device: torch.device, precision: str = "fp32",
                  tile: int = 0) -> tuple[int, int]:
    """(fixed, per frame) bytes the model needs for a window of frames this size, measured once and kept.

    On tiles the model sees one tile at a time, so it is measured at the tile's size.
    """
    return _measured(model, height, width, device, precision, tile)[:2]


def carry_memory(model: nn.Module, height: int, width: int, device: torch.device, precision: str = "fp32",
                 tile: int = 0) -> int:
    """Bytes of what one window (on one tile) hands the next; 0 for models that carry nothing."""
    return _measured(model, height, width, device, precision, tile)[2]


def _measured(model: nn.Module, height: int, width: int, device: torch.device, precision: str,
              tile: int) -> tuple[int, int, int]:
    # Under torch.compile, the module it compiled; on OpenVINO, the torch model it was made from.
    network = getattr(model, "torch_model", None) or getattr(model, "_orig_mod", model)
    if tile > 0:
        height, width = min(height, tile), min(width, tile)
    multiple = getattr(model, "size_multiple", 1)
    height, width = -(-height // multiple) * multiple, -(-width // multiple) * multiple
    key = (height, width, str(device), precision)
    known = _MEASURED.setdefault(network, {})
    if key not in known:
        (short, carry), (long, _) = (_window_usage(network, frames, height, width, device, precision)
                                     for frames in PROBE_FRAMES)
        grows = max(long.peak - short.peak, long.last - short.last, 0)
        per_frame = -(-grows // (PROBE_FRAMES[1] - PROBE_FRAMES[0]))
        known[key] = (max(0, short.peak - per_frame * PROBE_FRAMES[0]), per_frame, carry)
    return known[key]


def _window_usage(network: nn.Module, frames: int, height: int, width: int, device: torch.device,
                  precision: str) -> tuple[Usage, int]:
    """The bytes of one window of `frames` frames, every one of them output, as the pipeline runs it, and the
    bytes of the carry it hands on."""
    from vsr.pipeline.inference import autocast  # inference imports this module

    carried = []

    def window() -> None:
        clip = torch.empty(1, frames, 3, height, width, device=device)
        if carries_state(network):
            # the class's method: not a compiled instance's copy
            carried.append(type(network).forward_window(network, clip, frames)[1])
        else:
            network(clip)

    with torch.inference_mode(), autocast(device, precision):
        usage = measure_bytes(window)
    return usage, getattr(carried[0], "nbytes", 0) if carried else 0


def _pipeline_bytes(scale: int, height: int, width: int, tiled: bool, pixel_dtype: np.dtype = np.uint8) -> int:
    """Per core frame, what the pipeline holds besides the model: see the constants above. A frame that fits
    in one tile has no canvas."""
    canvas = canvas_dtype(pixel_dtype).itemsize * 3 if tiled else 0
    return height * width * (INPUT_BYTES_PER_PIXEL + (OUTPUT_BYTES_PER_PIXEL + canvas) * scale * scale)


def _rounding_bytes(scale: int, height: int, width: int) -> int:
    """Once per window: the float32 copy of one output frame that is rounded to 8 bits, and its 8-bit forms."""
    return ROUNDING_BYTES_PER_PIXEL * scale * scale * height * width


def _frames(count: int) -> str:
    return f"{count} frame" + ("" if count == 1 else "s")


def _bytes(count: int) -> str:
    return f"{count / 2**30:.1f} GB" if count >= 2**30 else f"{count / 2**20:.0f} MB"
