"""Interlaced video made progressive before it is upscaled.

Broadcast SD, DV and tape captures store each frame as two fields taken 1/50 or 1/60 s apart, interleaved line
by line. Upscaled as they are, moving edges keep the comb of alternating lines, four times as tall at x4.
FFmpeg's bwdif (Bob Weaver: each missing line interpolated from its
field and the neighbouring frames) makes one progressive frame per frame, at the frame's own timestamp, so the
frame count and timing the rest of the pipeline relies on are unchanged. Frames not flagged interlaced pass as
they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import av


def deinterlaced(frames: Iterator[av.VideoFrame], time_base: Fraction) -> Iterator[av.VideoFrame]:
    """`frames` with each interlaced one made progressive; one frame out per frame in, one frame later."""
    graph, shape = None, None
    for frame in frames:
        if (frame.width, frame.height, frame.format.name) != shape:  # a filter graph takes one size and format
            if graph is not None:
                yield from _flushed(graph, time_base)
            graph, shape = _bwdif_graph(frame, time_base), (frame.width, frame.height, frame.format.name)
        graph.vpush(frame)
        yield from _ready(graph, time_base)
    if graph is not None:
        yield from _flushed(graph, time_base)


def _flushed(graph: av.filter.Graph, time_base: Fraction) -> Iterator[av.VideoFrame]:
    """The frames still in the graph: the last one waits for a next one that will not come."""
    graph.vpush(None)
    yield from _ready(graph, time_base)


def _bwdif_graph(first: av.VideoFrame, time_base: Fraction) -> av.filter.Graph:
    graph = av.filter.Graph()
    source = graph.add_buffer(width=first.width, height=first.height, format=first.format.name,
                              time_base=time_base)
    # send_frame: one frame per frame (not one per field); deint=interlaced: only frames flagged interlaced.
    bwdif = graph.add("bwdif", "mode=send_frame:parity=auto:deint=interlaced")
    sink = graph.add("buffersink")
    source.link_to(bwdif)
    bwdif.link_to(sink)
    graph.configure()
    return graph


def _ready(graph: av.filter.Graph, time_base: Fraction) -> Iterator[av.VideoFrame]:
    """The frames bwdif has finished, timed in `time_base` again (it counts in fields, half the time base)."""
    while True:
        try:
            frame = graph.vpull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return
        if frame.pts is not None:
            frame.pts = round(frame.pts * frame.time_base / time_base)
        frame.time_base = time_base
        yield frame
