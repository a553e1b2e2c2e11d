"""`vsr run --realtime`: measure, on the first frames of the source, which settings keep up with its frame rate.

Candidates go in order of preference: on a GPU fp16 first for models that declare themselves half-safe (they
keep their fragile parts in fp32), then fp32; on a CPU fp32, and bf16 only where the CPU has AMX bf16 units
(elsewhere bf16 convolutions are emulated: 2.2x slower than fp32 for FRVSR on an AMD EPYC without them). The
first that keeps up is taken; if none does, the fastest, and the user is told by how much it falls short. On
a GPU the encoder becomes NVENC where one opens for the output's container and the source's bit depth, so that
encoding leaves the CPU free for decoding (data-centre GPUs such as the A100 and H100 have no NVENC: there the
software encoder stays, and the user is told).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import torch
from torch import nn

from vsr.io.frames import VideoInfo
from vsr.io.reader import FrameReader
from vsr.io.writer import container_holds, encoder_opens, encoder_pixel_format, is_video_path
from vsr.pipeline.inference import upscale_frames

SAMPLE_FRAMES = 4  # frames decoded for the measurement: few, so that even a slow model starts soon
NVENC_ENCODERS = ("h264_nvenc", "hevc_nvenc", "av1_nvenc")  # by preference: the most widely playable first


@dataclass(frozen=True)
class RealtimePlan:
    precision: str
    codec: str | None  # None: the container's default encoder
    fps: float  # measured frames/s of inference with this precision
    source_fps: float
    nvenc_missing: bool = False  # on a GPU, no NVENC encoder opened for this output

    @property
    def keeps_up(self) -> bool:
        return self.fps >= self.source_fps

    def message(self, model_name: str, device: torch.device) -> str:
        if self.nvenc_missing:
            encoder = ", software encoding: no NVENC encoder opens here for this output"
        else:
            encoder = f", {self.codec} encoding" if self.codec else ""
        said = (f"{model_name} infers {self.fps:.1f} frames/s on {device.type} ({self.precision}{encoder}), "
                f"measured on the first frames; the source plays {self.source_fps:.2f}")
        if self.keeps_up:
            return f"realtime: {said}: keeps up"
        return (f"realtime: {said}: {self.source_fps / self.fps:.1f}x too slow to keep up; a faster --model "
                "(`vsr models`), a GPU or a smaller input would")


def plan_realtime(info: VideoInfo, model: nn.Module, device: torch.device, chunk: int | str, target: Path | str,
                  codec: str | None = None, frames: list | None = None) -> RealtimePlan:
    """Time inference on the first frames with each candidate precision; keep the first that keeps up.

    `codec` is the user's choice, kept as it is; without one, a GPU gets NVENC where it can. A live source,
    which cannot be read twice, passes sample `frames` of its own instead.
    """
    if frames is None:
        frames = list(islice(FrameReader(info), SAMPLE_FRAMES))
    source_fps = float(info.frame_rate)
    measured = []
    for precision in candidate_precisions(model, device):
        fps = inference_fps(frames, model, device, chunk, precision)
        measured.append((precision, fps))
        if fps >= source_fps:
            break
    precision, fps = measured[-1] if measured[-1][1] >= source_fps else max(measured, key=lambda pair: pair[1])
    nvenc_missing = False
    if codec is None and device.type == "cuda" and isinstance(target, Path) and is_video_path(target):
        codec = nvenc_encoder(target.suffix, info.bit_depth > 8)
        nvenc_missing = codec is None
    return RealtimePlan(precision, codec, fps, source_fps, nvenc_missing)


def nvenc_encoder(suffix: str, deep: bool) -> str | None:
    """The first NVENC encoder that files with this suffix can hold and that opens here at the source's depth."""
    for codec in NVENC_ENCODERS:
        if container_holds(suffix, codec) and encoder_opens(codec, encoder_pixel_format(codec, deep)):
            return codec
    return None


def candidate_precisions(model: nn.Module, device: torch.device) -> list[str]:
    if device.type == "cuda":
        return ["fp16", "fp32"] if getattr(model, "half_safe", False) else ["fp32"]
    return ["fp32", "bf16"] if _cpu_has_amx_bf16() else ["fp32"]


def _cpu_has_amx_bf16() -> bool:
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no way to tell cheaply, so no bf16 guess
        return False


def inference_fps(frames: list, model: nn.Module, device: torch.device, chunk: int | str, precision: str) -> float:
    """Frames/s of the inference stage alone, after one untimed pass (first-call costs, cudnn autotuning)."""
    def one_pass() -> None:
        for _ in upscale_frames(frames, model, device, chunk=chunk, precision=precision):
            pass
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    one_pass()
    started = time.perf_counter()
    one_pass()
    return len(frames) / max(time.perf_counter() - started, 1e-9)
