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


def run_threaded(source: Iterable, stage: Callable[[Iterable], Iterable[T]], queue_size: int = 8) -> Iterator[T]:
    """Yield stage(source) in the caller's thread, with source and stage each running in a thread of its own."""
    stop = threading.Event()
    errors: list[BaseException] = []
    decoded, processed = _Channel(queue_size, stop), _Channel(queue_size, stop)

    def pump(items: Callable[[], Iterable], into: _Channel) -> None:
        try:
            for item in items():
                into.put(item)
            into.put(_END)
        except Stopped:
            pass
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            errors.append(error)
            stop.set()

    threads = [
        threading.Thread(target=pump, args=(lambda: source, decoded), name="vsr-decode", daemon=True),
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
            thread.join()
    if errors:
        raise errors[0]
