"""Writers: a video file encoded with the source's timestamps and colour tags, or a folder of PNG frames.

Both write to a hidden sibling of the target and move it into place only when complete (see destination.py).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from vsr.errors import VsrError
from vsr.io.colors import output_color, swscale_matrix, swscale_range
from vsr.io.destination import commit, discard, start_partial
from vsr.io.frame_folder import write_png
from vsr.io.frames import Frame, VideoInfo
from vsr.io.live import LiveInput, ffmpeg_address, is_stream_address
from vsr.io.remux import StreamCopier, container_codecs, holds
from vsr.io.tags import carried_tags

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
# The --crf each encoder takes (NVENC's constant-quality cq). FFmpeg's own limits are looser (libx264 takes any
# crf up to 3.4e38 and clamps it to 51 without a word), so we refuse what the encoder would not honour.
CRF_RANGE = {"libx264": (0, 51), "libx265": (0, 51), "libvpx-vp9": (0, 63), "libsvtav1": (0, 63),
             "h264_nvenc": (0, 51), "hevc_nvenc": (0, 51), "av1_nvenc": (0, 51)}
# Muxers that time a video frame by its place in the file, one slot of 1/fps each, and store no timestamps:
# a gap between two packets' dts is filled with empty packets (so a fine time base pads each frame with hundreds).
# FFmpeg's format flags cannot tell these apart: AVI has neither AVFMT_NOTIMESTAMPS nor AVFMT_VARIABLE_FPS, and
# neither has the MP4 family's ipod muxer (.m4v), which stores every frame's time. The ffmpeg command line names
# the muxer too (fftools: `!strcmp(format->name, "avi")`), so this goes by the muxer's name, never the suffix.
FRAME_SLOT_MUXERS = frozenset({"avi"})
# Where a non-square pixel shape survives: in the bitstream of H.264 and HEVC (their VUI), and in the MP4
# muxer, which records it from the encoder's parameters. Matroska, WebM and AVI take it only from the stream's
# own field, which PyAV cannot set, so VP9, AV1 and FFV1 there come out with square pixels.
ASPECT_ENCODERS = frozenset({"libx264", "libx265", "h264_nvenc", "hevc_nvenc"})
ASPECT_MUXERS = frozenset({"mp4"})
LOSSLESS = {"ffv1"}  # no quality to set, no speed presets
USER_OPTION = {"crf": "crf", "cq": "crf", "preset": "preset", "deadline": "preset"}  # encoder option: our flag


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
            return holds(container_codecs(container), av.Codec(codec, "w"))
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


def video_encoder(target: Path, name: str) -> str:
    """The encoder's own name ('h264' -> 'libx264'); refused unless this FFmpeg has it and it encodes video."""
    try:
        codec = av.Codec(name, "w")
    except (av.error.FFmpegError, ValueError):
        raise VsrError(target, f"encoder {name} is not available in this FFmpeg build") from None
    if codec.type != "video":
        raise VsrError(target, f"{name} encodes {codec.type}, not video; --codec takes a video encoder "
                               "(libx264, libx265, libsvtav1, libvpx-vp9, ffv1, ...)")
    return codec.name


def check_settings(target: Path, codec: str, settings: EncoderSettings) -> None:
    """Refuse a --crf or --preset the encoder would reject or silently clamp, before anything is opened."""
    if codec in LOSSLESS and settings.crf is not None:
        raise VsrError(target, f"--crf does not apply to {codec}: it is lossless, so there is no quality to choose; "
                               "leave --crf out")
    if codec in LOSSLESS and settings.preset is not None:
        raise VsrError(target, f"--preset does not apply to {codec}: it has no speed presets; leave --preset out")
    if settings.crf is not None and codec in CRF_RANGE:
        low, high = CRF_RANGE[codec]
        if not low <= settings.crf <= high:
            raise VsrError(target, f"--crf {settings.crf} is out of range for {codec}, which takes {low} to {high} "
                                   "(lower is better)")


@contextlib.contextmanager
def ffmpeg_messages() -> Iterator[list[str]]:
    """Collect what FFmpeg and the encoder libraries say about a failure (an encoder opening, a muxer writing).

    After a failure the list holds their error lines, for one message that says it all; after a success what
    the libraries printed is passed on to stderr, as it would have been.
    """
    messages: list[str] = []
    spill = _StderrSpill()
    logs: list = []
    try:
        with spill, _ffmpeg_log() as logs:
            yield messages
    except BaseException:
        # The libraries' own lines first: they print them before FFmpeg's wrapper reports the failure.
        lines = [line for line in spill.text.splitlines() if "error" in line.lower()]
        lines += [text for severity, _, text in logs if severity <= av.logging.ERROR]
        messages.extend(dict.fromkeys(_phrases(lines)))
        raise
    spill.pass_on()


def _phrases(lines: list[str]) -> list[str]:
    """Log lines as phrases for one line of text: a line ending in ':' takes the indented lines after it as a list
    ('Supported sample rates: 48000, 24000, ...')."""
    phrases: list[str] = []
    listing = False
    for raw in lines:
        text = raw.strip().rstrip(".").strip()
        if not text:
            continue
        if raw[:1].isspace() and phrases and (listing or phrases[-1].endswith(":")):
            phrases[-1] += (", " if listing else " ") + text
            listing = True
        else:
            phrases.append(text)
            listing = False
    return phrases


@contextlib.contextmanager
def _ffmpeg_log() -> Iterator[list]:
    """FFmpeg's error log lines meanwhile, as (level, name, text): captured, where PyAV otherwise drops them."""
    level, skip_repeated = av.logging.get_level(), av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.ERROR)
    av.logging.set_skip_repeated(False)  # else a line like the previous one is held back, to show up later
    try:
        with av.logging.Capture() as logs:
            yield logs
    finally:
        av.logging.set_level(level)
        av.logging.set_skip_repeated(skip_repeated)


class _StderrSpill:
    """Meanwhile file descriptor 2 writes to a temporary file: x264, x265 and SVT-AV1 print there directly."""

    def __init__(self) -> None:
        self.text = ""
        self._file = None
        self._saved: int | None = None

    def __enter__(self) -> _StderrSpill:
        try:
            if sys.stderr is not None:
                sys.stderr.flush()
            self._file = tempfile.TemporaryFile()
            self._saved = os.dup(2)
            os.dup2(self._file.fileno(), 2)
        except (OSError, ValueError):  # no stderr, or no room for the file: leave stderr alone
            self._restore()
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
        if self._file is not None:
            self._file.seek(0)
            self.text = self._file.read().decode(errors="replace")
            self._file.close()
        self._file = self._saved = None

    def pass_on(self) -> None:
        """Print what was held back, as the libraries would have."""
        if self.text:
            try:
                os.write(2, self.text.encode())
            except OSError:
                pass


class VideoFileWriter:
    """Encodes RGB frames at the pts they came with; copies the source's audio and subtitles beside them.

    A container that times frames by their place alone (AVI) gets them at their slots of 1/fps instead.

    The encoder is opened here, with the real size, pixel format and options, so that settings it refuses end
    the run before any frame is decoded.
    """

    def __init__(self, target: Path, width: int, height: int, source: VideoInfo, settings: EncoderSettings,
                 live: LiveInput | None = None) -> None:
        self.target = target
        self.temporary = self._partial_path()
        self.notes: list[str] = []
        self._live = live
        codec = video_encoder(target, settings.codec or self._default_codec())
        check_settings(target, codec, settings)
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
            self._container = self._open_output()
        except (OSError, av.error.FFmpegError, ValueError) as error:
            raise VsrError(target, f"cannot be written ({self._problem(error)})") from None
        try:
            # A container of frame slots (AVI) gets pts in 1/fps: each frame's slot, counted from the first one.
            self._slots = _FrameSlots(source.frame_rate) if self._container.format.name in FRAME_SLOT_MUXERS else None
            self._stream = self._add_video_stream(codec, width, height, source, settings)
            self.notes.extend(self._aspect_note(codec, width, height, source))
            self._open_encoder(codec, settings)
            self._copier = None if source.is_frame_folder else self._copy_streams(source.path)
            self._write_header()
        except BaseException:
            self.abort()
            raise
        if self._copier:
            self.notes.extend(self._copier.notes)

    def _partial_path(self) -> Path | None:
        """The hidden sibling the file is written to until complete."""
        return start_partial(self.target)

    def _default_codec(self) -> str:
        return DEFAULT_CODEC.get(self.target.suffix.lower(), "libx264")

    def _open_output(self) -> av.container.OutputContainer:
        return av.open(str(self.temporary), "w")

    def _add_video_stream(self, codec: str, width: int, height: int, source: VideoInfo, settings: EncoderSettings):
        if not holds(container_codecs(self._container), av.Codec(codec, "w")):
            raise VsrError(self.target, f"{self.target.suffix} files cannot hold {codec}")
        try:
            stream = self._container.add_stream(codec, rate=source.frame_rate)
        except (av.error.FFmpegError, ValueError, TypeError) as error:
            raise VsrError(self.target, f"cannot set up encoder {codec}: {self._problem(error)}") from None
        stream.width, stream.height, stream.pix_fmt = width, height, self._pix_fmt
        # The source's time base, not 1/fps: variable frame rate timestamps must not be rounded. A container of
        # frame slots has no other timing than 1/fps.
        time_base = self._slots.time_base if self._slots else source.time_base
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.codec_context.options = codec_options(codec, settings.crf, settings.preset)
        # Frame threads, as the ffmpeg CLI uses: with PyAV's default (slices) each encode() call waits for the
        # whole frame, and the conversions in this thread cannot overlap the encoder.
        stream.codec_context.thread_type = "FRAME"
        cc = stream.codec_context
        cc.colorspace, cc.color_range = self.color.matrix, self.color.range
        cc.color_primaries, cc.color_trc = self.color.primaries, self.color.transfer
        if source.rotation:
            stream.set_display_rotation(source.rotation)
        if source.sample_aspect_ratio:  # both sides grow by the same scale, so the pixels keep their shape
            cc.sample_aspect_ratio = source.sample_aspect_ratio
        stream.metadata.update(carried_tags(source.video_tags))
        self._container.metadata.update(carried_tags(source.tags))
        return stream

    def _aspect_note(self, codec: str, width: int, height: int, source: VideoInfo) -> list[str]:
        """A warning when the source's pixels are not square and this encoder and container cannot say so."""
        ratio = source.sample_aspect_ratio
        if ratio is None or codec in ASPECT_ENCODERS or self._container.format.name in ASPECT_MUXERS:
            return []
        square = Fraction(width, height)
        return [f"the source's pixels are {pixel_shape(ratio, width, height)}, which {codec} in "
                f"{self._container.format.name} cannot record: players will show the output as "
                f"{square.numerator}:{square.denominator}; write .mp4, or .mkv with libx264 or libx265, to keep it"]

    def _open_encoder(self, codec: str, settings: EncoderSettings) -> None:
        """Open the encoder now; the container copies its parameters (and extradata) when it writes the header."""
        context = self._stream.codec_context
        asked = codec_options(codec, settings.crf, settings.preset)
        try:
            with ffmpeg_messages() as messages:
                context.open()
        except av.error.FFmpegError as error:
            said = "; ".join(messages) or self._problem(error)
            raise VsrError(self.target, f"encoder {codec} cannot open for {context.width}x{context.height} "
                                        f"{self._pix_fmt} video{_described(asked)}: {said}") from None
        unused = [name for name in USER_OPTION if name in (context.options or {})]
        if unused:  # FFmpeg leaves options an encoder does not know unused, and says nothing
            raise VsrError(self.target, f"encoder {codec} does not take --{USER_OPTION[unused[0]]}; leave it out")

    def _copy_streams(self, source: str) -> StreamCopier:
        """The source's audio and subtitles, beside the video; an audio encoder the container needs opens now."""
        messages: list[str] = []
        try:
            with ffmpeg_messages() as messages:
                return StreamCopier(source, self._container, self._live)
        except (av.error.FFmpegError, ValueError) as error:
            said = f" ({'; '.join(messages)})" if messages else ""
            raise VsrError(self.target, f"{self._problem(error)}{said}") from None

    def _write_header(self) -> None:
        """Write the container's header now (the file appears), so that the muxer refuses a stream before decoding.

        PyAV would write it at the first packet, copying each stream's parameters from its opened encoder then:
        those are final once the encoder is open, as the ffmpeg command line relies on too.
        """
        try:
            with ffmpeg_messages() as messages:
                self._container.start_encoding()
        except (OSError, av.error.FFmpegError) as error:
            if messages:
                raise VsrError(self.target, f"the {self._container.format.name} muxer refused the streams: "
                                            f"{'; '.join(messages)}") from None
            raise VsrError(self.target, f"could not be written ({self._problem(error)})") from None

    def write(self, frame: Frame) -> None:
        # A view, not a copy: the converter below reads it at once into a new frame.
        picture = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(frame.image), format=self._rgb_format)
        picture = self._to_yuv.reformat(picture, format=self._pix_fmt, dst_colorspace=self._matrix,
                                        dst_color_range=self._range, threads=1)
        self.write_picture(picture, frame.pts, frame.time_base)

    @property
    def pixel_format(self) -> str:
        """The encoder's pixel format: a picture already in it (and in this video's colours) is written as it is."""
        return self._pix_fmt

    def write_picture(self, picture: av.VideoFrame, pts: int, time_base: Fraction) -> None:
        """A picture in the encoder's pixel format and the video's colour matrix and range."""
        self._check_partial_exists()
        if self._slots:
            picture.pts, picture.time_base = self._slots.place(pts, time_base), self._slots.time_base
        else:
            picture.pts, picture.time_base = pts, time_base
        picture.colorspace, picture.color_range = self.color.matrix, self.color.range
        picture.color_primaries, picture.color_trc = self.color.primaries, self.color.transfer
        try:
            self._mux_video(self._stream.encode(picture))
        except (OSError, av.error.FFmpegError) as error:  # disk full, folder gone, encoder failure
            raise VsrError(self.target, f"could not be written ({self._problem(error)})") from None

    def _check_partial_exists(self) -> None:
        """Stop at the next frame, not after all the work, if the file being written is gone: writes to a
        deleted file succeed on Linux, so only the final rename would notice (one stat per frame)."""
        if self.temporary is not None and not self.temporary.exists():
            gone = "its folder was removed" if not self.temporary.parent.is_dir() else "the file was deleted"
            raise VsrError(self.target, f"could not be written ({gone} during the run)")

    def _mux_video(self, packets) -> None:
        for packet in packets:
            if self._copier and packet.dts is not None:
                seconds = packet.dts * packet.time_base
                # In slots the time counts from the first frame; the source's audio keeps the source's clock.
                self._copier.copy_until(float(seconds + self._slots.origin if self._slots else seconds))
            self._container.mux(packet)

    def close(self) -> None:
        """Finish the file and move it into place."""
        messages: list[str] = []
        try:
            self._mux_video(self._stream.encode(None))
            if self._copier:
                self._copier.copy_until(None)
            with ffmpeg_messages() as messages:  # the trailer: MP4 writes its index and sample descriptions now
                self._container.close()
        except (OSError, av.error.FFmpegError) as error:
            self.abort()
            said = f"{self._problem(error)}: {'; '.join(messages)}" if messages else self._problem(error)
            raise VsrError(self.target, f"could not be written ({said})") from None
        except BaseException:
            self.abort()
            raise
        if self._slots and self._slots.moved:
            self.notes.append(self._slots.note(self.target.suffix.lower()))
        if self._copier and self._copier.dropped:
            self.notes.append(f"{self._copier.dropped} audio/subtitle packet(s) of {self._copier.source} dropped: "
                              "their timestamps repeated or went backwards (a damaged source)")
        self._finish_output()

    def _finish_output(self) -> None:
        commit(self.temporary, self.target)

    def abort(self) -> None:
        """Drop everything written so far; the target is left as it was."""
        if self._copier:
            self._copier.close()
        try:
            self._container.close()
        except (OSError, av.error.FFmpegError, ValueError):
            pass
        self._drop_output()

    def _drop_output(self) -> None:
        discard(self.temporary)

    def _problem(self, error: BaseException) -> str:
        """FFmpeg's or the OS's words for a failure, whole, naming the target: the hidden partial is ours alone."""
        text = getattr(error, "strerror", None) or str(error)
        return text if self.temporary is None else text.replace(str(self.temporary), str(self.target))


LIVE_X264_PRESET = "veryfast"  # what live streaming software uses: medium can cost more than a small model


class VideoStreamWriter(VideoFileWriter):
    """Encodes to standard output ('-') or to a network address as frames come: there is nothing to rename.

    On failure the stream just ends (the caller's exit status says so). The container is `format`, or the
    usual one for the address: Matroska on standard output (it keeps every timestamp), MPEG-TS for udp, tcp,
    srt and rtp, FLV for rtmp. Packets are flushed as they are muxed, and x264 runs without look-ahead
    (`tune zerolatency`) at the `veryfast` preset unless --preset says otherwise, so that each frame leaves
    as soon as it is upscaled.
    """

    def __init__(self, target: str, width: int, height: int, source: VideoInfo, settings: EncoderSettings,
                 stream_format: str | None = None, live: LiveInput | None = None) -> None:
        self.stream_format = stream_format or default_stream_format(target)
        if self.stream_format is None:
            raise VsrError(target, "say which container to stream with --format (mpegts, matroska, flv, nut, ...)")
        super().__init__(target, width, height, source, settings, live)

    def _partial_path(self) -> None:
        return None

    def _default_codec(self) -> str:
        return "libvpx-vp9" if self.stream_format == "webm" else "libx264"

    def _open_output(self) -> av.container.OutputContainer:
        options = {"flush_packets": "1"}
        if self.stream_format in ("mp4", "mov", "ipod"):  # no seeking back to write the index: fragments
            options["movflags"] = "frag_keyframe+empty_moov+default_base_moof"
        return av.open(ffmpeg_address(str(self.target), writing=True), "w", format=self.stream_format,
                       container_options=options)

    def _add_video_stream(self, codec: str, width: int, height: int, source: VideoInfo, settings: EncoderSettings):
        stream = super()._add_video_stream(codec, width, height, source, settings)
        # Frame threads hold a frame per thread before the first leaves (and FFmpeg's x264 wrapper turns
        # zerolatency's sliced threads back into frame threads when asked for them): slices instead.
        stream.codec_context.thread_type = "SLICE"
        if codec == "libx264":
            live = {"tune": "zerolatency", "preset": settings.preset or LIVE_X264_PRESET}
            stream.codec_context.options = {**stream.codec_context.options, **live}
        return stream

    def _finish_output(self) -> None:
        pass

    def _drop_output(self) -> None:
        pass


def default_stream_format(address: str) -> str | None:
    """The container usually streamed to this address; None where FFmpeg must be told."""
    if address == "-":
        return "matroska"
    scheme = address.split("://", 1)[0].lower()
    return {"udp": "mpegts", "tcp": "mpegts", "srt": "mpegts", "rtp": "rtp_mpegts", "rtmp": "flv",
            "rtmps": "flv", "rtsp": "rtsp"}.get(scheme)


class _FrameSlots:
    """Frame times for a container that gives every frame one slot of 1/fps (AVI), as pts in that time base.

    A frame goes to the slot nearest its time from the first frame, and always after the one before: evenly
    spaced frames keep their times; others are moved, counted in `moved`. Evenly spaced means to within the
    source's own rounding (one tick of its time base: Matroska's 1 ms cannot hold 1/29.97 s exactly) and 1% of
    a slot (for a frame rate that is an average of rounded times).
    """

    TOLERANCE = Fraction(1, 100)  # of a slot

    def __init__(self, frame_rate: Fraction) -> None:
        self.frame_rate = Fraction(frame_rate)
        self.time_base = 1 / self.frame_rate
        self.origin = Fraction(0)  # the first frame's time in the source, in seconds
        self.moved = 0
        self.frames = 0
        self._last: int | None = None

    def place(self, pts: int, time_base: Fraction) -> int:
        time = Fraction(pts) * Fraction(time_base)
        if self._last is None:
            self.origin = time
        exact = (time - self.origin) * self.frame_rate
        slot = round(exact)
        if self._last is not None:
            slot = max(slot, self._last + 1)
        if abs(slot - exact) > self.TOLERANCE + Fraction(time_base) * self.frame_rate:
            self.moved += 1
        self._last = slot
        self.frames += 1
        return slot

    def note(self, container: str) -> str:
        rate = f"{float(self.frame_rate):.6g}"
        return (f"variable frame timing does not survive in {container} files, which give every frame an equal slot "
                f"of 1/{rate} s: the source's frames are not evenly spaced, so {self.moved} of {self.frames} "
                "moved to the nearest free slot; write .mkv or .mp4 to keep their times")


def _described(options: dict[str, str]) -> str:
    """' with crf 18, preset medium': the quality and speed settings an encoder was opened with, named as ours."""
    shown = [f"{USER_OPTION[name]} {value}" for name, value in options.items() if name in USER_OPTION]
    return f" with {', '.join(shown)}" if shown else ""


def pixel_shape(ratio: Fraction | None, width: int, height: int) -> str:
    """'16:11 wide, shown as 16:9': a sample aspect ratio (None: square) and the picture's shape on screen."""
    shown = Fraction(width, height) * (ratio or 1)
    pixels = f"{ratio.numerator}:{ratio.denominator} wide" if ratio else "square"
    return f"{pixels}, shown as {shown.numerator}:{shown.denominator}"


class FrameFolderWriter:
    """Writes frame_000000.png, ... (16-bit when the frames are); the folder appears only when complete."""

    def __init__(self, target: Path, source: VideoInfo, live: LiveInput | None = None) -> None:
        self.target = target
        if live is not None:
            live.side_packets.want(set())  # frames only: a live source's audio must not pile up for nobody
        self.temporary = start_partial(target)
        try:
            self.temporary.mkdir()
        except OSError as error:
            raise VsrError(target, f"cannot be written ({error.strerror})") from None
        dropped = [f"{s.type} stream {s.index} ({s.codec})" for s in source.streams if s.type != "video"]
        if source.sample_aspect_ratio:
            shape = pixel_shape(source.sample_aspect_ratio, source.width, source.height)
            dropped.append(f"the pixel shape ({shape}: PNG pixels are square)")
        self.notes = [f"a PNG folder holds frames only: {', '.join(dropped)} not written"] if dropped else []
        self._count = 0

    def write(self, frame: Frame) -> None:
        write_png(self.temporary / f"frame_{self._count:06d}.png", frame.image, names=self.target)
        self._count += 1

    def close(self) -> None:
        commit(self.temporary, self.target)

    def abort(self) -> None:
        discard(self.temporary)


def open_writer(target: Path | str, width: int, height: int, source: VideoInfo, settings: EncoderSettings,
                live: LiveInput | None = None, stream_format: str | None = None):
    """The writer for `target`: a stream ('-' or a URL), a video file, or a folder of PNG frames."""
    if isinstance(target, str) and is_stream_address(target):
        return VideoStreamWriter(target, width, height, source, settings, stream_format, live)
    target = Path(target)
    if is_video_path(target):
        return VideoFileWriter(target, width, height, source, settings, live)
    return FrameFolderWriter(target, source, live)
