"""Inference over frame sequences and the threaded stages: order, timestamps, equivalence, failures."""

from __future__ import annotations

import threading
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from vsr.io.frames import Frame
from vsr.models.interpolation import BicubicUpscaler
from vsr.pipeline.inference import upscale_frames
from vsr.pipeline.tensors import images_to_tensor, pad_to_multiple, tensor_to_images
from vsr.pipeline.threads import run_threaded


def random_frames(count: int, height: int = 10, width: int = 14, dtype=np.uint8) -> list[Frame]:
    rng = np.random.default_rng(1)
    peak = np.iinfo(dtype).max
    return [Frame(rng.integers(0, peak, (height, width, 3), dtype=dtype, endpoint=True), 7 + 3 * i,
                  Fraction(1, 90)) for i in range(count)]


class TemporalMean(nn.Module):
    """A toy bidirectional model: each output frame depends on its neighbours within `context_frames`."""

    scale = 2
    streams = False

    def __init__(self, context: int, multiple: int = 1) -> None:
        super().__init__()
        self.context_frames = context
        self.size_multiple = multiple

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        assert lr.shape[-2] % self.size_multiple == 0 and lr.shape[-1] % self.size_multiple == 0
        padded = torch.cat([lr[:, :1]] * self.context_frames + [lr] + [lr[:, -1:]] * self.context_frames, dim=1)
        mean = padded.unfold(1, 2 * self.context_frames + 1, 1).mean(-1)
        return mean.repeat_interleave(2, -2).repeat_interleave(2, -1)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tensor_round_trip_is_exact(dtype):
    images = [frame.image for frame in random_frames(3, dtype=dtype)]
    back = tensor_to_images(images_to_tensor(images, torch.device("cpu")), dtype)
    for image, restored in zip(images, back):
        assert restored.dtype == dtype
        np.testing.assert_array_equal(image, restored)


def test_padding_reaches_the_multiple_and_remembers_the_size():
    padded, size = pad_to_multiple(torch.rand(1, 2, 3, 10, 13), 8)
    assert padded.shape[-2:] == (16, 16) and size == (10, 13)


@pytest.mark.parametrize("chunk", [1, 2, 5, 16])
def test_chunked_equals_whole_sequence_for_a_model_with_context(chunk):
    frames = random_frames(11)
    model = TemporalMean(context=2)
    whole = list(upscale_frames(frames, model, torch.device("cpu"), chunk=len(frames)))
    chunked = list(upscale_frames(frames, model, torch.device("cpu"), chunk=chunk))
    for a, b in zip(whole, chunked):
        np.testing.assert_array_equal(a.image, b.image)
    assert len(chunked) == len(frames)


def test_every_output_frame_keeps_its_input_pts():
    frames = random_frames(9)
    out = list(upscale_frames(frames, TemporalMean(context=1), torch.device("cpu"), chunk=4))
    assert [f.pts for f in out] == [f.pts for f in frames]
    assert all(f.time_base == Fraction(1, 90) for f in out)
    assert out[0].image.shape == (20, 28, 3)


def test_inputs_are_padded_to_the_models_multiple_and_cropped_back():
    out = list(upscale_frames(random_frames(3, height=10, width=13), TemporalMean(0, multiple=8),
                              torch.device("cpu"), chunk=2))
    assert out[0].image.shape == (20, 26, 3)


def test_streaming_path_equals_window_path():
    frames = random_frames(6)
    model = BicubicUpscaler(3)
    stepped = list(upscale_frames(frames, model, torch.device("cpu"), streaming=True))
    windowed = list(upscale_frames(frames, model, torch.device("cpu"), chunk=4, streaming=False))
    for a, b in zip(stepped, windowed):
        np.testing.assert_array_equal(a.image, b.image)


def double(items):
    for item in items:
        yield 2 * item


def test_threaded_stages_keep_order():
    assert list(run_threaded(range(100), double, queue_size=3)) == [2 * i for i in range(100)]


def test_an_error_in_the_source_reaches_the_caller():
    def failing():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(run_threaded(failing(), double))


def test_an_error_in_the_stage_reaches_the_caller():
    def broken(items):
        for _ in items:
            raise RuntimeError("model broke")
        yield

    with pytest.raises(RuntimeError, match="model broke"):
        list(run_threaded(range(10), broken))


def test_a_caller_that_stops_early_stops_the_threads():
    before = threading.active_count()
    results = run_threaded(iter(range(10**9)), double, queue_size=2)
    assert next(results) == 0
    results.close()
    assert threading.active_count() == before


class TinyConvSR(nn.Module):
    """A small random conv net with pixel shuffle: a stand-in for a neural model, cheap to compile."""

    scale = 2
    streams = False
    context_frames = 0
    size_multiple = 1

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU(), nn.Conv2d(8, 12, 3, 1, 1), nn.PixelShuffle(2))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.body(lr.flatten(0, 1))).unflatten(0, lr.shape[:2])


@pytest.mark.slow
def test_compiled_model_gives_the_same_frames():
    from vsr.pipeline.job import prepare_model

    frames = random_frames(5)
    device = torch.device("cpu")
    eager = list(upscale_frames(frames, TinyConvSR(), device, chunk=2))
    compiled = list(upscale_frames(frames, prepare_model(TinyConvSR(), device, compile_model=True), device,
                                   chunk=2))
    for a, b in zip(eager, compiled):
        assert np.abs(a.image.astype(int) - b.image).max() <= 1  # fused kernels may round differently


@pytest.mark.slow
def test_compiling_a_streaming_model_compiles_the_steps_it_runs():
    """The pipeline calls step() on a streaming model, never forward(): compiling must reach step()."""
    from torch._dynamo.utils import counters

    from vsr.models.frvsr import FRVSR
    from vsr.pipeline.job import prepare_model

    frames = random_frames(3, height=16, width=16)
    device = torch.device("cpu")
    torch.manual_seed(0)
    model = FRVSR(mid_channels=8, num_blocks=1).eval()
    eager = list(upscale_frames(frames, model, device, scene_cuts=False))
    compiled_before = counters["frames"]["ok"]
    compiled = list(upscale_frames(frames, prepare_model(model, device, compile_model=True), device,
                                   scene_cuts=False))
    assert counters["frames"]["ok"] > compiled_before
    for a, b in zip(eager, compiled, strict=True):
        assert np.abs(a.image.astype(int) - b.image).max() <= 1
