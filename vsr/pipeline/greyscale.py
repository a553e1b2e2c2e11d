"""Greyscale in, greyscale out: a black-and-white source gets no colour from the model.

Models trained on colour footage can paint faint colour into a black-and-white film (the shipped tecogan puts
yellow-green specks on the dark areas of chaplin: benchmarks/real_footage_crops.png). Where a decoded frame
is grey, its upscaled frame is made grey too: the model's luma, with no chroma.
"""

from __future__ import annotations

import cv2
import numpy as np

GREY_TOLERANCE = 2  # levels of 255 by which a grey frame's R, G and B may differ (rounding in the decoder)
SAMPLE_STEP = 8  # rows of a frame looked at first: colour footage nearly always shows colour in these


def is_greyscale(image: np.ndarray) -> bool:
    """True where every pixel's R, G and B lie within GREY_TOLERANCE levels of each other. (H, W, 3) uint8 or
    uint16. Checks every SAMPLE_STEP-th row first, so that a colour frame costs a small part of the work."""
    tolerance = GREY_TOLERANCE * (np.iinfo(image.dtype).max // 255)
    return _channels_agree(image[::SAMPLE_STEP], tolerance) and _channels_agree(image, tolerance)


def _channels_agree(image: np.ndarray, tolerance: int) -> bool:
    pixels = image.astype(np.int32)
    return bool(np.abs(pixels[..., 0] - pixels[..., 1]).max(initial=0) <= tolerance
                and np.abs(pixels[..., 1] - pixels[..., 2]).max(initial=0) <= tolerance)


def keep_greyscale(source: np.ndarray, output: np.ndarray) -> np.ndarray:
    """`output` (the upscaled `source`), as grey as `source` is: its luma in all three channels where `source`
    is grey, unchanged otherwise."""
    if not is_greyscale(source):
        return output
    luma = cv2.cvtColor(output, cv2.COLOR_RGB2GRAY)  # BT.601 weights; any weights keep a grey pixel's level
    return cv2.cvtColor(luma, cv2.COLOR_GRAY2RGB)
