"""The weights inside the package: they load, they come with a card, and they beat bicubic out of the box."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vsr.bench.clips import find_clips
from vsr.bench.runner import Settings, bench_model
from vsr.models.interpolation import MatlabBicubicUpscaler
from vsr.models.zoo import DEFAULT_MODEL, WEIGHTS_DIR, ZOO, build_model

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample.mp4"
CONFIGS = ROOT / "configs"
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
    clips = find_clips(SAMPLE, None, 4, "BI", max_frames=6)
    settings = Settings(torch.device("cpu"), temporal=False)
    ours = bench_model(name, build_model(name, 4), clips, settings).clips[0].summary()["psnr_y"]
    bicubic = bench_model("bicubic-matlab", MatlabBicubicUpscaler(4), clips, settings).clips[0].summary()["psnr_y"]
    assert ours > bicubic + 0.25  # measured +0.43 dB on these 6 small frames (80x45 in), random weights lose


def test_a_scale_the_default_model_lacks_is_refused_with_a_hint(run_cli, tmp_path):
    result = run_cli("run", tmp_path / "in.mp4", "-o", tmp_path / "out.mp4", "--scale", "2")
    assert result.exit_code == 1
    assert f"model {DEFAULT_MODEL} upscales by 4, not 2" in result.output and "vsr models" in result.output


@pytest.mark.parametrize("name", BUNDLED)
def test_the_config_that_trains_bundled_weights_builds_the_same_network(name):
    """`vsr train configs/<weights name>.yaml` must reproduce the shipped model, not a look-alike."""
    from vsr.train.config import load_config

    config = load_config(CONFIGS / f"{ZOO[name].bundled_weights.stem}.yaml")
    trained = {k: v.shape for k, v in config.model.build().state_dict().items()}
    shipped = {k: v.shape for k, v in ZOO[name].build(4).state_dict().items()}
    assert trained == shipped
