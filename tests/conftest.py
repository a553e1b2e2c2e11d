"""Small clips made on the spot with PyAV, and ffprobe as an independent check of what vsr writes."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vsr.cli import cli


def moving_pattern(index: int, width: int, height: int, peak: int = 255) -> np.ndarray:
    """A textured picture that moves by two pixels a frame, so temporal code has something to see."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    shift = 2 * index
    r = 0.5 + 0.5 * np.sin((x + shift) / 3.0)
    g = 0.5 + 0.5 * np.cos((y - shift) / 4.0)
    b = ((x + y + shift) % 16) / 15.0
    return np.round(np.stack([r, g, b], axis=-1) * peak).astype(np.uint16 if peak > 255 else np.uint8)


def make_clip(path: Path, frames: int = 6, width: int = 48, height: int = 32, fps: int = 25, *,
              audio: bool = True, pts: list[int] | None = None, time_base: Fraction | None = None,
              ten_bit: bool = False, codec: str = "libx264", rotation: int = 0,
              color: tuple[int, int, int, int] = (1, 1, 1, 1), pixel_aspect: Fraction | None = None) -> Path:
    """Encode a clip; `pts` in `time_base` give variable frame timing; `color` is (matrix, range, prim, trc);
    `pixel_aspect` is the sample aspect ratio of non-square pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    time_base = time_base or Fraction(1, fps)
    pts = pts if pts is not None else [round(i / fps / time_base) for i in range(frames)]
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p10le" if ten_bit else "yuv420p"
        video.time_base = video.codec_context.time_base = time_base
        cc = video.codec_context
        cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc = color
        video.codec_context.options = {"preset": "ultrafast", "crf": "10"} if codec == "libx264" else {}
        if rotation:
            video.set_display_rotation(rotation)
        if pixel_aspect:
            cc.sample_aspect_ratio = pixel_aspect
        sound = container.add_stream("aac", rate=48000, layout="mono") if audio else None
        for index, stamp in enumerate(pts):
            picture = av.VideoFrame.from_ndarray(
                moving_pattern(index, width, height, 1023 * 64 if ten_bit else 255),
                format="rgb48le" if ten_bit else "rgb24")
            picture = picture.reformat(format=video.pix_fmt, dst_colorspace=color[0] if color[0] in (1, 5) else 1,
                                       dst_color_range=color[1] or 1)
            picture.pts, picture.time_base = stamp, time_base
            container.mux(video.encode(picture))
        container.mux(video.encode(None))
        if sound is not None:
            duration = float((pts[-1] * time_base) + Fraction(1, fps))
            write_tone(container, sound, duration)
    return path


def write_tone(container, stream, seconds: float, rate: int = 48000) -> None:
    samples = np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate).astype(np.float32)
    for start in range(0, len(samples), 1024):
        block = samples[None, start:start + 1024]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def make_frame_folder(folder: Path, frames: int = 5, width: int = 40, height: int = 24, deep: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(frames):
        image = moving_pattern(index, width, height, 65535 if deep else 255)
        cv2.imwrite(str(folder / f"f{index}.png"), image[:, :, ::-1])  # f10 after f9: natural order
    return folder


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """OpenVINO exports go to a folder of this test session's, not the user's ~/.cache/vsr."""
    import os

    os.environ["VSR_CACHE_DIR"] = str(tmp_path_factory.mktemp("vsr-cache"))


@pytest.fixture
def run_cli():
    """Invoke `vsr ...` in-process; returns click's Result (exit_code, output, stderr)."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return invoke


needs_ffprobe = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe (FFmpeg) is not installed")


def ffprobe(path: Path, *entries: str) -> dict:
    """ffprobe's JSON for the given -show_* sections, e.g. ffprobe(p, '-show_streams', '-show_frames')."""
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *entries, str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def stream_of(probe: dict, kind: str) -> dict:
    return next(s for s in probe["streams"] if s["codec_type"] == kind)


def frame_times(path: Path) -> list[float]:
    frames = ffprobe(path, "-select_streams", "v:0", "-show_entries", "frame=pts_time")["frames"]
    return [float(f["pts_time"]) for f in frames]
