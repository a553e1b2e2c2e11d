"""--chunk auto: windows sized to a memory budget from a measurement of the model, and the overhead reported."""

from __future__ import annotations

import json
import re
from fractions import Fraction

import numpy as np
import pytest
import torch
from conftest import make_frame_folder

from vsr.io.frames import Frame
from vsr.models.basicvsrpp import BasicVSRPlusPlus
from vsr.models.interpolation import BicubicUpscaler
from vsr.pipeline import window_size
from vsr.pipeline.inference import upscale_frames
from vsr.pipeline.peak_bytes import _LiveBytes, peak_bytes
from vsr.pipeline.chunk_option import parse_chunk
from vsr.pipeline.window_size import FIXED_WINDOW, WindowStats, plan_windows, window_memory

CPU = torch.device("cpu")
GB = 2**30


def tiny_model(context: int = 2) -> BasicVSRPlusPlus:
    torch.manual_seed(0)
    return BasicVSRPlusPlus(mid_channels=8, num_blocks=1, hr_channels=8, deform_groups=2,
                            context_frames=context).eval()


def frames(count: int, height: int = 20, width: int = 24) -> list[Frame]:
    rng = np.random.default_rng(0)
    return [Frame(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), i, Fraction(1, 25))
            for i in range(count)]


@pytest.mark.parametrize("text, expected", [("auto", "auto"), ("AUTO", "auto"), ("8", 8), (3, 3)])
def test_chunk_is_auto_or_a_positive_number(text, expected):
    assert parse_chunk(text) == expected


@pytest.mark.parametrize("text", ["0", "-2", "foo", "2.5", ""])
def test_other_chunks_are_refused(text):
    with pytest.raises(ValueError):
        parse_chunk(text)


def test_auto_runs_a_short_clip_as_one_window_with_no_overhead(monkeypatch):
    monkeypatch.setattr(window_size, "free_bytes", lambda device: 4 * GB)  # not this machine's memory
    stats = WindowStats()
    out = list(upscale_frames(frames(9), tiny_model(), CPU, chunk="auto", scene_cuts=False, stats=stats))
    assert len(out) == 9
    assert stats.plan.mode == "auto" and stats.plan.size >= 9 and stats.plan.budget == 2 * GB
    assert stats.computed == stats.output == 9 and stats.overhead == 1.0
    assert "one window per shot" in stats.plan.describe(9)


def test_a_small_budget_gives_the_window_that_fits_it():
    model = tiny_model(context=2)
    fixed, per_frame = window_memory(model, 20, 24, CPU)
    pipeline = window_size._pipeline_bytes(model.scale, 20, 24, False)
    once = window_size._rounding_bytes(model.scale, 20, 24) + window_size.carry_memory(model, 20, 24, CPU)
    budget = fixed + once + per_frame * (4 + 2) + pipeline * 4  # 4 core frames and 2 of look-ahead
    plan = plan_windows(model, "auto", 20, 24, CPU, budget=budget)
    assert (plan.size, plan.look_ahead, plan.look_back) == (4, 2, 0) and plan.carries
    assert plan.need <= plan.budget
    assert "windows of 4 frames + 2 of look-ahead" in plan.describe(100)

    starved = plan_windows(model, "auto", 20, 24, CPU, budget=fixed // 2)
    assert starved.size == 1 and "--tile lowers it" in starved.describe(100)


def test_frames_too_large_for_a_useful_window_are_tiled_and_the_run_uses_those_tiles(monkeypatch):
    """Whole 40x400 frames fit one core frame beside 2 of look-ahead (3 frames computed per frame output);
    the plan takes tiles on which a longer window fits and the total work (frames x overlapping pixels) is
    less, says so, and the run uses exactly those tiles."""
    model, height, width = tiny_model(context=2), 40, 400
    fixed, per_frame = window_memory(model, height, width, CPU)
    pipeline = window_size._pipeline_bytes(model.scale, height, width, False)
    budget = (fixed + window_size._rounding_bytes(model.scale, height, width) + per_frame * 2 + pipeline
              + (per_frame + pipeline) // 2)  # 1.5 whole frames of core
    whole = plan_windows(model, "auto", height, width, CPU, budget=budget, tile=width)  # tile >= frame: whole
    assert whole.size == 1 and whole.frame_overhead == 3.0
    plan = plan_windows(model, "auto", height, width, CPU, budget=budget)
    assert plan.tile in window_size.AUTO_TILES and plan.size > 1 and plan.whole_frame_size == 1
    ratio = window_size.tiled_pixel_ratio(height, width, plan.tile, 16, model.size_multiple)
    assert plan.need <= budget and plan.frame_overhead * ratio < whole.frame_overhead
    assert f"on {plan.tile}-pixel tiles (whole frames would fit windows of 1 frame)" in plan.describe(100)
    assert f"on {plan.tile}-pixel tiles" in plan.describe(1)  # a clip that runs as one window says so too
    assert plan_windows(model, "auto", height, width, CPU, budget=budget, tile=256).tile == 0  # --tile wins

    clip = frames(5, height, width)
    monkeypatch.setattr(window_size, "free_bytes", lambda device: 2 * budget)  # the budget is half of it
    stats = WindowStats()
    auto = [frame.image for frame in upscale_frames(clip, model, CPU, "auto", stats=stats, scene_cuts=False)]
    assert stats.plan.tile == plan.tile and stats.plan.size == plan.size
    asked = upscale_frames(clip, model, CPU, plan.size, tile=plan.tile, scene_cuts=False)
    assert all(np.array_equal(a, b.image) for a, b in zip(auto, asked, strict=True))


def test_a_given_chunk_keeps_its_meaning_and_other_models_need_no_budget():
    assert plan_windows(tiny_model(), 5, 20, 24, CPU).size == 5
    per_frame = plan_windows(BicubicUpscaler(2), "auto", 20, 24, CPU)
    assert (per_frame.size, per_frame.look_ahead, per_frame.mode) == (FIXED_WINDOW, 0, "per-frame")
    assert plan_windows(tiny_model(), "auto", 20, 24, CPU, streaming=True).mode == "stream"


def test_the_shape_only_measurement_is_what_real_tensors_take_and_bounds_longer_windows():
    """The fake-tensor peak equals the same count on real tensors, and (fixed, per frame), measured on windows
    of 2 and 3 frames, bounds the peak of longer windows from above, by under a quarter."""
    model = tiny_model()

    def window(frames: int):
        return lambda: model.forward_window(torch.empty(1, frames, 3, 20, 24), frames)

    with torch.inference_mode():
        with _LiveBytes() as real:
            window(3)()
        assert peak_bytes(window(3)) == pytest.approx(real.peak, rel=0.01)
        fixed, per_frame = window_memory(model, 20, 24, CPU)
        for frames in (6, 12):
            assert 1 <= (fixed + frames * per_frame) / peak_bytes(window(frames)) < 1.25


@pytest.mark.parametrize("chunk", ["0", "foo"])
def test_a_bad_chunk_is_a_one_line_error(tmp_path, run_cli, chunk):
    folder = make_frame_folder(tmp_path / "frames", frames=2)
    for command in (["run", folder, "-o", tmp_path / "out"], ["batch", folder, tmp_path / "out"]):
        result = run_cli(*command, "--chunk", chunk)
        assert result.exit_code == 2 and "--chunk" in result.output and "Traceback" not in result.output
        assert "auto" in result.output
    assert not (tmp_path / "out").exists()


def test_vsr_run_says_which_window_it_chose(tmp_path, run_cli, monkeypatch):
    monkeypatch.setattr(window_size, "free_bytes", lambda device: 4 * GB)
    folder = make_frame_folder(tmp_path / "frames", frames=3, width=24, height=16)
    result = run_cli("run", folder, "-o", tmp_path / "out", "--model", "basicvsrpp-small", "--quiet")
    assert result.exit_code == 0, result.output
    assert re.search(r"vsr: windows of up to \d+ frames, 2\.0 GB budget: this 3-frame clip runs as one window per "
                     r"shot; 1\.00 frames computed per frame output", result.stderr), result.stderr


def test_the_bench_reports_frames_computed_per_frame_output(tmp_path):
    from test_bench import make_dataset

    from vsr.bench.clips import find_clips
    from vsr.bench.report import to_json
    from vsr.bench.runner import Settings, bench_model

    gt, lr = make_dataset(tmp_path, {"walk": 5})
    clips = find_clips(gt, lr, 4)
    model = tiny_model(context=2)
    report = {}
    for chunk in ("auto", 2):
        result = bench_model("tiny", model, clips, Settings(CPU, chunk=chunk, scene_cuts=False, temporal=False))
        report[chunk] = json.loads(json.dumps(to_json([result], {})))["models"]["tiny"]
    assert report["auto"]["mean"]["frames_computed_per_output"] == 1.0
    assert report["auto"]["clips"]["walk"]["window_frames"] >= 5
    # Windows of 2 cores and 2 look-ahead over 5 frames: 4 + 4 + 1 computed.
    assert report[2]["mean"]["frames_computed_per_output"] == pytest.approx(8 / 5)
    assert report[2]["clips"]["walk"]["frames_computed_per_output"] == pytest.approx(8 / 5)


@pytest.mark.parametrize("height, width, tile", [(40, 48, 0), (40, 160, 64)])
def test_the_planned_bytes_bound_what_the_running_pipeline_holds(monkeypatch, height, width, tile):
    """Everything torch holds while 12 frames run in 4-frame windows (the model's features, the carries of
    every tile position, the canvas, the rounded images): at most what the plan counted, by under a third.
    A window's output kept alive while the next one runs would double its share and fail this."""
    model = tiny_model(context=2)
    monkeypatch.setattr(window_size, "MAX_WINDOW", 4)
    plan = plan_windows(model, "auto", height, width, CPU, budget=100 * GB, tile=tile)
    assert plan.size == 4
    with torch.inference_mode(), _LiveBytes() as live:
        out = list(upscale_frames(frames(12, height, width), model, CPU, 4, tile=tile, scene_cuts=False))
    assert len(out) == 12
    assert 1 <= plan.need / live.peak < 1.33
