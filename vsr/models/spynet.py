"""SPyNet (Ranjan and Black, CVPR 2017), the optical flow network inside BasicVSR and BasicVSR++.

Numerically the reference's (BasicSR `spynet_arch.py`, mmagic `basicvsr_net.py`): a six-level image pyramid,
coarse to fine; at each level the flow so far is upsampled, the second image is warped by it, and a small
convolutional module predicts the residual. Parameter names follow BasicSR, so its checkpoints load as they
are; `spynet_key_from_mmagic` renames mmagic's.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vsr.ops.flow_warp import flow_warp

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PYRAMID_LEVELS = 6
SIZE_MULTIPLE = 2 ** (PYRAMID_LEVELS - 1)  # 32: the coarsest level is 1/32 of the input each way


class SPyNetBasicModule(nn.Module):
    """Five 7x7 convolutions from (ref, warped supp, flow) to a flow residual; no activation on the last."""

    def __init__(self) -> None:
        super().__init__()
        channels = (8, 32, 64, 32, 16, 2)
        layers: list[nn.Module] = []
        for index, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            if index:
                layers.append(nn.ReLU())  # ReLUs at the odd indices keep BasicSR's key numbering 0, 2, 4, 6, 8
            layers.append(nn.Conv2d(c_in, c_out, kernel_size=7, padding=3))
        self.basic_module = nn.Sequential(*layers)

    def forward(self, ref_warped_flow: torch.Tensor) -> torch.Tensor:
        return self.basic_module(ref_warped_flow)


class SPyNet(nn.Module):
    """Flow from `ref` to `supp`: flow_warp(supp, flow) lines supp up with ref."""

    def __init__(self) -> None:
        super().__init__()
        self.basic_module = nn.ModuleList(SPyNetBasicModule() for _ in range(PYRAMID_LEVELS))
        # Persistent, as in both references, so full BasicVSR(++) checkpoints (which carry spynet.mean and
        # spynet.std) load strictly. The stand-alone SPyNet checkpoints lack them: the references load those
        # before registering the buffers.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1] each -> flow (N, 2, H, W), dx in channel 0, in pixels of the input."""
        if ref.shape != supp.shape or ref.dim() != 4 or ref.shape[1] != 3:
            raise ValueError(f"SPyNet wants two (N, 3, H, W) images of one size, got {tuple(ref.shape)} and "
                             f"{tuple(supp.shape)}")
        return flow_at_any_size(self.coarse_to_fine, ref, supp)

    def coarse_to_fine(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        """The flow on images whose sides are multiples of 32, refined from the coarsest level up."""
        refs = image_pyramid(self.normalise(ref))
        supps = image_pyramid(self.normalise(supp))
        n, _, height, width = refs[0].shape
        flow = refs[0].new_zeros(n, 2, height, width)
        for level, (ref_level, supp_level) in enumerate(zip(refs, supps)):
            flow_up = flow if level == 0 else upsample_flow(flow)
            warped = flow_warp(supp_level, flow_up, padding_mode="border")
            flow = flow_up + self.basic_module[level](torch.cat([ref_level, warped, flow_up], dim=1))
        return flow

    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        """ImageNet statistics: the trained weights expect them (the original SPyNet was trained so)."""
        return (image - self.mean) / self.std


def flow_at_any_size(coarse_to_fine: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], ref: torch.Tensor,
                     supp: torch.Tensor) -> torch.Tensor:
    """`coarse_to_fine` (which needs sides that are multiples of 32) on images of any size: resized up to the
    next multiples and the flow resized back. Apart, so that an engine can run coarse_to_fine and leave the
    resizes to torch."""
    height, width = ref.shape[2:]
    size = (_round_up(height), _round_up(width))
    flow = coarse_to_fine(_resize(ref, size), _resize(supp, size))
    return resize_flow(flow, (height, width))


def image_pyramid(image: torch.Tensor) -> list[torch.Tensor]:
    """PYRAMID_LEVELS images, coarsest first, each a 2x2 average of the next."""
    levels = [image]
    for _ in range(PYRAMID_LEVELS - 1):
        levels.append(F.avg_pool2d(levels[-1], kernel_size=2, stride=2, count_include_pad=False))
    return levels[::-1]


def upsample_flow(flow: torch.Tensor) -> torch.Tensor:
    """Twice the size and twice the displacement.

    align_corners=True, as the reference: it stretches the corners onto the corners, which is not quite
    a geometric x2 of the grid, but it is what the trained modules saw.
    """
    return F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=True) * 2.0


def _round_up(size: int) -> int:
    return -(-size // SIZE_MULTIPLE) * SIZE_MULTIPLE


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear, align_corners=False, as the reference; skipped at the same size, where it is the identity."""
    if tuple(image.shape[2:]) == size:
        return image
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False)


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The flow resampled to `size`, its displacements rescaled per axis to that size's pixels."""
    (height, width), (flow_height, flow_width) = size, flow.shape[2:]
    flow = _resize(flow, size)
    # Python-float factors, as the reference's in-place `*=`, so half flows round the same way.
    return torch.stack((flow[:, 0] * (width / flow_width), flow[:, 1] * (height / flow_height)), dim=1)


_MMAGIC_CONV = re.compile(r"basic_module\.(\d+)\.basic_module\.(\d+)\.conv\.(weight|bias)")


def spynet_key_from_mmagic(key: str) -> str:
    """mmagic's ConvModule key `basic_module.i.basic_module.k.conv.weight` -> ours `...basic_module.2k.weight`.

    mmagic wraps each conv and its ReLU in one ConvModule (index k); BasicSR and we list them apart, so the
    conv sits at 2k. Other keys (mean, std) are the same in both and pass through.
    """
    match = _MMAGIC_CONV.fullmatch(key)
    if match is None:
        return key
    module, conv, kind = match.groups()
    return f"basic_module.{module}.basic_module.{2 * int(conv)}.{kind}"
