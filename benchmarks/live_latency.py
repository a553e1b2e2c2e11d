"""Glass-to-glass latency of `vsr run - -o -`: from a frame entering the pipe to its upscaled frame leaving it.

A sender encodes frames (x264, zerolatency) as MPEG-TS into `vsr run`'s standard input at the stream's frame
rate, noting when each frame's packet went in; a receiver decodes `vsr run`'s standard output (MPEG-TS) and
notes when each frame came out, matched by timestamp. The difference is what a viewer waits: decoding,
the model (with its window, for windowed models), encoding and the pipes. The first half of the frames, which
pay for compiling the model and the backlog that builds meanwhile, are left out of the figures. At a steady
state about four frame intervals are MPEG-TS and H.264 framing (a demuxer emits a frame when the next one
starts, and a parser likewise, at each end), whatever the model. The input rate is below each model's own
rate on this CPU, so that latency measures delay, not a growing backlog.

    python benchmarks/live_latency.py            # print the table
    python benchmarks/live_latency.py --write    # and record it in benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from results_file import describe_cpu, write_section

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## Live latency (benchmarks/live_latency.py)"
# model, extra options, input size (w, h), frames/s sent, frames sent
CASES = [
    ("bicubic", [], (160, 96), 5, 60),
    ("frvsr", [], (160, 96), 2, 40),
    ("basicvsrpp-small", [], (160, 96), 1, 30),
]


def moving_frame(index: int, width: int, height: int) -> np.ndarray:
    x = np.arange(width)[None, :, None]
    y = np.arange(height)[:, None, None]
    phase = index * 3
    return (((x + phase) // 8 + y // 8) % 2 * 160 + 40 + (x * 2 + y) % 40).astype(np.uint8).repeat(3, axis=2)


def send(pipe, width: int, height: int, rate: int, count: int, sent: dict[int, float]) -> None:
    """Encode and write `count` frames at `rate` frames/s, noting when each one's bytes went into the pipe."""
    output = av.open(pipe, "w", format="mpegts", container_options={"flush_packets": "1"})
    stream = output.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.codec_context.options = {"tune": "zerolatency", "preset": "ultrafast"}
    start = time.monotonic()
    try:
        for index in range(count):
            time.sleep(max(0.0, start + index / rate - time.monotonic()))
            frame = av.VideoFrame.from_ndarray(moving_frame(index, width, height), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, rate)
            for packet in stream.encode(frame):
                output.mux(packet)
            pipe.flush()
            sent[index] = time.monotonic()
        for packet in stream.encode(None):
            output.mux(packet)
    finally:
        output.close()
        pipe.close()


def receive(pipe, rate: int, arrived: dict[int, float]) -> None:
    # Unbuffered: a buffered file waits for a whole 32 KB read, many small frames, before handing any over.
    pipe = open(pipe.fileno(), "rb", buffering=0, closefd=False)
    container = av.open(pipe, "r", format="mpegts", buffer_size=4096, options={"analyzeduration": "0"})
    stream = container.streams.video[0]
    stream.thread_type = "SLICE"  # frame threads would hold frames back
    first = None
    for frame in container.decode(stream):
        seconds = float(frame.pts * stream.time_base)
        first = seconds if first is None else first
        arrived[round((seconds - first) * rate)] = time.monotonic()


def measure(model: str, options: list[str], size: tuple[int, int], rate: int, count: int) -> dict:
    process = subprocess.Popen([sys.executable, "-m", "vsr", "run", "-", "-o", "-", "--format", "mpegts", "--model",
                                model, "--quiet", *options], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=ROOT)
    sent: dict[int, float] = {}
    arrived: dict[int, float] = {}
    said = []
    for line in process.stderr:  # the sender starts once vsr listens, as a live source would find it
        said.append(line.decode())
        if "a live input" in said[-1]:
            break
    receiver = threading.Thread(target=receive, args=(process.stdout, rate, arrived))
    receiver.start()
    send(process.stdin, *size, rate, count, sent)
    receiver.join()
    stderr = "".join(said) + process.stderr.read().decode()
    if process.wait() != 0:
        raise RuntimeError(f"vsr failed for {model}: {stderr}")
    waits = [arrived[i] - sent[i] for i in sorted(sent) if i >= count // 2 and i in arrived]
    return {"model": model, "options": " ".join(options), "size": f"{size[0]}x{size[1]}", "rate": rate,
            "frames": len(arrived), "sent": count, "median_s": statistics.median(waits),
            "p90_s": sorted(waits)[int(0.9 * (len(waits) - 1))], "max_s": max(waits),
            "note": next((line.split("note: ", 1)[1] for line in stderr.splitlines() if "look-ahead" in line), "")}


def table(rows: list[dict]) -> str:
    lines = ["| model | input | frames/s in | frames out/in | latency median | p90 | max | frames of delay |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        name = row["model"] + (f" ({row['options']})" if row["options"] else "")
        lines.append(f"| {name} | {row['size']} | {row['rate']} | {row['frames']}/{row['sent']} | "
                     f"{row['median_s']:.2f} s | {row['p90_s']:.2f} s | {row['max_s']:.2f} s | "
                     f"{row['median_s'] * row['rate']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    args = parser.parse_args()
    rows = [measure(*case) for case in CASES]
    text = table(rows)
    print(text)
    for row in rows:
        if row["note"]:
            print(f"{row['model']}: {row['note']}")
    if args.write:
        section = (f"{HEADING}\n\n{datetime.date.today()}, {describe_cpu()}. `vsr run - -o - --format mpegts`, fed "
                   f"MPEG-TS (x264 ultrafast, zerolatency) at the rate shown and read back as it comes out; "
                   f"latency from a frame's packet entering the pipe to its upscaled frame decoded at the other end, "
                   f"over the second half of the frames (the first ones pay for compiling the model and the "
                   f"backlog it leaves). 'frames of delay' is the median latency times the input rate.\n\n{text}\n\n"
                   "About four frame intervals of every row are MPEG-TS and H.264 framing: a demuxer and a parser "
                   "each emit a frame when the next one starts, at vsr's input and at the receiver. Windowed models "
                   "hold each frame until their window and its look-ahead have arrived (basicvsrpp-small on a live "
                   "input: windows of 8 frames, 6 of look-ahead); the streaming frvsr and per-frame models emit each "
                   "frame as soon as it is upscaled.\n")
        write_section(ROOT / "benchmarks" / "RESULTS.md", HEADING, section)


if __name__ == "__main__":
    main()
