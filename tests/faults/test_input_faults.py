"""Fault corpus, inputs: sources that are damaged, huge, or not files at all are refused with one line before
any work, in `run` and in `probe` (issue 17, items 10 and 14), and `--strict` turns decoding problems into
errors."""

from __future__ import annotations

import os
import resource
import struct
import zlib

import cv2
import numpy as np
import pytest

from checks import assert_one_line_error, partial_files, run_vsr
from conftest import make_clip, make_frame_folder

FAST = ("--model", "bicubic", "--scale", "2", "--quiet")


def png_with_header(path, width: int, height: int) -> None:
    """A PNG whose header declares width x height, with one tiny compressed row: a damaged or hostile file."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("command", ["run", "probe"])
def test_png_header_declaring_60000x60000_is_refused_by_size(tmp_path, run_cli, command):
    folder = tmp_path / "frames"
    folder.mkdir()
    png_with_header(folder / "0001.png", 60000, 60000)
    args = ("run", folder, "-o", tmp_path / "o.mp4", *FAST) if command == "run" else ("probe", folder)
    assert_one_line_error(run_cli(*args), "0001.png", "60000x60000")
    assert not (tmp_path / "o.mp4").exists()


def test_later_frame_with_a_huge_header_is_refused_before_decoding(tmp_path, run_cli):
    folder = make_frame_folder(tmp_path / "frames", frames=2)
    png_with_header(folder / "f2.png", 50000, 50000)
    assert_one_line_error(run_cli("run", folder, "-o", tmp_path / "o.mp4", *FAST), "f2.png", "50000x50000")
    assert partial_files(tmp_path) == []


def limit_memory(gigabytes: float):
    def apply() -> None:
        limit = int(gigabytes * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


@pytest.mark.parametrize("command", ["run", "probe"])
def test_12000x12000_frame_under_a_memory_limit_is_refused_by_size(tmp_path, command):
    folder = tmp_path / "big"
    folder.mkdir()
    cv2.imwrite(str(folder / "0001.png"), np.zeros((12000, 12000, 3), np.uint8))
    args = ("run", folder, "-o", tmp_path / "o.mp4", *FAST) if command == "run" else ("probe", folder)
    result = run_vsr(*args, preexec_fn=limit_memory(3.5), timeout=120)
    assert_one_line_error(result, "0001.png" if command == "probe" else "big", "12000x12000", "available")
    assert not (tmp_path / "o.mp4").exists() and partial_files(tmp_path) == []


def test_output_frames_too_large_for_memory_are_refused_before_decoding(tmp_path, run_cli):
    folder = tmp_path / "wide"
    folder.mkdir()
    cv2.imwrite(str(folder / "0001.png"), np.zeros((16, 16384, 3), np.uint8))
    for index in range(2, 4):
        os.link(folder / "0001.png", folder / f"{index:04d}.png")
    from vsr.io import memory

    original = memory.available_memory
    memory.available_memory = lambda: 2**26  # as on a machine with 64 MB free
    try:
        result = run_cli("run", folder, "-o", tmp_path / "o.mkv", "--model", "bicubic", "--scale", "4", "--quiet")
    finally:
        memory.available_memory = original
    assert_one_line_error(result, "65536x64", "0.1 GB is available", "--tile")


def test_fifo_input_is_not_a_regular_file(tmp_path, run_cli):
    fifo = tmp_path / "in.mp4"
    os.mkfifo(fifo)  # opening it would block for ever: it must be refused without opening
    assert_one_line_error(run_cli("run", fifo, "-o", tmp_path / "o.mp4", *FAST), str(fifo), "not a regular file")
    assert_one_line_error(run_cli("probe", fifo), "not a regular file")


def test_folder_named_like_a_video_without_frames(tmp_path, run_cli):
    folder = tmp_path / "movie.mp4"
    folder.mkdir()
    assert_one_line_error(run_cli("run", folder, "-o", tmp_path / "o.mkv", *FAST), str(folder), "no PNG frames")


def test_mp4_without_its_moov_atom(tmp_path, run_cli):
    whole = make_clip(tmp_path / "whole.mp4", frames=10, audio=False)
    data = whole.read_bytes()
    moov = data.find(b"moov")
    assert moov > 0
    cut = tmp_path / "no_moov.mp4"
    cut.write_bytes(data[: moov - 4])  # as a recording that stopped before the index was written
    assert_one_line_error(run_cli("run", cut, "-o", tmp_path / "o.mp4", *FAST), str(cut))
    assert_one_line_error(run_cli("probe", cut), str(cut))


def test_mixed_size_pngs(tmp_path, run_cli):
    folder = make_frame_folder(tmp_path / "frames", frames=3, width=40, height=24)
    cv2.imwrite(str(folder / "f1.png"), np.zeros((30, 30, 3), np.uint8))
    assert_one_line_error(run_cli("run", folder, "-o", tmp_path / "o.mp4", *FAST), "f1.png", "30x30")
    assert not (tmp_path / "o.mp4").exists() and partial_files(tmp_path) == []


def test_png_that_is_not_a_png(tmp_path, run_cli):
    folder = make_frame_folder(tmp_path / "frames", frames=2)
    (folder / "f1.png").write_bytes(os.urandom(500))
    assert_one_line_error(run_cli("run", folder, "-o", tmp_path / "o.mp4", *FAST), "f1.png", "not a PNG")


@pytest.fixture
def truncated(tmp_path):
    whole = make_clip(tmp_path / "whole.mkv", frames=30, audio=False)
    cut = tmp_path / "cut.mkv"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    return cut


def test_truncated_source_exits_0_with_a_warning(truncated, tmp_path, run_cli):
    result = run_cli("run", truncated, "-o", tmp_path / "o.mkv", *FAST)
    assert result.exit_code == 0 and (tmp_path / "o.mkv").exists()
    assert "warning" in result.stderr and str(truncated) in result.stderr


def test_strict_refuses_a_truncated_source_and_writes_nothing(truncated, tmp_path, run_cli):
    result = run_cli("run", truncated, "-o", tmp_path / "o.mkv", "--strict", *FAST)
    assert_one_line_error(result, str(truncated), "--strict")
    assert not (tmp_path / "o.mkv").exists() and partial_files(tmp_path) == []


def test_strict_passes_a_clean_source(tmp_path, run_cli):
    clip = make_clip(tmp_path / "clean.mp4", frames=4)
    assert run_cli("run", clip, "-o", tmp_path / "o.mp4", "--strict", *FAST).exit_code == 0


def test_unreadable_input_names_the_reason(tmp_path, run_cli):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    clip = make_clip(tmp_path / "locked.mp4", frames=2, audio=False)
    clip.chmod(0)
    assert_one_line_error(run_cli("run", clip, "-o", tmp_path / "o.mp4", *FAST), str(clip))


def test_png_with_damaged_pixel_data_is_one_line_without_libpngs_own(tmp_path):
    folder = make_frame_folder(tmp_path / "frames", frames=2)
    data = bytearray((folder / "f1.png").read_bytes())
    data[60:80] = b"x" * 20  # inside the compressed pixels: the header is fine, decoding fails
    (folder / "f1.png").write_bytes(bytes(data))
    result = run_vsr("run", folder, "-o", tmp_path / "o.mp4", *FAST)
    assert_one_line_error(result, "f1.png", "cannot be read")
    assert partial_files(tmp_path) == []
