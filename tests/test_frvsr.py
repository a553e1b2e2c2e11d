"""FRVSR/TecoGAN generator: reference checkpoints load, stepping equals the clip forward, streams lazily."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import ffprobe, frame_times, make_clip, needs_ffprobe, stream_of
from safetensors.torch import save_file

from vsr.io.frames import Frame
from vsr.models.frvsr import FRVSR, convert_reference_checkpoint, cubic_upsample, space_to_depth
from vsr.models.zoo import WEIGHTS_DIR, build_model
from vsr.pipeline.inference import upscale_frames

CPU = torch.device("cpu")


def reference_keys(num_blocks: int = 10, mid: int = 64) -> dict[str, list[int]]:
    """TecoGAN-PyTorch FRNet's state dict, written out from its tecogan_nets.py (BI: no upsampler buffers)."""
    keys: dict[str, list[int]] = {}

    def conv(name: str, out: int, inp: int, transposed: bool = False) -> None:
        keys[f"{name}.weight"] = [inp, out, 3, 3] if transposed else [out, inp, 3, 3]
        keys[f"{name}.bias"] = [out]

    for name, (a, b) in {"encoder1": (6, 32), "encoder2": (32, 64), "encoder3": (64, 128), "decoder1": (128, 256),
                         "decoder2": (256, 128), "decoder3": (128, 64)}.items():
        conv(f"fnet.{name}.0", b, a)
        conv(f"fnet.{name}.2", b, b)
    conv("fnet.flow.0", 32, 64)
    conv("fnet.flow.2", 2, 32)
    conv("srnet.conv_in.0", mid, 51)
    for block in range(num_blocks):
        conv(f"srnet.resblocks.{block}.conv.0", mid, mid)
        conv(f"srnet.resblocks.{block}.conv.2", mid, mid)
    conv("srnet.conv_up.0", mid, mid, transposed=True)
    conv("srnet.conv_up.2", mid, mid, transposed=True)
    conv("srnet.conv_out", 3, mid)
    return keys


def small_model(degradation: str = "BI", flow: str = "fnet") -> FRVSR:
    torch.manual_seed(0)
    model = FRVSR(mid_channels=8, num_blocks=1, degradation=degradation, flow=flow).eval()
    if flow == "fnet":
        with torch.no_grad():  # a flow net that actually moves things, so the warping is exercised
            model.fnet.flow[-1].bias.copy_(torch.tensor([0.05, -0.03]))
    return model


def panning_clip(frames: int = 5, height: int = 24, width: int = 32, step: int = 2) -> torch.Tensor:
    """(1, T, 3, H, W): a smooth random texture moving `step` pixels right each frame."""
    rng = np.random.default_rng(7)
    coarse = torch.from_numpy(rng.random((1, 3, height // 4 + 2, (width + step * frames) // 4 + 2), dtype=np.float32))
    big = F.interpolate(coarse, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    start = step * frames
    return torch.stack([big[0, :, :height, start - step * t:start - step * t + width] for t in range(frames)])[None]


def test_the_architecture_matches_tecogan_pytorch_key_for_key():
    shapes = {key: list(value.shape) for key, value in FRVSR().state_dict().items()}
    assert shapes == reference_keys()


@pytest.mark.parametrize("degradation", ["BI", "BD"])
def test_reference_checkpoints_load_through_the_zoo(tmp_path, degradation):
    checkpoint = {key: torch.randn(shape) * 0.01 for key, shape in reference_keys().items()}
    if degradation == "BD":  # its BicubicUpsample kept a kernel buffer, and DataParallel a prefix
        checkpoint = {f"module.{key}": value for key, value in checkpoint.items()}
        checkpoint["module.upsample_func.kernels"] = torch.zeros(4, 4)
        checkpoint["module.srnet.upsample_func.kernels"] = torch.zeros(4, 4)
    path = tmp_path / "G.pth"
    torch.save(checkpoint, path)

    model = build_model("tecogan" if degradation == "BI" else "tecogan-bd", weights=path)
    assert model.degradation == degradation

    converted = convert_reference_checkpoint(checkpoint)
    torch.testing.assert_close(model.srnet.conv_out.weight, converted["srnet.conv_out.weight"])
    assert not any("kernels" in key for key in converted)


def test_space_to_depth_uses_tensorflow_channel_order():
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4)
    folded = space_to_depth(x, 2)
    # Channel (dy * 2 + dx) * C + c holds pixel (2i + dy, 2j + dx) of channel c.
    for dy, dx, c in itertools.product(range(2), range(2), range(2)):
        torch.testing.assert_close(folded[0, (dy * 2 + dx) * 2 + c], x[0, c, dy::2, dx::2])
    assert not torch.equal(folded, F.pixel_unshuffle(x, 2))


def test_cubic_upsample_equals_the_sampling_rule_written_out():
    """Output s*i + d is Keys' cubic (a = -0.75) at input position i + d/s, edges replicated."""
    torch.manual_seed(1)
    x = torch.rand(1, 1, 5, 6, dtype=torch.float64)
    scale, a = 4, -0.75

    def weight(t: float) -> float:
        t = abs(t)
        return ((a + 2) * t**3 - (a + 3) * t**2 + 1) if t <= 1 else (a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a)

    def sample_1d(values: torch.Tensor, position: float) -> torch.Tensor:
        base = int(np.floor(position))
        taps = [min(max(base + k, 0), values.shape[-1] - 1) for k in (-1, 0, 1, 2)]
        return sum(weight(position - (base + k)) * values[..., tap] for k, tap in zip((-1, 0, 1, 2), taps))

    expected = torch.zeros(1, 1, 20, 24, dtype=torch.float64)
    for oy, ox in itertools.product(range(20), range(24)):
        column = torch.stack([sample_1d(x[0, 0, row], ox / scale) for row in range(5)])
        expected[0, 0, oy, ox] = sample_1d(column, oy / scale)
    torch.testing.assert_close(cubic_upsample(x, scale), expected)


@pytest.mark.parametrize("degradation, flow", [("BI", "fnet"), ("BD", "fnet"), ("BI", "dis")])
def test_stepping_frame_by_frame_equals_the_clip_forward(degradation, flow):
    model = small_model(degradation, flow)
    torch.manual_seed(2)
    clip = torch.rand(2, 5, 3, 16, 24)
    with torch.no_grad():
        whole = model(clip)
        state, stepped = None, []
        for t in range(clip.shape[1]):
            sr, state = model.step(clip[:, t], state)
            stepped.append(sr)
    assert whole.shape == (2, 5, 3, 64, 96)
    torch.testing.assert_close(torch.stack(stepped, dim=1), whole, atol=1e-6, rtol=0)


def test_each_output_depends_on_the_past_and_never_on_the_future():
    model = small_model()
    torch.manual_seed(3)
    clip = torch.rand(1, 4, 3, 16, 16)
    changed = clip.clone()
    changed[:, 2] = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        before, after = model(clip), model(changed)
    torch.testing.assert_close(before[:, :2], after[:, :2], atol=0, rtol=0)  # no look-ahead
    assert (before[:, 3] - after[:, 3]).abs().max() > 1e-4  # the recurrence carries frame 2 into frame 3


def test_flows_are_returned_for_training_and_move_the_previous_output():
    model = small_model()
    clip = torch.rand(1, 3, 3, 16, 16)
    with torch.no_grad():
        _, flows = model.forward_with_flows(clip)
    assert flows.shape == (1, 2, 2, 16, 16)
    assert flows.abs().max() <= 24.0 and flows.abs().max() > 0


def test_a_fresh_fnet_responds_to_its_input():
    """With torch's default initialisation a fresh FNet's output moved by 1e-5 px between inputs, and the
    FNets trained from there never learned motion; its own initialisation keeps the signal alive."""
    from vsr.models.frvsr import FNet

    torch.manual_seed(5)
    flows = FNet()(torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32))
    assert flows.std(dim=0).mean() > 1e-3
    torch.manual_seed(5)
    assert FNet().flow[-1].weight.abs().max() < 0.01  # and the flows start near zero


def test_dis_motion_aligns_the_history_of_a_pan():
    """`flow="dis"`: the previous output is carried along the pan, so the history the SR network sees lines up
    with the frame; no FNet, no flow weights."""
    model = small_model(flow="dis")
    assert model.fnet is None and not any(key.startswith("fnet.") for key in model.state_dict())
    clip = panning_clip()
    hr = F.interpolate(clip[0], scale_factor=4, mode="bicubic", align_corners=False)
    flows = model.flows(clip[0, 1:], clip[0, :-1])
    assert flows[:, 0, 4:-4, 4:-8].median() == pytest.approx(-2, abs=0.2)  # moved right: sample to the left
    moved = model._warp_output(hr[:-1], flows)
    aligned = (moved - hr[1:])[..., 16:-16, 16:-32].abs().mean()
    assert aligned < 0.25 * (hr[:-1] - hr[1:])[..., 16:-16, 16:-32].abs().mean()


def test_weights_without_fnet_build_the_dis_model(tmp_path):
    """FRVSR weights say which motion they were trained with: without FNet's weights, DIS."""
    torch.manual_seed(6)
    trained = FRVSR(mid_channels=64, num_blocks=10, flow="dis").eval()  # the size `--model frvsr` builds
    save_file({key: value.contiguous() for key, value in trained.state_dict().items()}, str(tmp_path / "w.safetensors"))
    built = build_model("frvsr", weights=tmp_path / "w.safetensors")
    assert built.flow == "dis" and built.fnet is None
    clip = panning_clip(frames=2)
    with torch.no_grad():
        torch.testing.assert_close(built(clip), trained(clip), atol=0, rtol=0)
    assert build_model("frvsr", weights=WEIGHTS_DIR / "frvsr_bi_x4.safetensors").flow == "fnet"  # FNet's weights


def test_bf16_autocast_keeps_flows_in_fp32_and_stays_close():
    model = small_model()
    clip = torch.rand(1, 3, 3, 16, 16)
    with torch.no_grad():
        full = model(clip)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert model.flows(clip[:, 1], clip[:, 0]).dtype == torch.float32
            half = model(clip)
    assert (half.float() - full).abs().max() < 0.05


def frames_forever(height: int = 16, width: int = 24):
    """An endless stream of slowly moving frames, like a live source."""
    rng = np.random.default_rng(4)
    base = rng.integers(0, 256, (height, width + 1000, 3), dtype=np.uint8)
    for index in itertools.count():
        yield Frame(np.ascontiguousarray(base[:, index:index + width]), index, Fraction(1, 25))


def test_streams_endless_input_one_frame_in_one_frame_out():
    model = small_model()
    pulled = 0

    def counted():
        nonlocal pulled
        for frame in frames_forever():
            pulled += 1
            yield frame

    outputs = upscale_frames(counted(), model, CPU, scene_cuts=True)
    for index, frame in enumerate(itertools.islice(outputs, 6)):
        assert frame.pts == index and frame.image.shape == (64, 96, 3)
        # The scene detector looks at one frame at a time, so only the frame just produced has been read.
        assert pulled == index + 1


def test_state_starts_afresh_at_a_scene_cut():
    model = small_model()
    shot_a = list(itertools.islice(frames_forever(), 4))
    shot_b = [Frame(np.full((16, 24, 3), value, np.uint8), 4 + i, Fraction(1, 25)) for i, value in
              enumerate([250, 240, 245])]  # a bright shot after a textured one: a hard cut
    whole = list(upscale_frames(shot_a + shot_b, model, CPU, scene_cuts=True))
    alone = list(upscale_frames(shot_b, model, CPU, scene_cuts=True))
    carried = list(upscale_frames(shot_a + shot_b, model, CPU, scene_cuts=False))
    for joined, separate in zip(whole[4:], alone):
        np.testing.assert_array_equal(joined.image, separate.image)
    assert any(not np.array_equal(c.image, s.image) for c, s in zip(carried[4:], alone))


@needs_ffprobe
def test_vsr_run_tecogan_with_our_weights_end_to_end(tmp_path, run_cli):
    source = make_clip(tmp_path / "in.mp4", frames=5, width=40, height=24)
    weights = tmp_path / "tecogan.safetensors"
    save_file({key: value.contiguous() for key, value in FRVSR().state_dict().items()}, weights)
    target = tmp_path / "out.mp4"

    result = run_cli("run", str(source), "-o", str(target), "--model", "tecogan", "--weights", str(weights),
                     "--quiet")

    assert result.exit_code == 0, result.output
    video = stream_of(ffprobe(target, "-show_streams"), "video")
    assert (video["width"], video["height"]) == (160, 96)
    assert len(frame_times(target)) == 5
