"""`vsr run --model bicubic` on a video's YUV planes, without torch: the baseline as fast as ffmpeg's scale.

The usual pipeline turns every decoded picture into RGB for the model and back into YUV for the encoder
(2 ms a 1280x720 frame), and it imports torch (1.4 s). For plain bicubic neither is needed: bicubic is linear,
so scaling the Y, U and V planes each is the same interpolation as scaling R, G and B (up to rounding), and
OpenCV's INTER_CUBIC is the very kernel of our BicubicUpscaler (a = -0.75, pixel centres aligned). This path
takes 8-bit 4:2:0 video files to an encoder that takes 4:2:0 too; anything else goes the usual way.

Nothing here may import torch: the point is not to pay for it.
"""

from __future__ import annotations

import time
from pathlib import Path

import av
import cv2
import numpy as np

from vsr.io.destination import remove_stale_partials
from vsr.io.frames import VideoInfo
from vsr.io.memory import check_upscalable
from vsr.io.reader import FrameReader
from vsr.io.writer import EncoderSettings, open_writer
from vsr.pipeline.report import JobReport, check_complete, say_deinterlacing, source_notes
from vsr.progress import Progress

PLANAR_FORMAT = "yuv420p"


def takes_planes(info: VideoInfo) -> bool:
    """Whether the source's pictures are 8-bit 4:2:0 planes, which this path scales as they are."""
    return not info.is_frame_folder and info.pix_fmt == PLANAR_FORMAT  # yuvj420p would change range


def scale_planes(picture: av.VideoFrame, scale: int) -> av.VideoFrame:
    """A yuv420p picture `scale` times larger, each plane by bicubic interpolation, written straight into
    the new picture's planes (no intermediate copies: at 1280x720 they cost as much as the interpolation)."""
    scaled = av.VideoFrame(picture.width * scale, picture.height * scale, PLANAR_FORMAT)
    for source, target in zip(picture.planes, scaled.planes):
        into = plane_view(target)
        resized = cv2.resize(plane_view(source), (target.width, target.height), dst=into,
                             interpolation=cv2.INTER_CUBIC)
        if not np.may_share_memory(resized, into):  # OpenCV made a new array instead of writing in place
            into[:] = resized
    return scaled


def plane_view(plane: av.video.plane.VideoPlane) -> np.ndarray:
    """The plane's pixels as a (height, width) array over its buffer, whose rows may be padded."""
    rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
    return rows[: plane.height, : plane.width]


def upscale_planes(source: Path, target: Path, info: VideoInfo, scale: int, settings: EncoderSettings,
                   progress: bool = True, strict: bool = False, deinterlace: str = "frame") -> JobReport | None:
    """Bicubic x`scale` of a checked source into a checked target; None, with nothing written, where the
    encoder does not take yuv420p pictures (the caller then takes the usual path)."""
    check_upscalable(source, info.width, info.height, scale, 0)
    remove_stale_partials(target)
    reader = FrameReader(info, deinterlace=deinterlace)
    info = reader.output  # with a frame per field, twice the frames at twice the rate
    writer = open_writer(target, info.width * scale, info.height * scale, info, settings)
    bar = None
    try:  # at once: from here on, whatever stops the run removes the partial
        if getattr(writer, "pixel_format", None) != PLANAR_FORMAT:
            writer.abort()
            return None
        cv2.setNumThreads(1)  # the encoder's threads have the cores; OpenCV's pool only contends with them here
        if reader.deinterlaces:
            say_deinterlacing(source, reader)
        bar = Progress(info.frame_count, "frame", source.name, progress)
        started, frames = time.perf_counter(), 0
        for picture, pts, time_base in reader.pictures():
            writer.write_picture(scale_planes(picture, scale), pts, time_base)
            frames += 1
            bar.update()
        check_complete(source, reader, frames, strict)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    notes = source_notes(source, reader, frames) + [f"{target}: {note}" for note in writer.notes]
    return JobReport(frames, time.perf_counter() - started, target, notes)
