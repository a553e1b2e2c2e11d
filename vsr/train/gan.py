"""TecoGAN training: the spatio-temporal discriminator's side of a training step, and the generator's GAN terms.

Per step, as TecoGAN-PyTorch: the generator runs on the ping-pong sequence (frames 0..T-1..0); the
discriminator sees non-overlapping triplets of the forward half, real and generated, each with its outer frames
warped onto the centre along the generator's own (detached) flows and with the upsampled low-res triplet as
condition; it is updated only while it is not already winning. The generator then adds the adversarial loss,
discriminator feature matching (where TecoGAN has VGG features, see losses.py) and the spectral loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vsr.models.discriminator import TRIPLET, SpatioTemporalDiscriminator, triplet_input
from vsr.train.losses import (
    discriminator_loss,
    feature_matching_loss,
    frequency_loss,
    low_frequency_loss,
    generator_adversarial_loss,
    pingpong_loss,
    range_loss,
    should_update_discriminator,
    with_chroma_of,
)


@dataclass(frozen=True)
class GanSettings:
    """The `gan:` section of a config; the defaults are TecoGAN's (BI x4) where it has the term."""

    adversarial_weight: float = 0.01
    feature_matching_weight: float = 0.2  # TecoGAN's VGG weight, given to the features standing in for VGG
    frequency_weight: float = 0.0  # the spectral loss, off unless asked for
    low_frequency_weight: float = 0.0  # colour held to the ground truth in 4x4 block means, off unless asked for
    range_weight: float = 0.0  # over- and undershoot beyond the truth's local range (halos), off unless asked for
    # False: the discriminator sees the generated frames' luma with the ground truth's chroma, so the GAN terms
    # shape texture and leave colour to the pixel losses (losses.with_chroma_of).
    adversarial_colour: bool = True
    pingpong_weight: float = 0.5
    lr: float = 5e-5
    betas: tuple[float, float] = (0.9, 0.999)
    crop_border_ratio: float = 0.75
    update_threshold: float = 0.4
    # Steps at the start of a run in which only the discriminator learns. A run that starts a generator which
    # already makes texture (the shipped tecogan, say) with a fresh discriminator otherwise trains it against
    # an untrained critic, while the pixel loss pulls the texture towards the blur.
    discriminator_warmup: int = 0


class TecoGanCritic:
    """The discriminator, its optimiser, and the losses that involve it."""

    def __init__(self, settings: GanSettings, crop_size: int, device: torch.device) -> None:
        self.settings = settings
        self.discriminator = SpatioTemporalDiscriminator(3, crop_size).to(device)
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=settings.lr, betas=tuple(settings.betas))
        self.updated = False  # whether the last step updated the discriminator, for the logs

    def triplets(self, generator: nn.Module, lr: torch.Tensor, real: torch.Tensor,
                 fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The discriminator's inputs for the real and generated (N, T, 3, H, W) frames of the low-res clip `lr`.

        Both are warped along the same flows and carry the same condition, computed once.
        """
        n, t = lr.shape[:2]
        usable = t // TRIPLET * TRIPLET
        centres, earlier, later = lr[:, 1:usable:3], lr[:, 0:usable:3], lr[:, 2:usable:3]
        with torch.no_grad():
            to_previous = hr_flow(generator, centres.flatten(0, 1), earlier.flatten(0, 1)).unflatten(0, (n, -1))
            to_next = hr_flow(generator, centres.flatten(0, 1), later.flatten(0, 1)).unflatten(0, (n, -1))
        condition = generator.upsample(lr.flatten(0, 1)).unflatten(0, (n, t))
        ratio = self.settings.crop_border_ratio
        if not self.settings.adversarial_colour:
            fake = with_chroma_of(fake, real)
        return (triplet_input(real, condition, to_previous, to_next, ratio),
                triplet_input(fake, condition, to_previous, to_next, ratio))

    def update_discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> None:
        """One discriminator step on real and (detached) generated triplets, if TecoGAN's rule allows it."""
        real_logits, _ = self.discriminator(real)
        fake_logits, _ = self.discriminator(fake.detach())
        self.updated = should_update_discriminator(real_logits, fake_logits, self.settings.update_threshold)
        if self.updated:
            self.optimizer.zero_grad(set_to_none=True)
            discriminator_loss(real_logits, fake_logits).backward()
            self.optimizer.step()

    def generator_terms(self, real: torch.Tensor, fake: torch.Tensor, sr_pingpong: torch.Tensor,
                        sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """The generator's GAN-side loss: adversarial, feature matching, ping-pong, spectral, colour and range terms."""
        s = self.settings
        for parameter in self.discriminator.parameters():
            parameter.requires_grad_(False)  # these terms train the generator only
        fake_logits, fake_features = self.discriminator(fake)
        with torch.no_grad():
            _, real_features = self.discriminator(real)
        for parameter in self.discriminator.parameters():
            parameter.requires_grad_(True)
        loss = s.adversarial_weight * generator_adversarial_loss(fake_logits)
        loss = loss + s.feature_matching_weight * feature_matching_loss(fake_features, real_features)
        loss = loss + s.pingpong_weight * pingpong_loss(sr_pingpong)
        if s.frequency_weight:
            loss = loss + s.frequency_weight * frequency_loss(sr.flatten(0, 1), hr.flatten(0, 1))
        if s.low_frequency_weight:
            loss = loss + s.low_frequency_weight * low_frequency_loss(sr, hr)
        if s.range_weight:
            loss = loss + s.range_weight * range_loss(sr, hr)
        return loss

    def state_dict(self) -> dict:
        return {"discriminator": self.discriminator.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])


def hr_flow(generator: nn.Module, current: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """The generator's flow from `current` to `other`, upsampled to high-res pixels as it warps its outputs."""
    return generator.scale * generator.upsample(generator.flows(current, other))
