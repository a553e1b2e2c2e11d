"""Validation during training: PSNR-Y and SSIM-Y on held-out clips, beside MATLAB-bicubic upscaling."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from vsr.degradations import bicubic_downsample, blur_downsample, imresize
from vsr.io.probe import probe
from vsr.io.reader import FrameReader
from vsr.metrics import frames_to_8bit, psnr_per_frame, ssim_per_frame
from vsr.pipeline.tensors import images_to_tensor, pad_to_multiple, tensor_to_images
from vsr.realworld import clip_seed, degrade_realworld


@dataclass
class ValidationClip:
    name: str
    hr: torch.Tensor  # (T, 3, H, W) in [0, 1], 8-bit values
    lr: torch.Tensor  # (T, 3, H/scale, W/scale)


def load_validation_clips(paths: list[str], frames: int, scale: int, degradation: str = "BI",
                          max_height: int = 0, max_width: int = 0) -> list[ValidationClip]:
    """The first `frames` frames of each clip, centre-cropped to the limits and to a multiple of `scale`."""
    clips = []
    for name in paths:
        info = probe(Path(name))
        # 8-bit ground truth, as the papers' PNGs are: deeper sources are rounded to 8 bits first.
        images = frames_to_8bit([frame.image for frame in islice(FrameReader(info), frames)], name)
        hr = images_to_tensor(images, torch.device("cpu"))[0]
        hr = _centre_crop(hr, max_height or hr.shape[-2], max_width or hr.shape[-1], scale)
        clips.append(ValidationClip(Path(name).stem, hr, _degrade(hr, scale, degradation, Path(name).stem)))
    return clips


def _degrade(hr: torch.Tensor, scale: int, degradation: str, name: str) -> torch.Tensor:
    """The low-res clip; real-world damage is seeded by the clip's name, so every validation sees the same."""
    if degradation == "realworld":
        lr = degrade_realworld(np.stack(to_8bit_frames(hr)), scale, np.random.default_rng(clip_seed(name)))
        return images_to_tensor(list(lr), torch.device("cpu"))[0]
    downsample = bicubic_downsample if degradation == "BI" else blur_downsample
    return downsample(hr, scale).float()


def _centre_crop(frames: torch.Tensor, max_height: int, max_width: int, scale: int) -> torch.Tensor:
    height, width = frames.shape[-2:]
    h = min(height, max_height) // scale * scale
    w = min(width, max_width) // scale * scale
    top, left = (height - h) // 2, (width - w) // 2
    return frames[..., top:top + h, left:left + w]


def to_8bit_frames(frames: torch.Tensor) -> list[np.ndarray]:
    """(T, 3, H, W) float -> T (H, W, 3) uint8 frames, rounded as a saved frame is."""
    return tensor_to_images(frames[None], np.uint8)


def clip_scores(output: torch.Tensor, target: torch.Tensor, scale: int) -> tuple[float, float]:
    """Mean PSNR-Y and SSIM-Y over the frames, `scale` pixels cropped at each border."""
    outputs, targets = to_8bit_frames(output), to_8bit_frames(target)
    return (float(np.mean(psnr_per_frame(outputs, targets, scale))),
            float(np.mean(ssim_per_frame(outputs, targets, scale))))


def mean_scores(scores: dict[str, tuple[float, float]]) -> tuple[float, float]:
    """(PSNR-Y, SSIM-Y) averaged over clips, each clip counting once, as the papers average."""
    return (sum(p for p, _ in scores.values()) / len(scores), sum(s for _, s in scores.values()) / len(scores))


def bicubic_scores(clips: list[ValidationClip], scale: int) -> dict[str, tuple[float, float]]:
    """The baseline as the papers' tables give it: MATLAB's bicubic imresize back up to full size."""
    return {clip.name: clip_scores(imresize(clip.lr, tuple(clip.hr.shape[-2:])), clip.hr, scale) for clip in clips}


@torch.no_grad()
def evaluate(model: torch.nn.Module, clips: list[ValidationClip], scale: int,
             device: torch.device) -> dict[str, tuple[float, float]]:
    """(PSNR-Y, SSIM-Y) per clip, each clip run as one sequence."""
    was_training = model.training
    model.eval()
    scores = {}
    for clip in clips:
        lr, (height, width) = pad_to_multiple(clip.lr[None].to(device), getattr(model, "size_multiple", 1))
        sr = model(lr)[0, ..., : scale * height, : scale * width].float().cpu()
        scores[clip.name] = clip_scores(sr, clip.hr, scale)
    model.train(was_training)
    return scores
