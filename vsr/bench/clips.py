"""The clips `vsr bench` scores: ground-truth frames, and low-res frames read from disk or made from them.

Layouts, as Vid4 and REDS4 are distributed: a folder with one sub-folder of PNG frames (or one video file)
per clip, for the ground truth and, optionally, for the low-res input with the same clip names. Without
low-res clips, the ground truth is degraded on the fly (BI or BD, as in `vsr.degradations`, or realworld,
as in `vsr.realworld`, with damage seeded by the clip's name so that every run scores the same input).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from vsr.degradations import bicubic_downsample, blur_downsample
from vsr.errors import VsrError
from vsr.io.frame_folder import list_frames
from vsr.io.probe import probe
from vsr.io.reader import read_8bit
from vsr.io.sources import find_sources
from vsr.realworld import clip_seed, degrade_realworld_stream

DEGRADATIONS = ("BI", "BD", "realworld")


@dataclass(frozen=True)
class Region:
    """A rectangle of a frame, in pixels."""

    top: int
    left: int
    height: int
    width: int

    def of(self, image: np.ndarray) -> np.ndarray:
        return image[self.top:self.top + self.height, self.left:self.left + self.width]


@dataclass(frozen=True)
class BenchClip:
    """One clip: where its frames are, and which part of them is scored."""

    name: str
    gt: Path  # a video file or a folder of PNG frames
    lr: Path | None  # the same for the low-res input; None: made from `gt` by `degradation`
    scale: int
    degradation: str  # "BI", "BD" or "realworld", used when lr is None
    gt_region: Region
    lr_region: Region  # gt_region divided by the scale
    frame_count: int

    def gt_frames(self) -> Iterator[np.ndarray]:
        """8-bit (H, W, 3) RGB ground truth, as the papers' PNGs: deeper sources are rounded to 8 bits."""
        return (self.gt_region.of(image) for image in _read_8bit(self.gt, self.frame_count))

    def lr_frames(self, gt_frames: Iterable[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """8-bit low-res frames: read from `lr`, or degraded from `gt_frames` (which must then be given)."""
        if self.lr is not None:
            return (self.lr_region.of(image) for image in _read_8bit(self.lr, self.frame_count))
        if gt_frames is None:
            raise ValueError(f"{self.name} has no low-res frames on disk: pass its ground truth to degrade")
        if self.degradation == "realworld":
            return degrade_realworld_stream(gt_frames, self.scale, clip_seed(self.name))
        return (degrade(image, self.scale, self.degradation) for image in gt_frames)


def degrade(image: np.ndarray, scale: int, degradation: str) -> np.ndarray:
    """One 8-bit ground-truth frame -> its 8-bit low-res frame (BI: MATLAB bicubic; BD: blur then subsample)."""
    frame = torch.from_numpy(image).permute(2, 0, 1).double() / 255
    downsample = bicubic_downsample if degradation == "BI" else blur_downsample
    small = downsample(frame, scale)  # already rounded to 8-bit levels
    return (small * 255).round().byte().permute(1, 2, 0).numpy()


def find_clips(gt: Path, lr: Path | None, scale: int, degradation: str = "BI", max_frames: int = 0,
               crop: tuple[int, int] | None = None) -> list[BenchClip]:
    """The clips under `gt` (and their partners under `lr`), checked for sizes and frame counts.

    `crop` = (width, height) keeps the centre of each ground-truth frame (and the matching low-res part);
    `max_frames` > 0 keeps the first frames of each clip.
    """
    if degradation not in DEGRADATIONS:
        raise VsrError(None, f"unknown degradation {degradation!r}: use {', '.join(DEGRADATIONS)}")
    gt_sources = clip_sources(gt)
    lr_sources = clip_sources(lr) if lr is not None else {}
    clips = []
    for name, gt_path in gt_sources.items():
        lr_path = None
        if lr is not None:
            if name not in lr_sources:
                raise VsrError(lr, f"has no clip named {name!r} to match the ground truth {gt_path}")
            lr_path = lr_sources[name]
        clips.append(_clip(name, gt_path, lr_path, scale, degradation, max_frames, crop))
    return clips


def clip_sources(folder: Path) -> dict[str, Path]:
    """Clip name -> source: `folder` itself if it is a video or a PNG folder, else the clips inside it."""
    if not folder.exists():
        raise VsrError(folder, "no such file or folder")
    if folder.is_file():
        return {folder.stem: folder}
    if list_frames(folder):
        return {folder.name: folder}
    sources = {(child.stem if child.is_file() else child.name): child for child in find_sources(folder)}
    if not sources:
        raise VsrError(folder, "holds no clips: expected PNG frames, sub-folders of them, or video files")
    return sources


def _clip(name: str, gt: Path, lr: Path | None, scale: int, degradation: str, max_frames: int,
          crop: tuple[int, int] | None) -> BenchClip:
    gt_info = probe(gt)
    frame_count = gt_info.frame_count
    if lr is None:
        # Papers crop the ground truth to a multiple of the scale ("mod crop") before degrading it.
        lr_height, lr_width = gt_info.height // scale, gt_info.width // scale
    else:
        lr_info = probe(lr)
        lr_height, lr_width = lr_info.height, lr_info.width
        _check_sizes(name, gt_info.width, gt_info.height, lr_width, lr_height, scale)
        if lr_info.frame_count != frame_count and (gt_info.is_frame_folder and lr_info.is_frame_folder):
            raise VsrError(lr, f"has {lr_info.frame_count} frames but the ground truth {gt} has {frame_count}")
    if lr_height == 0 or lr_width == 0:
        raise VsrError(gt, f"is {gt_info.width}x{gt_info.height}: too small for x{scale}")
    lr_region = _centre(lr_height, lr_width, crop, scale)
    gt_region = Region(lr_region.top * scale, lr_region.left * scale, lr_region.height * scale,
                       lr_region.width * scale)
    if max_frames:
        frame_count = min(frame_count, max_frames)
    return BenchClip(name, gt, lr, scale, degradation, gt_region, lr_region, frame_count)


def _check_sizes(name: str, gt_width: int, gt_height: int, lr_width: int, lr_height: int, scale: int) -> None:
    """The ground truth may exceed scale x low-res by less than the scale (it is then cropped), no more."""
    if not (0 <= gt_width - scale * lr_width < scale and 0 <= gt_height - scale * lr_height < scale):
        raise VsrError(None, f"clip {name}: ground truth is {gt_width}x{gt_height} but low-res is "
                             f"{lr_width}x{lr_height}, which is not x{scale}")


def _centre(height: int, width: int, crop: tuple[int, int] | None, scale: int) -> Region:
    """The low-res region whose ground truth is the centre crop (width, height) of the ground truth."""
    if crop is None:
        return Region(0, 0, height, width)
    keep_height, keep_width = min(height, crop[1] // scale), min(width, crop[0] // scale)
    if keep_height == 0 or keep_width == 0:
        raise VsrError(None, f"crop {crop[0]}x{crop[1]} is smaller than the scale {scale}")
    return Region((height - keep_height) // 2, (width - keep_width) // 2, keep_height, keep_width)


def _read_8bit(source: Path, frame_count: int) -> Iterator[np.ndarray]:
    return islice(read_8bit(source), frame_count)
