"""`vsr bench`: scores against values computed independently, seams, outputs, and errors on bad input."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import make_clip, moving_pattern

from vsr.bench.clips import find_clips
from vsr.bench.measure import ModelTimer, PeakMemory
from vsr.bench.runner import Settings, bench_model
from vsr.bench.scoring import ClipScores
from vsr.io.frame_folder import list_frames, read_png
from vsr.metrics import tof, warping_error
from vsr.models.basicvsrpp import BasicVSRPlusPlus
from vsr.models.interpolation import BicubicUpscaler

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"
CPU = Settings(torch.device("cpu"))


def write_frames(folder: Path, images: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    for index, image in enumerate(images):
        cv2.imwrite(str(folder / f"{index:03d}.png"), image[:, :, ::-1])
    return folder


def make_dataset(root: Path, clips: dict[str, int], width: int = 64, height: int = 56) -> tuple[Path, Path]:
    """GT and LR folders in the Vid4 layout: one sub-folder of PNGs per clip; LR is an area-downscale x4."""
    for offset, (name, frames) in enumerate(clips.items()):
        gt = [moving_pattern(i + 3 * offset, width, height) for i in range(frames)]
        write_frames(root / "GT" / name, gt)
        write_frames(root / "LR" / name, [cv2.resize(g, (width // 4, height // 4), interpolation=cv2.INTER_AREA)
                                          for g in gt])
    return root / "GT", root / "LR"


# Independent implementations of the protocol (MATLAB rgb2ycbcr Y, border crop, Gaussian-window SSIM),
# written from the definitions with no code shared with vsr.metrics.
def reference_y(image: np.ndarray) -> np.ndarray:
    r, g, b = (image[..., c].astype(np.float64) for c in range(3))
    return 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255


def reference_psnr(a: np.ndarray, b: np.ndarray, border: int, on_y: bool = True) -> float:
    a, b = (reference_y(x) if on_y else x.astype(np.float64) for x in (a, b))
    a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    return 10 * math.log10(255**2 / np.mean((a - b) ** 2))


def reference_ssim(a: np.ndarray, b: np.ndarray, border: int) -> float:
    x = reference_y(a)[border:-border, border:-border]
    y = reference_y(b)[border:-border, border:-border]
    offsets = np.arange(11) - 5
    g = np.exp(-(offsets**2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    values = []
    for top in range(x.shape[0] - 10):
        for left in range(x.shape[1] - 10):
            px, py = x[top:top + 11, left:left + 11], y[top:top + 11, left:left + 11]
            mx, my = (window * px).sum(), (window * py).sum()
            vx = (window * (px - mx) ** 2).sum()
            vy = (window * (py - my) ** 2).sum()
            cov = (window * (px - mx) * (py - my)).sum()
            c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
            values.append((2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def read_folder(folder: Path) -> list[np.ndarray]:
    return [read_png(path) for path in list_frames(folder)]


def test_scores_reproduce_values_computed_independently(tmp_path, run_cli):
    gt, lr = make_dataset(tmp_path, {"walk": 7, "city": 6})
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli("bench", "--gt", gt, "--lr", lr, "--model", "bicubic", "--json", out / "r.json",
                     "--csv", out / "r.csv", "--save-frames", out / "sr", "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "r.json").read_text())["models"]["bicubic"]
    for name in ("walk", "city"):
        sr, truth = read_folder(out / "sr" / "bicubic" / name), read_folder(gt / name)
        clip = report["clips"][name]
        assert clip["frames"] == len(truth) == len(sr)
        assert clip["psnr_y"] == pytest.approx(np.mean([reference_psnr(s, t, 4) for s, t in zip(sr, truth)]),
                                               abs=1e-9)
        assert clip["psnr_rgb"] == pytest.approx(
            np.mean([reference_psnr(s, t, 4, on_y=False) for s, t in zip(sr, truth)]), abs=1e-9)
        assert clip["ssim_y"] == pytest.approx(np.mean([reference_ssim(s, t, 4) for s, t in zip(sr, truth)]),
                                               abs=1e-7)
        # Streaming pair by pair gives what the whole-sequence metrics give.
        assert clip["tof"] == pytest.approx(tof(sr, truth), abs=1e-6)
        assert clip["warping_error"] == pytest.approx(warping_error(sr, truth), abs=1e-12)
        assert len(clip["per_frame"]["psnr_y"]) == len(truth)
        assert len(clip["per_pair"]["tof"]) == len(truth) - 1
    mean = report["mean"]
    assert mean["psnr_y"] == pytest.approx((report["clips"]["walk"]["psnr_y"] + report["clips"]["city"]["psnr_y"]) / 2)
    assert mean["frames"] == 13
    assert mean["fps_model"] >= mean["fps"] > 0  # the model's time is part of the pipeline's
    assert mean["peak_mem_mb"] > 0
    rows = list(csv.DictReader((out / "r.csv").open()))
    assert [(r["model"], r["clip"]) for r in rows] == [("bicubic", "city"), ("bicubic", "walk"), ("bicubic", "mean")]
    assert float(rows[1]["psnr_y"]) == pytest.approx(report["clips"]["walk"]["psnr_y"])
    assert "PSNR-Y" in result.output and "bicubic" in result.output


@pytest.mark.skipif(not (SHARED_IMAGES / "CSet5").is_dir(), reason="needs ../shared/data/images/CSet5")
def test_bicubic_on_set5_matches_the_published_figure(tmp_path, run_cli):
    """Bicubic x4 on Set5 is 28.42 dB / 0.8104 in the EDSR and RCAN tables (MATLAB imresize, Y channel)."""
    for image in sorted((SHARED_IMAGES / "CSet5").glob("*.png")):
        (tmp_path / "set5" / image.stem).mkdir(parents=True)
        shutil.copy(image, tmp_path / "set5" / image.stem / "0.png")
    result = run_cli("bench", "--gt", tmp_path / "set5", "--model", "bicubic-matlab", "--no-temporal",
                     "--json", tmp_path / "r.json", "--quiet")
    assert result.exit_code == 0, result.output
    mean = json.loads((tmp_path / "r.json").read_text())["models"]["bicubic-matlab"]["mean"]
    assert mean["clips"] == 5
    assert mean["psnr_y"] == pytest.approx(28.42, abs=0.05)
    assert mean["ssim_y"] == pytest.approx(0.8104, abs=0.002)


def test_a_video_is_degraded_on_the_fly_and_plotted(tmp_path, run_cli):
    video = make_clip(tmp_path / "clip.mp4", frames=8, width=66, height=50)  # cropped to 64x48 for x4
    result = run_cli("bench", "--gt", video, "--model", "bicubic", "--model", "lanczos", "--json",
                     tmp_path / "r.json", "--plots", tmp_path / "plots", "--speed-sizes", "24x16,32x20",
                     "--speed-frames", "2", "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["settings"]["degradation"] == "BI"
    for name in ("bicubic", "lanczos"):
        clip = report["models"][name]["clips"]["clip"]
        assert (clip["width"], clip["height"], clip["frames"]) == (64, 48, 8)
        assert clip["tof"] is not None and clip["warping_error"] is not None
        assert clip["seams"]["boundaries"] == []  # one window of 8: nothing to join
        assert [(p["lr_width"], p["lr_height"]) for p in report["models"][name]["speed"]] == [(24, 16), (32, 20)]
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["fps_vs_resolution.png", "psnr_y_clip.png"]


def test_on_the_fly_degradation_equals_reading_the_same_low_res_frames(tmp_path):
    gt, _ = make_dataset(tmp_path, {"walk": 3})
    made = find_clips(gt, None, 4, "BD")[0]
    lr_images = list(made.lr_frames(made.gt_frames()))
    write_frames(tmp_path / "BD" / "walk", lr_images)
    read = find_clips(gt, tmp_path / "BD", 4)[0]
    scores = [bench_model("bicubic", BicubicUpscaler(4), [clip], CPU).clips[0].summary() for clip in (made, read)]
    assert scores[0]["psnr_y"] == scores[1]["psnr_y"]
    assert lr_images[0].shape == (14, 16, 3)


def test_realworld_damage_is_made_on_the_fly_the_same_way_every_run(tmp_path, run_cli):
    video = make_clip(tmp_path / "clip.mp4", frames=5, width=64, height=48)
    reports = []
    for run in range(2):
        result = run_cli("bench", "--gt", video, "--degradation", "realworld", "--model", "bicubic",
                         "--no-temporal", "--json", tmp_path / f"r{run}.json", "--quiet")
        assert result.exit_code == 0, result.output
        reports.append(json.loads((tmp_path / f"r{run}.json").read_text()))
    assert reports[0]["settings"]["degradation"] == "realworld"
    clips = [report["models"]["bicubic"]["clips"]["clip"] for report in reports]
    assert (clips[0]["width"], clips[0]["height"], clips[0]["frames"]) == (64, 48, 5)
    assert clips[0]["psnr_y"] == clips[1]["psnr_y"]
    clean = find_clips(video, None, 4, "BI")[0]
    damaged = find_clips(video, None, 4, "realworld")[0]
    clean_lr, damaged_lr = (list(c.lr_frames(c.gt_frames())) for c in (clean, damaged))
    assert [f.shape for f in damaged_lr] == [f.shape for f in clean_lr] == [(12, 16, 3)] * 5
    assert not np.array_equal(np.stack(clean_lr), np.stack(damaged_lr))


def test_niqe_scores_each_model_and_the_ground_truth_on_sampled_frames(tmp_path, run_cli):
    gt, lr = make_dataset(tmp_path, {"walk": 3}, width=256, height=256)  # NIQE needs two 96x96 blocks
    result = run_cli("bench", "--gt", gt, "--lr", lr, "--model", "bicubic", "--model", "lanczos", "--no-temporal",
                     "--niqe", "--niqe-every", "2", "--json", tmp_path / "r.json", "--csv", tmp_path / "r.csv",
                     "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["settings"]["niqe"]["every"] == 2 and report["settings"]["niqe"]["crop_border"] == 4
    for name in ("bicubic", "lanczos"):
        clip = report["models"][name]["clips"]["walk"]
        sampled = clip["per_frame"]["niqe"]
        assert sampled[1] is None and all(isinstance(sampled[i], float) for i in (0, 2))  # frames 0 and 2
        assert clip["niqe"] == pytest.approx((sampled[0] + sampled[2]) / 2)
        assert report["models"][name]["mean"]["niqe"] == pytest.approx(clip["niqe"])
    truth = report["ground_truth"]["clips"]["walk"]
    assert truth["per_frame"]["niqe"][1] is None and truth["niqe"] > 0
    assert report["ground_truth"]["mean"]["niqe"] == pytest.approx(truth["niqe"])
    assert report["models"]["bicubic"]["clips"]["walk"]["niqe"] != truth["niqe"]
    assert "NIQE" in result.stdout and "ground truth" in result.stdout
    assert float(next(csv.DictReader((tmp_path / "r.csv").open()))["niqe"]) > 0


def test_without_niqe_there_is_no_niqe_anywhere(tmp_path, run_cli):
    gt, lr = make_dataset(tmp_path, {"walk": 2})
    result = run_cli("bench", "--gt", gt, "--lr", lr, "--model", "bicubic", "--no-temporal", "--json",
                     tmp_path / "r.json", "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["settings"]["niqe"] is None and "ground_truth" not in report
    assert "niqe" not in report["models"]["bicubic"]["clips"]["walk"]["per_frame"]
    assert "NIQE" not in result.stdout


def test_seams_are_measured_where_windows_meet(tmp_path):
    gt, lr = make_dataset(tmp_path, {"walk": 10})
    torch.manual_seed(0)
    model = BasicVSRPlusPlus(mid_channels=8, num_blocks=1, hr_channels=8, deform_groups=2, context_frames=2).eval()
    settings = Settings(torch.device("cpu"), chunk=4, scene_cuts=False)
    result = bench_model("tiny", model, find_clips(gt, lr, 4), settings).clips[0]
    assert result.boundaries == [0, 4, 8]
    seams = result.scores.seams(result.boundaries)
    assert seams["boundaries"] == [4, 8]
    psnr = result.scores.per_frame["psnr_y"]
    assert seams["at_seams"]["psnr_y"] == pytest.approx(np.mean([psnr[i] for i in (3, 4, 7, 8)]))
    assert seams["elsewhere"]["psnr_y"] == pytest.approx(np.mean([psnr[i] for i in (0, 1, 2, 5, 6, 9)]))
    warp = result.scores.per_pair["warping_error"]
    assert seams["at_seams"]["warping_error"] == pytest.approx((warp[3] + warp[7]) / 2)


def test_clip_scores_pick_tecogan_pairs_and_handle_single_frames():
    scores = ClipScores(4, {"psnr_y": [30.0] * 8, "ssim_y": [0.9] * 8, "psnr_rgb": [29.0] * 8},
                        {"tof": [float(i) for i in range(7)], "warping_error": [0.5] * 7})
    assert scores.summary()["tof"] == pytest.approx((2 + 3 + 4) / 3)  # pairs (2,3), (3,4), (4,5)
    single = ClipScores(4, {"psnr_y": [30.0], "ssim_y": [0.9], "psnr_rgb": [29.0]},
                        {"tof": [], "warping_error": []})
    assert single.summary()["tof"] is None and single.summary()["warping_error"] is None
    assert scores.tof_note() is None
    assert "1 frame: tOF needs at least 6" in single.tof_note()


def test_a_missing_tof_is_explained_in_the_table_and_the_json(tmp_path, run_cli):
    gt, lr = make_dataset(tmp_path, {"short": 4})
    result = run_cli("bench", "--gt", gt, "--lr", lr, "--model", "bicubic", "--json", tmp_path / "r.json", "--quiet")

    assert result.exit_code == 0, result.output
    assert "short: 4 frames: tOF needs at least 6" in result.stdout
    clip = json.loads((tmp_path / "r.json").read_text())["models"]["bicubic"]["clips"]["short"]
    assert clip["tof"] is None and "needs at least 6" in clip["tof_note"]


def test_model_timer_counts_calls_and_restores_the_model():
    model = BicubicUpscaler(2)
    with ModelTimer(model, torch.device("cpu")) as timer:
        model.step(torch.rand(1, 3, 8, 8))  # step calls forward: counted once
    assert timer.seconds > 0
    assert "forward" not in vars(model) and "step" not in vars(model)


def test_peak_memory_is_the_blocks_own():
    with PeakMemory(torch.device("cpu")) as first:
        block = np.ones(96 * 2**20, dtype=np.uint8)  # 96 MB, touched
        del block
    if not first.exact:
        pytest.skip("the peak cannot be reset on this system")
    with PeakMemory(torch.device("cpu")) as second:
        pass
    assert first.ram_mb - second.ram_mb > 80


@pytest.mark.parametrize("problem, expected", [
    ("missing_lr_clip", "has no clip named 'city'"),
    ("wrong_scale", "which is not x4"),
    ("frame_count", "has 3 frames but the ground truth"),
    ("existing_json", "already exists; pass --overwrite"),
    ("no_clips", "holds no clips"),
    ("bad_crop", "is not WIDTHxHEIGHT"),
    ("niqe_too_small", "--niqe: NIQE needs at least 2 whole 96x96 blocks: 64x56 less 4 pixels"),
])
def test_bad_input_gets_one_line_naming_the_problem(tmp_path, run_cli, problem, expected):
    gt, lr = make_dataset(tmp_path, {"walk": 4, "city": 4})
    args = ["bench", "--gt", gt, "--lr", lr, "--model", "bicubic", "--quiet"]
    if problem == "missing_lr_clip":
        shutil.rmtree(lr / "city")
    elif problem == "wrong_scale":
        args[args.index("--lr") + 1] = gt
    elif problem == "frame_count":
        for extra in list_frames(lr / "city")[3:]:
            extra.unlink()
    elif problem == "existing_json":
        (tmp_path / "r.json").write_text("keep me")
        args += ["--json", tmp_path / "r.json"]
    elif problem == "no_clips":
        (tmp_path / "empty").mkdir()
        args[args.index("--gt") + 1] = tmp_path / "empty"
    elif problem == "bad_crop":
        args += ["--crop", "wide"]
    elif problem == "niqe_too_small":
        args += ["--niqe"]
    result = run_cli(*args)
    assert result.exit_code == 1
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    if problem == "existing_json":
        assert (tmp_path / "r.json").read_text() == "keep me"
