"""BI (MATLAB imresize) and BD degradations, checked against values derived by hand from their definitions."""

from __future__ import annotations

import math

import pytest
import torch

from vsr.degradations import (
    bicubic_downsample,
    blur_downsample,
    cubic,
    gaussian_kernel,
    imresize,
    imresize_matrix,
)


def matlab_contributions(in_length: int, out_length: int) -> list[list[float]]:
    """imresize's weights written out with plain floats and loops, straight from MATLAB's `contributions`."""
    s = out_length / in_length
    width = 4 / s if s < 1 else 4

    def kernel(x: float) -> float:
        x = s * x if s < 1 else x
        ax = abs(x)
        value = (1.5 * ax**3 - 2.5 * ax**2 + 1) if ax <= 1 else ((-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) if ax <= 2 else 0)
        return s * value if s < 1 else value

    rows = []
    for x in range(1, out_length + 1):
        u = x / s + 0.5 * (1 - 1 / s)
        left = math.floor(u - width / 2)
        row = [0.0] * in_length
        taps = [(j, kernel(u - j)) for j in range(left, left + math.ceil(width) + 2)]
        total = sum(w for _, w in taps)
        for j, w in taps:
            k = (j - 1) % (2 * in_length)  # symmetric padding: 1..n, n..1, repeated
            index = k if k < in_length else 2 * in_length - 1 - k
            row[index] += w / total
        rows.append(row)
    return rows


def test_matlab_kernel_is_keys_with_a_minus_half():
    x = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    # Keys: 1.5|x|^3 - 2.5|x|^2 + 1 inside 1, -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2 up to 2, else 0.
    expected = torch.tensor([1.0, 0.5625, 0.0, -0.0625, 0.0, 0.0])
    torch.testing.assert_close(cubic(x), expected)


def test_x2_shrink_weights_of_an_interior_pixel_derived_by_hand():
    # s = 1/2: output pixel 4 sits at u = 7.5; taps at distances 0.5, 1.5, 2.5, 3.5 on each side get
    # 0.5 * cubic(d / 2) = 0.43359375, 0.11328125, -0.03515625, -0.01171875 (already summing to 1).
    row = imresize_matrix(16, 8)[3]
    by_hand = torch.zeros(16, dtype=torch.float64)
    for distance, weight in ((0.5, 0.43359375), (1.5, 0.11328125), (2.5, -0.03515625), (3.5, -0.01171875)):
        by_hand[int(7.5 - distance) - 1] = weight
        by_hand[int(7.5 + distance) - 1] = weight
    torch.testing.assert_close(row, by_hand, rtol=0, atol=1e-15)


@pytest.mark.parametrize("in_length, out_length", [(16, 4), (17, 5), (12, 8), (10, 40), (9, 27), (7, 7)])
def test_matrix_matches_matlab_contributions_written_out(in_length, out_length):
    expected = torch.tensor(matlab_contributions(in_length, out_length), dtype=torch.float64)
    torch.testing.assert_close(imresize_matrix(in_length, out_length), expected, rtol=0, atol=1e-12)


def test_linear_ramps_are_resampled_exactly_away_from_the_edges():
    ramp = torch.arange(1, 33, dtype=torch.float64).repeat(32, 1)  # value = column (1-based)
    down = imresize(ramp, (8, 8))[0]
    up = imresize(ramp[:, :8], (32, 32))[0]
    # A cubic kernel reproduces linear functions, so each output is the ramp at its position u.
    torch.testing.assert_close(down[2:-2], torch.tensor([4.0 * x - 1.5 for x in range(3, 7)], dtype=torch.float64))
    torch.testing.assert_close(up[8:-8], torch.tensor([x / 4 + 0.375 for x in range(9, 25)], dtype=torch.float64))


def test_bicubic_downsample_shape_constancy_and_8bit_rounding():
    frames = torch.full((2, 3, 3, 32, 48), 0.5)
    lr = bicubic_downsample(frames, 4)
    assert lr.shape == (2, 3, 3, 8, 12)
    torch.testing.assert_close(lr, torch.full_like(lr, 128 / 255))  # 127.5 rounds up, as MATLAB's uint8 does
    noisy = bicubic_downsample(torch.rand(3, 16, 16), 2)
    torch.testing.assert_close(noisy * 255, (noisy * 255).round())
    with pytest.raises(ValueError, match="not divisible"):
        bicubic_downsample(torch.rand(3, 30, 32), 4)


def test_blur_downsample_keeps_every_scaleth_pixel_of_the_blurred_frame():
    assert torch.isclose(gaussian_kernel().sum(), torch.tensor(1.0, dtype=torch.float64))
    impulse = torch.zeros(1, 40, 40)
    impulse[0, 20, 20] = 1.0
    lr = blur_downsample(impulse, 4, size=13, sigma=1.6)
    assert lr.shape == (1, 10, 10)
    kernel = gaussian_kernel(13, 1.6)
    # Output (5, 5) is input (20, 20), the impulse: the kernel's centre weight, rounded to 8 bits.
    assert lr[0, 5, 5].item() == pytest.approx(round(kernel[6, 6].item() * 255) / 255)
    # Output (5, 4) is input (20, 16): four pixels left of the impulse.
    assert lr[0, 5, 4].item() == pytest.approx(round(kernel[6, 10].item() * 255) / 255)
    flat = blur_downsample(torch.full((3, 16, 16), 0.25), 4)
    torch.testing.assert_close(flat, torch.full_like(flat, 64 / 255))
