"""What `vsr run --compile` buys: steady frames/s of compiled against eager inference, and what compiling costs.

Each (model, variant) runs in a fresh child process over the same frames through the pipeline's own inference
path (`upscale_frames`: stepwise for streaming models, windows for the others), with the bundled weights and the
model set up as `vsr run` sets it up (`prepare_model`). The first pass includes compilation (cold: the child
disables torch's on-disk compile caches, so the figure is what a first run on a new machine pays; later runs
reuse the cache and pay less); the second pass, timed on its own, is the steady speed. On a GPU the compiled
variant uses CUDA graphs, as `vsr run --compile` does there. No decoding or encoding: the figures are the
model's and the pipeline's.

    python benchmarks/compile_speedup.py                  # frvsr and basicvsrpp-small, 320x180 input, 16 frames
    python benchmarks/compile_speedup.py --write          # and record it in benchmarks/RESULTS.md
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
HEADING = "## torch.compile against eager (benchmarks/compile_speedup.py)"
VARIANTS = ("eager", "compiled")


def measure_one(model_name: str, variant: str, device_name: str, frames: int, width: int, height: int) -> dict:
    """Run in the child: two passes over the same frames; the first pays for compilation."""
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))
    from vsr.io.frames import Frame
    from vsr.models.zoo import build_model
    from vsr.pipeline.inference import upscale_frames
    from vsr.pipeline.job import prepare_model

    device = torch.device(device_name)
    model = prepare_model(build_model(model_name, 4), device, compile_model=variant == "compiled", cuda_graphs=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height + frames, width + frames, 3), dtype=np.uint8)
    clip = [Frame(base[i:i + height, i:i + width].copy(), i, Fraction(1, 25)) for i in range(frames)]

    def one_pass() -> float:
        started = time.perf_counter()
        for _ in upscale_frames(clip, model, device, scene_cuts=False):
            pass
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    first = one_pass()
    steady = one_pass()
    return {"first_s": first, "fps": frames / steady}


def run_child(model_name: str, variant: str, device: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", model_name, variant, device, "--frames", str(args.frames),
               "--size", args.size]
    environment = dict(os.environ, TORCHINDUCTOR_FORCE_DISABLE_CACHES="1")
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=environment, check=False)
    if done.returncode != 0:
        return {"error": f"exit status {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="frvsr,basicvsrpp-small")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", default="320x180", help="input WxH (default 320x180, 1280x720 out)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda where there is one)")
    parser.add_argument("--write", action="store_true", help="record the results in benchmarks/RESULTS.md")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    if args.child:
        print(json.dumps(measure_one(*args.child, args.frames, width, height)))
        return

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda":
        device_name = f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA graphs when compiled"
    else:
        device_name = describe_cpu()
    rows = [("| model | eager frames/s | compiled frames/s | speed-up | first pass eager, s | "
             "first pass compiled, s |"), "|---|---|---|---|---|---|"]
    for model_name in args.models.split(","):
        eager, compiled = (run_child(model_name, variant, device, args) for variant in VARIANTS)
        if "error" in eager or "error" in compiled:
            rows.append(f"| {model_name} | {eager.get('error', '')} | {compiled.get('error', '')} | | | |")
        else:
            rows.append(f"| {model_name} | {eager['fps']:.2f} | {compiled['fps']:.2f} | "
                        f"{compiled['fps'] / eager['fps']:.2f}x | {eager['first_s']:.1f} | {compiled['first_s']:.1f} |")
        print(rows[-1], flush=True)
    section = "\n".join([
        HEADING, "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- device: {device}, {device_name}",
        (f"- command: `python benchmarks/compile_speedup.py --models {args.models} --frames {args.frames} "
         f"--size {args.size} --device {device}`"),
        (f"- input: {args.frames} frames of {width}x{height} (random texture panning one pixel a frame), x4, "
         "through the pipeline's inference path with the bundled weights; each variant in a fresh process. "
         "Frames/s: the second pass. First pass: with compilation, torch's compile caches disabled (a first run "
         "on a new machine)."),
        "",
        *rows,
    ])
    if args.write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", HEADING, section)


if __name__ == "__main__":
    main()
