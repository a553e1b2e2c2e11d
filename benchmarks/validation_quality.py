"""Quality of our shipped weights on the held-out clips: PSNR-Y / SSIM-Y against bicubic, BI x4.

The clips of `../shared/data/clips/val` (never trained on) are downsampled with MATLAB's bicubic imresize,
upscaled by each model exactly as `vsr run` does (8-bit frames in and out, windows or steps, scene cuts), and
scored as the papers do (Y of BT.601, 4-pixel border cropped, mean over frames, then over clips). "bicubic
(MATLAB)" is the baseline the literature's tables print; `bicubic` is our zoo's PyTorch bicubic (a = -0.75).

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

from vsr.models.weights import load_state_dict
from vsr.models.zoo import ZOO, build_model, load_into
from vsr.train.config import load_config
from vsr.train.validation import bicubic_scores, load_validation_clips, mean_scores, pipeline_scores

HEADING = "## Shipped weights: quality on clips/val, BI x4 (benchmarks/validation_quality.py)"
VAL_DIR = ROOT.parent / "shared" / "data" / "clips" / "val"
SCALE = 4


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
    parser.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    args = parser.parse_args()
    if not VAL_DIR.is_dir():
        sys.exit(f"{VAL_DIR} is absent: this benchmark needs the team's media folder")
    torch.set_grad_enabled(False)

    paths = sorted(str(p) for p in VAL_DIR.glob("*.mp4"))
    width, height = (0, 0) if args.crop == "none" else map(int, args.crop.split("x"))
    clips = load_validation_clips(paths, args.frames or 10**9, SCALE, "BI", height, width)
    names = args.model or ["bicubic"] + [n for n, e in ZOO.items() if e.bundled_weights and SCALE in e.scales]
    models = {name: build_model(name, SCALE) for name in names}
    models.update({f"run {run.name}": candidate_model(run) for run in args.candidate})

    table = {"bicubic (MATLAB)": bicubic_scores(clips, SCALE)}
    speed = {}
    for name, model in models.items():
        table[name], speed[name] = pipeline_scores(model, clips, SCALE, torch.device("cpu"))
        print(f"{name}: done", file=sys.stderr)

    section = render(table, speed, clips, args.frames, args.crop)
    print(section)
    if args.write:
        write_section(Path(__file__).with_name("RESULTS.md"), HEADING, section)


def render(table: dict, speed: dict, clips, frames: int, crop: str) -> str:
    baseline = table["bicubic (MATLAB)"]
    clip_names = [c.name for c in clips]
    header = "| model | " + " | ".join(clip_names) + " | mean PSNR-Y / SSIM-Y | gain over MATLAB bicubic | frames/s |"
    lines = [HEADING, "",
             (f"{datetime.date.today()}, {platform.processor() or platform.machine()}, "
             f"{torch.get_num_threads()} threads; {frames or 'all'} frames per clip, centre crop {crop}; PSNR-Y (dB) per clip; "
             "frames/s through the `vsr run` pipeline without decoding or encoding."),
             f"Reproduce: `python benchmarks/validation_quality.py{f' --frames {frames}' if frames else ''} --crop {crop}`.",
             "", header, "|" + "---|" * (len(clip_names) + 4)]
    base_mean = mean_scores(baseline)[0]
    for name, scores in table.items():
        mean_p, mean_s = mean_scores(scores)
        cells = " | ".join(f"{scores[c][0]:.2f}" for c in clip_names)
        fps = f"{speed[name]:.2f}" if name in speed else "-"
        lines.append(f"| {name} | {cells} | {mean_p:.2f} / {mean_s:.4f} | {mean_p - base_mean:+.2f} | {fps} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
