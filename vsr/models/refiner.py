"""A diffusion refiner: restores texture that a regression VSR model blurs, frame by frame, without flicker.

The denoiser models the residual between a VSR model's output and the ground truth, conditioned on that
output, and is trained with the DDPM objective (predict the noise). Sampling is deterministic DDIM in a few
steps from seeded noise. Two couplings keep consecutive frames alike wherever the optical flow between them
can be trusted: the starting noise is the previous frame's noise carried along the flow, and at every step
the estimate of the clean residual is pulled towards the previous frame's refined residual, warped the same
way. Where the flow fails (occlusions, scene cuts) a frame is refined on its own. The flow is OpenCV's DIS
(vsr/ops/dis_flow.py): the SPyNet the refiner used before, trained inside our small BasicVSR++, had learned no
motion, so the couplings carried the previous frame unaligned.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from vsr.models.refiner_sampling import Sampling
from vsr.ops.dis_flow import DisFlow
from vsr.ops.flow_trust import estimate_flow, photometric_trust
from vsr.ops.flow_warp import flow_warp
from vsr.pipeline.tensors import pad_to_multiple

TRAINING_STEPS = 1000  # the DDPM noise schedule's length; sampling visits only a few of its steps
# The clean residual's estimate is clipped to this many residual_scales: 0.3 of the pixel range, beyond the
# 99th percentile of FRVSR's residual on the training clips (0.24). A few-step sampler starts where the noise
# swamps the signal, and an unclipped estimate there is off by hundreds (measured at the last training step).
CLEAN_LIMIT = 3.0
NOISE_CARRY = 0.95  # the share of a frame's starting noise carried from the previous frame where flow is trusted


class RefinerState(NamedTuple):
    """What frame t's sampling needs from frame t-1."""

    sr: torch.Tensor | None  # the VSR output the refiner was given (None after a scene cut)
    residual: torch.Tensor | None  # what it added, in the denoiser's units
    noise: torch.Tensor | None  # the noise it started from
    generator: torch.Generator  # seeded once, on the CPU, so results do not depend on the device

    def after_cut(self) -> RefinerState:
        """The next frame starts a new shot: nothing to couple to, but the noise runs on (no shot repeats it)."""
        return RefinerState(None, None, None, self.generator)


def noise_schedule(steps: int = TRAINING_STEPS) -> torch.Tensor:
    """DDPM's linear betas, 1e-4 to 0.02, as cumulative products of alpha: the signal's share at step t."""
    betas = torch.linspace(1e-4, 0.02, steps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0).float()


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of the timestep (the Transformer's position encoding), (N,) -> (N, dim)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with group norm and SiLU; the timestep enters as a per-channel offset."""

    def __init__(self, in_channels: int, out_channels: int, embedding_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(8, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.time = nn.Linear(embedding_dim, out_channels)
        self.norm2 = nn.GroupNorm(8, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.time(embedding)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class DenoiserUNet(nn.Module):
    """(noisy residual, condition image, timestep) -> the noise in the residual; a small U-Net."""

    def __init__(self, channels: int = 32, multipliers: tuple[int, ...] = (1, 2, 2), condition_channels: int = 3) -> None:
        super().__init__()
        self.channels = channels
        embedding_dim = 4 * channels
        self.embed = nn.Sequential(nn.Linear(channels, embedding_dim), nn.SiLU(), nn.Linear(embedding_dim, embedding_dim))
        self.stem = nn.Conv2d(3 + condition_channels, channels, 3, 1, 1)
        widths = [channels * m for m in multipliers]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        width = channels
        for level, level_width in enumerate(widths):
            self.down.append(ResBlock(width, level_width, embedding_dim))
            width = level_width
            if level < len(widths) - 1:
                self.downsample.append(nn.Conv2d(width, width, 3, 2, 1))
        self.middle = ResBlock(width, width, embedding_dim)
        self.up = nn.ModuleList()
        for level_width in reversed(widths):
            self.up.append(ResBlock(width + level_width, level_width, embedding_dim))
            width = level_width
        self.head = nn.Sequential(nn.GroupNorm(8, width), nn.SiLU(), nn.Conv2d(width, 3, 3, 1, 1))
        self.size_multiple = 2 ** (len(widths) - 1)

    def forward(self, noisy: torch.Tensor, condition: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        embedding = self.embed(timestep_embedding(t, self.channels))
        x = self.stem(torch.cat([noisy, condition], dim=1))
        skips = []
        for level, block in enumerate(self.down):
            x = block(x, embedding)
            skips.append(x)
            if level < len(self.downsample):
                x = self.downsample[level](x)
        x = self.middle(x, embedding)
        for level, block in enumerate(self.up):
            if level:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = block(torch.cat([x, skips.pop()], dim=1), embedding)
        return self.head(x)


class DiffusionRefiner(nn.Module):
    """Refines VSR output frames (N, 3, H, W) in [0, 1]; `step` carries the temporal coupling from frame to frame.

    `residual_scale` divides the residual so that the denoiser sees values of about unit spread; `flow_scale`
    is how much the frames are shrunk before the flow is estimated (the VSR output has no more motion detail
    than its low-res input, and the flow costs 16x less at 1/4 size).
    """

    def __init__(self, channels: int = 32, multipliers: tuple[int, ...] = (1, 2, 2), residual_scale: float = 0.1,
                 flow_scale: int = 4) -> None:
        super().__init__()
        self.denoiser = DenoiserUNet(channels, tuple(multipliers))
        self.flow = DisFlow()  # no weights
        self.residual_scale = residual_scale
        self.flow_scale = flow_scale
        self.register_buffer("signal", noise_schedule(), persistent=False)

    def training_loss(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """The DDPM objective: mean squared error of the predicted noise at a random step."""
        clean = (hr - sr) / self.residual_scale
        t = torch.randint(0, TRAINING_STEPS, (sr.shape[0],), device=sr.device)
        noise = torch.randn_like(clean)
        signal = self.signal[t].view(-1, 1, 1, 1)
        noisy = signal.sqrt() * clean + (1 - signal).sqrt() * noise
        return F.mse_loss(self.denoiser(noisy, 2 * sr - 1, t), noise)

    def forward(self, sr: torch.Tensor, sampling: Sampling = Sampling()) -> torch.Tensor:
        """A whole clip (N, T, 3, H, W), refined frame after frame."""
        state, refined = None, []
        for t in range(sr.shape[1]):
            frame, state = self.step(sr[:, t], state, sampling)
            refined.append(frame)
        return torch.stack(refined, dim=1)

    def step(self, sr: torch.Tensor, state: RefinerState | None,
             sampling: Sampling = Sampling()) -> tuple[torch.Tensor, RefinerState]:
        """One frame (N, 3, H, W): its refinement and the state for the next frame."""
        generator = state.generator if state else torch.Generator().manual_seed(sampling.seed)
        fresh = torch.randn(sr.shape, generator=generator).to(sr.device, sr.dtype)
        if state is None or state.sr is None or sampling.coupling <= 0 or state.sr.shape != sr.shape:
            trust, noise, previous = None, fresh, None
        else:
            flow = self.frame_flow(sr, state.sr)
            trust = self.trust(sr, state.sr, flow)
            carry = NOISE_CARRY * trust
            noise = carry * warp_noise(state.noise, flow) + (1 - carry ** 2).sqrt() * fresh
            previous = flow_warp(state.residual, flow, padding_mode="border")
        residual = self.sample(sr, noise, sampling, previous, None if trust is None else sampling.coupling * trust)
        refined = (sr + self.residual_scale * residual).clamp(0, 1)
        return refined, RefinerState(sr, residual, noise, generator)

    def sample(self, sr: torch.Tensor, noise: torch.Tensor, sampling: Sampling,
               previous: torch.Tensor | None = None, pull: torch.Tensor | None = None) -> torch.Tensor:
        """Deterministic DDIM from `noise` to a clean residual; `pull` weighs `previous` into each estimate."""
        multiple = self.denoiser.size_multiple
        condition, (height, width) = pad_to_multiple(2 * sr - 1, multiple)
        x, _ = pad_to_multiple(noise, multiple)
        previous = None if previous is None else pad_to_multiple(previous, multiple)[0]
        pull = None if pull is None else pad_to_multiple(pull, multiple)[0]
        steps = sampling_steps(sampling.steps, sampling.strength)
        signal = self.signal[steps[0]]
        if steps[0] < TRAINING_STEPS - 1:
            # A partial start: the residual starts as the previous frame's (or none), noised to the first step.
            start = previous * pull if previous is not None else torch.zeros_like(x)
            x = signal.sqrt() * start + (1 - signal).sqrt() * x
        for index, t in enumerate(steps):
            signal = self.signal[t]
            t_batch = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
            noise_estimate = self.denoiser(x, condition, t_batch)
            clean = ((x - (1 - signal).sqrt() * noise_estimate) / signal.sqrt()).clamp(-CLEAN_LIMIT, CLEAN_LIMIT)
            if previous is not None:
                clean = clean + pull * (previous - clean)
                noise_estimate = (x - signal.sqrt() * clean) / (1 - signal).sqrt()
            next_signal = self.signal[steps[index + 1]] if index + 1 < len(steps) else torch.ones_like(signal)
            x = next_signal.sqrt() * clean + (1 - next_signal).sqrt() * noise_estimate
        return x[..., :height, :width]

    def frame_flow(self, current: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """Flow from `current` to `previous` at full size, estimated at 1/flow_scale (in fp32)."""
        return estimate_flow(self.flow, current, previous, self.flow_scale)

    @staticmethod
    def trust(current: torch.Tensor, previous: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) in [0, 1]: high where the warped previous frame matches this one and lies in the frame."""
        return photometric_trust(current, previous, flow)


def sampling_steps(steps: int, strength: float) -> list[int]:
    """The descending schedule steps DDIM visits: `steps` of them, from strength * the last down to 0."""
    if steps < 1 or not 0.0 < strength <= 1.0:
        raise ValueError(f"need at least one step and a strength in (0, 1], got {steps} and {strength}")
    start = round(strength * (TRAINING_STEPS - 1))
    return sorted({round(start * (steps - i) / steps) for i in range(steps)}, reverse=True)


def warp_noise(noise: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Noise carried along a flow by nearest-neighbour sampling: still unit-variance white noise, frame after frame.

    Bilinear sampling would average neighbours, which blurs the noise and shrinks its variance; rescaling by
    the shrink assumes independent neighbours, which holds for fresh noise only: applied frame after frame to
    noise that was itself warped, it inflated the variance until the frames were noise (measured: 27.4 dB
    against 33.0 without coupling on clips/val). Picking one value per pixel never changes the distribution;
    the fresh noise mixed in every frame keeps it from sticking to the pixel grid under slow motion.
    """
    return flow_warp(noise, flow, padding_mode="border", interpolation="nearest")


class RefinedVSR(nn.Module):
    """A VSR model followed by the refiner, as one model: for validation and scoring on whole clips.

    `vsr run` refines in its own pipeline stage instead (vsr.pipeline.refinement), so that a windowed model's
    windows still meet one continuous refinement.
    """

    def __init__(self, base: nn.Module, refiner: DiffusionRefiner, sampling: Sampling = Sampling()) -> None:
        super().__init__()
        self.base, self.refiner, self.sampling = base, refiner, sampling
        self.scale = base.scale
        self.context_frames = base.context_frames
        self.size_multiple = base.size_multiple
        self.streams = getattr(base, "streams", False)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.refiner(self.base(lr), self.sampling)

    def step(self, frame: torch.Tensor, state: tuple | None) -> tuple[torch.Tensor, tuple]:
        base_state, refiner_state = state or (None, None)
        sr, base_state = self.base.step(frame, base_state)
        refined, refiner_state = self.refiner.step(sr, refiner_state, self.sampling)
        return refined, (base_state, refiner_state)
