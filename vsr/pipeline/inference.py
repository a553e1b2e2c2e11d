"""Running a model over a frame sequence: in windows for models that look both ways, step by step for streams."""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Iterator

import numpy as np
import torch
from torch import nn

from vsr.io.frames import Frame
from vsr.pipeline.tensors import images_to_tensor, pad_to_multiple, tensor_to_images
from vsr.pipeline.windows import chunk_windows


def uses_streaming(model: nn.Module) -> bool:
    """Recurrent models that stream go frame by frame; per-frame and bidirectional models go by windows."""
    return bool(getattr(model, "streams", False)) and model.context_frames != 0


def upscale_frames(frames: Iterable[Frame], model: nn.Module, device: torch.device, chunk: int = 8,
                   streaming: bool | None = None) -> Iterator[Frame]:
    """Output frame i carries input frame i's pts; memory holds one window, whatever the length."""
    streaming = uses_streaming(model) if streaming is None else streaming
    with torch.inference_mode():
        if streaming:
            yield from _upscale_stepwise(frames, model, device)
        else:
            yield from _upscale_windows(frames, model, device, chunk)


def _model_input(model: nn.Module, images: list[np.ndarray], device: torch.device) -> tuple[torch.Tensor, int, int]:
    """The clip as the model takes it, padded to its size multiple, and the output size to crop back to."""
    as_float = not (getattr(model, "integer_pixels", False) and images[0].dtype == np.uint8)
    clip, (height, width) = pad_to_multiple(images_to_tensor(images, device, as_float), model.size_multiple)
    return clip, height * model.scale, width * model.scale


def _run_model(model: nn.Module, images: list[np.ndarray], device: torch.device) -> list[np.ndarray]:
    clip, height, width = _model_input(model, images, device)
    return tensor_to_images(model(clip)[..., :height, :width], images[0].dtype)


def _upscale_windows(frames: Iterable[Frame], model: nn.Module, device: torch.device,
                     chunk: int) -> Iterator[Frame]:
    for window in chunk_windows(frames, chunk, model.context_frames):
        outputs = _run_model(model, [frame.image for frame in window.items], device)
        for frame, image in zip(window.core, outputs[window.core_start:window.core_stop]):
            yield replace(frame, image=image)


def _upscale_stepwise(frames: Iterable[Frame], model: nn.Module, device: torch.device) -> Iterator[Frame]:
    state = None
    for frame in frames:
        lr, height, width = _model_input(model, [frame.image], device)
        sr, state = model.step(lr[:, 0], state)
        yield replace(frame, image=tensor_to_images(sr[:, None, :, :height, :width], frame.image.dtype)[0])
