"""Perceptual models on real footage as it is: no ground truth, no synthetic damage, scored without a reference.

    python benchmarks/real_footage.py --frames 24 --crop 200x112 [--crops [PNG]] [--write]

The other perceptual tables (benchmarks/perceptual_models.py) shrink sharp clips and damage them in a way we
chose, so they can score against the truth. A user restoring old footage has no truth, and the damage is
whatever the camera, the film and the codecs did. This runs each model, as `vsr run` does, on the centre of
real low-resolution clips from ../shared/data/clips/val (an early silent film, a street scene, the carphone
test sequence: none of them trained on or used to choose weights) and scores what a viewer sees:
- NIQE of the output (no reference; lower is more natural), on frames 0, N, 2N, ... of each clip;
- flicker where the source holds still: the RMS change of the output's grey level from one frame to the next
  (8-bit levels), over the pixels where the bicubic-upscaled source changes by under STILL levels (after a
  light blur, so that its grain does not count as motion). Whatever changes there, the model made up.
  Bicubic sets the floor of a model that adds nothing. A flow-warping error would measure the same on paper,
  but these clips move fast (chaplin walks across the frame at 15-25 levels of change a frame), and there the
  flow's own failures outweigh every model's flicker; and chaplin, an old film at 25 frames/s, repeats every
  third frame, where any change of the output is flicker;
- detail: the variance of the Laplacian of Y against bicubic's (1: no sharper than bicubic);
- grid peak: how strongly the output's fine detail peaks on the low-res pixel grid's frequencies
  (vsr.metrics.grid_peak), which beading (a blob drawn for each low-res pixel along an edge) raises; compare
  within a clip.
Pairs that span a scene cut are left out of the flicker. With --crops, the most detailed region of
each clip's middle frame from every model, side by side (benchmarks/real_footage_crops.png).
"""

from __future__ import annotations

import argparse
import datetime
import sys
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2
import numpy as np
import torch
from perceptual_models import labelled_tile, most_detailed_box
from results_file import describe_cpu, write_section

from vsr.backends.choice import choose_engine
from vsr.bench.runner import FRAME_TIME
from vsr.io.frames import Frame
from vsr.io.reader import read_8bit
from vsr.metrics import detail_ratio, grey, grid_peak
from vsr.models.zoo import build_model
from vsr.niqe import niqe
from vsr.ops.dis_flow import DisFlow
from vsr.pipeline.inference import upscale_frames
from vsr.pipeline.scenes import SceneCutDetector
from vsr.pipeline.stabilize import Stabilization, stabilize_frames

HEADING = "## Perceptual models on real footage, no reference (benchmarks/real_footage.py)"
VAL_DIR = ROOT.parent / "shared" / "data" / "clips" / "val"
# Each clip and the frame it starts at: bikes opens on a blank wall, and its street scene starts at frame 160.
CLIPS = {"chaplin.mp4": 0, "bikes.mp4": 160, "carphone_pristine.mp4": 0}
MODELS = ("bicubic", "frvsr", "frvsr-real", "tecogan", "tecogan-clean", "realsr")
STABILISED = "realsr"  # also run with --stabilize
SCALE = 4
STILL = 1.0  # 8-bit levels of change of the blurred bicubic source under which a pixel holds still


@dataclass
class Scores:
    """One model's figures on one clip."""

    niqe: list[float] = field(default_factory=list)
    flicker: list[float] = field(default_factory=list)
    detail: list[float] = field(default_factory=list)
    grid: list[float] = field(default_factory=list)

    def means(self) -> dict[str, float]:
        """Each figure's mean over the clip; NaN (shown as nan) where it had nothing to measure, such as
        flicker on a clip where nothing holds still."""
        return {name: float(np.mean(values)) if values else float("nan") for name, values in vars(self).items()}


def read_centre(path: Path, start: int, frames: int, crop: tuple[int, int]) -> list[np.ndarray]:
    """`frames` 8-bit RGB frames of `path` from frame `start`, read as `vsr bench` reads them, each cut to its
    centre `crop` (width, height); a side shorter than the crop's is kept whole."""
    images = list(islice(read_8bit(path), start, start + frames))
    height, width = min(crop[1], images[0].shape[0]), min(crop[0], images[0].shape[1])
    top, left = (images[0].shape[0] - height) // 2, (images[0].shape[1] - width) // 2
    return [np.ascontiguousarray(image[top:top + height, left:left + width]) for image in images]


def cut_pairs(images: list[np.ndarray]) -> set[int]:
    """The pairs (i - 1, i), named by i, that span a scene cut of the source."""
    detector = SceneCutDetector()
    return {index for index, image in enumerate(images) if detector.starts_new_scene(image)}


def score(outputs: list[np.ndarray], guides: list[np.ndarray], cuts: set[int], niqe_every: int) -> Scores:
    """`outputs` scored against `guides`, the bicubic-upscaled source: where it holds still, how detailed it is."""
    scores = Scores()
    for index, (output, guide) in enumerate(zip(outputs, guides)):
        if index % niqe_every == 0:
            scores.niqe.append(niqe(output, crop_border=SCALE))
        scores.detail.append(detail_ratio(output, guide, SCALE))
        scores.grid.append(grid_peak(output, SCALE))
        if index == 0 or index in cuts:
            continue
        flicker = still_flicker(outputs[index - 1], output, guides[index - 1], guide)
        if flicker is not None:
            scores.flicker.append(flicker)
    return scores


def still_flicker(earlier: np.ndarray, later: np.ndarray, earlier_guide: np.ndarray,
                  later_guide: np.ndarray) -> float | None:
    """RMS change of the output's grey level where the guide holds still; None where nothing holds still."""
    guides = [cv2.GaussianBlur(grey(image).astype(np.float32), (0, 0), 1.0) for image in (earlier_guide, later_guide)]
    still = np.abs(guides[1] - guides[0]) < STILL
    if not still.any():
        return None
    change = grey(later).astype(np.float32) - grey(earlier).astype(np.float32)
    return float(np.sqrt(np.mean(change[still] ** 2)))


def upscale(model: torch.nn.Module, images: list[np.ndarray], stabilize: bool) -> list[np.ndarray]:
    """The model's output frames, as `vsr run` makes them (with --stabilize at its default strength)."""
    cpu = torch.device("cpu")
    frames = [Frame(image, index, FRAME_TIME) for index, image in enumerate(images)]
    outputs = upscale_frames(iter(frames), model, cpu)
    if stabilize:
        outputs = stabilize_frames(outputs, Stabilization(DisFlow()), cpu, SCALE, inputs=iter(frames))
    return [frame.image for frame in outputs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=24, help="frames of each clip, from its start in CLIPS")
    parser.add_argument("--crop", default="200x112", help="centre WxH of each source frame (the model's input)")
    parser.add_argument("--niqe-every", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated; {STABILISED} also runs "
                        "stabilised")
    parser.add_argument("--weights", action="append", default=[], metavar="MODEL=PATH",
                        help="other weights for a model (repeatable)")
    parser.add_argument("--crops", nargs="?", type=Path, const=ROOT / "benchmarks" / "real_footage_crops.png",
                        help="write the crops picture (to benchmarks/real_footage_crops.png, or here)")
    parser.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    args = parser.parse_args()
    if not VAL_DIR.is_dir():
        sys.exit(f"{VAL_DIR} is absent: this benchmark needs the team's media folder")
    crop = tuple(int(side) for side in args.crop.split("x"))
    weights = dict(item.split("=", 1) for item in args.weights)
    sources = {name: read_centre(VAL_DIR / name, start, args.frames, crop) for name, start in CLIPS.items()}
    guides = {name: [cv2.resize(image, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_CUBIC) for image in images]
              for name, images in sources.items()}
    cuts = {name: cut_pairs(images) for name, images in sources.items()}

    runs = [(name, False) for name in args.models.split(",")]
    if STABILISED in args.models.split(","):
        runs.append((STABILISED, True))
    rows, middles = [], {"input (nearest)": {clip: cv2.resize(images[len(images) // 2], None, fx=SCALE, fy=SCALE,
                                                                interpolation=cv2.INTER_NEAREST)
                                             for clip, images in sources.items()}}
    for name, stabilize in runs:
        engine = choose_engine(build_model(name, SCALE, weights=weights.get(name)), "auto", torch.device("cpu"),
                               "auto")
        label = f"{name} ({Path(weights[name]).name})" if name in weights else name  # not the shipped weights
        label = f"{label}+stabilize" if stabilize else label
        per_clip, middles[label] = {}, {}
        for clip, images in sources.items():
            outputs = upscale(engine.model, images, stabilize)
            per_clip[clip] = score(outputs, guides[clip], cuts[clip], args.niqe_every).means()
            middles[label][clip] = outputs[len(outputs) // 2]
        rows.append((label, per_clip))
        print(f"{label}: " + ", ".join(f"{clip} NIQE {m['niqe']:.2f} flicker {m['flicker']:.3f}"
                                       for clip, m in per_clip.items()), file=sys.stderr, flush=True)
    section = render(rows, args, cuts)
    print(section)
    if args.crops:
        write_crops(middles, {clip: frames[len(frames) // 2] for clip, frames in guides.items()}, args.crops)
    if args.write:
        write_section(Path(__file__).with_name("RESULTS.md"), HEADING, section)


def write_crops(middles: dict[str, dict[str, np.ndarray]], guides: dict[str, np.ndarray], target: Path,
                box: int = 192) -> None:
    """A box x box region of each clip's middle frame (a row per clip), for the input and every model: where the
    bicubic-upscaled source has the most detail, so that what a model adds or breaks shows."""
    rows = []
    for clip, guide in guides.items():
        top, left = most_detailed_box(guide, box)
        rows.append(np.hstack([labelled_tile(label, images[clip][top:top + box, left:left + box])
                               for label, images in middles.items()]))
    cv2.imwrite(str(target), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    print(f"wrote {target}", file=sys.stderr)


def clip_cells(per_clip: dict[str, dict[str, float]], figure: str, digits: int) -> str:
    """One table cell: `figure` for each clip, in the clips' order, separated by slashes."""
    return " / ".join(f"{means[figure]:.{digits}f}" for means in per_clip.values())


def render(rows: list[tuple[str, dict]], args: argparse.Namespace, cuts: dict[str, set[int]]) -> str:
    clips = list(rows[0][1])
    short = " / ".join(clip.removesuffix(".mp4") for clip in clips)
    lines = [f"| model | NIQE ({short}) | flicker where the source holds still, levels ({short}) | detail, x "
             f"bicubic (mean) | grid peak ({short}) |", "|---|---|---|---|---|"]
    for label, per_clip in rows:
        detail = float(np.mean([m["detail"] for m in per_clip.values()]))
        lines.append(f"| {label} | {clip_cells(per_clip, 'niqe', 2)} | {clip_cells(per_clip, 'flicker', 3)} | "
                     f"{detail:.2f} | {clip_cells(per_clip, 'grid', 2)} |")
    command = (f"python benchmarks/real_footage.py --frames {args.frames} --crop {args.crop} "
               f"--niqe-every {args.niqe_every}")
    where = ", ".join(f"{clip.removesuffix('.mp4')} from frame {start}" for clip, start in CLIPS.items())
    cut_note = "; ".join(f"{clip.removesuffix('.mp4')}: {len(found)}" for clip, found in cuts.items())
    return "\n".join([
        HEADING, "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- cpu: {describe_cpu()}",
        f"- command: `{command}`",
        f"- input: {args.frames} frames of each clip ({where}; ../shared/data/clips/val, as they are: no added "
        f"damage), each cut to its centre {args.crop} (or less where a side is shorter), x4; every model on the "
        f"default engine, as `vsr run` runs it; realsr+stabilize at the default strength. NIQE on frames 0, "
        f"{args.niqe_every}, {2 * args.niqe_every}, ... of each clip (4 px border cropped); flicker over the pixels "
        f"where the blurred bicubic source changes by under {STILL:g} level, leaving out pairs across a scene cut "
        f"(cuts found: {cut_note}). Lower is better for all but detail; compare models within a clip (NIQE "
        "depends on the content). See the script's docstring.",
        "", *lines, "",
    ])


if __name__ == "__main__":
    main()
