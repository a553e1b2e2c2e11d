"""What windows cost a bidirectional model: frames computed per frame output, frames/s, and how far the
frames are from one window over the whole clip.

Three ways to cut the same clip for basicvsrpp-small (or another windowed model): the old default, windows of
8 frames with 6 context frames on each side; windows of 8 with the forward branches' state carried from one
window to the next (look-ahead only); and `--chunk auto`, the new default, the largest window that fits half
the free memory (a short clip is one window). Then, for longer clips at several input sizes, the window
`--chunk auto` picks on this machine and the overhead that gives.

    python benchmarks/window_overhead.py [--clip PATH] [--frames 24] [--crop 720x576] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
import torch
from results_file import describe_cpu, write_section
from torch import nn

from vsr.bench.clips import find_clips
from vsr.io.frames import Frame
from vsr.metrics import psnr
from vsr.models.zoo import build_model
from vsr.pipeline.inference import upscale_frames
from vsr.pipeline.tiles import tiled_pixel_ratio
from vsr.pipeline.window_size import WindowStats, free_bytes, plan_windows

HEADING = "## Window overhead of bidirectional models (benchmarks/window_overhead.py)"
DEFAULT_CLIP = ROOT.parent / "shared" / "data" / "clips" / "val" / "natural" / "sam2_juggle_720p.mp4"
LONG_CLIP_SIZES = [(180, 144), (320, 180), (640, 360), (1280, 720), (1920, 1080)]  # low-res width x height


class WithoutCarry(nn.Module):
    """The model as windows ran it before the carry: no forward_window, so context frames on both sides."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        for name in ("scale", "context_frames", "size_multiple", "streams", "half_safe"):
            setattr(self, name, getattr(model, name))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.model(lr)


def run(model: nn.Module, images: list[np.ndarray], chunk) -> tuple[list[np.ndarray], WindowStats, float]:
    stats = WindowStats()
    frames = (Frame(image, index, 1) for index, image in enumerate(images))
    started = time.perf_counter()
    outputs = [frame.image for frame in upscale_frames(frames, model, torch.device("cpu"), chunk=chunk, stats=stats)]
    return outputs, stats, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--model", default="basicvsrpp-small")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--crop", default="720x576", help="centre WxH of the ground truth (low-res is a quarter)")
    parser.add_argument("--budget-gb", type=float, default=None,
                        help="the memory budget of the long-clip table (default: half of what is free here)")
    parser.add_argument("--write", action="store_true", help="record the tables in benchmarks/RESULTS.md")
    args = parser.parse_args()
    if not args.clip.exists():
        sys.exit(f"{args.clip} is absent: this benchmark needs the team's media folder (or --clip)")

    width, height = map(int, args.crop.split("x"))
    clip = find_clips(args.clip, None, 4, "BI", args.frames, (width, height))[0]
    gt = list(clip.gt_frames())
    lr = list(clip.lr_frames(iter(gt)))
    model = build_model(args.model, 4).eval()
    run(model, lr[:2], 2)  # warm-up: first-call costs out of the timings

    settings = [(f"--chunk 8, {model.context_frames} context frames each side (before)", WithoutCarry(model), 8),
                (f"--chunk 8, {model.context_frames} of look-ahead, forward state carried", model, 8),
                ("--chunk auto (the default)", model, "auto")]
    results = {label: run(network, lr, chunk) for label, network, chunk in settings}
    whole = results[settings[-1][0]]
    if whole[1].plan.size < len(lr):  # auto did not take the clip as one window: make the reference
        whole = run(model, lr, len(lr))
    rows = ["| windows | core frames | frames computed per frame output | frames/s | max difference from one "
            "window, 8-bit levels | PSNR-Y dB |", "|---|---|---|---|---|---|"]
    for label, (outputs, stats, seconds) in results.items():
        difference = max(int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(outputs, whole[0]))
        score = np.mean([psnr(o, g, crop_border=4) for o, g in zip(outputs, gt)])
        rows.append(f"| {label} | {stats.plan.size} | {stats.overhead:.2f} | {len(lr) / seconds:.3f} | "
                    f"{difference} | {score:.3f} |")
        print(rows[-1], file=sys.stderr, flush=True)

    budget = None if args.budget_gb is None else int(args.budget_gb * 2**30)
    budget_note = (f"half of the {free_bytes(torch.device('cpu')) / 2**30:.1f} GB free here" if budget is None
                   else f"a {args.budget_gb:g} GB budget")
    long_rows = ["| low-res input | window --chunk auto picks | tiles it picks | frames computed per frame output "
                 "on a long clip | pixels computed per pixel output (tile overlaps) | work against whole frames in "
                 "one window |", "|---|---|---|---|---|---|"]
    for lr_width, lr_height in LONG_CLIP_SIZES:
        plan = plan_windows(model, "auto", lr_height, lr_width, torch.device("cpu"), budget=budget)
        pixels = tiled_pixel_ratio(lr_height, lr_width, plan.tile, 16, model.size_multiple)
        tiles = f"{plan.tile} px (whole frames: windows of {plan.whole_frame_size})" if plan.tile else "none"
        long_rows.append(f"| {lr_width}x{lr_height} | {plan.size} | {tiles} | {plan.frame_overhead:.3f} | "
                         f"{pixels:.3f} | {plan.frame_overhead * pixels:.3f} |")
        print(long_rows[-1], file=sys.stderr, flush=True)

    command = (f"python benchmarks/window_overhead.py --frames {args.frames} --crop {args.crop}"
               + ("" if args.clip == DEFAULT_CLIP else f" --clip {args.clip}")
               + ("" if args.model == "basicvsrpp-small" else f" --model {args.model}")
               + ("" if args.budget_gb is None else f" --budget-gb {args.budget_gb:g}"))
    section = "\n".join([
        HEADING, "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- cpu: {describe_cpu()}; load average {os.getloadavg()[0]:.1f} at the end (other work on the machine "
        "slows frames/s; the frame counts do not depend on it)",
        f"- command: `{command}`",
        f"- input: first {len(lr)} frames of {args.clip.name}, centre {args.crop} ground truth, BI x4 to "
        f"{width // 4}x{height // 4}; {args.model}; scene cuts on; frames/s is the pipeline's, end to end in memory",
        "", *rows, "",
        f"Longer clips: the window `--chunk auto` picks for {args.model} on this machine ({budget_note}); a clip "
        "or shot shorter than the window runs as one, at 1.0. Where whole frames fit only a short window, auto "
        "takes tiles (16-pixel overlap) if they cost less work in all.", "",
        *long_rows,
    ])
    print(section)
    if args.write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", HEADING, section)


if __name__ == "__main__":
    main()
