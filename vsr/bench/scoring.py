"""Scores of one model on one clip, accumulated frame by frame so that clips of any length fit in memory.

Per frame: PSNR-Y, SSIM-Y and RGB PSNR (`vsr.metrics`, the BasicSR protocol, `scale` pixels cropped at the
border), the detail ratio, a sharpness proxy, and optionally NIQE (no reference, `vsr.niqe`) on every N-th
frame. Per consecutive pair: tOF and the flow-warping error, from one Farneback flow of the output and two
of the ground truth (the tOF target flow is the warping error's forward flow, so it is computed once).
The clip's tOF keeps TecoGAN's pairs (it skips two frames at each end); seams use every pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vsr.metrics import (
    detail_ratio,
    farneback_flow,
    grey,
    psnr,
    ssim,
    tof_crop_box,
    tof_frame_pairs,
    tof_of_flows,
    warping_error_of_pair,
)
from vsr.niqe import niqe

FRAME_METRICS = ("psnr_y", "ssim_y", "psnr_rgb", "detail")
PAIR_METRICS = ("tof", "warping_error")


@dataclass
class ClipScores:
    """Per-frame and per-pair values of one clip; pair i is frames (i, i + 1)."""

    scale: int
    per_frame: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in FRAME_METRICS})
    per_pair: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in PAIR_METRICS})
    tof_skipped: str | None = None  # why tOF was not measured at all, if it was not

    def tof_note(self) -> str | None:
        """Why the clip has no tOF (the table shows '-', the JSON null), or None where it has one."""
        if self.tof_skipped is not None:
            return self.tof_skipped
        if self.frames < 6:
            return (f"{self.frames} frame{'s' if self.frames != 1 else ''}: tOF needs at least 6, since it skips "
                    "2 at each end as TecoGAN's script does")
        return None

    @property
    def frames(self) -> int:
        return len(self.per_frame["psnr_y"])

    def summary(self) -> dict[str, float | None]:
        """Means over the clip: frames for the fidelity metrics, TecoGAN's pairs for tOF, all pairs for warping."""
        means = {name: _mean(values) for name, values in self.per_frame.items()}
        tof_values = [self.per_pair["tof"][later - 1] for _, later in self._tof_pairs()]
        # As TecoGAN's script (and vsr.metrics.tof) averages: a float32 sum over the count.
        means["tof"] = float(np.asarray(tof_values, np.float32).sum() / len(tof_values)) if tof_values else None
        means["warping_error"] = _mean(self.per_pair["warping_error"])
        return means

    def seams(self, boundaries: list[int]) -> dict[str, object]:
        """The metrics on the frames either side of each window boundary, and on all the others.

        A boundary b is the first frame of a window's core: frames b - 1 and b came from different windows,
        and pair (b - 1, b) spans the join. A seam shows as lower fidelity there, or a jump in the motion.
        """
        boundaries = sorted(b for b in boundaries if 0 < b < self.frames)
        seam_frames = {f for b in boundaries for f in (b - 1, b)}
        seam_pairs = {b - 1 for b in boundaries}
        return {"boundaries": boundaries,
                "at_seams": self._means_over(seam_frames, seam_pairs),
                "elsewhere": self._means_over(set(range(self.frames)) - seam_frames,
                                              set(range(self.frames - 1)) - seam_pairs)}

    def _means_over(self, frames: set[int], pairs: set[int]) -> dict[str, float | None]:
        means = {name: _mean([values[i] for i in sorted(frames)]) for name, values in self.per_frame.items()}
        for name, values in self.per_pair.items():
            means[name] = _mean([values[i] for i in sorted(pairs) if i < len(values)])
        return means

    def _tof_pairs(self) -> list[tuple[int, int]]:
        if not self.per_pair["tof"] or self.frames < 6:
            return []
        return tof_frame_pairs(self.frames)


class ClipScorer:
    """Takes (output, target) 8-bit frame pairs in order; keeps only the previous pair.

    With `niqe_every` > 0, per_frame["niqe"] holds the output's NIQE on frames 0, N, 2N, ... and None on
    the others (and on frames too flat to score), so that it lines up with the other per-frame values.
    """

    def __init__(self, scale: int, temporal: bool = True, niqe_every: int = 0) -> None:
        self.scores = ClipScores(scale, tof_skipped=None if temporal else "not measured (--no-temporal)")
        self.temporal = temporal
        self.niqe_every = niqe_every
        if niqe_every:
            self.scores.per_frame["niqe"] = []
        self._previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # output, output grey, target grey

    def add(self, output: np.ndarray, target: np.ndarray) -> None:
        if output.shape != target.shape:
            raise ValueError(f"output is {output.shape[1]}x{output.shape[0]} but the ground truth is "
                             f"{target.shape[1]}x{target.shape[0]}")
        border = self.scores.scale
        if self.niqe_every:
            self.scores.per_frame["niqe"].append(sampled_niqe(output, self.scores.frames, self.niqe_every, border))
        self.scores.per_frame["psnr_y"].append(psnr(output, target, border))
        self.scores.per_frame["ssim_y"].append(ssim(output, target, border))
        self.scores.per_frame["psnr_rgb"].append(psnr(output, target, border, y_channel=False))
        self.scores.per_frame["detail"].append(detail_ratio(output, target, border))
        if self.temporal:
            self._add_pair(output, target)

    def _add_pair(self, output: np.ndarray, target: np.ndarray) -> None:
        output_grey, target_grey = grey(output), grey(target)
        if self._previous is not None:
            previous_output, previous_output_grey, previous_target_grey = self._previous
            forward = farneback_flow(previous_target_grey, target_grey)
            backward = farneback_flow(target_grey, previous_target_grey)
            warping = warping_error_of_pair(previous_output, output, forward, backward)
            self.scores.per_pair["warping_error"].append(warping)
            if _tof_fits(output):
                output_flow = farneback_flow(previous_output_grey, output_grey)
                self.scores.per_pair["tof"].append(tof_of_flows(output_flow, forward))
            elif self.scores.tof_skipped is None:  # said once: the size is the clip's
                self.scores.tof_skipped = (f"{output.shape[1]}x{output.shape[0]} frames: tOF needs at least 48x48 "
                                           "(its flows are cropped to multiples of 32 inside an 8-pixel border)")
        self._previous = (output, output_grey, target_grey)


def sampled_niqe(frame: np.ndarray, index: int, every: int, border: int) -> float | None:
    """NIQE of frame `index` of a clip if it is one of frames 0, every, 2 every, ...; else None.

    None too where NIQE is undefined (fewer than two blocks with texture: a fade to black), so that clip
    means skip it rather than turn NaN.
    """
    if index % every:
        return None
    value = niqe(frame, border)
    return None if math.isnan(value) else value


def _tof_fits(frame: np.ndarray) -> bool:
    """tOF needs frames of at least 48x48 (its flows are cropped to multiples of 32 inside an 8-pixel border)."""
    try:
        tof_crop_box(*frame.shape[:2])
    except ValueError:
        return False
    return True


def _mean(values: list[float]) -> float | None:
    """None where there is nothing to average (a one-frame clip has no pairs), so JSON shows null."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return float(np.mean(values)) if all(math.isfinite(v) for v in values) else float("inf")
