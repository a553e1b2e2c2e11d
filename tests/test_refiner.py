"""The diffusion refiner: sampling, temporal coupling, the pipeline stage, `vsr run --refine`, and its training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import save_file

from tests.conftest import ffprobe, frame_times, make_clip, stream_of
from tests.test_train import sources, write_config  # noqa: F401 - sources is a fixture
from vsr.io.frames import Frame
from vsr.models.frvsr import FRVSR
from vsr.models.refiner import DiffusionRefiner, RefinedVSR, Sampling, sampling_steps, warp_noise
from vsr.models.spynet import SPyNet
from vsr.models.weights import load_state_dict
from vsr.models.zoo import build_refiner
from vsr.pipeline.refinement import refine_frames
from vsr.pipeline.tensors import images_to_tensor, tensor_to_images
from vsr.train.config import load_config
from vsr.train.loop import train


def tiny_refiner() -> DiffusionRefiner:
    torch.manual_seed(0)
    refiner = DiffusionRefiner(channels=8, multipliers=(1, 2)).eval()
    with torch.no_grad():  # an untrained denoiser predicts near zero: scale it up so it visibly changes frames
        refiner.denoiser.head[-1].weight.mul_(50)
    return refiner


def test_a_refined_clip_keeps_its_shape_and_range_on_odd_sizes():
    sr = torch.rand(1, 3, 3, 21, 30)
    with torch.no_grad():
        refined = tiny_refiner()(sr, Sampling(steps=2))
    assert refined.shape == sr.shape
    assert refined.min() >= 0 and refined.max() <= 1
    assert not torch.allclose(refined, sr, atol=1e-3), "the refiner changed nothing"


def test_sampling_is_deterministic_for_a_seed_and_differs_between_seeds():
    refiner, sr = tiny_refiner(), torch.rand(1, 2, 3, 16, 16)
    with torch.no_grad():
        first = refiner(sr, Sampling(steps=2, seed=3))
        again = refiner(sr, Sampling(steps=2, seed=3))
        other = refiner(sr, Sampling(steps=2, seed=4))
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_ddim_visits_the_asked_number_of_descending_steps():
    assert sampling_steps(4, 1.0) == [999, 749, 500, 250]
    assert sampling_steps(1, 1.0) == [999]
    assert sampling_steps(3, 0.5) == [500, 333, 167]
    with pytest.raises(ValueError):
        sampling_steps(0, 1.0)
    with pytest.raises(ValueError):
        sampling_steps(2, 0.0)


def test_noise_carried_along_a_flow_frame_after_frame_keeps_unit_variance():
    torch.manual_seed(0)
    noise = torch.randn(1, 3, 128, 128)
    for _ in range(10):  # the coupling carries each frame's noise on to the next
        flow = torch.rand(1, 2, 128, 128) * 6 - 3  # sub-pixel shifts everywhere
        noise = warp_noise(noise, flow)
    assert abs(noise[..., 8:-8, 8:-8].std().item() - 1.0) < 0.05
    assert torch.allclose(warp_noise(noise, torch.zeros(1, 2, 128, 128)), noise, atol=1e-5)


def test_coupling_keeps_a_still_scene_from_flickering():
    refiner = tiny_refiner()
    still = torch.rand(1, 1, 3, 24, 24).expand(1, 4, 3, 24, 24)
    with torch.no_grad():
        coupled = refiner(still, Sampling(steps=2, coupling=1.0))
        independent = refiner(still, Sampling(steps=2, coupling=0.0))
    coupled_change = (coupled[:, 1:] - coupled[:, :-1]).abs().mean()
    independent_change = (independent[:, 1:] - independent[:, :-1]).abs().mean()
    assert independent_change > 0.01, "the independent frames should differ: their noise does"
    assert coupled_change < 0.05 * independent_change


def test_coupling_follows_the_motion_of_a_pan():
    """What the refiner added to a frame is carried along the flow: on a pan of 4 px a frame (1 px at the flow's
    quarter size), each refined frame matches the previous one moved by the pan, where independent frames
    differ."""
    refiner, shift = tiny_refiner(), 4
    torch.manual_seed(1)
    scene = F.interpolate(torch.rand(1, 3, 24, 40), size=(96, 160), mode="bicubic", align_corners=False).clamp(0, 1)
    pan = torch.stack([torch.roll(scene, t * shift, dims=-1) for t in range(4)], dim=1)  # moving right
    with torch.no_grad():
        coupled = refiner(pan, Sampling(steps=2, coupling=1.0))
        independent = refiner(pan, Sampling(steps=2, coupling=0.0))

    def change_along_pan(refined: torch.Tensor) -> torch.Tensor:
        moved = torch.roll(refined[:, :-1], shift, dims=-1)  # each frame where the pan puts it one frame later
        return (refined[:, 1:] - moved)[..., 16:-16, 24:-24].abs().mean()

    assert change_along_pan(independent) > 0.01, "the independent frames should differ: their noise does"
    assert change_along_pan(coupled) < 0.2 * change_along_pan(independent)


def test_the_pipeline_stage_matches_refining_the_whole_clip():
    refiner = tiny_refiner()
    images = [np.random.default_rng(i).integers(0, 256, (20, 28, 3), dtype=np.uint8) for i in range(3)]
    frames = [Frame(image, pts, None) for pts, image in enumerate(images)]
    streamed = [frame.image for frame in refine_frames(frames, refiner, torch.device("cpu"), Sampling(steps=2),
                                                       scene_cuts=False)]
    with torch.no_grad():
        whole = tensor_to_images(refiner(images_to_tensor(images, torch.device("cpu")), Sampling(steps=2)), np.uint8)
    assert [frame.pts for frame in refine_frames(frames, refiner, torch.device("cpu"))] == [0, 1, 2]
    for got, expected in zip(streamed, whole):
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_a_scene_cut_restarts_the_coupling():
    refiner = tiny_refiner()
    # Coloured: on grey frames the pipeline would make the refiner's output grey (vsr/pipeline/greyscale.py).
    dark, bright = np.full((24, 24, 3), (30, 40, 20), np.uint8), np.full((24, 24, 3), (220, 200, 230), np.uint8)
    frames = [Frame(image, pts, None) for pts, image in enumerate([dark, dark, bright])]
    sampling = Sampling(steps=2, coupling=1.0)
    with_cuts = [f.image for f in refine_frames(frames, refiner, torch.device("cpu"), sampling, scene_cuts=True)]
    # The first frame of the new shot is refined as a first frame is: uncoupled, from its own noise.
    _, state = refiner.step(torch.zeros(1, 3, 24, 24), None, sampling)
    _, state = refiner.step(torch.zeros(1, 3, 24, 24), state, sampling)
    expected, _ = refiner.step(images_to_tensor([bright], torch.device("cpu"))[:, 0], state.after_cut(), sampling)
    assert np.abs(with_cuts[2].astype(int) - tensor_to_images(expected[:, None], np.uint8)[0]).max() <= 1


def test_the_refined_model_streams_as_it_runs_whole():
    torch.manual_seed(0)
    base = FRVSR(mid_channels=8, num_blocks=1).eval()
    model = RefinedVSR(base, tiny_refiner(), Sampling(steps=1))
    lr = torch.rand(1, 3, 3, 8, 16)
    with torch.no_grad():
        whole = model(lr)
        state, frames = None, []
        for t in range(3):
            frame, state = model.step(lr[:, t], state)
            frames.append(frame)
    # The base's two paths differ by float rounding (6e-8), which the untrained, scaled-up refiner amplifies;
    # still well under one 8-bit level (0.004).
    assert torch.allclose(torch.stack(frames, 1), whole, atol=1e-3)


def test_vsr_run_refines_after_any_model_and_keeps_frames_timing_and_audio(tmp_path, run_cli):
    clip = make_clip(tmp_path / "in.mp4", frames=4, width=32, height=24)
    weights = tmp_path / "refiner.safetensors"
    save_file(build_shaped_refiner().state_dict(), str(weights))
    plain = run_cli("run", clip, "-o", tmp_path / "plain.mp4", "--model", "bicubic", "--scale", "2", "--quiet")
    refined = run_cli("run", clip, "-o", tmp_path / "out.mp4", "--model", "bicubic", "--scale", "2",
                      "--refine", "diffusion", "--refine-weights", weights, "--refine-steps", "1", "--quiet")
    assert plain.exit_code == 0 and refined.exit_code == 0, refined.output
    probe = ffprobe(tmp_path / "out.mp4", "-show_streams")
    video = stream_of(probe, "video")
    assert (video["width"], video["height"]) == (64, 48)
    assert frame_times(tmp_path / "out.mp4") == frame_times(clip)
    assert stream_of(probe, "audio")
    assert (tmp_path / "out.mp4").read_bytes() != (tmp_path / "plain.mp4").read_bytes()


def test_refiner_weights_that_do_not_fit_are_refused_in_one_line(tmp_path, run_cli):
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=32, height=24, audio=False)
    wrong = tmp_path / "wrong.safetensors"
    save_file({"x": torch.zeros(1)}, str(wrong))
    for weights, problem in [(wrong, "weights do not fit the refiner"), (tmp_path / "none.safetensors", "no such")]:
        result = run_cli("run", clip, "-o", tmp_path / "out.mp4", "--refine", "diffusion", "--refine-weights",
                         weights)
        assert result.exit_code == 1 and f"{weights.name}: {problem}" in result.output
        assert "Traceback" not in result.output and not (tmp_path / "out.mp4").exists()


def build_shaped_refiner() -> DiffusionRefiner:
    """Random weights in the shape `vsr run --refine diffusion` builds (build_refiner's architecture)."""
    torch.manual_seed(0)
    return DiffusionRefiner(channels=32, multipliers=(1, 2, 2), residual_scale=0.1, flow_scale=4)


def test_build_refiner_loads_weights_exactly(tmp_path):
    weights = tmp_path / "refiner.safetensors"
    expected = build_shaped_refiner().state_dict()
    save_file(expected, str(weights))
    loaded = build_refiner(weights).state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in expected.items())


def test_training_updates_the_denoiser_and_exports_loadable_weights(tmp_path, sources):  # noqa: F811
    path = write_config(tmp_path, sources, steps=2, checkpoint_every=2)
    config = yaml.safe_load(path.read_text())
    config["model"] = {"type": "refiner", "args": {"channels": 8, "multipliers": [1, 2]}}
    config["refiner"] = {"base_model": "bicubic"}
    config["validation"]["every"] = 2
    path.write_text(yaml.safe_dump(config))
    files = train(load_config(path))
    trained = load_state_dict(files.final)
    assert all(key.startswith("denoiser.") for key in trained)  # the flow, DIS, has no weights
    assert build_refiner(files.final).denoiser.stem.weight.shape[0] == 8
    torch.manual_seed(0)  # the seed the run builds its model under
    start = DiffusionRefiner(channels=8, multipliers=(1, 2))
    assert any(not torch.equal(trained[k], v) for k, v in start.state_dict().items() if k.startswith("denoiser."))
    assert "refiner" in files.final.with_suffix(".md").read_text().lower()
    assert files.val_log.is_file()


def test_bench_scores_each_model_with_and_without_refinement(tmp_path, run_cli):
    video = make_clip(tmp_path / "clip.mp4", frames=3, width=64, height=48, audio=False)
    weights = tmp_path / "refiner.safetensors"
    save_file(build_shaped_refiner().state_dict(), str(weights))
    result = run_cli("bench", "--gt", video, "--model", "bicubic", "--refine-weights", weights, "--refine-steps", "1",
                     "--no-temporal", "--json", tmp_path / "r.json", "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["settings"]["refine"]["steps"] == 1
    plain, refined = (report["models"][name]["clips"]["clip"] for name in ("bicubic", "bicubic+refine"))
    assert plain["frames"] == refined["frames"] == 3
    assert plain["psnr_y"] != refined["psnr_y"] and plain["detail"] != refined["detail"]


def test_a_refiner_file_with_the_spynet_it_used_before_dis_still_loads(tmp_path):
    """Refiners trained before the flow was DIS carry a SPyNet under `flow.`: it is left out, the rest loads."""
    expected = build_shaped_refiner().state_dict()
    older = {**expected, **{f"flow.{key}": value for key, value in SPyNet().state_dict().items()}}
    save_file(older, str(tmp_path / "older.safetensors"))
    loaded = build_refiner(tmp_path / "older.safetensors").state_dict()
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[key], value) for key, value in expected.items())


def test_a_refiner_of_another_size_loads_by_its_weights(tmp_path):
    torch.manual_seed(0)
    larger = DiffusionRefiner(channels=16, multipliers=(1, 2, 4, 4))
    save_file(larger.state_dict(), str(tmp_path / "larger.safetensors"))
    loaded = build_refiner(tmp_path / "larger.safetensors")
    assert loaded.denoiser.size_multiple == 8
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in larger.state_dict().items())
