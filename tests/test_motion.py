"""Synthetic camera motion over still images: the clips must move the way the parameters say, and only that way."""

from __future__ import annotations

from itertools import pairwise

import cv2
import numpy as np
import pytest

from vsr.train.motion import random_motion_clip

SIZE = (48, 64)  # (h, w)
STILL = {"max_shift": 0.0, "max_zoom": 0.0, "max_rotation": 0.0, "moving_patches": 0}


def texture(seed: int, height: int = 160, width: int = 160) -> np.ndarray:
    """Smooth random RGB texture: detailed enough to locate, smooth enough for interpolation to be accurate."""
    noise = cv2.GaussianBlur(np.random.default_rng(seed).random((height, width, 3)).astype(np.float32), (0, 0), 2)
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    return np.round(noise * 255).astype(np.uint8)


def clip_of(image: np.ndarray, seed: int, frames: int = 6, **motion) -> np.ndarray:
    return random_motion_clip(image, frames, SIZE, np.random.default_rng(seed), **motion)


def crop_position(image: np.ndarray, frame: np.ndarray) -> tuple[int, int] | None:
    """Top-left (x, y) where `frame` is an exact crop of `image`, or None."""
    y, x = np.unravel_index(cv2.matchTemplate(image, frame, cv2.TM_SQDIFF).argmin(), (
        image.shape[0] - frame.shape[0] + 1, image.shape[1] - frame.shape[1] + 1))
    return (int(x), int(y)) if np.array_equal(image[y:y + frame.shape[0], x:x + frame.shape[1]], frame) else None


def gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)


def global_shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rough sub-pixel (dx, dy) with b(x, y) ~ a(x - dx, y - dy), by phase correlation."""
    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    return np.array(cv2.phaseCorrelate(gray(a), gray(b), window)[0])


def view(image: np.ndarray, position: np.ndarray) -> np.ndarray:
    """The SIZE window of `image` whose top-left corner is at the sub-pixel `position` (x, y)."""
    to_source = np.float64([[1, 0, position[0]], [0, 1, position[1]]])
    return cv2.warpAffine(image, to_source, (SIZE[1], SIZE[0]), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT_101)


def locate(image: np.ndarray, frame: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """Precise top-left (x, y) of `frame` in `image`, refining `guess` by ECC alignment (translation only)."""
    warp = np.float32([[1, 0, guess[0]], [0, 1, guess[1]]])
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-6)
    _, warp = cv2.findTransformECC(gray(frame), gray(image), warp, cv2.MOTION_TRANSLATION, criteria, None, 1)
    return warp[:, 2].astype(np.float64)


def residual_after_alignment(a: np.ndarray, b: np.ndarray, margin: int = 8) -> np.ndarray:
    """|b - a moved by the best single shift|, inside a margin that hides the edges that shift brings in."""
    dx, dy = global_shift(a, b)
    moved = cv2.warpAffine(a, np.float64([[1, 0, dx], [0, 1, dy]]), (a.shape[1], a.shape[0]),
                           flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    return np.abs(moved.astype(int) - b.astype(int))[margin:-margin, margin:-margin].max(axis=-1)


def unexplained_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixels that the best single shift from a to b gets badly wrong."""
    return float((residual_after_alignment(a, b) > 30).mean())


def test_shape_dtype_and_determinism():
    image = texture(0)
    clip = clip_of(image, 7, frames=5)
    assert clip.shape == (5, *SIZE, 3) and clip.dtype == np.uint8
    assert np.array_equal(clip, clip_of(image, 7, frames=5))
    assert not np.array_equal(clip, clip_of(image, 8, frames=5))


def test_no_motion_gives_identical_exact_crops():
    image = texture(1)
    clip = clip_of(image, 3, **STILL)
    assert all(np.array_equal(frame, clip[0]) for frame in clip)
    assert crop_position(image, clip[0]) is not None


def test_colour_channels_are_kept_in_order():
    image = texture(2)
    image[..., 0] = 255  # a red image must stay red: no RGB/BGR swap anywhere
    clip = clip_of(image, 4)
    assert np.all(clip[..., 0] >= 250) and clip[..., 1:].mean() < 200


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pure_translation_moves_by_bounded_smooth_shifts(seed):
    image = texture(3)
    clip = clip_of(image, seed, max_shift=3.0, max_zoom=0.0, max_rotation=0.0, moving_patches=0)
    start = crop_position(image, clip[0])
    assert start is not None  # the path starts on a whole pixel
    path = [np.array(start, dtype=np.float64)]
    for a, b in pairwise(clip):
        path.append(locate(image, b, path[-1] - global_shift(a, b)))
    for position, frame in zip(path, clip):  # every frame is the source seen through a shifted window
        assert np.abs(view(image, position).astype(int) - frame).mean() < 1.0
    steps = np.diff(path, axis=0)
    assert np.all(np.abs(steps) <= 3.0 + 0.1)  # alignment is good to about 0.05 px
    assert np.all(np.abs(np.diff(steps, axis=0)) <= 0.1 * 3.0 + 0.2)  # smooth: small acceleration
    assert np.abs(steps).max() > 0.5  # and it does move


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zoom_and_rotation_turn_the_view_about_its_centre(seed):
    frames, max_zoom, max_rotation = 6, 0.02, 1.0
    clip = clip_of(texture(4), seed, frames, max_shift=0.0, max_zoom=max_zoom, max_rotation=max_rotation,
                   moving_patches=0)
    # The affine map from the first frame to the last must be a turn and a zoom about the window's centre.
    warp, criteria = np.eye(2, 3, dtype=np.float32), (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-7)
    _, warp = cv2.findTransformECC(gray(clip[0]), gray(clip[-1]), warp, cv2.MOTION_AFFINE, criteria, None, 1)
    (a, b, _), (c, d, _) = warp
    assert abs(a - d) < 0.01 and abs(b + c) < 0.01  # a similarity: no shear, same zoom on both axes
    centre = np.array([(SIZE[1] - 1) / 2, (SIZE[0] - 1) / 2])
    assert np.abs(warp[:, :2] @ centre + warp[:, 2] - centre).max() < 0.2
    scale, angle = float(np.sqrt(a * d - b * c)), float(np.degrees(np.arctan2(c, a)))
    assert (1 - max_zoom) ** (frames - 1) - 0.005 <= scale <= (1 + max_zoom) ** (frames - 1) + 0.005
    assert abs(angle) <= max_rotation * (frames - 1) + 0.2
    assert abs(scale - 1) + abs(angle) > 0.05  # and the view does change


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_moving_patches_are_motion_no_global_shift_explains(seed):
    image = texture(5)
    motion = {"max_shift": 3.0, "max_zoom": 0.0, "max_rotation": 0.0}
    # The camera is drawn before the patches, so both clips share it and differ only by the patches.
    plain = clip_of(image, seed, moving_patches=0, **motion)
    patched = clip_of(image, seed, moving_patches=2, **motion)
    assert max(unexplained_fraction(a, b) for a, b in pairwise(plain)) < 0.002
    assert max(unexplained_fraction(a, b) for a, b in pairwise(patched)) > 0.01


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_patch_edges_are_feathered(seed):
    ramp = np.add.outer(np.arange(160), np.arange(160)) * (255 / 318)  # smooth: neighbours differ by < 1 level
    image = np.repeat(np.round(ramp).astype(np.uint8)[..., None], 3, axis=-1)
    plain = clip_of(image, seed, frames=3, **STILL).astype(int)
    patched = clip_of(image, seed, frames=3, **{**STILL, "moving_patches": 3}).astype(int)
    # A patch from a brighter or darker part of the ramp differs from the background by `contrast`; a hard
    # paste would jump by all of it between two neighbours, a feathered one climbs in steps of a quarter.
    contrast = np.abs(patched - plain).max()
    jump = max(np.abs(np.diff(patched, axis=1)).max(), np.abs(np.diff(patched, axis=2)).max())
    assert contrast > 40
    assert jump <= 0.3 * contrast + 4


def test_image_smaller_than_output_is_upscaled():
    small = texture(6, 20, 30)
    assert clip_of(small, 1, frames=4).shape == (4, *SIZE, 3)  # with the full default motion too
    # Enlarged by the least factor that fits, max(48 / 20, 64 / 30) = 2.4, keeping its aspect: 30 x 20 -> 72 x 48.
    enlarged = cv2.resize(small, (72, 48), interpolation=cv2.INTER_CUBIC)
    assert crop_position(enlarged, clip_of(small, 1, frames=2, **STILL)[0]) is not None


def test_motion_shrinks_to_fit_a_tight_image():
    exact = texture(7, *SIZE)  # no room to move: the camera must stand still on the whole image
    clip = clip_of(exact, 2, max_shift=4.0, moving_patches=0)
    assert all(np.array_equal(frame, exact) for frame in clip)
    roomy = texture(8, SIZE[0] + 6, SIZE[1] + 6)  # a little room: the path starts inside it
    clip = clip_of(roomy, 2, max_shift=4.0, max_zoom=0.0, max_rotation=0.0, moving_patches=0)
    start = crop_position(roomy, clip[0])
    assert start is not None and all(0 <= c <= 6 for c in start)
