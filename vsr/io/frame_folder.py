"""Folders of PNG frames (8 or 16 bit), the interchange format of VSR datasets such as Vid4 and REDS."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path

import cv2
import numpy as np

from vsr.errors import VsrError
from vsr.io.memory import check_decodable, png_size

FRAME_SUFFIXES = (".png",)


def natural_key(name: str) -> list:
    """Sort 'f2.png' before 'f10.png', as people number frames."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frames(folder: Path) -> list[Path]:
    frames = [p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file()]
    return sorted(frames, key=lambda p: natural_key(p.name))


def read_png(path: Path) -> np.ndarray:
    """(H, W, 3) RGB, uint8 or uint16 as stored; grey and alpha images become plain RGB.

    The size in the header is checked first: a damaged or hostile header must not make OpenCV allocate
    gigabytes (or print its own warning and give nothing).
    """
    width, height, depth = png_size(path)
    check_decodable(path, width, height, 6 if depth == 16 else 3)
    with native_stderr_silenced():  # libpng prints its own line for a damaged file; ours below says it
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise VsrError(path, "cannot be read as a PNG image")
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    return np.ascontiguousarray(image[:, :, 2::-1])


_stderr_lock = threading.Lock()


@contextlib.contextmanager
def native_stderr_silenced():
    """Send file descriptor 2 to /dev/null while a C library that prints its own errors runs.

    Python's sys.stderr is untouched; a progress bar line drawn by another thread meanwhile may be lost,
    which is harmless, and our own messages are printed after the pipeline's threads have stopped.
    """
    with _stderr_lock:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all: nothing to silence
            yield
            return
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB frame (8 or 16 bit) as a PNG file's bytes.

    Compression level 1: frame folders are intermediates, and level 3 (the default) costs twice the time.
    Encoded in memory and written by Python, because OpenCV's imwrite says only False, not why (disk full?).
    """
    ok, data = cv2.imencode(".png", np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} {image.dtype} frame as PNG")
    return data.tobytes()


def write_png(path: Path, image: np.ndarray, names: Path | None = None) -> None:
    """Write one frame; a failure names `names` (the output the user asked for) rather than our hidden file."""
    try:
        path.write_bytes(png_bytes(image))
    except OSError as error:
        raise VsrError(names or path, f"could not be written ({error.strerror or error})") from None
