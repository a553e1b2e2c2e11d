"""Writers: a video file encoded with the source's timestamps and colour tags, or a folder of PNG frames.

Both write to a hidden sibling of the target and move it into place only when complete (see destination.py).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from vsr.errors import VsrError
from vsr.io.colors import output_color, swscale_matrix, swscale_range
from vsr.io.destination import commit, discard, temporary_sibling
from vsr.io.frame_folder import write_png
from vsr.io.frames import Frame, VideoInfo
from vsr.io.remux import StreamCopier

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts"}
DEFAULT_CODEC = {".webm": "libvpx-vp9"}  # every other container gets libx264

# Encoder pixel formats for 8-bit and for deeper sources.
PIXEL_FORMATS = {
    "libx264": ("yuv420p", "yuv420p10le"),
    "libx265": ("yuv420p", "yuv420p10le"),
    "libsvtav1": ("yuv420p", "yuv420p10le"),
    "libvpx-vp9": ("yuv420p", "yuv420p10le"),
    "ffv1": ("bgr0", "yuv444p16le"),  # lossless: keep RGB where it can
    "h264_nvenc": ("yuv420p", "p010le"),
    "hevc_nvenc": ("yuv420p", "p010le"),
    "av1_nvenc": ("yuv420p", "p010le"),
}
DEFAULT_CRF = {"libx264": 18, "libx265": 20, "libsvtav1": 30, "libvpx-vp9": 31}
DEFAULT_PRESET = {"libx264": "medium", "libx265": "medium", "libsvtav1": "8",
                  "h264_nvenc": "p4", "hevc_nvenc": "p4", "av1_nvenc": "p4"}


@dataclass(frozen=True)
class EncoderSettings:
    codec: str | None = None  # None: the container's default
    crf: int | None = None  # None: the codec's default
    preset: str | None = None


def encoder_opens(codec: str, pix_fmt: str = "yuv420p") -> bool:
    """Whether this FFmpeg build has the encoder and it starts here (NVENC needs an NVIDIA GPU and driver).

    The pixel format matters: H.264 NVENC, for one, has no 10-bit mode.
    """
    try:
        context = av.CodecContext.create(codec, "w")
        context.width, context.height, context.pix_fmt = 256, 256, pix_fmt
        context.time_base = Fraction(1, 25)
        context.open()
    except (av.error.FFmpegError, ValueError, TypeError):
        return False
    return True


def encoder_pixel_format(codec: str, deep: bool) -> str:
    """The pixel format the encoder gets: 8-bit, or 10 bits or more for deeper sources."""
    return PIXEL_FORMATS.get(codec, ("yuv420p", "yuv420p10le"))[int(deep)]


def container_holds(suffix: str, codec: str) -> bool:
    """Whether files with this suffix can hold the encoder's format; FFmpeg says, and nothing is written."""
    with tempfile.TemporaryDirectory() as folder:
        container = av.open(str(Path(folder) / f"probe{suffix}"), "w")
        try:
            return codec_id(codec) in container.supported_codecs
        finally:
            container.close()


def is_video_path(path: Path) -> bool:
    """Outputs with a video extension are encoded; anything else is a folder of PNG frames."""
    return path.suffix.lower() in VIDEO_SUFFIXES


def codec_options(codec: str, crf: int | None, preset: str | None) -> dict[str, str]:
    crf = DEFAULT_CRF.get(codec) if crf is None else crf
    preset = DEFAULT_PRESET.get(codec) if preset is None else preset
    options: dict[str, str] = {}
    if codec.endswith("_nvenc"):
        options.update({"rc": "vbr", "cq": str(crf if crf is not None else 20)})
    elif crf is not None and codec != "ffv1":
        options["crf"] = str(crf)
    if preset is not None and codec != "ffv1":
        options["preset" if codec != "libvpx-vp9" else "deadline"] = preset
    if codec == "libvpx-vp9":
        options.update({"b": "0", "row-mt": "1"})
    if codec == "libx265":
        options["x265-params"] = "log-level=error"
    return options


class VideoFileWriter:
    """Encodes RGB frames at the pts they came with; copies the source's audio and subtitles beside them."""

    def __init__(self, target: Path, width: int, height: int, source: VideoInfo, settings: EncoderSettings) -> None:
        self.target = target
        self.temporary = temporary_sibling(target)
        self.notes: list[str] = []
        codec = settings.codec or DEFAULT_CODEC.get(target.suffix.lower(), "libx264")
        if codec not in av.codecs_available:
            raise VsrError(target, f"encoder {codec} is not available in this FFmpeg build")
        deep = source.bit_depth > 8
        self._pix_fmt = encoder_pixel_format(codec, deep)
        self._rgb_format = "rgb48le" if deep else "rgb24"
        subsampled = self._pix_fmt.startswith(("yuv420", "p010", "nv12"))
        if subsampled and (width % 2 or height % 2):
            raise VsrError(target, f"output size {width}x{height} is odd, which {codec} ({self._pix_fmt}) cannot "
                                   "encode; choose an even scale or a PNG folder output")
        rgb_source = source.is_frame_folder or source.pix_fmt.startswith(("rgb", "bgr", "gbr"))
        self.color = output_color(source.color, height if rgb_source else source.height)
        # One converter for the whole video (swscale contexts are costly to make), on this thread only.
        self._to_yuv = VideoReformatter()
        self._matrix, self._range = swscale_matrix(self.color.matrix), swscale_range(self.color.range)
        self._copier: StreamCopier | None = None
        try:
            self._container = av.open(str(self.temporary), "w")
        except OSError as error:
            raise VsrError(target, f"cannot be written ({error.strerror or error})") from None
        try:
            self._stream = self._add_video_stream(codec, width, height, source, settings)
            self._copier = None if source.is_frame_folder else StreamCopier(Path(source.path), self._container)
        except (av.error.FFmpegError, ValueError) as error:
            self.abort()
            raise VsrError(target, f"cannot set up encoder {codec}: {error}") from None
        if self._copier:
            self.notes.extend(self._copier.notes)

    def _add_video_stream(self, codec: str, width: int, height: int, source: VideoInfo, settings: EncoderSettings):
        if codec_id(codec) not in self._container.supported_codecs:
            raise ValueError(f"{self.target.suffix} files cannot hold {codec}")
        stream = self._container.add_stream(codec, rate=source.frame_rate)
        stream.width, stream.height, stream.pix_fmt = width, height, self._pix_fmt
        # The source's time base, not 1/fps: variable frame rate timestamps must not be rounded.
        stream.time_base = source.time_base
        stream.codec_context.time_base = source.time_base
        stream.codec_context.options = codec_options(codec, settings.crf, settings.preset)
        # Frame threads, as the ffmpeg CLI uses: with PyAV's default (slices) each encode() call waits for the
        # whole frame, and the conversions in this thread cannot overlap the encoder.
        stream.codec_context.thread_type = "FRAME"
        cc = stream.codec_context
        cc.colorspace, cc.color_range = self.color.matrix, self.color.range
        cc.color_primaries, cc.color_trc = self.color.primaries, self.color.transfer
        if source.rotation:
            stream.set_display_rotation(source.rotation)
        return stream

    def write(self, frame: Frame) -> None:
        # A view, not a copy: the converter below reads it at once into a new frame.
        picture = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(frame.image), format=self._rgb_format)
        picture = self._to_yuv.reformat(picture, format=self._pix_fmt, dst_colorspace=self._matrix,
                                        dst_color_range=self._range, threads=1)
        picture.pts, picture.time_base = frame.pts, frame.time_base
        picture.colorspace, picture.color_range = self.color.matrix, self.color.range
        picture.color_primaries, picture.color_trc = self.color.primaries, self.color.transfer
        try:
            self._mux_video(self._stream.encode(picture))
        except OSError as error:  # PyAV's errors are OSErrors too: disk full, encoder failure
            raise VsrError(self.target, f"could not be written ({error.strerror or error})") from None

    def _mux_video(self, packets) -> None:
        for packet in packets:
            if self._copier and packet.dts is not None:
                self._copier.copy_until(float(packet.dts * packet.time_base))
            self._container.mux(packet)

    def close(self) -> None:
        """Finish the file and move it into place."""
        try:
            self._mux_video(self._stream.encode(None))
            if self._copier:
                self._copier.copy_until(None)
            self._container.close()
        except OSError as error:
            self.abort()
            raise VsrError(self.target, f"could not be written ({error.strerror or error})") from None
        except BaseException:
            self.abort()
            raise
        commit(self.temporary, self.target)

    def abort(self) -> None:
        """Drop everything written so far; the target is left as it was."""
        if self._copier:
            self._copier.close()
        try:
            self._container.close()
        except (av.error.FFmpegError, ValueError):
            pass
        discard(self.temporary)


def codec_id(encoder: str) -> str:
    """The format name a container lists for an encoder ('libx264' -> 'h264')."""
    return av.codec.Codec(encoder, "w").canonical_name


class FrameFolderWriter:
    """Writes frame_000000.png, ... (16-bit when the frames are); the folder appears only when complete."""

    def __init__(self, target: Path, source: VideoInfo) -> None:
        self.target = target
        self.temporary = temporary_sibling(target)
        try:
            self.temporary.mkdir()
        except OSError as error:
            raise VsrError(target, f"cannot be written ({error.strerror})") from None
        dropped = [f"{s.type} stream {s.index} ({s.codec})" for s in source.streams if s.type != "video"]
        self.notes = [f"a PNG folder holds frames only: {', '.join(dropped)} not written"] if dropped else []
        self._count = 0

    def write(self, frame: Frame) -> None:
        write_png(self.temporary / f"frame_{self._count:06d}.png", frame.image)
        self._count += 1

    def close(self) -> None:
        commit(self.temporary, self.target)

    def abort(self) -> None:
        discard(self.temporary)


def open_writer(target: Path, width: int, height: int, source: VideoInfo, settings: EncoderSettings):
    if is_video_path(target):
        return VideoFileWriter(target, width, height, source, settings)
    return FrameFolderWriter(target, source)
