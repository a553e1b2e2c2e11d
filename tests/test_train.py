"""`vsr train`: data, exact resume, logs and exports, errors, and DDP on the CPU, with tiny models."""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

from tests.conftest import make_clip
from vsr.degradations import bicubic_downsample
from vsr.errors import VsrError
from vsr.models.frvsr import FRVSR
from vsr.models.srvgg import SRVGGNetCompact
from vsr.models.weights import load_state_dict
from vsr.train.config import load_config
from vsr.train.data import DataSettings, TrainingClips
from vsr.train.gan import GanSettings, TecoGanCritic
from vsr.train.loop import Ranks, StepBatches, train


def textured_image(seed: int, height: int = 96, width: int = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


@pytest.fixture
def sources(tmp_path: Path) -> list[str]:
    video = make_clip(tmp_path / "clip.mp4", frames=8, width=64, height=48, audio=False)
    stills = tmp_path / "stills"
    stills.mkdir()
    for index in range(2):
        image = textured_image(index)
        image[..., 0], image[..., 2] = 20, 230  # BGR: strongly red stills, unlike the test video
        cv2.imwrite(str(stills / f"photo_{index}.png"), image)
    return [str(video), str(stills)]


def write_config(tmp_path: Path, sources: list[str], **train) -> Path:
    config = {
        "name": "tiny",
        "output_dir": str(tmp_path / "run"),
        "model": {"type": "srvgg", "args": {"num_feat": 4, "num_conv": 1}},
        "data": {"sources": sources, "frames": 2, "crop": 8, "scale": 4, "cache_dir": str(tmp_path / "cache")},
        "train": {"steps": 6, "batch_size": 2, "lr": 1e-3, "checkpoint_every": 3, "log_every": 1, **train},
        "validation": {"clips": [sources[0]], "frames": 2, "every": 3},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def read_rows(path: Path) -> list[dict]:
    with path.open() as file:
        return list(csv.DictReader(file))


def test_samples_are_deterministic_pairs_of_bi_degraded_clips(tmp_path, sources):
    settings = DataSettings(sources=sources, frames=3, crop=8, scale=4, cache_dir=str(tmp_path / "cache"))
    clips = TrainingClips(settings, seed=5)
    lr, hr = clips[11]
    assert lr.shape == (3, 3, 8, 8) and hr.shape == (3, 3, 32, 32)
    torch.testing.assert_close(lr, bicubic_downsample(hr, 4))
    _again_lr, again_hr = TrainingClips(settings, seed=5)[11]
    torch.testing.assert_close(again_hr, hr, rtol=0, atol=0)
    assert not torch.equal(clips[12][1], hr)
    assert not torch.equal(TrainingClips(settings, seed=6)[11][1], hr)


def test_clean_fraction_leaves_that_share_of_realworld_clips_undamaged(tmp_path, sources):
    def settings(clean_fraction: float) -> DataSettings:
        return DataSettings(sources=sources, frames=2, crop=8, scale=4, cache_dir=str(tmp_path / "cache"),
                            degradation="realworld", clean_fraction=clean_fraction)

    def is_clean(lr: torch.Tensor, hr: torch.Tensor) -> bool:
        return torch.equal(lr, bicubic_downsample(hr, 4).float())

    damaged, all_clean, some_clean = (TrainingClips(settings(f), seed=2) for f in (0.0, 1.0, 0.5))
    assert not any(is_clean(*damaged[i]) for i in range(8))
    assert all(is_clean(*all_clean[i]) for i in range(8))
    assert 0 < sum(is_clean(*some_clean[i]) for i in range(16)) < 16
    # The same high-res clips either way: only the damage changes.
    assert all(torch.equal(damaged[i][1], some_clean[i][1]) for i in range(4))


@pytest.mark.parametrize(("data", "message"), [
    ({"degradation": "realworld", "clean_fraction": 1.5}, "data.clean_fraction is a share between 0 and 1, not 1.5"),
    ({"clean_fraction": 0.2}, "data.clean_fraction applies to the realworld degradation only"),
])
def test_bad_clean_fraction_is_a_one_line_config_error(tmp_path, sources, data, message):
    config = yaml.safe_load(write_config(tmp_path, sources).read_text())
    config["data"].update(data)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(VsrError, match=f"bad.yaml: {message}"):
        load_config(tmp_path / "bad.yaml")


def test_both_kinds_of_source_are_drawn(tmp_path, sources):
    settings = DataSettings(sources=sources, frames=2, crop=8, scale=4, cache_dir=str(tmp_path / "cache"),
                            image_fraction=0.5)
    clips = TrainingClips(settings)
    assert len(clips.videos) == 1 and len(clips.images) == 2
    # The stills are strongly red and the test video is not: clips of both kinds must show up.
    redness = [(hr[:, 0] - hr[:, 2]).mean().item() for _, hr in (clips[i] for i in range(16))]
    assert max(redness) > 0.7 and min(redness) < 0.5


def test_tall_videos_are_shrunk_by_a_whole_factor_with_area_averaging(tmp_path):
    video = make_clip(tmp_path / "tall.mp4", frames=4, width=64, height=48, audio=False)
    settings = DataSettings(sources=[str(video)], frames=2, crop=4, scale=4, cache_dir=str(tmp_path / "cache"),
                            max_source_height=20)
    shrunk = TrainingClips(settings).videos[0].frames
    whole = TrainingClips(DataSettings(sources=[str(video)], frames=2, crop=4, scale=4,
                                       cache_dir=str(tmp_path / "cache"))).videos[0].frames
    assert shrunk.shape == (4, 16, 21, 3) and whole.shape == (4, 48, 64, 3)  # 48 px -> factor 3
    expected = cv2.resize(np.asarray(whole[1]), (21, 16), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(shrunk[1], expected)


def test_bf16_autocast_training_steps_and_stays_close_to_fp32(tmp_path, sources):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    fp32 = train(load_config(write_config(tmp_path / "a", sources)))
    bf16 = train(load_config(write_config(tmp_path / "b", sources, autocast="bf16")))
    losses = [[float(row["loss"]) for row in read_rows(run.train_log)] for run in (fp32, bf16)]
    assert losses[0] == pytest.approx(losses[1], rel=0.05)  # same data, same start: bf16 rounding only
    assert losses[0] != losses[1]  # and it did run in bf16
    weights = load_state_dict(bf16.final)
    assert all(tensor.dtype == torch.float32 for tensor in weights.values())  # the master weights stay fp32


def test_step_batches_give_each_rank_its_own_samples():
    ranks = [Ranks(rank, 2, rank) for rank in range(2)]
    batches = [list(StepBatches(3, 5, 2, r)) for r in ranks]
    assert batches[0] == [[12, 13], [16, 17]] and batches[1] == [[14, 15], [18, 19]]


def test_resume_gives_the_same_loss_curve_and_weights(tmp_path, sources):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    files = train(load_config(write_config(tmp_path / "a", sources)))
    interrupted = load_config(write_config(tmp_path / "b", sources))
    train(interrupted, stop_after=4)  # checkpoints at 3 and 4 (the end of this part); then a "crash"
    resumed = train(interrupted, resume=True)
    losses = [float(row["loss"]) for row in read_rows(files.train_log)]
    assert [row["step"] for row in read_rows(resumed.train_log)] == [str(s) for s in range(1, 7)]
    # Equal up to the float noise of multi-threaded kernels (oneDNN may sum in another order run to run).
    assert [float(row["loss"]) for row in read_rows(resumed.train_log)] == pytest.approx(losses, rel=1e-5)
    a, b = load_state_dict(files.final), load_state_dict(resumed.final)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_a_run_writes_logs_plot_and_weights_that_load_with_a_card(tmp_path, sources, run_cli):
    config = write_config(tmp_path, sources)
    result = run_cli("train", config, "--steps", "3")
    assert result.exit_code == 0, result.output
    assert "step 3/6" in result.stderr and "validation at step 3: PSNR-Y" in result.stderr
    run = tmp_path / "run"
    assert [int(r["step"]) for r in read_rows(run / "train_log.csv")] == [1, 2, 3]
    validation = read_rows(run / "val_log.csv")
    assert [r["clip"] for r in validation] == ["clip"] and float(validation[0]["bicubic_psnr_y"]) > 20
    assert (run / "curves.png").stat().st_size > 1000
    model = SRVGGNetCompact(num_feat=4, num_conv=1)
    model.load_state_dict(load_state_dict(run / "best.safetensors"))
    card = (run / "best.md").read_text()
    assert "bicubic PSNR-Y" in card and "srvgg" in card and "3 of 6 steps" in card
    again = run_cli("train", config)
    assert again.exit_code == 1 and "--resume" in again.output


def test_bad_configs_are_named(tmp_path, run_cli):
    missing = run_cli("train", tmp_path / "nope.yaml")
    assert missing.exit_code == 1 and "nope.yaml: no such config file" in missing.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nmodel: {type: srvgg}\n")
    with pytest.raises(VsrError, match="broken.yaml: missing setting 'data'"):
        load_config(broken)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump({"name": "x", "model": {"type": "srvgg"}, "data": {"sources": ["a"]},
                                     "train": {"steps": 1, "speed": 3}}))
    with pytest.raises(VsrError, match="bad setting"):
        load_config(wrong)


def test_the_shipped_configs_load_and_build():
    for path in sorted(Path("configs").glob("*.yaml")):
        config = load_config(path)
        model = config.model.build()
        if config.refiner is None:  # a refiner works at the output's size, whatever the scale
            assert model.scale == config.data.scale, path


@pytest.mark.slow
def test_two_ddp_processes_on_the_cpu_train_one_model(tmp_path, sources):
    config = write_config(tmp_path, sources, steps=2, checkpoint_every=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # A port free now, not a fixed one: a fixed port still held by an earlier run (another checkout's suite,
    # say) left the rendezvous hanging until the timeout.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
               "-m", "vsr", "train", str(config)]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        _, stderr = run.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        # SIGTERM, which torchrun passes on to its workers (each in a session of its own): killed outright, it
        # would leave them hanging, each holding a core for the rest of the suite.
        run.terminate()
        run.communicate(timeout=60)
        raise
    assert run.returncode == 0, stderr[-2000:]
    rows = read_rows(tmp_path / "run" / "train_log.csv")
    assert [r["step"] for r in rows] == ["1", "2"]  # rank 0 alone writes the logs
    assert (tmp_path / "run" / "final.safetensors").exists()


def gan_config(tmp_path: Path, sources: list[str], steps: int) -> Path:
    config = {
        "name": "tiny_gan",
        "output_dir": str(tmp_path / "run"),
        "model": {"type": "frvsr", "args": {"mid_channels": 8, "num_blocks": 1}},
        "data": {"sources": sources, "frames": 3, "crop": 16, "scale": 4, "cache_dir": str(tmp_path / "cache")},
        "train": {"steps": steps, "batch_size": 1, "checkpoint_every": 1, "log_every": 1, "warp_loss_weight": 1.0,
                  "channels_last": True, "grid_weight": 1.0},
        "gan": {"frequency_weight": 0.1, "low_frequency_weight": 1.0, "range_weight": 1.0},
    }
    path = tmp_path / "gan.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_tecogan_training_runs_adversarially_and_resumes_exactly(tmp_path, sources):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    straight = load_config(gan_config(tmp_path / "a", sources, steps=3))
    files = train(straight)
    state = torch.load(files.checkpoint, weights_only=True)
    assert set(state["critic"]) == {"discriminator", "optimizer"}
    assert state["critic"]["optimizer"]["state"], "the discriminator was never updated"
    assert "Adversarial (TecoGAN)" in files.final.with_suffix(".md").read_text()
    plain_file = tmp_path / "plain"
    plain_file.write_text("")  # the weights get the permissions any file gets here (safetensors' own: 0600)
    assert files.final.stat().st_mode & 0o777 == plain_file.stat().st_mode & 0o777
    interrupted = load_config(gan_config(tmp_path / "b", sources, steps=3))
    train(interrupted, stop_after=2)
    resumed = train(interrupted, resume=True)
    expected = [float(r["loss"]) for r in read_rows(files.train_log)]
    assert [float(r["loss"]) for r in read_rows(resumed.train_log)] == pytest.approx(expected, rel=1e-5)


def test_the_discriminator_can_learn_alone_before_the_generator_starts(tmp_path, sources):
    """gan.discriminator_warmup: for its first steps the generator keeps its weights and the discriminator
    learns; then both train. The card says so."""
    config = yaml.safe_load(gan_config(tmp_path, sources, steps=3).read_text())
    config["gan"]["discriminator_warmup"] = 2
    config["gan"]["update_threshold"] = 1e9  # the discriminator steps whatever its score, so that it surely moves
    (tmp_path / "warm.yaml").write_text(yaml.safe_dump(config))
    warm = load_config(tmp_path / "warm.yaml")
    torch.manual_seed(warm.seed)  # the seed the run builds its model under
    start = warm.model.build().state_dict()
    files = train(warm, stop_after=2)
    state = torch.load(files.checkpoint, weights_only=True)
    assert all(torch.equal(state["model"][key], value) for key, value in start.items())
    assert state["critic"]["optimizer"]["state"], "the discriminator did not learn during the warm-up"
    files = train(warm, resume=True)
    trained = load_state_dict(files.final)
    assert any(not torch.equal(trained[key], value) for key, value in start.items())
    assert "trained alone for the first 2 steps" in files.final.with_suffix(".md").read_text()


@pytest.mark.parametrize("threshold, updates", [(0.4, True), (-100.0, False)])
def test_the_discriminator_steps_only_while_it_is_not_winning(threshold, updates):
    torch.manual_seed(0)
    critic = TecoGanCritic(GanSettings(update_threshold=threshold), crop_size=32, device=torch.device("cpu"))
    before = {k: v.clone() for k, v in critic.discriminator.state_dict().items()}
    real, fake = torch.rand(2, 27, 32, 32), torch.rand(2, 27, 32, 32)
    critic.update_discriminator(real, fake)
    after = critic.discriminator.state_dict()
    moved = any(not torch.equal(before[k], after[k]) for k in before if before[k].dtype.is_floating_point
                and "running" not in k)
    assert critic.updated is updates and moved is updates


def test_init_weights_start_the_run_from_given_weights(tmp_path, sources):
    start = SRVGGNetCompact(num_feat=4, num_conv=1)
    save_file(start.state_dict(), str(tmp_path / "start.safetensors"))
    path = write_config(tmp_path, sources, steps=1, lr=1e-12)
    config = yaml.safe_load(path.read_text())
    config["init_weights"] = str(tmp_path / "start.safetensors")
    path.write_text(yaml.safe_dump(config))
    files = train(load_config(path))
    trained = load_state_dict(files.final)
    for key, value in start.state_dict().items():
        torch.testing.assert_close(trained[key], value, rtol=0, atol=1e-9)


def test_teacher_weights_make_the_run_learn_the_teachers_output_not_the_truth(tmp_path, sources):
    """teacher_weights: the pixel loss targets the frozen teacher's output; the card says so."""
    torch.manual_seed(0)
    teacher, start = SRVGGNetCompact(num_feat=4, num_conv=1).eval(), SRVGGNetCompact(num_feat=4, num_conv=1).eval()
    save_file(teacher.state_dict(), str(tmp_path / "teacher.safetensors"))
    save_file(start.state_dict(), str(tmp_path / "start.safetensors"))
    path = write_config(tmp_path, sources, steps=40, lr=1e-2, grid_weight=0.5)
    config = yaml.safe_load(path.read_text())
    config.update(init_weights=str(tmp_path / "start.safetensors"),
                  teacher_weights=str(tmp_path / "teacher.safetensors"))
    path.write_text(yaml.safe_dump(config))
    files = train(load_config(path))
    student = SRVGGNetCompact(num_feat=4, num_conv=1).eval()
    student.load_state_dict(load_state_dict(files.final))
    frames = torch.from_numpy(np.stack([textured_image(seed, 16, 16) for seed in (5, 6)])).permute(0, 3, 1, 2)
    frames = (frames.float() / 255)[None]
    with torch.no_grad():
        aimed_at = teacher(frames)
        before, after = ((net(frames) - aimed_at).abs().mean().item() for net in (start, student))
    assert after < 0.7 * before  # a run aimed at the ground truth would have no reason to near a random teacher
    card = files.final.with_suffix(".md").read_text()
    assert f"Charbonnier loss to the output of `{tmp_path / 'teacher.safetensors'}` + 0.5 x low-res grid loss" in card


def test_an_fnet_model_starts_a_dis_model_without_its_flow_network(tmp_path, sources):
    """init_ignore: the FNet weights of an FRVSR are left behind when the run's model takes DIS as its motion;
    the SR network starts from them and the card says so."""
    start = FRVSR(mid_channels=8, num_blocks=1).eval()
    save_file(start.state_dict(), str(tmp_path / "start.safetensors"))
    config = yaml.safe_load(gan_config(tmp_path, sources, steps=1).read_text())
    del config["gan"]
    config["model"]["args"]["flow"] = "dis"
    config["train"].update(lr=1e-12, warp_loss_weight=0.0)
    config.update(init_weights=str(tmp_path / "start.safetensors"), init_ignore=["fnet."])
    (tmp_path / "dis.yaml").write_text(yaml.safe_dump(config))
    files = train(load_config(tmp_path / "dis.yaml"))
    trained = load_state_dict(files.final)
    assert not any(key.startswith("fnet.") for key in trained)
    for key, value in start.state_dict().items():
        if key.startswith("srnet."):
            torch.testing.assert_close(trained[key], value, rtol=0, atol=1e-9)
    assert f"Initialised from `{tmp_path / 'start.safetensors'}`, without `fnet.*`" in files.final.with_suffix(
        ".md").read_text()
    del config["init_ignore"]
    (tmp_path / "strict.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(VsrError, match="unexpected fnet"):  # without it, the FNet weights do not fit
        train(load_config(tmp_path / "strict.yaml"))


def test_realworld_runs_validate_on_inputs_damaged_the_same_way_every_time(tmp_path, sources, run_cli):
    from vsr.realworld import clip_seed, degrade_realworld
    from vsr.train.validation import bicubic_scores, load_validation_clips

    clips = load_validation_clips([sources[0]], 2, 4, "realworld")
    hr_8bit = (clips[0].hr * 255).round().byte().permute(0, 2, 3, 1).numpy()
    expected = degrade_realworld(hr_8bit, 4, np.random.default_rng(clip_seed("clip")))
    assert torch.equal(clips[0].lr, torch.from_numpy(expected).permute(0, 3, 1, 2).float() / 255)
    clean = load_validation_clips([sources[0]], 2, 4, "BI")
    assert not torch.equal(clips[0].lr, clean[0].lr)

    config = yaml.safe_load(write_config(tmp_path, sources).read_text())
    config["data"].update(degradation="realworld", clean_fraction=0.5)
    (tmp_path / "real.yaml").write_text(yaml.safe_dump(config))
    result = run_cli("train", tmp_path / "real.yaml", "--steps", "3")
    assert result.exit_code == 0, result.output
    logged = float(read_rows(tmp_path / "run" / "val_log.csv")[0]["bicubic_psnr_y"])
    assert logged == pytest.approx(bicubic_scores(clips, 4)["clip"][0], abs=1e-3)
    assert "Degradation: realworld x4, 50% of clips left clean" in (tmp_path / "run" / "best.md").read_text()


def test_select_latest_exports_the_last_validated_weights_whatever_their_psnr(tmp_path, sources, run_cli):
    config = yaml.safe_load(write_config(tmp_path, sources).read_text())
    config["validation"]["select"] = "latest"
    (tmp_path / "gan.yaml").write_text(yaml.safe_dump(config))
    result = run_cli("train", tmp_path / "gan.yaml")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("latest, exported") == 2  # steps 3 and 6
    run = tmp_path / "run"
    exported, final = load_state_dict(run / "best.safetensors"), load_state_dict(run / "final.safetensors")
    assert exported.keys() == final.keys() and all(torch.equal(exported[k], final[k]) for k in final)
    assert "6 of 6 steps" in (run / "best.md").read_text()

    config["validation"]["select"] = "loss"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(VsrError, match="bad.yaml: validation.select is 'psnr' or 'latest', not 'loss'"):
        load_config(tmp_path / "bad.yaml")


def test_resume_without_a_checkpoint_continues_from_the_committed_weights_at_their_step(
        tmp_path, sources, run_cli, monkeypatch):
    config = write_config(tmp_path, sources)
    assert run_cli("train", config, "--steps", "3").exit_code == 0
    committed = tmp_path / "weights"
    committed.mkdir()
    (tmp_path / "run" / "best.safetensors").rename(committed / "tiny.safetensors")  # as ship_weights commits it
    shutil.rmtree(tmp_path / "run")  # another machine: no checkpoint, no logs
    monkeypatch.setattr("vsr.train.loop.WEIGHTS_DIR", committed)

    files = train(load_config(config), resume=True)
    assert [int(r["step"]) for r in read_rows(files.train_log)] == [4, 5, 6]
    straight = train(dataclasses.replace(load_config(config), output_dir=str(tmp_path / "straight")))
    resumed_lr = float(read_rows(files.train_log)[0]["lr"])
    assert resumed_lr == pytest.approx(float(read_rows(straight.train_log)[3]["lr"]), rel=1e-3)

    monkeypatch.setattr("vsr.train.loop.WEIGHTS_DIR", tmp_path / "nowhere")
    shutil.rmtree(tmp_path / "run")
    with pytest.raises(VsrError, match="nothing to resume"):
        train(load_config(config), resume=True)
