"""Training clips: (low-res, high-res) pairs cut from videos, PNG frame folders and still images.

Every sample is a pure function of (seed, sample index), so the data stream after a resume is the one an
uninterrupted run would have seen, with no loader state to save, and any DDP rank can draw its share.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from vsr.degradations import bicubic_downsample, blur_downsample
from vsr.errors import VsrError
from vsr.io.frame_folder import list_frames, read_png
from vsr.io.probe import probe
from vsr.io.reader import FrameReader
from vsr.io.writer import is_video_path
from vsr.metrics import frames_to_8bit
from vsr.train.motion import random_motion_clip

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


@dataclass(frozen=True)
class DataSettings:
    """The `data:` section of a training config."""

    sources: list[str]  # video files, PNG frame folders, and folders of still images
    frames: int = 7  # per clip
    crop: int = 64  # low-res crop side; the high-res crop is scale times larger
    scale: int = 4
    degradation: str = "BI"  # BI, BD or realworld
    # With realworld: the share of clips left undamaged (plain bicubic). A model that only ever saw blur
    # takes clean input for blurred and sharpens it again, drawing outlines beside edges; a few clean clips
    # teach it to leave detail that is already there alone.
    clean_fraction: float = 0.0
    image_fraction: float = 0.5  # share of clips made from still images, when both kinds are present
    max_frame_step: int = 2  # clips from videos skip up to this many frames, for larger motion
    cache_dir: str = "runs/cache"  # decoded videos, memory-mapped, so that random access is cheap
    motion: dict = field(default_factory=dict)  # keyword arguments of random_motion_clip
    # Videos taller than this are shrunk by the smallest whole factor that fits (area averaging): most camera
    # footage was lossy before it reached us, and shrinking it by 2 hides its compression artefacts, so the
    # model learns to restore detail rather than to draw blocking. 0 keeps every video at its size.
    max_source_height: int = 0


class VideoFrames:
    """All frames of one video or frame folder, decoded once into a memory-mapped uint8 array."""

    def __init__(self, path: Path, cache_dir: Path, max_height: int = 0) -> None:
        info = probe(path)
        factor = source_shrink_factor(info.height, max_height)
        cache_dir.mkdir(parents=True, exist_ok=True)
        size = f"{info.width // factor}x{info.height // factor}"
        cache = cache_dir / f"{path.stem}-{size}-{path.stat().st_size}.npy"
        if not cache.exists():
            frames = frames_to_8bit([shrink(frame.image, factor) for frame in FrameReader(info)], str(path))
            # One file per process: DDP ranks may decode the same video at once; the last rename wins, whole.
            partial = cache.with_suffix(f".{os.getpid()}.partial.npy")
            array = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(len(frames), *frames[0].shape))
            for index, frame in enumerate(frames):  # frame by frame: np.stack would copy the whole video again
                array[index] = frame
            array.flush()
            del array
            os.replace(partial, cache)
        self.frames = np.load(cache, mmap_mode="r")
        self.path = path

    def clip(self, start: int, count: int, step: int, top: int, left: int, size: int) -> np.ndarray:
        indices = start + step * np.arange(count)
        return np.ascontiguousarray(self.frames[indices, top:top + size, left:left + size])


def source_shrink_factor(height: int, max_height: int) -> int:
    """The smallest whole factor that brings `height` to at most `max_height` (1 when there is no limit)."""
    return max(1, -(-height // max_height)) if max_height else 1


def shrink(image: np.ndarray, factor: int) -> np.ndarray:
    """Area-average an (H, W, 3) image by a whole factor; factor 1 returns it as it is."""
    if factor == 1:
        return image
    height, width = image.shape[0] // factor, image.shape[1] // factor
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def find_sources(paths: list[str], cache_dir: Path,
                 max_height: int = 0) -> tuple[list[VideoFrames], list[np.ndarray]]:
    """Videos (files and PNG frame folders) and still images under the given paths."""
    videos, images = [], []
    for name in paths:
        path = Path(name)
        if not path.exists():
            raise VsrError(path, "training source does not exist")
        if path.is_file() and is_video_path(path):
            videos.append(VideoFrames(path, cache_dir, max_height))
        elif path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(_read_image(path))
        elif path.is_dir() and _is_frame_folder(path):
            videos.append(VideoFrames(path, cache_dir, max_height))
        elif path.is_dir():
            nested = sorted(p for p in path.rglob("*") if p.is_file())
            videos += [VideoFrames(p, cache_dir, max_height) for p in nested if is_video_path(p)]
            images += [_read_image(p) for p in nested if p.suffix.lower() in IMAGE_SUFFIXES]
    if not videos and not images:
        raise VsrError(None, f"no videos or images found in {', '.join(paths)}")
    return videos, images


def _is_frame_folder(path: Path) -> bool:
    """A folder of numbered PNGs, as Vimeo-90K and REDS ship clips; a folder of photos has other names."""
    frames = list_frames(path) if any(path.glob("*.png")) else []
    return len(frames) > 1 and all(p.stem.isdigit() for p in frames)


def _read_image(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".png":
        return frames_to_8bit([read_png(path)], str(path))[0]
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise VsrError(path, "cannot read this image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class TrainingClips(torch.utils.data.Dataset):
    """Sample i -> (lr (T, 3, h, w), hr (T, 3, scale*h, scale*w)), float in [0, 1]; endless, deterministic."""

    def __init__(self, settings: DataSettings, seed: int = 0) -> None:
        self.settings = settings
        self.seed = seed
        self.videos, self.images = find_sources(settings.sources, Path(settings.cache_dir),
                                                 settings.max_source_height)
        self.size = settings.crop * settings.scale
        span = (settings.frames - 1) * settings.max_frame_step + 1
        self.videos = [v for v in self.videos if len(v.frames) >= span and min(v.frames.shape[1:3]) >= self.size]
        if not self.videos and not self.images:
            raise VsrError(None, f"no training source is large enough for {settings.frames} frames of {self.size} px")

    def __len__(self) -> int:
        return 2**62  # endless: the training loop decides how many samples it draws

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        use_image = not self.videos or (self.images and rng.random() < self.settings.image_fraction)
        hr = self._image_clip(rng) if use_image else self._video_clip(rng)
        hr = augment(hr, rng)
        hr_tensor = torch.from_numpy(hr).permute(0, 3, 1, 2).float() / 255
        return degrade(hr, hr_tensor, self.settings, rng), hr_tensor

    def _video_clip(self, rng: np.random.Generator) -> np.ndarray:
        video = self.videos[rng.integers(len(self.videos))]
        count, height, width = video.frames.shape[:3]
        step = int(rng.integers(1, self.settings.max_frame_step + 1))
        start = int(rng.integers(0, count - (self.settings.frames - 1) * step))
        top, left = int(rng.integers(0, height - self.size + 1)), int(rng.integers(0, width - self.size + 1))
        return video.clip(start, self.settings.frames, step, top, left, self.size)

    def _image_clip(self, rng: np.random.Generator) -> np.ndarray:
        image = self.images[rng.integers(len(self.images))]
        return random_motion_clip(image, self.settings.frames, (self.size, self.size), rng, **self.settings.motion)


def augment(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random horizontal and vertical flips, transposition and temporal reversal of a (T, H, W, 3) clip."""
    if rng.random() < 0.5:
        clip = clip[:, :, ::-1]
    if rng.random() < 0.5:
        clip = clip[:, ::-1]
    if rng.random() < 0.5:
        clip = clip.transpose(0, 2, 1, 3)
    if rng.random() < 0.5:
        clip = clip[::-1]
    return np.ascontiguousarray(clip)


def degrade(hr: np.ndarray, hr_tensor: torch.Tensor, settings: DataSettings, rng: np.random.Generator) -> torch.Tensor:
    """The low-res clip for a high-res one, by the configured degradation."""
    degradation = settings.degradation
    # Drawn only when asked for, so that runs without clean clips keep the sample stream they always had.
    if degradation == "realworld" and settings.clean_fraction and rng.random() < settings.clean_fraction:
        degradation = "BI"
    if degradation == "BI":
        return bicubic_downsample(hr_tensor, settings.scale).float()
    if degradation == "BD":
        return blur_downsample(hr_tensor, settings.scale)
    if degradation == "realworld":
        from vsr.realworld import degrade_realworld

        lr = degrade_realworld(hr, settings.scale, rng)
        return torch.from_numpy(lr).permute(0, 3, 1, 2).float() / 255
    raise VsrError(None, f"unknown degradation '{settings.degradation}' (BI, BD or realworld)")
