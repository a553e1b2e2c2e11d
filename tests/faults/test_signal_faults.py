"""Fault corpus, signals: SIGINT, SIGTERM and SIGHUP stop `vsr run` and `vsr bench` cleanly, at any moment
(issue 17, items 3 and 12): the exit status says which signal, one line says what happened, and no partial
output is left."""

from __future__ import annotations

import signal
import time

import pytest

from checks import partial_files, vsr_process
from conftest import make_clip, make_frame_folder

SLOW_RUN = ("--model", "bicubic", "--scale", "4", "--preset", "veryslow", "--quiet")


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("src") / "long.mp4", frames=250, width=160, height=96, audio=True)


def wait_until_writing(folder, process, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not partial_files(folder) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert partial_files(folder), "the run never started writing"


@pytest.mark.parametrize("signum, status, words", [
    (signal.SIGINT, 130, "vsr: interrupted; nothing was written to the output"),
    (signal.SIGTERM, 143, "vsr: stopped by SIGTERM; nothing was written to the output"),
    (signal.SIGHUP, 129, "vsr: stopped by SIGHUP; nothing was written to the output"),
])
def test_signal_during_run_removes_the_partial(long_clip, tmp_path, signum, status, words):
    target = tmp_path / "o.mp4"
    process = vsr_process("run", long_clip, "-o", target, *SLOW_RUN)
    wait_until_writing(tmp_path, process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status
    assert stderr.strip().splitlines() == [words]
    assert not target.exists() and partial_files(tmp_path) == []


def test_signal_to_png_folder_output_removes_the_partial_folder(long_clip, tmp_path):
    target = tmp_path / "frames"
    process = vsr_process("run", long_clip, "-o", target, "--model", "bicubic", "--scale", "4", "--quiet")
    wait_until_writing(tmp_path, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143 and "Traceback" not in stderr
    assert not target.exists() and partial_files(tmp_path) == []


def test_a_second_ctrl_c_during_the_clean_up_prints_no_traceback(long_clip, tmp_path):
    process = vsr_process("run", long_clip, "-o", tmp_path / "o.mp4", *SLOW_RUN)
    wait_until_writing(tmp_path, process)
    process.send_signal(signal.SIGINT)
    time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    assert partial_files(tmp_path) == []


@pytest.mark.parametrize("delay", [0.1, 0.3, 0.8, 1.5])
def test_ctrl_c_during_start_up_prints_no_traceback(long_clip, tmp_path, delay):
    """Caught while Python imports the command line, torch or PyAV, or while the model is built.

    Not earlier: in the first ~0.05 s the interpreter is still importing its own `site` module, where a
    Ctrl-C ends Python itself with a fatal error before any of our code runs."""
    process = vsr_process("run", long_clip, "-o", tmp_path / "o.mp4", *SLOW_RUN)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) <= 1
    assert partial_files(tmp_path) == []


def test_sigkilled_run_leaves_a_partial_that_the_next_run_removes(long_clip, tmp_path):
    target = tmp_path / "o.mp4"
    process = vsr_process("run", long_clip, "-o", target, *SLOW_RUN)
    wait_until_writing(tmp_path, process)
    process.kill()
    process.communicate(timeout=60)
    assert partial_files(tmp_path)  # kill -9 cannot be caught: the partial stays ...
    short = make_clip(tmp_path / "short.mp4", frames=2, audio=False)
    rerun = vsr_process("run", short, "-o", target, "--model", "bicubic", "--scale", "2", "--quiet")
    rerun.communicate(timeout=120)
    assert rerun.returncode == 0
    assert partial_files(tmp_path) == []  # ... and the next run to the same target removes it


def test_sigterm_during_bench_writes_no_result(tmp_path):
    gt = make_frame_folder(tmp_path / "gt", frames=40, width=320, height=192)
    json_path = tmp_path / "r.json"
    frames_dir = tmp_path / "sr"
    process = vsr_process("bench", "--gt", gt, "--model", "bicubic-matlab", "--json", json_path,
                          "--save-frames", frames_dir)
    wait_until_writing(tmp_path, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143
    assert stderr.strip().splitlines()[-1] == "vsr: stopped by SIGTERM; no result file was written"
    assert not json_path.exists() and not frames_dir.exists() and partial_files(tmp_path) == []



def test_ctrl_c_while_the_arguments_are_parsed_exits_130_with_our_line(monkeypatch, tmp_path):
    """Click's own handler would say "Aborted!" and exit 1: seen in CI, a Ctrl-C 0.05 s after start landed
    while the command group parsed its arguments, outside the command's own handler."""
    from click.testing import CliRunner

    from vsr.cli import cli

    def interrupted(self, ctx, args):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(cli), "parse_args", interrupted)
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "o.mp4")])
    assert result.exit_code == 130
    assert result.output.strip().splitlines() == ["vsr: interrupted; nothing was written to the output"]


@pytest.mark.parametrize("model", ["bicubic", "lanczos"])  # the YUV-plane path and the frame pipeline
def test_ctrl_c_just_after_the_partial_is_created_leaves_nothing_behind(monkeypatch, tmp_path, model):
    """Seen in CI: a Ctrl-C that lands between the partial's creation and the `try` that guards it left the
    partial behind. Here the stop comes the instant the writer exists, before the caller holds it."""
    from click.testing import CliRunner

    import vsr.io.writer
    from vsr.cli import cli

    real_open_writer = vsr.io.writer.open_writer

    def interrupted_on_return(*args, **kwargs):
        real_open_writer(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(vsr.io.writer, "open_writer", interrupted_on_return)
    monkeypatch.setattr("vsr.pipeline.plane_bicubic.open_writer", interrupted_on_return)
    monkeypatch.setattr("vsr.pipeline.job.open_writer", interrupted_on_return)
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=False)
    result = CliRunner().invoke(cli, ["run", str(clip), "-o", str(tmp_path / "o.mp4"), "--model", model,
                                      "--scale", "2", "--quiet"])
    assert result.exit_code == 130
    assert result.output.strip().splitlines() == ["vsr: interrupted; nothing was written to the output"]
    assert partial_files(tmp_path) == [] and not (tmp_path / "o.mp4").exists()
