"""Learning curves of training runs side by side: validation PSNR-Y gain over bicubic against CPU hours.

Which model gives the most quality per hour of compute is the question that decides where training time
goes, so the x axis is compute, not steps: each run's own seconds per step (train_log.csv) times the number
of threads it ran with. Reads runs/*/train_log.csv and val_log.csv as `vsr train` writes them.

    python benchmarks/training_curves.py runs/frvsr_bi_x4 runs/basicvsrpp_small_bi_x4 --threads 1 --write
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

HEADING = "## Training: quality per CPU hour (benchmarks/training_curves.py)"
PLOT = Path(__file__).with_name("training_curves.png")


def read(path: Path) -> list[dict]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def curve(run: Path, threads: int) -> list[tuple[int, float, float]]:
    """(step, CPU hours, mean PSNR-Y gain over bicubic) at each validation of the run."""
    train_rows = read(run / "train_log.csv")
    val_rows = read(run / "val_log.csv")
    hours, previous_step, elapsed = {}, 0, 0.0
    for row in train_rows:
        step = int(row["step"])
        if row.get("cpu_seconds_per_step"):  # the process's own CPU time: what a pause or a neighbour can't inflate
            per_step = float(row["cpu_seconds_per_step"])
        else:  # older logs: wall time times threads (as logged, or as told on the command line)
            per_step = float(row["seconds_per_step"]) * int(row.get("threads") or threads)
        elapsed += (step - previous_step) * per_step / 3600
        hours[step], previous_step = elapsed, step
    points = []
    for step in sorted({int(r["step"]) for r in val_rows}):
        rows = [r for r in val_rows if int(r["step"]) == step]
        gain = sum(float(r["psnr_y"]) - float(r["bicubic_psnr_y"]) for r in rows) / len(rows)
        at = max((s for s in hours if s <= step), default=0)
        points.append((step, hours.get(at, 0.0), gain))
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads, for logs that do not record them")
    parser.add_argument("--write", action="store_true", help="record in RESULTS.md and draw the PNG")
    args = parser.parse_args()
    curves = {run.name: curve(run, args.threads) for run in args.runs}
    lines = [HEADING, "",
             ("Mean validation PSNR-Y gain over MATLAB bicubic (dB; first 10 frames of each clips/val clip, centre "
             f"640x360) against CPU hours ({args.threads} thread(s) per run; seconds per step from train_log.csv)."),
             (f"Reproduce: `python benchmarks/training_curves.py {' '.join(str(r) for r in args.runs)} "
             f"--threads {args.threads}`; plot: `benchmarks/{PLOT.name}`."), "",
             "| run | step | CPU hours | gain (dB) |", "|---|---|---|---|"]
    for name, points in curves.items():
        lines += [f"| {name} | {step} | {hours:.2f} | {gain:+.2f} |" for step, hours, gain in points]
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        sys.path.insert(0, str(Path(__file__).parent))
        from results_file import write_section

        write_section(Path(__file__).with_name("RESULTS.md"), HEADING, section)
        draw(curves)


def draw(curves: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for name, points in curves.items():
        axes.plot([p[1] for p in points], [p[2] for p in points], marker="o", label=name)
    axes.axhline(0, color="grey", ls="--", label="bicubic")
    axes.axhline(1, color="grey", ls=":", label="target (+1 dB)")
    axes.set(xlabel="CPU hours", ylabel="PSNR-Y gain over bicubic (dB)", title="clips/val, BI x4")
    axes.legend()
    figure.tight_layout()
    figure.savefig(PLOT, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    main()
