"""Which engine runs the model, and in which precision: decided once, where the model is built.

On a CPU, OpenVINO (made for exactly this) when it is installed and the model has an OpenVINO form; on a
GPU, and for everything else, torch. The pipeline never asks which one it got.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vsr.errors import VsrError

BACKENDS = ("auto", "torch", "openvino")


@dataclass(frozen=True)
class Engine:
    """The model ready to run, what runs it, and how."""

    model: nn.Module
    backend: str  # torch or openvino
    description: str  # e.g. "OpenVINO on the CPU, bf16 reconstruction (fp32 motion)"
    note: str = ""  # why a requested engine was not used


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def cpu_computes_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic in hardware (AVX512-BF16 or AMX); elsewhere bf16 is emulated, slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def openvino_precision(precision: str) -> str:
    """auto: bf16 where the CPU computes it natively, else fp32."""
    if precision == "auto":
        return "bf16" if cpu_computes_bf16() else "fp32"
    return precision


def machine_summary() -> str:
    """What `vsr run --device auto --backend auto` uses here, in one line, for `vsr models`."""
    cuda = torch.version.cuda
    build = f"torch {torch.__version__} ({'CUDA ' + cuda + ' build' if cuda else 'CPU build'})"
    if torch.cuda.is_available():
        return f"{build}; device auto: cuda ({torch.cuda.get_device_name(0)}); backend auto: torch"
    gpu_note = "; no CUDA GPU visible to this torch" if cuda else "; a GPU needs a CUDA build (README, 'On a GPU')"
    if openvino_installed():
        import openvino

        engine = f"OpenVINO {openvino.get_version().split('-')[0]} on the CPU, {openvino_precision('auto')} where it can"
    else:
        engine = "torch on the CPU (OpenVINO is not installed)"
    return f"{build}; device auto: cpu{gpu_note}; backend auto: {engine}"


def choose_engine(model: nn.Module, backend: str, device: torch.device, precision: str) -> Engine:
    """The model on the engine asked for; `auto` takes OpenVINO on a CPU where it can, torch elsewhere."""
    if backend not in BACKENDS:
        raise VsrError(None, f"unknown backend '{backend}' ({', '.join(BACKENDS)})")
    if backend == "openvino" and device.type != "cpu":
        raise VsrError(None, "--backend openvino runs on the CPU; use --backend torch (or auto) with a GPU")
    if backend == "openvino" and not openvino_installed():
        raise VsrError(None, "--backend openvino needs OpenVINO: pip install openvino")
    if precision == "int8" and (backend == "torch" or device.type != "cpu" or not openvino_installed()):
        raise VsrError(None, "--precision int8 runs on OpenVINO on the CPU: leave --backend at auto (or openvino) "
                             "and --device at auto (or cpu)")
    if backend == "torch" or device.type != "cpu" or not openvino_installed():
        return _torch_engine(model, device, precision)
    from vsr.backends.openvino_models import openvino_version_of
    from vsr.models.frvsr import FRVSR

    if precision == "int8" and not isinstance(model, FRVSR):
        raise VsrError(None, f"--precision int8: {type(model).__name__} has no int8 form; use auto, bf16 or fp32")
    chosen = openvino_precision(precision)
    wrapped = openvino_version_of(model, chosen)
    if wrapped is None:  # interpolation baselines have nothing to run faster, so they need no note
        note = f"{type(model).__name__} has no OpenVINO form yet: it runs on torch" if _has_weights(model) else ""
        return _torch_engine(model, device, precision, note)
    return Engine(wrapped, "openvino", f"OpenVINO on the CPU, {_describe(wrapped, chosen)}")


def _torch_engine(model: nn.Module, device: torch.device, precision: str, note: str = "") -> Engine:
    return Engine(model, "torch", f"torch on {device.type} ({precision})", note)


def _has_weights(model: nn.Module) -> bool:
    return any(True for _ in model.parameters())


def _describe(wrapped: nn.Module, precision: str) -> str:
    if hasattr(wrapped, "history"):
        flow = " (DIS flow)" if wrapped.model.fnet is None else ""
        return f"{precision} reconstruction, fp32 motion{flow}"
    if hasattr(wrapped, "deform_align"):
        return f"{precision} features and reconstruction, fp32 flow, alignment on torch"
    return precision
