"""`vsr batch` under faults: stopped, killed, a worker killed, a damaged journal, hostile trees and names.

Each case: no data lost (what finished is kept and journaled), nothing half-written left behind, one line per
problem, never a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from checks import assert_one_line_error, partial_files, run_vsr
from conftest import make_clip, make_frame_folder

from vsr.batch.journal import JOURNAL_NAME
from vsr.io.probe import probe

FAST = ("--model", "bicubic", "--scale", "2", "--quiet")
SLOW = ("--model", "bicubic", "--scale", "4", "--preset", "veryslow", "--quiet")  # a long clip takes a while
HOW = {signal.SIGINT: "interrupted", signal.SIGTERM: "stopped by SIGTERM", signal.SIGHUP: "stopped by SIGHUP"}
STOPPED = "1 finished file kept and journaled; the files in progress were not written"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds worker processes in /proc")


def default_stop_signals() -> None:
    """As a user's shell starts a command: pytest may ignore INT, TERM and HUP by now (an in-process CLI test
    that ended in an error held them off, see vsr.signals), and a child would inherit that."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


@contextmanager
def batch_process(*args) -> Iterator[subprocess.Popen]:
    """`vsr batch ARGS` in a session of its own; whatever of it is left at the end (a failed test) is killed."""
    process = subprocess.Popen([sys.executable, "-m", "vsr", "batch", *map(str, args)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=default_stop_signals,
                               start_new_session=True)
    try:
        yield process
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()
        process.stderr.close()


def long_clip(path: Path) -> Path:
    return make_clip(path, frames=250, width=160, height=96, audio=False)


def journal_entries(out: Path) -> dict[str, str]:
    """source -> status of the journal's readable lines."""
    path = out / JOURNAL_NAME
    entries = {}
    for line in path.read_bytes().splitlines() if path.exists() else []:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        entries[entry["source"]] = entry["status"]
    return entries


def wait_for(condition, process, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def workers_of(parent: int) -> list[int]:
    """The batch's worker processes: children of `parent` started by multiprocessing's spawn."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat, cmdline = (entry / "stat").read_text(), (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"--multiprocessing-fork" in cmdline:
            pids.append(int(entry.name))
    return pids


def running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


# --- stopping: Ctrl-C, SIGTERM, SIGHUP -------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stopped_batch_keeps_and_journals_what_finished(tmp_path, signum):
    source, out = tmp_path / "in", tmp_path / "out"
    make_clip(source / "a.mp4", frames=3)
    long_clip(source / "b.mp4")
    with batch_process(source, out, *SLOW) as process:
        wait_for(lambda: journal_entries(out) and partial_files(out), process)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)

    assert process.returncode == 128 + signum, stderr
    assert stderr.strip().splitlines() == [f"vsr: {HOW[signum]}; {STOPPED}"]
    assert journal_entries(out) == {"a.mp4": "done"} and probe(out / "a.mp4").frame_count == 3
    assert not (out / "b.mp4").exists() and not partial_files(out)


@pytest.mark.slow
@linux_only
@pytest.mark.parametrize("signum, whole_group", [(signal.SIGINT, True), (signal.SIGTERM, False)])
def test_stopping_a_batch_with_workers_stops_them_all_at_once(tmp_path, signum, whole_group):
    """Ctrl-C in a terminal reaches every process of the group; SIGTERM (a service manager) the parent only."""
    source, out = tmp_path / "in", tmp_path / "out"
    make_clip(source / "a.mp4", frames=3)
    for name in ("b", "c", "d"):
        long_clip(source / f"{name}.mp4")
    with batch_process(source, out, *SLOW, "--jobs", "2") as process:
        wait_for(lambda: journal_entries(out) and len(partial_files(out)) == 2, process)  # b and c in flight
        workers = workers_of(process.pid)
        os.killpg(process.pid, signum) if whole_group else process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)

    assert process.returncode == 128 + signum, stderr
    assert stderr.strip().splitlines() == [f"vsr: {HOW[signum]}; {STOPPED}"]
    assert journal_entries(out) == {"a.mp4": "done"}  # d, queued, never started
    assert sorted(p.name for p in out.iterdir()) == [JOURNAL_NAME, "a.mp4"]
    assert len(workers) == 2 and not any(running(pid) for pid in workers)


@pytest.mark.slow
@linux_only
def test_the_workers_stop_when_the_batch_is_killed(tmp_path):
    source, out = tmp_path / "in", tmp_path / "out"
    long_clip(source / "a.mp4")
    long_clip(source / "b.mp4")
    with batch_process(source, out, *SLOW, "--jobs", "2") as process:
        wait_for(lambda: len(partial_files(out)) == 2, process)
        workers = workers_of(process.pid)
        process.kill()  # kill -9: no clean-up of its own
        process.wait()  # not communicate(): orphaned workers would hold its pipes open
        deadline = time.monotonic() + 20
        while any(running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(workers) == 2 and not any(running(pid) for pid in workers)
        assert not partial_files(out)  # each worker's writer deleted its own


@pytest.mark.slow
@linux_only
def test_a_worker_that_dies_fails_its_own_file_and_the_batch_goes_on(tmp_path):
    source, out = tmp_path / "in", tmp_path / "out"
    long_clip(source / "a.mp4")
    long_clip(source / "b.mp4")
    make_clip(source / "c.mp4", frames=3)
    make_clip(source / "d.mp4", frames=3)
    with batch_process(source, out, *SLOW, "--jobs", "2") as process:
        wait_for(lambda: len(partial_files(out)) == 2, process)  # a and b in flight; c and d queued
        workers = workers_of(process.pid)
        for pid in workers:
            os.kill(pid, signal.SIGKILL)  # as the OOM killer would
        stdout, stderr = process.communicate(timeout=120)

    assert process.returncode == 1, stderr
    assert "2 upscaled, 2 failed" in stdout and len(stderr.splitlines()) == 2, stderr  # one line per failure
    for name in ("a.mp4", "b.mp4"):
        lines = [line for line in stderr.splitlines() if name in line]
        assert len(lines) == 1 and "worker process died (killed by SIGKILL)" in lines[0], stderr
    assert journal_entries(out) == {"a.mp4": "failed", "b.mp4": "failed", "c.mp4": "done", "d.mp4": "done"}
    assert probe(out / "d.mp4").frame_count == 3 and not partial_files(out)
    assert len(workers) == 2


# --- the journal -------------------------------------------------------------------------------------------

def test_a_torn_journal_line_does_not_swallow_the_next_record(tmp_path, run_cli):
    source, out = tmp_path / "in", tmp_path / "out"
    make_clip(source / "one.mp4", frames=3)
    out.mkdir()
    (out / JOURNAL_NAME).write_bytes(b'{"source": "gone.mp4", "status": "do')  # kill -9 mid-write
    assert run_cli("batch", source, out, *FAST).exit_code == 0
    assert journal_entries(out) == {"one.mp4": "done"}
    rerun = run_cli("batch", source, out, *FAST)
    assert "1 already done" in rerun.output


def test_damaged_journal_lines_are_skipped_with_one_warning(tmp_path, run_cli):
    source, out = tmp_path / "in", tmp_path / "out"
    make_clip(source / "one.mp4", frames=3)
    out.mkdir()
    (out / JOURNAL_NAME).write_bytes(b"\n".join([
        b'{"source": "one.mp4", "status": "done", "fingerprint": "\xff\xfe"}',  # not UTF-8
        b"not json",
        b"[1, 2]",
        b'{"source": "one.mp4", "status": 5, "fingerprint": "x"}',
        b'{"source": 3, "status": "done", "fingerprint": "x"}',
        b'{"source": "one.mp4", "status": "done"}',
        b'{"source": "other.mp4", "status": "failed", "fingerprint": "x", "detail": "fine"}',
    ]) + b"\n")
    result = run_cli("batch", source, out, *FAST)

    assert result.exit_code == 0 and "1 upscaled" in result.output, result.output
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and JOURNAL_NAME in warnings[0] and "lines 1, 2, 3, 4, 5, 6" in warnings[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("case", ["journal_is_a_folder", "output_is_a_file"])
def test_a_journal_that_cannot_be_written_fails_before_any_work(tmp_path, run_cli, case):
    source, out = tmp_path / "in", tmp_path / "out"
    make_clip(source / "one.mp4", frames=3)
    if case == "journal_is_a_folder":
        (out / JOURNAL_NAME).mkdir(parents=True)
    else:
        out.write_text("a file")
    result = run_cli("batch", source, out, *FAST)
    assert_one_line_error(result, JOURNAL_NAME if case == "journal_is_a_folder" else "out", "cannot be")
    assert not (out / "one.mp4").exists()


def test_a_full_disk_under_the_journal_is_one_error_and_keeps_what_finished(tmp_path, run_cli, monkeypatch):
    source, out = tmp_path / "in", tmp_path / "out"
    make_clip(source / "one.mp4", frames=3)
    make_clip(source / "two.mp4", frames=3)

    def full(_fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    result = run_cli("batch", source, out, *FAST)
    assert_one_line_error(result, JOURNAL_NAME, "No space left on device")
    assert probe(out / "one.mp4").frame_count == 3 and not (out / "two.mp4").exists()


# --- the tree and its names ----------------------------------------------------------------------------------

def test_symlinked_folders_are_not_followed_and_said_so_once(tmp_path, run_cli):
    source, out, elsewhere = tmp_path / "in", tmp_path / "out", tmp_path / "elsewhere"
    make_clip(source / "a.mp4", frames=2)
    make_clip(source / "sub" / "b.mp4", frames=2)
    make_clip(elsewhere / "c.mp4", frames=2)
    make_frame_folder(elsewhere / "shots", frames=2)
    (source / "sub" / "loop").symlink_to(source, target_is_directory=True)  # back up the tree
    (source / "outside").symlink_to(elsewhere, target_is_directory=True)  # out of it
    (source / "shots").symlink_to(elsewhere / "shots", target_is_directory=True)
    (source / "link.mp4").symlink_to(elsewhere / "c.mp4")  # a file: processed as one
    result = run_cli("batch", source, out, *FAST)

    assert result.exit_code == 0 and "3 upscaled" in result.output, result.output
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != JOURNAL_NAME)
    assert made == ["a.mp4", "link.mp4", "sub/b.mp4"]
    for name in ("sub/loop", "outside", "shots"):
        lines = [line for line in result.stderr.splitlines() if line.endswith("not followed") and name in line]
        assert len(lines) == 1, result.stderr


def test_names_that_are_not_utf8_are_processed_or_fail_alone(tmp_path):
    source, out = tmp_path / "in", tmp_path / "out"
    make_clip(source / "good.mp4", frames=2)
    make_clip(tmp_path / "clip.mp4", frames=3).rename(os.fsdecode(os.fsencode(source) + b"/bad\xff.mp4"))
    make_frame_folder(tmp_path / "shots", frames=2).rename(os.fsdecode(os.fsencode(source) + b"/shots\xff"))
    strict = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}  # printing a raw surrogate would raise
    result = run_vsr("batch", source, out, "--model", "bicubic", "--scale", "2", env=strict)

    assert result.returncode == 1 and "2 upscaled, 1 failed" in result.stdout, result.stderr
    assert "Traceback" not in result.stderr
    assert "upscaled: bad\\xff.mp4" in result.stderr
    failed = [line for line in result.stderr.splitlines() if line.startswith("vsr batch: failed:")]
    assert len(failed) == 1 and "shots\\xff" in failed[0] and "not valid UTF-8" in failed[0]
    assert probe(Path(os.fsdecode(os.fsencode(out) + b"/bad\xff.mp4"))).frame_count == 3
    rerun = run_vsr("batch", source, out, *FAST, env=strict)
    assert "1 failed, 2 already done" in rerun.stdout, rerun.stderr


@pytest.mark.parametrize("quiet", [False, True])
def test_each_failure_is_printed_once(tmp_path, run_cli, quiet):
    source = tmp_path / "in"
    make_clip(source / "good.mp4", frames=2)
    (source / "bad.mp4").write_text("not a video")
    result = run_cli("batch", source, tmp_path / "out", "--model", "bicubic", "--scale", "2",
                     *(["--quiet"] if quiet else []))
    assert result.exit_code == 1
    assert len([line for line in result.stderr.splitlines() if "bad.mp4" in line]) == 1, result.stderr


def test_an_output_folder_around_the_input_that_would_map_onto_an_input_is_refused(tmp_path, run_cli):
    from conftest import make_clip

    input_dir = tmp_path / "proj" / "in"
    make_clip(input_dir / "a.mp4", frames=2, audio=False)
    make_clip(input_dir / "in" / "a.mp4", frames=2, audio=False)  # its output would be proj/in/a.mp4
    before = (input_dir / "a.mp4").read_bytes()
    result = run_cli("batch", input_dir, tmp_path / "proj", "--model", "bicubic", "--scale", "2", "--overwrite",
                     "--quiet")
    assert result.exit_code == 1 and "would replace or fill an input" in result.stderr
    assert "Traceback" not in result.stderr
    assert (input_dir / "a.mp4").read_bytes() == before
