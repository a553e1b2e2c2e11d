"""Greyscale in, greyscale out: whatever colour a model paints, a black-and-white source's output stays grey."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from torch import nn

from vsr.io.frames import Frame
from vsr.pipeline.greyscale import is_greyscale, keep_greyscale
from vsr.pipeline.inference import upscale_frames
from vsr.pipeline.refinement import refine_frames
from vsr.pipeline.tensors import images_to_tensor, tensor_to_images

CPU = torch.device("cpu")
TINT = torch.tensor([0.08, 0.0, -0.08]).view(3, 1, 1)  # what a colour-painting model adds: red up, blue down


class ColourCast(nn.Module):
    """A toy x2 model that tints what it upscales, as a GAN trained on colour footage can tint a grey film."""

    scale = 2
    context_frames = 1
    size_multiple = 1

    def __init__(self, streams: bool) -> None:
        super().__init__()
        self.streams = streams

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return (lr.repeat_interleave(2, -2).repeat_interleave(2, -1) + TINT).clamp(0, 1)

    def step(self, frame: torch.Tensor, state: object) -> tuple[torch.Tensor, object]:
        return self.forward(frame[:, None])[:, 0], state


def grey_frames(count: int, dtype=np.uint8) -> list[Frame]:
    rng = np.random.default_rng(3)
    peak = np.iinfo(dtype).max
    frames = []
    for index in range(count):
        level = rng.integers(peak // 5, peak - peak // 5, (12, 16, 1), endpoint=True)
        frames.append(Frame(np.repeat(level, 3, -1).astype(dtype), index, Fraction(1, 25)))
    return frames


def colour_frames(count: int) -> list[Frame]:
    rng = np.random.default_rng(4)
    return [Frame(rng.integers(40, 200, (12, 16, 3), dtype=np.uint8), index, Fraction(1, 25))
            for index in range(count)]


def luma(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def test_a_grey_frame_is_told_from_one_with_colour_anywhere():
    frame = np.repeat((np.arange(64 * 48) % 250).astype(np.uint8).reshape(48, 64, 1), 3, -1)
    rounded = frame.copy()
    rounded[..., 2] += 2  # decoder rounding: still grey
    assert is_greyscale(frame) and is_greyscale(rounded)
    coloured = frame.copy()
    coloured[13, 7, 0] = np.uint8(int(frame[13, 7, 1]) + 3)  # one pixel, on a row the first look skips
    assert not is_greyscale(coloured)
    deep = frame.astype(np.uint16) * 257
    deep[..., 1] += 2 * 257
    assert is_greyscale(deep)
    deep[20, 30, 1] += 257
    assert not is_greyscale(deep)


@pytest.mark.parametrize("streams", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_a_grey_source_gets_the_models_luma_and_no_colour(streams, dtype):
    model = ColourCast(streams)
    frames = grey_frames(4, dtype)
    outputs = list(upscale_frames(frames, model, CPU, chunk=2))
    assert [out.pts for out in outputs] == [frame.pts for frame in frames]
    for frame, out in zip(frames, outputs):
        painted = tensor_to_images(model(images_to_tensor([frame.image], CPU)), dtype)[0]
        assert not is_greyscale(painted)  # the model alone would tint the frame
        assert out.image.dtype == dtype and out.image.shape == painted.shape
        assert is_greyscale(out.image) and np.array_equal(out.image[..., 0], out.image[..., 2])
        peak = np.iinfo(dtype).max
        assert np.abs(luma(out.image) - luma(painted)).max() <= peak / 255  # within a level of the model's luma


@pytest.mark.parametrize("streams", [False, True])
def test_a_colour_source_keeps_the_models_output_exactly(streams):
    model = ColourCast(streams)
    frames = colour_frames(3)
    for frame, out in zip(frames, upscale_frames(frames, model, CPU, chunk=2)):
        np.testing.assert_array_equal(out.image, tensor_to_images(model(images_to_tensor([frame.image], CPU)),
                                                                  np.uint8)[0])


def test_the_refiner_adds_no_colour_to_a_grey_frame():
    from tests.test_refiner import tiny_refiner  # scaled up so that it visibly changes frames

    frames = grey_frames(2)
    refined = list(refine_frames(frames, tiny_refiner(), CPU))
    assert all(is_greyscale(out.image) for out in refined)
    assert any(not np.array_equal(out.image, frame.image) for out, frame in zip(refined, frames))


def test_keep_greyscale_leaves_a_colour_frame_alone():
    source = colour_frames(1)[0].image
    output = np.random.default_rng(5).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    assert keep_greyscale(source, output) is output


def test_vsr_run_on_a_black_and_white_film_writes_no_chroma(tmp_path, run_cli):
    """End to end with the shipped tecogan, whose colour specks on black-and-white film started this."""
    source = tmp_path / "film.mp4"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(3):
            y, x = np.mgrid[0:48, 0:64]
            level = (128 + 100 * np.sin((x + 2 * index) / 3.0) * np.cos(y / 4.0)).astype(np.uint8)
            picture = av.VideoFrame.from_ndarray(np.repeat(level[..., None], 3, -1), format="rgb24")
            container.mux(stream.encode(picture.reformat(format="yuv420p")))
        container.mux(stream.encode(None))
    target = tmp_path / "out.mp4"
    result = run_cli("run", source, "-o", target, "--model", "tecogan", "--quiet")
    assert result.exit_code == 0, result.stderr
    with av.open(str(target)) as container:
        planes = [frame.to_ndarray(format="yuv444p") for frame in container.decode(video=0)]
    assert len(planes) == 3 and planes[0].shape == (3, 192, 256)
    for yuv in planes:
        assert np.abs(yuv[1:].astype(int) - 128).max() <= 1  # chroma neutral
        assert yuv[0].std() > 20  # and the picture is there
