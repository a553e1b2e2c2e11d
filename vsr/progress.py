"""Life signs on long runs: a tqdm bar on a terminal, a plain line now and then everywhere else.

A bar redraws itself with carriage returns, which a log file, a pipe or a job scheduler's capture turns into
one huge line written at the end, or into nothing: minutes of silence that look like a hang. Off a terminal
we print a whole line every `interval` seconds instead (frames done, rate, time left where the end is known).
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from tqdm import tqdm

DEFAULT_INTERVAL = 30.0  # seconds between plain lines; VSR_PROGRESS_SECONDS overrides it


def plain_interval() -> float:
    """Seconds between plain progress lines: $VSR_PROGRESS_SECONDS, else 30."""
    try:
        return max(0.0, float(os.environ.get("VSR_PROGRESS_SECONDS", DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


class Progress:
    """Counts work done; shows it as a bar on a terminal, as a line every `interval` s off one, or not at all."""

    def __init__(self, total: int | None, unit: str, desc: str, enabled: bool = True, *,
                 stream: TextIO | None = None, interval: float | None = None, leave: bool = False) -> None:
        self.total = total or None
        self.unit = unit
        self.desc = desc
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._interval = plain_interval() if interval is None else interval
        self.started = self._last_line = time.monotonic()
        self._bar = None
        self._plain = False
        if enabled and _is_terminal(self._stream):
            self._bar = tqdm(total=self.total, unit=unit, desc=desc, file=self._stream, dynamic_ncols=True,
                             leave=leave)
        else:
            self._plain = enabled

    def update(self, count: int = 1) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
        elif self._plain and time.monotonic() - self._last_line >= self._interval:
            self._say(self.line())
            self._last_line = time.monotonic()

    def rate(self) -> float:
        """Units done per second since the start."""
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        """'clip.mp4: 120/1500 frames (8%), 2.31 frames/s, about 9 min 58 s left'; no end for a live source."""
        rate = self.rate()
        units = f"{self.unit}s"
        if self.total is None:
            return f"{self.desc}: {self.done} {units}, {rate:.2f} {units}/s"
        share = 100 * self.done / self.total
        text = f"{self.desc}: {self.done}/{self.total} {units} ({share:.0f}%), {rate:.2f} {units}/s"
        if self.done >= 3 and self.done < self.total:  # a rate from a frame or two (a first window) misleads
            text += f", about {duration_text((self.total - self.done) / rate)} left"
        return text

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _say(self, line: str) -> None:
        if not say(f"vsr: {line}", self._stream):  # the log went away; the work goes on, silently
            self._plain = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def say(line: str, stream: TextIO | None = None) -> bool:
    """A whole line to stderr (or `stream`), flushed; False where the stream has gone (a closed log or pipe)."""
    try:
        print(line, file=stream if stream is not None else sys.stderr, flush=True)
    except (OSError, ValueError):
        return False
    return True


def duration_text(seconds: float) -> str:
    """'45 s', '9 min 58 s', '2 h 05 min'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
