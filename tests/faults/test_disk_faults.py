"""Fault corpus, disks: a full or read-only file system, and an output folder removed mid-run, are one line
naming the target, with nothing left behind (issue 17, items 11 and 14). The file-system cases mount a small
tmpfs, and skip where this machine does not let the tests mount one."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from checks import assert_one_line_error, partial_files, vsr_process
from conftest import make_clip


def mount_tmpfs(tmp_path: Path, options: str) -> Path:
    point = tmp_path / f"mnt-{uuid.uuid4().hex[:6]}"
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("this machine does not let the tests mount a tmpfs")
    return point


@pytest.fixture
def small_disk(tmp_path):
    point = mount_tmpfs(tmp_path, "size=256k")
    yield point
    subprocess.run(["umount", "-l", str(point)], capture_output=True)


@pytest.fixture
def read_only_disk(tmp_path):
    point = mount_tmpfs(tmp_path, "size=64k,ro")
    yield point
    subprocess.run(["umount", "-l", str(point)], capture_output=True)


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "src" / "clip.mp4", frames=24, width=96, height=64, audio=True)


@pytest.mark.parametrize("name", ["o.mkv", "frames"])
def test_full_disk_names_the_target_and_leaves_nothing(clip, small_disk, run_cli, name):
    target = small_disk / name
    lossless = ["--codec", "ffv1"] if name.endswith(".mkv") else []  # large frames: the disk fills at once
    result = run_cli("run", clip, "-o", target, "--model", "bicubic", "--scale", "4", "--quiet", *lossless)
    assert_one_line_error(result, str(target), "No space left on device")
    assert ".partial-" not in result.stderr  # the user's name, not our hidden one
    assert list(small_disk.iterdir()) == []


def test_read_only_folder_is_refused_before_work(clip, read_only_disk, run_cli):
    target = read_only_disk / "o.mp4"
    assert_one_line_error(run_cli("run", clip, "-o", target, "--model", "bicubic", "--quiet"), str(target),
                          "not writable")


def run_and_delete_when_writing(source: Path, target: Path, delete) -> str:
    """`vsr run` to target; once its hidden partial appears, `delete()`; the run's stderr when it ends."""
    slow = ["--preset", "veryslow"] if target.suffix == ".mp4" else []  # still running when the delete lands
    process = vsr_process("run", source, "-o", target, "--model", "bicubic", "--scale", "4", "--quiet", *slow)
    deadline = time.monotonic() + 60
    while not partial_files(target.parent) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    delete()
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
    assert_one_line_error(subprocess.CompletedProcess([], process.returncode, "", stderr), str(target))
    assert ".partial-" not in stderr
    return stderr


@pytest.mark.parametrize("name", ["o.mp4", "frames"])
def test_output_folder_removed_during_the_run(tmp_path, name):
    source = make_clip(tmp_path / "long.mp4", frames=250, width=160, height=96, audio=False)
    folder = tmp_path / "out"
    folder.mkdir()
    stderr = run_and_delete_when_writing(source, folder / name, lambda: shutil.rmtree(folder))
    assert not folder.exists()
    if name.endswith(".mp4"):  # noticed at the next frame, not by the rename after all 250
        assert "its folder was removed during the run" in stderr


def test_a_partial_file_deleted_during_the_run_stops_it_and_nothing_appears(tmp_path):
    source = make_clip(tmp_path / "long.mp4", frames=250, width=160, height=96, audio=False)
    target = tmp_path / "out" / "o.mp4"
    target.parent.mkdir()

    def delete_partials():
        for partial in partial_files(target.parent):
            partial.unlink()

    stderr = run_and_delete_when_writing(source, target, delete_partials)
    assert "the file was deleted during the run" in stderr
    assert list(target.parent.iterdir()) == []
