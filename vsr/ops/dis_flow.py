"""Optical flow by OpenCV's DIS (Kroeger et al., ECCV 2016) for torch frames: the motion of `frvsr`.

Why a classical flow: our FNets, trained inside FRVSR with the warping loss on a CPU budget, never learned
motion (a constant output for any pair), so the recurrence carried misaligned history and the SR network
learned to ignore it. DIS at its medium preset aligns the low-res validation frames to 36.6 dB against 27.8
with no motion (sam2_juggle_720p at 320x180), in 16 ms a frame pair on one core.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

# OpenCV 5.0's DIS fails on frames under 16 rows: it raises or, depending on the width, crashes the process with
# a segfault (12x200 and 15x300 crash, 15x640 raises); it also raises on frames under 8 px wide. `--stabilize`
# and `--refine` estimate flow at the input's size, so an input under 16 lines stopped them (a 320x12 input
# raised). Smaller frames are padded to this.
MIN_SIDE = 16


def dis_flow(current: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """Frames (N, 3, H, W) float RGB in [0, 1] -> flow (N, 2, H, W) float32 in pixels (dx, dy) with
    current(p) ~ previous(p + flow): the flow that backward-warps `previous` onto `current`. No gradient."""
    flows = [_pair_flow(_grey(a), _grey(b)) for a, b in zip(current.detach(), previous.detach())]
    return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).to(current.device)


def _grey(frame: torch.Tensor) -> np.ndarray:
    """(3, H, W) float RGB in [0, 1] -> (H, W) uint8 luma (BT.601 weights, as OpenCV's RGB2GRAY)."""
    rgb = frame.float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def _pair_flow(current: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """DIS on two grey frames, padded (edge pixels repeated) to MIN_SIDE on each side and cropped back."""
    height, width = current.shape
    below, right = max(MIN_SIDE - height, 0), max(MIN_SIDE - width, 0)
    if below or right:
        current, previous = (cv2.copyMakeBorder(frame, 0, below, 0, right, cv2.BORDER_REPLICATE)
                             for frame in (current, previous))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(current, previous, None)[:height, :width]


class DisFlow(nn.Module):
    """`dis_flow` where a flow network is expected (`vsr run --stabilize`): (current, previous) -> flow."""

    def forward(self, current: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        return dis_flow(current, previous)
