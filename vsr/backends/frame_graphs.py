"""Small wrappers that give a model the one-frame signature an exporter traces (OpenVINO, ONNX)."""

from __future__ import annotations

import torch
from torch import nn


class SingleFrame(nn.Module):
    """A (N, T, C, H, W) per-frame model called on one (N, C, H, W) frame."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        return self.model(frame[:, None])[:, 0]
