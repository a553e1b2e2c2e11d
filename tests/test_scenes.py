"""Scene cuts: found where one shot ends, nowhere else, and no temporal model carries a frame across them."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import moving_pattern
from torch import nn

from vsr.io.frames import Frame
from vsr.io.probe import probe
from vsr.io.reader import FrameReader
from vsr.pipeline.inference import upscale_frames
from vsr.pipeline.scenes import SceneCutDetector, split_at_cuts

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample.mp4"
WIDTH, HEIGHT = 64, 40


def drifting_waves(index: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A second shot: soft diagonal waves in dark blues, moving three pixels a frame."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    wave = 0.5 + 0.5 * np.sin((x - 3 * index) / 5.0 + y / 7.0)
    return np.round(np.stack([0.1 + 0.2 * wave, 0.2 + 0.3 * wave, 0.4 + 0.5 * wave], axis=-1) * 255).astype(np.uint8)


def two_shots(first: int = 7, second: int = 6) -> list[Frame]:
    """`first` frames of the moving pattern (fast motion: 2 pixels a frame), then `second` of the waves."""
    images = [moving_pattern(i, WIDTH, HEIGHT) for i in range(first)]
    images += [drifting_waves(i) for i in range(second)]
    return [Frame(image, 100 + i, Fraction(1, 25)) for i, image in enumerate(images)]


def cut_indices(images) -> list[int]:
    detector = SceneCutDetector()
    return [i for i, image in enumerate(images) if detector.starts_new_scene(image)]


def test_two_shots_split_exactly_at_the_boundary():
    scenes = [[frame.pts for frame in scene] for scene in split_at_cuts(two_shots(7, 6))]
    assert scenes == [list(range(100, 107)), list(range(107, 113))]


def test_fast_motion_and_a_fade_are_not_cuts():
    moving = [moving_pattern(i, WIDTH, HEIGHT) for i in range(12)]
    fade_in = [np.round(moving_pattern(0, WIDTH, HEIGHT) * (i / 10)).astype(np.uint8) for i in range(11)]
    assert cut_indices(moving) == [] and cut_indices(fade_in) == []


def test_the_sample_clip_a_steady_camera_tilt_has_no_cut():
    assert cut_indices(frame.image for frame in FrameReader(probe(SAMPLE))) == []


def test_splitting_reads_lazily():
    consumed = []

    def shots_of_five(count: int = 100):
        for index in range(count):
            consumed.append(index)
            shot = moving_pattern if (index // 5) % 2 == 0 else drifting_waves
            yield Frame(shot(index, WIDTH, HEIGHT), index, Fraction(1, 25))

    scenes = split_at_cuts(shots_of_five())
    lengths = [sum(1 for _ in next(scenes)) for _ in range(3)]
    assert lengths == [5, 5, 5]
    assert len(consumed) <= 16  # the first frame of the fourth shot, read to see the third one end


class TemporalMean(nn.Module):
    """A toy bidirectional model: each output frame is the mean of its neighbours within `context_frames`."""

    scale = 2
    size_multiple = 1
    streams = False

    def __init__(self, context: int) -> None:
        super().__init__()
        self.context_frames = context

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        edges = self.context_frames
        padded = torch.cat([lr[:, :1]] * edges + [lr] + [lr[:, -1:]] * edges, dim=1)
        mean = padded.unfold(1, 2 * edges + 1, 1).mean(-1)
        return mean.repeat_interleave(2, -2).repeat_interleave(2, -1)


def upscaled(frames: list[Frame], model: nn.Module, **options) -> list[np.ndarray]:
    return [frame.image for frame in upscale_frames(frames, model, torch.device("cpu"), chunk=4, **options)]


def test_with_cuts_no_frame_of_one_shot_reaches_the_other():
    frames, model = two_shots(7, 6), TemporalMean(context=2)
    together = upscaled(frames, model)
    first_alone, second_alone = upscaled(frames[:7], model), upscaled(frames[7:], model)
    for a, b in zip(together, first_alone + second_alone):
        np.testing.assert_array_equal(a, b)


def test_without_cuts_the_next_shot_bleeds_into_the_last_frames():
    frames, model = two_shots(7, 6), TemporalMean(context=2)
    together = upscaled(frames, model, scene_cuts=False)
    first_alone = upscaled(frames[:7], model)
    np.testing.assert_array_equal(together[4], first_alone[4])  # two frames from the cut: out of reach
    assert not np.array_equal(together[5], first_alone[5]) and not np.array_equal(together[6], first_alone[6])


class FrameCounter(nn.Module):
    """A toy streaming model whose state counts the frames since it was last reset, and shows the count."""

    scale = 1
    size_multiple = 1
    streams = True
    context_frames = 1  # looks back: runs step by step

    def step(self, frame: torch.Tensor, state: int | None) -> tuple[torch.Tensor, int]:
        count = 1 if state is None else state + 1
        return torch.full_like(frame, count / 255), count


@pytest.mark.parametrize("scene_cuts,counts", [
    (True, list(range(1, 8)) + list(range(1, 7))),
    (False, list(range(1, 14))),
])
def test_the_streaming_state_starts_afresh_at_a_cut(scene_cuts, counts):
    images = upscaled(two_shots(7, 6), FrameCounter(), scene_cuts=scene_cuts)
    assert [int(image[0, 0, 0]) for image in images] == counts
