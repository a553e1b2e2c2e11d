"""Bicubic and Lanczos upscaling through the model interface: the baselines every VSR model must beat."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


def lanczos_taps(in_size: int, scale: int, lobes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Source indices and normalised weights, (out_size, 2*lobes) each, for resampling one axis by `scale`.

    Pixel centres are aligned as in every image resizer (align_corners=False); taps beyond the border
    repeat the edge pixel.
    """
    out = torch.arange(in_size * scale, dtype=torch.float64)
    centre = (out + 0.5) / scale - 0.5
    first = torch.floor(centre) - (lobes - 1)
    index = first[:, None] + torch.arange(2 * lobes, dtype=torch.float64)
    distance = centre[:, None] - index
    weight = torch.sinc(distance) * torch.sinc(distance / lobes)
    weight = weight * (distance.abs() < lobes)
    weight = weight / weight.sum(dim=1, keepdim=True)
    return index.clamp(0, in_size - 1).long(), weight.float()


class LanczosUpscaler(PerFrameUpscaler):
    """Lanczos-3 upscaling, separable: rows, then columns, six taps each."""

    def __init__(self, scale: int = 4, lobes: int = 3) -> None:
        super().__init__(scale)
        self.lobes = lobes

    def _resample_last_axis(self, x: torch.Tensor) -> torch.Tensor:
        index, weight = lanczos_taps(x.shape[-1], self.scale, self.lobes)
        index, weight = index.to(x.device), weight.to(x.device, x.dtype)
        gathered = x[..., index.flatten()].unflatten(-1, index.shape)
        return (gathered * weight).sum(dim=-1)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        wide = self._resample_last_axis(lr)
        tall = self._resample_last_axis(wide.transpose(-1, -2)).transpose(-1, -2)
        return tall.clamp_(0, 1).contiguous()
