"""Frames too large for this machine are refused by their size, before a byte of them is decoded.

A PNG header or a video stream can declare 60000x60000 pixels; decoding that, or upscaling a 12000x12000
frame x4, would end in the out-of-memory killer or a MemoryError traceback minutes later.
"""

from __future__ import annotations

import resource
import struct
from pathlib import Path

from vsr.errors import VsrError

# Beyond this no decoder we use (OpenCV caps images at 2**30 pixels, FFmpeg at 16384 a side for most
# codecs) will take a frame, whatever the memory.
MAX_FRAME_PIXELS = 2**30
# What the pipeline holds per output pixel of one frame: the float32 model output, its 8- or 16-bit image,
# the encoder's YUV copy, and the model's last full-size layers; a rough floor, not an exact need.
BYTES_PER_OUTPUT_PIXEL = 32
BYTES_PER_INPUT_PIXEL = 24  # the decoded frame, its RGB copy and the float32 model input


def available_memory() -> int:
    """Bytes this process can still allocate: free RAM, within the cgroup's and the address-space limits."""
    limits = [_meminfo_available()]
    limits.append(_cgroup_headroom())
    limits.append(_address_space_headroom())
    known = [limit for limit in limits if limit is not None]
    return min(known) if known else 2**62


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_headroom() -> int | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def _address_space_headroom() -> int | None:
    """What `ulimit -v` leaves: the soft RLIMIT_AS minus the address space already in use."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return max(0, soft - int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return soft


def gigabytes(count: int) -> str:
    return f"{count / 2**30:.1f} GB"


def check_decodable(path: Path, width: int, height: int, bytes_per_pixel: int = 3) -> None:
    """Refuse a frame whose declared size cannot be decoded here, before decoding it."""
    pixels = width * height
    if pixels > MAX_FRAME_PIXELS:
        raise VsrError(path, f"declares frames of {width}x{height}, beyond the {MAX_FRAME_PIXELS:,} pixels any "
                             "decoder here takes; the file is damaged or not meant for video")
    need = pixels * BYTES_PER_INPUT_PIXEL * max(1, bytes_per_pixel // 3)
    free = available_memory()
    if need > free:
        raise VsrError(path, f"frames of {width}x{height} need about {gigabytes(need)} of memory to decode, and "
                             f"{gigabytes(free)} is available")


def check_upscalable(path: Path, width: int, height: int, scale: int, tile: int) -> None:
    """Refuse a run whose single output frame cannot fit in memory, before any frame is decoded."""
    out_width, out_height = width * scale, height * scale
    need = out_width * out_height * BYTES_PER_OUTPUT_PIXEL
    if tile:
        need = out_width * out_height * 8  # tiles bound the model's layers; the whole frame is still assembled
    free = available_memory()
    if need > free:
        raise VsrError(path, f"frames of {width}x{height} upscaled x{scale} are {out_width}x{out_height}: one "
                             f"needs about {gigabytes(need)} of memory, and {gigabytes(free)} is available"
                             + ("" if tile else "; --tile lowers it"))


def png_size(path: Path) -> tuple[int, int, int]:
    """(width, height, bit depth) from a PNG's header, read without decoding; VsrError if it is no PNG."""
    try:
        with path.open("rb") as file:
            head = file.read(33)
    except OSError as error:
        raise VsrError(path, f"cannot be read ({error.strerror or error})") from None
    if len(head) < 33 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise VsrError(path, "is not a PNG image (no PNG header)")
    width, height, depth = struct.unpack(">IIB", head[16:25])
    return width, height, depth
