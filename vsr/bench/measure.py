"""Speed and memory of a model while it runs: seconds inside the model, peak RAM and GPU memory."""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

import torch
from torch import nn

MB = 2**20  # as top and nvidia-smi count


class ModelTimer:
    """Adds up the wall seconds spent inside `model.forward`, `model.forward_window` and `model.step`: the model
    alone.

    The pipeline around it (windows, conversions, scene-cut detection) is what the end-to-end figure adds.
    On a GPU each call is synchronised, so the time is the kernels', not the launch's.
    """

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.model = model
        self.device = device
        self.seconds = 0.0
        self._depth = 0  # a step that calls forward counts once
        self._wrapped: dict[str, object] = {}  # name: the instance attribute it had (a compiled step), or None

    def __enter__(self) -> ModelTimer:
        for name in ("forward", "forward_window", "step"):
            if callable(getattr(self.model, name, None)):
                self._wrapped[name] = vars(self.model).get(name)
                setattr(self.model, name, self._timed(getattr(self.model, name)))
        return self

    def __exit__(self, *exc) -> None:
        for name, own in self._wrapped.items():
            if own is None:
                delattr(self.model, name)  # the instance attribute goes; the class's method shows through again
            else:
                setattr(self.model, name, own)
        self._wrapped.clear()

    def _timed(self, method):
        @functools.wraps(method)
        def timed(*args, **kwargs):
            if self._depth:
                return method(*args, **kwargs)
            self._depth += 1
            self._synchronize()
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._synchronize()
                self.seconds += time.perf_counter() - start
                self._depth -= 1

        return timed

    def _synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class PeakMemory:
    """Peak resident memory of this process while the block ran, and peak GPU memory allocated by torch.

    On Linux the kernel's high-water mark (VmHWM) is reset on entry through /proc/self/clear_refs, so the
    peak is this block's alone. Elsewhere it is the process's peak so far, which `exact` says.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.exact = False
        self.ram_mb = 0.0
        self.gpu_mb: float | None = None

    def __enter__(self) -> PeakMemory:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.exact = True
        except OSError:
            self.exact = False
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc) -> None:
        self.ram_mb = _high_water_mark_mb() if self.exact else _lifetime_peak_mb()
        if self.device.type == "cuda":
            self.gpu_mb = torch.cuda.max_memory_allocated(self.device) / MB


def _high_water_mark_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / MB
    return _lifetime_peak_mb()


def _lifetime_peak_mb() -> float:
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak * 1024 / MB  # bytes on macOS, KiB on Linux
