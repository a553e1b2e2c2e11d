"""`vsr batch` throughput on the CPU with one worker process and with two, side by side.

A folder of short synthetic clips is upscaled by `vsr batch --jobs 1` and `--jobs 2` (fresh output folders,
so nothing is skipped), interleaved over a few repeats so that a busy spell on a shared machine falls on both
alike. With N workers each process gets 1/N of the CPU threads: two workers pay off when one process cannot
keep both cores busy (decode, encode and Python between the model's calls leave them idle).

    python benchmarks/batch_throughput.py                      # frvsr, 6 clips of 24 frames at 160x90
    python benchmarks/batch_throughput.py --model bicubic --write
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline_overlap import make_source
from results_file import write_section

HEADING = "## vsr batch throughput on the CPU, 1 and 2 workers (benchmarks/batch_throughput.py)"


def run_batch(source: Path, target: Path, model: str, jobs: int) -> float:
    shutil.rmtree(target, ignore_errors=True)
    command = [sys.executable, "-m", "vsr", "batch", str(source), str(target), "--model", model, "--jobs", str(jobs),
               "--quiet"]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="frvsr")
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", default="160x90", help="low-res WxH of each clip")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    times: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for index in range(args.clips):
            make_source(work / "in" / f"clip{index}.mp4", args.frames, width, height)
        for _ in range(args.repeats):
            for jobs in (1, 2):
                times[jobs].append(run_batch(work / "in", work / f"out{jobs}", args.model, jobs))
    section = render(args, times)
    print(section)
    if args.write:
        write_section(Path(__file__).with_name("RESULTS.md"), HEADING, section)


def render(args: argparse.Namespace, times: dict[int, list[float]]) -> str:
    frames = args.clips * args.frames
    median = {jobs: statistics.median(values) for jobs, values in times.items()}
    lines = [HEADING, "",
             (f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
              f"model {args.model}, {args.clips} synthetic H.264 clips of {args.frames} frames at {args.size}, x4; "
              f"wall time of the whole `vsr batch` command (start-up included), medians of {args.repeats}."),
             (f"Reproduce: `python benchmarks/batch_throughput.py --model {args.model} --clips {args.clips} "
              f"--frames {args.frames} --size {args.size} --repeats {args.repeats}`."),
             "", "| workers | median s | all s | files/min | frames/s |", "|---|---|---|---|---|"]
    for jobs in (1, 2):
        lines.append(f"| {jobs} | {median[jobs]:.1f} | {', '.join(f'{v:.1f}' for v in times[jobs])} | "
                     f"{60 * args.clips / median[jobs]:.1f} | {frames / median[jobs]:.2f} |")
    lines += ["", f"Throughput with 2 workers / with 1: {median[1] / median[2]:.2f}x."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
