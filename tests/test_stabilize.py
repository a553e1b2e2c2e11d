"""`--stabilize`: the previous output carried along the flow into the current one, where the flow is trusted."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import frame_times, make_clip
from vsr.io.frames import Frame
from vsr.models.zoo import build_flow_network
from vsr.ops.flow_trust import forward_backward_consistent, photometric_trust
from vsr.pipeline.stabilize import Stabilization, stabilize_frames

SCALE = 4
TIME_BASE = Fraction(1, 25)


@pytest.fixture(scope="module")
def stabilization() -> Stabilization:
    return Stabilization(build_flow_network(), strength=0.75)


def texture(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random RGB texture in [0, 1], float64 (H, W, 3)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 8 + 2, width // 8 + 2, generator=generator)
    fine = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    return fine[0].permute(1, 2, 0).clamp(0, 1).double().numpy()


def as_frames(images: list[np.ndarray]) -> list[Frame]:
    return [Frame((np.clip(image, 0, 1) * 255).round().astype(np.uint8), index, TIME_BASE)
            for index, image in enumerate(images)]


def moving_clip(frames: int = 6, shift: int = 2, flicker: float = 0.03, size: int = 128) -> list[Frame]:
    """A texture panning `shift` pixels right per frame, with independent per-frame noise: a per-frame model's
    flicker on a steady pan."""
    canvas = texture(size + 16, size + shift * frames, 0)
    generator = np.random.default_rng(1)
    images = []
    for t in range(frames):
        left = shift * (frames - t)  # content moves right: frame t at x is frame t-1 at x - shift
        image = canvas[8:8 + size, left:left + size]
        images.append(image + flicker * generator.standard_normal(image.shape))
    return as_frames(images)


def run(frames: list[Frame], stabilization: Stabilization, **kwargs) -> list[Frame]:
    return list(stabilize_frames(iter(frames), stabilization, torch.device("cpu"), SCALE, **kwargs))


def test_first_frame_passes_unchanged(stabilization):
    frames = moving_clip()
    out = run(frames, stabilization)
    assert np.array_equal(out[0].image, frames[0].image)
    assert [f.pts for f in out] == [f.pts for f in frames]


def test_strength_zero_changes_nothing(stabilization):
    frames = moving_clip()
    out = run(frames, Stabilization(stabilization.flow_net, strength=0.0))
    assert all(np.array_equal(a.image, b.image) for a, b in zip(out, frames))


def test_frame_after_a_scene_cut_passes_unchanged(stabilization):
    frames = moving_clip(frames=3)
    other = as_frames([1.0 - texture(128, 128, 7) * 0.8])[0]  # unrelated, darker-brighter shot: a cut
    clip = frames + [Frame(other.image, 3, TIME_BASE)]
    out = run(clip, stabilization)
    assert np.array_equal(out[3].image, clip[3].image)
    assert not np.array_equal(out[2].image, clip[2].image)  # while within the shot it does act


def test_still_scene_stays_as_it_is(stabilization):
    """Identical frames: the carried frame is the frame itself, so blending must not change it."""
    image = as_frames([texture(128, 128, 3)])[0].image
    out = run([Frame(image, t, TIME_BASE) for t in range(4)], stabilization)
    for frame in out:
        difference = np.abs(frame.image.astype(int) - image.astype(int))
        assert difference.max() <= 2 and difference.mean() < 0.5


def test_flicker_along_the_motion_is_reduced(stabilization):
    shift = 2
    frames = moving_clip(frames=6, shift=shift)
    out = run(frames, stabilization)

    def along_motion(images: list[np.ndarray]) -> float:
        """Mean absolute change from frame t-1 to t after undoing the known pan, away from the borders."""
        changes = [np.abs(images[t][8:-8, 8 + shift:-8].astype(float) - images[t - 1][8:-8, 8:-8 - shift])
                   for t in range(1, len(images))]
        return float(np.mean(changes))

    before = along_motion([f.image for f in frames])
    after = along_motion([f.image for f in out])
    assert after < 0.9 * before  # measured 0.82: two-frame blending, sub-pixel flow, trust below 1


def test_trust_is_low_where_the_flow_is_wrong():
    current = torch.rand(1, 3, 16, 16)
    zero = torch.zeros(1, 2, 16, 16)
    assert photometric_trust(current, current, zero).min() > 0.99
    assert photometric_trust(current, torch.rand(1, 3, 16, 16), zero).mean() < 0.1
    outside = torch.full((1, 2, 16, 16), 40.0)
    assert photometric_trust(current, current, outside).max() == 0
    forward = torch.full((1, 2, 16, 16), 3.0)
    assert forward_backward_consistent(forward, -forward).min() == 1
    assert forward_backward_consistent(forward, forward).max() == 0


def test_vsr_run_keeps_frame_count_and_timestamps(tmp_path, run_cli):
    pts = [0, 40, 90, 100, 180]
    source = make_clip(tmp_path / "vfr.mkv", pts=pts, time_base=Fraction(1, 1000), width=48, height=32)
    target = tmp_path / "out.mkv"
    result = run_cli("run", source, "-o", target, "--model", "bicubic", "--scale", "2", "--stabilize",
                     "--stabilize-strength", "0.9", "--quiet")
    assert result.exit_code == 0, result.output
    assert frame_times(target) == pytest.approx([p / 1000 for p in pts], abs=1e-6)
