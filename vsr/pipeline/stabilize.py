"""`vsr run --stabilize`: less flicker from per-frame models, as a pipeline stage after the model.

A per-frame model (realesr-animevideov3, realsr) invents detail for each frame on its own, so fine texture
shimmers from frame to frame even on a steady shot. This stage carries the previous stabilised output along
the optical flow and blends it into the current output, weighted by `strength` and by how far the flow can be
trusted there (vsr/ops/flow_trust.py: the flow stays inside the frame, the two directions agree, and the
model's previous output, carried the same way, matches this one); where the flow fails, at the frame's edge,
and after a scene cut, the model's output passes through unchanged.

The choices, each measured on clips/val/natural (benchmarks/RESULTS.md, "Flicker control"):
- The flow is OpenCV's DIS (vsr/ops/dis_flow.py) on the model's low-res input frames. It replaced the SPyNet
  trained inside our BasicVSR++, which had learned no motion (an 8 px shift read as 0.1 px): on a pan through
  realsr tOF falls by 50% against 12% with it (benchmarks/stabilize_pan.py), and the stage runs three to
  four times as fast.
- The flow is estimated on the model's low-res input frames, which the stage receives beside the outputs:
  there the picture is what the camera saw, where the outputs shrunk back carry the model's own flicker
  into the flow (realsr on noisy input: tOF -25% against -21% at strength 0.5). Without inputs (a caller
  that has only outputs), it falls back to the outputs shrunk by the model's scale.
- Recursive: the stabilised frame is what is carried, so flicker is averaged over many frames, not two
  (tOF -27% against -25% on that input, -16% against -7% on realsr's clean input). The trust is still
  judged on the model's raw previous output, so a mistake of the blend cannot vouch for itself.
- The brightness check compares the frames at the flow's size, not at full size: at full size the invented
  texture that flickers is itself a mismatch, so the check vetoed the blend exactly where it was wanted.
  Its error scale grows with the input's noise (`noise_tolerance` times the frame's median error, at least
  `error_scale`): on a noisy source every pixel differs a little from frame to frame, and a fixed scale
  refused the blend where the flicker was worst. On clean input it stays at `error_scale`.
- The forward-backward check allows `consistency` squared pixels (UnFlow's 0.5 is for flows at full
  size); it was set for the SPyNet, which returned up to 0.6 px on two identical frames (DIS returns 0).
- Flows shorter than `still_flow` (pixels at the flow's size) count as none: bilinear resampling by a tiny
  flow, repeated frame after frame by the recursion, would soften a still picture (0.74 levels after 5
  frames with the SPyNet's bias, before this cut); a still shot passes bit for bit. 0.2 px with DIS, whose
  flow on a noisy still shot is a few hundredths to tenths of a pixel: against 0.1, realsr's tOF on a noisy
  source falls by 29% instead of 24%, for 0.18 dB less PSNR-Y gain on clean input (+0.54 against +0.72).
- Where the flow is none the blend is stronger (`still_power`: 0.8 at strength 0.5): the carried frame is
  not resampled there, so it costs no sharpness, and that is where a per-frame model's shimmer shows most
  (realsr, strength 0.5: tOF -22% against -16% on clean input, -32% against -28% on noisy input).
- A drift check: the carried stabilised frame itself must match the current output, compared at half the
  flow's size (where the noise the blend removed averages out) with half the error scale. A pan slower than
  `still_flow` counts as no motion, and without the check the stronger blend let the carried frame drag
  behind it, frame after frame (up to 5.9 levels in tests/test_stabilize.py; 1.8 with it).
Memory holds one previous output frame (raw and stabilised) and the inputs the model has not yet answered.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from vsr.io.frames import Frame
from vsr.models.spynet import resize_flow
from vsr.ops.flow_trust import (TRUST_ERROR, content_error, error_trust, forward_backward_consistent,
                                 inside_frame, shrink_frame)
from vsr.ops.flow_warp import flow_warp
from vsr.pipeline.scenes import SceneCutDetector
from vsr.pipeline.stabilize_defaults import DEFAULT_STRENGTH
from vsr.pipeline.tensors import images_to_tensor, tensor_to_images


@dataclass(frozen=True)
class Stabilization:
    """`vsr run --stabilize`: the flow network, and how strongly the previous output is blended in."""

    flow_net: nn.Module  # (current, previous) -> the flow that warps previous onto current: DisFlow in use
    strength: float = DEFAULT_STRENGTH  # the blend weight where the flow is fully trusted; 0 changes nothing
    # The brightness check's error scale (of [0, 1] pixels, at the flow's size), the refiner's; the least.
    error_scale: float = TRUST_ERROR
    noise_tolerance: float = 2.5  # the error scale is at least this many times the frame's median error
    consistency: float = 2.0  # the forward-backward check's tolerance, squared pixels at the flow's size
    still_flow: float = 0.2  # shorter flows, in pixels at the flow's size, count as no motion
    # Where nothing moves the blend is as strong as `strength` applied this many times over: the current frame
    # keeps (1 - strength) ** still_power of itself (0.2 at strength 0.5).
    still_power: float = 2.3
    # The drift check (the carried stabilised frame against this output): at 1/(drift_shrink * scale) size,
    # with this share of the brightness check's error scale.
    drift_shrink: int = 2
    drift_tolerance: float = 0.5

    @property
    def still_strength(self) -> float:
        """The blend weight where the flow is none and fully trusted."""
        return 1.0 - (1.0 - self.strength) ** self.still_power


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

    raw: torch.Tensor  # the model's output, (1, 3, H, W): what the trust is judged on
    stabilized: torch.Tensor  # the stage's output: what is carried into the next frame
    small: torch.Tensor  # what the flow was estimated on: the model's input, or `raw` shrunk to its size


def stabilize_step(stabilization: Stabilization, current: torch.Tensor, small_current: torch.Tensor,
                   state: StabilizerState | None, shrink: int,
                   stats: StabilizerStats | None = None) -> tuple[torch.Tensor, StabilizerState]:
    """One output frame (1, 3, H, W) in [0, 1], blended with the previous one where the flow is trusted.

    `small_current` (1, 3, H / shrink, W / shrink) is what the flow is estimated on: the model's input frame.
    """
    if (state is None or state.raw.shape != current.shape or state.small.shape != small_current.shape
            or stabilization.strength <= 0):
        return current, StabilizerState(current, current, small_current)
    # Both directions in one call: current -> previous warps the previous frame onto this one; the reverse
    # is for the forward-backward check.
    flows = stabilization.flow_net(torch.cat([small_current, state.small]), torch.cat([state.small, small_current]))
    forward, backward = flows.chunk(2)
    size = current.shape[-2:]
    returned = flow_warp(backward, forward, padding_mode="border")  # the reverse flow, seen from this frame
    consistent = forward_backward_consistent(forward, backward, returned, stabilization.consistency)
    consistent = F.interpolate(consistent, size=size, mode="bilinear", align_corners=False)
    # The mean of the flow and the reversed reverse flow: a bias common to both directions cancels, which the
    # recursive blend would otherwise turn into a slow drift of a still picture.
    flow = resize_flow(0.5 * (forward - returned), size)
    # Cut after resizing: cut before, the bilinear resize would spread short flows back around the cut ones.
    moving = flow.pow(2).sum(dim=1, keepdim=True) >= (stabilization.still_flow * shrink) ** 2
    flow = flow * moving
    carried = flow_warp(state.stabilized, flow, padding_mode="border")
    error = content_error(current, flow_warp(state.raw, flow, padding_mode="border"), shrink)
    # A tensor, not a float: reading the median back would wait for the device every frame.
    error_scale = (stabilization.noise_tolerance * error.median()).clamp(min=stabilization.error_scale)
    # The carried frame must match this one too: motion under `still_flow`, carried frame after frame, adds up
    # to a drag that no single pair of raw frames shows. Compared coarser, where a drag of edges still shows
    # and the noise the blend has removed from the carried frame averages out.
    drift = content_error(current, carried, shrink * stabilization.drift_shrink)
    trust = (consistent * inside_frame(flow) * error_trust(error, error_scale, size)
             * error_trust(drift, stabilization.drift_tolerance * error_scale, size))
    if stats is not None:
        stats.frames += 1
        stats.trust_sum += float(trust.mean())
    # Where nothing moves the carried frame is not resampled, so a stronger blend costs no sharpness there.
    strength = torch.where(moving, stabilization.strength, stabilization.still_strength)
    blended = current + strength * trust * (carried - current)
    return blended, StabilizerState(current, blended, small_current)


def stabilize_frames(frames: Iterable[Frame], stabilization: Stabilization, device: torch.device, scale: int,
                     scene_cuts: bool = True, stats: StabilizerStats | None = None,
                     inputs: Iterator[Frame | None] | None = None) -> Iterator[Frame]:
    """The frames with flicker reduced; pts and everything but the pixels pass through.

    `scale` is the model's. `inputs`, if given, yields the model's input frame for each output in turn (the
    same pts): the flow is estimated on them; without them, on the outputs shrunk by `scale`. The first frame,
    and the first after each scene cut, pass through untouched (bit for bit), as does every frame at strength
    0. `stats`, if given, counts the frames blended and sums their mean trust.
    """
    if stabilization.strength <= 0:
        yield from frames
        return
    flow_net = stabilization.flow_net.to(device).eval()
    stabilization = replace(stabilization, flow_net=flow_net)
    cuts = SceneCutDetector()
    state: StabilizerState | None = None
    for frame in frames:
        source = next(inputs, None) if inputs is not None else None
        if scene_cuts and cuts.starts_new_scene(frame.image):
            state = None
        first = state is None
        with torch.inference_mode():  # per frame, never across a yield, as upscale_frames does
            current = images_to_tensor([frame.image], device)[:, 0].float()
            small = (images_to_tensor([source.image], device)[:, 0].float()
                     if source is not None and source.pts == frame.pts else shrink_frame(current, scale))
            stabilized, state = stabilize_step(stabilization, current, small, state, scale, stats)
            image = frame.image if first else tensor_to_images(stabilized[:, None], frame.image.dtype)[0]
        yield replace(frame, image=image)


def stabilized_stage(stage: Callable[[Iterable[Frame]], Iterator[Frame]], frames: Iterable[Frame],
                     stabilization: Stabilization, device: torch.device, scale: int, scene_cuts: bool = True,
                     stats: StabilizerStats | None = None) -> Iterator[Frame]:
    """`stage` (the model) run on `frames`, its outputs stabilised along the flow of the frames it was given.

    Each input is kept from when the model takes it until its output comes out: a window's worth at most.
    """
    waiting: deque[Frame] = deque()

    def remembered(frames: Iterable[Frame]) -> Iterator[Frame]:
        for frame in frames:
            waiting.append(frame)
            yield frame

    def answered() -> Iterator[Frame | None]:
        while True:  # the model has taken each output's input before the output comes out
            yield waiting.popleft() if waiting else None

    return stabilize_frames(stage(remembered(frames)), stabilization, device, scale, scene_cuts, stats, answered())
