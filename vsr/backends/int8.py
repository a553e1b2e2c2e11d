"""int8 forms of shipped networks: OpenVINO IR calibrated with NNCF (scripts/calibrate_int8.py), kept beside
the weights they were made from and tied to them by a fingerprint of the weights' tensors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from vsr.errors import VsrError


def int8_ir_path(weights: Path) -> Path:
    """vsr/weights/frvsr_natural_x4.safetensors -> vsr/weights/frvsr_natural_x4.int8.xml (its .bin beside)."""
    return weights.with_name(f"{weights.stem}.int8.xml")


def weights_fingerprint(weights: Path) -> str:
    """A hash of the tensors (names, dtypes, shapes, values), not of the file: metadata such as the training
    step may be added to a shipped file without orphaning the int8 network made from its weights."""
    from safetensors import safe_open

    digest = hashlib.sha256()
    with safe_open(str(weights), "pt") as file:
        for key in sorted(file.keys()):
            tensor = file.get_tensor(key).contiguous()
            digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
            digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:16]


def int8_ir_for(weights: str | Path | None, model_name: str) -> Path:
    """The int8 IR made from exactly these weights; a one-line error where there is none."""
    if weights is None:
        raise VsrError(None, f"--precision int8: {model_name} has no weights to have an int8 form of")
    path = int8_ir_path(Path(weights))
    if not path.exists() or not path.with_suffix(".bin").exists():
        raise VsrError(None, f"--precision int8: no int8 form of {Path(weights).name} ships with vsr (int8 is offered "
                             "where it costs at most 0.1 dB; see the model's card); use auto, bf16 or fp32")
    import openvino as ov

    made_from = ov.Core().read_model(str(path)).get_rt_info(["vsr", "weights_fingerprint"]).astype(str)
    if made_from != weights_fingerprint(Path(weights)):
        raise VsrError(path, "was calibrated for other weights than these; run scripts/calibrate_int8.py again")
    return path
