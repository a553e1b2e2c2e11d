"""BasicVSR++ (Chan et al., CVPR 2022): bidirectional second-order grid propagation with flow-guided
deformable alignment. The same network as mmagic's BasicVSRPlusPlusNet and BasicSR's BasicVSRPlusPlus, so
their published checkpoints load (see `convert_reference_checkpoint`); mid_channels and num_blocks give the
smaller models we train ourselves.

Reading order, as in the paper's figure: features of every frame, optical flow between neighbours (SPyNet),
four propagation branches (backward, forward, backward, forward), each aligning the propagated features to
the current frame before refining them, then reconstruction and x4 pixel-shuffle upsampling added to a
bilinear upsample of the input.

In windows (`forward_window`), only the backward branches need frames after a window's core: the forward
branches' features at the end of one window are exactly where the next window's forward branches start, so
they are carried over instead of recomputed from left-context frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vsr.models.spynet import IMAGENET_MEAN, IMAGENET_STD, SPyNet, spynet_key_from_mmagic
from vsr.ops.blocks import PixelShufflePack, ResidualBlocksWithInputConv
from vsr.ops.deform_conv import modulated_deform_conv2d
from vsr.ops.flow_warp import flow_warp

BRANCHES = ("backward_1", "forward_1", "backward_2", "forward_2")
MIN_SIZE = 64  # SPyNet's six-level pyramid needs at least this many pixels each way
# Frame pairs per SPyNet call: its layers at full size take more memory per pair than a frame's features, so
# a long window computing all its flows at once would peak there; in twos that peak stays the same.
FLOW_PAIRS_PER_CALL = 2


@dataclass
class WindowCarry:
    """What one window hands the next: its last core frame (padded), the forward flow from that frame to the
    one before it (None when it is the first of its shot), and each forward branch's propagated features of the
    last one or two core frames, oldest first."""

    lr: torch.Tensor  # (N, 3, H, W)
    flow: torch.Tensor | None  # (N, 2, H, W)
    features: dict[str, list[torch.Tensor]]

    @property
    def nbytes(self) -> int:
        """What the carry holds between windows: with tiles, one carry per tile position stays alive."""
        tensors = [self.lr, self.flow, *(f for kept in self.features.values() for f in kept)]
        return sum(t.nbytes for t in tensors if t is not None)


class SecondOrderDeformableAlignment(nn.Module):
    """Aligns the features of the previous two steps to the current frame.

    Optical flow gives a first guess of where each feature comes from; a small conv net predicts residual
    offsets around it (bounded by `max_residue_magnitude`) and modulation masks for a deformable convolution.
    Input channels 0..C-1 (the previous step) follow flow_1, channels C..2C-1 (two steps back) follow flow_2.
    """

    def __init__(self, channels: int = 64, deform_groups: int = 16, max_residue_magnitude: float = 10) -> None:
        super().__init__()
        self.max_residue_magnitude = max_residue_magnitude
        self.weight = nn.Parameter(torch.empty(channels, 2 * channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(channels))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.conv_offset = nn.Sequential(
            nn.Conv2d(3 * channels + 4, channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(channels, 27 * deform_groups, 3, 1, 1),
        )
        # Start from pure flow-guided alignment: zero residual offsets, masks of 0.5.
        nn.init.zeros_(self.conv_offset[-1].weight)
        nn.init.zeros_(self.conv_offset[-1].bias)

    def forward(self, features: torch.Tensor, condition: torch.Tensor, flow_1: torch.Tensor,
                flow_2: torch.Tensor) -> torch.Tensor:
        out = self.conv_offset(torch.cat([condition, flow_1, flow_2], dim=1))
        o1, o2, mask = torch.chunk(out, 3, dim=1)
        residue_1, residue_2 = torch.chunk(self.max_residue_magnitude * torch.tanh(torch.cat([o1, o2], dim=1)), 2, 1)
        # Deformable offsets are (dy, dx) pairs, flows (dx, dy): flip, then repeat for every group and tap.
        offset_1 = residue_1 + flow_1.flip(1).repeat(1, residue_1.size(1) // 2, 1, 1)
        offset_2 = residue_2 + flow_2.flip(1).repeat(1, residue_2.size(1) // 2, 1, 1)
        offset = torch.cat([offset_1, offset_2], dim=1)
        return modulated_deform_conv2d(features, offset, torch.sigmoid(mask), self.weight, self.bias, padding=1)


class BasicVSRPlusPlus(nn.Module):
    """x4 video super-resolution; (N, T, 3, H, W) in [0, 1] -> (N, T, 3, 4H, 4W)."""

    scale = 4
    streams = False
    size_multiple = 1  # any size: SPyNet resizes internally, and frames under 64 px are padded here
    half_safe = True  # under autocast, flows and deformable sampling stay in fp32 (see compute_flows, ops/)

    def __init__(self, mid_channels: int = 64, num_blocks: int = 7, max_residue_magnitude: float = 10,
                 context_frames: int = 6, hr_channels: int = 64, deform_groups: int = 16) -> None:
        super().__init__()
        self.mid_channels = mid_channels
        # Frames of context each side for seamless chunks; tests/test_basicvsrpp.py measures the error against it.
        self.context_frames = context_frames
        self.spynet = SPyNet()
        self.feat_extract = ResidualBlocksWithInputConv(3, mid_channels, 5)
        self.deform_align = nn.ModuleDict({
            name: SecondOrderDeformableAlignment(mid_channels, deform_groups, max_residue_magnitude) for name in BRANCHES
        })
        self.backbone = nn.ModuleDict({
            name: ResidualBlocksWithInputConv((2 + i) * mid_channels, mid_channels, num_blocks)
            for i, name in enumerate(BRANCHES)
        })
        self.reconstruction = ResidualBlocksWithInputConv(5 * mid_channels, mid_channels, 5)
        self.upsample1 = PixelShufflePack(mid_channels, mid_channels, 2)
        # The two layers at 4x resolution cost more than the rest of c64n7 but one branch: hr_channels below 64
        # is where a small model saves most.
        self.upsample2 = PixelShufflePack(mid_channels, hr_channels, 2)
        self.conv_hr = nn.Conv2d(hr_channels, hr_channels, 3, 1, 1)
        self.conv_last = nn.Conv2d(hr_channels, 3, 3, 1, 1)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.forward_with_flows(lr)[0]

    def forward_with_flows(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The outputs and the forward flows (N, T-1, 2, H, W) from frame t+1 to frame t, for training losses."""
        n, t, c, height, width = lr.shape
        lr = _pad_to_min_size(lr, MIN_SIZE)
        spatial, branches, flows_forward = self.propagate_all(lr, None)
        sr = self.reconstruct_frames(lr, spatial, branches, t)
        return sr[..., : 4 * height, : 4 * width], flows_forward[..., :height, :width]

    def forward_window(self, lr: torch.Tensor, core: int,
                       carry: WindowCarry | None = None) -> tuple[torch.Tensor, WindowCarry]:
        """The outputs of the first `core` frames of `lr` and what the next window needs to go on from them.

        The frames after the core are look-ahead for the backward branches only. With the `carry` of the
        previous window, the forward branches continue from where it left off, so a shot in consecutive windows
        differs from one whole window only by the look-ahead the backward branches miss at each window's end
        (`context_frames` of it make that negligible). Scene cuts start again with no carry.
        """
        n, t, c, height, width = lr.shape
        if not 1 <= core <= t:
            raise ValueError(f"the core must be 1 to {t} frames of the window, got {core}")
        lr = _pad_to_min_size(lr, MIN_SIZE)
        spatial, branches, flows_forward = self.propagate_all(lr, carry)
        sr = self.reconstruct_frames(lr, spatial, branches, core)
        carried = 0 if carry is None else len(carry.features[BRANCHES[1]])
        last = core - 1 + carried  # the index, among the carried and the window's frames, of the last core frame
        features = {name: ((carry.features[name] if carry else []) + branches[name][:core])[-2:]
                    for name in BRANCHES if not name.startswith("backward")}
        # flows_forward[i] goes from frame i+1 to frame i of that same sequence.
        flow = flows_forward[:, last - 1].clone() if last >= 1 else None
        # Copies, not views: a view would keep the whole window's input and flows alive into the next window.
        return sr[..., : 4 * height, : 4 * width], WindowCarry(lr[:, core - 1].clone(), flow, features)

    def propagate_all(self, lr: torch.Tensor, carry: WindowCarry | None
                      ) -> tuple[list[torch.Tensor], dict[str, list[torch.Tensor]], torch.Tensor]:
        """Spatial features, the four branches' features per frame, and the forward flows: from the frame before
        the window on (the carried ones first) when there is a carry."""
        n, t = lr.shape[:2]
        spatial = list(self.feat_extract(lr.flatten(0, 1)).unflatten(0, (n, t)).unbind(1))
        flows_backward = self.spynet_flows(lr, backward=True)
        if carry is None:
            flows_forward = self.spynet_flows(lr, backward=False)
        else:
            flows_forward = self.spynet_flows(torch.cat([carry.lr[:, None], lr], dim=1), backward=False)
            if carry.flow is not None:
                flows_forward = torch.cat([carry.flow[:, None], flows_forward], dim=1)
        branches: dict[str, list[torch.Tensor]] = {}
        for name in BRANCHES:
            if name.startswith("backward"):
                branches[name] = self.propagate(spatial, branches, flows_backward, name)
            else:
                history = carry.features[name] if carry is not None else []
                branches[name] = self.propagate(spatial, branches, flows_forward, name, history)
        return spatial, branches, flows_forward

    def reconstruct_frames(self, lr: torch.Tensor, spatial: list[torch.Tensor],
                           branches: dict[str, list[torch.Tensor]], count: int) -> torch.Tensor:
        """The first `count` output frames, written into one tensor as they come (no list of them to stack)."""
        if torch.jit.is_tracing():  # traced for export, a tensor made empty would be stored as a constant
            return torch.stack([self.reconstruct(lr[:, i], spatial[i], [b[i] for b in branches.values()])
                                for i in range(count)], dim=1)
        sr = None
        for i in range(count):
            frame = self.reconstruct(lr[:, i], spatial[i], [b[i] for b in branches.values()])
            if sr is None:
                sr = frame.new_empty(frame.shape[0], count, *frame.shape[1:])
            sr[:, i] = frame
        return sr

    def compute_flows(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, T-1, 2, H, W) each: backward[i] from frame i to i+1, forward[i] from frame i+1 to i."""
        return self.spynet_flows(lr, backward=True), self.spynet_flows(lr, backward=False)

    def spynet_flows(self, lr: torch.Tensor, backward: bool) -> torch.Tensor:
        """(N, T-1, 2, H, W): from frame i to i+1 (backward), or from frame i+1 to i (forward)."""
        n, t, c, h, w = lr.shape
        if t == 1:
            return lr.new_zeros(n, 0, 2, h, w)
        earlier, later = lr[:, :-1].flatten(0, 1).float(), lr[:, 1:].flatten(0, 1).float()
        if not backward:
            earlier, later = later, earlier
        # Flows in fp32 even under autocast: half precision makes them visibly wrong at HD widths.
        with torch.autocast(lr.device.type, enabled=False):
            flows = torch.cat([self.spynet(source, target) for source, target in
                               zip(earlier.split(FLOW_PAIRS_PER_CALL), later.split(FLOW_PAIRS_PER_CALL))])
        return flows.unflatten(0, (n, t - 1))

    def propagate(self, spatial: list[torch.Tensor], branches: dict[str, list[torch.Tensor]],
                  flows: torch.Tensor, name: str, history: Sequence[torch.Tensor] = ()) -> list[torch.Tensor]:
        """One branch over the whole clip: each frame's features, aligned from the previous two steps.

        `history` (forward branches only) is the branch's features of the one or two frames before the clip,
        oldest first; `flows` then begins with the flows into those frames.
        """
        t = len(spatial)
        backward = name.startswith("backward")
        order = range(t - 1, -1, -1) if backward else range(t)
        done = list(history)  # in propagation order: the carried features, then this clip's
        carried = len(done)
        # The flow that carries frame `index`'s neighbour in propagation order onto frame `index`.
        flow_to = (lambda index: flows[:, index]) if backward else (lambda index: flows[:, index - 1 + carried])
        step_back = 1 if backward else -1
        first = spatial[0]
        propagated = done[-1] if done else _zeros(first, (first.shape[0], self.mid_channels, *first.shape[-2:]))
        for index in order:
            current = spatial[index]
            if done:
                flow_1 = flow_to(index)
                condition_1 = flow_warp(propagated, flow_1)
                two_back, flow_2, condition_2 = (_zeros(propagated), _zeros(flow_1), _zeros(condition_1))
                if len(done) > 1:
                    two_back = done[-2]
                    # Second order: chain the flow one more step, from the previous frame to the one before.
                    flow_2 = flow_1 + flow_warp(flow_to(index + step_back), flow_1)
                    condition_2 = flow_warp(two_back, flow_2)
                propagated = self.deform_align[name](
                    torch.cat([propagated, two_back], dim=1),
                    torch.cat([condition_1, current, condition_2], dim=1), flow_1, flow_2)
            earlier = [features[index] for features in branches.values()]
            propagated = propagated + self.backbone[name](torch.cat([current, *earlier, propagated], dim=1))
            done.append(propagated)
        outputs = done[carried:]
        return outputs[::-1] if backward else outputs

    def reconstruct(self, lr_frame: torch.Tensor, spatial: torch.Tensor, branch_features: list[torch.Tensor]):
        """One output frame from all five feature sets; the network predicts the residual to a bilinear x4."""
        hr = self.reconstruction(torch.cat([spatial, *branch_features], dim=1))
        hr = F.leaky_relu(self.upsample1(hr), 0.1)
        hr = F.leaky_relu(self.upsample2(hr), 0.1)
        hr = F.leaky_relu(self.conv_hr(hr), 0.1)
        hr = self.conv_last(hr)
        return hr + F.interpolate(lr_frame, scale_factor=4, mode="bilinear", align_corners=False)


def _zeros(like: torch.Tensor, shape: Sequence[int] | None = None) -> torch.Tensor:
    """Zeros of `like`'s dtype and device (and shape, unless given) as a broadcast view of one zero: no memory
    of their own, and an exported graph stores one number instead of a frame of zeros."""
    return like.new_zeros(()).expand(like.shape if shape is None else shape)


def _pad_to_min_size(lr: torch.Tensor, size: int) -> torch.Tensor:
    pad_h, pad_w = max(0, size - lr.shape[-2]), max(0, size - lr.shape[-1])
    if not (pad_h or pad_w):
        return lr
    return F.pad(lr.flatten(0, 1), (0, pad_w, 0, pad_h), mode="replicate").unflatten(0, lr.shape[:2])


def convert_reference_checkpoint(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys of mmagic's (`generator.` prefix, ConvModule names) or BasicSR's (`upconv1`, `upconv2`) BasicVSR++
    checkpoints, renamed to ours. Keys that are ours already pass through; others are left for the strict
    loader to name."""
    converted = {}
    for key, value in state.items():
        if key == "step_counter":
            continue  # mmagic's training counter, not a weight
        key = key.removeprefix("generator.")
        if key.startswith("spynet."):
            key = "spynet." + spynet_key_from_mmagic(key.removeprefix("spynet."))
        for basicsr, ours in (("upconv1.", "upsample1.upsample_conv."), ("upconv2.", "upsample2.upsample_conv.")):
            if key.startswith(basicsr):
                key = ours + key.removeprefix(basicsr)
        converted[key] = value
    # The normalisation constants are buffers some checkpoints lack; they are the same in every model.
    converted.setdefault("spynet.mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
    converted.setdefault("spynet.std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
    return converted
