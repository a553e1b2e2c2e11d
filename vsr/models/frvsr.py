"""FRVSR (Sajjadi et al., CVPR 2018), the generator TecoGAN (Chu et al., SIGGRAPH 2020) trains adversarially.

Unidirectional and frame-recurrent: each output frame is computed from the current low-res frame and the
previous *output*, warped onto the current frame by a flow the network estimates itself. Nothing from the
future is needed, so the model streams with one frame of latency and constant memory: `step(frame, state)`.

Reading order, per frame: the flow network (FNet) estimates motion from the current to the previous low-res
frame; the flow is upsampled and scaled to high-res pixels; the previous output is warped along it and
folded back to low-res size by space-to-depth (16 x 3 channels at x4); the SR network (SRNet) takes that and
the current frame, and adds its residual to an interpolated upsample of the current frame.

Module names follow TecoGAN-PyTorch's FRNet, so its checkpoints load by name (`convert_reference_checkpoint`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from vsr.ops.dis_flow import dis_flow
from vsr.ops.flow_warp import flow_warp

MAX_FLOW = 24.0  # FNet's tanh output is scaled to this many low-res pixels, its largest motion


def conv_lrelu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True)]


class FNet(nn.Module):
    """A small U-Net-like encoder/decoder (without skips) that regresses flow from a pair of frames.

    Three poolings halve the size three times and three bilinear upsamplings restore it, so the input size
    must be a multiple of 8.
    """

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.encoder1 = nn.Sequential(*conv_lrelu(2 * in_channels, 32), *conv_lrelu(32, 32), nn.MaxPool2d(2, 2))
        self.encoder2 = nn.Sequential(*conv_lrelu(32, 64), *conv_lrelu(64, 64), nn.MaxPool2d(2, 2))
        self.encoder3 = nn.Sequential(*conv_lrelu(64, 128), *conv_lrelu(128, 128), nn.MaxPool2d(2, 2))
        self.decoder1 = nn.Sequential(*conv_lrelu(128, 256), *conv_lrelu(256, 256))
        self.decoder2 = nn.Sequential(*conv_lrelu(256, 128), *conv_lrelu(128, 128))
        self.decoder3 = nn.Sequential(*conv_lrelu(128, 64), *conv_lrelu(64, 64))
        self.flow = nn.Sequential(*conv_lrelu(64, 32), nn.Conv2d(32, 2, 3, 1, 1))
        self._initialise()

    def _initialise(self) -> None:
        """He initialisation for the leaky ReLUs, zero biases, and a near-zero last layer (flows start at 0).

        Why: torch's default initialisation shrinks the signal at every one of the 14 layers, so that a fresh
        FNet's output moved by 1e-5 px when its input changed and the gradients to its first layers were 1e-4.
        Trained from there, our first FNets never learned motion: they output the same flow for any pair.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.flow[-1].weight, std=1e-3)

    def forward(self, current: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """(N, 2, H, W) flow in low-res pixels (dx, dy) that backward-warps `previous` onto `current`."""
        x = self.encoder3(self.encoder2(self.encoder1(torch.cat([current, previous], dim=1))))
        for decoder in (self.decoder1, self.decoder2, self.decoder3):
            x = F.interpolate(decoder(x), scale_factor=2, mode="bilinear", align_corners=False)
        return torch.tanh(self.flow(x)) * MAX_FLOW


class ResidualBlock(nn.Module):
    """x + conv(relu(conv(x))), no batch norm; named `conv.0`/`conv.2` as in TecoGAN-PyTorch."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class SRNet(nn.Module):
    """Current frame + space-to-depth of the warped previous output -> residual over an interpolated upsample.

    Two stride-2 transposed convolutions make the x4 upsampling.
    """

    def __init__(self, in_channels: int = 3, mid_channels: int = 64, num_blocks: int = 10, scale: int = 4) -> None:
        super().__init__()
        self.conv_in = nn.Sequential(nn.Conv2d((scale * scale + 1) * in_channels, mid_channels, 3, 1, 1),
                                     nn.ReLU(inplace=True))
        self.resblocks = nn.Sequential(*[ResidualBlock(mid_channels) for _ in range(num_blocks)])
        self.conv_up = nn.Sequential(
            nn.ConvTranspose2d(mid_channels, mid_channels, 3, 2, 1, output_padding=1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(mid_channels, mid_channels, 3, 2, 1, output_padding=1), nn.ReLU(inplace=True))
        self.conv_out = nn.Conv2d(mid_channels, in_channels, 3, 1, 1)

    def forward(self, lr: torch.Tensor, previous_folded: torch.Tensor) -> torch.Tensor:
        x = self.resblocks(self.conv_in(torch.cat([lr, previous_folded], dim=1)))
        return self.conv_out(self.conv_up(x))


class FRVSRState(NamedTuple):
    """What one stream carries from frame to frame: the previous low-res frame and its output."""

    lr: torch.Tensor  # (N, 3, H, W)
    sr: torch.Tensor  # (N, 3, scale*H, scale*W)


class FRVSR(nn.Module):
    """The FRVSR/TecoGAN generator; `degradation` picks the upsample the residual is added to.

    "BI" (bicubic-downsampled training data) uses bilinear upsampling, "BD" (blur then subsample) uses
    TecoGAN's cubic upsampling; both as TecoGAN-PyTorch, so that its BI and BD checkpoints reproduce.
    `flow` is "fnet" (TecoGAN's learned flow network, in its checkpoints) or "dis" (OpenCV's DIS on the
    low-res frames, no weights: vsr/ops/dis_flow.py says why).
    """

    streams = True
    # Only the window path reads this: the warm-up frames a window needs for the recurrence to settle. The
    # stepwise path, which the pipeline uses for streaming models, is exact.
    context_frames = 10
    size_multiple = 8  # FNet pools three times
    half_safe = True  # under autocast, FNet and the warping stay in fp32 (see `flows`)

    def __init__(self, mid_channels: int = 64, num_blocks: int = 10, scale: int = 4,
                 degradation: str = "BI", flow: str = "fnet") -> None:
        super().__init__()
        if scale != 4:
            raise ValueError("FRVSR's two transposed convolutions upsample by 4 only")
        if degradation not in ("BI", "BD"):
            raise ValueError(f"degradation is BI or BD, not {degradation!r}")
        self.scale = scale
        self.degradation = degradation
        self.flow, self.fnet = "dis", None
        self.use_flow(flow)
        self.srnet = SRNet(3, mid_channels, num_blocks, scale)

    def use_flow(self, flow: str) -> FRVSR:
        """This model with `flow` as its motion ("fnet": a fresh FNet; "dis": none), to fit weights trained so."""
        if flow not in ("fnet", "dis"):
            raise ValueError(f"flow is fnet or dis, not {flow!r}")
        if flow != self.flow:
            self.fnet, self.flow = (FNet() if flow == "fnet" else None), flow
        return self

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """(N, T, 3, H, W) -> (N, T, 3, 4H, 4W), the first frame starting from no history."""
        return self.forward_with_flows(lr)[0]

    def forward_with_flows(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The outputs and the low-res flows (N, T-1, 2, H, W) from frame t+1 to frame t, for training losses.

        All flows are estimated in one batch; only the SR network runs frame after frame.
        """
        n, t, c, h, w = lr.shape
        flows = self.flows(lr[:, 1:].flatten(0, 1), lr[:, :-1].flatten(0, 1)).view(n, t - 1, 2, h, w)
        outputs = [self._reconstruct(lr[:, 0], None)]
        for i in range(1, t):
            outputs.append(self._reconstruct(lr[:, i], self._warp_output(outputs[-1], flows[:, i - 1])))
        return torch.stack(outputs, dim=1), flows

    def step(self, frame: torch.Tensor, state: FRVSRState | None) -> tuple[torch.Tensor, FRVSRState]:
        """One frame (N, 3, H, W) -> its output (N, 3, 4H, 4W) and the state for the next frame."""
        if state is None:
            sr = self._reconstruct(frame, None)
        else:
            sr = self._reconstruct(frame, self.warped_history(frame, state.lr, state.sr))
        return sr, FRVSRState(frame, sr)

    def step_along(self, frame: torch.Tensor, previous_sr: torch.Tensor, lr_flow: torch.Tensor) -> torch.Tensor:
        """One step's output with the low-res flow (frame -> previous frame) given, not estimated."""
        return self._reconstruct(frame, self._warp_output(previous_sr, lr_flow))

    def warped_history(self, frame: torch.Tensor, previous_lr: torch.Tensor, previous_sr: torch.Tensor) -> torch.Tensor:
        """The previous output moved onto `frame` along the flow: all of a step that must stay in fp32."""
        return self._warp_output(previous_sr, self.flows(frame, previous_lr))

    def flows(self, current: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """Low-res flow current -> previous, always in fp32: half-precision flows shift the warp visibly."""
        if self.fnet is None:
            return dis_flow(current, previous)
        with torch.autocast(current.device.type, enabled=False):
            return self.fnet(current.float(), previous.float())

    def upsample(self, lr: torch.Tensor) -> torch.Tensor:
        """The interpolation the network's residual is added to (and the flows are upsampled with)."""
        if self.degradation == "BI":
            return F.interpolate(lr, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return cubic_upsample(lr, self.scale)

    def _warp_output(self, previous_sr: torch.Tensor, lr_flow: torch.Tensor) -> torch.Tensor:
        """The previous output moved onto the current frame along the flow, in high-res pixels."""
        with torch.autocast(lr_flow.device.type, enabled=False):
            hr_flow = self.scale * self.upsample(lr_flow)
            return flow_warp(previous_sr.float(), hr_flow, padding_mode="border")

    def _reconstruct(self, lr: torch.Tensor, warped_previous: torch.Tensor | None) -> torch.Tensor:
        if warped_previous is None:  # the first frame of a stream: no history, as zeros
            n, c, h, w = lr.shape
            folded = lr.new_zeros(n, c * self.scale * self.scale, h, w)
        else:
            folded = space_to_depth(warped_previous.to(lr.dtype), self.scale)
        return self.srnet(lr, folded) + self.upsample(lr)


def space_to_depth(x: torch.Tensor, block: int) -> torch.Tensor:
    """(N, C, bH, bW) -> (N, b*b*C, H, W) in TensorFlow's channel order (dy, dx, c).

    Not pixel_unshuffle, whose order is (c, dy, dx): TecoGAN was written in TensorFlow, and its trained
    input convolution expects TensorFlow's order.
    """
    n, c, height, width = x.shape
    x = x.reshape(n, c, height // block, block, width // block, block)
    return x.permute(0, 3, 5, 1, 2, 4).reshape(n, block * block * c, height // block, width // block)


def cubic_upsample(x: torch.Tensor, scale: int, a: float = -0.75) -> torch.Tensor:
    """TecoGAN's cubic upsampling for BD data: output pixel s*i + d samples the input at i + d/s.

    Keys' cubic convolution with a = -0.75 (as TensorFlow's), replicate padding, and sample positions aligned
    at the top-left corner rather than at pixel centres: TecoGAN's BD checkpoints learned their residual over
    exactly this upsample. Separable, as two strided convolutions with one 4-tap kernel per phase.
    """
    n, c, height, width = x.shape
    kernels = _cubic_phase_kernels(scale, a).to(x)  # (scale, 4)
    padded = F.pad(x.reshape(n * c, 1, height, width), (1, 2, 1, 2), mode="replicate")
    rows = F.conv2d(padded, kernels.view(scale, 1, 4, 1))  # (nc, scale, H, W + 3): one channel per phase
    rows = rows.permute(0, 2, 1, 3).reshape(n * c, 1, scale * height, width + 3)
    columns = F.conv2d(rows, kernels.view(scale, 1, 1, 4))  # (nc, scale, sH, W)
    return columns.permute(0, 2, 3, 1).reshape(n, c, scale * height, scale * width)


def _cubic_phase_kernels(scale: int, a: float) -> torch.Tensor:
    """Weights of the taps at offsets -1, 0, 1, 2 for fractional positions 0, 1/s, ..., (s-1)/s."""
    def weight(distance: float) -> float:
        d = abs(distance)
        if d <= 1:
            return (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1
        if d < 2:
            return a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a
        return 0.0
    return torch.tensor([[weight(phase / scale - offset) for offset in (-1, 0, 1, 2)] for phase in range(scale)])


def convert_reference_checkpoint(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """TecoGAN-PyTorch's generator checkpoint as ours: same names, minus the BD upsampler's fixed kernels.

    Its BicubicUpsample module stores its kernel as a buffer (under `upsample_func.` and
    `srnet.upsample_func.`); ours computes the same kernel, so those entries carry nothing to load.
    """
    state = {key.removeprefix("module."): value for key, value in state.items()}  # saved from DataParallel
    return {key: value for key, value in state.items() if not key.endswith("upsample_func.kernels")}
