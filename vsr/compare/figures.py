"""Per-frame figures for the page, computed by `vsr bench`'s own scorer so the two never disagree."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import zip_longest
from pathlib import Path

import numpy as np

from vsr.bench.scoring import ClipScorer, ClipScores
from vsr.errors import VsrError

SHOWN = ("psnr_y", "ssim_y", "tof")


def score_against_truth(output: Iterable[np.ndarray], truth: Iterable[np.ndarray], scale: int,
                        output_path: Path, truth_path: Path) -> ClipScores:
    """PSNR-Y, SSIM-Y (border of `scale` pixels, as the bench) and tOF of 8-bit frames, one pair at a time."""
    scorer = ClipScorer(scale, temporal=True)
    for index, (frame, target) in enumerate(zip_longest(output, truth)):
        if frame is None or target is None:
            shorter, longer = (output_path, truth_path) if frame is None else (truth_path, output_path)
            raise VsrError(shorter, f"ends after {index} frames, before {longer}")
        scorer.add(frame, target)
    return scorer.scores


def frame_figures(scores: ClipScores) -> dict[str, list[float | None]]:
    """Each metric per frame. tOF belongs to a pair of frames: it is shown at the later one (frame 0 has none)."""
    figures: dict[str, list[float | None]] = {"psnr_y": list(scores.per_frame["psnr_y"]),
                                              "ssim_y": list(scores.per_frame["ssim_y"])}
    if scores.per_pair["tof"]:  # none for frames under 48x48, or without temporal scoring
        figures["tof"] = [None, *scores.per_pair["tof"]]
    return figures


def mean_figures(scores: ClipScores) -> dict[str, float | None]:
    """The clip's means as the bench reports them (tOF over TecoGAN's pairs: None under 6 frames)."""
    summary = scores.summary()
    return {name: summary[name] for name in SHOWN}
