"""`vsr run` end to end on clips made here, checked with ffprobe: sizes, frame times, audio, tags."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from conftest import ffprobe, frame_times, make_clip, make_frame_folder, needs_ffprobe, stream_of

pytestmark = needs_ffprobe


def test_output_is_scaled_with_every_frame_at_its_time_and_the_audio_kept(tmp_path, run_cli):
    source = make_clip(tmp_path / "in.mp4", frames=7, width=48, height=32)
    target = tmp_path / "out.mp4"

    result = run_cli("run", source, "-o", target, "--model", "bicubic", "--scale", "2", "--quiet")

    assert result.exit_code == 0, result.output
    probe = ffprobe(target, "-show_streams")
    video, audio = stream_of(probe, "video"), stream_of(probe, "audio")
    assert (video["width"], video["height"]) == (96, 64)
    assert frame_times(target) == frame_times(source)
    source_audio = stream_of(ffprobe(source, "-show_streams"), "audio")
    assert audio["codec_name"] == "aac"
    assert float(audio["duration"]) == pytest.approx(float(source_audio["duration"]), abs=1e-3)
    assert "7 frames" in result.output


def test_variable_frame_rate_timestamps_survive(tmp_path, run_cli):
    pts = [0, 40, 90, 100, 180, 200, 333]
    source = make_clip(tmp_path / "vfr.mkv", pts=pts, time_base=Fraction(1, 1000))
    target = tmp_path / "vfr_x2.mkv"

    result = run_cli("run", source, "-o", target, "--model", "bicubic", "--scale", "2", "--quiet")

    assert result.exit_code == 0, result.output
    assert frame_times(target) == pytest.approx([p / 1000 for p in pts], abs=1e-6)


def test_colour_tags_are_carried_over(tmp_path, run_cli):
    bt601_full = (6, 2, 6, 6)  # smpte170m matrix, pc range, smpte170m primaries and transfer
    source = make_clip(tmp_path / "in.mp4", color=bt601_full, audio=False)
    target = tmp_path / "out.mp4"

    assert run_cli("run", source, "-o", target, "--model", "bicubic", "--scale", "2", "--quiet").exit_code == 0

    video = stream_of(ffprobe(target, "-show_streams"), "video")
    assert (video["color_space"], video["color_range"]) == ("smpte170m", "pc")
    assert (video["color_primaries"], video["color_transfer"]) == ("smpte170m", "smpte170m")


def test_colours_survive_the_round_trip(tmp_path, run_cli):
    source = make_clip(tmp_path / "in.mp4", frames=3, audio=False, color=(1, 1, 1, 1))
    target = tmp_path / "frames"

    assert run_cli("run", source, "-o", target, "--model", "bicubic", "--scale", "2", "--quiet").exit_code == 0

    with av.open(str(source)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24", src_colorspace=1)
    upscaled = cv2.imread(str(target / "frame_000000.png"))[:, :, ::-1]
    downscaled = cv2.resize(upscaled, first.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(downscaled.astype(int) - first).mean() < 6  # a BT.601/709 mix-up shifts colours far more


def test_ten_bit_source_gives_ten_bit_video(tmp_path, run_cli):
    source = make_clip(tmp_path / "deep.mp4", ten_bit=True, audio=False)
    target = tmp_path / "deep_x2.mp4"

    assert run_cli("run", source, "-o", target, "--model", "bicubic", "--scale", "2", "--quiet").exit_code == 0

    assert stream_of(ffprobe(target, "-show_streams"), "video")["pix_fmt"] == "yuv420p10le"


def _tagged_copy(source, target, tags: dict, video_tags: dict, audio_tags: dict):
    """`source` remuxed into `target` with metadata tags on the container and on its streams."""
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        out.metadata.update(tags)
        streams = {}
        for stream in inp.streams:
            streams[stream.index] = out.add_stream_from_template(stream)
            streams[stream.index].metadata.update(video_tags if stream.type == "video" else audio_tags)
        for packet in inp.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_container_and_stream_metadata_are_carried(tmp_path, run_cli, suffix):
    source = tmp_path / "tagged.mkv"
    _tagged_copy(make_clip(tmp_path / "plain.mkv", frames=3), source,
                 {"title": "Harbour, 1962", "comment": "CC BY 4.0, Jane Doe"}, {"language": "fra"},
                 {"language": "deu", "title": "commentary"})
    target = tmp_path / f"out{suffix}"

    assert run_cli("run", source, "-o", target, "--model", "bicubic", "--scale", "2", "--quiet").exit_code == 0

    probe = ffprobe(target, "-show_format", "-show_streams")
    tags = {key.lower(): value for key, value in probe["format"]["tags"].items()}
    assert tags["title"] == "Harbour, 1962" and tags["comment"] == "CC BY 4.0, Jane Doe"
    assert stream_of(probe, "video")["tags"]["language"] == "fra"
    assert stream_of(probe, "audio")["tags"]["language"] == "deu"
    if suffix == ".mkv":  # MP4 has no track titles
        assert stream_of(probe, "audio")["tags"]["title"] == "commentary"


def test_rotation_is_kept(tmp_path, run_cli):
    source = make_clip(tmp_path / "portrait.mp4", rotation=90, audio=False)
    target = tmp_path / "portrait_x2.mp4"

    assert run_cli("run", source, "-o", target, "--model", "bicubic", "--scale", "2", "--quiet").exit_code == 0

    video = stream_of(ffprobe(target, "-show_streams"), "video")
    rotations = [d.get("rotation") for d in video.get("side_data_list", [])]
    assert 90 in rotations
    assert (video["width"], video["height"]) == (96, 64)


ANAMORPHIC = Fraction(16, 11)  # a 4:3-framed picture's pixels stretched to show 16:9, as on a widescreen DVD


def upscale_anamorphic(tmp_path, run_cli, suffix: str, codec: str):
    """`vsr run` x2 bicubic of a clip with 16:11 pixels into out{suffix}: the result and ffprobe's video stream."""
    source = make_clip(tmp_path / "anamorphic.mp4", frames=3, width=44, height=36, audio=False,
                       pixel_aspect=ANAMORPHIC)
    target = tmp_path / f"out{suffix}"
    result = run_cli("run", source, "-o", target, "--model", "bicubic", "--scale", "2", "--codec", codec)
    video = stream_of(ffprobe(target, "-show_streams"), "video") if target.exists() else {}
    return result, video


@pytest.mark.parametrize("suffix, codec", [(".mp4", "libx264"), (".mkv", "libx264"), (".mkv", "libx265"),
                                           (".mp4", "libvpx-vp9")])
def test_pixel_shape_is_kept(tmp_path, run_cli, suffix, codec):
    result, video = upscale_anamorphic(tmp_path, run_cli, suffix, codec)

    assert result.exit_code == 0, result.output
    assert (video["width"], video["height"]) == (88, 72)
    assert (video["sample_aspect_ratio"], video["display_aspect_ratio"]) == ("16:11", "16:9")
    assert "warning" not in result.output


@pytest.mark.parametrize("suffix, codec", [(".webm", "libvpx-vp9"), (".mkv", "ffv1")])
def test_pixel_shape_an_output_cannot_record_is_warned(tmp_path, run_cli, suffix, codec):
    result, video = upscale_anamorphic(tmp_path, run_cli, suffix, codec)

    assert result.exit_code == 0, result.output
    assert "pixels are 16:11 wide, shown as 16:9" in result.output and "show the output as 11:9" in result.output
    assert video.get("sample_aspect_ratio", "1:1") in ("1:1", "N/A")  # the warning tells the truth


def test_pixel_shape_a_png_folder_drops_is_said(tmp_path, run_cli):
    source = make_clip(tmp_path / "anamorphic.mp4", frames=2, width=44, height=36, audio=False,
                       pixel_aspect=ANAMORPHIC)

    result = run_cli("run", source, "-o", tmp_path / "frames", "--model", "bicubic", "--scale", "2")

    assert result.exit_code == 0, result.output
    assert "the pixel shape (16:11 wide, shown as 16:9: PNG pixels are square) not written" in result.output


def test_probe_prints_the_pixel_shape(tmp_path, run_cli):
    square = make_clip(tmp_path / "square.mp4", frames=2, width=44, height=36, audio=False)
    anamorphic = make_clip(tmp_path / "anamorphic.mp4", frames=2, width=44, height=36, audio=False,
                           pixel_aspect=ANAMORPHIC)

    assert "pixels:      square, shown as 11:9" in run_cli("probe", square).output
    assert "pixels:      16:11 wide, shown as 16:9" in run_cli("probe", anamorphic).output


def test_audio_the_container_cannot_hold_is_reencoded_and_said(tmp_path, run_cli):
    source = make_clip(tmp_path / "in.mp4")  # AAC, which WebM cannot hold
    target = tmp_path / "out.webm"

    result = run_cli("run", source, "-o", target, "--model", "bicubic", "--scale", "2", "--quiet")

    assert result.exit_code == 0, result.output
    assert "re-encoded to libopus" in result.stderr
    assert stream_of(ffprobe(target, "-show_streams"), "audio")["codec_name"] == "opus"


def test_frame_folder_in_video_out_and_back(tmp_path, run_cli):
    folder = make_frame_folder(tmp_path / "frames", frames=12)
    video = tmp_path / "from_frames.mp4"
    back = tmp_path / "back"

    assert run_cli("run", folder, "-o", video, "--model", "bicubic", "--scale", "2", "--quiet").exit_code == 0
    assert run_cli("run", video, "-o", back, "--model", "bicubic", "--scale", "2", "--quiet").exit_code == 0

    assert len(frame_times(video)) == 12
    assert frame_times(video)[:3] == pytest.approx([0, 0.04, 0.08])  # 25 fps by default
    written = sorted(back.iterdir())
    assert len(written) == 12
    assert cv2.imread(str(written[0])).shape == (24 * 4, 40 * 4, 3)


def test_fps_times_a_frame_folder(tmp_path, run_cli):
    folder = make_frame_folder(tmp_path / "frames", frames=4)
    video = tmp_path / "ntsc.mp4"

    result = run_cli("run", folder, "-o", video, "--model", "bicubic", "--scale", "2", "--fps", "30000/1001", "--quiet")

    assert result.exit_code == 0, result.output
    assert frame_times(video) == pytest.approx([i * 1001 / 30000 for i in range(4)], abs=1e-4)
    assert Fraction(stream_of(ffprobe(video, "-show_streams"), "video")["avg_frame_rate"]) == Fraction(30000, 1001)


def test_fps_on_a_video_file_is_ignored_with_a_warning(tmp_path, run_cli):
    source = make_clip(tmp_path / "in.mp4", frames=3, audio=False)

    result = run_cli("run", source, "-o", tmp_path / "out.mp4", "--model", "bicubic", "--scale", "2", "--fps", "50",
                     "--quiet")

    assert result.exit_code == 0, result.output
    assert "--fps applies to PNG-folder inputs" in result.stderr
    assert frame_times(tmp_path / "out.mp4") == frame_times(source)


@pytest.mark.parametrize("rate", ["0", "-5", "fast", "1/0"])
def test_a_bad_fps_is_one_line_error(tmp_path, run_cli, rate):
    folder = make_frame_folder(tmp_path / "frames", frames=2)

    result = run_cli("run", folder, "-o", tmp_path / "out.mp4", "--fps", rate)

    assert result.exit_code == 2 and "--fps" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out.mp4").exists()


def test_sixteen_bit_frames_stay_sixteen_bit(tmp_path, run_cli):
    folder = make_frame_folder(tmp_path / "deep", frames=3, deep=True)
    target = tmp_path / "deep_x2"

    assert run_cli("run", folder, "-o", target, "--model", "bicubic", "--scale", "2", "--quiet").exit_code == 0

    image = cv2.imread(str(target / "frame_000000.png"), cv2.IMREAD_UNCHANGED)
    assert image.dtype == np.uint16 and image.shape == (48, 80, 3)
    assert image.max() > 255 * 16  # the low bits of a 16-bit source are not thrown away


def clip_with_subtitles(folder, container: str, subtitle_codec: str):
    """A clip with audio and one subtitle stream, muxed by the ffmpeg command line."""
    import subprocess

    clip = make_clip(folder / "in.mp4")
    subtitles = folder / "subs.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:00,200\nhello\n")
    source = folder / f"with_subs.{container}"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-i", str(subtitles), "-map", "0", "-map", "1",
                    "-c", "copy", "-c:s", subtitle_codec, str(source)], check=True)
    return source


def test_subtitles_are_copied(tmp_path, run_cli):
    source = clip_with_subtitles(tmp_path, "mkv", "srt")
    target = tmp_path / "out.mkv"

    assert run_cli("run", source, "-o", target, "--model", "bicubic", "--scale", "2", "--quiet").exit_code == 0

    kinds = sorted(s["codec_type"] for s in ffprobe(target, "-show_streams")["streams"])
    assert kinds == ["audio", "subtitle", "video"]


def test_subtitles_the_container_cannot_hold_are_dropped_and_said(tmp_path, run_cli):
    source = clip_with_subtitles(tmp_path, "mp4", "mov_text")

    result = run_cli("run", source, "-o", tmp_path / "out.mkv", "--model", "bicubic", "--scale", "2", "--quiet")

    assert result.exit_code == 0
    assert "subtitle stream 2 (mov_text) dropped" in result.stderr


def test_frame_folder_output_says_the_audio_is_not_written(tmp_path, run_cli):
    result = run_cli("run", make_clip(tmp_path / "in.mp4"), "-o", tmp_path / "frames", "--model", "bicubic", "--scale", "2", "--quiet")
    assert result.exit_code == 0
    assert "audio stream 1 (aac) not written" in result.stderr


def test_lanczos_and_scale_three(tmp_path, run_cli):
    source = make_clip(tmp_path / "in.mp4", width=48, height=32, audio=False)
    target = tmp_path / "out.mkv"

    assert run_cli("run", source, "-o", target, "--model", "lanczos", "--scale", "3", "--quiet").exit_code == 0

    video = stream_of(ffprobe(target, "-show_streams"), "video")
    assert (video["width"], video["height"]) == (144, 96)


def test_probe_prints_what_the_file_holds(tmp_path, run_cli):
    source = make_clip(tmp_path / "in.mp4", frames=5, rotation=90)

    result = run_cli("probe", source)

    assert result.exit_code == 0
    assert "48x32" in result.output and "frames:      5" in result.output
    assert "matrix bt709" in result.output and "rotation:    90" in result.output
    assert "audio aac" in result.output


def test_models_lists_the_baselines(run_cli):
    result = run_cli("models")
    assert result.exit_code == 0
    assert "bicubic" in result.output and "lanczos" in result.output


def test_models_says_which_torch_device_and_engine_it_uses_here(run_cli):
    import torch

    last = run_cli("models").output.strip().splitlines()[-1]

    assert last.startswith(f"here: torch {torch.__version__} (")
    assert ("device auto: cuda" in last) == torch.cuda.is_available()
    assert "backend auto: " in last


@pytest.mark.parametrize("command", ["run", "batch"])
def test_help_names_the_default_model(run_cli, command):
    from vsr.models.zoo import DEFAULT_MODEL

    assert f"default: {DEFAULT_MODEL}" in " ".join(run_cli(command, "--help").output.split())


@pytest.mark.parametrize("codec,suffix", [("libx265", ".mp4"), ("libsvtav1", ".mkv"), ("ffv1", ".mkv"),
                                          ("libvpx-vp9", ".webm")])
def test_other_encoders(tmp_path, run_cli, codec, suffix):
    source = make_clip(tmp_path / "in.mp4", frames=4, width=64, height=64, audio=False)
    target = tmp_path / f"out{suffix}"

    result = run_cli("run", source, "-o", target, "--model", "bicubic", "--scale", "2", "--codec", codec, "--quiet")

    assert result.exit_code == 0, result.stderr
    video = stream_of(ffprobe(target, "-show_streams"), "video")
    assert video["codec_name"] == av.codec.Codec(codec, "w").canonical_name
    assert (video["width"], video["height"]) == (128, 128)
    assert len(frame_times(target)) == 4


def test_a_codec_the_container_cannot_hold_is_refused(tmp_path, run_cli):
    source = make_clip(tmp_path / "in.mp4", frames=2, audio=False)
    result = run_cli("run", source, "-o", tmp_path / "out.webm", "--codec", "libx264", "--quiet")
    assert result.exit_code == 1
    assert "cannot hold libx264" in result.stderr


def test_tags_that_describe_the_old_encoding_are_not_carried():
    from vsr.io.tags import carried_tags

    tags = {"title": "A", "ENCODER": "Lavc59 libx264", "DURATION": "00:00:01.0", "BPS-eng": "1000",
            "_STATISTICS_TAGS": "BPS", "major_brand": "isom", "COMMENT": "licence", "language": "fra"}

    assert carried_tags(tags) == {"title": "A", "COMMENT": "licence", "language": "fra"}
