"""BasicVSR++: official checkpoints load strictly, shapes, and seamless chunking."""

from __future__ import annotations

import pytest
import torch

from vsr.errors import VsrError
from vsr.models.basicvsrpp import BasicVSRPlusPlus, convert_reference_checkpoint
from vsr.models.zoo import load_into

BRANCHES = ("backward_1", "forward_1", "backward_2", "forward_2")
SPYNET_CONVS = [(32, 8), (64, 32), (32, 64), (16, 32), (2, 16)]  # (out, in) of the 7x7 convs of each level


def residual_blocks(prefix: str, in_channels: int, blocks: int, c: int = 64) -> dict[str, list[int]]:
    keys = {f"{prefix}.main.0.weight": [c, in_channels, 3, 3], f"{prefix}.main.0.bias": [c]}
    for b in range(blocks):
        for conv in ("conv1", "conv2"):
            keys[f"{prefix}.main.2.{b}.{conv}.weight"] = [c, c, 3, 3]
            keys[f"{prefix}.main.2.{b}.{conv}.bias"] = [c]
    return keys


def official_keys(flavour: str) -> dict[str, list[int]]:
    """The key set and shapes of the published c64n7 checkpoints (see shared/REFERENCE_FACTS.md)."""
    keys: dict[str, list[int]] = {"spynet.mean": [1, 3, 1, 1], "spynet.std": [1, 3, 1, 1]}
    for level in range(6):
        for k, (out, inp) in enumerate(SPYNET_CONVS):
            name = f"{k}.conv" if flavour == "mmagic" else f"{2 * k}"
            keys[f"spynet.basic_module.{level}.basic_module.{name}.weight"] = [out, inp, 7, 7]
            keys[f"spynet.basic_module.{level}.basic_module.{name}.bias"] = [out]
    keys.update(residual_blocks("feat_extract", 3, 5))
    for i, branch in enumerate(BRANCHES):
        keys[f"deform_align.{branch}.weight"] = [64, 128, 3, 3]
        keys[f"deform_align.{branch}.bias"] = [64]
        for j, (out, inp) in enumerate([(64, 196), (64, 64), (64, 64), (432, 64)]):
            keys[f"deform_align.{branch}.conv_offset.{2 * j}.weight"] = [out, inp, 3, 3]
            keys[f"deform_align.{branch}.conv_offset.{2 * j}.bias"] = [out]
        keys.update(residual_blocks(f"backbone.{branch}", (2 + i) * 64, 7))
    keys.update(residual_blocks("reconstruction", 320, 5))
    for n in (1, 2):
        name = f"upsample{n}.upsample_conv" if flavour == "mmagic" else f"upconv{n}"
        keys[f"{name}.weight"], keys[f"{name}.bias"] = [256, 64, 3, 3], [256]
    keys.update({"conv_hr.weight": [64, 64, 3, 3], "conv_hr.bias": [64],
                 "conv_last.weight": [3, 64, 3, 3], "conv_last.bias": [3]})
    return keys


def fake_checkpoint(flavour: str) -> dict:
    weights = {k: torch.randn(shape) * 0.01 for k, shape in official_keys(flavour).items()}
    if flavour == "mmagic":
        return {"state_dict": {**{f"generator.{k}": v for k, v in weights.items()},
                               "step_counter": torch.tensor(300000)}}
    return {"params": weights}


@pytest.mark.parametrize("flavour", ["mmagic", "basicsr"])
def test_official_checkpoints_load_strictly(tmp_path, flavour):
    from vsr.models.zoo import build_model

    path = tmp_path / f"{flavour}.pth"
    checkpoint = fake_checkpoint(flavour)
    torch.save(checkpoint, path)

    model = build_model("basicvsrpp", weights=path)

    inner = checkpoint["state_dict"] if flavour == "mmagic" else checkpoint["params"]
    key = "generator.conv_last.weight" if flavour == "mmagic" else "conv_last.weight"
    torch.testing.assert_close(model.conv_last.weight, inner[key])


def test_checkpoints_without_the_spynet_normalisation_buffers_load(tmp_path):
    state = convert_reference_checkpoint({k: v for k, v in fake_checkpoint("basicsr")["params"].items()
                                          if k not in ("spynet.mean", "spynet.std")})
    model = BasicVSRPlusPlus()
    load_into(model, state, tmp_path / "w.pth")
    torch.testing.assert_close(model.spynet.std.flatten(), torch.tensor([0.229, 0.224, 0.225]))


def test_the_official_architecture_has_the_published_parameter_count():
    model = BasicVSRPlusPlus()
    assert sum(p.numel() for p in model.parameters()) == 7_322_927
    for flavour in ("mmagic", "basicsr"):
        official = convert_reference_checkpoint(fake_checkpoint(flavour)["params" if flavour == "basicsr" else
                                                                         "state_dict"])
        official = {k.removeprefix("generator."): list(v.shape) for k, v in official.items()}
        assert {k: list(v.shape) for k, v in model.state_dict().items()} == official


def test_missing_and_unexpected_keys_are_named(tmp_path):
    state = convert_reference_checkpoint(fake_checkpoint("basicsr")["params"])
    del state["conv_hr.bias"]
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(VsrError, match=r"missing conv_hr\.bias.*unexpected extra\.weight"):
        load_into(BasicVSRPlusPlus(), state, tmp_path / "w.pth")


def small_random_model(context: int = 4) -> BasicVSRPlusPlus:
    torch.manual_seed(0)
    model = BasicVSRPlusPlus(mid_channels=16, num_blocks=1, context_frames=context).eval()
    for align in model.deform_align.values():  # zero-initialised: give the offsets something to do
        torch.nn.init.normal_(align.conv_offset[-1].weight, std=0.01)
    return model


@pytest.mark.parametrize("size", [(64, 64), (20, 30), (70, 45)])
def test_any_input_size_gives_four_times_the_size(size):
    lr = torch.rand(1, 3, 3, *size)
    with torch.inference_mode():
        sr = small_random_model()(lr)
    assert sr.shape == (1, 3, 3, 4 * size[0], 4 * size[1])


def test_a_single_frame_works():
    with torch.inference_mode():
        assert small_random_model()(torch.rand(1, 1, 3, 64, 64)).shape == (1, 1, 3, 256, 256)


def chunked_error(model: BasicVSRPlusPlus, frames: torch.Tensor, whole: torch.Tensor, chunk: int,
                  context: int) -> float:
    """Largest difference, in 8-bit levels, between chunked (with `context` frames each side) and whole."""
    from vsr.pipeline.windows import chunk_windows

    worst = 0.0
    for window in chunk_windows(range(frames.shape[1]), chunk, context):
        out = model(frames[:, window.items[0]:window.items[-1] + 1])[:, window.core_start:window.core_stop]
        worst = max(worst, (out - whole[:, window.core[0]:window.core[-1] + 1]).abs().max().item() * 255)
    return worst


@pytest.mark.slow
def test_chunked_equals_whole_within_a_tenth_of_a_level_at_the_default_context():
    from conftest import moving_pattern
    import numpy as np

    model = small_random_model(context=6)
    frames = torch.from_numpy(np.stack([moving_pattern(i, 64, 64) for i in range(16)]))
    frames = frames.permute(0, 3, 1, 2)[None].float() / 255
    with torch.inference_mode():
        whole = model(frames)
        errors = {m: chunked_error(model, frames, whole, 4, m) for m in (0, 2, model.context_frames)}
    # Measured on this model: M=0 0.38 levels, 2: 0.08, 6: 0.005 (and 12: 0.0001).
    assert errors[0] > errors[2] > errors[model.context_frames]
    assert errors[model.context_frames] <= 0.1
    assert errors[model.context_frames] < errors[0] / 10


def test_bf16_autocast_keeps_flows_in_fp32_and_stays_close_to_fp32():
    model = small_random_model()
    lr = torch.rand(1, 3, 3, 64, 64)
    with torch.inference_mode():
        full = model(lr)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            backward, forward = model.compute_flows(lr.bfloat16())
            mixed = model(lr)
    assert backward.dtype == forward.dtype == torch.float32
    assert (mixed.float() - full).abs().max() < 0.05  # bf16 keeps 8 bits of mantissa


def test_precision_flag_runs_end_to_end_and_auto_is_fp32_on_the_cpu(tmp_path):
    from conftest import make_frame_folder
    import numpy as np

    from vsr.io.frame_folder import list_frames, read_png
    from vsr.pipeline.inference import resolve_precision
    from vsr.pipeline.job import upscale_video

    model = small_random_model(context=1)
    assert resolve_precision("auto", model, torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", model, torch.device("cuda")) == "fp16"
    source = make_frame_folder(tmp_path / "in", frames=3, width=32, height=24)
    outputs = {}
    for precision in ("fp32", "bf16"):
        upscale_video(source, tmp_path / precision, model, torch.device("cpu"), chunk=2, precision=precision,
                      progress=False)
        outputs[precision] = [read_png(p).astype(int) for p in list_frames(tmp_path / precision)]
    assert len(outputs["bf16"]) == 3 and outputs["bf16"][0].shape == (96, 128, 3)
    assert max(np.abs(a - b).max() for a, b in zip(outputs["fp32"], outputs["bf16"])) <= 12


def test_the_small_config_costs_at_most_a_quarter_of_c64n7():
    from torch.utils.flop_counter import FlopCounterMode

    from vsr.train.config import load_config

    def flops(model: torch.nn.Module) -> int:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.rand(1, 2, 3, 64, 64))
        return counter.get_total_flops()

    small = load_config("configs/basicvsrpp_small_bi_x4.yaml").model.build()
    assert flops(small) <= 0.25 * flops(BasicVSRPlusPlus())


def test_forward_with_flows_returns_forward_and_the_flows_that_line_frames_up():
    torch.manual_seed(0)
    model = BasicVSRPlusPlus(mid_channels=8, num_blocks=1, hr_channels=8, deform_groups=2).eval()
    lr = torch.rand(1, 3, 3, 20, 24)
    with torch.no_grad():
        sr, flows = model.forward_with_flows(lr)
        torch.testing.assert_close(sr, model(lr))
        assert flows.shape == (1, 2, 2, 20, 24)
        expected = model.spynet(_pad(lr[:, 1]), _pad(lr[:, 0]))[..., :20, :24]
    torch.testing.assert_close(flows[:, 0], expected)


def _pad(frame: torch.Tensor) -> torch.Tensor:
    """As the model pads frames under 64 pixels (replicate, bottom and right) before SPyNet."""
    return torch.nn.functional.pad(frame, (0, 64 - frame.shape[-1], 0, 64 - frame.shape[-2]), mode="replicate")


@pytest.mark.slow
def test_the_whole_model_traces_as_one_graph_for_torch_compile():
    """Each graph break splits what torch.compile can fuse: one per deformable convolution (from tracing the
    torchvision check) once made `--compile` slower than eager, see benchmarks/compile_speedup.py."""
    with torch.inference_mode():
        explanation = torch._dynamo.explain(small_random_model())(torch.rand(1, 3, 3, 64, 64))
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1


def tiny_random_model(context: int) -> BasicVSRPlusPlus:
    """Random weights, 8 channels: cheap enough to run a clip many ways."""
    torch.manual_seed(0)
    model = BasicVSRPlusPlus(mid_channels=8, num_blocks=1, hr_channels=8, deform_groups=2,
                             context_frames=context).eval()
    for align in model.deform_align.values():
        torch.nn.init.normal_(align.conv_offset[-1].weight, std=0.01)
    return model


def windows_with_carry(model: BasicVSRPlusPlus, lr: torch.Tensor, size: int, look_ahead: int) -> torch.Tensor:
    """The clip in windows of `size` core frames and `look_ahead` after, each going on from the last's carry."""
    outputs, carry, start = [], None, 0
    while start < lr.shape[1]:
        core = min(size, lr.shape[1] - start)
        sr, carry = model.forward_window(lr[:, start:start + core + look_ahead], core, carry)
        outputs.append(sr)
        start += core
    return torch.cat(outputs, dim=1)


def test_carried_windows_equal_the_whole_clip():
    """7 frames in windows of 1 and 3. With look-ahead to the clip's end the carry is exact (the frames are the
    whole clip's to rounding); with `context_frames` of look-ahead and no frames before a window, within a tenth
    of a level."""
    model, lr = tiny_random_model(context=2), torch.rand(1, 7, 3, 20, 24)
    with torch.inference_mode():
        whole = model(lr)
        for size in (1, 3):
            torch.testing.assert_close(windows_with_carry(model, lr, size, look_ahead=7), whole, atol=1e-5, rtol=0)
            # Measured: 0.03 levels for both.
            assert (windows_with_carry(model, lr, size, model.context_frames) - whole).abs().max() * 255 <= 0.1


def test_the_pipeline_carries_windows_per_shot_and_per_tile_within_a_level():
    """Through upscale_frames as `vsr run` runs it: windows of 1 and 3 (7 frames), untiled and on two tiles,
    against one window over the clip; the overhead counts every look-ahead frame."""
    from fractions import Fraction

    import numpy as np

    from vsr.io.frames import Frame
    from vsr.pipeline.inference import upscale_frames
    from vsr.pipeline.window_size import WindowStats

    model, rng = tiny_random_model(context=2), np.random.default_rng(0)
    frames = [Frame(rng.integers(0, 256, (20, 40, 3), dtype=np.uint8), i, Fraction(1, 25)) for i in range(7)]

    def run(**options) -> tuple[np.ndarray, WindowStats]:
        stats = WindowStats()
        images = [f.image for f in upscale_frames(frames, model, torch.device("cpu"), scene_cuts=False,
                                                  stats=stats, **options)]
        return np.stack(images).astype(int), stats

    whole, stats = run(chunk=7)
    assert stats.overhead == 1.0
    for size, computed in ((1, 3 * 5 + 2 + 1), (3, 5 + 4 + 1)):
        chunked, stats = run(chunk=size)
        assert np.abs(chunked - whole).max() <= 1
        assert (stats.computed, stats.output) == (computed, 7)
    whole_tiled, _ = run(chunk=7, tile=24, tile_overlap=4)
    chunked_tiled, _ = run(chunk=3, tile=24, tile_overlap=4)
    assert np.abs(chunked_tiled - whole_tiled).max() <= 1


def test_a_scene_cut_starts_the_carry_afresh():
    """Two shots through the pipeline in windows of 3: each shot's frames are those of the shot run alone."""
    import numpy as np
    from test_scenes import two_shots

    from vsr.pipeline.inference import upscale_frames

    model, frames = tiny_random_model(context=2), two_shots(7, 5)

    def images(clip, chunk):
        return [f.image.astype(int) for f in upscale_frames(clip, model, torch.device("cpu"), chunk=chunk)]

    together = images(frames, 3)
    alone = images(frames[:7], 3) + images(frames[7:], 3)
    for a, b in zip(together, alone, strict=True):
        assert np.abs(a - b).max() == 0
