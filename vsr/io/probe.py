"""What a source holds: size, timing, pixel format, colour tags and the other streams."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from vsr.errors import VsrError
from vsr.io.frame_folder import list_frames, read_png
from vsr.io.frames import ColorInfo, StreamInfo, VideoInfo
from vsr.io.memory import check_decodable

DEFAULT_FOLDER_FPS = Fraction(25)


def probe(path: str | Path, folder_fps: Fraction = DEFAULT_FOLDER_FPS) -> VideoInfo:
    """Inspect a video file or a folder of PNG frames; raise VsrError naming the problem if it is not usable."""
    path = Path(path)
    if not path.exists():
        raise VsrError(path, "no such file or folder")
    if path.is_dir():
        return probe_frame_folder(path, folder_fps)
    return probe_video_file(path)


def probe_frame_folder(folder: Path, fps: Fraction = DEFAULT_FOLDER_FPS) -> VideoInfo:
    frames = list_frames(folder)
    if not frames:
        raise VsrError(folder, "folder holds no PNG frames")
    first = read_png(frames[0])
    height, width = first.shape[:2]
    return VideoInfo(
        path=str(folder),
        container="png-folder",
        width=width,
        height=height,
        frame_rate=Fraction(fps),
        time_base=1 / Fraction(fps),
        frame_count=len(frames),
        duration=float(len(frames) / Fraction(fps)),
        pix_fmt="rgb48" if first.dtype.itemsize == 2 else "rgb24",
        bit_depth=16 if first.dtype.itemsize == 2 else 8,
        codec="png",
    )


def open_container(path: Path) -> av.container.InputContainer:
    """av.open with the failure turned into a one-line reason."""
    if path.is_dir():
        raise VsrError(path, "is a folder where a video file should be")
    if not path.is_file():
        raise VsrError(path, "is not a regular file (a pipe, socket or device); give a video file")
    if path.stat().st_size == 0:
        raise VsrError(path, "file is empty")
    try:
        return av.open(str(path), "r")
    except av.error.FFmpegError as error:
        raise VsrError(path, f"not a video FFmpeg can read ({error.strerror})") from None


def probe_video_file(path: Path) -> VideoInfo:
    with open_container(path) as container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["no"]
            raise VsrError(path, f"has no video stream (only {', '.join(kinds)} streams)")
        stream = container.streams.video[0]
        declared = stream.codec_context
        if declared.width and declared.height:  # before decoding a frame of that size
            deep = declared.format is not None and max(c.bits for c in declared.format.components) > 8
            check_decodable(path, declared.width, declared.height, 6 if deep else 3)
        first = first_decodable_frame(path, container, stream)
        duration = stream_duration(container, stream)
        return describe(str(path), container, stream, first, duration)


def describe(path: str, container, stream, first: av.VideoFrame, duration: float | None) -> VideoInfo:
    """What a source holds, from its open container, video stream and first decoded frame. Without a
    duration (a live source) the frame count is 0: unknown."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25)
    frame_count = stream.frames or (round(duration * rate) if duration else 0)
    descriptor = av.VideoFormat(first.format.name)
    return VideoInfo(
        path=path,
        container=container.format.name,
        width=first.width,
        height=first.height,
        frame_rate=Fraction(rate),
        time_base=Fraction(stream.time_base),
        frame_count=int(frame_count),
        duration=duration,
        pix_fmt=first.format.name,
        bit_depth=max(c.bits for c in descriptor.components),
        color=ColorInfo(
            matrix=int(first.colorspace),
            range=int(first.color_range),
            primaries=int(first.color_primaries),
            transfer=int(first.color_trc),
        ),
        rotation=int(first.rotation or 0),
        sample_aspect_ratio=non_square_pixels(stream),
        interlaced=bool(first.interlaced_frame),
        codec=stream.codec_context.name,
        streams=[
            StreamInfo(s.index, s.type, s.codec_context.name if s.codec_context else "?", s.language)
            for s in container.streams
        ],
        tags=dict(container.metadata),
        video_tags=dict(stream.metadata),
    )


def non_square_pixels(stream) -> Fraction | None:
    """The stream's sample aspect ratio where its pixels are not square (0/1, unknown, and 1/1 give None)."""
    ratio = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    if not ratio or ratio == 1:
        return None
    return Fraction(ratio)


def first_decodable_frame(path: Path, container, stream) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as error:
        raise VsrError(path, f"video stream cannot be decoded ({error.strerror})") from None
    raise VsrError(path, "video stream holds no decodable frame")


def stream_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        seconds = container.duration / av.time_base
        if container.format.name.startswith("matroska") and container.start_time:
            # A Matroska segment's Duration runs from time 0, not from the first frame: a stream recorded from
            # MPEG-TS starts at 1.4 s, say, and its frames span the Duration less that.
            seconds -= container.start_time / av.time_base
        return seconds
    return None
