"""End-to-end frames/s of `vsr run` as a user runs it, with and without `--realtime` (and `--compile`).

For each output size, a synthetic 30 frames/s H.264 source of a quarter that size is upscaled x4 by `vsr run`
in a fresh process, once per variant:

- `default`: `vsr run` with no speed options (fp16 on a GPU for half-safe models, libx264);
- `fp32`: `--precision fp32`, the baseline the others are compared with in the same run;
- `realtime`: `--realtime`, which picks the precision and, on a GPU, NVENC from a measurement on the first
  frames and says whether it keeps up;
- `realtime+compile`: the same with torch.compile (CUDA graphs on a GPU).

The frames/s are `vsr run`'s own (decode, inference and encode overlapped, after the model is loaded and the
realtime measurement is done); the wall time adds process start, model loading, compiling and measuring.

    python benchmarks/realtime_end_to_end.py                                  # GPU: 960x540 .. 3840x2160
    python benchmarks/realtime_end_to_end.py --sizes 320x180 --frames 8 --variants fp32,realtime   # a CPU
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch
from pipeline_overlap import make_source
from results_file import write_section

HEADING = "## End-to-end `vsr run --realtime`, {model} (benchmarks/realtime_end_to_end.py)"
VARIANTS = {
    "default": [],
    "fp32": ["--precision", "fp32"],
    "realtime": ["--realtime"],
    "realtime+compile": ["--realtime", "--compile"],
}
SOURCE_FPS = 30
REPORT = re.compile(r"(\d+) frames in [\d.]+ s \(([\d.]+) fps\)")


@dataclass
class Outcome:
    fps: float | None  # vsr run's own figure; None when it failed
    wall: float
    said: str  # the realtime line, or the error


def run_variant(source: Path, target: Path, model: str, flags: list[str], device: str) -> Outcome:
    command = [sys.executable, "-m", "vsr", "run", str(source), "-o", str(target), "--model", model,
               "--device", device, "--overwrite", "--quiet", *flags]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - started
    lines = (done.stdout + done.stderr).splitlines()
    realtime = next((line.split("realtime: ", 1)[1] for line in lines if "realtime: " in line), "")
    match = REPORT.search(done.stdout)
    if done.returncode != 0 or match is None:
        return Outcome(None, wall, (lines[-1] if lines else f"exit {done.returncode}")[:160])
    return Outcome(float(match.group(2)), wall, realtime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="frvsr")
    parser.add_argument("--sizes", default="960x540,1920x1080,3840x2160", help="output WxH list; the input is a quarter, rounded down to even sides")
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"from {', '.join(VARIANTS)}")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for size in args.sizes.split(","):
            width, height = (int(side) // 8 * 2 for side in size.split("x"))  # H.264 4:2:0 needs even sides
            size = f"{4 * width}x{4 * height}"
            source = work / f"source_{size}.mp4"
            make_source(source, args.frames, width, height, rate=SOURCE_FPS)
            for name in variants:
                outcome = run_variant(source, work / "out.mp4", args.model, VARIANTS[name], args.device)
                rows.append((size, name, outcome))
                print(f"{size} {name}: {outcome}", flush=True)
    section = render(args, rows)
    print(section)
    if args.write:
        write_section(Path(__file__).with_name("RESULTS.md"), HEADING.format(model=args.model), section)


def render(args: argparse.Namespace, rows: list[tuple[str, str, Outcome]]) -> str:
    if torch.cuda.is_available() and args.device != "cpu":
        device = f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    else:
        device = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    lines = [HEADING.format(model=args.model), "",
             (f"{datetime.date.today()}, {device}, torch {torch.__version__}; synthetic {SOURCE_FPS} frames/s H.264 "
              f"sources of {args.frames} frames, x4. frames/s: `vsr run`'s own (decode, inference, encode); "
              "wall: the whole process, loading, compiling and the realtime measurement included."),
             (f"Reproduce: `python benchmarks/realtime_end_to_end.py --model {args.model} --sizes {args.sizes} "
              f"--frames {args.frames} --variants {args.variants}`."),
             "", "| output size | variant | frames/s | / fp32 | wall s | what --realtime said |", "|---|---|---|---|---|---|"]
    baseline = {size: outcome.fps for size, name, outcome in rows if name == "fp32"}
    for size, name, outcome in rows:
        fps = f"{outcome.fps:.1f}" if outcome.fps is not None else "failed"
        base = baseline.get(size)
        ratio = f"{outcome.fps / base:.2f}" if outcome.fps and base else "-"
        lines.append(f"| {size} | {name} | {fps} | {ratio} | {outcome.wall:.1f} | {outcome.said or '-'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
