"""`--stabilize` on per-frame models: how much flicker (tOF) it removes and what it costs in PSNR-Y.

Each model runs once per clip of `../shared/data/clips/val/natural` (BI x4, centre crop), as `vsr run`
does; its outputs are then stabilised at several strengths as `vsr run --stabilize --stabilize-strength S`
does, and every version is scored as `vsr bench` scores (PSNR-Y against the ground truth, tOF, the
flow-warping error), averaged over clips (each clip counts once). The issue's target: tOF down by at least a
third, PSNR-Y down by at most 0.3 dB against the model's own unstabilised output.

    python benchmarks/stabilize_effect.py --frames 24 --crop 640x360 --write
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
import torch
from results_file import describe_cpu, write_section

from vsr.backends.choice import choose_engine
from vsr.bench.clips import find_clips
from vsr.bench.runner import FRAME_TIME
from vsr.bench.scoring import ClipScorer
from vsr.io.frames import Frame
from vsr.models.zoo import build_flow_network, build_model
from vsr.pipeline.inference import upscale_frames
from vsr.pipeline.stabilize import Stabilization, stabilize_frames
from vsr.pipeline.stabilize_defaults import DEFAULT_STRENGTH

HEADING = "## Flicker control: --stabilize on per-frame models (benchmarks/stabilize_effect.py)"
VAL_DIR = ROOT.parent / "shared" / "data" / "clips" / "val" / "natural"
SCALE = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=24, help="first N frames of each clip")
    parser.add_argument("--crop", default="640x360", help="centre crop WxH of the high-res frames")
    parser.add_argument("--model", action="append", default=None,
                        help="per-frame model (repeatable; default realesr-animevideov3 and realsr)")
    parser.add_argument("--strengths", default="0.25,0.5,0.75,0.9")
    parser.add_argument("--backend", default="auto", help="engine of the model (auto: OpenVINO on a CPU)")
    parser.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    args = parser.parse_args()
    if not VAL_DIR.is_dir():
        sys.exit(f"{VAL_DIR} is absent: this benchmark needs the team's media folder")
    strengths = [float(s) for s in args.strengths.split(",")]
    clips = find_clips(VAL_DIR, None, SCALE, "BI", args.frames, tuple(map(int, args.crop.split("x"))))
    flow_net = build_flow_network()
    cpu = torch.device("cpu")
    rows = []
    for name in args.model or ["realesr-animevideov3", "realsr"]:
        engine = choose_engine(build_model(name, SCALE), args.backend, cpu, "auto")
        scores: dict[float | None, list[dict]] = {None: [], **{s: [] for s in strengths}}
        seconds: dict[float, float] = {s: 0.0 for s in strengths}
        frames = 0
        for clip in clips:
            targets = list(clip.gt_frames())
            lr = (Frame(image, index, FRAME_TIME) for index, image in enumerate(clip.lr_frames(iter(targets))))
            outputs = list(upscale_frames(lr, engine.model, cpu))
            frames += len(outputs)
            scores[None].append(score(outputs, targets))
            for strength in strengths:
                start = time.perf_counter()
                stabilized = list(stabilize_frames(iter(outputs), Stabilization(flow_net, strength), cpu, SCALE))
                seconds[strength] += time.perf_counter() - start
                scores[strength].append(score(stabilized, targets))
            print(f"{name} on {clip.name}: done", file=sys.stderr)
        for strength, per_clip in scores.items():
            mean = {key: float(np.mean([clip[key] for clip in per_clip])) for key in per_clip[0]}
            rows.append((name, engine.description, strength, mean,
                         None if strength is None else frames / seconds[strength]))
    section = render(rows, args)
    print(section)
    if args.write:
        write_section(Path(__file__).with_name("RESULTS.md"), HEADING, section)


def score(outputs: list[Frame], targets: list[np.ndarray]) -> dict[str, float]:
    scorer = ClipScorer(SCALE)
    for output, target in zip(outputs, targets):
        scorer.add(output.image, target)
    summary = scorer.scores.summary()
    return {key: summary[key] for key in ("psnr_y", "ssim_y", "tof", "warping_error")}


def render(rows, args: argparse.Namespace) -> str:
    command = (f"python benchmarks/stabilize_effect.py --frames {args.frames} --crop {args.crop} "
               f"--strengths {args.strengths}" + "".join(f" --model {m}" for m in (args.model or [])))
    engines = sorted({f"{name}: {engine}" for name, engine, *_ in rows})
    lines = [HEADING, "",
             (f"{datetime.date.today()}, {describe_cpu()}; clips/val/natural ({args.frames} first frames of each "
              f"clip, centre crop {args.crop}, BI x4), the models on {'; '.join(engines)}. tOF as `vsr bench` "
              "(TecoGAN's pairs), lower is steadier; dPSNR-Y and dtOF against the same model unstabilised. "
              f"Default strength: {DEFAULT_STRENGTH}. The stabiliser's frames/s at this size on the CPU are its own "
              "cost, added to the model's."),
             f"Reproduce: `{command}`.", "",
             "| model | stabilize strength | PSNR-Y | dPSNR-Y | SSIM-Y | tOF | dtOF | warping error (x1e-3) | "
             "stabiliser frames/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    base = {}
    for name, _, strength, mean, fps in rows:
        if strength is None:
            base[name] = mean
        reference = base[name]
        d_psnr = mean["psnr_y"] - reference["psnr_y"]
        d_tof = (mean["tof"] - reference["tof"]) / reference["tof"]
        label = "off" if strength is None else f"{strength:g}" + (" (default)" if strength == DEFAULT_STRENGTH else "")
        lines.append(f"| {name} | {label} | {mean['psnr_y']:.2f} | {d_psnr:+.2f} | {mean['ssim_y']:.4f} | "
                     f"{mean['tof']:.3f} | {d_tof:+.0%} | {mean['warping_error'] * 1e3:.3f} | "
                     f"{'-' if fps is None else f'{fps:.1f}'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
