"""Running pieces of a torch model with OpenVINO, Intel's inference runtime for CPUs.

A piece is exported once with dynamic height and width and kept on disk as OpenVINO IR; each frame size
then gets its own compiled model, which OpenVINO's model cache also keeps on disk, so that the second run of
a size starts at once. Tensors go in and come out as torch tensors (numpy views, no copies).
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

import vsr

OPENVINO_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


def cache_dir() -> Path:
    """VSR_CACHE_DIR, else $XDG_CACHE_HOME/vsr, else ~/.cache/vsr."""
    if os.environ.get("VSR_CACHE_DIR"):
        return Path(os.environ["VSR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vsr"


def _core():
    import openvino as ov

    core = ov.Core()
    folder = cache_dir() / "openvino" / "compiled"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        core.set_property({"CACHE_DIR": str(folder)})
    except OSError:
        pass  # no writable cache: every run compiles afresh, which is slower but correct
    return core


class CompiledPart:
    """`module(*inputs)` on OpenVINO: inputs (N, C, H, W) float32 with any H and W, one compiled model per size.

    `precision` is fp32, bf16 or fp16: OpenVINO's inference precision for the whole piece, so only pieces
    that tolerate it may be given bf16 (convolution stacks do; flow and warping coordinates do not).
    """

    def __init__(self, module: nn.Module, examples: tuple[torch.Tensor, ...], name: str, precision: str,
                 threads: int | None = None) -> None:
        self.name = name
        self.precision = precision
        self.threads = threads or torch.get_num_threads()
        self._module, self._examples = module.eval(), examples
        self._core = None
        self._model = None  # exported (or read from the cache) at the first call: checks of the input come first
        self._requests: dict[tuple, object] = {}
        self._lock = threading.Lock()
        self._ir_path: Path | None = None

    def _load_or_export(self, module: nn.Module, examples: tuple[torch.Tensor, ...]):
        import openvino as ov

        path = cache_dir() / "openvino" / "ir" / f"{self.name}-{_fingerprint(module)}.xml"
        if path.exists():
            try:
                return self._core.read_model(str(path))
            except RuntimeError:
                pass  # a damaged cache entry: export again over it
        dynamic = [ov.PartialShape([example.shape[0], example.shape[1], -1, -1]) for example in examples]
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notes on Python shape arithmetic
            model = ov.convert_model(module, example_input=examples, input=dynamic)
        try:  # weights first, then the .xml that names them: a reader never sees an .xml without its .bin
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.stem}.{os.getpid()}.xml")
            ov.save_model(model, str(temporary), compress_to_fp16=False)
            os.replace(temporary.with_suffix(".bin"), path.with_suffix(".bin"))
            os.replace(temporary, path)
        except (OSError, RuntimeError):
            pass  # no cache this time: the next run exports again
        return model

    @classmethod
    def from_ir(cls, path: Path, name: str, precision: str, threads: int | None = None) -> CompiledPart:
        """A piece read from OpenVINO IR made elsewhere (an int8 network calibrated with NNCF); `precision` is
        then the precision of the operations left unquantized."""
        part = cls(nn.Identity(), (), name, precision, threads)
        part._ir_path = path
        return part

    def exported(self):
        """The piece as an OpenVINO model (exported, or read from the cache), for tools such as NNCF."""
        with self._lock:
            return self._loaded()

    def _loaded(self):
        """The OpenVINO model, read or exported at the first call (the caller holds the lock)."""
        if self._model is None:
            self._core = _core()
            if self._ir_path is not None:
                self._model = self._core.read_model(str(self._ir_path))
            else:
                self._model = self._load_or_export(self._module, self._examples)
        return self._model

    def request_for(self, shapes: tuple[tuple[int, ...], ...]):
        """The inference request of the model compiled for these input shapes, made at the first call."""
        with self._lock:
            if shapes not in self._requests:
                model = self._loaded().clone()
                model.reshape({index: list(shape) for index, shape in enumerate(shapes)})
                config = {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISION[self.precision],
                          "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": self.threads}
                self._requests[shapes] = self._core.compile_model(model, "CPU", config).create_infer_request()
            return self._requests[shapes]

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        arrays = [np.ascontiguousarray(tensor.detach().float().cpu().numpy()) for tensor in inputs]
        request = self.request_for(tuple(array.shape for array in arrays))
        request.infer(arrays)
        # A copy: the request reuses its output buffer at the next call, while this frame lives on as state.
        return torch.from_numpy(np.array(request.get_output_tensor(0).data, copy=True))


@functools.cache
def _network_code() -> str:
    """A digest of the code that defines the networks (vsr/models, vsr/ops, the backends)."""
    root = Path(vsr.__file__).parent
    digest = hashlib.sha256()
    for path in sorted([*root.glob("models/*.py"), *root.glob("ops/*.py"), *root.glob("backends/*.py")]):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _fingerprint(module: nn.Module) -> str:
    """Changes with the weights, the module's class, the network code and OpenVINO's version: a stale export
    never loads."""
    import openvino as ov

    digest = hashlib.sha256(f"{type(module).__qualname__}|{_network_code()}|{ov.__version__}".encode())
    for key, tensor in module.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
