#!/usr/bin/env python3
"""Make the bundled sample clip data/sample.mp4 from Big Buck Bunny.

Cuts a short segment out of the training clip (VP8 1280x720, 24 fps, Vorbis
audio), downscales it to 320x180 with area averaging, and writes H.264
(yuv420p, tagged BT.709, limited range) at the source's frame rate together
with the matching audio segment as AAC. See data/README.md for the licence.

Run from the project root:

    python data/make_sample.py

Big Buck Bunny (c) copyright 2008 Blender Foundation, www.bigbuckbunny.org, CC BY 3.0.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "clips" / "train" / "big_buck_bunny_0_30.webm"
DEFAULT_OUTPUT = ROOT / "data" / "sample.mp4"

WIDTH, HEIGHT = 320, 180
BT709 = 1  # AVCOL_PRI_BT709 == AVCOL_TRC_BT709 == AVCOL_SPC_BT709
TV_RANGE = 1  # AVCOL_RANGE_MPEG (limited, 16-235)
ATTRIBUTION = (
    "Big Buck Bunny (c) copyright 2008 Blender Foundation, www.bigbuckbunny.org, CC BY 3.0; cut and downscaled"
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="source clip (default: %(default)s)")
    parser.add_argument("--start", type=float, default=7.0, help="segment start in seconds (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=3.0, help="segment length in seconds (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="output file (default: %(default)s)")
    return parser.parse_args()


def cut_video(source: Path, start: float, duration: float) -> tuple[list[av.VideoFrame], Fraction, float]:
    """Decode the frames in [start, start + duration) and downscale them to BT.709 yuv420p.

    Returns the frames, the frame rate and the source timestamp of the first frame.
    """
    frames, first_time = [], None
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        first = round(start * rate)  # index of the first frame to keep
        count = round(duration * rate)
        origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        container.seek(int(start / stream.time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            index = round((frame.time - origin) * rate)
            if index < first:
                continue
            if index >= first + count:
                break
            if first_time is None:
                first_time = float(frame.time)
            # VP8 is BT.601 limited range (RFC 6386, 9.2). Go through RGB so the
            # matrix really changes to BT.709 rather than only the tag.
            rgb = frame.reformat(
                WIDTH, HEIGHT, "rgb24", src_colorspace="ITU601", src_color_range="MPEG", interpolation="AREA"
            )
            yuv = rgb.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
            yuv.color_primaries, yuv.color_trc, yuv.colorspace, yuv.color_range = BT709, BT709, BT709, TV_RANGE
            frames.append(yuv)
    if len(frames) != count:
        raise SystemExit(f"expected {count} frames from {start}s, got {len(frames)}")
    return frames, Fraction(rate), first_time


def cut_audio(source: Path, start: float, duration: float) -> tuple[np.ndarray, int, str] | None:
    """Decode the audio samples in [start, start + duration); None if the source has no audio."""
    with av.open(str(source)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        first, count = round(start * rate), round(duration * rate)
        # Matroska audio seeks may land just after the target, so seek a second early.
        container.seek(int(max(start - 1.0, 0.0) / stream.time_base), stream=stream, backward=True)
        chunks, position = [], None
        for frame in container.decode(stream):
            samples = frame.to_ndarray()  # planar float: (channels, samples)
            if frame.format.name != "fltp":
                raise SystemExit(f"unexpected audio sample format {frame.format.name}")
            if position is None:  # count samples from the first decoded frame's timestamp
                position = round(frame.time * rate)
                if position > first:
                    raise SystemExit(f"audio seek overshot: first frame at {frame.time}s")
            lo, hi = max(first - position, 0), min(first + count - position, samples.shape[1])
            if hi > lo:
                chunks.append(samples[:, lo:hi])
            position += samples.shape[1]
            if position >= first + count:
                break
        audio = np.concatenate(chunks, axis=1)
        if audio.shape[1] != count:
            raise SystemExit(f"expected {count} audio samples from {start}s, got {audio.shape[1]}")
        return np.ascontiguousarray(audio, dtype=np.float32), rate, stream.codec_context.layout.name


def write(output: Path, frames: list[av.VideoFrame], fps: Fraction, audio: tuple[np.ndarray, int, str] | None) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(output), "w", options={"movflags": "+faststart"}) as container:
        container.metadata["comment"] = ATTRIBUTION
        video = container.add_stream("libx264", rate=fps, options={"crf": "18", "preset": "slow"})
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        cc = video.codec_context
        cc.time_base = 1 / fps
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = BT709, BT709, BT709, TV_RANGE

        sound = None
        if audio is not None:
            samples, rate, layout = audio
            sound = container.add_stream("aac", rate=rate, layout=layout)
            sound.bit_rate = 128_000

        for i, frame in enumerate(frames):
            frame.pts, frame.time_base = i, 1 / fps
            container.mux(video.encode(frame))
        container.mux(video.encode())

        if sound is not None:
            # One frame with all samples; PyAV re-chunks it into the encoder's frame size.
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
            container.mux(sound.encode(frame))
            container.mux(sound.encode())


def main() -> None:
    args = parse_args()
    frames, fps, first_time = cut_video(args.source, args.start, args.duration)
    audio = cut_audio(args.source, first_time, len(frames) / fps)  # same span as the video
    write(args.output, frames, fps, audio)
    print(f"wrote {args.output}: {len(frames)} frames at {fps} fps, {args.output.stat().st_size} bytes")


if __name__ == "__main__":
    main()
