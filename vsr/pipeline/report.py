"""What a finished job reports, and the checks every way of running one makes before it commits the output."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vsr.errors import VsrError
from vsr.io.reader import FrameReader
from vsr.progress import say

if TYPE_CHECKING:  # only a type here: this module stays free of torch (see plane_bicubic.py)
    from vsr.pipeline.window_size import WindowStats


@dataclass
class JobReport:
    frames: int
    seconds: float
    output: Path
    notes: list[str] = field(default_factory=list)
    windows: WindowStats | None = None  # the windows chosen (plan) and frames computed per frame output

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def check_complete(source: Path | str, reader: FrameReader, frames: int, strict: bool) -> None:
    """Before the output is committed: some frame decoded, and with --strict, nothing went wrong reading."""
    if frames == 0:
        raise VsrError(source, "no frame could be decoded")
    if strict and reader.problems:
        raise VsrError(source, f"{'; '.join(reader.problems)} (--strict: nothing written)")


def source_notes(source: Path | str, reader: FrameReader, frames: int) -> list[str]:
    """What went wrong reading the source, for the run's warnings."""
    notes = [f"{source}: {problem}" for problem in reader.problems]
    if reader.frames_lost:
        notes.append(f"{source}: the output has the {frames} frames that decoded")
    return notes


def say_deinterlacing(source: Path | str, reader: FrameReader) -> None:
    """Before the work: how an interlaced source is deinterlaced, and the other ways."""
    if reader.per_field:
        rate = reader.output.frame_rate
        done = f"each field becomes a frame (FFmpeg's bwdif), {float(rate):.4g} frames/s from {float(rate / 2):.4g}"
    else:
        done = "each frame is deinterlaced (FFmpeg's bwdif); --deinterlace field makes a frame of each field"
    say(f"vsr: note: {source} is interlaced: {done}, before upscaling; --deinterlace off upscales the fields "
        "as they are")
