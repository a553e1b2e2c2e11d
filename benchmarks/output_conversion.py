"""Would it pay to give the encoder its pixel format from inside the compiled model? (issue 19)

Today the default path leaves the model with float RGB; the pipeline rounds it to 8-bit RGB (`tensor_to_images`)
and the writer converts that to the encoder's 4:2:0 YUV with swscale (`VideoFileWriter.write`). Folding both
into the compiled model would replace them with a colour matrix, a 2x2 chroma average and rounding, run by
OpenVINO on the model's output, plus a copy of the three planes into the encoder's frame.

Measured side by side on one 1280x720 frame (the default model's 320x180 -> 1280x720), interleaved rounds,
medians, the machine's threads as `vsr run` uses them:

- `frvsr step (OpenVINO auto)`: one streaming step of the shipped default, the work every frame does anyway;
- `round to 8-bit RGB`: `tensor_to_images` on that output;
- `RGB -> YUV 4:2:0 (swscale)`: what the writer does with it, BT.709, limited range;
- `fused head (OpenVINO)`: the colour matrix, chroma average and rounding as a compiled network, what the
  model would run in their place (same precision as the step's reconstruction);
- `planes into the encoder's frame`: copying its three uint8 planes into an `av.VideoFrame`.

What fusing would save per frame is the first two conversion rows minus the last two; the share is that
against the whole per-frame cost of the first three rows.

    python benchmarks/output_conversion.py [--rounds 20] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import Colorspace, ColorRange, VideoReformatter
from results_file import describe_cpu, write_section
from timing import interleaved_medians
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsr.backends.choice import openvino_precision  # noqa: E402
from vsr.backends.openvino_models import OpenVinoFRVSR  # noqa: E402
from vsr.backends.openvino_parts import CompiledPart  # noqa: E402
from vsr.models.zoo import build_model  # noqa: E402
from vsr.pipeline.tensors import tensor_to_images  # noqa: E402

HEADING = "## Encoder's pixel format inside the model? (benchmarks/output_conversion.py, issue 19)"
LR_SIZE = (180, 320)
# BT.709, limited range: Y in 16..235, Cb and Cr in 16..240 (the writer's choice at 720 lines).
KR, KB = 0.2126, 0.0722


class RgbToYuv420(nn.Module):
    """(1, 3, H, W) float RGB in [0, 1] -> one flat I420 buffer: Y (H x W), then Cb and Cr (H/2 x W/2 each),
    8-bit values, rounded (one output, as a compiled part returns)."""

    def __init__(self) -> None:
        super().__init__()
        kg = 1.0 - KR - KB
        luma = torch.tensor([KR, kg, KB])
        cb = (torch.tensor([0.0, 0.0, 1.0]) - luma) / (2 * (1 - KB))
        cr = (torch.tensor([1.0, 0.0, 0.0]) - luma) / (2 * (1 - KR))
        self.register_buffer("matrix", torch.stack([luma * 219, cb * 224, cr * 224]).view(3, 3, 1, 1))
        self.register_buffer("offset", torch.tensor([16.0, 128.0, 128.0]))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        yuv = nn.functional.conv2d(rgb.clamp(0, 1), self.matrix, self.offset)
        chroma = nn.functional.avg_pool2d(yuv[:, 1:], 2)
        return torch.cat([yuv[:, :1].flatten(), chroma.flatten()]).round()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--write", action="store_true", help="record the table in benchmarks/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["VSR_CACHE_DIR"] = cache  # exports of this script's own head are not keyed by its code
        measure(args)


def measure(args: argparse.Namespace) -> None:
    precision = openvino_precision("auto")
    model = OpenVinoFRVSR(build_model("frvsr"), precision)
    torch.manual_seed(0)
    multiple = model.size_multiple  # the pipeline pads the input to it, as here
    frames = torch.rand(2, 1, 3, *(-(-side // multiple) * multiple for side in LR_SIZE))
    sr, state = model.step(frames[0], None)
    out_h, out_w = model.scale * LR_SIZE[0], model.scale * LR_SIZE[1]
    sr = sr[..., :out_h, :out_w].contiguous()  # the pipeline crops the padding off before writing

    head = CompiledPart(RgbToYuv420(), (torch.rand(1, 3, 64, 64),), "rgb-to-yuv420", precision)
    i420 = head(sr).numpy().astype(np.uint8)
    luma_size, chroma_size = out_h * out_w, out_h * out_w // 4
    planes = (i420[:luma_size].reshape(out_h, out_w),
              i420[luma_size:luma_size + chroma_size].reshape(out_h // 2, out_w // 2),
              i420[luma_size + chroma_size:].reshape(out_h // 2, out_w // 2))
    rgb = tensor_to_images(sr.unsqueeze(1), np.uint8)[0]
    to_yuv = VideoReformatter()

    def swscale() -> av.VideoFrame:
        picture = av.VideoFrame.from_numpy_buffer(rgb, format="rgb24")
        return to_yuv.reformat(picture, format="yuv420p", dst_colorspace=Colorspace.ITU709,
                               dst_color_range=ColorRange.MPEG, threads=1)

    def into_frame() -> av.VideoFrame:
        picture = av.VideoFrame(out_w, out_h, "yuv420p")
        for plane, values in zip(picture.planes, planes):
            view = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
            view[:, :values.shape[1]] = values
        return picture

    calls = {
        f"frvsr step (OpenVINO {precision})": lambda: model.step(frames[1], state),
        "round to 8-bit RGB": lambda: tensor_to_images(sr.unsqueeze(1), np.uint8),
        "RGB -> YUV 4:2:0 (swscale)": swscale,
        f"fused head (OpenVINO {precision})": lambda: head(sr),
        "planes into the encoder's frame": into_frame,
    }
    medians = {name: 1000 * s for name, s in interleaved_medians(calls, args.rounds).items()}
    names = list(calls)
    per_frame = medians[names[0]] + medians[names[1]] + medians[names[2]]
    saved = medians[names[1]] + medians[names[2]] - medians[names[3]] - medians[names[4]]
    check = swscale().to_ndarray()[:out_h]
    luma_gap = np.abs(check.astype(int) - planes[0].astype(int)).max()

    lines = [HEADING, "",
             f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
             f"- cpu: {describe_cpu()}",
             f"- command: `python benchmarks/output_conversion.py --rounds {args.rounds}`",
             f"- one {LR_SIZE[1]}x{LR_SIZE[0]} frame (padded to {frames.shape[-1]}x{frames.shape[-2]}) ->"
             f" {out_w}x{out_h}; median ms over {args.rounds} interleaved rounds (the script's docstring says what each"
             " row is)", "",
             "| work per frame | ms | share of the frame |", "|---|---|---|"]
    for name in names:
        lines.append(f"| {name} | {medians[name]:.2f} | {100 * medians[name] / per_frame:.1f}% |")
    bound = medians[names[1]] + medians[names[2]]
    lines += ["",
              f"At most {bound:.2f} ms of {per_frame:.1f} ms a frame ({100 * bound / per_frame:.1f}%) could be saved,"
              f" the two conversions; the fused head as its own compiled piece costs {medians[names[3]]:.2f} ms, so"
              f" as measured it would save {saved:.2f} ms ({100 * saved / per_frame:+.1f}%). Its luma is within"
              f" {luma_gap} level(s) of swscale's. Inside the reconstruction's graph the head would not copy its"
              " input in, but a recurrent model needs its float RGB output anyway (the next step warps it), so the"
              " float output still comes out as now: fusing removes the two conversions and adds the head."
              " Not built: a few percent at best, for a second output on every compiled model."]
    section = "\n".join(lines)
    print(section)
    if args.write:
        write_section(ROOT / "benchmarks" / "RESULTS.md", HEADING, section)


if __name__ == "__main__":
    main()
