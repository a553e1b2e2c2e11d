"""`--stabilize` on per-frame models: how much flicker (tOF) it removes and what it costs in PSNR-Y and detail.

Each model runs once per clip of `../shared/data/clips/val/natural` (centre crop, x4, degraded as `vsr bench
--degradation` does: BI, or realworld with its damage seeded by the clip's name), as `vsr run` does; its
outputs are then stabilised at several strengths as `vsr run --stabilize --stabilize-strength S` does (the
flow on the model's low-res inputs), and
every version is scored as `vsr bench` scores (PSNR-Y against the ground truth, the detail ratio, tOF, the
flow-warping error), averaged over clips (each clip counts once). The issue's target: tOF down by at least a
third, PSNR-Y down by at most 0.3 dB against the model's own unstabilised output.

A third input, `--degradation noise`, keeps only realworld's per-frame noise (the same amount, drawn the same
way; no blur, no extra resize, no codec): there the noise reaches the output as flicker, as it does not
through the codec of these clips' realworld damage.

Three more rows per model and degradation bound what any such stage could do:
- "truth's flow": the previous output blended in at strength 0.5 along the ground truth's own Farneback flow
  (the flow tOF compares with), everywhere, with no checks: a flow no estimator on the outputs can match;
- "no noise" (realworld only): the model on the same damage without its per-frame noise, unstabilised: the
  flicker that noise causes is all a stabiliser can remove;
- "frvsr (temporal)": our recurrent model on the same input, which carries its own output from frame to
  frame: the tOF a model with memory reaches there. Where the per-frame model's tOF is already at it, what
  tOF still counts is not flicker (fast motion the flow of the output and of the truth disagree on).

A second table gives the cost where there is no flicker to remove: the first ground-truth frame of each clip
panned sideways by a fraction of a pixel per frame (bicubic, 16 frames), shrunk x4, and upscaled with bicubic
(a model with no flicker at all), stabilised at each strength; dPSNR-Y against the unstabilised frames, mean
of frames 8-15. A pan under the stage's `still_flow` (0.1 px per frame at the input's size) is blended as if
nothing moved, and only the drift check stops the carried frame from dragging behind.

    python benchmarks/stabilize_effect.py --frames 24 --crop 640x360 --degradation BI --degradation realworld \
        --degradation noise --write
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2
import numpy as np
import torch
from results_file import describe_cpu, write_section

from vsr.backends.choice import choose_engine
from vsr.bench.clips import find_clips
from vsr.bench.runner import FRAME_TIME
from vsr.bench.scoring import ClipScorer
from vsr.io.frames import Frame
from vsr.metrics import backward_warp, farneback_flow, grey, psnr
from vsr.models.zoo import build_model
from vsr.ops.dis_flow import DisFlow
from vsr.pipeline.inference import upscale_frames
from vsr.pipeline.stabilize import Stabilization, StabilizerStats, stabilize_frames
from vsr.pipeline.stabilize_defaults import DEFAULT_STRENGTH
from vsr.realworld import RealWorldSettings, clip_seed, degrade_realworld_stream

HEADING = "## Flicker control: --stabilize on per-frame models (benchmarks/stabilize_effect.py)"
VAL_DIR = ROOT.parent / "shared" / "data" / "clips" / "val" / "natural"
SCALE = 4
TRUTH_FLOW = "truth's flow"
NO_NOISE = "no noise"
TEMPORAL = "frvsr (temporal)"
# The realworld damage without its per-frame noise: every other choice is drawn as before (a zero-width range
# still takes its draw), so blur, scaler and codec are the same as in the damaged clip.
NOISELESS = RealWorldSettings(noise_sigma=(0.0, 0.0), poisson_scale=(0.0, 0.0))
# And its noise alone: a blur of sigma 0.001 px is the identity, as is a resize by 1 and JPEG at quality 100
# (to within a level); the noise amount and kind come out of the same draws as in the damaged clip.
NOISE_ONLY = RealWorldSettings(blur_sigma=(1e-3, 1e-3), resize_range=(1.0, 1.0), video_codec_probability=0.0,
                               jpeg_quality=(100, 100))
METRICS = ("psnr_y", "detail", "tof", "warping_error")
PAN_SPEEDS = (0.02, 0.05, 0.08, 0.15)  # pixels per frame at the input's size
PAN_FRAMES = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=24, help="first N frames of each clip")
    parser.add_argument("--crop", default="640x360", help="centre crop WxH of the high-res frames")
    parser.add_argument("--model", action="append", default=None,
                        help="per-frame model (repeatable; default realesr-animevideov3 and realsr)")
    parser.add_argument("--degradation", action="append", choices=("BI", "realworld", "noise"), default=None,
                        help="how the low-res input is made (repeatable; default BI and realworld; noise: "
                             "realworld's per-frame noise alone)")
    parser.add_argument("--strengths", default="0.25,0.5,0.75")
    parser.add_argument("--backend", default="auto", help="engine of the model (auto: OpenVINO on a CPU)")
    parser.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    args = parse_checked(parser)
    strengths = [float(s) for s in args.strengths.split(",")]
    flow_net = DisFlow()
    cpu = torch.device("cpu")
    temporal = choose_engine(build_model("frvsr", SCALE), args.backend, cpu, "auto")
    rows = []
    for degradation in args.degradation or ["BI", "realworld"]:
        clips = find_clips(VAL_DIR, None, SCALE, "BI" if degradation == "BI" else "realworld", args.frames,
                           tuple(map(int, args.crop.split("x"))))
        temporal_scores: dict[str, dict] = {}  # per clip: frvsr's scores on this input, for every model's row
        for name in args.model or ["realesr-animevideov3", "realsr"]:
            engine = choose_engine(build_model(name, SCALE), args.backend, cpu, "auto")
            versions = ["off", *strengths, TRUTH_FLOW, *([NO_NOISE] if degradation == "realworld" else []), TEMPORAL]
            scores: dict[object, list[dict]] = {version: [] for version in versions}
            seconds = dict.fromkeys(strengths, 0.0)
            trust = {strength: StabilizerStats() for strength in strengths}
            frames = 0
            for clip in clips:
                targets = list(clip.gt_frames())
                lr = (degrade_realworld_stream(iter(targets), SCALE, clip_seed(clip.name), settings=NOISE_ONLY)
                      if degradation == "noise" else clip.lr_frames(iter(targets)))
                lr_frames = as_frames(lr)
                outputs = upscale(engine.model, lr_frames)
                frames += len(outputs)
                scores["off"].append(score(outputs, targets))
                for strength in strengths:
                    start = time.perf_counter()
                    stabilized = list(stabilize_frames(iter(outputs), Stabilization(flow_net, strength), cpu, SCALE,
                                                       stats=trust[strength], inputs=iter(lr_frames)))
                    seconds[strength] += time.perf_counter() - start
                    scores[strength].append(score(stabilized, targets))
                scores[TRUTH_FLOW].append(score(blend_along_truth(outputs, targets, 0.5), targets))
                if NO_NOISE in scores:
                    noiseless = degrade_realworld_stream(iter(targets), SCALE, clip_seed(clip.name), settings=NOISELESS)
                    scores[NO_NOISE].append(score(upscale(engine.model, as_frames(noiseless)), targets))
                if clip.name not in temporal_scores:
                    temporal_scores[clip.name] = score(upscale(temporal.model, lr_frames), targets)
                scores[TEMPORAL].append(temporal_scores[clip.name])
                print(f"{name} on {clip.name} ({degradation}): done", file=sys.stderr)
            for version, per_clip in scores.items():
                mean = {key: float(np.mean([clip[key] for clip in per_clip])) for key in METRICS}
                mean["tof_per_clip"] = [clip["tof"] for clip in per_clip]
                stabilised = version in seconds
                rows.append((degradation, name, engine.description, version, mean,
                             trust[version].mean_trust if stabilised else None,
                             frames / seconds[version] if stabilised else None))
    first_targets = [next(iter(clip.gt_frames())) for clip in clips]  # the same ground truth for every input
    pan_costs = {strength: [float(np.mean([slow_pan_cost(first, speed, Stabilization(flow_net, strength))
                                           for first in first_targets])) for speed in PAN_SPEEDS]
                 for strength in strengths}
    section = render(rows, [clip.name for clip in clips], args) + render_pan(pan_costs)
    print(section)
    if args.write:
        write_section(Path(__file__).with_name("RESULTS.md"), HEADING, section)


def parse_checked(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The arguments, refused in one line where tOF cannot be measured or the media folder is absent."""
    args = parser.parse_args()
    if args.frames < 6:
        parser.error("--frames must be at least 6: tOF (TecoGAN's frame pairs) needs six frames of a clip")
    if not VAL_DIR.is_dir():
        sys.exit(f"{VAL_DIR} is absent: this benchmark needs the team's media folder")
    return args


def as_frames(images) -> list[Frame]:
    return [Frame(image, index, FRAME_TIME) for index, image in enumerate(images)]


def upscale(model, frames: list[Frame]) -> list[Frame]:
    return list(upscale_frames(iter(frames), model, torch.device("cpu")))


def score(outputs: list[Frame], targets: list[np.ndarray]) -> dict[str, float]:
    scorer = ClipScorer(SCALE)
    for output, target in zip(outputs, targets):
        scorer.add(output.image, target)
    summary = scorer.scores.summary()
    return {key: summary[key] for key in METRICS}


def blend_along_truth(outputs: list[Frame], targets: list[np.ndarray], strength: float) -> list[Frame]:
    """Each output blended with the previous output carried along the ground truth's Farneback flow."""
    blended = [outputs[0]]
    for previous, current, previous_target, target in zip(outputs, outputs[1:], targets, targets[1:]):
        flow = farneback_flow(grey(target), grey(previous_target))  # on this frame's grid, to the previous one
        carried = backward_warp(previous.image.astype(np.float32), flow)
        image = (1 - strength) * current.image.astype(np.float32) + strength * carried
        blended.append(replace(current, image=np.clip(image, 0, 255).round().astype(np.uint8)))
    return blended


def slow_pan_cost(image: np.ndarray, speed: float, stabilization: Stabilization) -> float:
    """dPSNR-Y of the stabilised second half of `image` panned right `speed` input pixels per frame, upscaled
    with bicubic (no flicker), against the same frames unstabilised."""
    height, width = image.shape[:2]
    targets = [cv2.warpAffine(image, np.float32([[1, 0, speed * SCALE * index], [0, 1, 0]]), (width, height),
                              flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT) for index in range(PAN_FRAMES)]
    inputs = [cv2.resize(target, (width // SCALE, height // SCALE), interpolation=cv2.INTER_AREA) for target in targets]
    outputs = as_frames([cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC) for small in inputs])
    stabilized = stabilize_frames(iter(outputs), stabilization, torch.device("cpu"), SCALE,
                                  inputs=iter(as_frames(inputs)))
    settled = list(zip(stabilized, outputs, targets))[PAN_FRAMES // 2:]
    return float(np.mean([psnr(after.image, target, SCALE) - psnr(before.image, target, SCALE)
                          for after, before, target in settled]))


def render_pan(costs: dict[float, list[float]]) -> str:
    lines = ["", "Cost where nothing flickers: a slow pan, upscaled with bicubic, dPSNR-Y against it unstabilised "
             "(see the script's docstring).", "",
             "| stabilize | " + " | ".join(f"{speed:g} px/frame" for speed in PAN_SPEEDS) + " |",
             "|---|" + "---|" * len(PAN_SPEEDS)]
    for strength, per_speed in costs.items():
        label = f"{strength:g}" + (" (default)" if strength == DEFAULT_STRENGTH else "")
        lines.append(f"| {label} | " + " | ".join(f"{cost:+.2f}" for cost in per_speed) + " |")
    return "\n".join(lines) + "\n"


def render(rows, clip_names: list[str], args: argparse.Namespace) -> str:
    command = (f"python benchmarks/stabilize_effect.py --frames {args.frames} --crop {args.crop} "
               f"--strengths {args.strengths}" + "".join(f" --model {m}" for m in (args.model or []))
               + "".join(f" --degradation {d}" for d in (args.degradation or [])))
    engines = sorted({f"{name}: {engine}" for _, name, engine, *_ in rows})
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [HEADING, "",
             (f"{datetime.date.today()}, {describe_cpu()}, load average {load:.1f} at the end; clips/val/natural "
              f"({', '.join(clip_names)}: the {args.frames} first frames of each, centre crop {args.crop}, x4), the models on "
              f"{'; '.join(engines)}. tOF as `vsr bench` (TecoGAN's pairs), lower is steadier; dPSNR-Y, dtOF and "
              "dwarp against the same model unstabilised; detail is `vsr bench`'s sharpness ratio (1: as much "
              "fine detail as the ground truth). 'trusted' is the stage's mean trust, the share of the strength "
              f"it applied. Default strength: {DEFAULT_STRENGTH}. The stabiliser's frames/s at this size on the CPU "
              f"are its own cost, added to the model's. '{TRUTH_FLOW}', '{NO_NOISE}' and '{TEMPORAL}' are bounds, "
              "not settings: "
              "see the script's docstring."),
             f"Reproduce: `{command}`.", "",
             "| input | model | stabilize | PSNR-Y | dPSNR-Y | detail | tOF (per clip) | dtOF | "
             "warping error (x1e-3) | dwarp | trusted | stabiliser frames/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    base = {}
    for degradation, name, _, version, mean, trusted, fps in rows:
        if version == "off":
            base[degradation, name] = mean
        reference = base[degradation, name]
        d_psnr = mean["psnr_y"] - reference["psnr_y"]
        d_tof = (mean["tof"] - reference["tof"]) / reference["tof"]
        d_warp = (mean["warping_error"] - reference["warping_error"]) / reference["warping_error"]
        label = version if isinstance(version, str) else (
            f"{version:g}" + (" (default)" if version == DEFAULT_STRENGTH else ""))
        per_clip = " / ".join(f"{value:.3f}" for value in mean["tof_per_clip"])
        lines.append(f"| {degradation} | {name} | {label} | {mean['psnr_y']:.2f} | {d_psnr:+.2f} | "
                     f"{mean['detail']:.3f} | {mean['tof']:.3f} ({per_clip}) | {d_tof:+.0%} | "
                     f"{mean['warping_error'] * 1e3:.3f} | {d_warp:+.0%} | "
                     f"{'-' if trusted is None else f'{trusted:.2f}'} | {'-' if fps is None else f'{fps:.1f}'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
