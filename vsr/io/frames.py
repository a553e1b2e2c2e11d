"""Plain data passed between the reader, the pipeline and the writer."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np


@dataclass
class Frame:
    """One decoded picture: `image` is (H, W, 3) RGB, uint8 for 8-bit sources and uint16 for deeper ones."""

    image: np.ndarray
    pts: int
    time_base: Fraction

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base)


# FFmpeg's codes for the colour tags (libavutil/pixfmt.h), so the tags pass from decoder to encoder unchanged.
MATRIX_NAMES = {0: "rgb", 1: "bt709", 2: "unknown", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
                8: "ycgco", 9: "bt2020nc", 10: "bt2020c"}
RANGE_NAMES = {0: "unknown", 1: "tv", 2: "pc"}
PRIMARIES_NAMES = {1: "bt709", 2: "unknown", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
                   8: "film", 9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213"}
TRANSFER_NAMES = {1: "bt709", 2: "unknown", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m",
                  8: "linear", 13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084",
                  18: "arib-std-b67"}
UNSPECIFIED = 2


@dataclass(frozen=True)
class ColorInfo:
    """Colour tags as FFmpeg's integer codes; 2 means unspecified (0 for the range)."""

    matrix: int = UNSPECIFIED
    range: int = 0
    primaries: int = UNSPECIFIED
    transfer: int = UNSPECIFIED

    def names(self) -> dict[str, str]:
        return {
            "matrix": MATRIX_NAMES.get(self.matrix, str(self.matrix)),
            "range": RANGE_NAMES.get(self.range, str(self.range)),
            "primaries": PRIMARIES_NAMES.get(self.primaries, str(self.primaries)),
            "transfer": TRANSFER_NAMES.get(self.transfer, str(self.transfer)),
        }


@dataclass(frozen=True)
class StreamInfo:
    index: int
    type: str
    codec: str
    language: str | None = None


@dataclass
class VideoInfo:
    """What `vsr probe` prints and what the writer needs to reproduce the source faithfully."""

    path: str
    container: str
    width: int
    height: int
    frame_rate: Fraction
    time_base: Fraction
    frame_count: int
    duration: float | None
    pix_fmt: str
    bit_depth: int
    color: ColorInfo = field(default_factory=ColorInfo)
    rotation: int = 0
    # The shape of a pixel (width/height) where it is not square: DVD, DV and broadcast SD store 16:9 or 4:3
    # pictures in 720x576 or 720x480 pixels, and players stretch them by this to show them. None: square.
    sample_aspect_ratio: Fraction | None = None
    interlaced: bool = False  # the first frame is flagged interlaced: two fields, taken apart in time
    codec: str = ""
    streams: list[StreamInfo] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)  # the container's metadata: title, comment, ...
    video_tags: dict[str, str] = field(default_factory=dict)  # the video stream's: language, title, ...

    @property
    def is_frame_folder(self) -> bool:
        return self.container == "png-folder"
