"""Cutting an endless frame sequence into windows a bidirectional model can take, seamlessly.

Each window holds up to `context` frames on each side of its core; only the core's outputs are kept, so a
model that needs M frames of context gives the same frames chunked as on the whole sequence. A model that
carries its forward state from one window to the next needs no frames before the core (`before=0`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Window(Generic[T]):
    items: list[T]
    core_start: int
    core_stop: int

    @property
    def core(self) -> list[T]:
        return self.items[self.core_start:self.core_stop]


def chunk_windows(items: Iterable[T], size: int, context: int = 0, before: int | None = None) -> Iterator[Window[T]]:
    """Windows whose cores, in order, cover every item once, with `context` items after each core and `before`
    (default: `context`) before it; holds at most size + context + before items."""
    before = context if before is None else before
    if size < 1 or context < 0 or before < 0:
        raise ValueError(f"window size must be >= 1 and context >= 0, got {size} and {context}, {before} before")
    source = iter(items)
    buffer: list[T] = []
    left = 0  # items at the start of the buffer that are context, already emitted
    exhausted = False
    while True:
        while not exhausted and len(buffer) < left + size + context:
            try:
                buffer.append(next(source))
            except StopIteration:
                exhausted = True
        core_length = min(size, len(buffer) - left)
        if core_length <= 0:
            return
        yield Window(list(buffer), left, left + core_length)
        keep_from = max(0, left + core_length - before)
        buffer = buffer[keep_from:]
        left = left + core_length - keep_from
