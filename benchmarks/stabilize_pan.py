"""`--stabilize` where the camera moves: a per-frame model's flicker on a pan, with DIS and with our SPyNet.

The clips of clips/val/natural barely move at the input's size (their mean flow is 0.1-0.4 px a frame), so
the main table ("Flicker control") cannot tell a flow that follows the camera from one that returns nothing.
Here the first frame of each clip is panned (a cubic warp of the high-res frame: 1 input pixel a frame on
highway_1080p, 1.5 on sam2_juggle_720p, with a third of that downwards), centre-cropped to 640x360, shrunk by
MATLAB's bicubic to the input, upscaled by realsr and stabilised:

- `DIS` is the flow `vsr run --stabilize` uses (vsr/ops/dis_flow.py);
- `SPyNet` is the flow network trained inside our BasicVSR++ (`spynet_before_dis`), which the stage used
  before session 10: it had learned no motion (benchmarks/RESULTS.md, "Motion").

tOF and warping error as `vsr bench` (lower is steadier); dPSNR-Y against the unstabilised output.

    python benchmarks/stabilize_pan.py [--frames 16] [--write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import av
import cv2
import numpy as np
import torch
from results_file import describe_cpu, write_section
from stabilize_effect import SCALE, VAL_DIR, as_frames, parse_checked, score, upscale

from vsr.backends.choice import choose_engine
from vsr.degradations import bicubic_downsample
from vsr.models.spynet import SPyNet
from vsr.models.weights import load_state_dict
from vsr.models.zoo import WEIGHTS_DIR, build_model, load_into
from vsr.ops.dis_flow import DisFlow
from vsr.pipeline.stabilize import Stabilization, StabilizerStats, stabilize_frames

HEADING = "## Flicker control on a pan (benchmarks/stabilize_pan.py)"
PANS = {"highway_1080p": 1.0, "sam2_juggle_720p": 1.5}  # input pixels a frame, rightwards
CROP = (640, 360)


def panned(clip: str, speed: float, frames: int) -> list[np.ndarray]:
    """The clip's first frame seen by a camera panning `speed` input pixels a frame (and a third of that down)."""
    with av.open(str(VAL_DIR / f"{clip}.mp4")) as container:
        image = next(container.decode(video=0)).to_ndarray(format="rgb24")
    height, width = image.shape[:2]
    top, left = (height - CROP[1]) // 2, (width - CROP[0]) // 2
    shifted = []
    for index in range(frames):
        step = SCALE * speed * index
        matrix = np.float32([[1, 0, -step], [0, 1, -step / 3]])
        moved = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REFLECT_101)
        shifted.append(np.ascontiguousarray(moved[top:top + CROP[1], left:left + CROP[0]]))
    return shifted


def shrunk(image: np.ndarray) -> np.ndarray:
    """The high-res frame shrunk by MATLAB's bicubic, as `vsr bench --degradation BI` does."""
    small = bicubic_downsample(torch.from_numpy(image).permute(2, 0, 1).float() / 255, SCALE).clamp(0, 1)
    return (small.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # clamped: no wrap past 255


def spynet_before_dis() -> SPyNet:
    """The SPyNet trained inside our small BasicVSR++ (its weights under `spynet.`), the stage's flow before DIS."""
    path = WEIGHTS_DIR / "basicvsrpp_small_bi_x4.safetensors"
    network = SPyNet()
    load_into(network, {key.removeprefix("spynet."): value for key, value in load_state_dict(path).items()
                        if key.startswith("spynet.")}, path)
    return network.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--strength", type=float, default=0.5)
    parser.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    args = parse_checked(parser)
    cpu = torch.device("cpu")
    model = choose_engine(build_model("realsr", SCALE), "auto", cpu, "auto").model
    flows = {"DIS": DisFlow(), "SPyNet (before)": spynet_before_dis()}
    rows: dict[str, list[dict]] = {"off": [], **{name: [] for name in flows}}
    trust = {name: StabilizerStats() for name in flows}
    seconds = dict.fromkeys(flows, 0.0)
    for clip, speed in PANS.items():
        targets = panned(clip, speed, args.frames)
        inputs = as_frames([shrunk(target) for target in targets])
        outputs = upscale(model, inputs)
        rows["off"].append(score(outputs, targets))
        for name, flow in flows.items():
            start = time.perf_counter()
            stabilized = list(stabilize_frames(iter(outputs), Stabilization(flow, args.strength), cpu, SCALE,
                                               stats=trust[name], inputs=iter(inputs)))
            seconds[name] += time.perf_counter() - start
            rows[name].append(score(stabilized, targets))
        print(f"{clip}: done", file=sys.stderr)
    base = {key: float(np.mean([clip[key] for clip in rows["off"]])) for key in ("psnr_y", "tof", "warping_error")}
    lines = [HEADING, "",
             f"{describe_cpu()}; realsr on OpenVINO; the first frame of each clips/val/natural clip panned "
             f"({', '.join(f'{clip} {speed:g} px a frame' for clip, speed in PANS.items())}), {args.frames} frames,"
             f" centre {CROP[0]}x{CROP[1]}, x{SCALE}; strength {args.strength:g}.",
             f"Reproduce: `python benchmarks/stabilize_pan.py --frames {args.frames}`.", "",
             "| flow | tOF (per clip) | dtOF | dPSNR-Y | warping error (x1e-3) | trusted | stabiliser frames/s |",
             "|---|---|---|---|---|---|---|"]
    for name, per_clip in rows.items():
        mean = {key: float(np.mean([clip[key] for clip in per_clip])) for key in base}
        warping = f"{1000 * mean['warping_error']:.3f}"
        if name in flows:
            cells = [f"{100 * (mean['tof'] / base['tof'] - 1):+.0f}%", f"{mean['psnr_y'] - base['psnr_y']:+.2f}",
                     warping, f"{trust[name].mean_trust:.2f}", f"{len(PANS) * args.frames / seconds[name]:.1f}"]
        else:
            cells = ["-", "-", warping, "-", "-"]
        clips = " / ".join(f"{clip['tof']:.3f}" for clip in per_clip)
        tof = f"{mean['tof']:.3f} ({clips})"
        lines.append("| " + " | ".join([name, tof, *cells]) + " |")
    section = "\n".join(lines)
    print(section)
    if args.write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", HEADING, section)


if __name__ == "__main__":
    main()
