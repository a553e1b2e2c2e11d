"""Which pieces of BasicVSR++ gain from OpenVINO on the CPU, and by how much (issues 18 and 19).

Measured before basicvsrpp-small's OpenVINO form (vsr/backends/openvino_models.py) was built, to choose which
pieces go to OpenVINO: each piece at one frame size on torch and on OpenVINO (fp32 and, where the piece may
take it, bf16),
interleaved in one process (the machine is shared and noisy), with the largest difference from torch's
output. The flows come from two consecutive real frames; the other pieces get random features of the right
shapes. Per output frame the model runs SPyNet twice, the alignment and the backbone once per branch (four
branches), the feature extraction and the reconstruction once.

    python benchmarks/openvino_basicvsrpp_pieces.py --size 320x180 --rounds 3
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import interleaved_medians  # noqa: E402
from vsr.backends.openvino_models import Reconstruction  # noqa: E402
from vsr.io.probe import probe  # noqa: E402
from vsr.io.reader import FrameReader  # noqa: E402
from vsr.models.zoo import build_model  # noqa: E402

CLIP = ROOT.parent / "shared" / "data" / "clips" / "val" / "natural" / "sam2_juggle_720p.mp4"


def compiled(module: nn.Module, inputs: tuple[torch.Tensor, ...], precision: str):
    import openvino as ov

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        model = ov.convert_model(module, example_input=inputs)
    config = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": torch.get_num_threads(),
              "PERFORMANCE_HINT": "LATENCY"}
    request = ov.Core().compile_model(model, "CPU", config).create_infer_request()
    arrays = [tensor.numpy() for tensor in inputs]

    def run() -> torch.Tensor:
        request.infer(arrays)
        return torch.from_numpy(request.get_output_tensor(0).data.copy())
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="320x180", help="low-res WxH")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not CLIP.exists():
        sys.exit(f"{CLIP} is absent: this benchmark needs the team's media folder")
    width, height = map(int, args.size.split("x"))
    torch.manual_seed(0)
    model = build_model("basicvsrpp-small").eval()
    channels = model.mid_channels
    decoded = [frame.image for _, frame in zip(range(2), FrameReader(probe(CLIP)))]
    first, second = (F.interpolate(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255, size=(height, width),
                                   mode="area") for image in decoded)
    features = lambda count: torch.rand(1, count * channels, height, width) - 0.5  # noqa: E731
    flow = lambda: torch.randn(1, 2, height, width)  # noqa: E731
    pieces = [  # name, module, inputs, precisions tried on OpenVINO, runs per output frame
        ("SPyNet flow", model.spynet, (first, second), ("f32",), 2),
        ("deformable alignment", model.deform_align["backward_1"], (features(2), features(3), flow(), flow()),
         ("f32", "bf16"), 4),
        ("backbone (backward_2)", model.backbone["backward_2"], (features(4),), ("f32", "bf16"), 4),
        ("feature extraction", model.feat_extract, (first,), ("f32", "bf16"), 1),
        ("reconstruction", Reconstruction(model), (first, features(5)), ("f32", "bf16"), 1),
    ]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {width}x{height} in, median of "
          f"{args.rounds} interleaved rounds")
    print("| piece | runs per frame | torch ms | OpenVINO f32 ms | OpenVINO bf16 ms | f32 max difference | "
          "bf16 max difference |")
    print("|---|---|---|---|---|---|---|")
    for name, module, inputs, precisions, runs in pieces:
        with torch.inference_mode():
            reference = module(*inputs)
        calls = {"torch": lambda m=module, i=inputs: m(*i)}
        for precision in precisions:
            calls[precision] = compiled(module, inputs, precision)
        differences = {p: float((calls[p]() - reference).abs().max()) for p in precisions}
        with torch.inference_mode():  # each call has run once already: the reference, the differences
            seconds = interleaved_medians(calls, args.rounds, warm_up=False)
        ms = {key: f"{1000 * median:.0f}" for key, median in seconds.items()}
        print(f"| {name} | {runs} | {ms['torch']} | {ms.get('f32', '-')} | {ms.get('bf16', '-')} | "
              f"{differences.get('f32', float('nan')):.2g} | {differences.get('bf16', float('nan')):.2g} |",
              flush=True)


if __name__ == "__main__":
    main()
