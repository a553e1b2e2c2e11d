"""The refiner as a pipeline stage after any VSR model: one continuous, frame-by-frame pass over its output."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import torch

from vsr.io.frames import Frame
from vsr.models.refiner import DiffusionRefiner, RefinerState, Sampling
from vsr.pipeline.greyscale import keep_greyscale
from vsr.pipeline.scenes import SceneCutDetector
from vsr.pipeline.tensors import images_to_tensor, tensor_to_images


@dataclass(frozen=True)
class Refinement:
    """`vsr run --refine diffusion`: which refiner, sampled how."""

    refiner: DiffusionRefiner
    sampling: Sampling = Sampling()


def refine_frames(frames: Iterable[Frame], refiner: DiffusionRefiner, device: torch.device,
                  sampling: Sampling = Sampling(), scene_cuts: bool = True) -> Iterator[Frame]:
    """Each frame refined with the previous one's state, so memory holds two frames whatever the length.

    At a scene cut the refiner starts afresh, as the VSR models do; the noise generator runs on, so no two
    shots start from the same noise.
    """
    state: RefinerState | None = None
    cuts = SceneCutDetector()
    for frame in frames:
        if scene_cuts and cuts.starts_new_scene(frame.image) and state is not None:
            state = state.after_cut()
        with torch.inference_mode():  # per frame, never across a yield, as upscale_frames does
            sr = images_to_tensor([frame.image], device)[:, 0]
            refined, state = refiner.step(sr, state, sampling)
            image = tensor_to_images(refined[:, None], frame.image.dtype)[0]
        yield replace(frame, image=keep_greyscale(frame.image, image))

