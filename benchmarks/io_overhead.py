"""The cost of vsr's I/O pipeline next to the ffmpeg command line, and whether its memory stays flat.

With the bicubic model the "model" is a cheap resize, so `vsr run` does what one ffmpeg command does:
decode, scale x4, encode with libx264, copy the audio. Whatever vsr takes beyond ffmpeg is the price of
its pipeline: YUV->RGB conversion, numpy/torch round trips, Python threads and queues, RGB->YUV reformat.

    python benchmarks/io_overhead.py                        # synthetic clip, print the table
    python benchmarks/io_overhead.py --repeats 5 --write    # and record it in benchmarks/RESULTS.md
    python benchmarks/io_overhead.py --source my_clip.mp4   # a real clip instead of the synthetic one

Measured:
  time    the median wall time of `vsr run` over that of `ffmpeg` (target <= 1.05). The two run interleaved,
          A B A B ..., so that a busy spell on a shared, noisy machine falls on both sides alike; only
          the ratio is meant to travel between machines, not the seconds. CPU seconds (user + sys) are
          shown too: they are less sensitive to other load than wall time.
  memory  the peak RSS of `vsr run` on a clip four times longer (the same clip, four times over) over that
          on the clip itself (target <= 1.05): a streaming pipeline must not grow with the video's length.
          Peak RSS is read from each child's rusage with os.wait4. Below a few hundred frames the queues and
          the encoder's look-ahead are still filling, so the short run understates the steady state.

Note that the PyAV wheel bundles its own FFmpeg and x264, which may not be the versions of the ffmpeg CLI.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import write_section

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## I/O overhead (benchmarks/io_overhead.py)"
TIME_TARGET = MEMORY_TARGET = 1.05


def run_measured(command: list[str], log: Path) -> tuple[float, float, int]:
    """Run `command` to completion: (wall seconds, user+sys CPU seconds, peak RSS in MiB)."""
    with open(log, "ab") as out:
        out.write(f"\n$ {shlex.join(command)}\n".encode())
        out.flush()
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
        sys.exit(f"{tail}\nfailed with exit status {process.returncode}: {shlex.join(command)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024  # ru_maxrss is in KiB on Linux


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_clips(args: argparse.Namespace, work: Path) -> tuple[Path, Path]:
    """The measured clip (H.264 + AAC) and the same clip four times over (concat demuxer, streams copied)."""
    clip, long_clip = work / "clip.mp4", work / "clip_x4.mp4"
    if args.source:
        clip = Path(args.source).resolve()
    else:
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={args.size}:rate={args.fps}",
               "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(args.frames / args.fps),
               "-c:v", "libx264", "-preset", "fast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", str(clip))
    playlist = work / "clip_x4.txt"
    playlist.write_text(f"file '{clip}'\n" * 4)  # a path with a quote in it is not supported
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(playlist), "-c", "copy", str(long_clip))
    return clip, long_clip


def count_frames(path: Path) -> str:
    result = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                             "stream=nb_read_packets,width,height", "-of", "csv=p=0", str(path)],
                            capture_output=True, text=True)
    width, height, packets = (result.stdout.strip().split(",") + ["?"] * 3)[:3]
    return f"{packets} frames, {width}x{height}"


def vsr_command(args: argparse.Namespace, clip: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "vsr", "run", str(clip), "-o", str(out), "--model", "bicubic",
            "--scale", str(args.scale), "--codec", "libx264", "--crf", "18", "--preset", "medium",
            "--overwrite", "--quiet"]


def ffmpeg_command(args: argparse.Namespace, clip: Path, out: Path) -> list[str]:
    return ["ffmpeg", "-hide_banner", "-nostats", "-y", "-i", str(clip),
            "-vf", f"scale=iw*{args.scale}:ih*{args.scale}:flags=bicubic",
            "-c:v", "libx264", "-crf", "18", "-preset", "medium", "-c:a", "copy", str(out)]


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    return (f"{len(os.sched_getaffinity(0))} CPUs (nproc), {model.group(1) if model else platform.processor()}, "
            f"load average {os.getloadavg()[0]:.2f} at start; Python {platform.python_version()}; {version}")


def revision() -> str:
    """The commit measured, and whether vsr/ differs from it."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "vsr"], capture_output=True, text=True).stdout
    return (head or "unknown") + (" with uncommitted changes in vsr/" if dirty.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1000, help="frames in the synthetic clip (default 1000)")
    parser.add_argument("--size", default="320x180", help="synthetic clip size WxH (default 320x180)")
    parser.add_argument("--fps", type=int, default=25, help="synthetic clip frame rate (default 25)")
    parser.add_argument("--source", help="measure this clip instead of a synthetic one")
    parser.add_argument("--scale", type=int, default=4, help="upscaling factor (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each command (default 3)")
    parser.add_argument("--workdir", help="folder for clips, outputs and the log (default: a temporary one)")
    parser.add_argument("--write", action="store_true", help="record the results in benchmarks/RESULTS.md")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "RESULTS.md"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.source and not Path(args.source).is_file():
        parser.error(f"--source {args.source}: no such file")

    with tempfile.TemporaryDirectory(prefix="vsr-io-") as temporary:
        work = Path(args.workdir or temporary).resolve()
        work.mkdir(parents=True, exist_ok=True)
        log = work / "runs.log"
        about_machine, about_code = machine(), revision()
        clip, long_clip = make_clips(args, work)
        out_vsr, out_ff = work / "out_vsr.mp4", work / "out_ff.mp4"
        print(f"clip: {clip} ({count_frames(clip)}); log: {log}", flush=True)

        runs: dict[str, list[tuple[float, float, int]]] = {"vsr": [], "ffmpeg": []}
        for repeat in range(args.repeats):  # interleaved: A B A B ...
            runs["vsr"].append(run_measured(vsr_command(args, clip, out_vsr), log))
            runs["ffmpeg"].append(run_measured(ffmpeg_command(args, clip, out_ff), log))
            print(f"  run {repeat + 1}/{args.repeats}: vsr {runs['vsr'][-1][0]:.2f} s, "
                  f"ffmpeg {runs['ffmpeg'][-1][0]:.2f} s", flush=True)
        outputs = {"vsr": count_frames(out_vsr), "ffmpeg": count_frames(out_ff)}
        long_run = run_measured(vsr_command(args, long_clip, work / "out_vsr_x4.mp4"), log)
        print(f"  vsr on the 4x clip: {long_run[0]:.2f} s, peak RSS {long_run[2]} MiB", flush=True)

    median = {name: [statistics.median(run[i] for run in rows) for i in range(3)] for name, rows in runs.items()}
    time_ratio = median["vsr"][0] / median["ffmpeg"][0]
    cpu_ratio = median["vsr"][1] / median["ffmpeg"][1]
    memory_ratio = long_run[2] / median["vsr"][2]
    verdict = {True: "pass", False: "FAIL"}
    rows = [
        "| command | median wall s | all wall s | median CPU s | peak RSS MiB | output |",
        "|---|---|---|---|---|---|",
        *(f"| {name} | {median[name][0]:.2f} | {', '.join(f'{run[0]:.2f}' for run in runs[name])} | "
          f"{median[name][1]:.2f} | {median[name][2]} | {outputs[name]} |" for name in runs),
        f"| vsr, 4x longer clip | {long_run[0]:.2f} | (1 run) | {long_run[1]:.2f} | {long_run[2]} | |",
        "",
        "| figure | value | target | result |",
        "|---|---|---|---|",
        f"| wall time vsr / ffmpeg (medians) | {time_ratio:.3f} | <= {TIME_TARGET} | "
        f"{verdict[time_ratio <= TIME_TARGET]} |",
        f"| CPU time vsr / ffmpeg (medians, for information) | {cpu_ratio:.3f} | | |",
        f"| peak RSS vsr, 4x clip / clip | {memory_ratio:.3f} | <= {MEMORY_TARGET} | "
        f"{verdict[memory_ratio <= MEMORY_TARGET]} |",
    ]
    source = args.source or f"synthetic testsrc2 {args.size} @ {args.fps} fps, {args.frames} frames, H.264 + AAC"
    section = "\n".join([
        HEADING, "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {about_machine}",
        f"- code: vsr at {about_code}",
        f"- command: `{shlex.join(['python', 'benchmarks/io_overhead.py', *sys.argv[1:]])}`",
        f"- clip: {source}; {args.repeats} interleaved runs of each command; the 4x clip is the clip four times over",
        f"- vsr: `{shlex.join(['python', *vsr_command(args, Path('clip.mp4'), Path('out_vsr.mp4'))[1:]])}`",
        f"- ffmpeg: `{shlex.join(ffmpeg_command(args, Path('clip.mp4'), Path('out_ff.mp4')))}`",
        "", *rows,
    ])
    print("\n" + section)
    if args.write:
        write_section(Path(args.results), HEADING, section)
        print(f"\nwritten to {args.results}")


if __name__ == "__main__":
    main()
