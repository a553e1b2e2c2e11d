"""One upscaling job from source to destination: the function behind `vsr run` (and later `vsr batch`)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from vsr.errors import VsrError
from vsr.io.destination import FRAME_FOLDER, check_destination, remove_stale_partials
from vsr.io.frames import Frame
from vsr.io.probe import probe
from vsr.io.reader import FrameReader
from vsr.io.memory import check_upscalable
from vsr.io.writer import EncoderSettings, is_video_path, open_writer
from vsr.models.refiner import DiffusionRefiner, Sampling
from vsr.pipeline.inference import NonFiniteOutput, upscale_frames, uses_streaming
from vsr.pipeline.refinement import Refinement, refine_frames
from vsr.pipeline.threads import run_threaded
from vsr.pipeline.tiles import usable_tile_size


@dataclass
class JobReport:
    frames: int
    seconds: float
    output: Path
    notes: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def prepare_model(model: nn.Module, device: torch.device, compile_model: bool = False,
                  cuda_graphs: bool = False) -> nn.Module:
    """On the device; channels-last on a GPU, where convolutions run faster in it; optionally compiled.

    `cuda_graphs` (with compile_model, on a GPU) compiles in "reduce-overhead" mode, which replays recorded
    CUDA graphs: it saves the per-kernel launch cost that dominates small frames, at one recording per shape.
    """
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if compile_model:
        mode = "reduce-overhead" if cuda_graphs and device.type == "cuda" else None
        if uses_streaming(model):
            # The pipeline calls step(), not forward(), on a streaming model: compiling the module would compile
            # nothing it runs. A stream's frames share one shape, so the first one's is kept static.
            model.step = torch.compile(model.step, mode=mode)
        else:
            model = torch.compile(model, dynamic=True, mode=mode)  # dynamic: windows at a shot's end are shorter
    return model


def upscale_video(source: Path, target: Path, model: nn.Module, device: torch.device, *, chunk: int = 8,
                  tile: int = 0, tile_overlap: int = 16, scene_cuts: bool = True, precision: str = "auto",
                  compile_model: bool = False, settings: EncoderSettings = EncoderSettings(),
                  overwrite: bool = False, progress: bool = True,
                  refinement: Refinement | None = None, strict: bool = False) -> JobReport:
    """Upscale `source` into `target`; the target appears only if the whole video was written.

    `tile` > 0 runs the model on overlapping tiles of that many input pixels (less memory); `scene_cuts` keeps
    temporal models from mixing frames across a cut; `refinement` runs the diffusion refiner on the model's
    output, in the same stage. `strict` makes any decoding problem an error instead of a warning, for
    pipelines that must never ship a partial video.
    """
    _check_tiles(model, tile, tile_overlap)
    info = probe(source)
    check_destination(target, overwrite, reads=(source, *files_read(model, refinement)),
                      folder=None if is_video_path(target) else FRAME_FOLDER)
    check_upscalable(source, info.width, info.height, model.scale, tile)
    remove_stale_partials(target)
    model = prepare_model(model, device, compile_model)
    reader = FrameReader(info)
    started = time.perf_counter()
    frames = 0
    bar = tqdm(total=info.frame_count or None, unit="frame", desc=source.name, disable=not progress or None,
               dynamic_ncols=True, leave=False)
    try:
        writer = open_writer(target, info.width * model.scale, info.height * model.scale, info, settings)
    except BaseException:  # the writer removed its own partial; a signal now must not leave the bar drawn
        bar.close()
        raise
    try:  # at once: from here on, whatever stops the run removes the partial
        stage = partial(upscale_frames, model=model, device=device, chunk=chunk, tile=tile, tile_overlap=tile_overlap,
                        scene_cuts=scene_cuts, precision=precision)
        if refinement is not None:
            stage = partial(_refined, stage, refinement.refiner.to(device), device, refinement.sampling, scene_cuts)
        for frame in run_threaded(reader, stage):
            writer.write(frame)
            frames += 1
            bar.update()
        if frames == 0:
            raise VsrError(source, "no frame could be decoded")
        if strict and reader.problems:
            raise VsrError(source, f"{'; '.join(reader.problems)} (--strict: nothing written)")
        writer.close()
    except torch.OutOfMemoryError:
        writer.abort()
        raise VsrError(source, f"{device} ran out of memory; try a smaller --chunk or --tile") from None
    except NonFiniteOutput as error:
        writer.abort()
        raise VsrError(source, error.problem) from None
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    notes = [f"{source}: {problem}" for problem in reader.problems]
    if reader.frames_lost:
        notes.append(f"{source}: the output has the {frames} frames that decoded")
    notes += [f"{target}: {note}" for note in writer.notes]
    return JobReport(frames, time.perf_counter() - started, target, notes)


def files_read(model: nn.Module, refinement: Refinement | None) -> list[Path]:
    """The weight files behind the model and the refiner: no output may replace them."""
    models = [model] + ([refinement.refiner] if refinement is not None else [])
    return [Path(m.weights_file) for m in models if getattr(m, "weights_file", None) is not None]


def _refined(stage, refiner: DiffusionRefiner, device: torch.device, sampling: Sampling, scene_cuts: bool,
             frames: Iterable[Frame]) -> Iterator[Frame]:
    return refine_frames(stage(frames), refiner, device, sampling, scene_cuts)


def _check_tiles(model: nn.Module, tile: int, overlap: int) -> None:
    """Refuse a tile size that cannot work before any file is opened."""
    if tile > 0:
        try:
            usable_tile_size(tile, overlap, model.size_multiple)
        except ValueError as error:
            raise VsrError(None, str(error)) from None
