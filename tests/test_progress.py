"""Life signs off a terminal: plain progress lines in logs and pipes, where a bar would print nothing."""

from __future__ import annotations

import io
import re

from conftest import make_clip, needs_ffprobe
from vsr.progress import Progress, duration_text


def test_off_a_terminal_progress_prints_whole_lines_with_rate_and_time_left():
    log = io.StringIO()  # not a terminal
    progress = Progress(10, "frame", "clip.mp4", stream=log, interval=0)

    for _ in range(4):
        progress.update()
    progress.close()

    lines = log.getvalue().splitlines()
    assert len(lines) == 4
    assert "\r" not in log.getvalue()
    assert re.fullmatch(r"vsr: clip\.mp4: 4/10 frames \(40%\), [\d.]+ frames/s, about .+ left", lines[-1])


def test_a_source_of_unknown_length_shows_count_and_rate_without_an_end():
    log = io.StringIO()
    progress = Progress(None, "frame", "live", stream=log, interval=0)

    progress.update(3)

    assert re.fullmatch(r"vsr: live: 3 frames, [\d.]+ frames/s", log.getvalue().strip())


def test_lines_come_at_the_interval_not_per_frame():
    log = io.StringIO()
    progress = Progress(1000, "frame", "clip", stream=log, interval=3600)

    for _ in range(1000):
        progress.update()

    assert log.getvalue() == ""


def test_quiet_prints_nothing():
    log = io.StringIO()
    progress = Progress(5, "frame", "clip", enabled=False, stream=log, interval=0)

    progress.update(5)

    assert log.getvalue() == ""


def test_durations_read_as_people_write_them():
    assert duration_text(45) == "45 s"
    assert duration_text(598) == "9 min 58 s"
    assert duration_text(7500) == "2 h 05 min"


@needs_ffprobe
def test_vsr_run_into_a_log_prints_progress_lines_and_a_summary(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("VSR_PROGRESS_SECONDS", "0")
    source = make_clip(tmp_path / "in.mp4", frames=5, audio=False)

    result = run_cli("run", source, "-o", tmp_path / "out.mp4", "--model", "bicubic", "--scale", "2")

    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("vsr: in.mp4: ")]
    assert lines[-1].startswith("vsr: in.mp4: 5/5 frames (100%)")
    assert "5 frames in" in result.stdout


@needs_ffprobe
def test_vsr_run_quiet_prints_no_progress_lines(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("VSR_PROGRESS_SECONDS", "0")
    source = make_clip(tmp_path / "in.mp4", frames=3, audio=False)

    result = run_cli("run", source, "-o", tmp_path / "out.mp4", "--model", "bicubic", "--scale", "2", "--quiet")

    assert result.exit_code == 0, result.output
    assert "vsr: in.mp4:" not in result.stderr


@needs_ffprobe
def test_vsr_batch_into_a_log_counts_files(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("VSR_PROGRESS_SECONDS", "0")
    for name in ("a", "b"):
        make_clip(tmp_path / "in" / f"{name}.mp4", frames=3, audio=False)

    result = run_cli("batch", tmp_path / "in", tmp_path / "out", "--model", "bicubic", "--scale", "2")

    assert result.exit_code == 0, result.output
    assert "vsr: batch: 2/2 files (100%)" in result.stderr
