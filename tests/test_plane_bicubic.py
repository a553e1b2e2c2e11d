"""`vsr run --model bicubic` on the YUV planes: without torch, the same frames, times and audio as the usual
path, and the usual path wherever the planes cannot be used."""

from __future__ import annotations

import json
import subprocess
import sys

import av
import numpy as np
import torch

from conftest import make_clip
from vsr.io.probe import probe
from vsr.io.writer import EncoderSettings
from vsr.models.interpolation import BicubicUpscaler
from vsr.pipeline.job import upscale_video

PLANES_SAID = "bicubic ran on the video's YUV planes"
# In a fresh interpreter: the test process has torch imported already.
RUN_AND_REPORT = """
import json, sys
from click.testing import CliRunner
from vsr.cli import cli
result = CliRunner().invoke(cli, ["run", sys.argv[1], "-o", sys.argv[2], "--model", "bicubic", *sys.argv[3:]])
print(json.dumps({"exit": result.exit_code, "stderr": result.stderr, "torch": "torch" in sys.modules}))
"""


def run_in_fresh_python(*args) -> dict:
    done = subprocess.run([sys.executable, "-c", RUN_AND_REPORT, *map(str, args)], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def planes(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="yuv420p").astype(int) for frame in container.decode(video=0)]


def test_bicubic_runs_on_the_planes_without_torch_and_keeps_frames_times_and_audio(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", frames=5, width=64, height=48, pts=[0, 2, 3, 5, 8], audio=True)
    target = tmp_path / "out.mp4"
    said = run_in_fresh_python(clip, target, "--quiet")
    assert said["exit"] == 0 and PLANES_SAID in said["stderr"], said
    assert not said["torch"]
    source, output = probe(clip), probe(target)
    assert (output.width, output.height) == (256, 192) and output.frame_count == 5
    assert any(stream.type == "audio" for stream in output.streams)
    with av.open(str(clip)) as a, av.open(str(target)) as b:
        times = [[float(frame.time) for frame in container.decode(video=0)] for container in (a, b)]
    assert times[0] == times[1]
    assert output.color.matrix == source.color.matrix  # the planes are copied in their own matrix


def test_the_planes_give_the_frames_of_the_rgb_path(tmp_path, run_cli):
    clip = make_clip(tmp_path / "c.mp4", frames=4, width=64, height=48, audio=False)
    lossless = ("--codec", "libx264", "--crf", "0")
    result = run_cli("run", clip, "-o", tmp_path / "planes.mkv", "--model", "bicubic", *lossless, "--quiet")
    assert result.exit_code == 0 and PLANES_SAID in result.stderr
    upscale_video(clip, tmp_path / "rgb.mkv", BicubicUpscaler(4), torch.device("cpu"), progress=False,
                  settings=EncoderSettings("libx264", 0, None))
    ours, theirs = planes(tmp_path / "planes.mkv"), planes(tmp_path / "rgb.mkv")
    assert len(ours) == len(theirs) == 4
    luma = 4 * 48
    for a, b in zip(ours, theirs):
        # The same kernel; the RGB path rounds through RGB and clamps each of R, G and B, which moves luma by
        # about a level on this high-contrast pattern, and resamples chroma on its way to and from RGB.
        assert np.abs(a[:luma] - b[:luma]).mean() < 1.5 and np.abs(a[:luma] - b[:luma]).max() <= 16
        assert np.abs(a[luma:] - b[luma:]).mean() < 8


def test_sources_that_are_not_8_bit_4_2_0_take_the_usual_path(tmp_path, run_cli):
    clip = make_clip(tmp_path / "deep.mkv", frames=2, ten_bit=True, audio=False)
    result = run_cli("run", clip, "-o", tmp_path / "out.mkv", "--model", "bicubic", "--quiet")
    assert result.exit_code == 0 and PLANES_SAID not in result.stderr and "ran on torch" in result.stderr
    assert probe(tmp_path / "out.mkv").bit_depth == 10
