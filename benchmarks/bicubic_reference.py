"""`vsr bench` against the literature: bicubic x4 on Set5, Set14 and Urban100.

The published bicubic x4 figures (EDSR and RCAN tables: Set5 28.42 dB / 0.8104, Set14 26.00 / 0.7027,
Urban100 23.14 / 0.6577) come from MATLAB's imresize and the Y-channel protocol; matching them through
`vsr bench --model bicubic-matlab` checks our BI degradation, the bench's cropping and `vsr.metrics` at once.
Each image becomes a one-frame clip (images: ../shared/data/images, colour versions; cropped to a multiple
of 4, as the papers' mod-crop).

    python benchmarks/bicubic_reference.py [--write]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch
from results_file import write_section

from vsr.bench.clips import find_clips
from vsr.bench.report import model_mean
from vsr.bench.runner import Settings, bench_model
from vsr.models.interpolation import MatlabBicubicUpscaler

IMAGES = ROOT.parent / "shared" / "data" / "images"
PUBLISHED = {"CSet5": (28.42, 0.8104), "CSet14": (26.00, 0.7027), "CUrban100": (23.14, 0.6577)}
HEADING = "## vsr bench against published figures: bicubic x4 (benchmarks/bicubic_reference.py)"


def bicubic_scores(folder: Path, scale: int = 4) -> tuple[float, float]:
    """Mean PSNR-Y and SSIM-Y of `vsr bench --model bicubic-matlab` over the images of `folder`."""
    with tempfile.TemporaryDirectory() as work:
        for image in sorted(folder.glob("*.png")):
            clip = Path(work) / image.stem
            clip.mkdir()
            (clip / "0.png").symlink_to(image.resolve())
        clips = find_clips(Path(work), None, scale)
        result = bench_model("bicubic-matlab", MatlabBicubicUpscaler(scale), clips,
                             Settings(torch.device("cpu"), temporal=False))
    mean = model_mean(result)
    return mean["psnr_y"], mean["ssim_y"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    args = parser.parse_args()
    if not IMAGES.is_dir():
        sys.exit(f"{IMAGES} is absent: this benchmark needs the team's media folder")
    lines = [HEADING, "", ("Reproduce: `python benchmarks/bicubic_reference.py`. Colour versions of the sets "
                           "(../shared/data/images); published figures from the EDSR and RCAN tables."), "",
             "| set | vsr bench PSNR-Y / SSIM-Y | published | difference |", "|---|---|---|---|"]
    for name, (paper_psnr, paper_ssim) in PUBLISHED.items():
        psnr, ssim = bicubic_scores(IMAGES / name)
        lines.append(f"| {name} | {psnr:.2f} / {ssim:.4f} | {paper_psnr:.2f} / {paper_ssim:.4f} | "
                     f"{psnr - paper_psnr:+.2f} dB / {ssim - paper_ssim:+.4f} |")
        print(lines[-1], file=sys.stderr)
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        write_section(Path(__file__).with_name("RESULTS.md"), HEADING, section)


if __name__ == "__main__":
    main()
