"""Fault corpus, destinations: no output ever replaces or swallows something the user has (issue 17, items 1, 11).

Each case makes its own small input, runs vsr once, and checks the exit status, the one-line message, the
destination and the leftovers.
"""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from safetensors.torch import save_file

from checks import assert_one_line_error, partial_files
from conftest import make_clip, make_frame_folder

FAST = ("--model", "bicubic", "--scale", "2", "--quiet")


@pytest.fixture
def project(tmp_path):
    """proj/clip.mp4 and proj/notes.txt: a user's folder with an input in it."""
    folder = tmp_path / "proj"
    make_clip(folder / "clip.mp4", frames=3, audio=False)
    (folder / "notes.txt").write_text("mine")
    return folder


def contents(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_output_folder_that_contains_the_input_is_refused_even_with_overwrite(project, run_cli):
    before = contents(project)
    result = run_cli("run", project / "clip.mp4", "-o", project, "--overwrite", *FAST)
    assert_one_line_error(result, str(project), "contains", "clip.mp4")
    assert contents(project) == before


def test_output_inside_an_input_frame_folder_is_refused(tmp_path, run_cli):
    frames = make_frame_folder(tmp_path / "frames", frames=3)
    before = contents(frames)
    assert_one_line_error(run_cli("run", frames, "-o", frames / "out.mp4", *FAST), "inside", str(frames))
    assert contents(frames) == before


def test_output_that_is_a_symlink_to_the_input_is_refused(project, tmp_path, run_cli):
    link = tmp_path / "link.mp4"
    link.symlink_to(project / "clip.mp4")
    before = contents(project)
    assert_one_line_error(run_cli("run", project / "clip.mp4", "-o", link, "--overwrite", *FAST), "reads")
    assert contents(project) == before


def test_output_onto_the_weights_is_refused(project, tmp_path, run_cli):
    from vsr.models.zoo import build_model

    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in build_model("frvsr").state_dict().items()}, str(weights))
    before = weights.read_bytes()
    result = run_cli("run", project / "clip.mp4", "-o", weights.with_suffix(".mkv"), "--weights", weights, "--quiet")
    assert result.exit_code == 0  # a different file is fine ...
    folder_target = tmp_path / "w_folder"
    folder_target.mkdir()
    shutil.move(weights, folder_target / weights.name)
    result = run_cli("run", project / "clip.mp4", "-o", folder_target, "--weights", folder_target / weights.name,
                     "--overwrite", "--quiet")
    assert_one_line_error(result, "contains", weights.name)  # ... a folder holding the weights is not
    assert (folder_target / weights.name).read_bytes() == before


def test_bench_json_onto_the_ground_truth_folder_is_refused(tmp_path, run_cli):
    gt = make_frame_folder(tmp_path / "g", frames=3, width=32, height=32)
    before = contents(gt)
    result = run_cli("bench", "--gt", gt, "--json", gt, "--overwrite", "--model", "bicubic", "--no-temporal")
    assert_one_line_error(result, str(gt), "reads")
    assert contents(gt) == before


def test_bench_frames_over_a_users_folder_is_refused(tmp_path, run_cli):
    gt = make_frame_folder(tmp_path / "g", frames=3, width=32, height=32)
    mine = make_frame_folder(tmp_path / "mine", frames=2)
    result = run_cli("bench", "--gt", gt, "--save-frames", mine, "--overwrite", "--model", "bicubic",
                     "--no-temporal")
    assert_one_line_error(result, str(mine), "did not write")
    assert len(list(mine.iterdir())) == 2


def test_overwrite_never_replaces_a_folder_with_a_video_file(project, tmp_path, run_cli):
    target = tmp_path / "looks_like.mp4"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    assert_one_line_error(run_cli("run", project / "clip.mp4", "-o", target, "--overwrite", *FAST), "is a folder")
    assert (target / "keep.txt").read_text() == "mine"


def test_overwrite_never_deletes_a_file_to_make_room_for_a_frame_folder(project, tmp_path, run_cli):
    target = tmp_path / "frames_out"
    target.write_text("a regular file")
    assert_one_line_error(run_cli("run", project / "clip.mp4", "-o", target, "--overwrite", *FAST), "is a file")
    assert target.read_text() == "a regular file"


def test_frame_folder_target_where_a_file_is_without_overwrite(project, tmp_path, run_cli):
    target = tmp_path / "frames_out"
    target.write_text("a regular file")
    assert_one_line_error(run_cli("run", project / "clip.mp4", "-o", target, *FAST), "already exists")


def test_frame_folder_with_a_foreign_file_is_not_replaced(project, tmp_path, run_cli):
    target = tmp_path / "out_frames"
    assert run_cli("run", project / "clip.mp4", "-o", target, *FAST).exit_code == 0
    (target / "edit_notes.txt").write_text("the user's")
    result = run_cli("run", project / "clip.mp4", "-o", target, "--overwrite", *FAST)
    assert_one_line_error(result, "did not write")
    assert (target / "edit_notes.txt").exists()


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_targets_are_refused(project, run_cli, monkeypatch, name):
    monkeypatch.chdir(project)
    before = contents(project)
    assert_one_line_error(run_cli("run", "clip.mp4", "-o", name, "--overwrite", *FAST), "'.' or '..'")
    assert contents(project) == before


def test_target_name_too_long_once_the_partial_prefix_is_added(project, tmp_path, run_cli):
    target = tmp_path / ("x" * 240 + ".mp4")  # fits in 255 bytes; its hidden partial does not
    assert_one_line_error(run_cli("run", project / "clip.mp4", "-o", target, *FAST), "too long")
    assert partial_files(tmp_path) == []


def test_target_under_a_regular_file_is_refused(project, tmp_path, run_cli):
    assert_one_line_error(run_cli("run", project / "clip.mp4", "-o", project / "notes.txt" / "o.mp4", *FAST),
                          "is not a folder")


def test_non_regular_target_is_not_replaced(project, tmp_path, run_cli):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    assert_one_line_error(run_cli("run", project / "clip.mp4", "-o", fifo, "--overwrite", *FAST),
                          "not a regular file")


def test_stale_partial_of_a_killed_run_is_removed_by_the_next_run(project, tmp_path, run_cli):
    dead = tmp_path / ".o.partial-999999999-0badcafe.mp4"  # no such process id
    dead.write_bytes(b"left by a kill -9")
    other = tmp_path / ".other.partial-999999999-0badcafe.mp4"  # another target's: not ours to delete
    other.write_bytes(b"x")
    assert run_cli("run", project / "clip.mp4", "-o", tmp_path / "o.mp4", *FAST).exit_code == 0
    assert not dead.exists() and other.exists()


def test_partial_of_a_running_process_is_left_alone(project, tmp_path, run_cli):
    live = tmp_path / f".o.partial-{os.getppid()}-0badcafe.mp4"  # the test runner's parent is alive
    live.write_bytes(b"still being written")
    assert run_cli("run", project / "clip.mp4", "-o", tmp_path / "o.mp4", *FAST).exit_code == 0
    assert live.exists()


def test_weights_with_nan_are_refused(project, tmp_path, run_cli):
    from vsr.models.zoo import build_model

    state = {k: v.contiguous() for k, v in build_model("frvsr").state_dict().items()}
    state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()}
    weights = tmp_path / "nan.safetensors"
    save_file(state, str(weights))
    result = run_cli("run", project / "clip.mp4", "-o", tmp_path / "o.mp4", "--weights", weights, "--quiet")
    assert_one_line_error(result, str(weights), "NaN")
    assert not (tmp_path / "o.mp4").exists()


def test_weights_that_overflow_to_infinity_are_caught_in_the_output(project, tmp_path, run_cli):
    from vsr.models.zoo import build_model

    state = {k: v.contiguous() for k, v in build_model("frvsr").state_dict().items()}
    state = {k: v * 1e30 if v.is_floating_point() and v.ndim == 4 else v for k, v in state.items()}
    weights = tmp_path / "huge.safetensors"
    save_file(state, str(weights))
    result = run_cli("run", project / "clip.mp4", "-o", tmp_path / "o.mp4", "--weights", weights, "--quiet")
    assert_one_line_error(result, "NaN, infinite or absurdly large")
    assert not (tmp_path / "o.mp4").exists() and partial_files(tmp_path) == []


def test_weights_path_that_is_a_folder(project, tmp_path, run_cli):
    assert_one_line_error(run_cli("run", project / "clip.mp4", "-o", tmp_path / "o.mp4", "--weights", tmp_path,
                                  "--quiet"), "is a folder where a weights file should be")
