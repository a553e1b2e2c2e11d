"""Frames/s against resolution, end to end and model alone, through `vsr bench --speed-sizes`.

Runs the `vsr bench` command itself (so the figure is what a user gets from it) on a few frames of a
clips/val clip, times each model at several low-res sizes on synthetic frames, and records the table, with
the plot `vsr bench --plots` draws, in benchmarks/RESULTS.md and benchmarks/bench_plots/.

    python benchmarks/speed_vs_resolution.py [--sizes 160x90,320x180,480x270] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from results_file import write_section

HEADING = "## Frames/s against resolution (benchmarks/speed_vs_resolution.py)"
CLIP = ROOT.parent / "shared" / "data" / "clips" / "val" / "bikes.mp4"
MODELS = ["bicubic", "bicubic-matlab", "frvsr", "realesr-animevideov3"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="160x90,320x180,480x270", help="low-res sizes WxH,...")
    parser.add_argument("--frames", type=int, default=3, help="frames timed per size")
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--write", action="store_true", help="record the table and plot in benchmarks/")
    args = parser.parse_args()
    if not CLIP.is_file():
        sys.exit(f"{CLIP} is absent: this benchmark needs the team's media folder")
    models = args.model or MODELS
    with tempfile.TemporaryDirectory() as work:
        command = [sys.executable, "-m", "vsr", "bench", "--gt", str(CLIP), "--frames", "6", "--no-temporal",
                   "--speed-sizes", args.sizes, "--speed-frames", str(args.frames), "--json", f"{work}/r.json",
                   "--plots", f"{work}/plots", "--quiet", *(f"--model={m}" for m in models)]
        subprocess.run(command, check=True, cwd=ROOT)
        report = json.loads(Path(work, "r.json").read_text())
        if args.write:
            shutil.copyfile(Path(work, "plots", "fps_vs_resolution.png"),
                            Path(__file__).with_name("fps_vs_resolution.png"))
    sizes = args.sizes.split(",")
    lines = [HEADING, "",
             (f"{datetime.date.today()}, {platform.processor() or platform.machine()}, CPU (no GPU in this "
              f"session); x4; {args.frames} synthetic frames per size after a 2-frame warm-up; frames/s of the "
              "`vsr run` pipeline without file I/O, model alone in brackets. Reproduce: "
              f"`python benchmarks/speed_vs_resolution.py --sizes {args.sizes} --frames {args.frames}`; "
              "plot: benchmarks/fps_vs_resolution.png."), "",
             "| model | " + " | ".join(f"{s} -> {_out(s)}" for s in sizes) + " | peak RSS MB at the largest |",
             "|" + "---|" * (len(sizes) + 2)]
    for name, entry in report["models"].items():
        cells = " | ".join(f"{p['fps']:.2f} ({p['fps_model']:.2f})" for p in entry["speed"])
        lines.append(f"| {name} | {cells} | {entry['speed'][-1]['peak_mem_mb']:.0f} |")
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        write_section(Path(__file__).with_name("RESULTS.md"), HEADING, section)


def _out(size: str) -> str:
    width, height = (int(v) for v in size.split("x"))
    return f"{4 * width}x{4 * height}"


if __name__ == "__main__":
    main()
