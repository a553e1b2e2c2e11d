"""The page's videos: every input re-encoded as browser-playable H.264 at the output size.

The low-resolution source is enlarged here, by repeating pixels (nearest neighbour), and encoded at the
output size: a browser would scale it with its own smoothing filter, which flatters the source and differs
from one browser to the next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vsr.errors import VsrError
from vsr.io.browser_video import BrowserVideoWriter
from vsr.io.frames import VideoInfo
from vsr.io.probe import probe
from vsr.io.reader import read_8bit  # noqa: F401 - the pages read frames as the bench does


@dataclass
class PageSource:
    """One video of the page before encoding: what it is called, and its 8-bit RGB frames."""

    label: str
    role: str  # "source", "output" or "ground truth"
    path: Path  # named in errors
    frames: Callable[[], Iterator[np.ndarray]]  # a fresh pass over the frames on each call
    upscale: int = 1  # nearest-neighbour factor up to the page's size


def nearest_upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Each pixel as a factor x factor block: the low-res frame as it is, only bigger."""
    return image if factor == 1 else image.repeat(factor, axis=0).repeat(factor, axis=1)


def encode_for_browser(video: PageSource, target: Path, width: int, height: int, frames: int,
                       frame_rate: Fraction) -> None:
    """Write `video` to `target` as H.264 MP4 at width x height; it must have exactly `frames` frames."""
    writer = BrowserVideoWriter(target, width, height, frame_rate)
    try:
        for image in video.frames():
            image = nearest_upscale(image, video.upscale)
            if image.shape[:2] != (height, width):
                raise VsrError(video.path, f"frame {writer.frames} is {image.shape[1] // video.upscale}x"
                                           f"{image.shape[0] // video.upscale}, not the size of its first frame")
            if writer.frames == frames:
                raise VsrError(video.path, f"has more than {frames} frames, the other videos' count")
            writer.write(image)
        if writer.frames != frames:
            raise VsrError(video.path, f"has {writer.frames} frames, but the other videos have {frames}")
        writer.close()
    except BaseException:
        writer.abort()
        raise


@dataclass(frozen=True)
class CompareInputs:
    """What `vsr compare` was given, probed and checked against each other."""

    source: VideoInfo
    outputs: list[VideoInfo]
    gt: VideoInfo | None
    scale: int  # output size / source size

    @property
    def width(self) -> int:
        return self.outputs[0].width

    @property
    def height(self) -> int:
        return self.outputs[0].height

    @property
    def frames(self) -> int:
        return self.outputs[0].frame_count


def check_compare_inputs(source: Path, outputs: list[Path], gt: Path | None) -> CompareInputs:
    """Probe every input, before any work: outputs and ground truth of one size, the source an integer
    fraction of it, all with one frame count (counts a container only estimates are checked again on decoding)."""
    output_infos = [probe(path) for path in outputs]
    first = output_infos[0]
    others = output_infos[1:] + ([probe(gt)] if gt is not None else [])
    for info in others:
        if (info.width, info.height) != (first.width, first.height):
            raise VsrError(info.path, f"is {info.width}x{info.height} but {first.path} is {first.width}x"
                                      f"{first.height}; the outputs and the ground truth must be one size")
        _check_count(info, first)
    source_info = probe(source)
    scale = first.width // source_info.width
    if scale < 1 or (source_info.width * scale, source_info.height * scale) != (first.width, first.height):
        raise VsrError(source, f"is {source_info.width}x{source_info.height}, which does not scale to the outputs' "
                               f"{first.width}x{first.height} by a whole number")
    _check_count(source_info, first)
    return CompareInputs(source_info, output_infos, others[-1] if gt is not None else None, scale)


def _check_count(info: VideoInfo, first: VideoInfo) -> None:
    # A count estimated from a container's duration can be one off; decoding checks those exactly later.
    exact = _exact_count(info) and _exact_count(first)
    if info.frame_count != first.frame_count and (exact or abs(info.frame_count - first.frame_count) > 1):
        raise VsrError(info.path, f"has {info.frame_count} frames but {first.path} has {first.frame_count}; "
                                  "every video on the page must have the same frame count")


def _exact_count(info: VideoInfo) -> bool:
    """PNG folders count their files, and MP4/MOV files list every frame in their index."""
    return info.is_frame_folder or info.container.startswith("mov,mp4")
