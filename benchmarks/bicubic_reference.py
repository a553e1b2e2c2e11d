"""Our BI degradation and PSNR/SSIM-Y against the literature: bicubic x4 on Set5 and Set14.

The published bicubic x4 figures (28.42 dB / 0.8104 on Set5, 26.00 / 0.7027 on Set14, as in the EDSR and
RCAN tables) come from MATLAB's imresize and the Y-channel protocol; matching them checks both our
`bicubic_downsample`/`imresize` and `vsr.metrics` at once. Images: ../shared/data/images/CSet5 and CSet14
(colour versions), cropped to a multiple of 4.

    python benchmarks/bicubic_reference.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2
import numpy as np
import torch

from vsr.metrics import psnr, ssim
from vsr.degradations import bicubic_downsample, imresize

IMAGES = ROOT.parent / "shared" / "data" / "images"
PUBLISHED = {"CSet5": (28.42, 0.8104), "CSet14": (26.00, 0.7027)}


def bicubic_scores(folder: Path, scale: int = 4) -> tuple[float, float]:
    psnrs, ssims = [], []
    for path in sorted(folder.glob("*.png")):
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        height, width = image.shape[:2]
        image = image[: height // scale * scale, : width // scale * scale]
        hr = torch.from_numpy(image).permute(2, 0, 1).float() / 255
        sr = imresize(bicubic_downsample(hr, scale), tuple(hr.shape[-2:]))
        sr8 = (sr.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        psnrs.append(psnr(sr8, image, scale))
        ssims.append(ssim(sr8, image, scale))
    return float(np.mean(psnrs)), float(np.mean(ssims))


def main() -> None:
    if not IMAGES.is_dir():
        sys.exit(f"{IMAGES} is absent: this benchmark needs the team's media folder")
    for name, (paper_psnr, paper_ssim) in PUBLISHED.items():
        ours = bicubic_scores(IMAGES / name)
        print(f"{name}: ours {ours[0]:.2f} dB / {ours[1]:.4f}, published {paper_psnr:.2f} / {paper_ssim:.4f}")


if __name__ == "__main__":
    main()
