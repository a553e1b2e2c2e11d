"""BasicVSR++ inference speed and peak memory: the published c64n7 and two small configurations, with the
pure-torch deformable convolution and torchvision's (where it imports), on the CPU and on a GPU if present.

Each measurement runs in a child process of its own, so that its peak RSS is its own (read with os.wait4).
Random weights: speed does not depend on them.

    python benchmarks/basicvsrpp_speed.py                   # 180x320 input, 6 frames, print the table
    python benchmarks/basicvsrpp_speed.py --write           # and record it in benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from results_file import describe_cpu, write_section

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## BasicVSR++ speed (benchmarks/basicvsrpp_speed.py)"
CONFIGS = {"c64n7": (64, 7), "c32n4": (32, 4), "c16n2": (16, 2)}  # name: (mid_channels, num_blocks)


def measure_one(config: str, backend: str, device: str, frames: int, height: int, width: int) -> dict:
    """Run in the child: build, warm up on two frames, then time one forward over `frames` frames."""
    import torch

    sys.path.insert(0, str(ROOT))
    import vsr.ops.deform_conv as deform_conv
    from vsr.models.basicvsrpp import BasicVSRPlusPlus

    if deform_conv.deform_conv_backend() != backend:  # the parent sets VSR_DEFORM_CONV=torch for "torch"
        return {"error": f"{backend} is not usable here"}

    channels, blocks = CONFIGS[config]
    model = BasicVSRPlusPlus(channels, blocks).eval().to(device)
    clip = torch.rand(1, frames, 3, height, width, device=device)
    with torch.inference_mode():
        model(clip[:, :2])
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        model(clip)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    result = {"fps": frames / seconds, "seconds": seconds,
              "parameters": sum(p.numel() for p in model.parameters())}
    if device == "cuda":
        result["gpu_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def run_child(args: argparse.Namespace, config: str, backend: str, device: str) -> dict:
    command = [sys.executable, __file__, "--child", config, backend, device, "--frames", str(args.frames),
               "--size", args.size]
    environment = {**os.environ, "VSR_DEFORM_CONV": backend}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environment)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return {"error": f"exit status {os.waitstatus_to_exitcode(status)}"}
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mib"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=6)
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

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    device_names = {"cpu": describe_cpu()}
    if "cuda" in devices:
        device_names["cuda"] = torch.cuda.get_device_name()
    rows = ["| config | parameters | device | deformable conv | frames/s | s per clip | peak RSS MiB | GPU peak MiB |",
            "|---|---|---|---|---|---|---|---|"]
    for device in devices:
        for config in args.configs.split(","):
            for backend in ("torch", "torchvision"):
                r = run_child(args, config, backend, device)
                if "error" in r:
                    rows.append(f"| {config} | | {device} | {backend} | {r['error']} | | | |")
                else:
                    rows.append(f"| {config} | {r['parameters']:,} | {device} | {backend} | {r['fps']:.3f} | "
                                f"{r['seconds']:.1f} | {r['peak_rss_mib']:.0f} | {r.get('gpu_peak_mib', 0):.0f} |")
                print(rows[-1], flush=True)
    section = "\n".join([
        HEADING, "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        *[f"- {device}: {name}" for device, name in device_names.items()],
        f"- command: `python benchmarks/basicvsrpp_speed.py --frames {args.frames} --size {args.size}`",
        f"- input: {args.frames} frames of {width}x{height} (random), x4; one forward over the clip after a "
        "two-frame warm-up; fp32; random weights", "",
        *rows,
    ])
    if args.write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", HEADING, section)


if __name__ == "__main__":
    main()
