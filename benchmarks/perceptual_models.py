"""Perceptual models side by side: fidelity, no-reference quality and flicker, on clean and on damaged input.

    python benchmarks/perceptual_models.py --frames 30 --crop 640x360 [--write]

Runs `vsr bench` on the held-out natural camera clips (../shared/data/clips/val/natural; first N frames,
centre crop) for bicubic, frvsr, frvsr-real, tecogan, and realsr with and without --stabilize, once on BI x4
input and once on real-world-damaged input (blur, resizing, noise, H.264/JPEG; seeded per clip), and prints
one table per input: PSNR-Y and SSIM-Y against the ground truth, NIQE (no reference; lower is more natural,
the ground truth's own beside it), tOF and the flow-warping error (lower is steadier), the detail ratio and
frames/s. Each `vsr bench` run's JSON is kept beside the table (--json-dir). With --crops, one picture per
input of the most detailed region of a frame, side by side for every model (benchmarks/perceptual_crops_*.png).
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2
import numpy as np
from results_file import describe_cpu, write_section

from vsr.bench.clips import find_clips
from vsr.metrics import grey

VAL = ROOT.parent / "shared" / "data" / "clips" / "val" / "natural"
HEADING = "## Perceptual models side by side (benchmarks/perceptual_models.py)"
PLAIN = ("bicubic-matlab", "frvsr", "frvsr-real", "tecogan")
STABILISED = "realsr"  # run with and without --stabilize
COLUMNS = "| model | PSNR-Y | SSIM-Y | NIQE | tOF | warping error (x1e-3) | detail | frames/s |"


def bench(models: tuple[str, ...], degradation: str, args: argparse.Namespace, json_path: Path,
          extra: tuple[str, ...] = ()) -> dict:
    """One `vsr bench` run, its JSON read back."""
    command = [sys.executable, "-m", "vsr", "bench", "--gt", str(args.gt), "--frames", str(args.frames),
               "--crop", args.crop, "--degradation", degradation, "--niqe", "--niqe-every", str(args.niqe_every),
               "--json", str(json_path), "--overwrite", "--quiet", *extra]
    for model in models:
        command += ["--model", model]
    print(" ".join(command[2:]), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    return json.loads(json_path.read_text())


def detail_crops(saved: dict[str, Path], degradation: str, args: argparse.Namespace, target: Path,
                 box: int = 128, zoom: int = 2) -> None:
    """The most detailed box x box region (by the ground truth's Laplacian) of the middle frame of the first clip:
    the input enlarged by nearest neighbour, each model, the ground truth, side by side and labelled."""
    clip = find_clips(args.gt, None, 4, degradation, args.frames, tuple(map(int, args.crop.split("x"))))[0]
    index = args.frames // 2
    gt_frames = list(clip.gt_frames())
    gt, lr = gt_frames[index], list(clip.lr_frames(iter(gt_frames)))[index]
    y, x = most_detailed_box(gt, box)
    tiles = [("input (nearest)", cv2.resize(lr, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST))]
    for model, frames_dir in saved.items():
        image = cv2.imread(str(frames_dir / clip.name / f"{index:08d}.png"), cv2.IMREAD_COLOR)
        tiles.append((model, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)))
    tiles.append(("ground truth", gt))
    row = [labelled_tile(label, cv2.resize(image[y:y + box, x:x + box], None, fx=zoom, fy=zoom,
                                           interpolation=cv2.INTER_NEAREST))
           for label, image in tiles]
    cv2.imwrite(str(target), cv2.cvtColor(np.hstack(row), cv2.COLOR_RGB2BGR))
    print(f"wrote {target} ({clip.name}, frame {index}, region x={x} y={y}, {box}x{box} shown at {zoom}x)",
          file=sys.stderr)


def most_detailed_box(image: np.ndarray, box: int) -> tuple[int, int]:
    """(top, left) of the box x box region of an 8-bit RGB `image` with the most Laplacian energy."""
    energy = cv2.boxFilter(np.abs(cv2.Laplacian(grey(image), cv2.CV_32F)), -1, (box, box), normalize=True)
    half = box // 2
    inner = energy[half:image.shape[0] - box + half + 1, half:image.shape[1] - box + half + 1]
    top, left = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return int(top), int(left)


def labelled_tile(label: str, crop: np.ndarray) -> np.ndarray:
    """`crop` on a white margin with `label` written above it: one tile of a side-by-side picture."""
    canvas = np.full((crop.shape[0] + 24, crop.shape[1] + 4, 3), 255, np.uint8)
    canvas[24:, 2:-2] = crop
    cv2.putText(canvas, label, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def rows(results: list[dict]) -> list[str]:
    lines = [COLUMNS, "|---|---|---|---|---|---|---|---|"]
    for result in results:
        for name, model in result["models"].items():
            m = model["mean"]
            warp = "-" if m["warping_error"] is None else f"{m['warping_error'] * 1e3:.3f}"
            tof = "-" if m["tof"] is None else f"{m['tof']:.3f}"
            lines.append(f"| {name} | {m['psnr_y']:.2f} | {m['ssim_y']:.4f} | {m['niqe']:.3f} | {tof} | {warp} | "
                         f"{m['detail']:.3f} | {m['fps']:.2f} |")
    truth = results[0]["ground_truth"]["mean"]["niqe"]
    lines.append(f"| ground truth | - | - | {truth:.3f} | - | - | - | - |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gt", type=Path, default=VAL)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--crop", default="640x360")
    parser.add_argument("--niqe-every", type=int, default=3)
    parser.add_argument("--json-dir", type=Path, default=None, help="keep each bench run's JSON here")
    parser.add_argument("--models", default=",".join(PLAIN), help="the models run once each (realsr is added, "
                        "with and without --stabilize)")
    parser.add_argument("--crops", action="store_true", help="write benchmarks/perceptual_crops_<input>.png")
    parser.add_argument("--write", action="store_true", help="record the tables in benchmarks/RESULTS.md")
    args = parser.parse_args()
    if not args.gt.exists():
        sys.exit(f"{args.gt} is absent: this benchmark needs the team's media folder (or --gt)")
    folder = args.json_dir or Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)

    tables = []
    for degradation, title in (("BI", "BI x4 (clean) input"), ("realworld", "real-world-damaged input")):
        runs = [(tuple(args.models.split(",")), "models", ()), ((STABILISED,), STABILISED, ("--stabilize",))]
        results, saved = [], {}
        for models, label, extra in runs:
            frames_dir = folder / f"{degradation}_{label}_frames"
            saving = ("--save-frames", str(frames_dir)) if args.crops else ()
            results.append(bench(models, degradation, args, folder / f"{degradation}_{label}.json",
                                 (*extra, *saving)))
            saved.update({name: frames_dir / name for name in results[-1]["models"]})
        if args.crops:
            detail_crops(saved, degradation, args, ROOT / "benchmarks" / f"perceptual_crops_{degradation.lower()}.png")
        tables += [f"{title}:", "", *rows(results), ""]
        print("\n".join(tables[-(len(args.models.split(",")) + 6):]), file=sys.stderr, flush=True)

    command = (f"python benchmarks/perceptual_models.py --frames {args.frames} --crop {args.crop} "
               f"--niqe-every {args.niqe_every}")
    section = "\n".join([
        HEADING, "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- cpu: {describe_cpu()}",
        f"- command: `{command}`",
        f"- input: first {args.frames} frames of each clip of {args.gt.name} (held out from all training), centre "
        f"{args.crop} ground truth, x4; every model on the default engine (`--backend auto`). NIQE on "
        f"frames 0, {args.niqe_every}, {2 * args.niqe_every}, ... of each clip, 4 px border cropped; tOF and "
        "warping error as `vsr bench` (lower is steadier); detail is the variance of the Laplacian of Y against the ground truth's (1.0: as much fine detail, "
        "below: blurrier, above: noisier or over-sharpened).",
        "", *tables,
    ])
    print(section)
    if args.write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", HEADING, section)


if __name__ == "__main__":
    main()
