"""What goes on a comparison page: the clip `vsr compare` is given, or every clip of a `vsr bench` run."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from vsr.compare.figures import frame_figures, mean_figures, score_against_truth
from vsr.compare.files import ClipPlan
from vsr.compare.media import PageSource, check_compare_inputs, read_8bit
from vsr.errors import VsrError

if TYPE_CHECKING:  # the bench's modules bring torch: `vsr compare` does without
    from vsr.bench.clips import BenchClip
    from vsr.bench.runner import ModelResult

GROUND_TRUTH = "ground truth"


def compare_section(source: Path, outputs: list[Path], gt: Path | None, labels: list[str] | None = None,
                    progress: Callable[[str], None] | None = None) -> ClipPlan:
    """SOURCE (enlarged by nearest neighbour), each output and the ground truth, with figures if there is one."""
    if labels is not None and len(labels) != len(outputs):
        raise VsrError(None, f"--labels gives {len(labels)} name(s) for {len(outputs)} output(s); give one per output")
    inputs = check_compare_inputs(source, outputs, gt)
    names = _unique([f"source (nearest x{inputs.scale})", *(labels or [_name(path) for path in outputs]),
                     *([GROUND_TRUTH] if gt is not None else [])])
    videos = [PageSource(names[0], "source", source, partial(read_8bit, source), inputs.scale)]
    videos += [PageSource(name, "output", path, partial(read_8bit, path)) for name, path in zip(names[1:], outputs)]
    figures = means = None
    if gt is not None:
        videos.append(PageSource(names[-1], "ground truth", gt, partial(read_8bit, gt)))
        if progress is not None:
            progress("scoring the outputs against the ground truth")
        named = dict(zip(names[1:], outputs))
        scores = score_against_truth({name: read_8bit(path) for name, path in named.items()}, read_8bit(gt),
                                     inputs.scale, named, gt)
        figures = {name: frame_figures(s) for name, s in scores.items()}
        means = {name: mean_figures(s) for name, s in scores.items()}
    source_info = inputs.source
    rate = inputs.outputs[0].frame_rate
    description = (f"{inputs.width}x{inputs.height}, {inputs.frames} frames at {float(rate):.3g} fps; the source "
                   f"({source_info.width}x{source_info.height}) enlarged x{inputs.scale} by nearest neighbour")
    return ClipPlan(_name(source), inputs.width, inputs.height, inputs.frames, Fraction(rate), videos, description,
                    figures, means, _first_wipe(len(outputs), gt is not None))


def bench_sections(clips: list[BenchClip], results: list[ModelResult], frames_folder: Path) -> list[ClipPlan]:
    """One section per clip: the bench's low-res input, each model's saved frames, the ground truth, and the
    per-frame figures the bench computed while it ran."""
    from vsr.bench.runner import FRAME_TIME

    plans = []
    for index, clip in enumerate(clips):
        names = _unique([f"input (nearest x{clip.scale})", *(result.name for result in results), GROUND_TRUTH])
        low_res = clip.lr if clip.lr is not None else clip.gt
        videos = [PageSource(names[0], "source", low_res, partial(_low_res_frames, clip), clip.scale)]
        for name, result in zip(names[1:], results):
            folder = frames_folder / result.name / clip.name
            videos.append(PageSource(name, "output", folder, partial(read_8bit, folder)))
        videos.append(PageSource(names[-1], "ground truth", clip.gt, clip.gt_frames))
        scores = {name: result.clips[index].scores for name, result in zip(names[1:], results)}
        frames = results[0].clips[index].frames
        made = "read from " + str(clip.lr) if clip.lr is not None else f"made by {clip.degradation} degradation"
        description = (f"{clip.gt_region.width}x{clip.gt_region.height}, {frames} frames; input "
                       f"{clip.lr_region.width}x{clip.lr_region.height} ({made}) enlarged x{clip.scale} by "
                       "nearest neighbour")
        plans.append(ClipPlan(clip.name, clip.gt_region.width, clip.gt_region.height, frames, 1 / FRAME_TIME,
                              videos, description, {name: frame_figures(s) for name, s in scores.items()},
                              {name: mean_figures(s) for name, s in scores.items()},
                              _first_wipe(len(results), True)))
    return plans


def _low_res_frames(clip: BenchClip):
    return clip.lr_frames() if clip.lr is not None else clip.lr_frames(clip.gt_frames())


def _first_wipe(outputs: int, with_truth: bool) -> tuple[int, int]:
    """The first output on the left; on the right the ground truth, else the second output, else the source."""
    if with_truth:
        return 1, outputs + 1
    return 1, 2 if outputs > 1 else 0


def _name(path: Path) -> str:
    return path.stem if path.is_file() else path.name


def _unique(names: list[str]) -> list[str]:
    """Labels tell the videos apart in the menus and the figures: a repeated one gets ' (2)', ' (3)', ..."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique
