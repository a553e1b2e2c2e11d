"""`vsr run --stabilize`: less flicker from per-frame models, as a pipeline stage after the model.

A per-frame model (realesr-animevideov3, realsr) invents detail for each frame on its own, so fine texture
shimmers from frame to frame even on a steady shot. This stage carries the model's previous output along
the optical flow and blends it into the current output, weighted by `strength` and by how far the flow can be
trusted there (vsr/ops/flow_trust.py: the flow stays inside the frame, the two directions agree, and the
carried frame matches this one); where the flow fails, at the frame's edge, and after a scene cut, the
model's output passes through unchanged.

Three choices, each measured on clips/val/natural (benchmarks/RESULTS.md, "Flicker control"):
- The brightness check compares the frames at the flow's size, not at full size. At full size the invented
  texture that flickers is itself a mismatch, so the check vetoed the blend exactly where it was wanted: on
  a pan with per-frame noise the full-size check trusted 21% of the pixels, this one 58%.
- The forward-backward check allows `consistency` squared pixels (UnFlow's 0.5 is for flows at full
  size): our SPyNet, at 1/4 size, returns up to 0.6 px on two identical frames, and with 0.5 the check
  refused half of a near-still road shot.
- Flows shorter than `still_flow` (pixels at the flow's size) count as none. On identical frames what is
  left of the network's bias after the two directions are averaged is up to 0.065 px, and bilinear
  resampling by such a flow softens steep edges by a few levels; a still shot now passes bit for bit.
It carries the raw previous output, not the stabilised one: a recursive filter removed a little more flicker,
but every frame's bilinear resampling of the flow's sub-pixel errors added up, and a still picture blurred
frame after frame (0.74 levels mean change after 5 frames; tests/test_stabilize.py).

The flow is estimated on the outputs shrunk back by the model's scale, not on the low-res inputs: the stage
then needs nothing but the frames it is given (it runs after refinement as well as after any model), the
flow network costs the same as on the inputs, and the flow describes the very pictures that are warped and
compared. Memory holds one previous output frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F

from vsr.io.frames import Frame
from vsr.models.spynet import SPyNet, resize_flow
from vsr.ops.flow_trust import (TRUST_ERROR, content_trust, forward_backward_consistent, inside_frame,
                                 shrink_frame)
from vsr.ops.flow_warp import flow_warp
from vsr.pipeline.scenes import SceneCutDetector
from vsr.pipeline.stabilize_defaults import DEFAULT_STRENGTH
from vsr.pipeline.tensors import images_to_tensor, tensor_to_images



@dataclass(frozen=True)
class Stabilization:
    """`vsr run --stabilize`: the flow network, and how strongly the previous output is blended in."""

    flow_net: SPyNet
    strength: float = DEFAULT_STRENGTH  # the blend weight where the flow is fully trusted; 0 changes nothing
    # The brightness check's error scale (of [0, 1] pixels, at the flow's size), the refiner's.
    error_scale: float = TRUST_ERROR
    consistency: float = 2.0  # the forward-backward check's tolerance, squared pixels at the flow's size
    still_flow: float = 0.1  # shorter flows, in pixels at the flow's size, count as no motion


@dataclass
class StabilizerStats:
    """What the stage did: the frames it blended, and the mean trust (the share of `strength` applied)."""

    frames: int = 0  # frames that had a previous frame to blend with
    trust_sum: float = 0.0

    @property
    def mean_trust(self) -> float | None:
        return self.trust_sum / self.frames if self.frames else None


class StabilizerState(NamedTuple):
    """What frame t needs from frame t-1."""

    raw: torch.Tensor  # the model's output, (1, 3, H, W): compared with the current one, and carried into it
    small: torch.Tensor | None = None  # `raw` shrunk to the flow's size, where it was for its own flow


def stabilize_step(stabilization: Stabilization, current: torch.Tensor, state: StabilizerState | None,
                   shrink: int, stats: StabilizerStats | None = None) -> tuple[torch.Tensor, StabilizerState]:
    """One output frame (1, 3, H, W) in [0, 1]: blended with the previous one where the flow is trusted."""
    if state is None or state.raw.shape != current.shape or stabilization.strength <= 0:
        return current, StabilizerState(current)
    small_current = shrink_frame(current, shrink)
    small_previous = state.small if state.small is not None else shrink_frame(state.raw, shrink)
    # Both directions in one call: current -> previous warps the previous frame onto this one; the reverse
    # is for the forward-backward check.
    flows = stabilization.flow_net(torch.cat([small_current, small_previous]),
                                   torch.cat([small_previous, small_current]))
    forward, backward = flows.chunk(2)
    size = current.shape[-2:]
    returned = flow_warp(backward, forward, padding_mode="border")  # the reverse flow, seen from this frame
    consistent = forward_backward_consistent(forward, backward, returned, stabilization.consistency)
    consistent = F.interpolate(consistent, size=size, mode="bilinear", align_corners=False)
    # The mean of the flow and the reversed reverse flow: a bias common to both directions cancels. Our SPyNet
    # (trained inside BasicVSR++ for SR, not for flow) gives up to 0.6 px on two identical frames, which a
    # recursive blend would turn into a slow drift of a still picture.
    flow = resize_flow(0.5 * (forward - returned), size)
    # Cut after resizing: cut before, the bilinear resize would spread short flows back around the cut ones.
    flow = flow * (flow.pow(2).sum(dim=1, keepdim=True) >= (stabilization.still_flow * shrink) ** 2)
    carried = flow_warp(state.raw, flow, padding_mode="border")
    trust = consistent * inside_frame(flow) * content_trust(current, carried, shrink, stabilization.error_scale,
                                                             small_current)
    if stats is not None:
        stats.frames += 1
        stats.trust_sum += float(trust.mean())
    blended = current + stabilization.strength * trust * (carried - current)
    return blended, StabilizerState(current, small_current)  # shrunk once: the next frame reuses it


def stabilize_frames(frames: Iterable[Frame], stabilization: Stabilization, device: torch.device, scale: int,
                     scene_cuts: bool = True, stats: StabilizerStats | None = None) -> Iterator[Frame]:
    """The frames with flicker reduced; pts and everything but the pixels pass through.

    `scale` is the model's: the flow is estimated on the outputs shrunk by it. The first frame, and the first
    after each scene cut, pass through untouched (bit for bit), as does every frame at strength 0. `stats`,
    if given, counts the frames blended and sums their mean trust.
    """
    if stabilization.strength <= 0:
        yield from frames
        return
    flow_net = stabilization.flow_net.to(device).eval()
    stabilization = replace(stabilization, flow_net=flow_net)
    cuts = SceneCutDetector()
    state: StabilizerState | None = None
    for frame in frames:
        if scene_cuts and cuts.starts_new_scene(frame.image):
            state = None
        first = state is None
        with torch.inference_mode():  # per frame, never across a yield, as upscale_frames does
            current = images_to_tensor([frame.image], device)[:, 0].float()
            stabilized, state = stabilize_step(stabilization, current, state, scale, stats)
            image = frame.image if first else tensor_to_images(stabilized[:, None], frame.image.dtype)[0]
        yield replace(frame, image=image)
