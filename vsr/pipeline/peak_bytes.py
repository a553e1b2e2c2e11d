"""The peak memory of a model call, measured without running it: on shape-only ("fake") tensors.

A fake tensor has a shape, a dtype and a device but no data, so a model runs through it in the time its Python
takes, whatever the frame size, and allocates nothing. Every tensor the call makes is seen here as it is made,
and dropped when its storage is freed: the peak of the live bytes is what the call would need on the device,
apart from the scratch space of single operators (convolution workspaces), which a budget must leave room for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class _LiveBytes(TorchDispatchMode):
    """Adds up the bytes of the storages that operators create, while they live; keeps the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.now = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for key, (ref, size) in list(self.live.items()):
            if ref.expired():
                del self.live[key]
                self.now -= size
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                ref, size = StorageWeakRef(storage), storage.nbytes()
                if ref.cdata not in self.live and size:  # views and in-place results share a storage
                    self.live[ref.cdata] = (ref, size)
                    self.now += size
        self.peak = max(self.peak, self.now)
        return out


@dataclass(frozen=True)
class Usage:
    peak: int  # the most bytes live at once
    last: int  # bytes live at the call's last operation, when what it keeps for every frame is still held


def measure_bytes(call: Callable[[], object]) -> Usage:
    """Bytes of the tensors `call` creates (its inputs included, if it makes them), on fake tensors.

    `call` runs inside the measurement: tensors it creates are fake, and real ones it meets (the model's
    weights) are taken as they are and not counted, since they are in memory already.
    """
    with FakeTensorMode(allow_non_fake_inputs=True), _LiveBytes() as live:
        call()
    return Usage(live.peak, live.now)


def peak_bytes(call: Callable[[], object]) -> int:
    """The peak of `measure_bytes`."""
    return measure_bytes(call).peak
