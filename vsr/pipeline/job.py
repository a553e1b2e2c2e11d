"""One upscaling job from source to destination: the function behind `vsr run` (and later `vsr batch`)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path

import torch
from torch import nn

from vsr.errors import VsrError
from vsr.io.destination import FRAME_FOLDER, check_destination, remove_stale_partials
from vsr.io.frames import Frame
from vsr.io.live import LiveInput, is_stream_address
from vsr.io.probe import DEFAULT_FOLDER_FPS, probe
from vsr.io.reader import FrameReader
from vsr.io.memory import check_upscalable
from vsr.io.writer import EncoderSettings, is_video_path, open_writer
from vsr.models.refiner import DiffusionRefiner, Sampling
from vsr.pipeline.inference import NonFiniteOutput, upscale_frames, uses_streaming
from vsr.pipeline.window_size import AUTO, FIXED_WINDOW, Chunk, WindowStats, carries_state
from vsr.pipeline.refinement import Refinement, refine_frames
from vsr.pipeline.report import JobReport, check_complete, say_deinterlacing, source_notes
from vsr.pipeline.stabilize import Stabilization, stabilized_stage
from vsr.pipeline.threads import Overload, run_threaded
from vsr.pipeline.tiles import usable_tile_size
from vsr.progress import Progress, say


@dataclass(frozen=True)
class LiveOptions:
    """How a live source is read and a stream target written (see vsr/io/live.py)."""

    input_format: str | None = None  # for pipes whose container cannot be probed from the first bytes
    reconnect: bool = False  # open the address again when the sender stops
    read_timeout: float | None = 10.0  # seconds of silence that end a network input; None: wait forever
    stream_format: str | None = None  # the container of a stream target; None: the usual one for the address
    on_overload: str = "delay"  # when the model is slower than a live source: "delay" (fall behind) or "drop"


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
        elif carries_state(model):  # likewise forward_window(), for windows that carry state
            model.forward_window = torch.compile(model.forward_window, dynamic=True, mode=mode)
        else:
            model = torch.compile(model, dynamic=True, mode=mode)  # dynamic: windows at a shot's end are shorter
    return model


def upscale_video(source: Path | str | LiveInput, target: Path | str, model: nn.Module, device: torch.device, *, chunk: Chunk = AUTO,
                  tile: int = 0, tile_overlap: int = 16, scene_cuts: bool = True, precision: str = "auto",
                  compile_model: bool = False, settings: EncoderSettings = EncoderSettings(),
                  overwrite: bool = False, progress: bool = True,
                  refinement: Refinement | None = None, strict: bool = False,
                  stabilization: Stabilization | None = None,
                  folder_fps: Fraction | None = None, live_options: LiveOptions | None = None,
                  deinterlace: str = "frame") -> JobReport:
    """Upscale `source` into `target`; the target appears only if the whole video was written.

    `tile` > 0 runs the model on overlapping tiles of that many input pixels (less memory); `scene_cuts` keeps
    temporal models from mixing frames across a cut; `refinement` runs the diffusion refiner on the model's
    output, in the same stage; `stabilization` blends each output with the previous one along the flow
    (after the model, before the refiner). `strict` makes any decoding problem an error instead of a warning, for
    pipelines that must never ship a partial video. `folder_fps` times a PNG-folder source (default 25).
    `deinterlace` says how an interlaced source's frames are made progressive before the model sees them: a frame
    per frame ("frame"), a frame per field ("field", twice the frame rate), or not at all ("off").

    `source` may be '-' (standard input) or a URL, read once as it arrives (or such a source already open);
    `target` may be '-' (standard output) or a URL, written as frames are made (`live_options` says how). A
    live source has no end but a stop: Ctrl-C or SIGTERM then ends a file target with the frames upscaled so
    far, instead of removing it.
    """
    _check_tiles(model, tile, tile_overlap)
    options = live_options or LiveOptions()
    streamed = is_stream_address(str(target))
    live_source = isinstance(source, LiveInput) or is_stream_address(str(source))
    if not streamed:
        target = Path(target)
        reads = files_read(model, refinement) + ([] if live_source else [Path(source)])
        check_destination(target, overwrite, reads=reads, folder=None if is_video_path(target) else FRAME_FOLDER)
    opened = None
    if isinstance(source, LiveInput):
        live = source
    elif live_source:  # opened only now: a listening socket waits here for its sender
        live = opened = open_live(str(source), options)
    else:
        live = None
        source = Path(source)
    info = live.info if live is not None else probe(source, folder_fps or DEFAULT_FOLDER_FPS)
    try:
        return _upscale(live.address if live else source, target, info, live, model, device, chunk, tile,
                        tile_overlap, scene_cuts, precision, compile_model, settings, progress, refinement, strict,
                        stabilization, folder_fps, options, deinterlace)
    finally:
        if opened is not None:
            opened.close()


def open_live(address: str, options: LiveOptions) -> LiveInput:
    """A live source, opened and probed by its first frame (a listening socket waits for its sender)."""
    return LiveInput(address, options.input_format, options.reconnect, options.read_timeout or None)


def _upscale(source, target, info, live, model, device, chunk, tile, tile_overlap, scene_cuts, precision,
             compile_model, settings, progress, refinement, strict, stabilization, folder_fps,
             options: LiveOptions, deinterlace: str) -> JobReport:
    """upscale_video once the source is open and the target checked."""
    if live is not None and chunk == AUTO:
        chunk = FIXED_WINDOW  # a live viewer waits for each window: the largest that fits memory is too long
    if live is not None and not uses_streaming(model) and not getattr(model, "context_frames", 0):
        chunk = 1  # a per-frame model gains nothing from waiting for a window, and the viewer waits less
    check_upscalable(source, info.width, info.height, model.scale, tile)
    if isinstance(target, Path):
        remove_stale_partials(target)
    model = prepare_model(model, device, compile_model)
    reader = FrameReader(info, live, deinterlace)
    if reader.deinterlaces:
        say_deinterlacing(source, reader)
    info = reader.output  # with a frame per field, twice the frames at twice the rate
    started = time.perf_counter()
    frames = 0
    bar = Progress(info.frame_count, "frame", display_name(source), progress)
    try:
        writer = open_writer(target, info.width * model.scale, info.height * model.scale, info, settings, live,
                             options.stream_format)
    except BaseException:  # the writer removed its own partial; a signal now must not leave the bar drawn
        bar.close()
        raise
    try:  # at once: from here on, whatever stops the run removes the partial
        windows = WindowStats()
        stage = partial(upscale_frames, model=model, device=device, chunk=chunk, tile=tile, tile_overlap=tile_overlap,
                        scene_cuts=scene_cuts, precision=precision, stats=windows)
        if stabilization is not None:
            stage = partial(stabilized_stage, stage, stabilization=stabilization, device=device, scale=model.scale,
                            scene_cuts=scene_cuts)
        if refinement is not None:
            stage = partial(_refined, stage, refinement.refiner.to(device), device, refinement.sampling, scene_cuts)
        overload = None
        if live is not None:
            overload = Overload(options.on_overload == "drop", partial(_behind, bar, info),
                                lambda: _say_overload(bar, info, options.on_overload))
            _say_latency(model, chunk, info)
        for frame in run_threaded(reader, stage, overload=overload):
            writer.write(frame)
            frames += 1
            bar.update()
        check_complete(source, reader, frames, strict)
        writer.close()
    except torch.OutOfMemoryError:
        writer.abort()
        raise VsrError(source, f"{device} ran out of memory; try a smaller --chunk or --tile") from None
    except NonFiniteOutput as error:
        writer.abort()
        raise VsrError(source, error.problem) from None
    except KeyboardInterrupt as interrupt:
        if live is None or frames == 0 or isinstance(target, str):
            writer.abort()
            raise
        writer.close()  # a live source ends only by a stop: keep what was upscaled
        interrupt.outcome = f"{target} holds the {frames} frames upscaled before the stop"
        raise
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    notes = source_notes(source, reader, frames)
    if folder_fps is not None and not info.is_frame_folder:
        notes.append(f"{source}: --fps applies to PNG-folder inputs; a video file keeps its own frame times")
    if live is not None:
        notes += [f"{source}: {note}" for note in live.notes]
    if overload is not None and overload.dropped:
        notes.append(f"{source}: {overload.dropped} of {reader.frames_read} frames skipped to keep up "
                     "(--on-overload drop); the kept frames have their own timestamps")
    notes += [f"{target}: {note}" for note in writer.notes]
    return JobReport(frames, time.perf_counter() - started, target, notes, windows)


def _behind(bar: Progress, info, grace_seconds: float = 2.0) -> bool:
    """Whether the output, measured since it began (after a grace time for warm-up), runs slower than the source."""
    return time.monotonic() - bar.started > grace_seconds and bar.rate() < 0.97 * float(info.frame_rate)


def _say_overload(bar: Progress, info, mode: str) -> None:
    """Once, when a live source first outruns the model: the measured rates, and what happens now."""
    rate = bar.rate()
    said = (f"the model upscales {rate:.2f} frames/s so far and the live input sends {float(info.frame_rate):.4g}: ")
    if mode == "drop":
        said += "skipping frames to keep up (the kept frames keep their timestamps)"
    else:
        said += "the output falls further behind the input (--on-overload drop skips frames to stay live)"
    say(f"vsr: warning: {said}")


def _say_latency(model: nn.Module, chunk: int, info) -> None:
    """For a live source: how many frames of delay the model's windows add (none for a streaming model)."""
    if uses_streaming(model):
        return
    context = max(0, int(getattr(model, "context_frames", 0) or 0))
    delay = chunk - 1 + context
    if delay > 0:
        say(f"vsr: note: {type(model).__name__} works on windows of {chunk} frames with {context} frames of "
            f"look-ahead: each frame leaves up to {delay} frames ({delay / float(info.frame_rate):.2f} s) after it "
            "arrives; a streaming model (frvsr) leaves it at once")


def display_name(source: Path | str) -> str:
    """The short name progress lines give a source: a file's name, or the address of a live one."""
    return source.name if isinstance(source, Path) else ("stdin" if source == "-" else str(source))


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
