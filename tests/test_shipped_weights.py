"""The weights inside the package: they load, they come with a card, and they beat bicubic out of the box."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch

from vsr.io.probe import probe
from vsr.io.reader import FrameReader
from vsr.models.zoo import DEFAULT_MODEL, WEIGHTS_DIR, ZOO, build_model
from vsr.degradations import bicubic_downsample, imresize
from vsr.train.validation import ValidationClip, clip_scores, upscale_as_vsr_run

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample.mp4"
BUNDLED = [entry.name for entry in ZOO.values() if entry.bundled_weights]


def test_the_default_model_is_a_trained_one():
    assert ZOO[DEFAULT_MODEL].bundled_weights is not None


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_weights_exist_with_a_model_card(name):
    weights = ZOO[name].bundled_weights
    assert weights.is_file() and weights.parent == WEIGHTS_DIR
    card = weights.with_suffix(".md").read_text()
    for fact in ("Training data", "Degradation", "steps", "PSNR-Y", "SSIM-Y", "bicubic"):
        assert fact in card, f"{weights.with_suffix('.md').name} does not say {fact}"


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_weights_beat_bicubic_on_the_sample_clip(name):
    """A functional check that the weights are the trained ones (the sample comes from training footage; the
    held-out figures are in benchmarks/RESULTS.md)."""
    images = [frame.image for frame in islice(FrameReader(probe(SAMPLE)), 6)]
    hr = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    clip = ValidationClip("sample", hr, bicubic_downsample(hr, 4).float())
    model = build_model(name, 4)
    with torch.no_grad():
        ours, _ = clip_scores(upscale_as_vsr_run(model, clip, torch.device("cpu")), hr, 4)
    bicubic, _ = clip_scores(imresize(clip.lr, tuple(hr.shape[-2:])), hr, 4)
    assert ours > bicubic + 0.25  # measured +0.43 dB on these 6 small frames (80x45 in), random weights lose


def test_a_scale_the_default_model_lacks_is_refused_with_a_hint(run_cli, tmp_path):
    result = run_cli("run", tmp_path / "in.mp4", "-o", tmp_path / "out.mp4", "--scale", "2")
    assert result.exit_code == 1
    assert f"model {DEFAULT_MODEL} upscales by 4, not 2" in result.output and "vsr models" in result.output
