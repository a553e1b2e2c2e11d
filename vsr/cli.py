"""The `vsr` command line: parse, call the library, report. Errors become one line, never a traceback."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from vsr import __version__
from vsr.compare import DEFAULT_EMBED_LIMIT_MB
from vsr.errors import VsrError
from vsr.io.destination import discard_unfinished
from vsr.signals import exit_status, install_stop_handlers, run_until_exit, signal_name

EXIT_ERROR = 1
# `vsr bench --niqe-every`: NIQE changes little from one frame to the next, and scoring every fifth frame
# keeps its cost (0.15 s a 1280x720 frame on 2 cores) well below the models' own.
NIQE_EVERY = 5


class FriendlyGroup(click.Group):
    """Turns VsrError, Ctrl-C, SIGTERM and SIGHUP into a one-line message and a non-zero exit."""

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, **kwargs)
        except KeyboardInterrupt as interrupt:  # before click's own handling begins (shell completion)
            sys.exit(_stopped(interrupt))

    def make_context(self, *args, **kwargs) -> click.Context:
        """A stop while the arguments are parsed (their types may import modules) would otherwise end
        in click's "Aborted!" and exit status 1."""
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt as interrupt:
            sys.exit(_stopped(interrupt))

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VsrError as error:
            discard_unfinished()
            _say(f"vsr: error: {error}")
            ctx.exit(EXIT_ERROR)
        except KeyboardInterrupt as interrupt:  # the stop handler already holds off further signals
            ctx.exit(_stopped(interrupt))


def _stopped(interrupt: KeyboardInterrupt) -> int:
    """Says how the run was stopped and what was kept; returns the exit status that tells which signal."""
    discard_unfinished()
    how = "interrupted" if exit_status(interrupt) == 130 else f"stopped by {signal_name(interrupt)}"
    _say(f"vsr: {how}; {getattr(interrupt, 'outcome', 'nothing was written to the output')}")
    return exit_status(interrupt)


def _say(line: str) -> None:
    """A last line to stderr; after SIGHUP the terminal may be gone, and that must not become a traceback."""
    try:
        click.echo(line, err=True)
    except OSError:
        pass


class ChunkSize(click.ParamType):
    """--chunk: "auto" (the largest window that fits half the free memory) or a number of frames."""

    name = "auto|N"

    def convert(self, value, param, ctx):
        from vsr.pipeline.chunk_option import parse_chunk

        try:
            return parse_chunk(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


@click.group(cls=FriendlyGroup)
@click.version_option(__version__, prog_name="vsr")
def cli() -> None:
    """Temporal video super-resolution."""


def backend_option(command):
    """--backend, shared by run, bench and batch."""
    return click.option(
        "--backend", type=click.Choice(["auto", "torch", "openvino"]), default="auto", show_default=True,
        help="What runs the model: auto is OpenVINO on a CPU where the model has an OpenVINO form (several times "
             "faster there), torch elsewhere and on a GPU.")(command)


def _engine(model, backend: str, device, precision: str, compile_model: bool):
    """The model on its engine (see vsr/backends/choice.py), and whether --compile still applies."""
    from vsr.backends.choice import choose_engine

    engine = choose_engine(model, backend, device, precision)
    if engine.note:
        _say(f"vsr: note: {engine.note}")
    if compile_model and engine.backend != "torch":
        _say("vsr: note: --compile applies to the torch backend; OpenVINO compiles the model itself")
        compile_model = False
    return engine, compile_model


class FrameRate(click.ParamType):
    """A frame rate as a number or a fraction: 25, 23.976, 30000/1001."""

    name = "RATE"

    def convert(self, value, param, ctx):
        from fractions import Fraction

        if isinstance(value, Fraction):
            return value
        try:
            rate = Fraction(str(value).strip())
        except (ValueError, ZeroDivisionError):
            self.fail(f"{value!r} is not a frame rate (25, 23.976 or 30000/1001)", param, ctx)
        if not 0 < rate <= 1000:
            self.fail(f"{value} is not a frame rate between 0 and 1000", param, ctx)
        return rate


def fps_option(command):
    """--fps, shared by run and batch: the timing of PNG-folder inputs, which carry none."""
    return click.option(
        "--fps", "folder_fps", type=FrameRate(), default=None,
        help="Frame rate of a PNG-folder input, which carries no timing (default 25); a video file keeps its "
             "own frame times.")(command)


def refine_options(command):
    """The diffusion refiner's options, shared by `vsr run` and `vsr bench`; defaults are Sampling's."""
    from vsr.models.refiner_sampling import Sampling

    options = [
        click.option("--refine", type=click.Choice(["none", "diffusion"]), default="none", show_default=True,
                     help="diffusion: restore texture after the model with our diffusion refiner (slow on a CPU)."),
        click.option("--refine-weights", type=click.Path(path_type=Path), default=None,
                     help="Refiner weights to load instead of the bundled ones (implies --refine diffusion)."),
        click.option("--refine-steps", type=click.IntRange(min=1), default=Sampling.steps, show_default=True,
                     help="DDIM steps per frame; each costs one pass of the refiner's network."),
        click.option("--refine-strength", type=click.FloatRange(min=0, max=1, min_open=True), default=Sampling.strength,
                     show_default=True,
                     help="How far along the noise schedule sampling starts; lower stays closer to the model's output."),
        click.option("--refine-coupling", type=click.FloatRange(min=0, max=1), default=Sampling.coupling,
                     show_default=True,
                     help="How strongly each frame follows the previous refined frame along the flow "
                          "(0: each frame on its own)."),
        click.option("--refine-seed", type=int, default=0, show_default=True, help="Seed of the sampling noise."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _refinement(refine: str, refine_weights: Path | None, refine_steps: int, refine_strength: float,
                refine_coupling: float, refine_seed: int):
    """The refiner the options ask for, or None."""
    from vsr.models.refiner_sampling import Sampling
    from vsr.models.zoo import build_refiner
    from vsr.pipeline.refinement import Refinement

    if refine == "none" and refine_weights is None:
        return None
    return Refinement(build_refiner(refine_weights), Sampling(refine_steps, refine_strength, refine_coupling,
                                                              refine_seed))


def stabilize_options(command):
    """Flicker control after the model, shared by `vsr run` and `vsr bench`."""
    from vsr.pipeline.stabilize_defaults import DEFAULT_STRENGTH

    command = click.option(
        "--stabilize-strength", type=click.FloatRange(min=0, max=1), default=DEFAULT_STRENGTH, show_default=True,
        help="With --stabilize: how much of the previous output is blended in where the flow is trusted "
             "(0: none).")(command)
    return click.option(
        "--stabilize", is_flag=True,
        help="Reduce flicker (for per-frame models): blend each output with the previous one carried along the "
             "optical flow, where the flow is trustworthy; never across a scene cut.")(command)


def _stabilization(stabilize: bool, stabilize_strength: float):
    """The stabiliser the options ask for, or None."""
    if not stabilize:
        return None
    from vsr.ops.dis_flow import DisFlow
    from vsr.pipeline.stabilize import Stabilization

    return Stabilization(DisFlow(), stabilize_strength)


class PathOrStream(click.ParamType):
    """A file or folder (a Path), or '-' / a URL (kept a str: Path would fold 'udp://' into 'udp:/')."""

    name = "PATH|-|URL"

    def convert(self, value, param, ctx):
        from vsr.io.live import is_stream_address

        if isinstance(value, Path) or not is_stream_address(str(value)):
            return Path(value)
        return str(value)


def live_options(command):
    """The options of live sources and stream targets, for `vsr run`."""
    options = [
        click.option("--input-format", default=None, metavar="FORMAT",
                     help="Container of a piped or network INPUT that cannot be probed from its first bytes "
                          "(mpegts, matroska, nut, h264, ...)."),
        click.option("--format", "stream_format", default=None, metavar="FORMAT",
                     help="Container of a streamed OUTPUT ('-' or a URL): mpegts, matroska, flv, nut, mp4 "
                          "(fragmented), ... Default: matroska on standard output, mpegts for udp/tcp/srt, flv "
                          "for rtmp."),
        click.option("--reconnect", is_flag=True,
                     help="When a live INPUT ends (the sender stops), open it again and go on: a listening "
                          "socket waits for the next sender; HTTP resumes. Ctrl-C ends the run.")
        ,
        click.option("--input-timeout", type=click.FloatRange(min=0), default=10.0, show_default=True,
                     help="Seconds of silence that end a network INPUT (0: wait forever)."),
        click.option("--on-overload", type=click.Choice(["delay", "drop"]), default="delay", show_default=True,
                     help="When the model is slower than a live INPUT: delay (fall further behind, every frame "
                          "kept) or drop (skip frames to stay live; the kept frames keep their timestamps)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command()
@click.argument("input_path", metavar="INPUT", type=PathOrStream())
@click.option("-o", "--output", type=PathOrStream(), required=True,
              help="Video file (.mp4, .mkv, .mov, .webm, ...), a folder of PNGs (no video extension), '-' for "
                   "standard output, or a URL (udp://, tcp://, srt://, rtmp://, ...) to stream to.")
@click.option("--model", "model_name", default=None, help="Model name (see `vsr models`); default: frvsr.")
@click.option("--weights", type=click.Path(path_type=Path), default=None, help="Weights file to load instead.")
@click.option("--scale", type=int, default=None, help="Upscaling factor (default: the model's).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--chunk", type=ChunkSize(), default="auto", show_default=True,
              help="Frames per inference window of a bidirectional model: auto is the most that fit half the free "
                   "memory (RAM, or GPU memory), so a shot that fits runs as one window; a number fixes it.")
@click.option("--tile", type=click.IntRange(min=0), default=0, show_default=True,
              help="Run the model on overlapping tiles of N input pixels, to save memory (0: whole frames).")
@click.option("--tile-overlap", type=click.IntRange(min=0), default=16, show_default=True,
              help="Input pixels of context on each inner side of a tile; neighbours share 3x as many.")
@click.option("--no-scene-cuts", "scene_cuts", flag_value=False, default=True,
              help="Let temporal models run across scene cuts instead of treating each shot on its own.")
@click.option("--deinterlace", type=click.Choice(["frame", "field", "off"]), default="frame", show_default=True,
              help="Interlaced video is deinterlaced first (FFmpeg's bwdif): a frame per frame, the same frame rate; "
                   "field: a frame per field, twice the rate (50 frames/s from 25); off: upscale the fields as "
                   "they are.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16", "int8"]), default="auto", show_default=True,
              help="auto: fp16 on a GPU for models that allow it, else fp32.")
@click.option("--compile", "compile_model", is_flag=True,
              help="torch.compile the model: a slower start for faster frames (frvsr: 2x on a CPU after about a "
                   "minute); on a CPU not for basicvsrpp, which compiles for long and runs slower.")
@click.option("--realtime", is_flag=True,
              help="Measure on the first frames which precision (and, on a GPU, NVENC) keeps up with the source's "
                   "frame rate, use it, and say whether it keeps up.")
@click.option("--codec", default=None, help="Encoder: libx264 (default), libx265, libsvtav1, ffv1, h264_nvenc, ...")
@click.option("--crf", type=int, default=None, help="Constant quality (lower is better; codec default if unset).")
@click.option("--preset", default=None, help="Encoder speed preset (codec default if unset).")
@fps_option
@live_options
@backend_option
@stabilize_options
@refine_options
@click.option("--overwrite", is_flag=True,
              help="Replace OUTPUT if it exists: a file with a file, a PNG folder vsr wrote with a PNG folder.")
@click.option("--strict", is_flag=True,
              help="Fail on any decoding problem (corrupt or missing frames, repaired timestamps) instead of "
                   "writing what decoded with a warning.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(input_path: Path, output: Path, model_name: str | None, weights: Path | None, scale: int | None,
        device: str, chunk: int | str, tile: int, tile_overlap: int, scene_cuts: bool, deinterlace: str,
        precision: str, compile_model: bool, realtime: bool, codec: str | None, crf: int | None, preset: str | None,
        backend: str, overwrite: bool, strict: bool, quiet: bool, folder_fps, stabilize: bool,
        stabilize_strength: float, input_format: str | None, stream_format: str | None, reconnect: bool,
        input_timeout: float, on_overload: str, **refine_args) -> None:
    """Upscale INPUT (a video file, a folder of PNG frames, '-' for standard input, or a URL) into OUTPUT.

    The default model is frvsr (see `vsr models`)."""
    from vsr.io.live import is_stream_address
    from vsr.io.writer import EncoderSettings

    live_source, streamed = is_stream_address(str(input_path)), is_stream_address(str(output))
    if not live_source and (input_format or reconnect):
        raise VsrError(input_path, "--input-format and --reconnect are for '-' and URLs; a file is probed as it is")
    if not streamed and stream_format:
        raise VsrError(output, "--format is for '-' and URLs; a file's container follows its extension")
    plain = (tile == 0 and not (realtime or compile_model or stabilize or folder_fps or live_source or streamed)
             and refine_args["refine"] == "none" and refine_args["refine_weights"] is None)
    if model_name == "bicubic" and weights is None and device != "cuda" and plain:
        if _bicubic_on_planes(input_path, output, scale or 4, EncoderSettings(codec, crf, preset), overwrite,
                              strict, quiet, deinterlace):
            return

    from vsr.models.zoo import DEFAULT_MODEL, build_model
    from vsr.pipeline.job import LiveOptions, open_live, pick_device, upscale_video
    options = LiveOptions(input_format, reconnect, input_timeout or None, stream_format, on_overload)

    if device == "cuda":
        _require_cuda()
    model = build_model(model_name or DEFAULT_MODEL, scale, weights)
    if realtime and (refine_args["refine"] != "none" or refine_args["refine_weights"] is not None):
        raise VsrError(None, "--realtime and --refine do not mix: the diffusion refiner is far from realtime")
    refinement = _refinement(**refine_args)
    stabilization = _stabilization(stabilize, stabilize_strength)
    target_device = pick_device(device)
    engine, compile_model = _engine(model, backend, target_device, precision, compile_model)
    model = engine.model
    if realtime:
        from vsr.io.destination import check_destination
        from vsr.io.probe import DEFAULT_FOLDER_FPS, probe
        from vsr.io.deinterlace import deinterlaced_info
        from vsr.pipeline.job import prepare_model
        from vsr.pipeline.realtime import SAMPLE_FRAMES, plan_realtime

        if not streamed:  # before the measurement, not after it
            check_destination(output, overwrite, reads=(None if live_source else input_path, weights))
        model = prepare_model(model, target_device, compile_model, cuda_graphs=True)
        compile_model = False  # done
        if live_source:  # read once: open it here and time the model on its first frame
            input_path = open_live(input_path, options)
            plan = plan_realtime(deinterlaced_info(input_path.info, deinterlace), model, target_device, chunk,
                                 output, codec, frames=input_path.sample_frames(SAMPLE_FRAMES))
        else:  # the rate to keep up with is the output's: a frame per field doubles it
            info = deinterlaced_info(probe(input_path, folder_fps or DEFAULT_FOLDER_FPS), deinterlace)
            plan = plan_realtime(info, model, target_device, chunk, output, codec)
        click.echo(f"vsr: {plan.message(model_name or DEFAULT_MODEL, target_device)}", err=True)
        precision, codec = plan.precision, plan.codec
    if live_source and isinstance(input_path, str):
        _say(f"vsr: opening {input_path}: a live input, read once as it arrives (a listening socket waits for "
             "its sender)")
    report = upscale_video(input_path, output, model, target_device, chunk=chunk, tile=tile,
                           tile_overlap=tile_overlap, scene_cuts=scene_cuts, precision=precision,
                           compile_model=compile_model, settings=EncoderSettings(codec, crf, preset),
                           overwrite=overwrite, progress=not quiet, refinement=refinement, strict=strict,
                           folder_fps=folder_fps, stabilization=stabilization, live_options=options,
                           deinterlace=deinterlace)
    _summarise(report, streamed)
    _say(f"vsr: {model_name or DEFAULT_MODEL} ran on {engine.description}")
    if report.windows is not None and report.windows.plan is not None and report.windows.plan.look_ahead:
        _say(f"vsr: {report.windows.plan.describe(report.frames)}; "
             f"{report.windows.overhead:.2f} frames computed per frame output")


def _bicubic_on_planes(source: Path, target: Path, scale: int, settings, overwrite: bool, strict: bool,
                       quiet: bool, deinterlace: str) -> bool:
    """`vsr run --model bicubic` without torch, on the YUV planes, where the source and the encoder take
    8-bit 4:2:0 (vsr/pipeline/plane_bicubic.py); False, with nothing written, where they do not."""
    from vsr.io.destination import check_destination
    from vsr.io.probe import probe
    from vsr.io.writer import is_video_path
    from vsr.pipeline.plane_bicubic import takes_planes, upscale_planes

    if scale not in (2, 3, 4) or not is_video_path(target):
        return False
    check_destination(target, overwrite, reads=[source], folder=None)
    info = probe(source)
    if not takes_planes(info):
        return False
    report = upscale_planes(source, target, info, scale, settings, progress=not quiet, strict=strict,
                            deinterlace=deinterlace)
    if report is None:
        return False
    _summarise(report, streamed=False)
    _say("vsr: bicubic ran on the video's YUV planes (OpenCV's bicubic, the same kernel; no torch)")
    return True


def _summarise(report, streamed: bool) -> None:
    """A run's warnings, then its frames and speed; with the video on standard output, all on stderr."""
    for note in report.notes:
        click.echo(f"vsr: warning: {note}", err=True)
    click.echo(f"vsr: {report.frames} frames in {report.seconds:.1f} s ({report.fps:.2f} fps) -> {report.output}",
               err=streamed)


@cli.command()
def models() -> None:
    """List the models `vsr run --model` accepts, and whether each can run here."""
    from vsr.models.zoo import DEFAULT_MODEL, ZOO

    width = max(len(name) for name in ZOO) + 2
    click.echo(f"{'name':<{width}} {'scales':<8} {'streams':<8} {'weights':<10} description")
    for entry in ZOO.values():
        if entry.bundled_weights:
            weights = "bundled"
        elif entry.package_weights:
            weights = "package" if entry.available() else "missing"
        else:
            weights = "--weights" if entry.takes_weights else "none"
        notes = " (default)" if entry.name == DEFAULT_MODEL else ""
        if not entry.available():
            notes += f"; not installed: {entry.install_hint}"
        scales = ",".join(map(str, entry.scales))
        streams = "yes" if entry.streams else "no"
        click.echo(f"{entry.name:<{width}} {scales:<8} {streams:<8} {weights:<10} {entry.description}{notes}")
    from vsr.backends.choice import machine_summary

    click.echo(f"\nhere: {machine_summary()}")


@cli.command()
@click.argument("source", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="A .safetensors file.")
@click.option("--model", "model_name", default=None,
              help="The model the weights are for; without SOURCE, the weights its package provides.")
@click.option("--scale", type=int, default=None, help="Which of the model's scales (default: its largest).")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def convert(source: Path | None, output: Path, model_name: str | None, scale: int | None, overwrite: bool) -> None:
    """Write weights as safetensors, for `vsr run --weights`.

    SOURCE is an ncnn .param file (with its .bin beside it) or a PyTorch checkpoint of --model (mmagic,
    BasicSR, Real-ESRGAN, TecoGAN-PyTorch names are converted to ours).
    """
    from vsr.models.convert import converted_weights, save_weights

    if source is None and model_name is None:
        raise VsrError(None, "give a SOURCE file, or --model for the weights an installed package provides")
    state = converted_weights(source, model_name, scale)
    ncnn_weights = source.with_suffix(".bin") if source is not None else None
    save_weights(state, output, overwrite, reads=(source, ncnn_weights))
    count = sum(tensor.numel() for tensor in state.values())
    click.echo(f"vsr: {len(state)} tensors, {count:,} parameters -> {output}")


@cli.command(name="export")
@click.option("--model", "model_name", default=None, help="Model name (see `vsr models`; default: the default model).")
@click.option("--weights", type=click.Path(path_type=Path), default=None, help="Weights file to load instead.")
@click.option("--scale", type=int, default=None, help="Upscaling factor (default: the model's).")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="An .onnx file.")
@click.option("--window", type=click.IntRange(min=1), default=7, show_default=True,
              help="Windowed models (basicvsrpp*): frames per window.")
@click.option("--size", default=None, help="Windowed models: the low-res frame size, WxH (e.g. 320x180).")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def export_command(model_name: str | None, weights: Path | None, scale: int | None, output: Path,
                   window: int, size: str | None, overwrite: bool) -> None:
    """Write a model as ONNX (opset 17) for other runtimes.

    A streaming model becomes one step, with dynamic height and width: inputs frame, previous_lr, previous_sr
    (the last frame and its output; for a stream's first frame, the frame itself and zeros), output sr. An
    FRVSR whose motion is OpenCV's DIS: inputs frame, previous_sr, flow (DIS, medium preset, from the grey
    8-bit frame to the last one, (1, 2, H, W) in pixels; zeros on a stream's first frame). A per-frame model:
    frame -> sr. Frames are (1, 3, H, W) float RGB in [0, 1]. A windowed model (basicvsrpp*)
    is exported for one window and frame size (--window, --size): frames (1, T, 3, H, W) -> sr (1, T, 3, 4H, 4W);
    run it on overlapping windows and keep their middle frames.
    """
    from vsr.backends.onnx_export import FixedShape, export_onnx
    from vsr.models.zoo import DEFAULT_MODEL, build_model

    name = model_name or DEFAULT_MODEL
    width, height = _size(size, "--size") if size else (0, 0)
    inputs = export_onnx(build_model(name, scale, weights), name, output, overwrite, FixedShape(window, width, height))
    click.echo(f"vsr: {name} -> {output} (inputs: {', '.join(inputs)}; output: sr)")


@cli.command(name="train")
@click.argument("config_path", metavar="CONFIG", type=click.Path(path_type=Path))
@click.option("--resume", is_flag=True, help="Continue the run in the config's output folder from its checkpoint.")
@click.option("--steps", "stop_after", type=click.IntRange(min=1), default=None,
              help="Stop after this many more steps (the schedule still spans the config's steps).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
def train_command(config_path: Path, resume: bool, stop_after: int | None, device: str) -> None:
    """Train a model from a YAML config (see configs/); under torchrun, on several GPUs with DDP."""
    import torch

    from vsr.train.config import load_config
    from vsr.train.loop import train

    if device == "cuda":
        _require_cuda()
    config = load_config(config_path)
    try:
        files = train(config, resume=resume, device=None if device == "auto" else torch.device(device),
                      stop_after=stop_after)
    except KeyboardInterrupt as interrupt:
        interrupt.outcome = "the last checkpoint is kept; --resume continues from it"
        raise
    click.echo(f"vsr: run in {files.folder}: {files.checkpoint.name}, {files.train_log.name}, {files.plot.name}")


@cli.command()
@click.option("--gt", "gt_path", type=click.Path(path_type=Path), required=True,
              help="Ground truth: a folder with one sub-folder of PNG frames (or one video) per clip, or one clip.")
@click.option("--lr", "lr_path", type=click.Path(path_type=Path), default=None,
              help="Low-res input laid out as --gt, same clip names; without it --gt is degraded on the fly.")
@click.option("--degradation", type=click.Choice(["BI", "BD", "realworld"]), default="BI", show_default=True,
              help="How to make low-res frames without --lr: MATLAB bicubic, Gaussian blur then subsampling, or "
                   "realworld (blur, resizing, noise and H.264/JPEG damage, seeded by the clip's name).")
@click.option("--scale", type=int, default=4, show_default=True)
@click.option("--model", "model_names", multiple=True,
              help="A model to score (repeat for more; default: bicubic-matlab and the default model).")
@click.option("--weights", type=click.Path(path_type=Path), default=None, help="Weights for the one --model.")
@click.option("--frames", "max_frames", type=click.IntRange(min=0), default=0, help="First N frames per clip (0: all).")
@click.option("--crop", default=None, help="Score the centre WxH of each ground-truth frame (default: whole).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--chunk", type=ChunkSize(), default="auto", show_default=True, help="As for `vsr run`.")
@click.option("--tile", type=click.IntRange(min=0), default=0, show_default=True, help="As for `vsr run`.")
@click.option("--tile-overlap", type=click.IntRange(min=0), default=16, show_default=True)
@click.option("--no-scene-cuts", "scene_cuts", flag_value=False, default=True, help="As for `vsr run`.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16", "int8"]), default="auto", show_default=True)
@click.option("--no-temporal", "temporal", flag_value=False, default=True,
              help="Skip tOF and the warping error (three optical flows per frame).")
@click.option("--niqe", "with_niqe", is_flag=True,
              help="Also NIQE, a no-reference naturalness score (lower is better; BasicSR's and MATLAB's "
                   "niqe), of the outputs and of the ground truth. Costs about 0.04 s per scored 640x360 frame and "
                   "0.15 s per 1280x720 on 2 CPU cores, for each model and once for the ground truth.")
@click.option("--niqe-every", type=click.IntRange(min=1), default=NIQE_EVERY, show_default=True,
              help="With --niqe: score frames 0, N, 2N, ... of each clip (1: every frame).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, help="Write every figure here.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), default=None, help="One row per model and clip.")
@click.option("--plots", "plots_dir", type=click.Path(path_type=Path), default=None,
              help="Folder for PNG plots: PSNR-Y per frame, frames/s against resolution.")
@click.option("--save-frames", "frames_dir", type=click.Path(path_type=Path), default=None,
              help="Folder for the SR frames, as <model>/<clip>/00000000.png.")
@click.option("--html", "html_path", type=click.Path(path_type=Path), default=None,
              help="A comparison page (as `vsr compare` writes): per clip, the input, each model's output and the "
                   "ground truth playing in sync, with the per-frame figures.")
@click.option("--speed-sizes", default="", help="Low-res sizes WxH,WxH,... to time each model at, on synthetic frames.")
@click.option("--speed-frames", type=click.IntRange(min=1), default=4, show_default=True,
              help="Frames per --speed-sizes measurement.")
@backend_option
@stabilize_options
@refine_options
@click.option("--overwrite", is_flag=True, help="Replace output files that exist.")
@click.option("--quiet", is_flag=True, help="Only the table.")
def bench(gt_path: Path, lr_path: Path | None, degradation: str, scale: int, model_names: tuple[str, ...],
          weights: Path | None, max_frames: int, crop: str | None, device: str, chunk: int | str, tile: int,
          tile_overlap: int, scene_cuts: bool, precision: str, temporal: bool, with_niqe: bool, niqe_every: int,
          json_path: Path | None, csv_path: Path | None, plots_dir: Path | None, frames_dir: Path | None,
          html_path: Path | None, speed_sizes: str, speed_frames: int, backend: str, overwrite: bool, quiet: bool,
          stabilize: bool, stabilize_strength: float, **refine_args) -> None:
    """Score models on reference clips: PSNR-Y, SSIM-Y and RGB PSNR as the papers compute them, a detail
    ratio (sharpness against the ground truth), tOF and warping error, optionally NIQE, frames/s (end to end
    and model alone), peak memory, and the same at chunk seams. With --refine, each model also runs refined,
    as MODEL+refine; with --stabilize, also stabilised, as MODEL+stabilize."""
    from vsr.bench.clips import find_clips
    from vsr.bench.outputs import BenchOutputs
    from vsr.bench.report import table_text
    from vsr.bench.runner import Settings, bench_model, ground_truth_niqe, speed_at_sizes
    from vsr.models.zoo import DEFAULT_MODEL, build_model
    from vsr.pipeline.job import pick_device, prepare_model

    if device == "cuda":
        _require_cuda()
    names = list(model_names) or ["bicubic-matlab", DEFAULT_MODEL]
    if weights is not None and len(names) != 1:
        raise VsrError(weights, "--weights needs exactly one --model")
    sizes = [_size(text, "--speed-sizes") for text in speed_sizes.split(",") if text.strip()]
    reads = (gt_path, lr_path, weights, refine_args["refine_weights"])
    outputs = BenchOutputs(json_path, csv_path, plots_dir, frames_dir, overwrite, reads,
                           html_path)  # fails before any work
    clips = find_clips(gt_path, lr_path, scale, degradation, max_frames, _size(crop, "--crop") if crop else None)
    if with_niqe:
        _check_niqe_sizes(clips)
    settings = Settings(pick_device(device), chunk, tile, tile_overlap, precision, scene_cuts, temporal,
                        niqe_every if with_niqe else 0, outputs.frames_folder, progress=not quiet)
    refinement = _refinement(**refine_args)
    stabilization = _stabilization(stabilize, stabilize_strength)
    say = None if quiet else (lambda line: click.echo(f"vsr bench: {line}", err=True))
    results = []
    try:
        with outputs:
            for name in names:
                engine, _ = _engine(build_model(name, scale, weights), backend, settings.device, precision, False)
                if say is not None:
                    say(f"{name} on {engine.description}")
                model = prepare_model(engine.model, settings.device)
                runs = [(name, settings)]
                if stabilization is not None:
                    runs.append((f"{name}+stabilize", dataclasses.replace(settings, stabilization=stabilization)))
                if refinement is not None:
                    runs.append((f"{name}+refine", dataclasses.replace(settings, refinement=refinement)))
                for label, run_settings in runs:
                    result = bench_model(label, model, clips, run_settings, say)
                    result.speed = speed_at_sizes(model, clips[0], sizes, speed_frames, run_settings)
                    results.append(result)
            ground_truth = None
            if with_niqe:
                if say is not None:
                    say("NIQE of the ground truth")
                ground_truth = {clip.name: ground_truth_niqe(clip, niqe_every) for clip in clips}
            click.echo(table_text(results, ground_truth), nl=False)
            outputs.write(results, {"gt": str(gt_path), "lr": None if lr_path is None else str(lr_path),
                                    "degradation": None if lr_path else degradation, "scale": scale,
                                    "frames": max_frames or "all", "crop": crop or "none",
                                    "device": str(settings.device), "chunk": chunk, "tile": tile,
                                    "precision": precision, "scene_cuts": scene_cuts,
                                    "stabilize": stabilize_strength if stabilize else None,
                                    "niqe": {"every": niqe_every, "crop_border": scale,
                                             "frames": f"0, {niqe_every}, {2 * niqe_every}, ... of each clip",
                                             "parameters": "vsr/weights/niqe_pris_params.npz (BasicSR, MATLAB "
                                                           "release)"} if with_niqe else None,
                                    "refine": {key.removeprefix("refine_"): value if not isinstance(value, Path)
                                               else str(value) for key, value in refine_args.items()}},
                          clips, say, ground_truth)
    except KeyboardInterrupt as interrupt:
        interrupt.outcome = "no result file was written"
        raise
    for path in outputs.written:
        click.echo(f"vsr bench: wrote {path}", err=True)


def _check_niqe_sizes(clips: list) -> None:
    """NIQE needs two 96x96 blocks inside the scored border: said before any model runs, not after."""
    from vsr.niqe import check_size

    for clip in clips:
        try:
            check_size(clip.gt_region.width, clip.gt_region.height, clip.scale)
        except ValueError as error:
            raise VsrError(clip.gt, f"--niqe: {error}") from None


def _size(text: str, option: str) -> tuple[int, int]:
    """'640x360' -> (640, 360)."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise VsrError(None, f"{option} {text!r} is not WIDTHxHEIGHT, e.g. 640x360") from None
    if width < 1 or height < 1:
        raise VsrError(None, f"{option} {text!r} must be positive")
    return width, height


@cli.command()
@click.argument("input_dir", metavar="IN_DIR", type=click.Path(path_type=Path))
@click.argument("output_dir", metavar="OUT_DIR", type=click.Path(path_type=Path))
@click.option("--model", "model_name", default=None, help="Model name (see `vsr models`); default: frvsr.")
@click.option("--weights", type=click.Path(path_type=Path), default=None, help="Weights file to load instead.")
@click.option("--scale", type=int, default=None, help="Upscaling factor (default: the model's).")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Files processed at once, each in its own process with its share of the CPU threads.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--chunk", type=ChunkSize(), default="auto", show_default=True, help="As for `vsr run`.")
@click.option("--tile", type=click.IntRange(min=0), default=0, show_default=True, help="As for `vsr run`.")
@click.option("--tile-overlap", type=click.IntRange(min=0), default=16, show_default=True)
@click.option("--no-scene-cuts", "scene_cuts", flag_value=False, default=True, help="As for `vsr run`.")
@click.option("--deinterlace", type=click.Choice(["frame", "field", "off"]), default="frame", show_default=True,
              help="As for `vsr run`.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16", "int8"]), default="auto", show_default=True)
@click.option("--codec", default=None, help="As for `vsr run`.")
@click.option("--crf", type=int, default=None)
@click.option("--preset", default=None)
@click.option("--ray", "ray_address", default=None, metavar="ADDRESS",
              help="Run the files as Ray tasks on the cluster at ADDRESS ('auto', 'ray://host:10001'), one per GPU "
                   "or CPU; 'local' starts Ray on this machine. IN_DIR and OUT_DIR must be shared by every node.")
@fps_option
@backend_option
@click.option("--overwrite", is_flag=True, help="Replace outputs that exist (made earlier with other settings, or not by vsr).")
@click.option("--quiet", is_flag=True, help="No progress bars; still the summary.")
def batch(input_dir: Path, output_dir: Path, model_name: str | None, weights: Path | None, scale: int | None,
          jobs: int, device: str, chunk: int | str, tile: int, tile_overlap: int, scene_cuts: bool, deinterlace: str,
          precision: str, codec: str | None, crf: int | None, preset: str | None, ray_address: str | None, backend: str,
          overwrite: bool, quiet: bool, folder_fps) -> None:
    """Upscale every video and PNG-frame folder under IN_DIR into the same tree under OUT_DIR.

    A failing file does not stop the others. A journal in OUT_DIR makes a rerun (after a crash too) skip what
    finished; outputs are never half-written.
    """
    from vsr.batch.jobs import find_jobs
    from vsr.batch.journal import Journal
    from vsr.batch.runner import BatchSettings, outcome_line, run_batch
    from vsr.io.sources import printable
    from vsr.models.zoo import DEFAULT_MODEL

    if device == "cuda":
        _require_cuda()
    if ray_address is not None and jobs > 1:
        raise VsrError(None, "--jobs and --ray do not mix: on Ray, each CPU or GPU slot of the cluster runs a file")
    settings = BatchSettings(model_name or DEFAULT_MODEL, None if weights is None else str(weights), scale, device,
                             chunk, tile, tile_overlap, scene_cuts, precision, codec, crf, preset, backend,
                             None if folder_fps is None else str(folder_fps), deinterlace)
    skipped: list[tuple[Path, str]] = []
    found = find_jobs(input_dir, output_dir, settings.key(), skipped)
    for folder, reason in skipped:
        click.echo(f"vsr batch: skipped {printable(folder)}: {reason}", err=True)
    if not found:
        raise VsrError(printable(input_dir), "holds no video files or PNG-frame folders")

    def tell(outcome) -> None:  # each failure once, as it happens, --quiet or not
        if outcome.status == "failed" or not quiet:
            click.echo(f"vsr batch: {outcome_line(outcome)}", err=True)

    with Journal.open(output_dir) as journal:  # one that cannot be written fails here, before any work
        if journal.warning() is not None:
            click.echo(f"vsr batch: warning: {journal.warning()}", err=True)
        report = run_batch(found, journal, settings, jobs, overwrite, progress=not quiet, on_outcome=tell,
                           ray_address=ray_address)
    counts = {status: report.count(status) for status in ("upscaled", "failed", "already done", "exists", "stale")}
    click.echo(f"vsr batch: {len(found)} inputs in {report.seconds:.1f} s: "
               + ", ".join(f"{count} {status}" for status, count in counts.items() if count))
    if counts["exists"]:
        click.echo("vsr batch: 'exists': an output was already there and not from this batch; kept "
                   "(--overwrite replaces it)", err=True)
    if counts["stale"]:
        click.echo("vsr batch: 'stale': made by this batch from another version of the source or other "
                   "settings; kept (--overwrite redoes it)", err=True)
    if report.failed:
        raise click.exceptions.Exit(EXIT_ERROR)


@cli.command()
@click.argument("source", metavar="SOURCE", type=click.Path(path_type=Path))
@click.argument("outputs", metavar="OUT1 [OUT2 ...]", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "page", type=click.Path(path_type=Path), required=True,
              help="The HTML page to write; one file, playable offline.")
@click.option("--gt", "gt_path", type=click.Path(path_type=Path), default=None,
              help="Ground truth at the outputs' size: shown too, and PSNR-Y, SSIM-Y and tOF per frame as bench's.")
@click.option("--labels", default=None, help="Names for OUT1, OUT2, ..., comma-separated (default: their file names).")
@click.option("--embed-limit", "embed_limit", type=click.FloatRange(min=0), default=DEFAULT_EMBED_LIMIT_MB,
              show_default=True,
              help="MB of video the page may hold; past it the videos go to a folder beside the page, linked.")
@click.option("--overwrite", is_flag=True, help="Replace the page (and its video folder) if they exist.")
@click.option("--quiet", is_flag=True, help="Only the last line.")
def compare(source: Path, outputs: tuple[Path, ...], page: Path, gt_path: Path | None, labels: str | None,
            embed_limit: float, overwrite: bool, quiet: bool) -> None:
    """Write one HTML page comparing OUT1, OUT2, ... with SOURCE (and --gt): the videos play in sync, a wipe
    shows any two side by side, and a magnifier shows a region at 1x, 2x or 4x the output's pixels.

    SOURCE is the low-res input, shown enlarged by nearest neighbour to the outputs' size. Each is a video file
    or a folder of PNG frames; all must have the same frame count."""
    from vsr.compare.files import check_page_destination, size_text, write_page
    from vsr.compare.sections import compare_section

    check_page_destination(page, overwrite, reads=(source, *outputs, gt_path))
    names = None if labels is None else [name.strip() for name in labels.split(",")]
    say = None if quiet else (lambda line: click.echo(f"vsr compare: {line}", err=True))
    plan = compare_section(source, list(outputs), gt_path, names, say)
    written = write_page(page, f"vsr compare: {plan.title}", [plan], embed_limit, progress=say)
    videos = size_text(written.video_bytes)
    if written.linked_folder is not None:
        click.echo(f"vsr compare: the videos ({videos}) are over --embed-limit {embed_limit:g} MB: they are in "
                   f"{written.linked_folder}, linked from the page; keep the two together", err=True)
    else:
        click.echo(f"vsr compare: the videos ({videos}) are inside the page", err=True)
    click.echo(f"vsr compare: wrote {page} ({size_text(written.page_bytes)})")


@cli.command(name="probe")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
def probe_command(input_path: Path) -> None:
    """Print what INPUT holds: streams, timing, pixel format, colour tags."""
    from vsr.io.probe import probe
    from vsr.io.writer import pixel_shape

    info = probe(input_path)
    rate = info.frame_rate
    lines = [
        f"file:        {info.path}",
        f"container:   {info.container}",
        f"video:       {info.codec} {info.width}x{info.height}, {info.pix_fmt} ({info.bit_depth}-bit)",
        f"frame rate:  {float(rate):.3f} fps ({rate})",
        f"time base:   {info.time_base}",
        f"frames:      {info.frame_count}",
        f"duration:    {info.duration:.3f} s" if info.duration is not None else "duration:    unknown",
        "colour:      " + ", ".join(f"{k} {v}" for k, v in info.color.names().items()),
        f"rotation:    {info.rotation} degrees",
        f"pixels:      {pixel_shape(info.sample_aspect_ratio, info.width, info.height)}",
        f"scan:        {'interlaced' if info.interlaced else 'progressive'}",
    ]
    lines += [f"stream {s.index}:    {s.type} {s.codec}" + (f" [{s.language}]" if s.language else "")
              for s in info.streams]
    click.echo("\n".join(lines))


def _require_cuda() -> None:
    import torch

    if not torch.cuda.is_available():
        raise VsrError(None, "--device cuda asked for, but this torch build sees no CUDA GPU")


def main() -> None:
    install_stop_handlers()
    run_until_exit(lambda: cli(prog_name="vsr"))


if __name__ == "__main__":
    sys.exit(main())
