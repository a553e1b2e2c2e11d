"""Do chunks show? PSNR-Y and tOF on the frames either side of window boundaries, against the rest.

BasicVSR++ propagates through the whole window in both directions, so a window with no context frames cuts
that propagation at its edges: the frames there see less of the clip. `context_frames` on each side (what
the pipeline adds around every chunk) should close the gap. This runs our shipped small BasicVSR++ (or a
training run's) on the first frames of the clips/val clips in chunks of 4, with 0, 2 and 6 context frames,
through `vsr bench`.

    python benchmarks/chunk_seams.py [--run runs/basicvsrpp_small_bi_x4] [--frames 16] [--write]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch
from results_file import write_section
from validation_quality import VAL_DIR, candidate_model

from vsr.bench.clips import find_clips
from vsr.bench.report import model_mean
from vsr.bench.runner import Settings, bench_model
from vsr.models.interpolation import MatlabBicubicUpscaler
from vsr.models.zoo import build_model

HEADING = "## Chunk seams of BasicVSR++ (benchmarks/chunk_seams.py)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=None,
                        help="a BasicVSR++ training run folder (default: the shipped basicvsrpp-small)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--chunk", type=int, default=4)
    parser.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    args = parser.parse_args()
    if not VAL_DIR.is_dir():
        sys.exit(f"{VAL_DIR} is absent: this benchmark needs the team's media folder")

    clips = find_clips(VAL_DIR, None, 4, "BI", args.frames, (640, 360))
    settings = Settings(torch.device("cpu"), chunk=args.chunk, scene_cuts=False)
    model = candidate_model(args.run) if args.run else build_model("basicvsrpp-small", 4)
    run_option = f" --run {args.run}" if args.run else ""
    lines = [HEADING, "",
             (f"Reproduce: `python benchmarks/chunk_seams.py{run_option} --frames {args.frames} --chunk {args.chunk}`. "
              f"First {args.frames} frames of each clips/val clip, centre 640x360, chunks of {args.chunk} frames; "
              "\"at seams\" is the two frames either side of each window boundary (PSNR-Y) and the pair across it "
              "(tOF, warping error); means over clips."), "",
             ("| model | PSNR-Y at seams / elsewhere | difference | tOF at seams / elsewhere | "
              "warping error x1e3 at seams / elsewhere | whole-clip PSNR-Y |"),
             "|---|---|---|---|---|---|"]
    # MATLAB bicubic sees one frame at a time: its row is the control, what content alone makes of the
    # boundary frames. A seam is a gap beyond the control's.
    rows = [("bicubic-matlab (control)", MatlabBicubicUpscaler(4), None)]
    rows += [(f"BasicVSR++, {context} context frames", model, context) for context in (0, 2, 6)]
    for label, network, context in rows:
        if context is not None:
            network.context_frames = context
        mean = model_mean(bench_model(label, network, clips, settings))
        at, elsewhere = mean["seams"]["at_seams"], mean["seams"]["elsewhere"]
        lines.append(f"| {label} | {at['psnr_y']:.3f} / {elsewhere['psnr_y']:.3f} | "
                     f"{at['psnr_y'] - elsewhere['psnr_y']:+.3f} | {at['tof']:.3f} / {elsewhere['tof']:.3f} | "
                     f"{at['warping_error'] * 1e3:.3f} / {elsewhere['warping_error'] * 1e3:.3f} | "
                     f"{mean['psnr_y']:.3f} |")
        print(lines[-1], file=sys.stderr)
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        write_section(Path(__file__).with_name("RESULTS.md"), HEADING, section)


if __name__ == "__main__":
    main()
