"""NIQE: the shipped pristine model, the ranking it must give, agreement with BasicSR, and its limits."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vsr.niqe import _nearest_index, _shape_grid, niqe, pristine_model


def uniform(count: int, salt: int) -> np.ndarray:
    """`count` numbers in [0, 1) from splitmix64: integer arithmetic, the same on every machine and numpy."""
    z = np.arange(count, dtype=np.uint64) + np.full(1, salt, np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # wraps
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / 2.0**53


def natural_like(height: int = 192, width: int = 288) -> np.ndarray:
    """A picture with natural images' statistics: a 1/f^1.2 amplitude spectrum, softened as by a lens.

    Plain textures (sines, white noise, flat shapes) are not natural to NIQE: it scores them worse than
    their own blurred copies. This one, like a photograph, gets worse when blurred or noised.
    """
    noise = uniform(height * width, 1).reshape(height, width) - 0.5
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None, :]
    frequency = np.hypot(fx, fy)
    frequency[0, 0] = 1
    field = np.real(np.fft.ifft2(np.fft.fft2(noise) / frequency**1.2))
    luma = cv2.GaussianBlur(120 + 40 * (field - field.mean()) / field.std(), (0, 0), 0.7)
    return np.clip(np.round(np.stack([luma * 1.05, luma, luma * 0.9], axis=-1)), 0, 255).astype(np.uint8)


def test_the_pristine_model_loads_without_pickle_and_has_the_published_shapes():
    model = pristine_model()
    assert model.mean.shape == (36,) and model.covariance.shape == (36, 36) and model.window.shape == (7, 7)
    assert np.allclose(model.covariance, model.covariance.T)
    offsets = np.arange(7) - 3
    line = np.exp(-(offsets**2) / (2 * (7 / 6) ** 2))
    assert np.allclose(model.window, np.outer(line, line) / np.outer(line, line).sum(), atol=1e-15)
    assert model.mean[0] == pytest.approx(2.6013, abs=1e-4)  # the MSCN shape of pristine images, scale 1


def test_blur_and_strong_noise_score_worse_than_the_clean_picture():
    clean = natural_like()
    blurred = cv2.GaussianBlur(clean, (0, 0), 2)
    noise = 60 * (uniform(clean.shape[0] * clean.shape[1], 7).reshape(*clean.shape[:2], 1) - 0.5)
    noisy = np.clip(np.round(clean + noise), 0, 255).astype(np.uint8)
    scores = {name: niqe(image) for name, image in (("clean", clean), ("blurred", blurred), ("noisy", noisy))}
    assert scores["clean"] + 2 < scores["blurred"] and scores["clean"] + 2 < scores["noisy"], scores


@pytest.mark.parametrize("crop_border, basicsr_value", [(0, 5.704530), (4, 5.630113)])
def test_agrees_with_basicsr_on_a_fixed_picture(crop_border, basicsr_value):
    # Cross-implementation check: BasicSR's own calculate_niqe (github.com/XPixelGroup/BasicSR, commit
    # 8d56e3a, basicsr/metrics/niqe.py, run outside this repository with numpy 2.4, scipy 1.17, torch 2.13) on
    # natural_like()[..., ::-1] (it reads BGR) gave these values; ours differ from them by < 1e-5. 0.01 is the
    # agreement we hold to on real pictures (measured: within 0.006 on 11 video frames, 18 blurred, noised and
    # x4-bicubic copies of them, and BasicSR's baboon test image, at borders 0 and 4).
    assert niqe(natural_like(), crop_border) == pytest.approx(basicsr_value, abs=0.01)


def test_a_16_bit_frame_scores_as_its_8_bit_original():
    frame = natural_like()
    assert niqe(frame.astype(np.uint16) * 257) == niqe(frame)


def test_a_flat_frame_has_no_score():
    assert np.isnan(niqe(np.full((192, 192, 3), 16, np.uint8)))


@pytest.mark.parametrize("size, crop_border, expected", [
    ((191, 96), 0, "191x96 holds 1"),
    ((200, 200), 5, "200x200 less 5 pixels at each border holds 1"),
    ((64, 64), 0, "64x64 holds 0"),
])
def test_an_image_smaller_than_two_blocks_is_refused_with_a_clear_message(size, crop_border, expected):
    width, height = size
    with pytest.raises(ValueError, match="NIQE needs at least 2 whole 96x96 blocks") as error:
        niqe(np.zeros((height, width, 3), np.uint8), crop_border)
    assert expected in str(error.value)


def test_the_binary_search_finds_what_the_references_argmin_finds():
    grid = _shape_grid()
    assert np.all(np.diff(grid.ratio) > 0)  # the premise of the binary search
    values = np.concatenate([uniform(2000, 3) * 0.9 - 0.05, grid.ratio[[0, 5, -1]], [np.nan]])
    with np.errstate(invalid="ignore"):
        expected = np.argmin((grid.ratio[None, :] - values[:, None]) ** 2, axis=1)
    np.testing.assert_array_equal(_nearest_index(grid.ratio, values), expected)
