"""Bicubic and Lanczos upscaling through the model interface: the baselines every VSR model must beat."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vsr.degradations import imresize


class PerFrameUpscaler(nn.Module):
    """An upscaler that looks at one frame at a time: no context, streams trivially."""

    context_frames = 0
    size_multiple = 1
    streams = True

    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale

    def step(self, frame: torch.Tensor, state: None = None) -> tuple[torch.Tensor, None]:
        return self(frame[:, None])[:, 0], None


class BicubicUpscaler(PerFrameUpscaler):
    """Bicubic (a = -0.75, as PyTorch and OpenCV) upscaling.

    On uint8 clips it runs PyTorch's integer kernel, twenty times faster on a CPU than the float one, and as
    FFmpeg's scaler does, rounds between the two passes (within 1/255 of the float result on natural images).
    """

    integer_pixels = True

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        n, t, c, h, w = lr.shape
        frames = lr.reshape(n * t, c, h, w)
        if lr.dtype == torch.uint8:
            frames = frames.contiguous(memory_format=torch.channels_last)  # the only layout with a uint8 kernel
        sr = F.interpolate(frames, scale_factor=self.scale, mode="bicubic", align_corners=False)
        if sr.is_floating_point():
            sr = sr.clamp_(0, 1)
        return sr.reshape(n, t, c, h * self.scale, w * self.scale)


def lanczos_kernels(scale: int, lobes: int = 3) -> torch.Tensor:
    """(scale, 2*lobes+1) normalised weights: row p makes output pixel scale*i + p from inputs i-lobes..i+lobes.

    Pixel centres are aligned as in every image resizer (align_corners=False).
    """
    offsets = torch.arange(-lobes, lobes + 1, dtype=torch.float64)
    centres = (torch.arange(scale, dtype=torch.float64) + 0.5) / scale - 0.5
    distance = centres[:, None] - offsets
    weight = torch.sinc(distance) * torch.sinc(distance / lobes) * (distance.abs() < lobes)
    return (weight / weight.sum(dim=1, keepdim=True)).float()


class LanczosUpscaler(PerFrameUpscaler):
    """Lanczos-3 upscaling, separable and polyphase: one small convolution per axis, edges repeated."""

    def __init__(self, scale: int = 4, lobes: int = 3) -> None:
        super().__init__(scale)
        self.lobes = lobes
        self.register_buffer("kernels", lanczos_kernels(scale, lobes), persistent=False)

    def _upscale_width(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) -> (B, 1, H, scale*W)."""
        b, _, h, w = images.shape
        padded = F.pad(images, (self.lobes, self.lobes, 0, 0), mode="replicate")
        phases = F.conv2d(padded, self.kernels.to(images.dtype)[:, None, None, :])  # (B, scale, H, W)
        return phases.permute(0, 2, 3, 1).reshape(b, 1, h, w * self.scale)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        n, t, c, h, w = lr.shape
        planes = lr.reshape(n * t * c, 1, h, w)
        wide = self._upscale_width(planes)
        tall = self._upscale_width(wide.transpose(-1, -2)).transpose(-1, -2)
        return tall.clamp_(0, 1).reshape(n, t, c, h * self.scale, w * self.scale)


class MatlabBicubicUpscaler(PerFrameUpscaler):
    """MATLAB's `imresize(lr, scale, 'bicubic')` (a = -0.5, mirrored edges): the bicubic row of the papers' tables.

    Slower than `BicubicUpscaler` (float64 matrix products), but it is the baseline published figures use, so
    `vsr bench` compares with them through it.
    """

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        height, width = lr.shape[-2:]
        sr = imresize(lr.float(), (height * self.scale, width * self.scale))
        return sr.clamp_(0, 1).to(lr.dtype)
