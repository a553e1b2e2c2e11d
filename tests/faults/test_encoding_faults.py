"""Fault corpus, encoding and muxing: settings the encoder refuses are one line before any frame is decoded,
audio is resampled for the encoder the container needs, .ts output works, and damaged timestamps are repaired
and said (issue 17, items 6 to 9 and part of 14)."""

from __future__ import annotations

import resource
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from checks import assert_one_line_error, partial_files, run_vsr
from conftest import ffprobe, frame_times, make_clip, make_frame_folder, moving_pattern, needs_ffprobe, stream_of
from vsr.errors import VsrError
from vsr.io.frames import Frame
from vsr.io.probe import probe
from vsr.io.reader import FrameReader
from vsr.io.writer import EncoderSettings, open_writer

pytestmark = needs_ffprobe
FAST = ("--model", "bicubic", "--scale", "2", "--quiet")


def has_encoder(name: str) -> bool:
    return name in av.codecs_available


@pytest.fixture
def no_decoding(monkeypatch):
    """Decoding a frame fails the test: what is checked here must be refused before that."""
    def decoded(self):
        raise AssertionError("a frame was decoded before the encoder's settings were checked")
        yield  # a generator, as the methods it replaces

    monkeypatch.setattr(FrameReader, "_video_frames", decoded)
    monkeypatch.setattr(FrameReader, "_folder_frames", decoded)


# Item 6: every refusal is one line naming the target, before decoding, with no partial and the old target kept.

@pytest.mark.parametrize("suffix,args,words", [
    (".mp4", ["--crf", "-5"], ["--crf -5 is out of range for libx264", "0 to 51"]),
    (".mp4", ["--crf", "999"], ["--crf 999 is out of range for libx264"]),
    (".mkv", ["--codec", "libx265", "--crf", "52"], ["--crf 52 is out of range for libx265", "0 to 51"]),
    (".webm", ["--crf", "64"], ["--crf 64 is out of range for libvpx-vp9", "0 to 63"]),
    (".mp4", ["--preset", "turbo"], ["invalid preset 'turbo'", "Error setting preset/tune turbo/(null)"]),
    (".mp4", ["--codec", "aac"], ["aac encodes audio, not video"]),
    (".mkv", ["--codec", "ffv1", "--crf", "10"], ["--crf does not apply to ffv1", "lossless"]),
    (".mp4", ["--codec", "mpeg4", "--crf", "10"], ["encoder mpeg4 does not take --crf"]),
    (".webm", ["--codec", "libx264"], ["cannot hold libx264"]),
])
def test_bad_encoder_settings_are_one_line_before_decoding(tmp_path, run_cli, no_decoding, suffix, args, words):
    source = make_clip(tmp_path / "in.mp4", frames=3)
    target = tmp_path / f"out{suffix}"
    target.write_bytes(b"an earlier output")

    result = run_cli("run", source, "-o", target, *FAST, "--overwrite", *args)

    assert_one_line_error(result, str(target), *words)
    assert target.read_bytes() == b"an earlier output"
    assert partial_files(tmp_path) == []


def test_encoder_log_lines_stay_off_the_terminal(tmp_path):
    """x264 prints its own 'x264 [error]' line on file descriptor 2: it belongs in our line, not beside it."""
    source = make_clip(tmp_path / "in.mp4", frames=2, audio=False)
    target = tmp_path / "out.mp4"

    result = run_vsr("run", source, "-o", target, *FAST, "--preset", "turbo", timeout=120)

    assert_one_line_error(result, str(target), "x264 [error]: invalid preset 'turbo'")
    assert partial_files(tmp_path) == []


@pytest.mark.parametrize("codec,width,words", [
    ("libx264", 5000, ["invalid width x height (20000x64)"]),  # x264 takes at most 16384 pixels a side
    ("libsvtav1", 4100, ["16400x64", "Source Width must be less than or equal to 16384"]),
])
def test_a_frame_size_the_encoder_cannot_take_is_refused(tmp_path, run_cli, no_decoding, codec, width, words):
    if not has_encoder(codec):
        pytest.skip(f"this FFmpeg has no {codec}")
    frames = make_frame_folder(tmp_path / "wide", frames=2, width=width, height=16)
    target = tmp_path / "wide_x4.mkv"

    result = run_cli("run", frames, "-o", target, "--model", "bicubic", "--scale", "4", "--codec", codec, "--quiet")

    assert_one_line_error(result, str(target), f"encoder {codec} cannot open", *words)
    assert partial_files(tmp_path) == []


# Items 6 and 8: with the encoder opened early, every container still muxes a playable file; .ts works.

def packet_ends(path: Path) -> dict[str, tuple[float, float]]:
    """First pts and last pts + duration, in seconds, of each stream kind (from the packets: WebM has no durations)."""
    spans: dict[str, tuple[float, float]] = {}
    kinds = {s["index"]: s["codec_type"] for s in ffprobe(path, "-show_streams")["streams"]}
    for packet in ffprobe(path, "-show_packets")["packets"]:
        kind, start = kinds[packet["stream_index"]], float(packet["pts_time"])
        end = start + float(packet.get("duration_time", 0))
        low, high = spans.get(kind, (start, end))
        spans[kind] = (min(low, start), max(high, end))
    return spans


@pytest.mark.parametrize("suffix,codec,video_codec", [
    (".mp4", None, "h264"), (".mkv", None, "h264"), (".mov", None, "h264"), (".webm", None, "vp9"),
    (".ts", None, "h264"), (".ts", "libx265", "hevc"),
])
def test_outputs_play_with_every_frame_and_the_audio(tmp_path, run_cli, suffix, codec, video_codec):
    source = make_clip(tmp_path / "in.mp4", frames=7)
    target = tmp_path / f"out{suffix}"

    result = run_cli("run", source, "-o", target, *FAST, *(["--codec", codec] if codec else []))

    assert result.exit_code == 0, result.stderr
    streams = ffprobe(target, "-show_streams")
    video, audio = stream_of(streams, "video"), stream_of(streams, "audio")
    assert video["codec_name"] == video_codec and (video["width"], video["height"]) == (96, 64)
    assert audio["codec_name"] == ("opus" if suffix == ".webm" else "aac")
    times, expected = frame_times(target), frame_times(source)
    assert len(times) == 7
    # MPEG-TS shifts every timestamp by the same delay, as the ffmpeg command line does: compare from the first.
    assert [t - times[0] for t in times] == pytest.approx([t - expected[0] for t in expected], abs=1e-3)
    spans = packet_ends(target)
    assert spans["audio"][1] - spans["audio"][0] == pytest.approx(7 / 25, abs=0.1)
    if suffix == ".ts":
        assert "re-encoded" not in result.stderr  # TS holds AAC: it is carried as it is


def decode_errors(path: Path) -> str:
    """What `ffmpeg -v error -i PATH -f null -` prints: nothing for a file that decodes cleanly."""
    done = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True, check=False)
    return done.stdout + done.stderr + ("" if done.returncode == 0 else f"exit status {done.returncode}")


@pytest.mark.parametrize("audio", [True, False])
def test_avi_output_has_one_frame_slot_per_frame(tmp_path, run_cli, audio):
    """AVI times frames by their place in the file, one slot of 1/fps each: the MP4 source's fine time base
    (1/12800) must not reach it, or the muxer pads every frame with empty ones (168 for these 7)."""
    source = make_clip(tmp_path / "in.mp4", frames=7, fps=25, audio=audio)
    target = tmp_path / "out.avi"

    result = run_cli("run", source, "-o", target, *FAST)

    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr  # evenly spaced frames: nothing lost, nothing to say
    counted = ffprobe(target, "-count_frames", "-count_packets", "-show_streams")
    video = stream_of(counted, "video")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 96, 64)
    assert (video["nb_frames"], video["nb_read_packets"], video["nb_read_frames"]) == ("7", "7", "7")
    assert video["avg_frame_rate"] == "25/1"
    # AVI stores no presentation times (ffprobe shows N/A for them): a frame's time is its slot, the packet's dts.
    packets = ffprobe(target, "-select_streams", "v:0", "-show_entries", "packet=dts_time")["packets"]
    assert [float(p["dts_time"]) for p in packets] == pytest.approx([i / 25 for i in range(7)], abs=1e-6)
    assert decode_errors(target) == ""
    kinds = [s["codec_type"] for s in counted["streams"]]
    if audio:
        sound = stream_of(counted, "audio")
        assert sound["codec_name"] == "aac" and int(sound["nb_read_frames"]) > 0
        assert float(sound["duration"]) == pytest.approx(7 / 25, abs=0.15)
    else:
        assert kinds == ["video"]


def test_avi_output_of_unevenly_spaced_frames_says_their_timing_is_lost(tmp_path, run_cli):
    source = make_clip(tmp_path / "vfr.mkv", pts=[0, 40, 90, 100, 180, 200, 333], time_base=Fraction(1, 1000))
    target = tmp_path / "out.avi"

    result = run_cli("run", source, "-o", target, *FAST)

    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("variable frame timing does not survive in .avi files") == 1
    assert "4 of 7 moved to the nearest free slot" in result.stderr  # 90, 100, 180 and 333 ms are off the 1/25 s grid
    counted = ffprobe(target, "-count_frames", "-show_streams")
    assert stream_of(counted, "video")["nb_read_frames"] == "7"
    assert decode_errors(target) == ""


def test_ts_refuses_a_codec_it_cannot_hold(tmp_path, run_cli, no_decoding):
    source = make_clip(tmp_path / "in.mp4", frames=2, audio=False)
    target = tmp_path / "out.ts"
    assert_one_line_error(run_cli("run", source, "-o", target, *FAST, "--codec", "libvpx-vp9"), str(target),
                          ".ts files cannot hold libvpx-vp9")


# Item 7: audio re-encoded for the container is resampled to what its encoder takes.

def clip_with_audio(path: Path, rate: int, layout: str, frames: int = 12, fps: int = 25) -> Path:
    """H.264 video and AAC audio at `rate` Hz in `layout`, both lasting frames / fps seconds."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 48, 32, "yuv420p"
        video.codec_context.options = {"preset": "ultrafast"}
        sound = container.add_stream("aac", rate=rate, layout=layout)
        for index in range(frames):
            picture = av.VideoFrame.from_ndarray(moving_pattern(index, 48, 32), format="rgb24")
            picture.pts = index
            container.mux(video.encode(picture))
        container.mux(video.encode(None))
        count = frames * rate // fps
        tone = np.sin(2 * np.pi * 440 * np.arange(count) / rate).astype(np.float32)
        samples = np.tile(tone, (av.AudioLayout(layout).nb_channels, 1))
        for start in range(0, count, 1024):
            block = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start:start + 1024]), format="fltp",
                                               layout=layout)
            block.sample_rate, block.pts, block.time_base = rate, start, Fraction(1, rate)
            container.mux(sound.encode(block))
        container.mux(sound.encode(None))
    return path


@pytest.mark.parametrize("layout,channels", [("mono", 1), ("stereo", 2)])
def test_44_1_khz_audio_is_resampled_for_opus_in_webm(tmp_path, run_cli, layout, channels):
    source = clip_with_audio(tmp_path / "in.mp4", 44100, layout)
    target = tmp_path / "out.webm"

    result = run_cli("run", source, "-o", target, *FAST)

    assert result.exit_code == 0, result.stderr
    assert "re-encoded to libopus" in result.stderr
    audio = stream_of(ffprobe(target, "-show_streams"), "audio")
    assert (audio["codec_name"], audio["sample_rate"], audio["channels"]) == ("opus", "48000", channels)
    spans = packet_ends(target)
    video_length = spans["video"][1] - spans["video"][0]
    assert spans["audio"][1] - spans["audio"][0] == pytest.approx(video_length, abs=0.1)


# Item 9: timestamps that repeat or go backwards in a damaged source are repaired, counted and said.

def vint(data: bytes, at: int, marker: bool) -> tuple[int, int]:
    """An EBML variable-length integer at `at`: (value, length); IDs keep their length marker, sizes do not."""
    length = 9 - data[at].bit_length()
    value = data[at] if marker else data[at] & ((1 << (8 - length)) - 1)
    for byte in data[at + 1:at + length]:
        value = (value << 8) | byte
    return value, length


def block_timecodes(data: bytes, start: int = 0, end: int | None = None):
    """(offset of the 16-bit relative timecode, track number) of each Matroska block, in file order."""
    end = len(data) if end is None else end
    at = start
    while at < end:
        ident, id_length = vint(data, at, True)
        size, size_length = vint(data, at + id_length, False)
        body = at + id_length + size_length
        if size == (1 << (7 * size_length)) - 1:  # unknown size: to the end of the parent
            size = end - body
        if ident in (0x18538067, 0x1F43B675, 0xA0):  # Segment, Cluster, BlockGroup
            yield from block_timecodes(data, body, body + size)
        elif ident in (0xA3, 0xA1):  # SimpleBlock, Block: track number, then the timecode
            _, track_length = vint(data, body, False)
            yield body + track_length, vint(data, body, False)[0]
        at = body + size


def damaged_mkv(tmp_path: Path) -> Path:
    """A clip whose blocks' timecodes are overwritten with earlier blocks' ones: always the same bytes."""
    data = bytearray(make_clip(tmp_path / "clean.mkv", frames=12).read_bytes())
    offsets = list(block_timecodes(bytes(data)))
    for track, changes in ((1, [(4, 3), (7, 5)]), (2, [(6, 5), (12, 9)])):  # 1 video, 2 audio: a repeat, a step back
        mine = [offset for offset, number in offsets if number == track]
        for damaged, earlier in changes:
            data[mine[damaged]:mine[damaged] + 2] = data[mine[earlier]:mine[earlier] + 2]
    path = tmp_path / "damaged.mkv"
    path.write_bytes(bytes(data))
    return path


def strictly_increasing(values: list[float]) -> bool:
    return all(later > earlier for earlier, later in zip(values, values[1:]))


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_damaged_timestamps_are_made_increasing_and_counted(tmp_path, run_cli, suffix):
    source = damaged_mkv(tmp_path)
    target = tmp_path / f"out{suffix}"

    result = run_cli("run", source, "-o", target, *FAST)

    assert result.exit_code == 0, result.stderr
    times = frame_times(target)
    assert len(times) == 12 and strictly_increasing(times)
    packets = ffprobe(target, "-show_packets")["packets"]
    for index in (0, 1):
        stamps = [float(p["dts_time"]) for p in packets if p["stream_index"] == index and "dts_time" in p]
        assert stamps and strictly_increasing(stamps), (index, stamps)
    assert f"warning: {source}: 2 frame(s) had a missing, repeated or backward timestamp" in result.stderr
    assert f"2 audio/subtitle packet(s) of {source} dropped" in result.stderr


# Item 14 (part): a failed write names the target, never the hidden partial, and gives the OS's words whole.

def small_files_only():
    """In the child: files may grow to 64 KiB, then writes fail with EFBIG (Python ignores SIGXFSZ)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


@pytest.mark.parametrize("name", ["out.mp4", "frames"])
def test_a_write_that_fails_names_the_target_and_the_os_error(tmp_path, name):
    source = make_clip(tmp_path / "in.mp4", frames=25, width=96, height=64, audio=False)
    target = tmp_path / "out" / name
    target.parent.mkdir()

    result = run_vsr("run", source, "-o", target, "--model", "bicubic", "--scale", "4", "--quiet",
                     *(["--crf", "0"] if name.endswith(".mp4") else []), preexec_fn=small_files_only, timeout=120)

    assert_one_line_error(result, str(target), "could not be written (File too large)")
    assert ".partial-" not in result.stderr
    assert list(target.parent.iterdir()) == []


def test_a_frame_folder_whose_folder_is_removed_names_the_target(tmp_path):
    source = probe(make_clip(tmp_path / "in.mp4", frames=2, audio=False))
    target = tmp_path / "out" / "frames"
    target.parent.mkdir()
    writer = open_writer(target, source.width, source.height, source, EncoderSettings())
    shutil.rmtree(target.parent)

    with pytest.raises(VsrError) as raised:
        writer.write(Frame(np.zeros((source.height, source.width, 3), np.uint8), 0, source.time_base))

    assert raised.value.path == str(target)
    assert raised.value.problem == "could not be written (No such file or directory)"
