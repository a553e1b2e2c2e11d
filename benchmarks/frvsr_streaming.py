"""Streaming inference of the FRVSR/TecoGAN generator: frames/s, per-frame latency, and memory against length.

Frames go through the pipeline's stepwise path (`upscale_frames`, the path `vsr run --model tecogan` takes),
fed by a generator, as a live source would feed them; no decoding or encoding, so the figures are the model's
and the pipeline's own. Latency is the time from handing in a frame to getting its output frame back. Each
measurement runs in a child process, so that its peak RSS is its own; memory is measured at two lengths
(N and 2N frames) in the same run, and their ratio shows whether memory grows with the length of the stream.
Random weights: speed does not depend on them.

    python benchmarks/frvsr_streaming.py                 # 180x320 input, 16 and 32 frames
    python benchmarks/frvsr_streaming.py --write         # and record it in benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

from results_file import describe_cpu, write_section

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## FRVSR/TecoGAN streaming (benchmarks/frvsr_streaming.py)"
CONFIGS = {"c64n10": (64, 10), "c32n5": (32, 5)}  # name: (mid_channels, num_blocks); c64n10 is TecoGAN's release
WARM_UP = 2  # frames left out of the timing: the first has no history, and the allocator settles


def measure_one(config: str, device: str, precision: str, frames: int, height: int, width: int) -> dict:
    """Run in the child: stream `frames` random frames and time each output's arrival."""
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))
    from vsr.io.frames import Frame
    from vsr.models.frvsr import FRVSR
    from vsr.pipeline.inference import upscale_frames

    channels, blocks = CONFIGS[config]
    model = FRVSR(channels, blocks).eval().to(device)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(4)]
    handed_in: list[float] = []

    def source():
        for index in range(frames):
            handed_in.append(time.perf_counter())
            yield Frame(images[index % len(images)], index, Fraction(1, 25))

    latencies, arrivals = [], []
    for frame in upscale_frames(source(), model, torch.device(device), scene_cuts=False, precision=precision):
        if device == "cuda":
            torch.cuda.synchronize()
        arrivals.append(time.perf_counter())
        latencies.append(arrivals[-1] - handed_in[frame.pts])
    steady = latencies[WARM_UP:]
    result = {"fps": (len(arrivals) - 1 - WARM_UP) / (arrivals[-1] - arrivals[WARM_UP]),
              "latency_ms": 1000 * float(np.mean(steady)), "latency_p95_ms": 1000 * float(np.percentile(steady, 95)),
              "parameters": sum(p.numel() for p in model.parameters())}
    if device == "cuda":
        result["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def run_child(args: argparse.Namespace, config: str, device: str, precision: str, frames: int) -> dict:
    command = [sys.executable, __file__, "--child", config, device, precision, "--frames", str(frames),
               "--size", args.size]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return {"error": f"exit status {os.waitstatus_to_exitcode(status)}"}
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mib"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16, help="N: streams of N and 2N frames are measured")
    parser.add_argument("--size", default="180x320", help="input HxW (default 180x320)")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--write", action="store_true", help="record the results in benchmarks/RESULTS.md")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    height, width = map(int, args.size.split("x"))
    if args.child:
        print(json.dumps(measure_one(*args.child, args.frames, height, width)))
        return

    import torch

    runs = [("cpu", "fp32")]
    if torch.cuda.is_available():
        runs += [("cuda", "fp32"), ("cuda", "fp16")]
    device_names = {"cpu": describe_cpu()}
    if torch.cuda.is_available():
        device_names["cuda"] = torch.cuda.get_device_name()
    rows = ["| config | parameters | device | precision | frames/s | latency ms (mean, p95) | "
            f"peak RSS MiB, {args.frames} / {2 * args.frames} frames | ratio | GPU peak MiB |",
            "|---|---|---|---|---|---|---|---|---|"]
    for device, precision in runs:
        for config in args.configs.split(","):
            short = run_child(args, config, device, precision, args.frames)
            long = run_child(args, config, device, precision, 2 * args.frames)
            if "error" in short or "error" in long:
                rows.append(f"| {config} | | {device} | {precision} | {short.get('error') or long.get('error')} "
                            "| | | | |")
            else:
                rows.append(f"| {config} | {long['parameters']:,} | {device} | {precision} | {long['fps']:.2f} | "
                            f"{long['latency_ms']:.0f}, {long['latency_p95_ms']:.0f} | "
                            f"{short['peak_rss_mib']:.0f} / {long['peak_rss_mib']:.0f} | "
                            f"{long['peak_rss_mib'] / short['peak_rss_mib']:.3f} | {long.get('gpu_peak_mib', 0):.0f} |")
            print(rows[-1], flush=True)
    section = "\n".join([
        HEADING, "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        *[f"- {device}: {name}" for device, name in device_names.items()],
        f"- command: `python benchmarks/frvsr_streaming.py --frames {args.frames} --size {args.size}`",
        f"- input: a stream of {width}x{height} frames (random), x4, through the pipeline's stepwise path; "
        f"frames/s and latency over the {2 * args.frames}-frame stream after {WARM_UP} warm-up frames; "
        "random weights",
        "- target: memory independent of the stream's length, i.e. the peak RSS ratio of the 2N-frame "
        "stream to the N-frame one close to 1.00", "",
        *rows,
    ])
    if args.write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", HEADING, section)


if __name__ == "__main__":
    main()
