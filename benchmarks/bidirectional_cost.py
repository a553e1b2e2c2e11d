"""What a bidirectional model's flows alone cost, against a whole step of the streaming default (issue 18).

BasicVSR-style models (our BasicVSR++ included) estimate an optical flow from every frame to each of its two
neighbours with SPyNet: two flow estimates per output frame. FRVSR estimates one flow with its own small
network and reconstructs. This times, side by side in one process and interleaved (the machine is shared and
noisy), on torch at the same precision: two SPyNet flows at the input size, one whole FRVSR step, and one
whole frame of basicvsrpp-small in a window. If the two flows alone cost more than a whole FRVSR step, no
bidirectional model of that design can run at FRVSR's cost, however small its other parts.

    python benchmarks/bidirectional_cost.py --size 320x180 --rounds 5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import interleaved_medians  # noqa: E402
from vsr.models.zoo import build_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="320x180", help="low-res WxH")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--window", type=int, default=8, help="frames of the basicvsrpp-small window")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    torch.manual_seed(0)
    frvsr, bidirectional = build_model("frvsr").eval(), build_model("basicvsrpp-small").eval()
    frames = torch.rand(1, args.window, 3, height, width)
    a, b = frames[:, 0], frames[:, 1]
    # FRVSR takes sizes on its multiple (the pipeline pads): 320x180 runs at 320x192
    multiple = frvsr.size_multiple
    padded = torch.rand(1, 3, -(-height // multiple) * multiple, -(-width // multiple) * multiple)
    _, state = frvsr.step(padded, None)
    calls = {
        "two SPyNet flows (one output frame of a bidirectional model)":
            lambda: (bidirectional.spynet(a, b), bidirectional.spynet(b, a)),
        "one FRVSR step (flow, warp, reconstruction)": lambda: frvsr.step(padded, state),
        f"basicvsrpp-small, per frame of a {args.window}-frame window": lambda: bidirectional(frames),
    }
    with torch.inference_mode():
        seconds = interleaved_medians(calls, args.rounds)
    seconds[f"basicvsrpp-small, per frame of a {args.window}-frame window"] /= args.window
    step = seconds["one FRVSR step (flow, warp, reconstruction)"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {width}x{height} in, median of "
          f"{args.rounds} interleaved rounds")
    print("| what | ms per output frame | / one FRVSR step |")
    print("|---|---|---|")
    for name, median in seconds.items():
        print(f"| {name} | {1000 * median:.0f} | {median / step:.2f}x |")


if __name__ == "__main__":
    main()
