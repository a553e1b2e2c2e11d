"""Spatial tiles: the same frames as whole-frame inference, any frame size, one call when the frame fits."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import make_clip
from torch import nn

from vsr.io.frames import Frame
from vsr.models.interpolation import BicubicUpscaler
from vsr.pipeline.inference import upscale_frames
from vsr.pipeline.tiles import axis_weights, tile_starts, upscale_tiled, usable_tile_size


class TinyConvNet(nn.Module):
    """Three 3x3 convolutions and a pixel shuffle: each output pixel sees 3 input pixels each way, no further.

    With `unshuffle` it first folds 2x2 blocks into channels, as networks that work at half resolution do: its
    receptive field then doubles, and its output changes with the 2-pixel grid, hence size_multiple = 2.
    """

    context_frames = 0
    streams = False

    def __init__(self, scale: int = 2, unshuffle: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.scale = scale
        self.fold = 2 if unshuffle else 1
        self.size_multiple = self.fold
        channels = 3 * self.fold ** 2
        self.body = nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                                  nn.ReLU(), nn.Conv2d(8, 3 * (scale * self.fold) ** 2, 3, padding=1))
        self.calls: list[tuple[int, int]] = []

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        n, t, c, h, w = lr.shape
        assert h % self.size_multiple == 0 and w % self.size_multiple == 0
        self.calls.append((h, w))
        frames = F.pixel_unshuffle(lr.reshape(n * t, c, h, w), self.fold)
        sr = F.pixel_shuffle(self.body(frames), self.scale * self.fold)
        return sr.reshape(n, t, c, h * self.scale, w * self.scale)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions gain nothing from threads, and on a busy machine lose much time waiting for them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_clip(height: int, width: int, frames: int = 2) -> torch.Tensor:
    return torch.rand(1, frames, 3, height, width, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("height,width,tile,overlap", [
    (40, 56, 24, 3),   # 3 x 4 tiles
    (37, 53, 24, 4),   # sizes that are not multiples of the tile
    (23, 61, 24, 3),   # one row of tiles, several columns
])
def test_tiled_equals_whole_frame_when_the_overlap_covers_the_receptive_field(height, width, tile, overlap):
    model = TinyConvNet()
    clip = random_clip(height, width)
    with torch.no_grad():
        whole = model(clip)
        model.calls.clear()
        tiled = upscale_tiled(model, clip, tile, overlap)
    assert len(model.calls) > 1
    assert tiled.shape == whole.shape == (1, 2, 3, 2 * height, 2 * width)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)


def test_tiles_start_on_the_size_multiple_so_grid_sensitive_models_match_too():
    model = TinyConvNet(unshuffle=True)  # receptive field: 3 half-resolution pixels, 7 input pixels
    clip = random_clip(45, 61)  # padded to 46 x 62, as the whole frame would be
    with torch.no_grad():
        whole = model(F.pad(clip[0], (0, 1, 0, 1), mode="replicate")[None])[..., :90, :122]
        model.calls.clear()
        tiled = upscale_tiled(model, clip, 41, 7)  # 40 once rounded down to the multiple
    assert len(model.calls) == 6 and all(call == (40, 40) for call in model.calls)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)


def test_too_little_overlap_shows_at_the_seams():
    model = TinyConvNet()
    clip = random_clip(40, 56)
    with torch.no_grad():
        difference = (upscale_tiled(model, clip, 24, 1) - model(clip)).abs().max()
    assert difference > 1e-3


# Bicubic reaches 2 input pixels each way. Float clips: within 1e-5 (float rounding only); uint8 clips, which
# go through PyTorch's integer kernel: identical.
def test_bicubic_tiled_equals_whole_frame_within_1e_5():
    model = BicubicUpscaler(3)
    clip = random_clip(29, 43)
    torch.testing.assert_close(upscale_tiled(model, clip, 12, 2), model(clip), rtol=0, atol=1e-5)


def test_bicubic_on_uint8_tiled_is_identical_to_whole_frame():
    model = BicubicUpscaler(4)
    clip = (random_clip(29, 43) * 255).round().to(torch.uint8)
    tiled = upscale_tiled(model, clip, 12, 2)
    assert tiled.dtype == torch.uint8
    torch.testing.assert_close(tiled, model(clip), rtol=0, atol=0)


def test_a_float16_canvas_rounds_to_the_same_8_bit_frames_within_one_level():
    """The pipeline blends tiles of 8-bit video on a float16 canvas, half the memory of float32."""
    model = TinyConvNet()
    with torch.no_grad():
        clip = random_clip(61, 83, frames=3)
        single, half = (upscale_tiled(model, clip, 24, 4, dtype) for dtype in (torch.float32, torch.float16))
    assert half.dtype == torch.float16
    single, half = ((x.float().clamp(0, 1) * 255).round() for x in (single, half))
    assert (single - half).abs().max() <= 1 and (single == half).float().mean() > 0.99


@pytest.mark.parametrize("height,width", [(10, 14), (32, 32)])
def test_a_frame_that_fits_in_one_tile_takes_one_call(height, width):
    model = TinyConvNet()
    with torch.no_grad():
        out = upscale_tiled(model, random_clip(height, width), 32, 8)
    assert model.calls == [(height, width)]
    assert out.shape[-2:] == (2 * height, 2 * width)


def test_zero_means_no_tiles():
    model = TinyConvNet()
    with torch.no_grad():
        upscale_tiled(model, random_clip(300, 200), 0, 16)
    assert model.calls == [(300, 200)]


@pytest.mark.parametrize("length,tile,overlap", [(100, 30, 4), (31, 30, 4), (1000, 64, 16), (97, 13, 4)])
def test_tiles_are_full_size_cover_the_frame_and_share_3_overlaps(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == length
    assert all(0 < b - a <= tile - 3 * overlap for a, b in zip(starts, starts[1:]))


def test_a_tile_too_small_for_its_overlap_is_refused():
    with pytest.raises(ValueError, match="3 x the overlap"):
        usable_tile_size(48, 16, 1)
    assert usable_tile_size(49, 16, 1) == 49
    assert usable_tile_size(70, 16, 8) == 64


def test_pipeline_tiles_windows_and_steps_alike():
    rng = np.random.default_rng(5)
    frames = [Frame(rng.integers(0, 255, (37, 45, 3), dtype=np.uint8), i, Fraction(1, 25)) for i in range(3)]
    model = BicubicUpscaler(2)
    whole = list(upscale_frames(frames, model, torch.device("cpu"), chunk=2))
    for streaming in (False, True):
        tiled = list(upscale_frames(frames, model, torch.device("cpu"), chunk=2, streaming=streaming, tile=16,
                                    tile_overlap=2))
        for a, b in zip(whole, tiled):
            np.testing.assert_array_equal(a.image, b.image)


def test_neighbours_cross_fade_over_the_overlap_with_weights_summing_to_one():
    scale, overlap = 2, 4
    left, right = axis_weights(0, 20, 28, scale, overlap), axis_weights(8, 20, 28, scale, overlap)  # share 12 = 3 x 4
    total = torch.zeros(2 * 28)
    total[:40] += left
    total[16:] += right
    torch.testing.assert_close(total, torch.ones(2 * 28))
    shared = torch.stack([left[16:], right[:24]])
    assert (shared == 0).any(dim=0).sum() == 2 * scale * overlap  # each side's context pixels
    assert ((shared > 0) & (shared < 1)).all(dim=0).sum() == scale * overlap  # blended, not butted


def test_vsr_run_with_tiles_writes_the_same_frames(tmp_path, run_cli):
    source = make_clip(tmp_path / "in.mp4", frames=3, width=48, height=32, audio=False)
    whole, tiled = tmp_path / "whole", tmp_path / "tiled"
    assert run_cli("run", source, "-o", whole, "--model", "bicubic", "--scale", "2", "--quiet").exit_code == 0
    result = run_cli("run", source, "-o", tiled, "--model", "bicubic", "--scale", "2", "--tile", "20", "--tile-overlap", "2",
                     "--no-scene-cuts", "--quiet")
    assert result.exit_code == 0, result.output
    for a, b in zip(sorted(whole.iterdir()), sorted(tiled.iterdir()), strict=True):
        np.testing.assert_array_equal(cv2.imread(str(a)), cv2.imread(str(b)))


def test_vsr_run_refuses_a_tile_too_small_for_its_overlap(tmp_path, run_cli):
    source = make_clip(tmp_path / "in.mp4", frames=2, audio=False)
    result = run_cli("run", source, "-o", tmp_path / "out.mp4", "--tile", "40", "--quiet")
    assert result.exit_code == 1 and "3 x the overlap" in result.stderr
    assert not (tmp_path / "out.mp4").exists()
