"""Interlaced video made progressive before it is upscaled.

Broadcast SD, DV and tape captures store each frame as two fields taken 1/50 or 1/60 s apart, interleaved line
by line. Upscaled as they are, moving edges keep the comb of alternating lines, four times as tall at x4.
FFmpeg's bwdif (Bob Weaver: each missing line interpolated from its field and the neighbouring frames) makes
one progressive frame per frame, at the frame's own timestamp, so the frame count and timing are unchanged; or
one per field ("field"), at twice the frame rate, which keeps every moment the camera recorded (50 a second
from 25 interlaced frames), as the source looked on a television. Frames not flagged interlaced pass as they
are (once, even with a frame per field: a mixed source's output is timed by each frame's own timestamp).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction

import av

from vsr.io.frames import VideoInfo

MODES = ("frame", "field", "off")  # one frame per frame, one frame per field, or the fields left woven


def deinterlaced_info(info: VideoInfo, mode: str) -> VideoInfo:
    """What reading `info` with `mode` gives: the source as it is, or, for an interlaced source read with a frame
    per field, twice the frames and the rate and half the time base (so that a field's time is a whole number of
    ticks)."""
    if mode != "field" or not info.interlaced:
        return info
    return replace(info, frame_rate=info.frame_rate * 2, time_base=info.time_base / 2,
                   frame_count=info.frame_count * 2)


def deinterlaced(frames: Iterator[av.VideoFrame], time_base: Fraction,
                 per_field: bool = False) -> Iterator[av.VideoFrame]:
    """`frames` with each interlaced one made progressive, one frame later; one frame out per frame in, or two
    (`per_field`), timed in `time_base` (half the frames' own with `per_field`)."""
    graph, shape = None, None
    for frame in frames:
        if (frame.width, frame.height, frame.format.name) != shape:  # a filter graph takes one size and format
            if graph is not None:
                yield from _flushed(graph, time_base)
            graph = _bwdif_graph(frame, frame.time_base or time_base * (2 if per_field else 1), per_field)
            shape = (frame.width, frame.height, frame.format.name)
        graph.vpush(frame)
        yield from _ready(graph, time_base)
    if graph is not None:
        yield from _flushed(graph, time_base)


def _flushed(graph: av.filter.Graph, time_base: Fraction) -> Iterator[av.VideoFrame]:
    """The frames still in the graph: the last one waits for a next one that will not come."""
    graph.vpush(None)
    yield from _ready(graph, time_base)


def _bwdif_graph(first: av.VideoFrame, time_base: Fraction, per_field: bool) -> av.filter.Graph:
    graph = av.filter.Graph()
    source = graph.add_buffer(width=first.width, height=first.height, format=first.format.name,
                              time_base=time_base)
    # send_frame or send_field: a frame per frame or per field; deint=interlaced: only frames flagged interlaced.
    mode = "send_field" if per_field else "send_frame"
    bwdif = graph.add("bwdif", f"mode={mode}:parity=auto:deint=interlaced")
    sink = graph.add("buffersink")
    source.link_to(bwdif)
    bwdif.link_to(sink)
    graph.configure()
    return graph


def _ready(graph: av.filter.Graph, time_base: Fraction) -> Iterator[av.VideoFrame]:
    """The frames bwdif has finished, timed in `time_base` (bwdif counts in fields: half its input's time base)."""
    while True:
        try:
            frame = graph.vpull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return
        if frame.pts is not None:
            frame.pts = round(frame.pts * frame.time_base / time_base)
        frame.time_base = time_base
        yield frame
