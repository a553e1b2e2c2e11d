"""TecoGAN's spatio-temporal discriminator: reference parameter names, input stacking, shapes."""

from __future__ import annotations

import pytest
import torch

from vsr.models.discriminator import SpatioTemporalDiscriminator, triplet_input

# state_dict of TecoGAN-PyTorch's SpatioTemporalDiscriminator(in_nc=3, spatial_size=128), written out by hand
# from codes/models/networks/tecogan_nets.py, so that its D checkpoints load by name.
REFERENCE_KEYS = {
    "conv_in.0.weight": (64, 27, 3, 3),
    "conv_in.0.bias": (64,),
    **{
        f"discriminator_block.block{i}.{key}": shape
        for i, (c_in, c_out) in enumerate([(64, 64), (64, 64), (64, 128), (128, 256)], start=1)
        for key, shape in [("0.weight", (c_out, c_in, 4, 4)), ("1.weight", (c_out,)), ("1.bias", (c_out,)),
                           ("1.running_mean", (c_out,)), ("1.running_var", (c_out,)),
                           ("1.num_batches_tracked", ())]
    },
    "dense.weight": (1, 256 * 8 * 8),
    "dense.bias": (1,),
}


def coded_clip(n: int, t: int, c: int, size: int, sign: float = 1.0) -> torch.Tensor:
    """Every pixel of sample i, frame f, channel k holds sign * (100 i + 10 f + k + 1)."""
    i = torch.arange(n).view(n, 1, 1, 1, 1)
    f = torch.arange(t).view(1, t, 1, 1, 1)
    k = torch.arange(c).view(1, 1, c, 1, 1)
    return (sign * (100 * i + 10 * f + k + 1)).float().expand(n, t, c, size, size).contiguous()


def zero_flows(n: int, t: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(n, t // 3, 2, size, size), torch.zeros(n, t // 3, 2, size, size)


def test_parameter_names_and_shapes_equal_the_reference() -> None:
    state = SpatioTemporalDiscriminator().state_dict()
    assert {key: tuple(value.shape) for key, value in state.items()} == REFERENCE_KEYS


def test_reference_shaped_checkpoint_loads_strictly() -> None:
    checkpoint = {key: torch.ones(shape) for key, shape in REFERENCE_KEYS.items()}
    checkpoint = {key: value.long() if key.endswith("num_batches_tracked") else value
                  for key, value in checkpoint.items()}
    SpatioTemporalDiscriminator().load_state_dict(checkpoint, strict=True)


def test_logits_and_feature_shapes() -> None:
    torch.manual_seed(0)
    d = SpatioTemporalDiscriminator(crop_size=32)
    frames, condition = torch.rand(2, 6, 3, 32, 32), torch.rand(2, 6, 3, 32, 32)
    logits, features = d(triplet_input(frames, condition, *zero_flows(2, 6, 32)))
    assert logits.shape == (4, 1)
    assert [tuple(f.shape) for f in features] == [(4, 64, 16, 16), (4, 64, 8, 8), (4, 128, 4, 4), (4, 256, 2, 2)]


def test_wrong_crop_size_raises() -> None:
    d = SpatioTemporalDiscriminator(crop_size=32)
    with pytest.raises(ValueError, match="32x32"):
        d(torch.rand(1, 27, 48, 48))


def test_channel_layout_is_original_warped_condition_each_channel_major() -> None:
    n, t, c, size = 2, 6, 3, 8
    frames, condition = coded_clip(n, t, c, size), coded_clip(n, t, c, size, sign=-1.0)
    stacked = triplet_input(frames, condition, *zero_flows(n, t, size), crop_border_ratio=1.0)
    assert stacked.shape == (n * t // 3, 9 * c, size, size)
    for row in range(n * t // 3):
        sample, triplet = divmod(row, t // 3)
        for channel in range(9 * c):
            part, within = divmod(channel, 3 * c)
            colour, frame = divmod(within, 3)  # r0 r1 r2 g0 g1 g2 b0 b1 b2
            code = 100 * sample + 10 * (3 * triplet + frame) + colour + 1
            expected = -code if part == 2 else code  # parts: original, warped (zero flow), condition
            assert torch.all(stacked[row, channel] == expected), (row, channel)


def test_zero_flow_keeps_the_triplet_inside_the_crop_and_zeroes_outside() -> None:
    torch.manual_seed(0)
    frames = torch.rand(1, 3, 3, 8, 8)
    stacked = triplet_input(frames, torch.rand(1, 3, 3, 8, 8), *zero_flows(1, 3, 8), crop_border_ratio=0.75)
    original, warped = stacked[:, :9], stacked[:, 9:18]
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[1:7, 1:7] = True  # int(8 * 0.75) = 6 pixels, centred
    torch.testing.assert_close(warped[..., inside], original[..., inside], atol=1e-6, rtol=0)
    assert torch.all(warped[..., ~inside] == 0)


def test_one_pixel_dx_warps_the_previous_frame_as_flow_warp_says() -> None:
    torch.manual_seed(0)
    frames = torch.rand(1, 3, 3, 8, 8)
    to_previous, to_next = zero_flows(1, 3, 8)
    to_previous[:, :, 0] = 1.0  # centre pixel (y, x) is frame 0's (y, x + 1)
    stacked = triplet_input(frames, torch.rand(1, 3, 3, 8, 8), to_previous, to_next, crop_border_ratio=1.0)
    warped_previous = stacked[0, 9:18][0::3]  # frame 0 of the warped part, r g b
    torch.testing.assert_close(warped_previous[..., :-1], frames[0, 0, :, :, 1:], atol=1e-6, rtol=0)
    torch.testing.assert_close(warped_previous[..., -1], frames[0, 0, :, :, -1], atol=1e-6, rtol=0)  # border
    torch.testing.assert_close(stacked[0, 9:18][1::3], frames[0, 1], atol=1e-6, rtol=0)  # centre kept
    torch.testing.assert_close(stacked[0, 9:18][2::3], frames[0, 2], atol=1e-6, rtol=0)  # zero flow to next


def test_frames_past_the_last_whole_triplet_are_dropped() -> None:
    torch.manual_seed(0)
    frames, condition = torch.rand(2, 7, 3, 8, 8), torch.rand(2, 7, 3, 8, 8)
    flows = zero_flows(2, 7, 8)
    stacked = triplet_input(frames, condition, *flows)
    assert stacked.shape == (4, 27, 8, 8)
    torch.testing.assert_close(stacked, triplet_input(frames[:, :6], condition[:, :6], *flows), atol=0, rtol=0)


def test_flows_are_detached_frames_are_not() -> None:
    frames = torch.rand(1, 3, 3, 8, 8, requires_grad=True)
    to_previous = torch.full((1, 1, 2, 8, 8), 0.5, requires_grad=True)
    triplet_input(frames, torch.rand(1, 3, 3, 8, 8), to_previous, torch.zeros(1, 1, 2, 8, 8)).sum().backward()
    assert to_previous.grad is None
    assert frames.grad is not None and frames.grad.abs().sum() > 0


def test_flow_of_the_wrong_shape_raises() -> None:
    with pytest.raises(ValueError, match="flow_to_next"):
        triplet_input(torch.rand(1, 6, 3, 8, 8), torch.rand(1, 6, 3, 8, 8), torch.zeros(1, 2, 2, 8, 8),
                      torch.zeros(1, 6, 2, 8, 8))
