"""Training losses: minimum on agreement, hand-computed values, and gradients that flow."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vsr.train.losses import (
    charbonnier_loss,
    discriminator_loss,
    feature_matching_loss,
    frequency_loss,
    grid_loss,
    low_frequency_loss,
    range_loss,
    generator_adversarial_loss,
    pingpong_loss,
    pingpong_sequence,
    should_update_discriminator,
    warping_loss,
    with_chroma_of,
)


def test_charbonnier_is_eps_for_identical_inputs_and_l1_for_large_errors() -> None:
    x = torch.rand(2, 3, 4, 4)
    assert charbonnier_loss(x, x).item() == pytest.approx(1e-6, rel=1e-3)
    y = x + torch.where(torch.rand_like(x) > 0.5, 0.5, -0.3)
    assert charbonnier_loss(y, x).item() == pytest.approx(F.l1_loss(y, x).item(), abs=1e-6)


def test_pingpong_sequence_goes_there_and_back() -> None:
    clip = torch.arange(3.0).view(1, 3, 1, 1, 1)
    assert pingpong_sequence(clip).flatten().tolist() == [0, 1, 2, 1, 0]


def test_pingpong_loss_is_minimal_when_the_passes_agree() -> None:
    torch.manual_seed(0)
    mirrored = pingpong_sequence(torch.rand(2, 4, 3, 5, 5))
    assert pingpong_loss(mirrored).item() == pytest.approx(1e-6, rel=1e-3)


def test_pingpong_loss_compares_each_frame_with_its_backward_twin() -> None:
    outputs = torch.tensor([0.0, 1.0, 9.0, 1.5, 0.5]).view(1, 5, 1, 1, 1)  # frames 0 1 2 1 0
    # frame 0: 0.0 vs 0.5; frame 1: 1.0 vs 1.5; frame 2 is the turning point, compared with nothing
    expected = (math.sqrt(0.5**2 + 1e-12) + math.sqrt(0.5**2 + 1e-12)) / 2
    assert pingpong_loss(outputs).item() == pytest.approx(expected, rel=1e-6)


def test_pingpong_loss_rejects_an_even_length() -> None:
    with pytest.raises(ValueError, match="odd"):
        pingpong_loss(torch.rand(1, 4, 3, 2, 2))


def test_warping_loss_is_minimal_for_the_true_one_pixel_shift() -> None:
    torch.manual_seed(0)
    source = torch.rand(2, 3, 6, 11)
    source[..., -2:] = 0  # content stays off the right edge, so border padding meets no new content
    previous, current = source[..., :10], source[..., 1:]  # current(x) = previous(x + 1)
    shift = torch.zeros(2, 2, 6, 10)
    shift[:, 0] = 1.0
    assert warping_loss(previous, current, shift).item() < 1e-5
    assert warping_loss(previous, current, -shift).item() > 0.1
    five_d = warping_loss(previous.unsqueeze(1), current.unsqueeze(1), shift.unsqueeze(1))
    assert five_d.item() < 1e-5


def test_gan_losses_equal_hand_computed_log_sigmoids() -> None:
    real, fake = torch.tensor([[2.0], [0.0]]), torch.tensor([[-1.0], [3.0]])
    def sigmoid(x: float) -> float:
        return 1 / (1 + math.exp(-x))

    expected_d = (-math.log(sigmoid(2.0)) - math.log(sigmoid(0.0))) / 2 \
        + (-math.log(1 - sigmoid(-1.0)) - math.log(1 - sigmoid(3.0))) / 2
    expected_g = (-math.log(sigmoid(-1.0)) - math.log(sigmoid(3.0))) / 2
    assert discriminator_loss(real, fake).item() == pytest.approx(expected_d, rel=1e-6)
    assert generator_adversarial_loss(fake).item() == pytest.approx(expected_g, rel=1e-6)


def test_gan_losses_stay_finite_for_confident_logits() -> None:
    assert discriminator_loss(torch.tensor([200.0]), torch.tensor([-200.0])).item() == pytest.approx(0, abs=1e-6)
    assert generator_adversarial_loss(torch.tensor([-200.0])).item() == pytest.approx(200.0)


def test_feature_matching_applies_the_layer_weights() -> None:
    real = [torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 2, 2)]
    fake = [torch.full((1, 2, 4, 4), 0.6), torch.full((1, 2, 2, 2), -2.0)]
    assert feature_matching_loss(fake, real, (0.5, 0.25)).item() == pytest.approx(0.5 * 0.6 + 0.25 * 2.0)
    assert feature_matching_loss(real, real, (0.5, 0.25)).item() == 0


def test_feature_matching_trains_the_fake_side_only() -> None:
    fake = [torch.rand(1, 2, 4, 4, requires_grad=True) for _ in range(4)]
    real = [torch.rand(1, 2, 4, 4, requires_grad=True) for _ in range(4)]
    feature_matching_loss(fake, real).backward()
    assert all(f.grad is not None for f in fake) and all(r.grad is None for r in real)


def test_frequency_loss_sees_blur_not_a_shift() -> None:
    torch.manual_seed(0)
    sharp = torch.rand(1, 3, 16, 16)
    blurred = F.avg_pool2d(F.pad(sharp, (1, 1, 1, 1), mode="circular"), 3, stride=1)
    assert frequency_loss(sharp, sharp).item() == 0
    assert frequency_loss(blurred, sharp).item() > 0.05
    # Spectral magnitudes ignore where a texture sits: a circular shift costs nothing, unlike a pixel loss.
    shifted = torch.roll(sharp, shifts=(1, 2), dims=(2, 3))
    assert frequency_loss(shifted, sharp).item() < 1e-5 < F.l1_loss(shifted, sharp).item()


def test_low_frequency_loss_sees_a_colour_shift_not_zero_mean_texture() -> None:
    torch.manual_seed(0)
    picture = torch.rand(1, 2, 3, 16, 16) * 0.5 + 0.25
    checkerboard = 0.2 * (torch.arange(16)[:, None] + torch.arange(16)[None]).remainder(2).float().sub(0.5)
    textured = picture + checkerboard  # invented texture whose 4x4 means are zero
    assert low_frequency_loss(textured, picture).item() < 1e-6 < F.l1_loss(textured, picture).item()
    tinted = picture.clone()
    tinted[:, :, 0, :4, :4] += 0.1  # one block turns redder
    assert low_frequency_loss(tinted, picture).item() == pytest.approx(0.1 / (3 * 16), rel=1e-4)


def test_range_loss_charges_an_outline_beside_an_edge_and_not_texture_within_the_local_range() -> None:
    edge = torch.zeros(1, 1, 3, 16, 16)
    edge[..., 8:] = 0.8  # a bright band on a dark-grey ground
    edge += 0.1
    shifted = edge.clone()
    shifted[..., 7] = 0.9  # the edge a pixel off: inside the local range of the truth
    assert range_loss(shifted, edge).item() == 0.0 < F.l1_loss(shifted, edge).item()
    outlined = edge.clone().requires_grad_(True)
    undershoot = torch.zeros_like(edge)
    undershoot[..., 7] = -0.05  # a dark line along the edge, darker than anything near it in the truth
    loss = range_loss(outlined + undershoot, edge)
    assert loss.item() == pytest.approx(0.05 * 16 / (16 * 16))
    loss.backward()
    assert outlined.grad[..., 7].lt(0).all() and outlined.grad[..., :7].eq(0).all()  # only the outline is pushed


def test_grid_loss_charges_a_pattern_locked_to_the_low_res_grid_and_nothing_else() -> None:
    torch.manual_seed(0)
    picture = F.interpolate(torch.rand(1, 3, 8, 8), size=(32, 32), mode="bilinear", align_corners=False)[:, None]
    columns = torch.arange(32).float()

    def stripes(cycles: int) -> torch.Tensor:  # `cycles` periods across the width, the same on every row
        return 0.05 * torch.cos(2 * math.pi * cycles * columns / 32).expand(32, 32)

    beaded = picture + stripes(8)  # period 4: one blob per low-res pixel at x4
    textured = picture + stripes(6)  # the same strength off the grid's frequencies
    assert grid_loss(picture, picture, 4).item() == 0
    assert grid_loss(textured, picture, 4).item() < 1e-7
    assert grid_loss(beaded, picture, 4).item() > 1e-3
    assert grid_loss(picture, beaded, 4).item() < 1e-7  # less than the truth's energy there is not charged
    with pytest.raises(ValueError, match="multiples of 4"):
        grid_loss(picture[..., :30], picture[..., :30], 4)


def test_with_chroma_of_keeps_the_luma_and_takes_the_chroma_and_passes_luma_gradients_only() -> None:
    torch.manual_seed(0)
    source = torch.rand(2, 3, 8, 8)
    generated = (source + 0.1 * torch.randn(2, 3, 8, 8)).requires_grad_(True)
    mixed = with_chroma_of(generated, source)

    def ycbcr(rgb: torch.Tensor) -> torch.Tensor:
        r, g, b = rgb.unbind(-3)
        y = 0.299 * r + 0.587 * g + 0.114 * b
        return torch.stack([y, (b - y) / 1.772, (r - y) / 1.402], dim=-3)

    assert torch.allclose(ycbcr(mixed)[:, 0], ycbcr(generated)[:, 0], atol=1e-6)
    assert torch.allclose(ycbcr(mixed)[:, 1:], ycbcr(source)[:, 1:], atol=1e-6)
    # A change of the generated frame's colour at constant luma cannot change what the discriminator sees.
    (ycbcr(mixed)[:, 1:] * torch.randn(2, 2, 8, 8)).sum().backward()
    assert generated.grad.abs().max().item() < 1e-6


def test_adaptive_rule_skips_a_discriminator_that_is_winning() -> None:
    confident_real, confident_fake = torch.full((4, 1), 3.0), torch.full((4, 1), -3.0)
    assert not should_update_discriminator(confident_real, confident_fake)
    assert should_update_discriminator(torch.zeros(4, 1), torch.zeros(4, 1))
    # log sigmoid(a) - log sigmoid(-a) = a, so logits of +-0.4 lead by 0.4: update only below the threshold
    assert not should_update_discriminator(torch.tensor([0.4]), torch.tensor([-0.4]), threshold=0.4 - 1e-5)
    assert should_update_discriminator(torch.tensor([0.4]), torch.tensor([-0.4]), threshold=0.4 + 1e-5)


def test_adaptive_rule_floors_log_sigmoid_at_log_1e8_like_the_reference() -> None:
    # Reference: log(sigmoid(0) + 1e-8) - log(sigmoid(-100) + 1e-8) = -0.69 + 18.42 = 17.73, where the exact
    # log-sigmoids would lead by 99.3 and make the rule skip at any threshold below that.
    assert should_update_discriminator(torch.tensor([0.0]), torch.tensor([-100.0]), threshold=18.0)
    assert not should_update_discriminator(torch.tensor([0.0]), torch.tensor([-100.0]), threshold=17.5)


@pytest.mark.parametrize("name", ["charbonnier", "pingpong", "warping", "discriminator", "generator",
                                  "feature_matching", "frequency", "low_frequency", "grid"])
def test_gradients_flow(name: str) -> None:
    torch.manual_seed(0)
    pred = torch.rand(1, 5, 3, 6, 6, requires_grad=True)
    target = torch.rand(1, 5, 3, 6, 6)
    losses = {
        "charbonnier": lambda: charbonnier_loss(pred, target),
        "pingpong": lambda: pingpong_loss(pred),
        "warping": lambda: warping_loss(pred[:, :-1], target[:, 1:], torch.full((1, 4, 2, 6, 6), 0.3)),
        "discriminator": lambda: discriminator_loss(pred.mean((2, 3, 4)), target.mean((2, 3, 4))),
        "generator": lambda: generator_adversarial_loss(pred.mean((2, 3, 4))),
        "feature_matching": lambda: feature_matching_loss([pred[:, i] for i in range(4)],
                                                          [target[:, i] for i in range(4)]),
        "frequency": lambda: frequency_loss(pred, target),
        "low_frequency": lambda: low_frequency_loss(pred[..., :4, :4], target[..., :4, :4]),
        "grid": lambda: grid_loss(pred, target * 0.1, 2),
    }
    losses[name]().backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
