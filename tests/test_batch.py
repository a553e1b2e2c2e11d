"""`vsr batch`: the tree mirrored, failures contained, reruns and crashes redo nothing that finished."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_clip, make_frame_folder

from vsr.batch.journal import JOURNAL_NAME
from vsr.io.frame_folder import list_frames, read_png
from vsr.io.probe import probe

BICUBIC_X2 = ("--model", "bicubic", "--scale", "2", "--quiet")


def make_tree(root: Path) -> Path:
    """in/a/one.mp4 (6 frames 48x32), in/a/b/two.mkv (4 frames), in/frames/ (5 PNGs 40x24), in/bad.mp4."""
    make_clip(root / "in" / "a" / "one.mp4", frames=6)
    make_clip(root / "in" / "a" / "b" / "two.mkv", frames=4, audio=False)
    make_frame_folder(root / "in" / "frames", frames=5)
    (root / "in" / "bad.mp4").write_text("not a video")
    return root / "in"


def partial_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".partial-" in p.name]


def test_the_tree_is_mirrored_and_a_bad_file_does_not_stop_the_rest(tmp_path, run_cli):
    source = make_tree(tmp_path)
    out = tmp_path / "out"
    result = run_cli("batch", source, out, *BICUBIC_X2)
    assert result.exit_code == 1  # one failed
    assert "3 upscaled, 1 failed" in result.output
    assert "bad.mp4" in result.stderr and "Traceback" not in result.output
    one, two = probe(out / "a" / "one.mp4"), probe(out / "a" / "b" / "two.mkv")
    assert (one.width, one.height, one.frame_count) == (96, 64, 6)
    assert (two.width, two.height, two.frame_count) == (96, 64, 4)
    assert any(s.type == "audio" for s in one.streams)
    frames = list_frames(out / "frames")
    assert len(frames) == 5 and read_png(frames[0]).shape == (48, 80, 3)
    assert not (out / "bad.mp4").exists() and not partial_files(out)


def test_a_rerun_redoes_nothing_that_finished_and_retries_failures(tmp_path, run_cli):
    source = make_tree(tmp_path)
    out = tmp_path / "out"
    run_cli("batch", source, out, *BICUBIC_X2)
    before = (out / "a" / "one.mp4").stat().st_mtime_ns
    (source / "bad.mp4").unlink()
    make_clip(source / "bad.mp4", frames=3)  # fixed
    result = run_cli("batch", source, out, *BICUBIC_X2)
    assert result.exit_code == 0
    assert "1 upscaled, 3 already done" in result.output
    assert (out / "a" / "one.mp4").stat().st_mtime_ns == before
    assert probe(out / "bad.mp4").frame_count == 3


def test_changed_settings_leave_earlier_outputs_alone_unless_overwrite(tmp_path, run_cli):
    source = tmp_path / "in"
    make_clip(source / "one.mp4", frames=3)
    out = tmp_path / "out"
    run_cli("batch", source, out, *BICUBIC_X2)
    result = run_cli("batch", source, out, "--model", "bicubic", "--scale", "3", "--quiet")
    assert "1 stale" in result.output and probe(out / "one.mp4").width == 96
    result = run_cli("batch", source, out, "--model", "bicubic", "--scale", "3", "--quiet", "--overwrite")
    assert "1 upscaled" in result.output and probe(out / "one.mp4").width == 144


def test_an_output_that_was_already_there_is_kept(tmp_path, run_cli):
    source = tmp_path / "in"
    make_clip(source / "one.mp4", frames=3)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "one.mp4").write_text("the user's own file")
    result = run_cli("batch", source, tmp_path / "out", *BICUBIC_X2)
    assert "1 exists" in result.output
    assert (tmp_path / "out" / "one.mp4").read_text() == "the user's own file"


def test_leftovers_of_a_killed_run_are_cleaned_and_a_torn_journal_line_ignored(tmp_path, run_cli):
    source = tmp_path / "in"
    make_clip(source / "one.mp4", frames=3)
    out = tmp_path / "out"
    out.mkdir()
    (out / ".one.partial-deadbeef.mp4").write_text("half a video")
    (out / JOURNAL_NAME).write_text('{"source": "one.mp4", "status": "do')  # torn by kill -9
    result = run_cli("batch", source, out, *BICUBIC_X2)
    assert result.exit_code == 0 and "1 upscaled" in result.output
    assert not partial_files(out)
    assert probe(out / "one.mp4").frame_count == 3


@pytest.mark.slow
def test_kill_9_mid_batch_then_rerun_finishes_with_no_partial_files(tmp_path):
    source = tmp_path / "in"
    for index in range(4):
        make_clip(source / f"clip{index}.mp4", frames=24, width=96, height=64)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "vsr", "batch", str(source), str(out), "--model", "lanczos", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = out / JOURNAL_NAME
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (journal.exists() and journal.read_text().strip()):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)  # somewhere in the second file, most likely
    process.wait()
    finished = {json.loads(line)["source"] for line in journal.read_text().splitlines()}
    stamps = {name: (out / name).stat().st_mtime_ns for name in finished}
    rerun = subprocess.run(command, capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(finished)} already done" in rerun.stdout
    assert {name: (out / name).stat().st_mtime_ns for name in finished} == stamps  # not redone
    assert all(probe(out / f"clip{index}.mp4").frame_count == 24 for index in range(4))
    assert not partial_files(out)


@pytest.mark.slow
def test_two_workers_make_the_same_frames_as_one(tmp_path, run_cli):
    source = tmp_path / "in"
    for index in range(3):
        make_frame_folder(source / f"shot{index}", frames=3)
    run_cli("batch", source, tmp_path / "one", *BICUBIC_X2)
    result = run_cli("batch", source, tmp_path / "two", *BICUBIC_X2, "--jobs", "2")
    assert result.exit_code == 0 and "3 upscaled" in result.output
    for index in range(3):
        ones, twos = list_frames(tmp_path / "one" / f"shot{index}"), list_frames(tmp_path / "two" / f"shot{index}")
        assert [p.read_bytes() for p in ones] == [p.read_bytes() for p in twos]


@pytest.mark.parametrize("case, expected", [
    ("output_inside_input", "is inside the input folder"),
    ("no_inputs", "holds no video files or PNG-frame folders"),
    ("missing", "is not a folder"),
])
def test_bad_folders_get_one_line(tmp_path, run_cli, case, expected):
    source = tmp_path / "in"
    source.mkdir()
    if case != "no_inputs":
        make_clip(source / "one.mp4", frames=2)
    out = {"output_inside_input": source / "up"}.get(case, tmp_path / "out")
    result = run_cli("batch", tmp_path / "nowhere" if case == "missing" else source, out, *BICUBIC_X2)
    assert result.exit_code == 1 and expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is optional: pip install 'vsr[ray]'")
def test_ray_local_runs_each_file_as_a_task_with_the_same_results(tmp_path, run_cli):
    source = make_tree(tmp_path)
    run_cli("batch", source, tmp_path / "plain", *BICUBIC_X2)
    # A real process: Ray starts its own workers, which import vsr as any node of a cluster would.
    result = subprocess.run([sys.executable, "-m", "vsr", "batch", str(source), str(tmp_path / "ray"), *BICUBIC_X2,
                             "--ray", "local"], check=False, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr
    assert "3 upscaled, 1 failed" in result.stdout and "bad.mp4" in result.stderr
    plain, ray = tmp_path / "plain", tmp_path / "ray"
    assert [p.read_bytes() for p in list_frames(ray / "frames")] == [p.read_bytes() for p in list_frames(plain / "frames")]
    for name in ("a/one.mp4", "a/b/two.mkv"):
        made, expected = probe(ray / name), probe(plain / name)
        assert (made.width, made.height, made.frame_count) == (expected.width, expected.height, expected.frame_count)
    entries = [json.loads(line) for line in (ray / JOURNAL_NAME).read_text().splitlines()]
    assert sorted(entry["status"] for entry in entries) == ["done", "done", "done", "failed"]
    assert not partial_files(ray)


def test_ray_asked_for_but_missing_or_mixed_with_jobs_gets_one_line(tmp_path, run_cli, monkeypatch):
    source = tmp_path / "in"
    make_clip(source / "one.mp4", frames=2)
    mixed = run_cli("batch", source, tmp_path / "out", *BICUBIC_X2, "--ray", "local", "--jobs", "2")
    assert mixed.exit_code == 1 and "--jobs and --ray do not mix" in mixed.stderr
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real_find_spec(name, *a))
    missing = run_cli("batch", source, tmp_path / "out", *BICUBIC_X2, "--ray", "local")
    assert missing.exit_code == 1 and "pip install 'vsr[ray]'" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and not (tmp_path / "out" / "one.mp4").exists()


def test_the_batch_says_once_why_its_model_runs_on_another_engine(monkeypatch):
    pytest.importorskip("openvino")
    from vsr.backends import openvino_models
    from vsr.batch.runner import BatchSettings, build_model_for

    monkeypatch.setattr(openvino_models, "openvino_version_of", lambda model, precision: None)  # a model without one
    heard: list[str] = []
    build_model_for(BatchSettings("basicvsrpp-small", device="cpu"), say=heard.append)
    assert heard == ["vsr: note: BasicVSRPlusPlus has no OpenVINO form yet: it runs on torch"]
    build_model_for(BatchSettings("bicubic", scale=2, device="cpu"), say=heard.append)  # nothing to say
    assert len(heard) == 1
