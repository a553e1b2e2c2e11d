"""The diffusion refiner on the held-out clips: what it costs and what it gives, with and without coupling.

Each row runs the base model (the shipped FRVSR by default) over `../shared/data/clips/val` (BI x4, centre
crop), then the refiner as `vsr run --refine diffusion` does, and scores the result with `vsr bench`:
PSNR-Y / SSIM-Y (fidelity), the detail ratio (variance of the Laplacian of Y against the ground truth's: a
sharpness proxy that needs no downloaded network; 1 is the ground truth's detail, below 1 blurrier), tOF and
the flow-warping error (temporal consistency, lower is steadier). Coupling 0 refines every frame on its own
from fresh noise: the control for the temporal coupling.

    python benchmarks/refiner_quality.py --weights runs/refiner_small_x4/final.safetensors
    python benchmarks/refiner_quality.py --frames 10 --write      # the bundled refiner; into RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch
from results_file import write_section

from vsr.bench.clips import find_clips
from vsr.bench.report import model_mean
from vsr.bench.runner import Settings, bench_model
from vsr.models.refiner import Sampling
from vsr.models.zoo import build_model, build_refiner
from vsr.pipeline.refinement import Refinement

HEADING = "## Diffusion refiner on clips/val (benchmarks/refiner_quality.py)"
VAL_DIR = ROOT.parent / "shared" / "data" / "clips" / "val"
SCALE = 4
# (label, sampling): the default, the uncoupled control, gentler and stronger starts, and a single step.
ROWS = [
    ("4 steps, strength 0.4, coupling 0.5 (default)", Sampling(steps=4, strength=0.4, coupling=0.5)),
    ("4 steps, strength 0.4, coupling 0 (independent frames)", Sampling(steps=4, strength=0.4, coupling=0.0)),
    ("4 steps, strength 0.25, coupling 0.5", Sampling(steps=4, strength=0.25, coupling=0.5)),
    ("4 steps, strength 0.6, coupling 0.5", Sampling(steps=4, strength=0.6, coupling=0.5)),
    ("1 step, strength 0.4, coupling 0.5", Sampling(steps=1, strength=0.4, coupling=0.5)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10, help="first N frames of each clip")
    parser.add_argument("--crop", default="640x360", help="centre crop WxH of the high-res frames")
    parser.add_argument("--base", default="frvsr", help="the zoo model the refiner follows")
    parser.add_argument("--weights", type=Path, default=None, help="refiner weights (default: the bundled ones)")
    parser.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    args = parser.parse_args()
    if not VAL_DIR.is_dir():
        sys.exit(f"{VAL_DIR} is absent: this benchmark needs the team's media folder")

    clips = find_clips(VAL_DIR, None, SCALE, "BI", args.frames, tuple(map(int, args.crop.split("x"))))
    base = build_model(args.base, SCALE)
    refiner = build_refiner(args.weights)
    cpu = torch.device("cpu")
    results = [(args.base, None, bench_model(args.base, base, clips, Settings(cpu)))]
    for label, sampling in ROWS:
        settings = Settings(cpu, refinement=Refinement(refiner, sampling))
        result = bench_model(label, base, clips, settings, lambda line: print(line, file=sys.stderr))
        results.append((f"{args.base} + refiner, {label}", sampling, result))
        print(f"{label}: done", file=sys.stderr)

    section = render(results, args)
    print(section)
    if args.write:
        write_section(Path(__file__).with_name("RESULTS.md"), HEADING, section)


def render(results, args: argparse.Namespace) -> str:
    weights = args.weights or "the bundled refiner_small_x4"
    lines = [HEADING, "",
             (f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
              f"threads; first {args.frames} frames of each clip, centre crop {args.crop}, BI x4; refiner: "
              f"{weights}. Detail: variance of the Laplacian of Y over the ground truth's (1 = as detailed). "
              "Cost: seconds per frame that each refiner step adds to the base model's."),
             (f"Reproduce: `python benchmarks/refiner_quality.py --frames {args.frames} --crop {args.crop}"
              f"{f' --weights {args.weights}' if args.weights else ''}`."),
             "", "| run | PSNR-Y | SSIM-Y | detail | tOF | warping error (x1e-3) | frames/s | s/frame per step |",
             "|---|---|---|---|---|---|---|---|"]
    base_seconds = 1.0 / model_mean(results[0][2])["fps"]
    for name, sampling, result in results:
        mean = model_mean(result)
        cost = "-" if sampling is None else f"{(1.0 / mean['fps'] - base_seconds) / sampling.steps:.2f}"
        lines.append(f"| {name} | {mean['psnr_y']:.2f} | {mean['ssim_y']:.4f} | {mean['detail']:.3f} | "
                     f"{mean['tof']:.3f} | {mean['warping_error'] * 1e3:.3f} | {mean['fps']:.2f} | {cost} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
