"""Folders of PNG frames (8 or 16 bit), the interchange format of VSR datasets such as Vid4 and REDS."""

from __future__ import annotations

import re
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
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise VsrError(path, "cannot be read as a PNG image")
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    return np.ascontiguousarray(image[:, :, 2::-1])


def write_png(path: Path, image: np.ndarray) -> None:
    # Compression level 1: frame folders are intermediates, and level 3 (the default) costs twice the time.
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise VsrError(path, "could not write PNG frame")
