from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vsr.models.interpolation import BicubicUpscaler, LanczosUpscaler


@pytest.mark.parametrize("model_class", [BicubicUpscaler, LanczosUpscaler])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_shape_and_range(model_class, scale):
    lr = torch.rand(2, 3, 3, 7, 5)
    sr = model_class(scale)(lr)
    assert sr.shape == (2, 3, 3, 7 * scale, 5 * scale)
    assert sr.min() >= 0 and sr.max() <= 1


def test_bicubic_is_torch_bicubic_frame_by_frame():
    lr = torch.rand(1, 4, 3, 6, 9)
    expected = F.interpolate(lr[0], scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1)
    torch.testing.assert_close(BicubicUpscaler(2)(lr)[0], expected)


def lanczos_by_hand(row: np.ndarray, scale: int, lobes: int = 3) -> np.ndarray:
    """The textbook formula, one output sample at a time."""
    def kernel(d: float) -> float:
        if d == 0:
            return 1.0
        if abs(d) >= lobes:
            return 0.0
        return lobes * math.sin(math.pi * d) * math.sin(math.pi * d / lobes) / (math.pi ** 2 * d * d)

    out = []
    for o in range(len(row) * scale):
        centre = (o + 0.5) / scale - 0.5
        taps = range(math.floor(centre) - lobes + 1, math.floor(centre) + lobes + 1)
        weights = [kernel(centre - i) for i in taps]
        values = [row[min(max(i, 0), len(row) - 1)] for i in taps]
        out.append(sum(w * v for w, v in zip(weights, values)) / sum(weights))
    return np.array(out)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_lanczos_matches_the_formula_along_both_axes(scale):
    row = np.random.default_rng(0).random(11)
    along_width = LanczosUpscaler(scale)(torch.from_numpy(row).float().expand(1, 1, 3, 1, 11))[0, 0, 0]
    along_height = LanczosUpscaler(scale)(torch.from_numpy(row).float().expand(1, 1, 3, 1, 11).transpose(-1, -2))
    expected = np.clip(lanczos_by_hand(row, scale), 0, 1)
    np.testing.assert_allclose(along_width[0].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(along_height[0, 0, 0, :, 0].numpy(), expected, atol=1e-5)


def test_lanczos_keeps_flat_images_flat():
    lr = torch.full((1, 1, 3, 5, 6), 0.3)
    torch.testing.assert_close(LanczosUpscaler(4)(lr), torch.full((1, 1, 3, 20, 24), 0.3))


@pytest.mark.parametrize("model_class", [BicubicUpscaler, LanczosUpscaler])
def test_step_equals_forward(model_class):
    model = model_class(2)
    lr = torch.rand(1, 3, 3, 8, 8)
    stepped = torch.stack([model.step(lr[:, t])[0] for t in range(3)], dim=1)
    torch.testing.assert_close(stepped, model(lr))


def test_bicubic_integer_path_is_within_one_level_of_the_float_path():
    y, x = np.mgrid[0:30, 0:40]
    smooth = np.stack([np.sin(x / 3 + t) * np.cos(y / 5) for t in range(3)])  # a photograph's worth of detail
    images = torch.from_numpy(np.round(127.5 + 127.5 * smooth).astype(np.uint8))[None, :, None].expand(-1, -1, 3, -1, -1)
    model = BicubicUpscaler(4)
    integer = model(images)
    floating = (model(images.float() / 255) * 255).round()
    assert integer.dtype == torch.uint8 and integer.shape == floating.shape
    difference = (integer.float() - floating).abs()
    assert difference.max() <= 1
    assert difference.mean() < 0.3  # measured 0.22: one rounding between the passes


def test_the_zoo_states_what_its_models_declare():
    from vsr.models.zoo import ZOO

    for entry in ZOO.values():
        assert entry.build(entry.scales[-1]).streams == entry.streams, entry.name
