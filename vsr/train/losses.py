"""Losses for training the video super-resolution models, the recurrent GAN (TecoGAN's recipe) above all.

Criteria follow TecoGAN-PyTorch's training configuration (experiments_BI/TecoGAN/.../train.yml): the pixel,
warping and ping-pong terms are Charbonnier ("CB", mean), the adversarial term is the non-saturating
binary cross-entropy on logits ("GAN"), and the discriminator is updated adaptively (threshold 0.4). The
weights belong to the training loop; TecoGAN's are pixel 1, warping 1, ping-pong 0.5, perceptual 0.2, GAN 0.01.

One term is deliberately not TecoGAN's: its perceptual loss compares VGG-19 features of the output and the
ground truth, and no pretrained VGG is available here (nothing may be downloaded). `frequency_loss` stands in
for it. Pixel losses average the plausible textures for an input into their mean, a blur, and blur is missing
high-frequency energy; comparing the magnitudes of the 2-D spectra penalises exactly that lost energy, needs
no pretrained network, and, as magnitudes ignore phase, tolerates the small misalignments between a plausible
texture and the ground truth that a VGG loss also tolerates. The learned feature space VGG supplied comes
from the discriminator instead: `feature_matching_loss` compares its features of real and generated triplets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from vsr.ops.flow_warp import flow_warp
from vsr.pipeline.scenes import LUMA_WEIGHTS

# TecoGAN's per-layer scales for the discriminator's four block features (its layer_norm 12, 14, 24, 100):
# rough averages of each layer's distance, so that every layer contributes about equally.
TECOGAN_LAYER_WEIGHTS = (1 / 12, 1 / 14, 1 / 24, 1 / 100)


def charbonnier_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean of sqrt((pred - target)^2 + eps^2): a robust L1.

    Like L1 it does not let a few large errors (occlusions, misregistered ground truth) dominate and blurs
    less than L2; unlike L1 it is differentiable at zero, so the gradient fades smoothly instead of flipping
    sign around a perfect pixel.
    """
    # TecoGAN-PyTorch adds its eps unsquared (sqrt(d^2 + 1e-6)), i.e. eps = 1e-3 here: pass eps=1e-3 to
    # reproduce its loss values. The difference is a floor of 1e-3 instead of 1e-6 on a perfect pixel.
    return torch.sqrt((pred - target) ** 2 + eps**2).mean()


def pingpong_sequence(clip: torch.Tensor) -> torch.Tensor:
    """(N, T, ...) -> (N, 2T-1, ...): frames 0 .. T-1 and back down to 0, the turning frame only once.

    A recurrent generator run over this sees every frame twice, once from each direction; `pingpong_loss`
    then asks both passes to agree, which stops artefacts from building up over time.
    """
    return torch.cat([clip, clip.flip(1)[:, 1:]], dim=1)


def pingpong_loss(outputs: torch.Tensor) -> torch.Tensor:
    """Charbonnier distance between the forward and the backward pass over a `pingpong_sequence`.

    `outputs` (N, 2T-1, ...): the forward pass's frames 0 .. T-2 are compared with the backward pass's
    outputs for the same frames. Frame T-1, where the sequence turns, is output once and compared with nothing.
    """
    length = outputs.shape[1]
    if length < 3 or length % 2 == 0:
        raise ValueError(f"pingpong_loss wants the 2T-1 outputs of a pingpong_sequence (odd, >= 3), got {length}")
    t = (length + 1) // 2
    return charbonnier_loss(outputs[:, : t - 1], outputs[:, t:].flip(1))


def warping_loss(lr_previous: torch.Tensor, lr_current: torch.Tensor,
                 flow_current_to_previous: torch.Tensor) -> torch.Tensor:
    """The flow network's unsupervised loss: the previous frame, backward-warped by the estimated flow, should
    look like the current frame (Charbonnier, as TecoGAN).

    Frames (N, C, H, W) or (N, T, C, H, W) and the flow with 2 channels (dx, dy in pixels) in the same layout.
    Border padding, as the reference's warp: where the flow points outside the frame the edge pixel repeats,
    which is a better guess than black.
    """
    if lr_previous.dim() == 5:
        lr_previous, lr_current = lr_previous.flatten(0, 1), lr_current.flatten(0, 1)
        flow_current_to_previous = flow_current_to_previous.flatten(0, 1)
    warped = flow_warp(lr_previous, flow_current_to_previous, padding_mode="border")
    return charbonnier_loss(warped, lr_current)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(real) - log(1 - sigmoid(fake)), each averaged: the discriminator's side of the GAN.

    Computed from logits (binary_cross_entropy_with_logits), which stays finite for confident logits where
    log(sigmoid(x)) would round to log(0).
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(fake), averaged: the non-saturating generator loss.

    Maximising log D(G) rather than minimising log(1 - D(G)) gives the generator strong gradients exactly when
    the discriminator rejects its output confidently, early in training.
    """
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def feature_matching_loss(fake_features: Sequence[torch.Tensor], real_features: Sequence[torch.Tensor],
                          layer_weights: Sequence[float] = TECOGAN_LAYER_WEIGHTS) -> torch.Tensor:
    """Sum over the discriminator's layers of weight * mean |fake - real|, the real features held fixed.

    Generated triplets should produce the discriminator features real ones do; this is the learned feature
    space that stands in for TecoGAN's VGG loss. L1 as TecoGAN's TensorFlow original (TecoGAN-PyTorch reads
    the criterion from a config and ships none). The original sums over channels and scales each layer by
    0.02 / layer_norm; here the mean is taken over channels too and any such factor goes into the weights.
    """
    if not len(fake_features) == len(real_features) == len(layer_weights):
        raise ValueError(f"feature_matching_loss got {len(fake_features)} fake, {len(real_features)} real "
                         f"features and {len(layer_weights)} weights; they must match")
    # detach: this loss trains the generator only; the real features are a target, not something to move.
    return sum(weight * F.l1_loss(fake, real.detach())
               for fake, real, weight in zip(fake_features, real_features, layer_weights))


def frequency_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between the 2-D spectral magnitudes of pred and target, channel by channel
    (FFT over the last two dims).

    Why this replaces TecoGAN's VGG loss: see the module docstring. "ortho" normalisation makes the spectrum's
    energy equal the image's (Parseval), so the loss's scale does not grow with the crop size.
    """
    # float32: cuFFT in half precision takes only power-of-two sizes, and bfloat16 not at all.
    pred_spectrum = torch.fft.rfft2(pred.float(), norm="ortho").abs()
    target_spectrum = torch.fft.rfft2(target.float(), norm="ortho").abs()
    return F.l1_loss(pred_spectrum, target_spectrum)


def low_frequency_loss(pred: torch.Tensor, target: torch.Tensor, block: int = 4) -> torch.Tensor:
    """Mean absolute difference of the block x block means of pred and target, channel by channel.

    Adversarial training may invent texture but must not move colour: the first tecogan weights put an
    orange-brown halo on high-contrast edges. Block means see a colour or brightness shift of a region, and
    none of the zero-mean texture inside it, so this term holds the picture's colours to the ground truth and
    leaves the texture to the discriminator. (N, ..., C, H, W) with H and W multiples of `block`.
    """
    flat_pred, flat_target = pred.flatten(0, -4), target.flatten(0, -4)
    return F.l1_loss(F.avg_pool2d(flat_pred.float(), block), F.avg_pool2d(flat_target.float(), block))


def range_loss(pred: torch.Tensor, target: torch.Tensor, window: int = 5) -> torch.Tensor:
    """Mean amount by which pred leaves the range of target's values in the window around each pixel.

    Adversarial sharpening overshoots: the tecogan weights drew a dark outline beside bright edges, darker
    than anything near it in the ground truth. Texture that stays within the local range of the truth costs
    nothing here, so this holds back halos and outlines without pulling the texture towards the blur the pixel
    losses prefer. (N, ..., C, H, W), channel by channel.
    """
    flat_pred, flat_target = pred.flatten(0, -4).float(), target.flatten(0, -4).float()
    highest = F.max_pool2d(flat_target, window, stride=1, padding=window // 2)
    lowest = -F.max_pool2d(-flat_target, window, stride=1, padding=window // 2)
    return (F.relu(lowest - flat_pred) + F.relu(flat_pred - highest)).mean()


def grid_loss(pred: torch.Tensor, target: torch.Tensor, scale: int) -> torch.Tensor:
    """Mean amount by which pred's spectrum is stronger than target's on the low-res pixel grid's frequencies.

    The shipped tecogan beads hard edges with a dotted pattern whose period is the scale: each low-res pixel
    along an edge becomes a blob of its own. Such a pattern is locked to the low-res grid, so its energy piles
    up on the lines of the 2-D spectrum at multiples of 1/scale cycles per pixel, where natural detail has no
    peak (vsr.metrics.grid_peak, measured on real footage by benchmarks/real_footage.py). Each line's RMS
    magnitude is compared with the truth's: the excess is charged; texture as strong as the truth's on the
    lines, and any texture elsewhere, is free.
    (N, ..., C, H, W), channel by channel; H and W multiples of `scale`.
    """
    height, width = pred.shape[-2:]
    if height % scale or width % scale:
        raise ValueError(f"grid_loss needs sides that are multiples of {scale}, got {width}x{height}")
    rows = [k * height // scale for k in range(1, scale)]
    columns = [k * width // scale for k in range(1, scale) if k * width // scale <= width // 2]

    def line_strengths(frames: torch.Tensor) -> torch.Tensor:
        # float32: see frequency_loss. rfft2 keeps the non-negative horizontal frequencies, and the lines it
        # drops mirror those it keeps.
        power = torch.fft.rfft2(frames.flatten(0, -4).float(), norm="ortho").abs().square()
        on_rows = power[..., rows, :].mean(-1)
        on_columns = power[..., :, columns].mean(-2)
        return (torch.cat([on_rows, on_columns], -1) + 1e-12).sqrt()

    return F.relu(line_strengths(pred) - line_strengths(target)).mean()


def with_chroma_of(frames: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """`frames` (..., 3, H, W) RGB with the luma of `frames` and the chroma of `source` (same shape).

    In YCbCr a change of luma alone adds the same amount to R, G and B, so this is `source` plus the luma
    difference; gradients reach `frames` through its luma only. Fed to the discriminator, it leaves the
    generator's colour to the pixel losses: the discriminator can then shape texture but not paint colour
    fringes (the orange and blue edges of the earlier tecogan weights).
    """
    weights = torch.as_tensor(LUMA_WEIGHTS, dtype=frames.dtype, device=frames.device).view(3, 1, 1)
    luma_difference = ((frames - source) * weights).sum(dim=-3, keepdim=True)
    return source + luma_difference


def should_update_discriminator(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                                threshold: float = 0.4) -> bool:
    """TecoGAN's adaptive rule: update the discriminator only while it is not already winning.

    Its lead is mean log(sigmoid(real) + 1e-8) - mean log(sigmoid(fake) + 1e-8); at `threshold` (0.4 in
    TecoGAN's config) or above, the step skips the discriminator so that the generator can catch up. With
    several processes the reference averages both means across them before comparing.
    """
    with torch.no_grad():
        lead = _log_sigmoid_plus_1e8(real_logits).mean() - _log_sigmoid_plus_1e8(fake_logits).mean()
    return bool(lead < threshold)


def _log_sigmoid_plus_1e8(logits: torch.Tensor) -> torch.Tensor:
    """log(sigmoid(x) + 1e-8), the reference's formula, computed without underflow.

    The 1e-8 floors each term at log(1e-8) = -18.4, which changes the rule's decision for very confident
    logits, so it is kept; logaddexp gives log(a + b) from log a and log b exactly, and logsigmoid stays
    accurate where sigmoid rounds to 0.
    """
    logits = logits.float()
    return torch.logaddexp(F.logsigmoid(logits), torch.full_like(logits, math.log(1e-8)))
