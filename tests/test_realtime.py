"""`vsr run --realtime`: the measured plan, what it says, and that the output is the same video."""

from __future__ import annotations

import re
import time

import torch
import torch.nn.functional as F
from conftest import frame_times, make_clip
from torch import nn

from vsr.io.probe import probe
from vsr.io.writer import container_holds
from vsr.pipeline import realtime
from vsr.pipeline.realtime import RealtimePlan, nvenc_encoder, plan_realtime


class SlowUpscaler(nn.Module):
    """Nearest-neighbour x2 that takes 0.1 s a frame: 10 frames/s, too slow for a 25 fps source."""

    scale, context_frames, size_multiple, streams = 2, 0, 1, False

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        time.sleep(0.1 * lr.shape[1])
        n, t, c, h, w = lr.shape
        return F.interpolate(lr.reshape(n * t, c, h, w), scale_factor=2, mode="nearest").reshape(n, t, c, 2 * h, 2 * w)


def test_a_model_too_slow_for_the_source_is_measured_and_said_so(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=6, fps=25, audio=False)
    plan = plan_realtime(probe(clip), SlowUpscaler(), torch.device("cpu"), chunk=8, target=tmp_path / "out.mp4")
    assert plan.source_fps == 25 and not plan.keeps_up
    assert 5 < plan.fps < 11
    message = plan.message("slow", torch.device("cpu"))
    assert "too slow to keep up" in message and "the source plays 25.00" in message
    assert plan.codec is None and not plan.nvenc_missing  # no GPU: no NVENC, and nothing to say about it


def test_the_plan_says_when_it_keeps_up():
    plan = RealtimePlan("fp16", "h264_nvenc", fps=60.0, source_fps=30.0)
    assert plan.keeps_up
    assert plan.message("frvsr", torch.device("cuda")).endswith(
        "frvsr infers 60.0 frames/s on cuda (fp16, h264_nvenc encoding), measured on the first frames; "
        "the source plays 30.00: keeps up")


def test_the_plan_says_when_a_gpu_has_no_nvenc():
    plan = RealtimePlan("fp16", None, fps=60.0, source_fps=30.0, nvenc_missing=True)
    assert "(fp16, software encoding: no NVENC encoder opens here for this output)" in plan.message(
        "frvsr", torch.device("cuda"))


def test_containers_are_asked_what_they_hold_without_writing_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert container_holds(".mp4", "h264_nvenc") and container_holds(".mkv", "hevc_nvenc")
    assert not container_holds(".webm", "libx264") and container_holds(".webm", "av1_nvenc")
    assert list(tmp_path.iterdir()) == []


def nvenc_gpu(codec: str, pix_fmt: str = "yuv420p") -> bool:
    """What encoder_opens says on a GPU with NVENC: every NVENC encoder opens, H.264's in 8 bits only."""
    return codec.endswith("_nvenc") and not (codec == "h264_nvenc" and pix_fmt != "yuv420p")


def test_nvenc_is_picked_for_the_container_and_the_bit_depth(monkeypatch):
    monkeypatch.setattr(realtime, "encoder_opens", nvenc_gpu)
    assert nvenc_encoder(".mp4", deep=False) == "h264_nvenc"
    assert nvenc_encoder(".mkv", deep=True) == "hevc_nvenc"  # H.264 NVENC has no 10-bit mode
    assert nvenc_encoder(".webm", deep=False) == "av1_nvenc"  # WebM holds VP8, VP9 and AV1 only
    monkeypatch.setattr(realtime, "encoder_opens", lambda codec, pix_fmt="yuv420p": False)  # an H100: no NVENC
    assert nvenc_encoder(".mp4", deep=False) is None


def test_realtime_refuses_an_existing_output_before_measuring(tmp_path, run_cli):
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=False)
    (tmp_path / "out.mp4").write_bytes(b"mine")
    result = run_cli("run", clip, "-o", tmp_path / "out.mp4", "--model", "bicubic", "--realtime")
    assert result.exit_code == 1 and "exists" in result.stderr and "realtime:" not in result.stderr
    assert (tmp_path / "out.mp4").read_bytes() == b"mine"


def test_vsr_run_realtime_reports_its_plan_and_writes_the_same_frames(tmp_path, run_cli):
    clip = make_clip(tmp_path / "in.mp4", frames=5)
    # lanczos: a plain bicubic run would take the YUV-plane path (vsr/pipeline/plane_bicubic.py), other frames
    result = run_cli("run", clip, "-o", tmp_path / "out.mp4", "--model", "lanczos", "--scale", "2", "--realtime",
                     "--quiet")
    assert result.exit_code == 0, result.output
    said = re.search(r"realtime: lanczos infers [\d.]+ frames/s on \w+ \((fp32|bf16|fp16)\b", result.stderr)
    assert said, result.stderr
    # The plan is timed: on a busy machine fp32 may fall short and bf16 be taken. The run must write what a
    # plain run at the precision it reports writes.
    plain = run_cli("run", clip, "-o", tmp_path / "plain.mp4", "--model", "lanczos", "--scale", "2", "--quiet",
                    "--precision", said.group(1))
    assert plain.exit_code == 0
    assert frame_times(tmp_path / "out.mp4") == frame_times(clip)
    assert (tmp_path / "out.mp4").read_bytes() == (tmp_path / "plain.mp4").read_bytes()


def test_realtime_with_the_refiner_is_refused_in_one_line(tmp_path, run_cli):
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=False)
    result = run_cli("run", clip, "-o", tmp_path / "out.mp4", "--realtime", "--refine", "diffusion",
                     "--refine-weights", tmp_path / "any.safetensors")
    assert result.exit_code == 1
    assert "--realtime and --refine do not mix" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out.mp4").exists()
