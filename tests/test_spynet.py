"""SPyNet: checkpoint layout, the pyramid's arithmetic, and agreement with a transcription of the reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vsr.models.spynet import SPyNet, image_pyramid, spynet_key_from_mmagic
from vsr.ops.flow_warp import flow_warp

# REFERENCE_FACTS: the five convs of each of the six basic modules, BasicSR names (ReLUs at odd indices).
CONV_SHAPES = {0: (32, 8, 7, 7), 2: (64, 32, 7, 7), 4: (32, 64, 7, 7), 6: (16, 32, 7, 7), 8: (2, 16, 7, 7)}
EXPECTED_STATE = {"mean": (1, 3, 1, 1), "std": (1, 3, 1, 1)}
for _level in range(6):
    for _index, _shape in CONV_SHAPES.items():
        EXPECTED_STATE[f"basic_module.{_level}.basic_module.{_index}.weight"] = _shape
        EXPECTED_STATE[f"basic_module.{_level}.basic_module.{_index}.bias"] = _shape[:1]


def spynet_with_constant_residuals(residuals: list[tuple[float, float]]) -> SPyNet:
    """Every weight zero, so level l's basic module outputs exactly residuals[l] (its last conv's bias)."""
    model = SPyNet()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        for module, residual in zip(model.basic_module, residuals):
            module.basic_module[8].bias.copy_(torch.tensor(residual))
    return model


def images(n: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(height * 1000 + width)
    return torch.rand(n, 3, height, width, generator=generator), torch.rand(n, 3, height, width, generator=generator)


def test_state_dict_matches_basicsr_names_and_shapes() -> None:
    state = SPyNet().state_dict()
    assert {key: tuple(value.shape) for key, value in state.items()} == EXPECTED_STATE


def test_mmagic_keys_map_onto_ours() -> None:
    mmagic_keys = [f"basic_module.{level}.basic_module.{conv}.conv.{kind}"
                   for level in range(6) for conv in range(5) for kind in ("weight", "bias")]
    mapped = [spynet_key_from_mmagic(key) for key in mmagic_keys]
    assert len(mmagic_keys) == 60  # 30 convs
    assert set(mapped) | {"mean", "std"} == set(EXPECTED_STATE)
    assert spynet_key_from_mmagic("basic_module.5.basic_module.4.conv.bias") == "basic_module.5.basic_module.8.bias"
    for untouched in ("mean", "std", "basic_module.0.basic_module.2.weight"):
        assert spynet_key_from_mmagic(untouched) == untouched


@pytest.mark.parametrize("size", [(64, 64), (50, 70), (17, 33)])
def test_zero_weights_give_zero_flow_of_the_input_size(size: tuple[int, int]) -> None:
    ref, supp = images(2, *size)
    flow = spynet_with_constant_residuals([(0.0, 0.0)] * 6)(ref, supp)
    assert flow.shape == (2, 2, *size)
    assert torch.all(flow == 0)


@pytest.mark.parametrize("level", range(6))
def test_residual_at_a_level_is_doubled_per_finer_level_then_scaled_per_axis(level: int) -> None:
    residuals = [(0.0, 0.0)] * 6
    residuals[level] = (1.0, -0.5)
    ref, supp = images(1, 20, 40)  # computed at 32 x 64, then resized back
    flow = spynet_with_constant_residuals(residuals)(ref, supp)
    doubled = 2 ** (5 - level)
    torch.testing.assert_close(flow[:, 0], torch.full((1, 20, 40), 1.0 * doubled * 40 / 64))
    torch.testing.assert_close(flow[:, 1], torch.full((1, 20, 40), -0.5 * doubled * 20 / 32))


def test_each_level_sees_ref_supp_warped_by_the_upsampled_flow_and_that_flow() -> None:
    residual = torch.tensor([0.75, -0.25]).view(1, 2, 1, 1)
    model = spynet_with_constant_residuals([tuple(residual.flatten().tolist())] * 6)
    seen: list[torch.Tensor] = []
    for module in model.basic_module:
        module.register_forward_pre_hook(lambda _module, args: seen.append(args[0]))
    ref, supp = images(1, 32, 64)
    model(ref, supp)
    refs, supps = image_pyramid(model.normalise(ref)), image_pyramid(model.normalise(supp))
    for level, inputs in enumerate(seen):
        flow_up = (2 * (2 ** level - 1) * residual).expand(1, 2, *refs[level].shape[2:])
        torch.testing.assert_close(inputs[:, :3], refs[level])
        torch.testing.assert_close(inputs[:, 6:], flow_up)
        # Warped by the flow it was given (which equals flow_up up to float rounding of the upsampling).
        torch.testing.assert_close(inputs[:, 3:6], flow_warp(supps[level], inputs[:, 6:], padding_mode="border"))


def reference_forward(model: SPyNet, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
    """BasicSR's SpyNet.forward written out on `model`'s weights, with its own flow_warp inlined."""

    def warp(x: torch.Tensor, flow_hw2: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        grid_y, grid_x = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
        grid = torch.stack((grid_x, grid_y), 2) + flow_hw2
        grid = torch.stack((2.0 * grid[..., 0] / max(w - 1, 1) - 1.0, 2.0 * grid[..., 1] / max(h - 1, 1) - 1.0), 3)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)

    h, w = ref.shape[2:]
    w_up, h_up = math.ceil(w / 32) * 32, math.ceil(h / 32) * 32
    ref = F.interpolate(ref, size=(h_up, w_up), mode="bilinear", align_corners=False)
    supp = F.interpolate(supp, size=(h_up, w_up), mode="bilinear", align_corners=False)
    refs, supps = [(ref - model.mean) / model.std], [(supp - model.mean) / model.std]
    for _ in range(5):
        refs.insert(0, F.avg_pool2d(refs[0], kernel_size=2, stride=2, count_include_pad=False))
        supps.insert(0, F.avg_pool2d(supps[0], kernel_size=2, stride=2, count_include_pad=False))
    flow = refs[0].new_zeros(ref.shape[0], 2, refs[0].shape[2] // 2, refs[0].shape[3] // 2)
    for level in range(6):
        up = F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=True) * 2.0
        if up.shape[2] != refs[level].shape[2]:
            up = F.pad(up, [0, 0, 0, 1], mode="replicate")
        if up.shape[3] != refs[level].shape[3]:
            up = F.pad(up, [0, 1, 0, 0], mode="replicate")
        module_input = torch.cat([refs[level], warp(supps[level], up.permute(0, 2, 3, 1)), up], 1)
        flow = model.basic_module[level](module_input) + up
    flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
    flow[:, 0] *= w / w_up
    flow[:, 1] *= h / h_up
    return flow


@pytest.mark.parametrize("size", [(64, 64), (50, 70)])
def test_random_weights_match_reference_transcription(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = SPyNet().eval()
    ref, supp = images(1, *size)
    with torch.no_grad():
        flow = model(ref, supp)
        expected = reference_forward(model, ref, supp)
    assert flow.shape == (1, 2, *size)
    assert expected.abs().max() > 0.1  # the comparison below is not between two near-zero fields
    torch.testing.assert_close(flow, expected, atol=1e-5, rtol=1e-5)


def test_mismatched_images_are_refused() -> None:
    with pytest.raises(ValueError, match="SPyNet"):
        SPyNet()(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 64))
