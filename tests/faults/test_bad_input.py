"""Bad input: one line naming the file and the problem, a non-zero exit, no traceback, the target untouched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_clip, make_frame_folder


def assert_one_line_error(result, *words: str) -> None:
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("vsr: error: ")
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in result.output


def no_partial_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".partial-" in p.name]


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "clip.mp4", frames=4, audio=False)


def test_nonexistent_input(tmp_path, run_cli):
    missing = tmp_path / "missing.mp4"
    assert_one_line_error(run_cli("run", missing, "-o", tmp_path / "o.mp4"), str(missing), "no such file")


def test_folder_without_frames(tmp_path, run_cli):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("no frames here")
    assert_one_line_error(run_cli("run", folder, "-o", tmp_path / "o.mp4"), str(folder), "no PNG frames")


def test_empty_file(tmp_path, run_cli):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert_one_line_error(run_cli("run", empty, "-o", tmp_path / "o.mp4"), str(empty), "empty")


def test_random_bytes(tmp_path, run_cli):
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(os.urandom(50_000))
    assert_one_line_error(run_cli("run", noise, "-o", tmp_path / "o.mp4"), str(noise))
    assert not (tmp_path / "o.mp4").exists() and no_partial_files(tmp_path)


def test_audio_only_file(tmp_path, run_cli):
    import av

    from conftest import write_tone

    audio = tmp_path / "tone.m4a"
    with av.open(str(audio), "w") as container:
        write_tone(container, container.add_stream("aac", rate=48000, layout="mono"), 0.5)
    assert_one_line_error(run_cli("run", audio, "-o", tmp_path / "o.mp4"), str(audio), "no video stream")


def assert_completes_with_a_warning(run_cli, source: Path, target: Path) -> None:
    """A damaged source still gives the frames that decoded, and the run names the source in a warning."""
    result = run_cli("run", source, "-o", target, "--model", "bicubic", "--scale", "2", "--quiet")
    assert result.exit_code == 0
    assert target.exists()
    assert "warning" in result.stderr and str(source) in result.stderr


def test_truncated_file_gives_the_frames_that_decoded_and_says_so(tmp_path, run_cli):
    whole = make_clip(tmp_path / "whole.mkv", frames=30, audio=False)
    cut = tmp_path / "cut.mkv"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert_completes_with_a_warning(run_cli, cut, tmp_path / "o.mkv")


def test_corrupt_packets_mid_stream_are_reported(tmp_path, run_cli):
    whole = make_clip(tmp_path / "whole.ts", frames=30, audio=False)
    data = bytearray(whole.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 3000] = os.urandom(3000)
    broken = tmp_path / "broken.ts"
    broken.write_bytes(bytes(data))
    assert_completes_with_a_warning(run_cli, broken, tmp_path / "o.mkv")


def test_odd_input_size_works_and_odd_output_size_is_refused(tmp_path, run_cli):
    folder = make_frame_folder(tmp_path / "odd", frames=2, width=33, height=17)

    even = run_cli("run", folder, "-o", tmp_path / "x2.mp4", "--model", "bicubic", "--scale", "2", "--quiet")
    odd = run_cli("run", folder, "-o", tmp_path / "x3.mp4", "--model", "bicubic", "--scale", "3", "--quiet")
    png = run_cli("run", folder, "-o", tmp_path / "x3_frames", "--model", "bicubic", "--scale", "3", "--quiet")

    assert even.exit_code == 0 and png.exit_code == 0
    assert_one_line_error(odd, "x3.mp4", "99x51 is odd")
    assert not (tmp_path / "x3.mp4").exists() and no_partial_files(tmp_path)


def test_existing_target_is_not_touched_without_overwrite(tmp_path, run_cli, clip):
    target = tmp_path / "o.mp4"
    target.write_bytes(b"precious")

    assert_one_line_error(run_cli("run", clip, "-o", target, "--quiet"), str(target), "--overwrite")
    assert target.read_bytes() == b"precious"

    assert run_cli("run", clip, "-o", target, "--model", "bicubic", "--scale", "2", "--overwrite", "--quiet").exit_code == 0
    assert target.read_bytes() != b"precious"


def test_existing_frame_folder_is_replaced_only_with_overwrite(tmp_path, run_cli, clip):
    target = tmp_path / "old_frames"
    assert run_cli("run", clip, "-o", target, "--model", "bicubic", "--scale", "2", "--quiet").exit_code == 0
    first = sorted(p.name for p in target.iterdir())

    assert_one_line_error(run_cli("run", clip, "-o", target, "--quiet"), "already exists")
    assert sorted(p.name for p in target.iterdir()) == first
    assert run_cli("run", clip, "-o", target, "--model", "bicubic", "--scale", "2", "--overwrite", "--quiet").exit_code == 0
    assert len(list(target.iterdir())) == 4
    assert no_partial_files(tmp_path)


def test_overwrite_never_replaces_a_folder_of_the_users_own_frames(tmp_path, run_cli, clip):
    target = make_frame_folder(tmp_path / "my_frames", frames=9)  # f0.png ...: not names vsr writes

    assert_one_line_error(run_cli("run", clip, "-o", target, "--model", "bicubic", "--scale", "2", "--overwrite",
                                  "--quiet"), str(target), "did not write")
    assert len(list(target.iterdir())) == 9


def test_output_onto_input_is_refused(tmp_path, run_cli, clip):
    assert_one_line_error(run_cli("run", clip, "-o", clip, "--overwrite"), "which this run reads")


def test_target_in_missing_folder(tmp_path, run_cli, clip):
    assert_one_line_error(run_cli("run", clip, "-o", tmp_path / "nope" / "o.mp4"), "does not exist")


def test_unwritable_target(run_cli, clip):
    target = Path("/proc/vsr-test-output.mp4")  # even root cannot create files in /proc
    assert_one_line_error(run_cli("run", clip, "-o", target, "--quiet"), str(target))


def test_weights_that_are_not_a_checkpoint(tmp_path, run_cli, clip):
    weights = tmp_path / "weights.pth"
    weights.write_bytes(os.urandom(1000))
    assert_one_line_error(run_cli("run", clip, "-o", tmp_path / "o.mp4", "--weights", weights),
                          str(weights), "not a safetensors or PyTorch checkpoint")


def test_unknown_model(tmp_path, run_cli, clip):
    assert_one_line_error(run_cli("run", clip, "-o", tmp_path / "o.mp4", "--model", "nope"), "unknown model")


def test_unknown_codec(tmp_path, run_cli, clip):
    assert_one_line_error(run_cli("run", clip, "-o", tmp_path / "o.mp4", "--codec", "nosuchcodec"),
                          "nosuchcodec")
    assert no_partial_files(tmp_path)


def test_ctrl_c_leaves_nothing_behind(tmp_path):
    source = make_clip(tmp_path / "long.mp4", frames=250, width=160, height=96, audio=False)
    target = tmp_path / "o.mp4"
    process = subprocess.Popen([sys.executable, "-m", "vsr", "run", str(source), "-o", str(target),
                                "--model", "bicubic", "--scale", "4", "--preset", "veryslow", "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               # a shell's background jobs ignore SIGINT, and children inherit that
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while no_partial_files(tmp_path) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)  # wait until it is writing
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130
    assert stderr.strip().splitlines() == ["vsr: interrupted; nothing was written to the output"]
    assert not target.exists() and no_partial_files(tmp_path)
