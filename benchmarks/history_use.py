"""What the recurrence of each frame-recurrent model adds: its output with its history against without it.

FRVSR and TecoGAN feed each frame's network the previous output, moved onto the frame along the motion. If
the network has learned to use it, the history adds detail the one low-res frame lacks (sub-pixel motion
shows the scene at new phases), averages away noise, and holds texture steady as the camera moves. Here each
model runs twice on the same frames: stepping as `vsr run` does, and with every frame started from no history
(the first frame's zeros). The difference is what the recurrence contributes.

Two inputs per clips/val/natural clip, each BI (MATLAB's bicubic) and realworld-damaged as `vsr bench
--degradation` makes them: the clip's own first frames (its own motion; centre 640x352, a multiple of 8 for
the models with an FNet), and an exact pan over its first frame as benchmarks/pan_steadiness.py makes it
(`--speed` px right and 0.4 of that down a frame), where the pan error (mean |out[t] - out[t-1] moved along
the pan|, 8-bit levels) says how steady the output holds. Scores are over the second half of the frames,
past the recurrence's first steps. The models run on torch in fp32, so that only the network differs.

    python benchmarks/history_use.py [--frames 16] [--speed 5] [--weights frvsr=runs/x/best.safetensors] [--write]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
import torch
from pan_steadiness import CLIPS, checked_pan_arguments, low_res, pan_arguments, pan_error, panned, versions
from results_file import describe_cpu, write_section
from stabilize_effect import SCALE, VAL_DIR

from vsr.bench.clips import find_clips
from vsr.metrics import psnr
from vsr.models.frvsr import FRVSR
from vsr.models.zoo import build_model

HEADING = "## What the recurrence adds (benchmarks/history_use.py)"
MODELS = ("frvsr", "frvsr-real", "tecogan")
CROP = (640, 352)  # width, height: FNet pools three times, so the low-res sides are multiples of 8
BORDER = 4  # as `vsr bench` crops for PSNR


def clip_frames(clip: str, degradation: str, frames: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The clip's first frames (centre crop) and their low-res input, as `vsr bench` makes them."""
    (bench_clip,) = find_clips(VAL_DIR / f"{clip}.mp4", None, SCALE, degradation, frames, CROP)
    targets = list(bench_clip.gt_frames())
    return targets, list(bench_clip.lr_frames(targets))


def pan_frames(clip: str, degradation: str, frames: int, speed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """An exact pan over the clip's first frame (pan_steadiness.py's, cut to CROP) and its low-res input."""
    targets = [np.ascontiguousarray(frame[:CROP[1], :CROP[0]]) for frame in panned(clip, speed, frames)]
    return targets, low_res(targets, degradation, clip)


def run_both_ways(model: torch.nn.Module, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """8-bit outputs stepping with the history, and with every frame started from none."""
    recurrent, alone, state = [], [], None
    with torch.inference_mode():
        for image in inputs:
            frame = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
            output, state = model.step(frame, state)
            recurrent.append(to_8bit(output))
            alone.append(to_8bit(model.step(frame, None)[0]))
    return recurrent, alone


def to_8bit(output: torch.Tensor) -> np.ndarray:
    return output[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()


def mean_psnr(outputs: list[np.ndarray], targets: list[np.ndarray]) -> float:
    """PSNR-Y over the second half of the frames."""
    half = len(targets) // 2
    return float(np.mean([psnr(output, target, crop_border=BORDER) for output, target in
                          zip(outputs[half:], targets[half:])]))


def main() -> None:
    parser = pan_arguments(__doc__.split("\n\n")[0], MODELS)
    args = checked_pan_arguments(parser, 4, "the scores are over the second half, past the first steps")
    rows = versions(args, MODELS)
    models = {label: build_model(name, SCALE, weights=weights).eval() for label, name, weights in rows}
    if any(not isinstance(model, FRVSR) for model in models.values()):
        sys.exit("history_use.py compares frame-recurrent models (frvsr, frvsr-real, tecogan) only")
    results: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    for clip in CLIPS:
        for degradation in ("BI", "realworld"):
            inputs = {"clip": clip_frames(clip, degradation, args.frames),
                      "pan": pan_frames(clip, degradation, args.frames, args.speed)}
            for kind, (targets, low) in inputs.items():
                for label, model in models.items():
                    recurrent, alone = run_both_ways(model, low)
                    scores = {"psnr": mean_psnr(recurrent, targets), "psnr_alone": mean_psnr(alone, targets)}
                    if kind == "pan":
                        scores |= {"pan": pan_error(recurrent, args.speed), "pan_alone": pan_error(alone, args.speed)}
                    results.setdefault((kind, degradation, label), []).append(scores)
            print(f"{clip} ({degradation}): done", file=sys.stderr)
    section = render(results, [label for label, _, _ in rows], args)
    print(section)
    if args.write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", HEADING, section)


def render(results: dict[tuple[str, str, str], list[dict[str, float]]], labels: list[str],
           args: argparse.Namespace) -> str:
    lines = [HEADING, "",
             f"{describe_cpu()}; {' and '.join(CLIPS)}, x{SCALE}, torch fp32; 'clip': the clip's first "
             f"{args.frames} frames, centre {CROP[0]}x{CROP[1]}; 'pan': its first frame under a window moving "
             f"{args.speed} px right and {round(0.4 * args.speed)} px down a frame ({args.frames} frames). 'with' "
             "steps as `vsr run` does; 'without' starts every frame from no history. PSNR-Y (dB) and pan error "
             "(8-bit levels, lower is steadier) over the second half of the frames; per clip in brackets.",
             f"Reproduce: `python benchmarks/history_use.py --frames {args.frames} --speed {args.speed}`.", "",
             "| input | model | PSNR-Y with | without | gain (per clip) | pan error with | without | change |",
             "|---|---|---|---|---|---|---|---|"]
    for kind in ("clip", "pan"):
        for degradation in ("BI", "realworld"):
            for label in labels:
                per_clip = results[(kind, degradation, label)]
                with_history = np.mean([clip["psnr"] for clip in per_clip])
                without = np.mean([clip["psnr_alone"] for clip in per_clip])
                gains = " / ".join(f"{clip['psnr'] - clip['psnr_alone']:+.2f}" for clip in per_clip)
                cells = [f"{degradation} {kind}", label, f"{with_history:.2f}", f"{without:.2f}",
                         f"{with_history - without:+.2f} ({gains})"]
                if kind == "pan":
                    steady, alone = (np.mean([clip[key] for clip in per_clip]) for key in ("pan", "pan_alone"))
                    cells += [f"{steady:.3f}", f"{alone:.3f}", f"{steady / alone - 1:+.0%}"]
                else:
                    cells += ["-", "-", "-"]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
