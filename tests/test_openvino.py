"""The OpenVINO engine: the same frames as torch (fp32 within a level, bf16 within a few), every frame size,
recurrent state across steps, the disk cache, and the choice of engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import make_clip

pytest.importorskip("openvino", reason="OpenVINO is not installed (pip install openvino)")

from vsr.backends import openvino_parts  # noqa: E402
from vsr.backends.choice import choose_engine  # noqa: E402
from vsr.backends.openvino_models import OpenVinoBasicVSRPlusPlus, OpenVinoFRVSR, OpenVinoPerFrame  # noqa: E402
from vsr.models.basicvsrpp import BasicVSRPlusPlus  # noqa: E402
from vsr.models.frvsr import FRVSR  # noqa: E402
from vsr.models.srvgg import SRVGGNetCompact  # noqa: E402
from vsr.models.zoo import WEIGHTS_DIR, build_model  # noqa: E402

CPU = torch.device("cpu")


def smooth_frames(count: int, height: int, width: int, seed: int = 0) -> list[torch.Tensor]:
    """Frames of a smooth picture drifting by a pixel a frame, as a model would see them."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((1, 3, height // 4 + 2, width // 4 + 2), dtype=np.float32))
    big = torch.nn.functional.interpolate(coarse, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    return [big[..., i:i + height, i:i + width].contiguous() for i in range(count)]


def stream(model, frames):
    state, outputs = None, []
    with torch.no_grad():
        for frame in frames:
            sr, state = model.step(frame, state)
            outputs.append(sr)
    return outputs


def levels(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest difference in 8-bit levels between two frames as they would be saved."""
    return float((a.clamp(0, 1) * 255).round().sub((b.clamp(0, 1) * 255).round()).abs().max())


def test_frvsr_on_openvino_fp32_steps_as_torch_does_for_several_frame_sizes():
    model = build_model("frvsr")
    engine = OpenVinoFRVSR(model, "fp32")
    for height, width in [(32, 48), (24, 40)]:  # one compiled model per size
        frames = smooth_frames(4, height, width)
        for ours, reference in zip(stream(engine, frames), stream(model, frames)):
            assert ours.shape == (1, 3, 4 * height, 4 * width)
            assert levels(ours, reference) <= 1


def test_frvsr_with_dis_motion_on_openvino_steps_as_torch_does():
    """DIS flow is computed outside the graph; the warp stays in torch and the reconstruction is compiled."""
    torch.manual_seed(8)
    model = FRVSR(mid_channels=8, num_blocks=1, flow="dis").eval()
    engine = OpenVinoFRVSR(model, "fp32")
    frames = smooth_frames(4, 32, 48)
    for ours, reference in zip(stream(engine, frames), stream(model, frames)):
        assert levels(ours, reference) <= 1
    assert "DIS flow" in choose_engine(model, "openvino", CPU, "fp32").description


def test_frvsr_in_bf16_stays_within_a_few_levels_of_fp32():
    model = build_model("frvsr")
    frames = smooth_frames(5, 32, 48)
    bf16 = stream(OpenVinoFRVSR(model, "bf16"), frames)
    reference = stream(model, frames)
    for ours, theirs in zip(bf16, reference):
        error = (ours.clamp(0, 1) - theirs.clamp(0, 1)).pow(2).mean()
        assert 10 * torch.log10(1 / error) > 45  # the recurrence does not let bf16 drift frame after frame
    assert levels(bf16[-1], reference[-1]) <= 8


def test_per_frame_network_on_openvino_matches_torch():
    torch.manual_seed(0)
    model = SRVGGNetCompact(num_feat=8, num_conv=2).eval()
    lr = torch.rand(1, 3, 3, 20, 28)
    with torch.no_grad():
        torch.testing.assert_close(OpenVinoPerFrame(model, "fp32")(lr), model(lr), atol=2e-4, rtol=1e-3)


def test_exports_are_cached_on_disk_and_reused(monkeypatch, tmp_path):
    monkeypatch.setenv("VSR_CACHE_DIR", str(tmp_path))
    torch.manual_seed(0)
    model = FRVSR(mid_channels=8, num_blocks=1).eval()
    frames = smooth_frames(2, 16, 24)
    stream(OpenVinoFRVSR(model, "fp32"), frames)  # exported at the first steps, not before
    assert len(list((tmp_path / "openvino" / "ir").glob("*.xml"))) == 2

    import openvino

    def no_export(*args, **kwargs):
        raise AssertionError("exported again instead of reading the cache")

    monkeypatch.setattr(openvino, "convert_model", no_export)
    again = OpenVinoFRVSR(model, "fp32")  # reads both parts from the cache
    for ours, reference in zip(stream(again, frames), stream(model, frames)):
        assert levels(ours, reference) <= 1
    changed = FRVSR(mid_channels=8, num_blocks=1).eval()  # other weights: another cache entry, so an export
    with pytest.raises(AssertionError, match="exported again"):
        stream(OpenVinoFRVSR(changed, "fp32"), frames)


def test_auto_takes_openvino_on_a_cpu_and_torch_where_it_must():
    frvsr = choose_engine(build_model("frvsr"), "auto", CPU, "auto")
    assert frvsr.backend == "openvino" and isinstance(frvsr.model, OpenVinoFRVSR)
    assert choose_engine(build_model("frvsr"), "torch", CPU, "auto").backend == "torch"
    windowed = choose_engine(build_model("basicvsrpp-small"), "auto", CPU, "auto")
    assert windowed.backend == "openvino" and isinstance(windowed.model, OpenVinoBasicVSRPlusPlus)
    baseline = choose_engine(build_model("bicubic", 2), "openvino", CPU, "auto")
    assert baseline.backend == "torch" and baseline.note == ""
    assert choose_engine(build_model("frvsr"), "auto", torch.device("cuda"), "auto").backend == "torch"


def test_openvino_with_a_gpu_device_is_refused():
    from vsr.errors import VsrError

    with pytest.raises(VsrError, match="runs on the CPU"):
        choose_engine(build_model("frvsr"), "openvino", torch.device("cuda"), "auto")


def test_vsr_run_on_openvino_gives_torchs_frames_in_fp32(tmp_path, run_cli):
    import av

    clip = make_clip(tmp_path / "c.mp4", frames=5, width=48, height=32, audio=False)
    outputs = {}
    for backend in ("torch", "openvino"):
        target = tmp_path / f"{backend}.mkv"
        result = run_cli("run", clip, "-o", target, "--backend", backend, "--precision", "fp32", "--codec", "ffv1")
        assert result.exit_code == 0, result.stderr
        assert f"frvsr ran on {'OpenVINO' if backend == 'openvino' else 'torch'}" in result.stderr
        with av.open(str(target)) as container:
            outputs[backend] = [frame.to_ndarray(format="rgb24").astype(int) for frame in container.decode(video=0)]
    assert len(outputs["openvino"]) == len(outputs["torch"]) == 5
    for ours, theirs in zip(outputs["openvino"], outputs["torch"]):
        assert np.abs(ours - theirs).max() <= 2  # within a level, plus the YUV round trip


def test_tiles_run_on_openvino_with_their_own_state(tmp_path, run_cli):
    clip = make_clip(tmp_path / "c.mp4", frames=3, width=64, height=48, audio=False)
    result = run_cli("run", clip, "-o", tmp_path / "t.mkv", "--tile", "40", "--tile-overlap", "8", "--quiet")
    assert result.exit_code == 0, result.stderr


def tiny_basicvsrpp() -> BasicVSRPlusPlus:
    torch.manual_seed(0)
    model = BasicVSRPlusPlus(mid_channels=8, num_blocks=1, hr_channels=8, deform_groups=2).eval()
    with torch.no_grad():  # learned-looking alignment: offsets and masks that vary, not the zeros of a fresh layer
        for align in model.deform_align.values():
            align.conv_offset[-1].weight.normal_(0, 0.05)
    return model


def test_basicvsrpp_on_openvino_fp32_matches_torch_in_windows_with_a_carry():
    model = tiny_basicvsrpp()
    engine = OpenVinoBasicVSRPlusPlus(model, "fp32")
    height, width = 72, 80  # SPyNet resizes to multiples of 32 (in torch) and back
    clip = torch.stack(smooth_frames(7, height, width), dim=1)
    with torch.inference_mode():
        first, carry = model.forward_window(clip[:, :4], 3)
        second, _ = model.forward_window(clip[:, 3:], 4, carry)
        ours_first, ours_carry = engine.forward_window(clip[:, :4], 3)
        ours_second, _ = engine.forward_window(clip[:, 3:], 4, ours_carry)
    assert ours_first.shape == (1, 3, 3, 4 * height, 4 * width) and ours_second.shape[1] == 4
    assert levels(ours_first, first) <= 1 and levels(ours_second, second) <= 1


def test_basicvsrpp_in_bf16_stays_within_a_few_levels_and_plans_memory_on_torch():
    from vsr.pipeline.window_size import window_memory

    model = tiny_basicvsrpp()
    engine = OpenVinoBasicVSRPlusPlus(model, "bf16")
    clip = torch.stack(smooth_frames(4, 40, 56), dim=1)  # padded to SPyNet's 64x64 minimum, and back
    with torch.inference_mode():
        assert levels(engine(clip), model(clip)) <= 4
    assert window_memory(engine, 40, 56, CPU) == window_memory(model, 40, 56, CPU)


def test_cache_folder_that_cannot_be_written_still_runs(monkeypatch, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("VSR_CACHE_DIR", str(blocked))
    assert openvino_parts.cache_dir() == blocked
    torch.manual_seed(0)
    model = FRVSR(mid_channels=8, num_blocks=1).eval()
    frames = smooth_frames(2, 16, 24)
    for ours, reference in zip(stream(OpenVinoFRVSR(model, "fp32"), frames), stream(model, frames)):
        assert levels(ours, reference) <= 1


def onnx_stream(path, frames):
    """Run an exported FRVSR step in ONNX Runtime, as the export's docstring says: the first frame with itself
    and zeros."""
    onnxruntime = pytest.importorskip("onnxruntime", reason="the test extra installs ONNX Runtime")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    previous_lr, previous_sr, outputs = frames[0], torch.zeros(1, 3, 4 * frames[0].shape[2], 4 * frames[0].shape[3]), []
    for frame in frames:
        feeds = {"frame": frame.numpy(), "previous_lr": previous_lr.numpy(), "previous_sr": previous_sr.numpy()}
        sr = torch.from_numpy(session.run(["sr"], feeds)[0])
        outputs.append(sr)
        previous_lr, previous_sr = frame, sr
    return outputs


def test_export_writes_an_onnx_step_that_streams_as_the_model_does(tmp_path, run_cli):
    """tecogan moves its history by its own FNet, which the step exports with it."""
    pytest.importorskip("onnx", reason="vsr export needs the onnx package")
    target = tmp_path / "tecogan.onnx"
    result = run_cli("export", "--model", "tecogan", "-o", target)
    assert result.exit_code == 0, result.stderr
    assert "frame, previous_lr, previous_sr" in result.stdout
    model = build_model("tecogan")
    for height, width in [(32, 48), (40, 64)]:  # dynamic height and width
        frames = smooth_frames(3, height, width)
        for ours, reference in zip(onnx_stream(target, frames), stream(model, frames)):
            assert ours.shape == (1, 3, 4 * height, 4 * width)
            assert levels(ours, reference) <= 1


def test_frvsr_with_dis_motion_exports_its_step_with_the_flow_as_an_input(tmp_path, run_cli):
    """The default `frvsr` moves its history by OpenCV's DIS, computed outside the graph: the flow is an input."""
    pytest.importorskip("onnx", reason="vsr export needs the onnx package")
    onnxruntime = pytest.importorskip("onnxruntime", reason="the test extra installs ONNX Runtime")
    from vsr.ops.dis_flow import dis_flow

    target = tmp_path / "frvsr.onnx"
    result = run_cli("export", "--model", "frvsr", "-o", target)
    assert result.exit_code == 0, result.stderr
    assert "inputs: frame, previous_sr, flow" in result.stdout
    model = build_model("frvsr")
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    frames = smooth_frames(3, 40, 64)
    previous_lr, previous_sr = frames[0], torch.zeros(1, 3, 160, 256)
    for frame, reference in zip(frames, stream(model, frames)):  # the first frame: zero flow, zero history
        flow = dis_flow(frame, previous_lr) if frame is not frames[0] else torch.zeros(1, 2, 40, 64)
        feeds = {"frame": frame.numpy(), "previous_sr": previous_sr.numpy(), "flow": flow.numpy()}
        sr = torch.from_numpy(session.run(["sr"], feeds)[0])
        assert levels(sr, reference) <= 1
        previous_lr, previous_sr = frame, sr


def test_export_refuses_models_it_cannot_write_and_keeps_existing_files(tmp_path, run_cli):
    pytest.importorskip("onnx", reason="vsr export needs the onnx package")
    target = tmp_path / "m.onnx"
    result = run_cli("export", "--model", "bicubic", "-o", target)
    assert result.exit_code == 1 and "no ONNX export yet" in result.stderr and not target.exists()
    target.write_bytes(b"mine")
    assert run_cli("export", "-o", target).exit_code == 1 and target.read_bytes() == b"mine"


def test_a_windowed_model_exports_for_one_window_and_size_and_runs_in_onnx_runtime(tmp_path, run_cli):
    pytest.importorskip("onnx", reason="vsr export needs the onnx package")
    onnxruntime = pytest.importorskip("onnxruntime", reason="the test extra installs ONNX Runtime")
    from vsr.backends.onnx_export import FixedShape, export_onnx

    model = tiny_basicvsrpp()
    target = tmp_path / "window.onnx"
    assert export_onnx(model, "tiny", target, overwrite=False, fixed=FixedShape(4, 80, 72)) == ["frames"]
    clip = torch.stack(smooth_frames(4, 72, 80), dim=1)  # SPyNet resizes 72x80 to multiples of 32 and back
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    ours = torch.from_numpy(session.run(["sr"], {"frames": clip.numpy()})[0])
    with torch.inference_mode():
        reference = model(clip)
    assert ours.shape == (1, 4, 3, 288, 320) and levels(ours, reference) <= 1
    refused = run_cli("export", "--model", "basicvsrpp-small", "-o", tmp_path / "b.onnx")
    assert refused.exit_code == 1 and "--size WxH" in refused.stderr and not (tmp_path / "b.onnx").exists()


@pytest.mark.parametrize("name", ["frvsr", "frvsr-real", "tecogan", "tecogan-clean"])
def test_frvsr_in_int8_stays_close_to_fp32_over_a_stream(name):
    model = build_model(name)  # the shipped weights, whose calibrated int8 network ships beside them
    frames = smooth_frames(6, 32, 48)
    int8 = stream(OpenVinoFRVSR(model, "int8"), frames)
    reference = stream(model, frames)
    for ours, theirs in zip(int8, reference):
        error = (ours.clamp(0, 1) - theirs.clamp(0, 1)).pow(2).mean()
        assert 10 * torch.log10(1 / error) > 40  # and no drift: the last frame as close as the first


def test_int8_is_refused_where_there_is_no_int8_form(tmp_path, run_cli):
    from vsr.errors import VsrError

    with pytest.raises(VsrError, match="runs on OpenVINO on the CPU"):
        choose_engine(build_model("frvsr"), "torch", CPU, "int8")
    older = WEIGHTS_DIR / "frvsr_bi_x4.safetensors"  # shipped weights with no calibrated int8 network beside them
    with pytest.raises(VsrError, match="no int8 form"):
        choose_engine(build_model("frvsr", weights=older), "auto", CPU, "int8")
    with pytest.raises(VsrError, match="has no int8 form"):
        choose_engine(SRVGGNetCompact(num_feat=8, num_conv=2), "auto", CPU, "int8")


def test_int8_made_for_other_weights_is_refused(tmp_path, run_cli):
    import shutil

    from vsr.backends.int8 import int8_ir_path
    from vsr.models.zoo import ZOO

    shipped = ZOO["frvsr"].bundled_weights
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"  # the same network in fp32: other bytes, so other weights to the check
    save_file({k: v.float().contiguous() for k, v in build_model("frvsr").state_dict().items()}, str(other))
    for suffix in (".xml", ".bin"):  # the shipped int8 network, beside weights it was not made from
        shutil.copy(int8_ir_path(shipped).with_suffix(suffix), int8_ir_path(other).with_suffix(suffix))
    source = make_clip(tmp_path / "in.mp4", frames=2, audio=False)

    result = run_cli("run", source, "-o", tmp_path / "out.mp4", "--weights", other, "--precision", "int8", "--quiet")

    assert result.exit_code == 1 and "calibrated for other weights" in result.stderr
    assert not (tmp_path / "out.mp4").exists()
