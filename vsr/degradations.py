"""The synthetic degradations that make low-res training and benchmark inputs from high-res frames.

BI is MATLAB's `imresize(img, 1/scale, 'bicubic')`, antialiasing included, because the published VSR
figures (Vid4, REDS4, Vimeo-90K) were made with it; OpenCV's and PyTorch's bicubic differ from it by more
than a dB when downscaling. BD is the DUF/BasicVSR protocol: a 13x13 Gaussian of sigma 1.6, then every
`scale`-th pixel.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F


def cubic(x: torch.Tensor) -> torch.Tensor:
    """MATLAB's bicubic kernel (Keys, a = -0.5); note PyTorch and OpenCV use a = -0.75."""
    ax = x.abs()
    ax2, ax3 = ax**2, ax**3
    inner = 1.5 * ax3 - 2.5 * ax2 + 1
    outer = -0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2
    return inner * (ax <= 1) + outer * ((ax > 1) & (ax <= 2))


@lru_cache(maxsize=64)
def imresize_matrix(in_length: int, out_length: int, antialias: bool = True) -> torch.Tensor:
    """(out_length, in_length) float64 matrix M such that M @ signal resizes a signal as MATLAB's imresize.

    Follows imresize's `contributions`: output pixel x (1-based) sits at u = x/s + (1 - 1/s)/2 in the input;
    when shrinking with antialiasing the kernel is stretched by 1/s; edges are mirrored (symmetric padding).
    """
    s = out_length / in_length
    stretch = s < 1 and antialias
    width = 4.0 / s if stretch else 4.0
    x = torch.arange(1, out_length + 1, dtype=torch.float64)
    u = x / s + 0.5 * (1 - 1 / s)
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64)  # 1-based, may fall outside
    distance = u[:, None] - indices
    weights = s * cubic(s * distance) if stretch else cubic(distance)
    weights = weights / weights.sum(dim=1, keepdim=True)
    mirrored = torch.cat([torch.arange(in_length), torch.arange(in_length - 1, -1, -1)])
    columns = mirrored[(indices.long() - 1) % (2 * in_length)]
    matrix = torch.zeros(out_length, in_length, dtype=torch.float64)
    matrix.scatter_add_(1, columns, weights)
    return matrix


def imresize(images: torch.Tensor, size: tuple[int, int], antialias: bool = True) -> torch.Tensor:
    """Resizes (..., H, W) float images to (..., h, w) as MATLAB's bicubic imresize (not clamped, not rounded).

    MATLAB resizes the dimension that shrinks most first; with equal factors, height first. Both orders
    are linear, so they differ only by float rounding, but we keep MATLAB's for the last bit.
    """
    height, width = images.shape[-2:]
    rows = imresize_matrix(height, size[0], antialias).to(images.device, torch.float64)
    cols = imresize_matrix(width, size[1], antialias).to(images.device, torch.float64)
    work = images.to(torch.float64)
    if size[1] / width < size[0] / height:
        work = rows @ (work @ cols.T)
    else:
        work = (rows @ work) @ cols.T
    return work.to(images.dtype if images.is_floating_point() else torch.float32)


def bicubic_downsample(frames: torch.Tensor, scale: int) -> torch.Tensor:
    """BI: (..., 3, H, W) in [0, 1] -> (..., 3, H/scale, W/scale), rounded to 8 bits as a saved LR frame is."""
    height, width = frames.shape[-2:]
    _check_divisible(height, width, scale)
    small = imresize(frames, (height // scale, width // scale))
    return (small.clamp(0, 1) * 255).round() / 255


def gaussian_kernel(size: int = 13, sigma: float = 1.6) -> torch.Tensor:
    """Normalised 2-D Gaussian, as MATLAB's fspecial('gaussian', size, sigma)."""
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    line = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = line[:, None] * line[None, :]
    return kernel / kernel.sum()


def blur_downsample(frames: torch.Tensor, scale: int, sigma: float = 1.6, size: int = 13) -> torch.Tensor:
    """BD: Gaussian blur (edges replicated) then every `scale`-th pixel from the first; rounded to 8 bits."""
    height, width = frames.shape[-2:]
    _check_divisible(height, width, scale)
    lead = frames.shape[:-2]
    planes = frames.reshape(-1, 1, height, width).to(torch.float64)
    padded = F.pad(planes, [size // 2] * 4, mode="replicate")
    blurred = F.conv2d(padded, gaussian_kernel(size, sigma).to(planes.device)[None, None])
    small = blurred[..., ::scale, ::scale].reshape(*lead, height // scale, width // scale)
    return ((small.clamp(0, 1) * 255).round() / 255).to(frames.dtype)


def _check_divisible(height: int, width: int, scale: int) -> None:
    if height % scale or width % scale:
        raise ValueError(f"frame size {width}x{height} is not divisible by the scale {scale}")
