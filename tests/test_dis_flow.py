"""OpenCV's DIS as our flow: direction, and frames of any size (OpenCV alone refuses some and crashes on others)."""

from __future__ import annotations

import pytest
import torch

from vsr.ops.dis_flow import dis_flow


def textured(height: int, width: int) -> torch.Tensor:
    """(1, 3, H, W) smooth random texture, so that a one-pixel shift is measurable."""
    torch.manual_seed(0)
    coarse = torch.rand(1, 1, max(height // 3, 2), max(width // 3, 2))
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear").expand(1, 3, -1, -1)


@pytest.mark.parametrize("size", [(90, 160), (12, 200), (8, 100), (15, 640), (4, 4), (1, 1), (200, 6)])
def test_a_shift_reads_as_its_flow_on_frames_of_any_size(size):
    """12x200 and 8x100 crash OpenCV 5.0's DIS with a segfault, 15x640, 4x4 and 200x6 raise: we pad them."""
    previous = textured(*size)
    current = torch.roll(previous, 1, dims=-1)  # moved one pixel right: sample one pixel to the left
    assert dis_flow(previous, previous).shape == (1, 2, *size)
    assert torch.equal(dis_flow(previous, previous), torch.zeros(1, 2, *size))
    if size[1] >= 100:  # wide enough for a shift to be told from the wrap-around at the edge
        flow = dis_flow(current, previous)
        assert flow[0, 0].median() == pytest.approx(-1, abs=0.25)
        assert flow[0, 1].median() == pytest.approx(0, abs=0.25)
