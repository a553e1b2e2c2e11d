"""Finding the inputs in a folder: video files, and folders of PNG frames (each one clip)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from vsr.io.frame_folder import list_frames, natural_key
from vsr.io.writer import is_video_path


def is_source(path: Path) -> bool:
    """A video file by its extension, or a folder holding PNG frames."""
    if path.is_file():
        return is_video_path(path)
    return path.is_dir() and bool(list_frames(path))


def find_sources(folder: Path, recursive: bool = False) -> Iterator[Path]:
    """The sources inside `folder`, in natural order; a frame folder is one source, never searched further.

    Hidden entries (names starting with '.') are skipped: they are partial outputs, journals, or not ours.
    """
    for child in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if child.name.startswith("."):
            continue
        if is_source(child):
            yield child
        elif recursive and child.is_dir():
            yield from find_sources(child, recursive)
