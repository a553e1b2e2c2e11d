"""MP4 files every browser plays: H.264 in yuv420p, even sizes, the index (moov) before the data.

Frames get pts = their index at one frame rate, so that several such files started together show frame i
at the same currentTime, (i + 0.5) / fps: what a page playing them in sync relies on.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from vsr.errors import VsrError
from vsr.io.colors import output_color, swscale_matrix, swscale_range
from vsr.io.frames import ColorInfo

BROWSER_CRF = 18  # x264's "visually lossless": the page compares models, so the codec must not hide the difference


def even_size(width: int, height: int) -> tuple[int, int]:
    """The size the file is encoded at: yuv420p halves the chroma, so both sides must be even."""
    return width + width % 2, height + height % 2


class BrowserVideoWriter:
    """Encodes 8-bit RGB frames of one size; an odd width or height is padded by repeating the last pixels."""

    def __init__(self, target: Path, width: int, height: int, frame_rate: Fraction, crf: int = BROWSER_CRF) -> None:
        self.target = target
        self.width, self.height = width, height
        self.frames = 0
        encoded_width, encoded_height = even_size(width, height)
        # Tagged as a player would assume for this height, so the colours in the page are the ones converted.
        self.color = output_color(ColorInfo(), encoded_height)
        self._to_yuv = VideoReformatter()
        self._time_base = 1 / Fraction(frame_rate)
        try:
            # +faststart: the muxer moves the index to the front on close, so playback starts before the end loads.
            self._container = av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"})
            self._stream = self._container.add_stream("libx264", rate=Fraction(frame_rate))
        except (OSError, av.error.FFmpegError, ValueError) as error:
            raise VsrError(target, f"cannot be written ({getattr(error, 'strerror', None) or error})") from None
        stream = self._stream
        stream.width, stream.height, stream.pix_fmt = encoded_width, encoded_height, "yuv420p"
        stream.time_base = stream.codec_context.time_base = self._time_base
        # High profile with a keyframe every 2 s: seeking and frame stepping in the page stay quick.
        stream.codec_context.options = {"crf": str(crf), "preset": "medium", "profile": "high"}
        stream.codec_context.gop_size = max(1, round(2 * float(frame_rate)))
        context = stream.codec_context
        context.colorspace, context.color_range = self.color.matrix, self.color.range
        context.color_primaries, context.color_trc = self.color.primaries, self.color.transfer

    def write(self, image: np.ndarray) -> None:
        if image.shape != (self.height, self.width, 3) or image.dtype != np.uint8:
            raise ValueError(f"frame is {image.shape} {image.dtype}, expected ({self.height}, {self.width}, 3) uint8")
        if self.width % 2 or self.height % 2:
            image = np.pad(image, ((0, self.height % 2), (0, self.width % 2), (0, 0)), mode="edge")
        # A view, not a copy: the converter reads it at once into a new frame (as VideoFileWriter.write).
        picture = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(image), format="rgb24")
        picture = self._to_yuv.reformat(picture, format="yuv420p", dst_colorspace=swscale_matrix(self.color.matrix),
                                        dst_color_range=swscale_range(self.color.range), threads=1)
        picture.pts, picture.time_base = self.frames, self._time_base
        self._mux(self._stream.encode(picture))
        self.frames += 1

    def close(self) -> None:
        self._mux(self._stream.encode(None))
        try:
            self._container.close()
        except (OSError, av.error.FFmpegError) as error:
            raise VsrError(self.target, f"could not be written ({getattr(error, 'strerror', None) or error})") from None

    def abort(self) -> None:
        try:
            self._container.close()
        except (OSError, av.error.FFmpegError, ValueError):
            pass

    def _mux(self, packets) -> None:
        try:
            self._container.mux(packets)
        except (OSError, av.error.FFmpegError) as error:
            raise VsrError(self.target, f"could not be written ({getattr(error, 'strerror', None) or error})") from None
