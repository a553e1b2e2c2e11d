"""Streaming readers: frames one at a time with their timestamps, never the whole video in memory."""

from __future__ import annotations

from contextlib import contextmanager

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from vsr.errors import VsrError
from vsr.io.colors import assumed_matrix, swscale_matrix, swscale_range
from vsr.io.deinterlace import MODES, deinterlaced, deinterlaced_info
from vsr.io.frame_folder import list_frames, read_png
from vsr.io.frames import Frame, VideoInfo
from vsr.io.live import LiveInput
from vsr.io.probe import open_container, probe


class FrameReader:
    """Iterates over a source's frames; afterwards `problems` lists what went wrong on the way.

    An interlaced source's frames are deinterlaced (vsr/io/deinterlace.py) as `deinterlace` says: "frame",
    "field" or "off". `output` describes what comes out: the source, or with a frame per field twice the frames.
    """

    def __init__(self, info: VideoInfo, live: LiveInput | None = None, deinterlace: str = "frame") -> None:
        if deinterlace not in MODES:
            raise ValueError(f"deinterlace is one of {MODES}, not {deinterlace!r}")
        self.info = info
        self.live = live  # a source read once (a pipe, a network stream), already open
        self.deinterlaces = deinterlace != "off" and info.interlaced
        self.per_field = self.deinterlaces and deinterlace == "field"
        self.output = deinterlaced_info(info, deinterlace)
        self.problems: list[str] = []
        self.frames_lost = False  # whether a problem cost frames (a repaired timestamp costs none)
        self.frames_read = 0  # frames given out
        self.frames_decoded = 0  # the source's: fewer than frames_read where each field becomes a frame

    def __iter__(self) -> Iterator[Frame]:
        if self.live is not None:
            frames = self._live_frames()
        else:
            frames = self._folder_frames() if self.info.is_frame_folder else self._video_frames()
        yield from self._counted(frames)

    def pictures(self) -> Iterator[tuple[av.VideoFrame, int, Fraction]]:
        """A video file's decoded pictures as they come (the decoder's pixel format, no RGB), each with its
        repaired pts and the time base: for work done on the YUV planes."""
        with self._video_stream() as (container, stream):
            time_base = self._output_time_base(stream)
            timed = self._timed(self._progressive(self._decode_tolerantly(container, stream), time_base))
            yield from self._counted((decoded, pts, time_base) for decoded, pts in timed)

    def _counted(self, frames: Iterator) -> Iterator:
        for frame in frames:
            self.frames_read += 1
            yield frame
        decoded = self.frames_decoded if self.deinterlaces else self.frames_read
        if decoded < self.info.frame_count - 1:  # -1: counts estimated from the duration may round up
            self.problems.append(f"only {decoded} of the {self.info.frame_count} frames announced decoded")
            self.frames_lost = True

    def _folder_frames(self) -> Iterator[Frame]:
        time_base = self.info.time_base
        for index, path in enumerate(list_frames(Path(self.info.path))):
            image = read_png(path)
            if image.shape[:2] != (self.info.height, self.info.width):
                raise VsrError(path, f"frame is {image.shape[1]}x{image.shape[0]}, the first frame is "
                                     f"{self.info.width}x{self.info.height}")
            yield Frame(image, index, time_base)

    def _video_frames(self) -> Iterator[Frame]:
        with self._video_stream() as (container, stream):
            time_base = self._output_time_base(stream)
            yield from self._rgb_frames(self._progressive(self._decode_tolerantly(container, stream), time_base),
                                        time_base)

    def _output_time_base(self, stream) -> Fraction:
        """The stream's time base, halved where each field becomes a frame."""
        return Fraction(stream.time_base) / (2 if self.per_field else 1)

    @contextmanager
    def _video_stream(self) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
        """The video file, open, and its video stream set to decode on FFmpeg's threads."""
        with open_container(Path(self.info.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            yield container, stream

    def _live_frames(self) -> Iterator[Frame]:
        try:
            time_base = self.output.time_base
            yield from self._rgb_frames(self._progressive(self.live.frames(), time_base), time_base)
        finally:
            self.problems.extend(self.live.problems)

    def _progressive(self, decoded_frames: Iterator[av.VideoFrame], time_base: Fraction) -> Iterator[av.VideoFrame]:
        if not self.deinterlaces:
            return decoded_frames
        return deinterlaced(self._decoded_counted(decoded_frames), time_base, self.per_field)

    def _decoded_counted(self, decoded_frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
        for frame in decoded_frames:
            self.frames_decoded += 1
            yield frame

    def _rgb_frames(self, decoded_frames: Iterator[av.VideoFrame], time_base: Fraction) -> Iterator[Frame]:
        """Decoded frames as RGB arrays with strictly increasing timestamps in `time_base`."""
        rgb_format = "rgb48le" if self.info.bit_depth > 8 else "rgb24"
        matrix = swscale_matrix(assumed_matrix(self.info.color, self.info.height))
        color_range = swscale_range(self.info.color.range)
        to_rgb = VideoReformatter()  # one swscale context for the whole video
        for decoded, pts in self._timed(decoded_frames):
            rgb = to_rgb.reformat(decoded, format=rgb_format, width=self.info.width, height=self.info.height,
                                  src_colorspace=matrix, src_color_range=color_range, threads=1)
            yield Frame(rgb.to_ndarray(), pts, time_base)

    def _timed(self, decoded_frames: Iterator[av.VideoFrame]) -> Iterator[tuple[av.VideoFrame, int]]:
        """Each decoded frame with a strictly increasing pts; the repairs are counted as a problem."""
        timestamps = _IncreasingTimestamps(round(1 / (self.output.frame_rate * self.output.time_base)) or 1)
        try:
            for decoded in decoded_frames:
                yield decoded, timestamps.next(decoded.pts)
        finally:
            if timestamps.repaired:
                self.problems.append(f"{timestamps.repaired} frame(s) had a missing, repeated or backward "
                                     "timestamp; each was given the previous frame's plus one frame duration")

    def _decode_tolerantly(self, container, stream) -> Iterator[av.VideoFrame]:
        """Decode packet by packet, so that one corrupt packet costs its frames, not the rest of the video."""
        bad_packets = 0
        try:
            for packet in container.demux(stream):
                bad_packets += packet.is_corrupt
                try:
                    for frame in packet.decode():
                        bad_packets += frame.is_corrupt
                        yield frame
                except av.error.InvalidDataError:
                    bad_packets += 1
        except av.error.FFmpegError as error:
            self.problems.append(f"reading stopped early ({error.strerror})")
            self.frames_lost = True
        if bad_packets:
            self.problems.append(f"{bad_packets} corrupt packet(s) or frame(s) met while decoding")
            self.frames_lost = True


class _IncreasingTimestamps:
    """Strictly increasing frame timestamps, whatever a damaged source's packets carry.

    A frame whose pts is missing, or not past the previous frame's, gets the previous one plus one frame
    duration (`step`, in the stream's time base): encoders and muxers refuse timestamps that go backwards.
    `repaired` counts them; missing ones only where other frames have a pts (raw H.264 has none, and is whole).
    """

    def __init__(self, step: int) -> None:
        self.step = step
        self._last: int | None = None
        self._missing = self._backward = self._stamped = 0

    @property
    def repaired(self) -> int:
        return self._backward + (self._missing if self._stamped else 0)

    def next(self, pts: int | None) -> int:
        if pts is None:
            self._missing += 1
        elif self._last is not None and pts <= self._last:
            self._backward += 1
        else:
            self._stamped += 1
            self._last = pts
            return pts
        self._last = 0 if self._last is None else self._last + self.step
        return self._last


def read_8bit(path: Path) -> Iterator[np.ndarray]:
    """A video file's or PNG folder's frames as 8-bit RGB, 16-bit rounded as the papers' PNGs are: how the
    bench and the comparison page read frames."""
    from vsr.metrics import frames_to_8bit

    for frame in FrameReader(probe(path)):
        yield frames_to_8bit([frame.image], str(path))[0]
