"""Spatial tiles: running a model on overlapping parts of a frame, so that its memory follows the tile size.

Along each axis, neighbouring tiles share 3 * `overlap` input pixels. On an inner edge (one that is not the
frame's border) a tile's outermost `overlap` pixels are context only: the model saw the tile's edge there, so
their outputs get weight zero. Over the next `overlap` pixels the tile's weight rises as a raised cosine, and
the neighbour's falls the same way, so the two cross-fade (blended, not butted). A model whose receptive field
reaches no more than `overlap` input pixels therefore gives the same frames tiled as whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from vsr.pipeline.tensors import pad_to_multiple

# (input tile (N, T, C, h, w) padded to the model's size multiple, tile index) -> output tile (N, T, C, s*h, s*w)
TileRunner = Callable[[torch.Tensor, int], torch.Tensor]


def upscale_tiled(model: nn.Module, clip: torch.Tensor, tile: int, overlap: int,
                  canvas_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """model(clip) computed on tiles of `tile` input pixels (0: no tiles, one call on the whole frame)."""
    return run_tiled(lambda part, _index: model(part), clip, model.scale, model.size_multiple, tile, overlap,
                     canvas_dtype)


def run_tiled(run: TileRunner, clip: torch.Tensor, scale: int, multiple: int, tile: int,
              overlap: int, canvas_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Blend `run` over the tiles of `clip`; memory holds one tile's input and output plus the output canvas.

    float16 halves the canvas, which holds every output frame of a window at full size: its rounding error
    (1/2048 of the value) stays far under half a level of 8-bit video, but not of 16-bit video.

    The clip is padded to the size multiple as a whole, and tiles have sizes and starts on that multiple, so
    every tile sees the pixels (and the grid alignment) it would see untiled. `run` gets each tile's index
    too, so a streaming model (or a window carrying state to the next) can keep one state per tile; it may give
    fewer frames than the clip has (a window's core), and the result has as many.
    """
    padded, (height, width) = pad_to_multiple(clip, multiple)
    padded_height, padded_width = padded.shape[-2:]
    tile = usable_tile_size(tile, overlap, multiple) if tile > 0 else max(padded_height, padded_width)
    tops = tile_starts(padded_height, tile, overlap, multiple)
    lefts = tile_starts(padded_width, tile, overlap, multiple)
    if len(tops) == 1 and len(lefts) == 1:
        return run(padded, 0)[..., :scale * height, :scale * width]
    tile_height, tile_width = min(tile, padded_height), min(tile, padded_width)
    row_weights = [axis_weights(top, tile_height, padded_height, scale, overlap).to(clip.device) for top in tops]
    column_weights = [axis_weights(left, tile_width, padded_width, scale, overlap).to(clip.device) for left in lefts]
    canvas = None
    for row, top in enumerate(tops):
        for column, left in enumerate(lefts):
            output = run(padded[..., top:top + tile_height, left:left + tile_width], row * len(lefts) + column)
            if canvas is None:  # as many frames as `run` gives: a window's core may be fewer than its frames
                canvas = torch.zeros((*output.shape[:3], scale * padded_height, scale * padded_width),
                                     device=clip.device, dtype=canvas_dtype)
            region = canvas[..., scale * top:scale * (top + tile_height), scale * left:scale * (left + tile_width)]
            region.addcmul_(output.float(), row_weights[row][:, None] * column_weights[column])
    # The weights are a product of per-axis weights over a grid of tiles, so their sum is a product of sums.
    canvas /= _summed(row_weights, tops, scale)[:, None] * _summed(column_weights, lefts, scale)
    canvas = canvas[..., :scale * height, :scale * width]
    return canvas if output.dtype.is_floating_point else canvas.round_().to(output.dtype)


def usable_tile_size(tile: int, overlap: int, multiple: int) -> int:
    """The tile size rounded down to the model's size multiple, so that tiles need no padding of their own."""
    usable = tile // multiple * multiple
    if overlap < 0 or usable - 3 * overlap < multiple:
        raise ValueError(f"tiles must be larger than 3 x the overlap ({3 * overlap} pixels) by at least the "
                         f"model's size multiple ({multiple}); got a tile of {tile} and an overlap of {overlap}")
    return usable


def tiled_pixel_ratio(height: int, width: int, tile: int, overlap: int, multiple: int = 1) -> float:
    """Pixels the model computes on tiles of a height x width frame per pixel of the frame (1.0 untiled)."""
    height, width = -(-height // multiple) * multiple, -(-width // multiple) * multiple
    if tile <= 0:
        return 1.0
    tile = usable_tile_size(tile, overlap, multiple)
    return tile_count(height, width, tile, overlap, multiple) * min(tile, height) * min(tile, width) / (height * width)


def tile_count(height: int, width: int, tile: int, overlap: int, multiple: int = 1) -> int:
    """How many tiles cover a height x width frame (1 untiled)."""
    if tile <= 0:
        return 1
    height, width = -(-height // multiple) * multiple, -(-width // multiple) * multiple
    tile = usable_tile_size(tile, overlap, multiple)
    return len(tile_starts(height, tile, overlap, multiple)) * len(tile_starts(width, tile, overlap, multiple))


def tile_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Evenly spread starts of full-size tiles, on the multiple, neighbours sharing at least 3 * overlap pixels."""
    if length <= tile:
        return [0]
    span, step = (length - tile) // multiple, (tile - 3 * overlap) // multiple  # in units of the multiple
    count = math.ceil(span / step) + 1
    return [multiple * round(index * span / (count - 1)) for index in range(count)]


def axis_weights(start: int, size: int, length: int, scale: int, overlap: int) -> torch.Tensor:
    """Blend weights of one tile's output pixels along one axis: zero, rising, one, falling, zero."""
    centres = (torch.arange(scale * size, dtype=torch.float64) + 0.5) / scale  # in input pixels from the start
    weight = torch.ones(scale * size, dtype=torch.float64)
    if start > 0:
        weight = torch.minimum(weight, _rise(centres, overlap))
    if start + size < length:
        weight = torch.minimum(weight, _rise(size - centres, overlap))
    return weight.float()


def _rise(distance: torch.Tensor, overlap: int) -> torch.Tensor:
    """0 within `overlap` of the edge, a raised cosine over the next `overlap`, then 1: sin^2 + cos^2 = 1
    makes two neighbours' weights sum to one where they cross-fade."""
    if overlap == 0:
        return torch.ones_like(distance)
    ramp = ((distance - overlap) / overlap).clamp(0, 1)
    return torch.sin(ramp * math.pi / 2) ** 2


def _summed(weights: list[torch.Tensor], starts: list[int], scale: int) -> torch.Tensor:
    """The tiles' weights added up along one axis: what the blend divides by."""
    total = torch.zeros(scale * starts[-1] + len(weights[-1]), device=weights[0].device)
    for start, weight in zip(starts, weights):
        total[scale * start:scale * start + len(weight)] += weight
    return total
