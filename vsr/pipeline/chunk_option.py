"""`--chunk`: "auto" or a number of frames. Apart from window_size.py, which imports torch, so that the
command line can read the option without paying for torch (the bicubic path never needs it)."""

from __future__ import annotations

AUTO = "auto"

Chunk = int | str  # a number of core frames, or "auto"


def parse_chunk(value: Chunk) -> Chunk:
    """'auto' or a whole number >= 1 of frames; ValueError, saying so, for anything else."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    problem = f"{value!r} is neither auto nor a whole number of frames, at least 1"
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(problem) from None
    if number < 1:
        raise ValueError(problem)
    return number
