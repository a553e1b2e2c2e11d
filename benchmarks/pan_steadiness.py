"""How much each model's output wavers on a pan whose motion is known exactly.

tOF compares the Farneback flow of the output with that of the ground truth. On fine texture that a model
invents rather than restores, Farneback's own errors differ from the truth's, so tOF rises even where the
texture moves steadily with the scene. Here the motion is known: a 640x360 window moves over the first frame
of each clips/val/natural clip by whole high-res pixels (`--speed` right and 0.4 of that down per frame), so
every ground-truth frame is an exact crop, and a perfectly steady output satisfies

    output[t](y, x) == output[t-1](y + dy, x + dx)

The pan error is the mean absolute difference of the two sides, in 8-bit levels, over the interior (a 16-px
border dropped) and the second half of the frames (recurrent models are past their first frames). The
truth's own pan error is 0. At the default 5 px a frame the input's pixel grid moves 1.25 px across and
0.5 px down each frame, so its phase changes and even bicubic upscaling, which invents nothing, wavers where
the input aliases: bicubic's row is the reference for an output with no texture of its own.

The low-res input is made as `vsr bench --degradation` makes it: BI (MATLAB's bicubic) or realworld (the
damage seeded by the clip's name). Every model but bicubic is also shown with `--stabilize` at its default
strength (the flow on the model's input frames, as `vsr run` does). Alongside: PSNR-Y, tOF and the detail ratio as
`vsr bench` scores them, and the pan error and tOF as multiples of `frvsr-real`'s (issue 21's target for
`tecogan`: tOF at most 1.2x frvsr-real's).

With --crops, benchmarks/pan_steadiness_crops.jpg shows a patch of lawn from the clean juggling pan's last
frame for every version, above its pan error there (8x, white = 32 levels or more).

    python benchmarks/pan_steadiness.py [--frames 16] [--speed 5] [--weights tecogan=runs/x/best.safetensors]
        [--write] [--crops]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import av
import cv2
import numpy as np
import torch
from results_file import describe_cpu, write_section
from stabilize_effect import SCALE, VAL_DIR, as_frames, score, upscale
from stabilize_pan import shrunk

from vsr.backends.choice import choose_engine
from vsr.models.zoo import build_model
from vsr.ops.dis_flow import DisFlow
from vsr.pipeline.stabilize import Stabilization, stabilize_frames
from vsr.pipeline.stabilize_defaults import DEFAULT_STRENGTH
from vsr.realworld import clip_seed, degrade_realworld_stream

HEADING = "## Steadiness on an exact pan (benchmarks/pan_steadiness.py)"
CLIPS = ("highway_1080p", "sam2_juggle_720p")
CROP = (640, 360)
BORDER = 16
MODELS = ("bicubic", "frvsr", "frvsr-real", "tecogan", "tecogan-clean", "realesr-animevideov3", "realsr")
# Each of these also gets a --stabilize row: the stage is for per-frame models, but a pan shows what it does
# for the recurrent ones too.
STABILIZED = tuple(name for name in MODELS if name != "bicubic")
REFERENCE = "frvsr-real"
CROP_PAN = ("sam2_juggle_720p", "BI")  # --crops: the clean juggling pan, where the models differ most
CROP_BOX = (160, 0, 135, 240)  # top, left, height, width: the lawn at the left of the frame
CROPS_FILE = ROOT / "benchmarks" / "pan_steadiness_crops.jpg"


def panned(clip: str, speed: int, frames: int) -> list[np.ndarray]:
    """Crops of the clip's first frame by a window moving `speed` px right and `down(speed)` px down per frame."""
    with av.open(str(VAL_DIR / f"{clip}.mp4")) as container:
        image = next(container.decode(video=0)).to_ndarray(format="rgb24")
    height, width = image.shape[:2]
    top, left = (height - CROP[1]) // 2, (width - CROP[0]) // 2
    if left + speed * frames > width - CROP[0] or top + down(speed) * frames > height - CROP[1]:
        raise SystemExit(f"{clip}: a pan of {frames} frames at {speed} px a frame leaves the frame")
    return [np.ascontiguousarray(image[top + down(speed) * index:top + down(speed) * index + CROP[1],
                                       left + speed * index:left + speed * index + CROP[0]])
            for index in range(frames)]


def down(speed: int) -> int:
    return round(0.4 * speed)


def pan_error(images: list[np.ndarray], speed: int) -> float:
    """Mean |image[t] - image[t-1] moved along the pan| in 8-bit levels, over the second half of the frames."""
    dx, dy = speed, down(speed)
    errors = []
    for previous, current in zip(images[len(images) // 2 - 1:], images[len(images) // 2:]):
        now = current[BORDER:-BORDER - dy, BORDER:-BORDER - dx].astype(np.float32)
        before = previous[BORDER + dy:-BORDER, BORDER + dx:-BORDER].astype(np.float32)
        errors.append(float(np.abs(now - before).mean()))
    return float(np.mean(errors))


def low_res(targets: list[np.ndarray], degradation: str, clip: str) -> list[np.ndarray]:
    if degradation == "realworld":
        return list(degrade_realworld_stream(iter(targets), SCALE, clip_seed(clip)))
    return [shrunk(target) for target in targets]


def versions(args: argparse.Namespace, models: tuple[str, ...] = MODELS) -> list[tuple[str, str, str | None]]:
    """(row label, model, weights or None) for every model to run: `--model`'s (else `models`), `--weights`'."""
    rows = [(name, name, None) for name in args.model or models]
    for spec in args.weights:
        name, _, path = spec.partition("=")
        if not name or not path:
            raise SystemExit(f"--weights {spec}: expected MODEL=PATH")
        rows.append((f"{name} ({path})", name, path))
    return rows


def labels(rows: list[tuple[str, str, str | None]]) -> list[str]:
    """The table's rows in order: each model run, and after each of STABILIZED its stabilised version."""
    result = []
    for label, _, _ in rows:
        result += [label, f"{label} --stabilize"] if label in STABILIZED else [label]
    return result


def pan_arguments(description: str, models: tuple[str, ...]) -> argparse.ArgumentParser:
    """The options of the benchmarks that pan over clips/val/natural (this one and history_use.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--speed", type=int, default=5, help="high-res pixels a frame, rightwards (whole pixels)")
    parser.add_argument("--model", action="append", default=None, help=f"repeatable; default {', '.join(models)}")
    parser.add_argument("--weights", action="append", default=[], metavar="MODEL=PATH",
                        help="an extra row: MODEL with these weights (repeatable)")
    parser.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    return parser


def checked_pan_arguments(parser: argparse.ArgumentParser, least_frames: int, why: str) -> argparse.Namespace:
    """The parsed options, refused with one line if the pan cannot be run."""
    args = parser.parse_args()
    if args.frames < least_frames:
        parser.error(f"--frames must be at least {least_frames}: {why}")
    if args.speed < 1:
        parser.error("--speed must be at least 1 (whole pixels): a still window has no pan to follow")
    if not VAL_DIR.is_dir():
        sys.exit(f"{VAL_DIR} is absent: this benchmark needs the team's media folder")
    return args


def main() -> None:
    parser = pan_arguments(__doc__.split("\n\n")[0], MODELS)
    parser.add_argument("--crops", action="store_true", help=f"write {CROPS_FILE.relative_to(ROOT)}")
    args = checked_pan_arguments(parser, 6, "tOF (TecoGAN's frame pairs) needs six frames of a clip")
    cpu = torch.device("cpu")
    rows = versions(args)
    engines = {label: choose_engine(build_model(name, SCALE, weights=weights), "auto", cpu, "auto").model
               for label, name, weights in rows}
    results: dict[tuple[str, str], list[dict]] = {}
    truth_errors = []
    last_pairs: dict[str, list[np.ndarray]] = {}  # per version: the last two frames of the clean juggling pan
    for clip in CLIPS:
        targets = panned(clip, args.speed, args.frames)
        truth_errors.append(pan_error(targets, args.speed))
        for degradation in ("BI", "realworld"):
            inputs = as_frames(low_res(targets, degradation, clip))
            for label, _, _ in rows:
                outputs = upscale(engines[label], inputs)
                versions_of = {label: outputs}
                if label in STABILIZED:
                    versions_of[f"{label} --stabilize"] = list(stabilize_frames(
                        iter(outputs), Stabilization(DisFlow(), DEFAULT_STRENGTH), cpu, SCALE, inputs=iter(inputs)))
                for version, frames in versions_of.items():
                    scores = score(frames, targets)
                    scores["pan_error"] = pan_error([frame.image for frame in frames], args.speed)
                    results.setdefault((degradation, version), []).append(scores)
                    if (clip, degradation) == CROP_PAN:
                        last_pairs[version] = [frame.image for frame in frames[-2:]]
            print(f"{clip} ({degradation}): done", file=sys.stderr)
    section = render(results, labels(rows), args, max(truth_errors))
    print(section)
    if args.write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", HEADING, section)
    if args.crops:
        write_crops(last_pairs, panned(CROP_PAN[0], args.speed, args.frames)[-2:], args.speed)


def write_crops(last_pairs: dict[str, list[np.ndarray]], truth: list[np.ndarray], speed: int) -> None:
    """Each version's last frame of the clean juggling pan over its pan error there (x8), on the lawn."""
    top, left, height, width = CROP_BOX
    tiles = []
    for label, (previous, current) in [*last_pairs.items(), ("ground truth", truth)]:
        dx, dy = speed, down(speed)
        error = np.zeros(current.shape[:2], np.float32)  # the last row and column the pan leaves out stay 0
        error[:-dy or None, :-dx] = np.abs(current[:-dy or None, :-dx].astype(np.float32)
                                           - previous[dy:, dx:].astype(np.float32)).mean(axis=2)
        error_image = np.repeat(np.clip(8 * error, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
        column = np.vstack([current[top:top + height, left:left + width],
                            error_image[top:top + height, left:left + width]])
        canvas = np.full((column.shape[0] + 24, column.shape[1] + 4, 3), 255, np.uint8)
        canvas[24:, 2:-2] = column
        cv2.putText(canvas, label, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(canvas)
    rows = [np.hstack(tiles[index:index + 4]) for index in range(0, len(tiles), 4)]
    rows[-1] = np.hstack([rows[-1], np.full((rows[0].shape[0], rows[0].shape[1] - rows[-1].shape[1], 3), 255,
                                            np.uint8)])
    cv2.imwrite(str(CROPS_FILE), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    print(f"wrote {CROPS_FILE}", file=sys.stderr)


def render(results: dict[tuple[str, str], list[dict]], rows: list[str], args: argparse.Namespace,
           truth_error: float) -> str:
    def mean(degradation: str, label: str, key: str) -> float:
        return float(np.mean([clip[key] for clip in results[(degradation, label)]]))

    lines = [HEADING, "",
             f"{describe_cpu()}; the first frame of {' and '.join(CLIPS)} seen through a {CROP[0]}x{CROP[1]} window "
             f"moving {args.speed} px right and {down(args.speed)} px down a frame ({args.frames} frames; "
             f"{args.speed / SCALE:g} and {down(args.speed) / SCALE:g} input pixels), x{SCALE}; the truth's own pan "
             f"error is {truth_error:.2f}. Pan error: mean |output[t] - output[t-1] moved along the pan| in 8-bit "
             f"levels, second half of the frames; lower is steadier. Each model on the engine `vsr run` picks "
             f"(OpenVINO where it can); --stabilize at {DEFAULT_STRENGTH:g}.",
             f"Reproduce: `python benchmarks/pan_steadiness.py --frames {args.frames} --speed {args.speed}`.", "",
             f"| input | model | PSNR-Y | pan error (per clip) | x {REFERENCE} | tOF (per clip) | x {REFERENCE} "
             "| detail |",
             "|---|---|---|---|---|---|---|---|"]
    for degradation in ("BI", "realworld"):
        has_reference = (degradation, REFERENCE) in results
        for label in rows:
            per_clip = results[(degradation, label)]
            cells = [degradation, label, f"{mean(degradation, label, 'psnr_y'):.2f}"]
            for key in ("pan_error", "tof"):
                clips = " / ".join(f"{clip[key]:.3f}" for clip in per_clip)
                value = mean(degradation, label, key)
                ratio = f"{value / mean(degradation, REFERENCE, key):.2f}" if has_reference else "-"
                cells += [f"{value:.3f} ({clips})", ratio]
            cells.append(f"{mean(degradation, label, 'detail'):.3f}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
