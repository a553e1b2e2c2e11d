"""Reading weight files safely: safetensors, or PyTorch checkpoints with weights_only=True (no unpickling)."""

from __future__ import annotations

from pathlib import Path

import torch

from vsr.errors import VsrError

# Where the reference implementations nest the weights inside a checkpoint, most specific first.
NESTING_KEYS = ("params_ema", "params", "state_dict")


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.is_dir():
        raise VsrError(path, "is a folder where a weights file should be")
    if not path.exists():
        raise VsrError(path, "no such weights file")
    if not path.is_file():
        raise VsrError(path, "is not a regular file (a pipe, socket or device); give a weights file")
    if path.suffix == ".safetensors":
        state = _load_safetensors(path)
    else:
        state = _load_torch(path)
    for key in NESTING_KEYS:
        if isinstance(state.get(key), dict):
            state = state[key]
            break
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise VsrError(path, "checkpoint holds no tensors")
    return tensors


def _load_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise VsrError(path, f"not a valid safetensors file ({error})") from None


def _load_torch(path: Path) -> dict:
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - on garbage the restricted unpickler raises almost anything
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise VsrError(path, f"not a safetensors or PyTorch checkpoint ({reason})") from None
    if not isinstance(state, dict):
        raise VsrError(path, f"checkpoint holds a {type(state).__name__}, not a state dict")
    return state
