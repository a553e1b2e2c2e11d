"""What a training step of each candidate model costs on this machine, side by side in one run.

The shipped models are trained on CPUs, so the cost of a step decides how far training gets per hour. Each
candidate runs the same kind of step `vsr train` runs (forward with flows, Charbonnier + warping loss,
backward, Adam) on random clips of the shape its config trains on, with and without channels-last weights;
the figures are seconds per step (median of `--repeats`) and GFLOP per step, and the ratios between rows
are what to read on a shared, noisy machine.

    python benchmarks/training_step_cost.py --threads 1 --write
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch
from results_file import write_section
from torch.utils.flop_counter import FlopCounterMode

from vsr.models.basicvsrpp import BasicVSRPlusPlus
from vsr.models.frvsr import FRVSR
from vsr.models.srvgg import SRVGGNetCompact
from vsr.train.losses import charbonnier_loss, warping_loss

HEADING = "## Training: cost of a step (benchmarks/training_step_cost.py)"
# name: (constructor, (batch, frames, low-res crop)) as the configs in configs/ train them, plus alternatives.
CANDIDATES = {
    "FRVSR c64n10 (configs/frvsr_bi_x4)": (lambda: FRVSR(64, 10), (4, 7, 32)),
    "FRVSR c32n5": (lambda: FRVSR(32, 5), (4, 7, 32)),
    "BasicVSR++ c32n4 hr16 (configs/basicvsrpp_small_bi_x4)": (
        lambda: BasicVSRPlusPlus(32, 4, hr_channels=16, deform_groups=8), (2, 5, 64)),
    "BasicVSR++ c32n4 hr16, 32 px crops": (
        lambda: BasicVSRPlusPlus(32, 4, hr_channels=16, deform_groups=8), (4, 7, 32)),
    "SRVGG compact 64x16 (per frame)": (lambda: SRVGGNetCompact(64, 16), (4, 7, 32)),
}


def step_cost(build, shape: tuple[int, int, int], channels_last: bool, repeats: int) -> tuple[float, float]:
    """(median seconds, GFLOP) of one training step."""
    torch.manual_seed(0)
    model = build()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters())
    batch, frames, crop = shape
    lr, hr = torch.rand(batch, frames, 3, crop, crop), torch.rand(batch, frames, 3, 4 * crop, 4 * crop)

    def step() -> None:
        if hasattr(model, "forward_with_flows"):
            sr, flows = model.forward_with_flows(lr)
            loss = charbonnier_loss(sr, hr) + warping_loss(lr[:, :-1], lr[:, 1:], flows)
        else:
            loss = charbonnier_loss(model(lr), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up: allocator and oneDNN primitives
    with FlopCounterMode(display=False) as counter:
        step()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        step()
        times.append(time.perf_counter() - tic)
    return statistics.median(times), counter.get_total_flops() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name, (build, shape) in CANDIDATES.items():
        plain, gflop = step_cost(build, shape, False, args.repeats)
        nhwc, _ = step_cost(build, shape, True, args.repeats)
        rows.append((name, shape, gflop, plain, nhwc))
        print(f"{name}: {plain:.2f} s, channels-last {nhwc:.2f} s, {gflop:.0f} GFLOP", file=sys.stderr)
    base = rows[0][4]
    lines = [HEADING, "",
             (f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {args.threads} thread(s), "
             f"median of {args.repeats}. Reproduce: `python benchmarks/training_step_cost.py --threads "
             f"{args.threads}`."), "",
             ("| candidate | batch x frames x LR crop | GFLOP/step | s/step | s/step channels-last | "
             "channels-last speed-up | cost vs FRVSR c64n10 |"), "|---|---|---|---|---|---|---|"]
    for name, (b, t, c), gflop, plain, nhwc in rows:
        lines.append(f"| {name} | {b} x {t} x {c}px | {gflop:.0f} | {plain:.2f} | {nhwc:.2f} | "
                     f"{plain / nhwc:.2f}x | {nhwc / base:.2f} |")
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        write_section(Path(__file__).with_name("RESULTS.md"), HEADING, section)


if __name__ == "__main__":
    main()
