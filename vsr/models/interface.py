"""What the pipeline needs to know about a video super-resolution model.

A model is a torch.nn.Module with `forward(lr) -> sr`: lr is (N, T, 3, H, W) float RGB in [0, 1], sr is
(N, T, 3, scale*H, scale*W). It declares the facts below as attributes; the pipeline reads them and never
special-cases a model by name.

A windowed model may also offer `forward_window(lr, core, carry) -> (sr, carry)`: the outputs of the first
`core` frames of `lr` (the rest is look-ahead), going on from the previous window's `carry` (None at the start
of a shot), and the carry for the next. The pipeline then gives it no frames before a window's core, so no
frame is computed twice but the look-ahead (vsr/pipeline/window_size.py).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch


class VideoSRModel(Protocol):
    scale: int
    # Frames of context on each side that make a chunked window match whole-sequence inference.
    context_frames: int
    # Input height and width are padded up to a multiple of this.
    size_multiple: int
    # True when the model offers step(frame, state) -> (sr_frame, state) and needs no future frames.
    streams: bool
    # Optional, default False: safe to run under fp16/bf16 autocast (it keeps its fragile parts in fp32).
    half_safe: bool
    # Optional, default False: forward also takes uint8 clips (0..255) and returns uint8, sparing the
    # pipeline two float conversions per frame (the interpolation baselines, which only resample).
    integer_pixels: bool

    def __call__(self, lr: torch.Tensor) -> torch.Tensor: ...

    def to(self, *args: Any, **kwargs: Any) -> VideoSRModel: ...
