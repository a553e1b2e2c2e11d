"""The one exception type the command line turns into a one-line message."""

from __future__ import annotations

from pathlib import Path


class VsrError(Exception):
    """A problem the user can act on: names the file and says what is wrong with it."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)
