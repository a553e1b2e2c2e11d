"""Live sources: standard input and network streams, which can be read once, from the start, and never again.

A file is probed, closed and opened again to decode; a pipe or a socket cannot be. A `LiveInput` opens the
source once, decodes the first frame to learn the size and timing, and hands that frame and everything after
it to the reader. Audio and subtitle packets met on the way go into `side_packets`, where the writer takes
them up to the time of the video it has written, so that they stay interleaved by time as they arrive.
Frame count and duration are unknown (0 and None): nothing may depend on them.
"""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from fractions import Fraction
from typing import TypeVar

import av
import numpy as np

from vsr.errors import VsrError
from vsr.io.frames import Frame
from vsr.io.probe import describe

T = TypeVar("T")
STDIO = "-"
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# FFmpeg's options that let an HTTP input pick up again where it broke off (libavformat/http.c).
HTTP_RECONNECT = {"reconnect": "1", "reconnect_streamed": "1", "reconnect_on_network_error": "1",
                  "reconnect_delay_max": "30"}
PROBE_MICROSECONDS = "500000"
WAITING = object()  # side_packets.take(): nothing has arrived yet, more may


def is_stream_address(text: str) -> bool:
    """'-' (standard input or output) or a URL FFmpeg opens through a protocol: udp://, tcp://, srt://, ...

    file:// is a file like any other and goes the file way.
    """
    return text == STDIO or (bool(URL.match(text)) and not text.lower().startswith("file://"))


def ffmpeg_address(text: str, writing: bool = False) -> str:
    """What FFmpeg opens: its pipe protocol for '-', the URL itself otherwise."""
    if text == STDIO:
        return "pipe:1" if writing else "pipe:0"
    return text


class SidePackets:
    """Audio and subtitle packets between the decoding thread and the writer: a queue that can say 'not yet'.

    Until the writer says which streams it takes (`want`), everything is kept (the first packets arrive while
    the source is probed, before the writer exists); from then on only those, so that a writer that takes
    none (a PNG folder) leaves nothing to pile up over a long stream.
    """

    def __init__(self) -> None:
        self._packets: collections.deque = collections.deque()
        self._wanted: set[int] | None = None
        self._ended = False
        self._lock = threading.Lock()

    def want(self, indices: set[int]) -> None:
        with self._lock:
            self._wanted = set(indices)
            self._packets = collections.deque(p for p in self._packets if p.stream.index in self._wanted)

    def wants(self, index: int) -> bool:
        return self._wanted is None or index in self._wanted

    def put(self, packet) -> None:
        with self._lock:
            self._packets.append(packet)

    def end(self) -> None:
        with self._lock:
            self._ended = True

    def take(self):
        """The next packet; WAITING when none has arrived yet; None once the input has ended."""
        with self._lock:
            if self._packets:
                return self._packets.popleft()
            return None if self._ended else WAITING


def interruptible(wait: Callable[[], T]) -> T:
    """`wait()` run in a thread of its own while this one stays free to take Ctrl-C and SIGTERM.

    FFmpeg blocks inside C while it waits for a sender (a listening socket, a silent UDP port), and Python's
    signal handlers run only between bytecodes: the wait would not end by Ctrl-C. The waiting thread is a
    daemon, so a stopped run exits without it.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = wait()
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, name="vsr-live-open", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class LiveInput:
    """A source read once: standard input or a network stream, opened and probed by its first frame."""

    def __init__(self, address: str, input_format: str | None = None, reconnect: bool = False,
                 read_timeout: float | None = None) -> None:
        self.address = address
        self.input_format = input_format
        self.reconnect = reconnect
        # A network input that falls silent (a UDP sender that stopped) would otherwise be waited for forever.
        self.read_timeout = read_timeout if address != STDIO else None
        self._offset = Fraction(0)  # seconds added to the timestamps of a reconnected stream
        self._last_time: Fraction | None = None  # of the last video frame given out, in seconds
        self.side_packets = SidePackets()
        self._reading = False
        self.problems: list[str] = []  # what went wrong on the way (--strict fails on them)
        self.notes: list[str] = []  # how it ended, where that is worth saying
        self.reconnections = 0
        self.container = interruptible(self._open)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "SLICE"  # frame threads would hold frames back
        self._packets = self._demux()
        self._first = interruptible(self._first_frame)
        # Whatever a live stream announces, its length is unknown until it ends: frame count 0.
        self.info = replace(describe(self.address, self.container, self.stream, self._first, None), frame_count=0)

    def _open(self) -> av.container.InputContainer:
        options = dict(HTTP_RECONNECT) if self.reconnect and self.address.lower().startswith("http") else {}
        # FFmpeg reads 5 s of a stream before its first frame, to learn the streams' parameters: 5 s of delay
        # on a live source. Half a second finds the parameters of video and audio alike in the streams we meet.
        options["analyzeduration"] = PROBE_MICROSECONDS
        try:
            container = av.open(ffmpeg_address(self.address), "r", format=self.input_format, options=options,
                                timeout=(None, self.read_timeout))
        except av.error.FFmpegError as error:
            unreadable = isinstance(error, av.error.InvalidDataError) and not self.input_format
            hint = "; if its container cannot be probed from the first bytes, say which with --input-format " \
                   "(mpegts, matroska, nut, h264, ...)" if unreadable else ""
            raise VsrError(self.address, f"cannot be opened as a live input ({error.strerror}){hint}") from None
        except ValueError as error:  # an unknown --input-format
            raise VsrError(self.address, f"cannot be opened as a live input ({error})") from None
        if not container.streams.video:
            container.close()
            raise VsrError(self.address, "has no video stream")
        return container

    def sample_frames(self, count: int) -> list[Frame]:
        """`count` frames for timing a model (--realtime), made from the first one without reading further:
        it moves by a pixel from frame to frame, so that motion-compensating models have motion to follow."""
        image = self._first.to_ndarray(format="rgb48le" if self.info.bit_depth > 8 else "rgb24")
        return [Frame(np.roll(image, shift, axis=1), shift, self.info.time_base) for shift in range(count)]

    def _demux(self) -> Iterator:
        """Every packet of the input; the audio and subtitle ones go to side_packets on the way."""
        for packet in self.container.demux():
            if packet.stream.index == self.stream.index:
                yield packet
            elif packet.dts is not None and self.side_packets.wants(packet.stream.index):
                if packet.stream.type in ("audio", "subtitle"):
                    self.side_packets.put(self._shifted(packet))

    def _shifted(self, packet):
        """The packet moved by the reconnection offset, so that time goes on across connections."""
        if self._offset and packet.time_base:
            ticks = int(self._offset / Fraction(packet.time_base))
            packet.dts = None if packet.dts is None else packet.dts + ticks
            packet.pts = None if packet.pts is None else packet.pts + ticks
        return packet

    def _first_frame(self) -> av.VideoFrame:
        try:
            for frame in self._decoded():
                return frame
        except av.error.FFmpegError as error:
            raise VsrError(self.address, f"video stream cannot be decoded ({error.strerror})") from None
        raise VsrError(self.address, "ended before its first video frame")

    def _decoded(self) -> Iterator[av.VideoFrame]:
        for packet in self._packets:
            try:
                yield from packet.decode()
            except av.error.InvalidDataError:
                self.problems.append("a corrupt packet was skipped")

    def frames(self) -> Iterator[av.VideoFrame]:
        """Every video frame, the probed first one included, with pts in `info.time_base`.

        When the input ends or breaks, the output ends with what arrived; with `reconnect`, the address is
        opened again (a listening socket waits for the next sender) and time goes on from the last frame.
        """
        self._reading = True
        try:
            first = self._first
            while first is not None:
                yield self._timed(first)
                try:
                    for frame in self._decoded():  # the demuxer's last, empty packet flushes the decoder
                        yield self._timed(frame)
                except av.error.ExitError:  # our read timeout: how a UDP stream ends, no problem
                    self.notes.append(f"nothing arrived for {self.read_timeout:g} s: the input is taken to have "
                                      "ended")
                except av.error.FFmpegError as error:
                    self.problems.append(f"the live input broke off ({error.strerror})")
                first = self._open_again() if self.reconnect else None
        finally:
            self._reading = False
            self.side_packets.end()

    def _timed(self, frame: av.VideoFrame) -> av.VideoFrame:
        """The frame with its time (plus the reconnection offset) in the first connection's time base."""
        if frame.pts is not None:
            self._last_time = Fraction(frame.pts) * Fraction(self.stream.time_base) + self._offset
            frame.pts = round(self._last_time / self.info.time_base)
        return frame

    def _open_again(self) -> av.VideoFrame | None:
        """Open the address again for the next sender and return its first frame; None where that fails."""
        try:
            self.container.close()
            self.container = self._open()
        except (VsrError, OSError, av.error.FFmpegError) as problem:
            self.problems.append(f"could not reconnect ({problem})")
            return None
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "SLICE"  # frame threads would hold frames back
        self._packets = self._demux()
        self.reconnections += 1
        try:
            first = next(self._decoded(), None)
        except av.error.FFmpegError as error:
            self.problems.append(f"the live input broke off after reconnecting ({error.strerror})")
            return None
        if first is None:
            return None
        if (first.width, first.height) != (self.info.width, self.info.height):
            self.problems.append(f"the stream after reconnection {self.reconnections} is {first.width}x"
                                 f"{first.height}, not {self.info.width}x{self.info.height}; the output ends there")
            return None
        # The new sender's clock starts anywhere: its first frame comes one frame after the last one given out.
        start = Fraction(first.pts or 0) * Fraction(self.stream.time_base)
        self._offset = (self._last_time or Fraction(0)) + 1 / Fraction(self.info.frame_rate) - start
        return first

    def close(self) -> None:
        """Close the input, unless a reader is still blocked in it (a stopped run leaves that to the exit)."""
        self.side_packets.end()
        if self._reading:
            return
        try:
            self.container.close()
        except (OSError, av.error.FFmpegError):
            pass
