"""Decode, inference and encode in separate threads joined by bounded queues.

The codec and the model then work at the same time, and the queues' bounds keep memory flat however long
the video. An exception in any stage stops all of them and is raised again in the caller's thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()
POLL_SECONDS = 0.1
JOIN_SECONDS = 5.0  # how long a stopped pipeline waits for a source blocked in a read


class Stopped(Exception):
    """Raised inside a stage when another stage failed or the caller gave up."""


class _Channel:
    """A bounded queue whose put and get give up when the pipeline is stopping."""

    def __init__(self, size: int, stop: threading.Event) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=size)
        self._stop = stop

    def put(self, item) -> None:
        while True:
            if self._stop.is_set():
                raise Stopped
            try:
                self._queue.put(item, timeout=POLL_SECONDS)
                return
            except queue.Full:
                continue

    def full(self) -> bool:
        return self._queue.full()

    def __iter__(self) -> Iterator:
        while True:
            if self._stop.is_set():
                raise Stopped
            try:
                item = self._queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if item is _END:
                return
            yield item


class Overload:
    """What a live source does when the stage cannot keep up: the queue after the source is full, and `behind()`
    says the output runs slower than the source (a pipe fed faster than real time fills the queue too).

    `drop` skips the source's item instead of waiting for room, so the output stays live; otherwise the source
    waits and the output falls behind. `on_first` is called once, from the source's thread, when it first happens.
    """

    def __init__(self, drop: bool, behind: Callable[[], bool], on_first: Callable[[], None] | None = None) -> None:
        self.drop = drop
        self.behind = behind
        self.on_first = on_first
        self.happened = False
        self.dropped = 0

    def skips(self) -> bool:
        """Called when the queue is full: whether to drop the item (after saying so the first time)."""
        if not self.behind():
            return False
        if not self.happened:
            self.happened = True
            if self.on_first is not None:
                self.on_first()
        if self.drop:
            self.dropped += 1
        return self.drop


def run_threaded(source: Iterable, stage: Callable[[Iterable], Iterable[T]], queue_size: int = 8,
                 overload: Overload | None = None) -> Iterator[T]:
    """Yield stage(source) in the caller's thread, with source and stage each running in a thread of its own.

    `overload` (for live sources) watches the queue after the source, and drops items there if it says so.
    """
    stop = threading.Event()
    errors: list[BaseException] = []
    decoded, processed = _Channel(queue_size, stop), _Channel(queue_size, stop)

    def pump(items: Callable[[], Iterable], into: _Channel, watch: Overload | None = None) -> None:
        try:
            for item in items():
                if watch is not None and into.full() and watch.skips():
                    continue
                into.put(item)
            into.put(_END)
        except Stopped:
            pass
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            errors.append(error)
            stop.set()

    threads = [
        threading.Thread(target=pump, args=(lambda: source, decoded, overload), name="vsr-decode", daemon=True),
        threading.Thread(target=pump, args=(lambda: stage(decoded), processed), name="vsr-infer", daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield from processed
    except Stopped:
        pass
    finally:
        stop.set()
        for thread in threads:
            # A live source can block in a read (a pipe, a socket) that no flag interrupts; it is a daemon
            # thread, and the process ends without it.
            thread.join(timeout=None if thread.name != "vsr-decode" else JOIN_SECONDS)
    if errors:
        raise errors[0]
