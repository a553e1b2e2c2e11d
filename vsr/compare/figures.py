"""Per-frame figures for the page, computed by `vsr bench`'s own scorer so the two never disagree."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import zip_longest
from pathlib import Path

import numpy as np

from vsr.bench.scoring import ClipScorer, ClipScores
from vsr.errors import VsrError

SHOWN = ("psnr_y", "ssim_y", "tof")


def score_against_truth(outputs: dict[str, Iterable[np.ndarray]], truth: Iterable[np.ndarray], scale: int,
                        paths: dict[str, Path], truth_path: Path) -> dict[str, ClipScores]:
    """PSNR-Y, SSIM-Y (border of `scale` pixels, as the bench) and tOF of each output's 8-bit frames against
    the truth, in one pass over the truth, one frame of each at a time."""
    scorers = {name: ClipScorer(scale, temporal=True) for name in outputs}
    names = list(outputs)
    for index, (target, *frames) in enumerate(zip_longest(truth, *outputs.values())):
        for name, frame in zip(names, frames):
            if frame is None or target is None:
                shorter, longer = (paths[name], truth_path) if frame is None else (truth_path, paths[name])
                raise VsrError(shorter, f"ends after {index} frames, before {longer}")
            scorers[name].add(frame, target)
    return {name: scorer.scores for name, scorer in scorers.items()}


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
