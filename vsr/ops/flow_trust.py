"""Where a flow between two frames can be trusted: shared by the refiner's coupling and the output stabiliser.

Both carry something from the previous frame along the flow, and both must not carry it where the flow is
wrong: where content appears (occlusions), leaves the frame, or is mismatched. Three checks, multiplied:
- inside: the flow points into the previous frame;
- photometric: the previous frame, warped, looks like this one (mean absolute RGB error over 3x3 pixels),
  at full size (`photometric_trust`) or at the flow's size (`content_error`, for a stage whose job is to
  replace fine detail that differs between frames, so that such detail must not count as a mismatch);
- forward-backward: following the flow to the previous frame and the reverse flow back lands where it
  started (Sundaram et al., ECCV 2010; UnFlow's thresholds), which fails at occlusions even where colours
  happen to match.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vsr.models.spynet import resize_flow
from vsr.ops.flow_warp import flow_warp, pixel_grid

TRUST_ERROR = 0.03  # photometric error (of [0, 1] pixels) at which the flow is trusted e^-1 as much
# Forward-backward: consistent where |f + b(x + f)|^2 < CONSISTENCY_RELATIVE * (|f|^2 + |b(x + f)|^2)
# + CONSISTENCY_ABSOLUTE, in pixels of the images the flows were estimated on.
CONSISTENCY_RELATIVE = 0.01
CONSISTENCY_ABSOLUTE = 0.5


def estimate_flow(flow_net: nn.Module, current: torch.Tensor, previous: torch.Tensor,
                  shrink: int) -> torch.Tensor:
    """Flow from `current` to `previous` (N, 3, H, W) at full size, estimated at 1/shrink size in fp32.

    `flow_net` maps (current, previous) to that flow (DisFlow, or a SPyNet). A VSR output has no more motion
    detail than its low-res input, and the flow costs shrink^2 times less on frames shrunk that much.
    """
    return resize_flow(flow_net(*shrunk(current, previous, shrink)), current.shape[-2:])


def shrunk(current: torch.Tensor, previous: torch.Tensor, shrink: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Both frames area-averaged to 1/shrink size (at least one pixel), in fp32."""
    return shrink_frame(current, shrink), shrink_frame(previous, shrink)


def shrink_frame(frame: torch.Tensor, shrink: int) -> torch.Tensor:
    """A frame area-averaged to 1/shrink size (at least one pixel), in fp32."""
    height, width = frame.shape[-2:]
    return F.interpolate(frame.float(), size=(max(height // shrink, 1), max(width // shrink, 1)), mode="area")


def photometric_trust(current: torch.Tensor, previous: torch.Tensor, flow: torch.Tensor,
                      error_scale: float = TRUST_ERROR, warped: torch.Tensor | None = None) -> torch.Tensor:
    """(N, 1, H, W) in [0, 1]: high where the warped previous frame matches this one and lies in the frame.

    `warped`, if the caller has it already, is `previous` warped along `flow` (border padding)."""
    if warped is None:
        warped = flow_warp(previous, flow, padding_mode="border")
    return inside_frame(flow) * _match(current, warped, error_scale)


def content_error(current: torch.Tensor, warped: torch.Tensor, shrink: int) -> torch.Tensor:
    """(N, 1, h, w): the photometric error of both frames area-averaged to 1/shrink size; `error_trust` makes
    it a trust.

    `warped` is the previous frame warped onto this one. At 1/shrink size (a VSR model's input size) the
    texture a per-frame model invents, different in every frame, averages out, while what the flow gets wrong
    (an occlusion, a misplaced object) stays. It cannot see where the flow leaves the frame: multiply by
    `inside_frame`."""
    return _error(*shrunk(current, warped, shrink))


def error_trust(error: torch.Tensor, error_scale: float | torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The trust of `error` (as `_trust`), resized to `size`."""
    return F.interpolate(_trust(error, error_scale), size=size, mode="bilinear", align_corners=False)


def inside_frame(flow: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) float, 1 where the flow (N, 2, H, W) points into the frame."""
    height, width = flow.shape[-2:]
    positions = pixel_grid(height, width, flow.device) + flow.float()
    return ((positions[:, :1] >= 0) & (positions[:, :1] <= width - 1)
            & (positions[:, 1:] >= 0) & (positions[:, 1:] <= height - 1)).float()


def _match(current: torch.Tensor, warped: torch.Tensor, error_scale: float) -> torch.Tensor:
    """The trust of the mean absolute RGB error over 3x3 pixels."""
    return _trust(_error(current, warped), error_scale)


def _trust(error: torch.Tensor, error_scale: float | torch.Tensor) -> torch.Tensor:
    """exp(-(error / error_scale)^2): 1 where the frames match, falling off past `error_scale`."""
    return torch.exp(-(error / error_scale) ** 2)


def _error(current: torch.Tensor, warped: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W): the mean absolute RGB error over 3x3 pixels."""
    error = (current - warped).abs().mean(dim=1, keepdim=True)
    return F.avg_pool2d(error, 3, stride=1, padding=1, count_include_pad=False)


def forward_backward_consistent(forward: torch.Tensor, backward: torch.Tensor,
                                returned: torch.Tensor | None = None,
                                absolute: float = CONSISTENCY_ABSOLUTE) -> torch.Tensor:
    """(N, 1, H, W) float, 1 where `forward` (current -> previous) and `backward` (previous -> current) agree.

    `returned`, if the caller has it already, is `backward` warped along `forward` (border padding);
    `absolute` is the tolerance in squared pixels that UnFlow sets to 0.5."""
    if returned is None:
        returned = flow_warp(backward, forward, padding_mode="border")
    mismatch = (forward + returned).pow(2).sum(dim=1, keepdim=True)
    bound = CONSISTENCY_RELATIVE * (forward.pow(2).sum(1, keepdim=True) + returned.pow(2).sum(1, keepdim=True))
    return (mismatch < bound + absolute).float()
