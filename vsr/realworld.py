"""Real-world degradation of a high-resolution clip into a low-resolution training or benchmark input.

As in RealBasicVSR / Real-ESRGAN: a model trained on clean bicubic downscales is helpless on footage damaged by
optics, scalers, sensors and codecs, so training inputs get that damage in random amounts. The parameters are
drawn once per clip, since a clip's lens, scaler and encoder do not change between frames; the noise is fresh
in every frame, as a sensor's is.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import av
import cv2
import numpy as np

INTERPOLATIONS = (cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC)
X264_PRESETS = ("veryfast", "medium")
POISSON_PROBABILITY = 0.5  # Real-ESRGAN's gaussian_noise_prob 0.5: the rest is Poisson (shot) noise
MAX_KERNEL_SIZE = 21  # Real-ESRGAN's largest blur kernel; 3 sigma of the widest default blur fits in it


@dataclass(frozen=True)
class RealWorldSettings:
    """Ranges the per-clip parameters are drawn from (uniformly); the defaults follow RealBasicVSR's spirit."""

    blur_sigma: tuple[float, float] = (0.2, 3.0)  # isotropic or anisotropic Gaussian blur, sigma range (HR pixels)
    noise_sigma: tuple[float, float] = (1.0, 25.0)  # Gaussian noise std range, in 8-bit levels
    poisson_scale: tuple[float, float] = (0.05, 3.0)
    gray_noise_probability: float = 0.4
    resize_range: tuple[float, float] = (0.5, 1.5)  # an extra random resize before the final one
    crf_range: tuple[int, int] = (18, 35)  # H.264 (libx264) constant rate factor
    jpeg_quality: tuple[int, int] = (30, 95)
    video_codec_probability: float = 0.7  # else JPEG per frame


@dataclass(frozen=True)
class _Plan:
    """The random choices for one clip, drawn once so that every frame gets the same kind of damage."""

    kernel: np.ndarray
    resize_factor: float
    resize_interpolation: int
    poisson: bool
    gray_noise: bool
    noise_amount: float  # Gaussian std in 8-bit levels, or the Poisson scale
    final_interpolation: int
    video_codec: bool
    crf: int
    preset: str
    jpeg_quality: int


def degrade_realworld(clip: np.ndarray, scale: int, rng: np.random.Generator,
                      settings: RealWorldSettings = RealWorldSettings()) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB high-res clip -> (T, H/scale, W/scale, 3) uint8 low-res clip with camera-like damage.

    Deterministic for a given `rng` state: x264 runs on one thread, as its multithreaded output depends on timing.
    """
    _check_clip(clip, scale)  # before any draw, so that a bad clip costs no randomness
    return _apply_plan(clip, scale, _draw_plan(rng, settings), rng)


def degrade_realworld_stream(frames: Iterable[np.ndarray], scale: int, seed: int, chunk_frames: int = 32,
                             settings: RealWorldSettings = RealWorldSettings()) -> Iterator[np.ndarray]:
    """High-res (H, W, 3) uint8 frames -> low-res ones with one fixed damage plan, in bounded memory.

    For scoring models on damaged footage: the same `seed` damages a clip the same way on every run. The codec
    restarts every `chunk_frames` frames, as an encoder's keyframes would; the noise continues.
    """
    rng = np.random.default_rng(seed)
    plan = _draw_plan(rng, settings)
    frames = iter(frames)
    while chunk := list(islice(frames, chunk_frames)):
        clip = np.stack(chunk)
        _check_clip(clip, scale)
        yield from _apply_plan(clip, scale, plan, rng)


def clip_seed(name: str) -> int:
    """A seed fixed by a clip's name, so that each clip gets its own damage, the same on every machine."""
    return zlib.crc32(name.encode())


def _apply_plan(clip: np.ndarray, scale: int, plan: _Plan, rng: np.random.Generator) -> np.ndarray:
    lr_size = (clip.shape[2] // scale, clip.shape[1] // scale)
    low = np.stack([_damage_frame(frame, plan, lr_size, rng) for frame in clip])
    if plan.video_codec:
        return _h264_roundtrip(low, plan.crf, plan.preset)
    return np.stack([_jpeg_roundtrip(frame, plan.jpeg_quality) for frame in low])


def _check_clip(clip: np.ndarray, scale: int) -> None:
    """Fail early and clearly: a silently truncated size would misalign LR and HR pixels in training pairs."""
    if clip.ndim != 4 or clip.shape[-1] != 3 or clip.dtype != np.uint8 or len(clip) == 0:
        raise ValueError(f"expected a (T, H, W, 3) uint8 RGB clip with T >= 1, got {clip.shape} {clip.dtype}")
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    height, width = clip.shape[1:3]
    if height % scale or width % scale:
        raise ValueError(f"clip size {width}x{height} (WxH) is not divisible by scale {scale}")


def _draw_plan(rng: np.random.Generator, settings: RealWorldSettings) -> _Plan:
    """Draw every per-clip choice up front, in a fixed order, so equal seeds give equal damage."""
    poisson = bool(rng.random() < POISSON_PROBABILITY)
    return _Plan(
        kernel=_random_kernel(rng, settings.blur_sigma),
        resize_factor=float(rng.uniform(*settings.resize_range)),
        resize_interpolation=INTERPOLATIONS[rng.integers(len(INTERPOLATIONS))],
        poisson=poisson,
        gray_noise=bool(rng.random() < settings.gray_noise_probability),
        noise_amount=float(rng.uniform(*(settings.poisson_scale if poisson else settings.noise_sigma))),
        final_interpolation=INTERPOLATIONS[rng.integers(len(INTERPOLATIONS))],
        video_codec=bool(rng.random() < settings.video_codec_probability),
        crf=int(rng.integers(settings.crf_range[0], settings.crf_range[1], endpoint=True)),
        preset=X264_PRESETS[rng.integers(len(X264_PRESETS))],
        jpeg_quality=int(rng.integers(settings.jpeg_quality[0], settings.jpeg_quality[1], endpoint=True)),
    )


def _random_kernel(rng: np.random.Generator, sigma_range: tuple[float, float]) -> np.ndarray:
    """Half isotropic (defocus), half anisotropic at a random angle (motion, astigmatism), as in Real-ESRGAN."""
    if rng.random() < 0.5:
        sigma = rng.uniform(*sigma_range)
        return gaussian_kernel(sigma, sigma, 0.0)
    return gaussian_kernel(rng.uniform(*sigma_range), rng.uniform(*sigma_range), rng.uniform(0.0, np.pi))


def gaussian_kernel(sigma_x: float, sigma_y: float, angle: float) -> np.ndarray:
    """A Gaussian with axes sigma_x, sigma_y rotated by `angle` (radians), summing to 1 so blur keeps brightness."""
    radius = min(int(np.ceil(3 * max(sigma_x, sigma_y))), MAX_KERNEL_SIZE // 2)
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1].astype(np.float64)
    u = np.cos(angle) * x + np.sin(angle) * y
    v = -np.sin(angle) * x + np.cos(angle) * y
    kernel = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return (kernel / kernel.sum()).astype(np.float32)


def _damage_frame(frame: np.ndarray, plan: _Plan, lr_size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Lens blur and a scaler in float (optics are continuous), then noise and the final resize, read out in 8 bit."""
    blurred = cv2.filter2D(frame.astype(np.float32), -1, plan.kernel, borderType=cv2.BORDER_REFLECT_101)
    height, width = frame.shape[:2]
    middle = (max(1, round(width * plan.resize_factor)), max(1, round(height * plan.resize_factor)))
    resized = cv2.resize(blurred, middle, interpolation=plan.resize_interpolation)
    noisy = _add_noise(resized, plan, rng)
    return cv2.resize(noisy, lr_size, interpolation=plan.final_interpolation)  # uint8 in, rounded uint8 out


def _add_noise(frame: np.ndarray, plan: _Plan, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise, fresh each frame; gray noise is shared by the channels (luma noise), colour noise is not."""
    if plan.poisson:
        noise = _shot_noise(frame, plan.gray_noise, rng) * plan.noise_amount
    else:
        shape = (*frame.shape[:2], 1) if plan.gray_noise else frame.shape
        noise = rng.normal(0.0, plan.noise_amount, shape)
    return _quantise(frame + noise)


def _shot_noise(frame: np.ndarray, gray: bool, rng: np.random.Generator) -> np.ndarray:
    """Poisson noise on 8-bit levels as photon counts: unlike Gaussian noise it grows with brightness."""
    levels = np.clip(frame, 0.0, 255.0)
    if gray:
        levels = cv2.cvtColor(levels, cv2.COLOR_RGB2GRAY)[..., None]
    return rng.poisson(levels) - levels


def _quantise(values: np.ndarray) -> np.ndarray:
    """Clip and round to 8 bit, as a sensor's read-out or an encoder's input does."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _jpeg_roundtrip(frame: np.ndarray, quality: int) -> np.ndarray:
    """Per-frame JPEG: the blocking and ringing of still-image compression (no temporal effects)."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _h264_roundtrip(frames: np.ndarray, crf: int, preset: str) -> np.ndarray:
    """Encode with libx264 and decode: blocking, chroma loss and the temporal smearing of real video.

    yuv420p needs even sides, so odd ones are padded by repeating the edge and cropped again afterwards.
    """
    height, width = frames.shape[1:3]
    padded = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    decoded = _decode_video(_encode_h264(padded, crf, preset))
    if len(decoded) != len(frames):
        raise RuntimeError(f"H.264 round trip returned {len(decoded)} frames for {len(frames)}")
    return np.ascontiguousarray(decoded[:, :height, :width])


def _encode_h264(frames: np.ndarray, crf: int, preset: str) -> bytes:
    """An in-memory mp4, on one thread for determinism. OpenCV converts to BT.601 YUV (and back, in
    `_decode_video`) as it rounds evenly: swscale's default darkens by 1-2 levels, a bias a model would learn."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        # No macroblock-tree rate control: it reads memory x264 never wrote, so its output varied from run to
        # run (about one in ten at 160x68) even on one thread; the damage should be the same for a given seed.
        stream.codec_context.options = {"crf": str(crf), "preset": preset, "x264-params": "mbtree=0"}
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
            frame.pts = index  # in the stream's 1/25 time base: presentation order is the clip's order
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))  # flush the frames x264 holds back for lookahead and B-frames
    return buffer.getvalue()


def _decode_video(data: bytes) -> np.ndarray:
    """Decode every frame, in presentation order, back to (T, H, W, 3) uint8 RGB."""
    with av.open(io.BytesIO(data), mode="r") as container:
        planes = [frame.to_ndarray(format="yuv420p") for frame in container.decode(video=0)]
    return np.stack([cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420) for yuv in planes])
