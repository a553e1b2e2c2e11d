"""TecoGAN's spatio-temporal discriminator (Chu et al., "Learning temporal coherence via self-supervision for
GAN-based video generation", 2020), for training recurrent generators adversarially.

The discriminator judges three consecutive frames at once, so it can punish flicker as well as bland texture.
It sees each triplet three ways, stacked along the channels (see `triplet_input`):

    channels  0 .. 3C-1    the triplet as generated (or as in the ground truth)
    channels 3C .. 6C-1    the same triplet with the outer frames warped onto the centre frame by optical flow,
                           so motion-compensated differences (temporal inconsistency) are easy to see
    channels 6C .. 9C-1    the upsampled low-resolution triplet, the condition it must agree with

and within each part channel-major, frames minor: r0 r1 r2 g0 g1 g2 b0 b1 b2 for RGB. This is the order of
TecoGAN-PyTorch (which keeps it from the TensorFlow original); the module names and shapes are its too, so its
discriminator checkpoints load by name into `SpatioTemporalDiscriminator`.
"""

from __future__ import annotations

import torch
from torch import nn

from vsr.ops.flow_warp import flow_warp

TRIPLET = 3  # frames judged together; the reference supports no other temporal range


class DiscriminatorBlocks(nn.Module):
    """Four stride-2 conv + batch-norm stages (each halving the size); their outputs are the features that
    feature matching compares between real and generated triplets."""

    def __init__(self) -> None:
        super().__init__()
        self.block1 = _down_block(64, 64)
        self.block2 = _down_block(64, 64)
        self.block3 = _down_block(64, 128)
        self.block4 = _down_block(128, 256)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for block in (self.block1, self.block2, self.block3, self.block4):
            x = block(x)
            features.append(x)
        return features


class SpatioTemporalDiscriminator(nn.Module):
    """(M, 9C, S, S) triplet stacks from `triplet_input` -> (M, 1) logits and the four block features.

    The classifier is a dense layer over the whole 16x-downsampled map, so the input must be exactly
    `crop_size` square: train on fixed crops (TecoGAN: 128 x 128 HR).
    """

    def __init__(self, in_channels: int = 3, crop_size: int = 128) -> None:
        super().__init__()
        if crop_size < 16:
            raise ValueError(f"crop_size must be at least 16 (the blocks downsample 16x), got {crop_size}")
        self.in_channels = in_channels
        self.crop_size = crop_size
        self.conv_in = nn.Sequential(
            nn.Conv2d(3 * TRIPLET * in_channels, 64, 3, 1, 1),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.discriminator_block = DiscriminatorBlocks()
        # The reference writes 256 * S // 16 * S // 16, which equals this for the multiples of 16 it trains on;
        # this form is the size the blocks really produce (floor(S / 16) each way) for any S.
        self.dense = nn.Linear(256 * (crop_size // 16) ** 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        self._check_input(x)
        features = self.discriminator_block(self.conv_in(x))
        logits = self.dense(features[-1].flatten(1))
        return logits, features

    def _check_input(self, x: torch.Tensor) -> None:
        channels = 3 * TRIPLET * self.in_channels
        if x.dim() != 4 or x.shape[1] != channels:
            raise ValueError(f"SpatioTemporalDiscriminator wants (M, {channels}, S, S) from triplet_input, "
                             f"got {tuple(x.shape)}")
        if tuple(x.shape[2:]) != (self.crop_size, self.crop_size):
            raise ValueError(f"SpatioTemporalDiscriminator was built for {self.crop_size}x{self.crop_size} crops "
                             f"(its dense layer is sized for them), got {x.shape[2]}x{x.shape[3]}")


def triplet_input(frames: torch.Tensor, condition: torch.Tensor, flow_to_previous: torch.Tensor,
                  flow_to_next: torch.Tensor, crop_border_ratio: float = 0.75) -> torch.Tensor:
    """Stack non-overlapping frame triplets as the discriminator's (N * T//3, 9C, H, W) input.

    `frames` (N, T, C, H, W) is the generator's output or the ground truth, `condition` the same clip's
    low-resolution input upsampled to (N, T, C, H, W). Triplet k is frames 3k, 3k+1, 3k+2; frames past the last
    whole triplet are dropped. `flow_to_previous` and `flow_to_next` (N, T//3, 2, H, W) are HR flows from each
    centre frame 3k+1 to frame 3k and to frame 3k+2 (dx, dy in pixels): backward-warping by them brings the
    outer frames onto the centre. Channel layout: see the module docstring.

    Only the central `crop_border_ratio` of the warped part is kept (zero around it), as TecoGAN does for
    stability: near the border the flow points outside the frame, and what border padding invents there would
    give the discriminator an easy, meaningless cue.
    """
    _check_triplet_shapes(frames, condition, flow_to_previous, flow_to_next)
    n, t, c, h, w = frames.shape
    t = t // TRIPLET * TRIPLET
    clips = n * t // TRIPLET
    triplets = frames[:, :t].reshape(clips, TRIPLET, c, h, w)
    # The centre frame is "warped" by zero flow, so all three frames go through one flow_warp call.
    flows = torch.stack([flow_to_previous, torch.zeros_like(flow_to_previous), flow_to_next], dim=2)
    # Detached as in the reference: the discriminator's loss (and the generator's adversarial loss through
    # this input) must not train the flow network, which only the warping loss supervises.
    flows = flows.reshape(clips * TRIPLET, 2, h, w).detach()
    warped = flow_warp(triplets.reshape(clips * TRIPLET, c, h, w), flows, padding_mode="border")
    warped = warped.reshape(clips, TRIPLET, c, h, w) * _central_mask(h, w, crop_border_ratio, frames)
    conditions = condition[:, :t].reshape(clips, TRIPLET, c, h, w)
    return torch.cat([_channel_major(triplets), _channel_major(warped), _channel_major(conditions)], dim=1)


def _central_mask(height: int, width: int, ratio: float, like: torch.Tensor) -> torch.Tensor:
    """(H, W) ones on the central `ratio` part, zeros around it.

    The reference crops int(S * ratio) pixels starting at (S - crop) // 2 and pads back, which only fits when
    S - crop is even; a mask keeps the size in every case (an odd leftover row or column goes to the far side).
    """
    mask = like.new_zeros(height, width)
    keep_h, keep_w = int(height * ratio), int(width * ratio)
    top, left = (height - keep_h) // 2, (width - keep_w) // 2
    mask[top: top + keep_h, left: left + keep_w] = 1
    return mask


def _channel_major(triplets: torch.Tensor) -> torch.Tensor:
    """(M, 3, C, H, W) -> (M, 3C, H, W) ordered c0f0 c0f1 c0f2 c1f0 ... (the TensorFlow original's rrrgggbbb)."""
    return triplets.transpose(1, 2).flatten(1, 2)


def _check_triplet_shapes(frames: torch.Tensor, condition: torch.Tensor, flow_to_previous: torch.Tensor,
                          flow_to_next: torch.Tensor) -> None:
    if frames.dim() != 5 or frames.shape[1] < TRIPLET:
        raise ValueError(f"triplet_input wants frames (N, T, C, H, W) with T >= 3, got {tuple(frames.shape)}")
    if condition.shape != frames.shape:
        raise ValueError(f"condition {tuple(condition.shape)} must match frames {tuple(frames.shape)}")
    n, t, _, h, w = frames.shape
    expected = (n, t // TRIPLET, 2, h, w)
    for name, flow in (("flow_to_previous", flow_to_previous), ("flow_to_next", flow_to_next)):
        if tuple(flow.shape) != expected:
            raise ValueError(f"{name} must be (N, T//3, 2, H, W) = {expected}, got {tuple(flow.shape)}")


def _down_block(in_channels: int, out_channels: int) -> nn.Sequential:
    # No conv bias: batch norm's shift replaces it (and the reference checkpoints have none).
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.2, inplace=True),
    )
