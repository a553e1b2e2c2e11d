"""Live video: standard input and output, and TCP and UDP on loopback, upscaled as frames arrive.

These run `vsr` as a separate process, as a shell pipeline would: standard input and output are the process's
own file descriptors, which an in-process runner cannot stand in for.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ffprobe, frame_times, make_clip, needs_ffprobe, stream_of

pytestmark = needs_ffprobe
VSR = [sys.executable, "-m", "vsr"]
FAST = ["--model", "bicubic", "--scale", "2", "--quiet"]


def default_signals() -> None:
    """In the child: stop signals at their defaults, as a user's shell starts vsr (a background shell job, CI's
    included, ignores SIGINT, and children inherit ignored signals)."""
    import signal

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def receiver_process(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*VSR, *args], stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def counted_frames(source: Path | bytes) -> tuple[int, tuple[int, int]]:
    """Frames an independent decoder finds in a file path, or in bytes fed to ffprobe on its stdin."""
    command = ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
               "stream=nb_read_frames,width,height", "-of", "json"]
    if isinstance(source, bytes):
        out = subprocess.run([*command, "-"], input=source, capture_output=True, check=True).stdout
    else:
        out = subprocess.run([*command, str(source)], capture_output=True, check=True).stdout
    stream = json.loads(out)["streams"][0]
    return int(stream["nb_read_frames"]), (stream["width"], stream["height"])


def as_mpegts(clip: Path) -> bytes:
    """The clip remuxed to MPEG-TS, the container of live streams, as the bytes a pipe would carry."""
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-c", "copy", "-f", "mpegts", "-"],
                          capture_output=True, check=True).stdout


def wait_for_line(process: subprocess.Popen, text: str, seconds: float = 120) -> None:
    """Read the process's stderr until a line holds `text` (vsr says when it starts listening)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if text in line:
            return
        if not line and process.poll() is not None:
            raise AssertionError(f"vsr ended before saying {text!r}")
    raise AssertionError(f"vsr did not say {text!r} in {seconds} s")


def test_a_pipe_in_gives_every_frame_at_its_time_with_the_audio(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=9, width=48, height=32)
    target = tmp_path / "out.mkv"

    result = subprocess.run([*VSR, "run", "-", "-o", str(target), *FAST], input=as_mpegts(source),
                            capture_output=True)

    assert result.returncode == 0, result.stderr.decode()
    assert counted_frames(target) == (9, (96, 64))
    # MPEG-TS shifts the clock by its start offset; the spacing of the frames is the source's.
    times, original = frame_times(target), frame_times(source)
    assert [round(t - times[0], 3) for t in times] == [round(t - original[0], 3) for t in original]
    assert stream_of(ffprobe(target, "-show_streams"), "audio")["codec_name"] == "aac"


def test_a_pipe_whose_container_cannot_be_probed_needs_input_format(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=4, audio=False)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), "-c", "copy", "-f", "h264", "-"],
                         capture_output=True, check=True).stdout
    target = tmp_path / "out.mkv"

    result = subprocess.run([*VSR, "run", "-", "-o", str(target), "--input-format", "h264", *FAST], input=raw,
                            capture_output=True)

    assert result.returncode == 0, result.stderr.decode()
    assert counted_frames(target)[0] == 4


def test_garbage_on_stdin_is_a_one_line_error(tmp_path):
    result = subprocess.run([*VSR, "run", "-", "-o", str(tmp_path / "out.mkv"), *FAST], input=b"not a video" * 100,
                            capture_output=True, text=False)

    stderr = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("vsr: error: -: cannot be opened as a live input")
    assert not (tmp_path / "out.mkv").exists()


@pytest.mark.parametrize("container", ["matroska", "mpegts", "nut", "mp4"])
def test_standard_output_carries_a_valid_stream_and_nothing_else(tmp_path, container):
    source = make_clip(tmp_path / "in.mp4", frames=6, width=48, height=32)

    result = subprocess.run([*VSR, "run", str(source), "-o", "-", "--format", container, *FAST],
                            capture_output=True)

    assert result.returncode == 0, result.stderr.decode()
    assert counted_frames(result.stdout) == (6, (96, 64))
    assert b"frames in" in result.stderr  # the summary goes to stderr with the video on stdout
    assert list(tmp_path.iterdir()) == [source]  # no partial file for a stream


def test_format_is_refused_for_a_file_output(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=2, audio=False)

    result = subprocess.run([*VSR, "run", str(source), "-o", str(tmp_path / "o.mkv"), "--format", "mpegts", *FAST],
                            capture_output=True, text=True)

    assert result.returncode == 1 and "--format is for '-' and URLs" in result.stderr


def _send(clip: Path, address: str, realtime: bool = False, attempts: int = 60) -> None:
    """Stream `clip` to `address` as MPEG-TS with FFmpeg, retrying while the receiver is not yet listening."""
    for _ in range(attempts):
        sender = subprocess.run(["ffmpeg", "-v", "error", *(["-re"] if realtime else []), "-i", str(clip), "-c",
                                 "copy", "-f", "mpegts", address], capture_output=True)
        if sender.returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"could not send to {address}: {sender.stderr.decode()}")


def test_tcp_sender_to_receiver_on_loopback(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=30, width=48, height=32)
    port = free_port()
    target = tmp_path / "received.mkv"
    receiver = receiver_process("run", f"tcp://127.0.0.1:{port}?listen=1", "-o", str(target), *FAST)
    wait_for_line(receiver, "a live input")

    _send(source, f"tcp://127.0.0.1:{port}")

    assert receiver.wait(timeout=120) == 0, receiver.stderr.read()
    assert counted_frames(target) == (30, (96, 64))
    assert stream_of(ffprobe(target, "-show_streams"), "audio")["codec_name"] == "aac"


def test_a_sender_stopping_mid_stream_ends_the_output_cleanly(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=250, width=48, height=32, audio=False)
    port = free_port()
    target = tmp_path / "received.mkv"
    receiver = receiver_process("run", f"tcp://127.0.0.1:{port}?listen=1", "-o", str(target), *FAST)
    wait_for_line(receiver, "a live input")
    for _ in range(120):  # real time, so that it can be stopped part-way
        sender = subprocess.Popen(["ffmpeg", "-v", "error", "-re", "-i", str(source), "-c", "copy", "-f", "mpegts",
                                   f"tcp://127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
        time.sleep(2)
        if sender.poll() is None:  # connected and sending
            break
    sender.kill()  # the connection drops with no goodbye

    assert receiver.wait(timeout=120) == 0, receiver.stderr.read()
    frames, size = counted_frames(target)
    assert 5 < frames < 250 and size == (96, 64)


def test_udp_on_loopback_ends_when_the_sender_falls_silent(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=50, width=48, height=32, audio=False)
    port = free_port(socket.SOCK_DGRAM)
    target = tmp_path / "received.mkv"
    receiver = receiver_process("run", f"udp://127.0.0.1:{port}", "-o", str(target), "--input-timeout", "3",
                                 *FAST)
    wait_for_line(receiver, "a live input")
    time.sleep(3)  # the socket is bound a moment after the line; UDP has no connection to wait for

    _send(source, f"udp://127.0.0.1:{port}?pkt_size=1316", realtime=True)

    assert receiver.wait(timeout=120) == 0, receiver.stderr.read()
    frames, size = counted_frames(target)
    assert frames >= 40 and size == (96, 64)  # UDP may lose the frames before the first keyframe


def _peak_memory_mb(frames: int, tmp_path: Path) -> float:
    """The receiver's peak resident memory for a stream of `frames` frames of 320x240, piped through."""
    source = make_clip(tmp_path / f"long{frames}.mp4", frames=frames, width=320, height=240, audio=False)
    script = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdin=sys.stdin, check=True, "
              "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", script, *VSR, "run", "-", "-o", "-", "--format", "nut", "--preset",
                          "ultrafast", *FAST], input=as_mpegts(source), capture_output=True, check=True).stdout
    return int(out.decode().split()[-1]) / 1024


@pytest.mark.slow
def test_memory_stays_flat_over_a_stream_many_windows_long(tmp_path):
    short, long = _peak_memory_mb(16, tmp_path), _peak_memory_mb(240, tmp_path)

    # Holding the extra 224 frames would take 224 x (0.23 + 0.92) MB = 258 MB more.
    assert long - short < 60, (short, long)


def test_reconnect_keeps_listening_and_time_goes_on_until_ctrl_c(tmp_path):
    import signal

    source = make_clip(tmp_path / "in.mp4", frames=10, width=48, height=32, audio=False)
    port = free_port()
    target = tmp_path / "received.mkv"
    receiver = receiver_process("run", f"tcp://127.0.0.1:{port}?listen=1", "-o", str(target), "--reconnect",
                                 *FAST)
    wait_for_line(receiver, "a live input")

    _send(source, f"tcp://127.0.0.1:{port}")
    _send(source, f"tcp://127.0.0.1:{port}")  # a second sender, after the first hung up
    time.sleep(3)
    receiver.send_signal(signal.SIGINT)  # a live input has no end: Ctrl-C ends the recording

    assert receiver.wait(timeout=120) == 130
    assert counted_frames(target) == (20, (96, 64))  # kept, not removed: both senders' frames
    times = frame_times(target)
    assert all(later > earlier for earlier, later in zip(times, times[1:]))
    assert times[10] - times[9] == pytest.approx(0.04, abs=0.002)  # the second sender follows the first at once


def test_realtime_on_a_pipe_times_the_model_on_the_first_frame(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=5, width=48, height=32, audio=False)
    target = tmp_path / "out.mkv"

    result = subprocess.run([*VSR, "run", "-", "-o", str(target), "--realtime", *FAST], input=as_mpegts(source),
                            capture_output=True, text=False)

    assert result.returncode == 0, result.stderr.decode()
    assert "vsr: realtime:" in result.stderr.decode()
    assert counted_frames(target)[0] == 5  # the timing read nothing from the pipe


def test_ctrl_c_while_waiting_for_a_sender_ends_at_once(tmp_path):
    import signal

    port = free_port()
    target = tmp_path / "never.mkv"
    receiver = receiver_process("run", f"tcp://127.0.0.1:{port}?listen=1", "-o", str(target), *FAST)
    wait_for_line(receiver, "a live input")
    time.sleep(1)

    receiver.send_signal(signal.SIGINT)

    assert receiver.wait(timeout=20) == 130
    assert "interrupted" in receiver.stderr.read()
    assert not target.exists()


def test_output_to_a_tcp_address_reaches_the_listener(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=6, width=48, height=32)
    port = free_port()
    received = tmp_path / "received.ts"
    listener = subprocess.Popen(["ffmpeg", "-v", "error", "-i", f"tcp://127.0.0.1:{port}?listen=1", "-c", "copy",
                                 str(received)], stderr=subprocess.PIPE)
    time.sleep(1)

    result = subprocess.run([*VSR, "run", str(source), "-o", f"tcp://127.0.0.1:{port}", *FAST], capture_output=True)

    assert result.returncode == 0, result.stderr.decode()
    assert listener.wait(timeout=60) == 0
    assert counted_frames(received) == (6, (96, 64))
    assert stream_of(ffprobe(received, "-show_streams"), "audio")["codec_name"] == "aac"
