"""Quality of our shipped weights on the held-out clips: PSNR-Y / SSIM-Y against bicubic, BI x4.

The clips of `../shared/data/clips/val` (never trained on) are downsampled with MATLAB's bicubic imresize,
upscaled by each model exactly as `vsr run` does (8-bit frames in and out, windows or steps, scene cuts), and
scored by `vsr bench` (Y of BT.601, 4-pixel border cropped, mean over frames, then over clips; tOF).
`bicubic-matlab` is the baseline the literature's tables print; `bicubic` is our zoo's PyTorch bicubic
(a = -0.75).

    python benchmarks/validation_quality.py                                # zoo models with weights
    python benchmarks/validation_quality.py --candidate runs/frvsr_bi_x4   # and a training run's best weights
    python benchmarks/validation_quality.py --frames 30 --write            # first 30 frames; into RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch
from results_file import write_section

from vsr.bench.clips import find_clips
from vsr.bench.report import model_mean, seam_gap
from vsr.bench.runner import ModelResult, Settings, bench_model
from vsr.models.weights import load_state_dict
from vsr.models.zoo import ZOO, build_model, load_into
from vsr.train.config import load_config

HEADING = "## Shipped weights: quality on clips/val, BI x4 (benchmarks/validation_quality.py)"
VAL_DIR = ROOT.parent / "shared" / "data" / "clips" / "val"
SCALE = 4
BASELINE = "bicubic-matlab"


def candidate_model(run_dir: Path) -> torch.nn.Module:
    """A training run's best weights, in the architecture its config.yaml names."""
    config = load_config(run_dir / "config.yaml")
    model = config.model.build()
    load_into(model, load_state_dict(run_dir / "best.safetensors"), run_dir / "best.safetensors")
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=0, help="first N frames of each clip (0: all)")
    parser.add_argument("--candidate", type=Path, action="append", default=[], help="a training run folder")
    parser.add_argument("--model", action="append", default=None, help="zoo models (default: those with weights)")
    parser.add_argument("--crop", default="640x360", help="centre crop WxH of the high-res frames ('none': whole)")
    parser.add_argument("--chunk", type=int, default=8, help="frames per window, as `vsr run --chunk`")
    parser.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    args = parser.parse_args()
    if not VAL_DIR.is_dir():
        sys.exit(f"{VAL_DIR} is absent: this benchmark needs the team's media folder")

    crop = None if args.crop == "none" else tuple(map(int, args.crop.split("x")))
    clips = find_clips(VAL_DIR, None, SCALE, "BI", args.frames, crop)
    names = args.model or ["bicubic"] + [n for n, e in ZOO.items() if e.bundled_weights and SCALE in e.scales]
    models = {name: build_model(name, SCALE) for name in [BASELINE, *names] if name}
    models.update({f"run {run.name}": candidate_model(run) for run in args.candidate})

    settings = Settings(torch.device("cpu"), chunk=args.chunk)
    results = []
    for name, model in models.items():
        results.append(bench_model(name, model, clips, settings))
        print(f"{name}: done", file=sys.stderr)

    section = render(results, args)
    print(section)
    if args.write:
        write_section(Path(__file__).with_name("RESULTS.md"), HEADING, section)


def render(results: list[ModelResult], args: argparse.Namespace) -> str:
    clip_names = [c.clip for c in results[0].clips]
    header = ("| model | " + " | ".join(clip_names) + " | mean PSNR-Y / SSIM-Y | gain over MATLAB bicubic | tOF | "
              "frames/s (model alone) | peak RSS MB | PSNR-Y at window seams - elsewhere |")
    options = "".join(f" --{k} {v}" for k, v in (("frames", args.frames), ("chunk", args.chunk)) if v and v != 8)
    lines = [HEADING, "",
             (f"{datetime.date.today()}, {platform.processor() or platform.machine()}, "
              f"{torch.get_num_threads()} threads; {args.frames or 'all'} frames per clip, centre crop {args.crop}; "
              "PSNR-Y (dB) per clip; frames/s through the `vsr run` pipeline without decoding or encoding."),
             f"Reproduce: `python benchmarks/validation_quality.py{options} --crop {args.crop}`.",
             "", header, "|" + "---|" * (len(clip_names) + 7)]
    base = model_mean(results[0])["psnr_y"]
    for result in results:
        mean = model_mean(result)
        cells = " | ".join(f"{c.summary()['psnr_y']:.2f}" for c in result.clips)
        tof = "-" if mean["tof"] is None else f"{mean['tof']:.3f}"
        gap = seam_gap(mean)
        seam_text = "-" if gap is None else f"{gap:+.3f}"
        lines.append(f"| {result.name} | {cells} | {mean['psnr_y']:.2f} / {mean['ssim_y']:.4f} | "
                     f"{mean['psnr_y'] - base:+.2f} | {tof} | {mean['fps']:.2f} ({mean['fps_model']:.2f}) | "
                     f"{mean['peak_mem_mb']:.0f} | {seam_text} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
