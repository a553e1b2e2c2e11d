"""The GPU path: the same pictures as the CPU, half precision close to full, `--realtime` on CUDA end to end.

Skipped where torch sees no CUDA GPU (CI and the development machines); run them where there is one with
`python -m pytest tests/test_gpu.py`.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from conftest import frame_times, make_clip, moving_pattern

from vsr.io.frames import Frame
from vsr.io.probe import probe
from vsr.models.zoo import build_model
from vsr.pipeline.inference import upscale_frames
from vsr.pipeline.job import prepare_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def frames(count: int = 6, width: int = 64, height: int = 48) -> list[Frame]:
    return [Frame(moving_pattern(index, width, height), index, Fraction(1, 25)) for index in range(count)]


def upscale(model_name: str, device: torch.device, precision: str, compile_model: bool = False) -> np.ndarray:
    model = prepare_model(build_model(model_name, 4), device, compile_model, cuda_graphs=compile_model)
    return np.stack([frame.image for frame in upscale_frames(frames(), model, device, chunk=4, precision=precision)])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse)) if mse > 0 else float("inf")


@pytest.mark.parametrize("model_name", ["frvsr", "basicvsrpp-small"])
def test_the_gpu_in_fp32_draws_what_the_cpu_draws(model_name):
    cpu, gpu = upscale(model_name, torch.device("cpu"), "fp32"), upscale(model_name, CUDA, "fp32")
    assert gpu.shape == cpu.shape == (6, 192, 256, 3)
    assert psnr(gpu, cpu) > 45  # TF32 convolutions and other kernels: rounding, not a different picture


@pytest.mark.parametrize("model_name", ["frvsr", "basicvsrpp-small"])
def test_half_precision_stays_close_to_full(model_name):
    assert psnr(upscale(model_name, CUDA, "fp16"), upscale(model_name, CUDA, "fp32")) > 40


def test_compiled_with_cuda_graphs_draws_what_eager_draws():
    assert psnr(upscale("frvsr", CUDA, "fp16", compile_model=True), upscale("frvsr", CUDA, "fp16")) > 45


@pytest.mark.parametrize("flags", [[], ["--compile"]], ids=["eager", "compiled"])
def test_vsr_run_realtime_on_the_gpu_plans_and_writes_every_frame(tmp_path, run_cli, flags):
    clip = make_clip(tmp_path / "in.mp4", frames=12, width=64, height=48)
    result = run_cli("run", clip, "-o", tmp_path / "out.mp4", "--device", "cuda", "--realtime", "--quiet", *flags)
    assert result.exit_code == 0, result.output
    assert "realtime: frvsr infers" in result.stderr and "on cuda (fp16" in result.stderr
    out = probe(tmp_path / "out.mp4")
    assert (out.width, out.height) == (256, 192)
    assert frame_times(tmp_path / "out.mp4") == frame_times(clip)
