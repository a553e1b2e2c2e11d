"""Scene cuts: where a video jumps to an unrelated shot, so temporal models never mix two shots' frames.

A cut is judged from two consecutive frames only, on small grayscale thumbnails, so detection streams with
one thumbnail of memory. A hard cut changes both *where* the brightness is (mean absolute difference of
the thumbnails) and *how much of each* brightness there is (the histogram distance). Motion and pans move
content around, which raises the first but hardly the second; fades change the second but, frame to
frame, little of the first. Requiring both keeps fast motion and fades from counting as cuts.

Thresholds, from the team's clips (shared/data/clips): the values at cuts, and the largest elsewhere:
mean absolute difference 0.18-0.34 at the five cuts of bikes.mp4 and the three of big_buck_bunny_0_30.webm,
up to 0.132 between frames of flickering fire (fire2.mp4) and 0.078 elsewhere; histogram distance 0.22-0.70
at those cuts, up to 0.09 on the fire and 0.57 during Big Buck Bunny's fade in from black.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import numpy as np

from vsr.io.frames import Frame

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601


def thumbnail(image: np.ndarray, width: int = 64) -> np.ndarray:
    """(h, w) grayscale in [0, 1], about `width` wide, each pixel the mean of a block (no aliasing to flicker)."""
    height_full, width_full = image.shape[:2]
    block = max(1, width_full // width)
    height, width = height_full // block, width_full // block
    blocks = image[:height * block, :width * block].reshape(height, block, width, block * 3)
    sums = blocks.sum(axis=1, dtype=np.int64).reshape(height, width, block, 3).sum(axis=2)  # integer sums: fast
    peak = float(np.iinfo(image.dtype).max)
    return (sums.astype(np.float32) @ LUMA_WEIGHTS) / (block * block * peak)


def histogram_distance(a: np.ndarray, b: np.ndarray, bins: int = 16) -> float:
    """Total variation distance between the brightness histograms: 0 for the same, 1 for disjoint."""
    count_a = np.histogram(a, bins, (0.0, 1.0))[0] / a.size
    count_b = np.histogram(b, bins, (0.0, 1.0))[0] / b.size
    return 0.5 * float(np.abs(count_a - count_b).sum())


class SceneCutDetector:
    """Says whether each frame, fed in order, starts a new shot; remembers only the previous thumbnail."""

    def __init__(self, difference: float = 0.1, histogram: float = 0.15) -> None:
        self.difference = difference  # mean absolute difference of thumbnails, in [0, 1]
        self.histogram = histogram  # histogram distance, in [0, 1]
        self._previous: np.ndarray | None = None

    def starts_new_scene(self, image: np.ndarray) -> bool:
        current = thumbnail(image)
        previous, self._previous = self._previous, current
        if previous is None or previous.shape != current.shape:
            return False
        return (float(np.abs(current - previous).mean()) >= self.difference
                and histogram_distance(current, previous) >= self.histogram)


def split_at_cuts(frames: Iterable[Frame], detector: SceneCutDetector | None = None) -> Iterator[Iterator[Frame]]:
    """The frames as one lazy iterator per scene, holding no frame beyond the one being handed on.

    As with itertools.groupby, each scene must be consumed before asking for the next (unread frames of a
    scene are skipped).
    """
    detector = detector or SceneCutDetector()
    scene = 0

    def scene_of(frame: Frame) -> int:
        nonlocal scene
        scene += detector.starts_new_scene(frame.image)
        return scene

    return (frames_of_scene for _, frames_of_scene in itertools.groupby(frames, key=scene_of))
