"""Still images turned into short clips by a synthetic camera, so still-image datasets can train video models.

A clip is a window that drifts, zooms and turns smoothly over one image, plus a few rectangles cut from
elsewhere in the same image that slide across the view on their own: real video has objects moving against
the background, and a model trained only on global motion never learns to handle them. These are ground-truth
frames, so every pixel is sampled once, straight from the source (one cubic warp per layer), never from a
frame that was resampled already.
"""

from __future__ import annotations

import cv2
import numpy as np

ACCELERATION = 0.1  # largest change of velocity per frame, as a fraction of max_shift: smooth, not linear
FEATHER = 3  # pixels over which a moving patch fades into the background
STEPS = 11  # motion is tried at full strength, then 90%, 80%, ... 0% until the path fits in the image


def _fit_size(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Upscale an image smaller than the output so that at least one still window fits inside it."""
    height, width = image.shape[:2]
    factor = max(size[0] / height, size[1] / width)
    if factor <= 1:
        return image
    new_size = (max(size[1], round(width * factor)), max(size[0], round(height * factor)))
    return cv2.resize(image, new_size, interpolation=cv2.INTER_CUBIC)


def _footprint(size: tuple[int, int], scales: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(T, 2) x/y half extents, in source pixels, of the box around each turned and zoomed output window."""
    half_w, half_h = (size[1] - 1) / 2, (size[0] - 1) / 2
    cos, sin = np.abs(np.cos(np.radians(angles))), np.abs(np.sin(np.radians(angles)))
    return np.stack([half_w * cos + half_h * sin, half_w * sin + half_h * cos], axis=1) / scales[:, None]


def _camera_path(image_shape: tuple[int, ...], size: tuple[int, int], frames: int, rng: np.random.Generator,
                 max_shift: float, max_zoom: float, max_rotation: float) -> tuple[np.ndarray, ...]:
    """Per-frame window centres (T, 2) as x/y, scales (T,) and angles (T,) in degrees, kept inside the image."""
    velocity = rng.uniform(-max_shift, max_shift, 2)
    acceleration = rng.uniform(-1, 1, 2) * ACCELERATION * max_shift
    zoom, spin = rng.uniform(-max_zoom, max_zoom), rng.uniform(-max_rotation, max_rotation)
    t = np.arange(frames, dtype=np.float64)
    last = np.array([image_shape[1] - 1, image_shape[0] - 1], dtype=np.float64)
    steps = np.clip(velocity + acceleration * t[:-1, None], -max_shift, max_shift)
    path = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    for strength in np.linspace(1, 0, STEPS):
        drift = strength * path
        scales, angles = (1 + strength * zoom) ** t, strength * spin * t
        half = _footprint(size, scales, angles)
        # The first window's top-left corner is a whole pixel, so with no motion every frame is an exact crop.
        low = np.ceil(np.max(half - drift, axis=0) - half[0]).astype(int)
        high = np.floor(np.min(last - half - drift, axis=0) - half[0]).astype(int)
        if np.all(low <= high):
            return rng.integers(low, high + 1) + half[0] + drift, scales, angles
    raise AssertionError("a still window always fits an image that _fit_size has enlarged")


def _camera_matrix(centre: np.ndarray, scale: float, angle: float, size: tuple[int, int]) -> np.ndarray:
    """Affine map taking the source to the output, with the window's centre landing on the output's centre."""
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle), float(scale))
    matrix[:, 2] += ((size[1] - 1) / 2 - centre[0], (size[0] - 1) / 2 - centre[1])
    return matrix


def _feather_mask(height: int, width: int) -> np.ndarray:
    """Opacity 1 inside a rectangle, ramping to 0 over FEATHER pixels at its edges."""
    ramp_y = np.minimum(np.arange(height) + 1, height - np.arange(height)) / (FEATHER + 1)
    ramp_x = np.minimum(np.arange(width) + 1, width - np.arange(width)) / (FEATHER + 1)
    return np.clip(np.minimum(ramp_y[:, None], ramp_x[None, :]), 0, 1).astype(np.float32)


def _patch_tracks(image_shape: tuple[int, ...], size: tuple[int, int], frames: int, rng: np.random.Generator,
                  max_speed: float, count: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each patch: its source corner (x, y), its feathered mask, and its corner in every output frame (T, 2)."""
    out_wh = np.array([size[1], size[0]])
    tracks = []
    for _ in range(count):
        patch_wh = np.clip((rng.uniform(0.1, 0.3, 2) * out_wh).astype(int), 2, out_wh)
        source = rng.integers(0, np.array([image_shape[1], image_shape[0]]) - patch_wh + 1)
        middle = rng.uniform(0, out_wh - patch_wh)  # centred in time, so the patch is in view mid-clip
        velocity = rng.uniform(-max_speed, max_speed, 2)
        corners = middle + velocity * (np.arange(frames) - (frames - 1) / 2)[:, None]
        tracks.append((source, _feather_mask(patch_wh[1], patch_wh[0]), corners))
    return tracks


def _paste(frame: np.ndarray, image: np.ndarray, source: np.ndarray, mask: np.ndarray,
           corner: np.ndarray) -> np.ndarray:
    """Blend the source rectangle at `source` onto the frame with its top-left at `corner` (sub-pixel)."""
    height, width = frame.shape[:2]
    dx, dy = corner
    moved = np.float64([[1, 0, dx - source[0]], [0, 1, dy - source[1]]])
    patch = cv2.warpAffine(image, moved, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    alpha = cv2.warpAffine(mask, np.float64([[1, 0, dx], [0, 1, dy]]), (width, height), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)[..., None]
    return np.rint(frame * (1 - alpha) + patch * alpha).astype(np.uint8)


def random_motion_clip(image: np.ndarray, frames: int, size: tuple[int, int], rng: np.random.Generator,
                       max_shift: float = 4.0, max_zoom: float = 0.02, max_rotation: float = 1.0,
                       moving_patches: int = 2) -> np.ndarray:
    """`frames` consecutive views (T, h, w, 3) uint8 of `image` (H, W, 3) uint8 RGB, seen by a moving camera.

    `size` is (h, w). Per frame the camera moves up to `max_shift` pixels along each axis, changes scale by up
    to a factor `max_zoom` and turns by up to `max_rotation` degrees; an image too small for that motion gets
    less of it. `moving_patches` rectangles from elsewhere in the image move independently on top, at up to
    twice `max_shift`. The same `rng` state gives the same clip.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if frames < 1:
        raise ValueError(f"a clip needs at least one frame, got {frames}")
    image = _fit_size(np.ascontiguousarray(image), size)
    centres, scales, angles = _camera_path(image.shape, size, frames, rng, max_shift, max_zoom, max_rotation)
    tracks = _patch_tracks(image.shape, size, frames, rng, 2 * max_shift, moving_patches)
    clip = np.empty((frames, size[0], size[1], 3), dtype=np.uint8)
    for index in range(frames):
        matrix = _camera_matrix(centres[index], scales[index], angles[index], size)
        frame = cv2.warpAffine(image, matrix, (size[1], size[0]), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REFLECT_101)
        for source, mask, corners in tracks:
            frame = _paste(frame, image, source, mask, corners[index])
        clip[index] = frame
    return clip
