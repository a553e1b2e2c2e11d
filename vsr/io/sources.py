"""Finding the inputs in a folder: video files, and folders of PNG frames (each one clip)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from vsr.io.frame_folder import list_frames, natural_key
from vsr.io.writer import is_video_path

LINKED_FOLDER = "a symbolic link to a folder, not followed"


def is_source(path: Path) -> bool:
    """A video file by its extension, or a folder holding PNG frames."""
    if path.is_file():
        return is_video_path(path)
    return path.is_dir() and bool(list_frames(path))


def find_sources(folder: Path, recursive: bool = False,
                 skipped: list[tuple[Path, str]] | None = None) -> Iterator[Path]:
    """The sources inside `folder`, in natural order; a frame folder is one source, never searched further.

    Hidden entries (names starting with '.') are skipped: they are partial outputs, journals, or not ours.
    With `recursive`, symbolic links to folders are not followed (one pointing back up the tree would loop,
    one pointing out of it would pull in files that are not the tree's) and sub-folders that cannot be read
    are passed over; each goes into `skipped` with the reason.
    """
    for child in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if child.name.startswith("."):
            continue
        if recursive and child.is_dir() and (child.is_symlink() or not _readable(child)):
            if skipped is not None:
                skipped.append((child, LINKED_FOLDER if child.is_symlink() else "a folder that cannot be read"))
            continue
        if is_source(child):
            yield child
        elif recursive and child.is_dir():
            yield from find_sources(child, recursive, skipped)


def _readable(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            next(entries, None)
    except OSError:
        return False
    return True


def is_utf8(path: Path | str) -> bool:
    """Whether the name is valid UTF-8; one that is not reaches Python as lone surrogates ('\\udcff')."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: Path | str) -> str:
    """`text` (a path, or a message holding one) safe to print: undecodable bytes of a file name become '\\xff'.

    Printing a name that is not valid UTF-8 as it is raises UnicodeEncodeError on a strict UTF-8 stream.
    """
    text = str(text)
    try:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte; not from a file name
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
