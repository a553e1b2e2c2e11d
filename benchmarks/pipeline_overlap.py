"""How much of decode and encode the threaded pipeline hides behind inference, on this machine.

`vsr run` decodes, infers and encodes in three threads joined by bounded queues. This script times each stage
alone, in this process, on the same frames (decode: the source to frames in memory; inference: those frames
through the model as `vsr run` runs it; encode: the SR frames to an H.264 file), then the whole threaded
pipeline (`upscale_video`), interleaved over a few repeats so that a busy spell falls on every variant alike.

  overlap = (sum of the stages - threaded) / (sum of the stages - slowest stage)

is the share of the time that could be hidden that was hidden: 1 when the pipeline takes only as long as its
slowest stage, 0 when it takes as long as the stages one after the other. On 2 CPU cores all three stages
compete for the same cores, so less can be hidden than on a GPU machine, where inference leaves the CPU free.

    python benchmarks/pipeline_overlap.py                                   # frvsr, 320x180, 40 frames
    python benchmarks/pipeline_overlap.py --model bicubic --frames 200 --write
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import av
import numpy as np
import torch
from results_file import write_section

from vsr.io.probe import probe
from vsr.io.reader import FrameReader
from vsr.io.writer import EncoderSettings, open_writer
from vsr.models.zoo import build_model
from vsr.pipeline.inference import upscale_frames
from vsr.pipeline.job import upscale_video

HEADING = "## Decode, inference and encode overlap on the CPU, {model} (benchmarks/pipeline_overlap.py)"


def make_source(path: Path, frames: int, width: int, height: int, rate: int = 25) -> None:
    """A moving, textured H.264 clip, so that the encoder has real work (a flat clip encodes for free)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height * 2, width * 2, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            image = np.ascontiguousarray(texture[index % height:index % height + height, index:index + width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def time_stages(source: Path, model: torch.nn.Module, work: Path) -> dict[str, float]:
    device = torch.device("cpu")
    info = probe(source)
    started = time.perf_counter()
    frames = list(FrameReader(info))
    decode = time.perf_counter() - started
    started = time.perf_counter()
    outputs = list(upscale_frames(frames, model, device))
    infer = time.perf_counter() - started
    started = time.perf_counter()
    writer = open_writer(work / "stages.mp4", info.width * model.scale, info.height * model.scale, info,
                         EncoderSettings())
    for frame in outputs:
        writer.write(frame)
    writer.close()
    encode = time.perf_counter() - started
    return {"decode": decode, "infer": infer, "encode": encode}


def time_threaded(source: Path, model: torch.nn.Module, work: Path) -> float:
    started = time.perf_counter()
    upscale_video(source, work / "threaded.mp4", model, torch.device("cpu"), overwrite=True, progress=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="frvsr")
    parser.add_argument("--size", default="320x180", help="low-res WxH of the synthetic source")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    model = build_model(args.model, 4)
    rows: dict[str, list[float]] = {"decode": [], "infer": [], "encode": [], "threaded": []}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        source = work / "source.mp4"
        make_source(source, args.frames, width, height)
        time_threaded(source, model, work)  # warm-up: first-call costs (allocator, oneDNN kernels) out of the way
        for _ in range(args.repeats):
            for stage, seconds in time_stages(source, model, work).items():
                rows[stage].append(seconds)
            rows["threaded"].append(time_threaded(source, model, work))
    median = {name: statistics.median(values) for name, values in rows.items()}
    section = render(args, median, rows)
    print(section)
    if args.write:
        write_section(Path(__file__).with_name("RESULTS.md"), HEADING.format(model=args.model), section)


def render(args: argparse.Namespace, median: dict[str, float], rows: dict[str, list[float]]) -> str:
    stages = median["decode"] + median["infer"] + median["encode"]
    slowest = max(median["decode"], median["infer"], median["encode"])
    overlap = (stages - median["threaded"]) / (stages - slowest) if stages > slowest else float("nan")
    lines = [HEADING.format(model=args.model), "",
             (f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"torch {torch.__version__} with {torch.get_num_threads()} threads; model {args.model}, synthetic "
              f"{args.size} H.264 source of {args.frames} frames, x4, libx264 crf 18; medians of {args.repeats}."),
             (f"Reproduce: `python benchmarks/pipeline_overlap.py --model {args.model} --size {args.size} "
              f"--frames {args.frames} --repeats {args.repeats}`."),
             "", "| stage | median s | all s | frames/s |", "|---|---|---|---|"]
    for name in ("decode", "infer", "encode", "threaded"):
        label = "threaded pipeline (`vsr run`)" if name == "threaded" else f"{name} alone"
        lines.append(f"| {label} | {median[name]:.2f} | {', '.join(f'{v:.2f}' for v in rows[name])} | "
                     f"{args.frames / median[name]:.2f} |")
    threaded = median["threaded"]
    # When one stage is nearly everything, the hideable time is within the noise and the ratio means nothing.
    overlap_text = (f"overlap = {overlap:.2f} of the hideable time" if stages - slowest >= 0.1 * stages
                    else "overlap not meaningful: the other stages are under a tenth of the total")
    lines += ["", (f"Sum of the stages {stages:.2f} s, slowest stage {slowest:.2f} s, threaded {threaded:.2f} s: "
                   f"threaded / sum = {threaded / stages:.3f}; {overlap_text}.")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
