"""Running models over bench clips through the same pipeline as `vsr run`, scoring and timing as they go."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from itertools import islice, tee
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from vsr.bench.clips import BenchClip
from vsr.bench.measure import ModelTimer, PeakMemory
from vsr.bench.scoring import ClipScorer, ClipScores, sampled_niqe
from vsr.errors import VsrError
from vsr.io.frame_folder import write_png
from vsr.io.frames import Frame
from vsr.pipeline.inference import upscale_frames, uses_streaming
from vsr.pipeline.refinement import Refinement, refine_frames
from vsr.pipeline.window_size import WindowStats
from vsr.pipeline.stabilize import Stabilization, stabilized_stage
from vsr.progress import Progress

FRAME_TIME = Fraction(1, 25)  # bench frames carry their index as pts; the time base only has to be valid


@dataclass
class Settings:
    """How the models run: as `vsr run` would with the same options."""

    device: torch.device
    chunk: int | str = "auto"  # core frames per window, or "auto" (as many as fit half the free memory)
    tile: int = 0
    tile_overlap: int = 16
    precision: str = "auto"
    scene_cuts: bool = True
    temporal: bool = True  # tOF and warping error (three optical flows per frame)
    niqe_every: int = 0  # NIQE of the outputs' frames 0, N, 2N, ...; 0: not measured
    save_frames: Path | None = None  # SR frames go to save_frames/<model>/<clip>/
    refinement: Refinement | None = None  # the diffusion refiner after the model, as `vsr run --refine`
    stabilization: Stabilization | None = None  # flicker control after the model, as `vsr run --stabilize`
    progress: bool = False  # a bar per clip on a terminal, a plain line now and then elsewhere


@dataclass
class ClipResult:
    clip: str
    width: int  # of the scored (ground-truth) frames
    height: int
    scores: ClipScores
    boundaries: list[int] | None  # first frame of each window; None for models that stream
    pipeline_seconds: float  # low-res frames in memory to SR frames in memory
    model_seconds: float
    peak_ram_mb: float
    peak_gpu_mb: float | None
    frames_computed: int = 0  # frames the model ran on: a window's context frames count, and count again
    window_frames: int | None = None  # core frames per window; None for models that stream

    @property
    def frames(self) -> int:
        return self.scores.frames

    def summary(self) -> dict[str, object]:
        """The clip's figures, under the names the JSON and CSV use."""
        return {**self.scores.summary(),
                "fps": _rate(self.frames, self.pipeline_seconds),
                "fps_model": _rate(self.frames, self.model_seconds),
                "peak_mem_mb": self.peak_ram_mb, "peak_gpu_mem_mb": self.peak_gpu_mb,
                "frames": self.frames, "width": self.width, "height": self.height,
                "frames_computed_per_output": self.frames_computed / self.frames if self.frames else None,
                "window_frames": self.window_frames}


@dataclass
class SpeedPoint:
    """Frames per second at one input size, on synthetic frames: the speed-against-resolution curve."""

    lr_width: int
    lr_height: int
    fps: float
    fps_model: float
    peak_mem_mb: float
    peak_gpu_mem_mb: float | None


@dataclass
class ModelResult:
    name: str
    clips: list[ClipResult] = field(default_factory=list)
    speed: list[SpeedPoint] = field(default_factory=list)


def bench_model(name: str, model: nn.Module, clips: list[BenchClip], settings: Settings,
                progress: Callable[[str], None] | None = None) -> ModelResult:
    """Every clip through `model`, after a short warm-up that keeps one-time costs out of the timings."""
    _warm_up(model, clips[0], settings)
    result = ModelResult(name)
    for clip in clips:
        result.clips.append(bench_clip(name, model, clip, settings))
        if progress is not None:
            summary = result.clips[-1].summary()
            progress(f"{name} on {clip.name}: {summary['frames']} frames, PSNR-Y {summary['psnr_y']:.2f} dB, "
                     f"{summary['fps']:.2f} frames/s")
    return result


def bench_clip(name: str, model: nn.Module, clip: BenchClip, settings: Settings) -> ClipResult:
    """Upscale one clip as `vsr run` does and score each output frame against its ground truth on arrival."""
    if clip.lr is None:
        # The ground truth is decoded once: one copy makes the low-res input, the other is scored against.
        # tee holds only the frames the pipeline has read ahead, at most a window.
        for_input, targets = tee(clip.gt_frames())
        low_res = clip.lr_frames(for_input)
    else:
        targets, low_res = clip.gt_frames(), clip.lr_frames()
    source = _TimedFrames(low_res)
    boundaries: list[int] = []
    windows = WindowStats()
    outputs = _upscale(model, source, settings, on_window=lambda core: boundaries.append(core[0].pts),
                       stats=windows)
    scorer = ClipScorer(clip.scale, settings.temporal, settings.niqe_every)
    seconds = 0.0
    with PeakMemory(settings.device) as memory, ModelTimer(model, settings.device) as timer, \
            Progress(clip.frame_count, "frame", f"{name} on {clip.name}", settings.progress) as bar:
        for index, target in enumerate(targets):
            start = time.perf_counter()
            output = next(outputs, None)
            seconds += time.perf_counter() - start
            if output is None:
                raise VsrError(clip.lr, f"has {index} frames, fewer than the ground truth {clip.gt}")
            scorer.add(output.image, target)
            bar.update()
            if settings.save_frames is not None:
                _save(settings.save_frames / name / clip.name, index, output.image)
        if clip.lr is not None and next(outputs, None) is not None:
            raise VsrError(clip.lr, f"has more frames than the ground truth {clip.gt}")
    outputs.close()  # the pipeline's generators end here, not whenever they are collected
    # Reading or making the low-res frames is the bench's work, not the pipeline's.
    pipeline_seconds = seconds - source.seconds
    # Models that step through the clip have no windows; for per-frame models the seams are a control, the
    # difference that content alone makes between boundary frames and the rest.
    return ClipResult(clip.name, clip.gt_region.width, clip.gt_region.height, scorer.scores,
                      None if uses_streaming(model) else boundaries, pipeline_seconds, timer.seconds, memory.ram_mb,
                      memory.gpu_mb, windows.computed,
                      None if windows.plan is None or windows.plan.mode == "stream" else windows.plan.size)


def ground_truth_niqe(clip: BenchClip, every: int) -> list[float | None]:
    """NIQE of the ground truth on the frames the outputs' NIQE samples: what the real footage scores.

    NIQE has no reference, so a model's figure means most beside this one: an output can score better
    than its ground truth (sharper than a soft source), and compressed or noisy footage scores poorly.
    """
    return [sampled_niqe(frame, index, every, clip.scale) for index, frame in enumerate(clip.gt_frames())]


def speed_at_sizes(model: nn.Module, clip: BenchClip, sizes: list[tuple[int, int]], frames: int,
                   settings: Settings) -> list[SpeedPoint]:
    """Frames/s at each low-res (width, height): the clip's first frame resized, repeated `frames` times."""
    first = next(clip.lr_frames(clip.gt_frames()) if clip.lr is None else clip.lr_frames())
    points = []
    for width, height in sizes:
        image = cv2.resize(first, (width, height), interpolation=cv2.INTER_AREA)
        # Each copy shifted by a pixel, so that motion-compensating models have motion to follow.
        images = [np.roll(image, shift, axis=1) for shift in range(frames)]
        _run(model, images[:2], settings)  # warm-up at this size
        source = (Frame(img, i, FRAME_TIME) for i, img in enumerate(images))
        with PeakMemory(settings.device) as memory, ModelTimer(model, settings.device) as timer:
            start = time.perf_counter()
            for _ in _upscale(model, source, settings):
                pass
            seconds = time.perf_counter() - start
        points.append(SpeedPoint(width, height, _rate(frames, seconds), _rate(frames, timer.seconds),
                                 memory.ram_mb, memory.gpu_mb))
    return points


def _warm_up(model: nn.Module, clip: BenchClip, settings: Settings) -> None:
    images = list(islice(clip.lr_frames(clip.gt_frames()) if clip.lr is None else clip.lr_frames(), 2))
    _run(model, images, settings)


def _run(model: nn.Module, images: list[np.ndarray], settings: Settings) -> None:
    for _ in _upscale(model, (Frame(img, i, FRAME_TIME) for i, img in enumerate(images)), settings):
        pass


def _upscale(model: nn.Module, frames: Iterable[Frame], settings: Settings,
             on_window: Callable[[list[Frame]], None] | None = None,
             stats: WindowStats | None = None) -> Iterator[Frame]:
    stage = partial(upscale_frames, model=model, device=settings.device, chunk=settings.chunk, tile=settings.tile,
                    tile_overlap=settings.tile_overlap, scene_cuts=settings.scene_cuts,
                    precision=settings.precision, on_window=on_window, stats=stats)
    if settings.stabilization is not None:
        outputs = stabilized_stage(stage, frames, settings.stabilization, settings.device, model.scale,
                                   settings.scene_cuts)
    else:
        outputs = stage(frames)
    if settings.refinement is None:
        return outputs
    refinement = settings.refinement
    return refine_frames(outputs, refinement.refiner.to(settings.device), settings.device, refinement.sampling,
                         settings.scene_cuts)


class _TimedFrames:
    """Low-res images as pipeline frames (pts = index), adding up the seconds it takes to produce them."""

    def __init__(self, images: Iterator[np.ndarray]) -> None:
        self._images = enumerate(images)
        self.seconds = 0.0

    def __iter__(self) -> _TimedFrames:
        return self

    def __next__(self) -> Frame:
        start = time.perf_counter()
        try:
            index, image = next(self._images)
        finally:
            self.seconds += time.perf_counter() - start
        return Frame(image, index, FRAME_TIME)


def _save(folder: Path, index: int, image: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_png(folder / f"{index:08d}.png", image)


def _rate(frames: int, seconds: float) -> float:
    return frames / seconds if seconds > 0 else float("inf")
