"""`vsr compare` and `vsr bench --html`: one self-contained page, browser-playable videos, the bench's figures."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import make_clip, make_frame_folder, moving_pattern

from vsr.compare.media import read_8bit
from vsr.metrics import psnr, ssim

WIDTH, HEIGHT, SCALE, FRAMES = 32, 24, 4, 5


def make_inputs(root: Path, frames: int = FRAMES) -> dict[str, Path]:
    """A low-res source (an MP4), two outputs (an MP4 and a PNG folder, one blurred) and a ground truth."""
    root.mkdir(parents=True, exist_ok=True)
    blurred = root / "blurred"
    blurred.mkdir()
    for index in range(frames):
        image = cv2.GaussianBlur(moving_pattern(index, WIDTH, HEIGHT), (3, 3), 0)
        cv2.imwrite(str(blurred / f"{index:03d}.png"), image[:, :, ::-1])
    return {"source": make_clip(root / "src.mp4", frames, WIDTH // SCALE, HEIGHT // SCALE, audio=False),
            "sharp": make_clip(root / "sharp.mp4", frames, WIDTH, HEIGHT, audio=False),
            "blurred": blurred,
            "gt": make_frame_folder(root / "gt", frames, WIDTH, HEIGHT)}


def page_data(page: Path) -> dict:
    found = re.search(r'<script type="application/json" id="vsr-data">(.*?)</script>', page.read_text(), re.S)
    return json.loads(found.group(1))


def decoded_frames(data: bytes) -> tuple[av.video.stream.VideoStream, list[np.ndarray]]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return stream, frames


def test_the_page_is_one_file_that_fetches_nothing(tmp_path, run_cli):
    inputs = make_inputs(tmp_path / "in")
    before = set(tmp_path.iterdir())
    result = run_cli("compare", inputs["source"], inputs["sharp"], inputs["blurred"], "-o", tmp_path / "c.html")
    assert result.exit_code == 0, result.output
    assert set(tmp_path.iterdir()) - before == {tmp_path / "c.html"}
    text = (tmp_path / "c.html").read_text()
    for reference in ("http://", "https://", 'src="//', "<link", "@import", "url("):
        assert reference not in text
    assert not re.search(r"<script[^>]*\ssrc=", text)
    assert text.count("<section") == 1 and text.count("<script") == 2  # the data and the player, both inline
    assert "the videos" in result.stderr and "inside the page" in result.stderr


def test_every_video_is_h264_mp4_at_the_output_size_the_source_enlarged_by_nearest_neighbour(tmp_path, run_cli):
    inputs = make_inputs(tmp_path / "in")
    result = run_cli("compare", inputs["source"], inputs["sharp"], inputs["blurred"], "--gt", inputs["gt"],
                     "-o", tmp_path / "c.html", "--labels", "sharp,blurred", "--quiet")
    assert result.exit_code == 0, result.output
    clip = page_data(tmp_path / "c.html")["clips"][0]
    assert [video["label"] for video in clip["videos"]] == ["source (nearest x4)", "sharp", "blurred", "ground truth"]
    assert (clip["width"], clip["height"], clip["frames"]) == (WIDTH, HEIGHT, FRAMES)
    for video in clip["videos"]:
        prefix = "data:video/mp4;base64,"
        assert video["src"].startswith(prefix)
        data = base64.b64decode(video["src"][len(prefix):], validate=True)
        assert data.find(b"moov") < data.find(b"mdat")  # the index first: playback starts before the end loads
        stream, frames = decoded_frames(data)
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert len(frames) == FRAMES and frames[0].shape == (HEIGHT, WIDTH, 3)
    _, shown = decoded_frames(base64.b64decode(clip["videos"][0]["src"].split(",", 1)[1]))
    low_res = next(read_8bit(inputs["source"]))
    blocks = low_res.repeat(SCALE, axis=0).repeat(SCALE, axis=1).astype(int)
    assert np.abs(shown[0].astype(int) - blocks).mean() < 4  # crf 18 and 4:2:0 chroma, not a smooth resize


def test_with_ground_truth_the_page_holds_the_bench_figures_per_frame(tmp_path, run_cli):
    inputs = make_inputs(tmp_path / "in")
    result = run_cli("compare", inputs["source"], inputs["sharp"], inputs["blurred"], "--gt", inputs["gt"],
                     "-o", tmp_path / "c.html", "--quiet")
    assert result.exit_code == 0, result.output
    clip = page_data(tmp_path / "c.html")["clips"][0]
    truth = list(read_8bit(inputs["gt"]))
    for label, path in (("sharp", inputs["sharp"]), ("blurred", inputs["blurred"])):
        outputs = list(read_8bit(path))
        figures = clip["figures"][label]
        assert figures["psnr_y"] == pytest.approx([psnr(o, t, SCALE) for o, t in zip(outputs, truth)], abs=1e-9)
        assert figures["ssim_y"] == pytest.approx([ssim(o, t, SCALE) for o, t in zip(outputs, truth)], abs=1e-9)
        assert clip["means"][label]["psnr_y"] == pytest.approx(np.mean(figures["psnr_y"]), abs=1e-9)
    assert "mean over the clip" in (tmp_path / "c.html").read_text()


def test_over_the_embed_limit_the_videos_are_linked_beside_the_page(tmp_path, run_cli):
    inputs = make_inputs(tmp_path / "in")
    page = tmp_path / "c.html"
    result = run_cli("compare", inputs["source"], inputs["sharp"], "-o", page, "--embed-limit", "0", "--quiet")
    assert result.exit_code == 0, result.output
    assert "c_files" in result.stderr and "over --embed-limit" in result.stderr
    text = page.read_text()
    assert "data:video" not in text
    sources = [video["src"] for video in page_data(page)["clips"][0]["videos"]]
    assert len(sources) == 2 and all(src.startswith("c_files/") for src in sources)
    for src in sources:
        stream, frames = decoded_frames((tmp_path / src).read_bytes())
        assert len(frames) == FRAMES and frames[0].shape == (HEIGHT, WIDTH, 3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no hidden partials left


@pytest.mark.parametrize("problem, culprit, expected", [
    ("frame_count", "short", "has 4 frames but"),
    ("size", "small", "is 16x12 but"),
    ("source_scale", "odd_source", "does not scale to the outputs' 32x24 by a whole number"),
    ("gt_size", "small", "is 16x12 but"),
    ("labels", None, "--labels gives 1 name(s) for 2 output(s)"),
])
def test_mismatched_inputs_get_one_line_naming_the_file(tmp_path, run_cli, problem, culprit, expected):
    inputs = make_inputs(tmp_path / "in")
    short = make_frame_folder(tmp_path / "in" / "short", 4, WIDTH, HEIGHT)
    small = make_frame_folder(tmp_path / "in" / "small", FRAMES, 16, 12)
    odd_source = make_frame_folder(tmp_path / "in" / "odd_source", FRAMES, 7, 6)
    args = ["compare", inputs["source"], inputs["sharp"], inputs["blurred"], "-o", tmp_path / "c.html"]
    if problem == "frame_count":
        args[3] = short
    elif problem == "size":
        args[3] = small
    elif problem == "source_scale":
        args[1] = odd_source
    elif problem == "gt_size":
        args += ["--gt", small]
    elif problem == "labels":
        args += ["--labels", "one"]
    result = run_cli(*args)
    assert result.exit_code == 1
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    if culprit is not None:
        assert str(tmp_path / "in" / culprit) in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "c.html").exists()


def test_an_existing_page_is_kept_without_overwrite(tmp_path, run_cli):
    inputs = make_inputs(tmp_path / "in")
    page = tmp_path / "c.html"
    page.write_text("keep me")
    args = ["compare", inputs["source"], inputs["sharp"], "-o", page, "--quiet"]
    result = run_cli(*args)
    assert result.exit_code == 1 and "already exists; pass --overwrite" in result.stderr
    assert page.read_text() == "keep me"
    assert run_cli(*args, "--overwrite").exit_code == 0
    assert len(page_data(page)["clips"][0]["videos"]) == 2


def test_an_odd_output_size_is_padded_for_the_encoder_and_shown_at_its_own_size(tmp_path, run_cli):
    source = make_frame_folder(tmp_path / "src", 3, 11, 7)
    output = make_frame_folder(tmp_path / "out", 3, 33, 21)
    result = run_cli("compare", source, output, "-o", tmp_path / "c.html", "--quiet")
    assert result.exit_code == 0, result.output
    clip = page_data(tmp_path / "c.html")["clips"][0]
    assert (clip["width"], clip["height"]) == (33, 21)
    _, frames = decoded_frames(base64.b64decode(clip["videos"][1]["src"].split(",", 1)[1]))
    assert len(frames) == 3 and frames[0].shape == (22, 34, 3)


def test_bench_html_has_one_section_per_clip_with_the_bench_figures(tmp_path, run_cli):
    from test_bench import make_dataset

    gt, lr = make_dataset(tmp_path, {"walk": 3, "city": 3}, width=32, height=24)
    page = tmp_path / "bench.html"
    result = run_cli("bench", "--gt", gt, "--lr", lr, "--model", "bicubic", "--no-temporal", "--html", page,
                     "--json", tmp_path / "r.json", "--quiet")
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert text.count('<section class="clip"') == 2
    assert "http://" not in text and "https://" not in text
    report = json.loads((tmp_path / "r.json").read_text())["models"]["bicubic"]["clips"]
    clips = page_data(page)["clips"]
    assert sorted(clip["title"] for clip in clips) == ["city", "walk"]  # in the bench's (natural) order
    for clip in clips:
        assert [video["label"] for video in clip["videos"]] == ["input (nearest x4)", "bicubic", "ground truth"]
        for video in clip["videos"]:
            _, frames = decoded_frames(base64.b64decode(video["src"].split(",", 1)[1]))
            assert len(frames) == 3 and frames[0].shape == (24, 32, 3)
        assert clip["figures"]["bicubic"]["psnr_y"] == pytest.approx(report[clip["title"]]["per_frame"]["psnr_y"])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# A stand-in for the browser's DOM, just enough to run the page's player and call its handlers: the test
# fails on any error the script throws. Not a browser: it checks the player's logic, not what it draws.
PLAYER_SMOKE_TEST = r"""
const html = require("fs").readFileSync(process.argv[1], "utf8");
const json = html.match(/<script type="application\/json" id="vsr-data">([\s\S]*?)<\/script>/)[1];
const script = html.slice(html.lastIndexOf("<script>") + 8, html.lastIndexOf("</script>"));
const made = [];
function Element(tag) {
  Object.assign(this, {tagName: tag.toUpperCase(), children: [], attrs: {}, style: {}, listeners: {}, textContent: ""});
  if (tag === "video") Object.assign(this, {currentTime: 0, readyState: 4, paused: true});
  made.push(this);
}
Element.prototype = {
  appendChild(child) { this.children.push(child); return child; },
  setAttribute(key, value) {
    this.attrs[key] = String(value);
    if (["width", "height", "value"].includes(key)) this[key] = value;
  },
  addEventListener(kind, handler) { (this.listeners[kind] = this.listeners[kind] || []).push(handler); },
  fire(kind, extra) {
    const event = Object.assign({target: this, preventDefault() {}, clientX: 10, clientY: 10, pointerId: 1}, extra);
    (this.listeners[kind] || []).forEach(handler => handler(event));
  },
  getContext() { return new Proxy({}, {get: (target, key) => key in target ? target[key] : () => {}}); },
  querySelector() { return this.player; },
  getBoundingClientRect() { return {left: 0, top: 0, width: 640, height: 480}; },
  setPointerCapture() {},
  play() { this.paused = false; return Promise.resolve(); },
  pause() { this.paused = true; },
};
const data = JSON.parse(json);
const sections = data.clips.map(() => Object.assign(new Element("section"), {player: new Element("div")}));
global.document = {createElement: tag => new Element(tag),
                   getElementById: id => id === "vsr-data" ? {textContent: json} : sections[+id.split("-")[1]]};
let frames = 0;
global.requestAnimationFrame = callback => { if (frames++ < 3) setTimeout(callback, 0); };
eval(script);
const of = tag => made.filter(element => element.tagName === tag);
const videos = of("VIDEO"), buttons = of("BUTTON"), selects = of("SELECT");
videos.forEach(video => video.fire("loadeddata"));
buttons[2].fire("click");  // next frame
const seek = of("INPUT")[0];
seek.value = "3"; seek.fire("input");
const times = new Set(videos.map(video => video.currentTime));
selects[0].value = "2"; selects[0].fire("change");
selects[2].value = "4"; selects[2].fire("change");
const wipe = made.find(element => element.attrs["class"] === "wipe");
wipe.fire("pointerdown", {clientX: 320}); wipe.fire("pointermove", {clientX: 100}); wipe.fire("pointerup");
sections[0].fire("keydown", {key: " "});  // play
videos[1].currentTime = 2;  // a follower that drifted
setTimeout(() => {
  sections[0].fire("keydown", {key: " "});  // pause
  videos[0].fire("ended");
  console.log(JSON.stringify({frameAfterSeek: [...times], synced: new Set(videos.map(v => v.currentTime)).size,
                              divider: made.find(element => element.attrs["class"] === "divider").style.left}));
}, 20);
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_player_script_runs_and_keeps_the_videos_on_one_frame(tmp_path, run_cli):
    inputs = make_inputs(tmp_path / "in")
    result = run_cli("compare", inputs["source"], inputs["sharp"], inputs["blurred"], "--gt", inputs["gt"],
                     "-o", tmp_path / "c.html", "--quiet")
    assert result.exit_code == 0, result.output
    ran = subprocess.run(["node", "-e", PLAYER_SMOKE_TEST, str(tmp_path / "c.html")], capture_output=True,
                         text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    state = json.loads(ran.stdout)
    assert state["frameAfterSeek"] == [pytest.approx(3.5 / 25)]  # every video at the middle of frame 3
    assert state["synced"] == 1  # the drifted follower was brought back to the leader's frame
    assert state["divider"] == "15.625%"  # dragged to 100 of 640 pixels
