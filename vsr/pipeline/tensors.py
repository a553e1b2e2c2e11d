"""Conversions between decoded frames (H, W, 3 uint8/uint16) and model tensors (N, T, C, H, W) in [0, 1]."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def images_to_tensor(images: list[np.ndarray], device: torch.device, as_float: bool = True) -> torch.Tensor:
    """(1, T, 3, H, W) float32 in [0, 1], or uint8 0..255 with as_float=False (8-bit images only).

    The tensor is a channels-last view of the stacked images: no copy until the float conversion, which runs
    on the device.
    """
    stacked = np.stack(images)
    peak = float(np.iinfo(stacked.dtype).max)
    if stacked.dtype == np.uint16:  # torch has few uint16 kernels
        stacked = stacked.astype(np.int32)
    host = torch.from_numpy(stacked)
    if device.type == "cuda":
        host = host.pin_memory()  # page-locked: the copy to the GPU runs asynchronously, overlapping the CPU
    video = host.to(device, non_blocking=True).permute(0, 3, 1, 2).unsqueeze(0)
    if not as_float:
        if video.dtype != torch.uint8:
            raise ValueError("integer tensors are for 8-bit images only")
        return video
    return video.float().div_(peak)


def tensor_to_images(video: torch.Tensor, dtype: np.dtype) -> list[np.ndarray]:
    """Inverse of images_to_tensor for one clip: (1, T, 3, H, W) -> T arrays (H, W, 3), rounded.

    One frame at a time: the float copy each is rounded from (at 8K, 400 MB a frame) never exists for more
    than one frame, so a window's memory grows by the integer frames alone.
    """
    return [_to_image(frame, dtype) for frame in video[0]]


def _to_image(frame: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """(3, H, W) float in [0, 1] or uint8 -> (H, W, 3) of `dtype`."""
    if frame.dtype == torch.uint8:
        pixels = frame
    else:
        peak = float(np.iinfo(dtype).max)
        scaled = frame.float().clamp(0, 1).mul_(peak).round_()  # float32: fp16 tops out at 65504
        pixels = scaled.to(torch.uint8 if dtype == np.uint8 else torch.int32)
    return pixels.permute(1, 2, 0).contiguous().cpu().numpy().astype(dtype, copy=False)


def pad_to_multiple(video: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad H and W of (..., C, H, W) up to a multiple; returns the padded tensor and the original (H, W)."""
    height, width = video.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h or pad_w:
        leading = video.shape[:-2]
        flat = F.pad(video.reshape(-1, *video.shape[-3:]), (0, pad_w, 0, pad_h), mode="replicate")
        video = flat.reshape(*leading, height + pad_h, width + pad_w)
    return video, (height, width)
