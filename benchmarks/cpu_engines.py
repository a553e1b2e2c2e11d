"""The CPU engines side by side: `vsr run` on torch against OpenVINO fp32 and OpenVINO auto, as ratios.

For each model, each variant runs `vsr run` end to end (decode, inference, encode) in a fresh process
(`python -m vsr run ... --device cpu`) on the same clip, to a temporary .mp4:

- `torch`: `--backend torch`, the old CLI path, the baseline the others are divided by;
- `openvino fp32`: `--backend openvino --precision fp32`;
- `openvino auto`: `--backend openvino --precision auto` (bf16 reconstruction on CPUs that compute bf16 in
  hardware, fp32 elsewhere);
- `openvino int8`: `--backend openvino --precision int8` (the reconstruction network calibrated to int8 with
  NNCF, shipped beside the weights; models without an int8 form are skipped).

Each variant has its own VSR_CACHE_DIR in a temporary folder, so its first run exports and compiles from
nothing: that run is untimed for frames/s and its wall time is reported as "first run s". Then R rounds run
interleaved (torch, fp32, auto, torch, fp32, auto, ...), so that a busy spell on a shared machine falls on
every variant alike; frames/s are `vsr run`'s own summary ("N frames in X s (F fps)"), the median over the
rounds, and "/ torch" divides by torch's median from the same run. Each run's peak RSS is its process's own rusage;
the last round's outputs are kept and each is compared with torch's (PSNR of the luma planes: what the
engine and precision change, after encoding). "ran on" is what `vsr run` said ran the
model (its line "vsr: MODEL ran on ..."): a model with no OpenVINO form runs on torch and says so.

The clip is made here (320x180, 30 frames at 30 frames/s, a textured pattern moving two pixels a frame, as
the tests' `moving_pattern`; 1280x720 out at x4), or `--clip` names a real one.

    python benchmarks/cpu_engines.py                                      # frvsr, 2 rounds
    python benchmarks/cpu_engines.py --models frvsr,frvsr-real,basicvsrpp-small --rounds 3
    python benchmarks/cpu_engines.py --clip clip.mp4 --write              # and record it in benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from results_file import describe_cpu, write_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsr.metrics import psnr  # noqa: E402
HEADING = "## CPU engines: torch against OpenVINO (benchmarks/cpu_engines.py)"
VARIANTS = {
    "torch": ["--backend", "torch"],
    "openvino fp32": ["--backend", "openvino", "--precision", "fp32"],
    "openvino auto": ["--backend", "openvino", "--precision", "auto"],
    "openvino int8": ["--backend", "openvino", "--precision", "int8"],
}
BASELINE = "torch"
REPORT = re.compile(r"(\d+) frames in ([\d.]+) s \(([\d.]+) fps\)")
RAN_ON = re.compile(r"^vsr: .+ ran on (.+)$")


def moving_pattern(index: int, width: int, height: int) -> np.ndarray:
    """tests/conftest.py's picture: a texture that moves by two pixels a frame."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    shift = 2 * index
    r = 0.5 + 0.5 * np.sin((x + shift) / 3.0)
    g = 0.5 + 0.5 * np.cos((y - shift) / 4.0)
    b = ((x + y + shift) % 16) / 15.0
    return np.round(np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)


def make_clip(path: Path, frames: int, width: int, height: int, fps: int) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast", "crf": "10"}
        for index in range(frames):
            picture = av.VideoFrame.from_ndarray(moving_pattern(index, width, height), format="rgb24")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@dataclass
class Run:
    fps: float | None  # vsr run's own figure; None when it failed
    wall: float  # the whole process
    ran_on: str  # what vsr said ran the model, or why it failed
    peak_mib: float | None = None  # the process's peak RSS


@dataclass
class Result:
    first: Run | None = None
    rounds: list[Run] = field(default_factory=list)
    psnr_y: float | None = None  # of the output against torch's (fp32 on a CPU)

    def median_fps(self) -> float | None:
        figures = [run.fps for run in self.rounds if run.fps is not None]
        return statistics.median(figures) if figures else None


def run_vsr(clip: Path, target: Path, model: str, flags: list[str], cache: Path, timeout: float) -> Run:
    command = [sys.executable, "-m", "vsr", "run", str(clip), "-o", str(target), "--model", model,
               "--device", "cpu", "--overwrite", "--quiet", *flags]
    environment = dict(os.environ, VSR_CACHE_DIR=str(cache))
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True, cwd=ROOT, env=environment)
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        _, status, usage = os.wait4(process.pid, 0)  # the child's own rusage: its peak RSS
        timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0), err.seek(0)
        stdout, errors = out.read(), err.read().strip().splitlines()
    if process.returncode == -signal.SIGKILL and wall >= timeout:
        return Run(None, wall, f"timed out after {timeout:.0f} s")
    last = errors[-1] if errors else ""
    # Windowed models add a line on their windows after the "ran on" one.
    said = next((found for found in map(RAN_ON.match, reversed(errors)) if found), None)
    match = REPORT.search(stdout)
    if process.returncode != 0 or match is None:
        return Run(None, wall, (last or f"exit status {process.returncode}")[:160])
    return Run(float(match.group(3)), wall, said.group(1) if said else "?", usage.ru_maxrss / 1024)


def psnr_y(path: Path, reference: Path) -> float | None:
    """Mean PSNR of the luma planes of two videos of the same frames; None if either is missing."""
    if not (path.exists() and reference.exists()):
        return None
    with av.open(str(path)) as a, av.open(str(reference)) as b:
        scores = []
        for ours, theirs in zip(a.decode(video=0), b.decode(video=0)):
            y_ours, y_theirs = (frame.to_ndarray(format="yuv420p")[: frame.height] for frame in (ours, theirs))
            scores.append(min(psnr(y_ours, y_theirs, y_channel=False), 100.0))  # 100: identical
    return float(np.mean(scores)) if scores else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="frvsr", help="comma-separated, e.g. frvsr,frvsr-real,basicvsrpp-small")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds per variant, after the first run")
    parser.add_argument("--clip", type=Path, default=None, help="a real clip instead of the synthetic one")
    parser.add_argument("--size", default="320x180", help="synthetic clip WxH (default 320x180, 1280x720 out)")
    parser.add_argument("--frames", type=int, default=30, help="synthetic clip length")
    parser.add_argument("--fps", type=int, default=30, help="synthetic clip frame rate")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one `vsr run` may take")
    parser.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    models = [name for name in args.models.split(",") if name]
    results = {(model, variant): Result() for model in models for variant in VARIANTS}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vsr-cpu-engines-") as folder:
        work = Path(folder)
        if args.clip is not None:
            clip, source = args.clip.resolve(), f"`{args.clip}`"
        else:
            width, height = map(int, args.size.split("x"))
            clip = work / "clip.mp4"
            make_clip(clip, args.frames, width, height, args.fps)
            source = (f"synthetic {width}x{height}, {args.frames} frames at {args.fps} frames/s (a textured "
                      "pattern moving two pixels a frame, H.264)")
        for model in models:
            caches = {variant: work / "cache" / model / variant.replace(" ", "-") for variant in VARIANTS}
            for variant, flags in VARIANTS.items():
                run = run_vsr(clip, work / "out.mp4", model, flags, caches[variant], args.timeout)
                results[model, variant].first = run
                print(f"{model} {variant} first run: {run}", flush=True)
            outputs = {variant: work / f"{model}-{variant.replace(' ', '-')}.mp4" for variant in VARIANTS}
            for index in range(args.rounds):
                for variant, flags in VARIANTS.items():
                    run = run_vsr(clip, outputs[variant], model, flags, caches[variant], args.timeout)
                    results[model, variant].rounds.append(run)
                    print(f"{model} {variant} round {index + 1}: {run}", flush=True)
            for variant in VARIANTS:
                results[model, variant].psnr_y = psnr_y(outputs[variant], outputs[BASELINE])
    elapsed = time.perf_counter() - started
    section = render(args, models, results, source, elapsed)
    print(section)
    if args.write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", HEADING, section)


def command_line(args: argparse.Namespace) -> str:
    words = ["python", "benchmarks/cpu_engines.py", "--models", args.models, "--rounds", str(args.rounds)]
    if args.clip is not None:
        words += ["--clip", str(args.clip)]
    else:
        words += ["--size", args.size, "--frames", str(args.frames), "--fps", str(args.fps)]
    return shlex.join(words)


def render(args: argparse.Namespace, models: list[str], results: dict[tuple[str, str], Result], source: str,
           elapsed: float) -> str:
    lines = [
        HEADING, "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- CPU: {describe_cpu()}",
        f"- command: `{command_line(args)}` ({elapsed / 60:.1f} min)",
        (f"- input: {source}; `vsr run --device cpu` end to end (decode, inference, encode) in a fresh process "
         "per run, x4 to .mp4. Each variant's first run, with its own empty VSR_CACHE_DIR (export and compile), "
         f"is timed whole as \"first run s\"; then {args.rounds} round{'s' if args.rounds != 1 else ''} "
         "interleaved across the variants. "
         "frames/s: `vsr run`'s own figure, the median over the rounds (each round in brackets); / torch: "
         "against torch's median in the same run. peak RSS: the largest of the rounds' (the process's own "
         "rusage). PSNR-Y vs torch: the luma of the last round's output against torch's (fp32 on a CPU), after "
         "both were encoded. ran on: what `vsr run` said ran the model."),
        "",
        "| model | variant | frames/s | / torch | first run s | peak RSS MiB | PSNR-Y vs torch | ran on |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in models:
        baseline = results[model, BASELINE].median_fps()
        for variant in VARIANTS:
            result = results[model, variant]
            median = result.median_fps()
            each = ", ".join(f"{run.fps:.2f}" if run.fps is not None else "failed" for run in result.rounds)
            fps = f"{median:.2f} ({each})" if median is not None else f"failed ({each})"
            ratio = f"{median / baseline:.2f}x" if median is not None and baseline else "-"
            first = result.first
            first_s = f"{first.wall:.1f}" if first is not None and first.fps is not None else "failed"
            said = next((run.ran_on for run in [*result.rounds, first] if run is not None and run.fps is not None),
                        None)
            if said is None:  # every run failed: say why
                said = next((run.ran_on for run in [first, *result.rounds] if run is not None), "-")
            peaks = [run.peak_mib for run in result.rounds if run.peak_mib is not None]
            peak = f"{max(peaks):.0f}" if peaks else "-"
            psnr = "-" if result.psnr_y is None else ("identical" if result.psnr_y >= 100 else f"{result.psnr_y:.2f} dB")
            lines.append(f"| {model} | {variant} | {fps} | {ratio} | {first_s} | {peak} | {psnr} | {said} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
