"""Interlaced sources are deinterlaced before upscaling: same frames, same times, no comb; others untouched."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import frame_times, make_clip, moving_pattern, needs_ffprobe
from vsr.io.deinterlace import deinterlaced
from vsr.io.probe import probe
from vsr.io.reader import FrameReader


def make_interlaced_clip(path: Path, frames: int = 6, width: int = 48, height: int = 32) -> Path:
    """Each frame woven from two fields taken half a frame apart, on a pattern that moves 2 px per field, and
    encoded as interlaced H.264 (so decoders flag its frames interlaced), as a camcorder or a broadcast records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.options = {"preset": "ultrafast", "crf": "10", "flags": "+ildct+ilme"}
        for index in range(frames):
            woven = moving_pattern(2 * index, width, height)
            woven[1::2] = moving_pattern(2 * index + 1, width, height)[1::2]
            picture = av.VideoFrame.from_ndarray(woven, format="rgb24").reformat(format="yuv420p")
            picture.pts = index
            container.mux(video.encode(picture))
        container.mux(video.encode(None))
    return path


def comb(image: np.ndarray) -> float:
    """How far each line is from the mean of its neighbours: large where two fields disagree."""
    grey = image.astype(np.float64).mean(axis=2)
    return float(np.abs(grey[1:-1] - (grey[:-2] + grey[2:]) / 2).mean())


def read_all(path: Path, deinterlace: str = "frame") -> list:
    return list(FrameReader(probe(path), deinterlace=deinterlace))


def test_an_interlaced_source_is_read_without_its_comb_at_the_same_times(tmp_path):
    source = make_interlaced_clip(tmp_path / "fields.mp4")

    assert probe(source).interlaced
    woven, progressive = read_all(source, deinterlace="off"), read_all(source)

    assert [f.pts for f in progressive] == [f.pts for f in woven] and len(progressive) == 6
    assert all(f.image.shape == (32, 48, 3) for f in progressive)
    assert np.mean([comb(f.image) for f in progressive]) < 0.6 * np.mean([comb(f.image) for f in woven])


def test_a_frame_per_field_doubles_the_frames_at_the_fields_times(tmp_path):
    source = make_interlaced_clip(tmp_path / "fields.mp4", frames=5)
    info = probe(source)

    reader = FrameReader(info, deinterlace="field")
    frames = list(reader)

    assert len(frames) == 10 and reader.output.frame_count == 10 and reader.problems == []
    assert reader.output.frame_rate == 2 * info.frame_rate and reader.output.time_base == info.time_base / 2
    times = [f.time for f in frames]
    frame_times_in = [f.time for f in read_all(source, "off")]
    assert times[0::2] == pytest.approx(frame_times_in) and times[1::2] == pytest.approx(
        [t + 0.5 / float(info.frame_rate) for t in frame_times_in])
    # The two frames made from one woven frame show the pattern at its two moments: they differ.
    assert np.abs(frames[2].image.astype(int) - frames[3].image.astype(int)).mean() > 1


def test_a_progressive_source_passes_bit_for_bit(tmp_path):
    source = make_clip(tmp_path / "plain.mp4", frames=4, audio=False)
    info = probe(source)

    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        straight = [f.to_ndarray() for f in container.decode(stream)]
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        through = [f.to_ndarray() for f in deinterlaced(container.decode(stream), Fraction(stream.time_base))]

    assert not info.interlaced and not FrameReader(info).deinterlaces
    assert len(through) == len(straight) == 4
    assert all(np.array_equal(a, b) for a, b in zip(through, straight))


def test_a_change_of_size_midway_keeps_every_frame():
    def frames():
        for index, (width, height) in enumerate([(32, 16)] * 3 + [(48, 32)] * 2):
            picture = av.VideoFrame.from_ndarray(moving_pattern(index, width, height), format="rgb24")
            picture = picture.reformat(format="yuv420p")
            picture.pts = index
            yield picture

    out = list(deinterlaced(frames(), Fraction(1, 25)))

    assert [(f.width, f.height) for f in out] == [(32, 16)] * 3 + [(48, 32)] * 2
    assert [f.pts for f in out] == [0, 1, 2, 3, 4]


@needs_ffprobe
@pytest.mark.parametrize("model", ["bicubic", "frvsr"])
def test_run_deinterlaces_says_so_and_keeps_frames_and_times(tmp_path, run_cli, model):
    source = make_interlaced_clip(tmp_path / "fields.mp4", frames=4)
    target = tmp_path / "out.mp4"

    result = run_cli("run", source, "-o", target, "--model", model, "--scale", "2" if model == "bicubic" else "4")

    assert result.exit_code == 0, result.output
    assert "is interlaced: each frame is deinterlaced" in result.output
    assert frame_times(target) == frame_times(source)
    assert probe(target).width == 48 * (2 if model == "bicubic" else 4)


@needs_ffprobe
@pytest.mark.parametrize("model", ["bicubic", "frvsr"])
def test_run_a_frame_per_field_writes_twice_the_frames_and_rate(tmp_path, run_cli, model):
    source = make_interlaced_clip(tmp_path / "fields.mp4", frames=4)
    target = tmp_path / "out.mp4"

    result = run_cli("run", source, "-o", target, "--model", model, "--scale", "2" if model == "bicubic" else "4",
                     "--deinterlace", "field")

    assert result.exit_code == 0, result.output
    assert "each field becomes a frame (FFmpeg's bwdif), 50 frames/s from 25" in result.output
    times = frame_times(target)
    assert len(times) == 8 and times[0::2] == pytest.approx(frame_times(source))
    assert probe(target).frame_rate == 50


@needs_ffprobe
def test_deinterlace_off_keeps_the_fields(tmp_path, run_cli):
    source = make_interlaced_clip(tmp_path / "fields.mp4", frames=4)
    kept, default = tmp_path / "kept.mp4", tmp_path / "default.mp4"

    result = run_cli("run", source, "-o", kept, "--model", "bicubic", "--scale", "2", "--deinterlace", "off")
    assert run_cli("run", source, "-o", default, "--model", "bicubic", "--scale", "2").exit_code == 0

    assert result.exit_code == 0 and "interlaced" not in result.output
    assert np.mean([comb(f.image) for f in read_all(kept)]) > 1.5 * np.mean([comb(f.image) for f in read_all(default)])


def test_probe_says_how_a_source_is_scanned(tmp_path, run_cli):
    assert "scan:        interlaced" in run_cli("probe", make_interlaced_clip(tmp_path / "i.mp4", 2)).output
    assert "scan:        progressive" in run_cli("probe", make_clip(tmp_path / "p.mp4", 2, audio=False)).output


@needs_ffprobe
def test_batch_deinterlaces_unless_told_not_to(tmp_path, run_cli):
    make_interlaced_clip(tmp_path / "in" / "fields.mp4", frames=4)
    options = ["--model", "bicubic", "--scale", "2", "--quiet"]

    assert run_cli("batch", tmp_path / "in", tmp_path / "default", *options).exit_code == 0
    assert run_cli("batch", tmp_path / "in", tmp_path / "kept", *options, "--deinterlace", "off").exit_code == 0

    default, kept = read_all(tmp_path / "default" / "fields.mp4"), read_all(tmp_path / "kept" / "fields.mp4")
    assert len(default) == len(kept) == 4
    assert np.mean([comb(f.image) for f in kept]) > 1.5 * np.mean([comb(f.image) for f in default])
