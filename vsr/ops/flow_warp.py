"""Backward warping by a dense optical flow, with the reference (BasicSR / mmagic) `flow_warp` semantics."""

from __future__ import annotations

import torch
from kornia.geometry import create_meshgrid
from kornia.geometry.transform import remap


def flow_warp(x: torch.Tensor, flow: torch.Tensor, padding_mode: str = "zeros",
              interpolation: str = "bilinear") -> torch.Tensor:
    """Sample `x` (N, C, H, W) at each pixel plus `flow` (N, 2, H, W; channel 0 dx, channel 1 dy, in pixels).

    Pixel centres sit on integer coordinates and the corners are aligned (align_corners=True), as in the
    reference, whose trained weights (SPyNet, the propagation branches) assume exactly this sampling. The
    reference takes flow as (N, H, W, 2); ours is channels-first, the layout every network here produces.
    """
    _check_shapes(x, flow)
    # Sampling positions stay in float32 whatever x is: an fp16 grid is off by a fifth of a pixel at width
    # 1920 (REFERENCE_FACTS). grid_sample wants x and grid in one dtype, so half inputs are sampled in float32.
    height, width = x.shape[2:]
    positions = pixel_grid(height, width, x.device) + flow.float()
    # Normalised here in the reference's own order of operations: kornia's `2/(W-1) * g - 1` rounds
    # differently in float32 (1.4e-6 apart on a 9x13 random image), and weights trained on the reference
    # deserve its exact sampling. max(., 1) is the reference's guard for a one-pixel axis, where kornia
    # maps g to g instead of 2g - 1; with align_corners=True both sample that single pixel anyway.
    normalised_x = 2.0 * positions[:, 0] / max(width - 1, 1) - 1.0
    normalised_y = 2.0 * positions[:, 1] / max(height - 1, 1) - 1.0
    warped = remap(x.float(), normalised_x, normalised_y, mode=interpolation, padding_mode=padding_mode,
                   align_corners=True, normalized_coordinates=True)
    return warped.to(x.dtype)


def pixel_grid(height: int, width: int, device: torch.device) -> torch.Tensor:
    """(1, 2, H, W) float32 pixel coordinates, x in channel 0 and y in channel 1, like a flow."""
    grid = create_meshgrid(height, width, normalized_coordinates=False, device=device, dtype=torch.float32)
    return grid.permute(0, 3, 1, 2)


def _check_shapes(x: torch.Tensor, flow: torch.Tensor) -> None:
    if x.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow_warp wants x (N, C, H, W) and flow (N, 2, H, W), got {tuple(x.shape)} and "
                         f"{tuple(flow.shape)}")
    if flow.shape[0] != x.shape[0] or flow.shape[2:] != x.shape[2:]:
        raise ValueError(f"flow {tuple(flow.shape)} does not match x {tuple(x.shape)} in batch or size")
