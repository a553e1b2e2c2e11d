"""flow_warp against a direct grid_sample transcription of the reference semantics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vsr.ops.flow_warp import flow_warp


def reference_flow_warp(x: torch.Tensor, flow: torch.Tensor, padding_mode: str = "zeros") -> torch.Tensor:
    """BasicSR's flow_warp written out: pixel grid + flow, 2g/max(W-1,1)-1, bilinear, align_corners=True."""
    _, _, h, w = x.shape
    grid_y, grid_x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                    indexing="ij")
    gx = grid_x + flow[:, 0]
    gy = grid_y + flow[:, 1]
    grid = torch.stack((2.0 * gx / max(w - 1, 1) - 1.0, 2.0 * gy / max(h - 1, 1) - 1.0), dim=3)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)


@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
@pytest.mark.parametrize("size", [(9, 13), (1, 7), (6, 1)])
def test_equals_reference_grid_sample(padding_mode: str, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, *size)
    flow = torch.randn(2, 2, *size) * 3  # reaches outside the frame, so padding matters
    expected = reference_flow_warp(x, flow, padding_mode)
    torch.testing.assert_close(flow_warp(x, flow, padding_mode=padding_mode), expected, atol=1e-6, rtol=0)


def test_zero_flow_is_identity() -> None:
    x = torch.rand(1, 4, 5, 8)
    torch.testing.assert_close(flow_warp(x, torch.zeros(1, 2, 5, 8)), x, atol=1e-6, rtol=0)


def test_one_pixel_dx_shifts_content_left_with_zeros_at_the_border() -> None:
    x = torch.arange(1.0, 21.0).reshape(1, 1, 4, 5)
    flow = torch.zeros(1, 2, 4, 5)
    flow[:, 0] = 1.0  # output(y, x) = input(y, x + 1)
    warped = flow_warp(x, flow)
    torch.testing.assert_close(warped[..., :-1], x[..., 1:], atol=1e-6, rtol=0)
    assert torch.all(warped[..., -1] == 0)


def test_one_pixel_dy_moves_rows_not_columns() -> None:
    x = torch.arange(1.0, 21.0).reshape(1, 1, 4, 5)
    flow = torch.zeros(1, 2, 4, 5)
    flow[:, 1] = 1.0
    warped = flow_warp(x, flow)
    torch.testing.assert_close(warped[..., :-1, :], x[..., 1:, :], atol=1e-6, rtol=0)
    assert torch.all(warped[..., -1, :] == 0)


def test_half_input_is_sampled_on_a_float32_grid() -> None:
    torch.manual_seed(0)
    x = torch.rand(1, 2, 3, 300)
    flow = torch.full((1, 2, 3, 300), 0.25)
    warped = flow_warp(x.half(), flow.half())
    assert warped.dtype == torch.float16
    torch.testing.assert_close(warped.float(), reference_flow_warp(x.half().float(), flow), atol=1e-3, rtol=0)


def test_mismatched_flow_is_refused() -> None:
    with pytest.raises(ValueError, match="flow"):
        flow_warp(torch.rand(1, 3, 4, 4), torch.zeros(1, 2, 4, 5))
