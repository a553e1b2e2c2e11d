"""Timing calls side by side on a shared, noisy machine: interleaved rounds, medians."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved_medians(calls: dict[str, Callable[[], object]], rounds: int,
                        warm_up: bool = True) -> dict[str, float]:
    """Median seconds of each call over `rounds` rounds, each round running every call once in turn, so that
    load from other work on the machine falls on all of them alike; with `warm_up`, one untimed call of each
    first (first-call costs out of the timings)."""
    if warm_up:
        for call in calls.values():
            call()
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in seconds.items()}
