"""Make the int8 form of a shipped FRVSR's reconstruction network, calibrated with NNCF on our training clips.

Only the reconstruction network (nearly all of the cost) is quantized; the motion part stays fp32, as for bf16.
Calibration feeds it what it sees in use: each training clip's frames, downscaled as BI x4 (or damaged as
the real-world models are trained: frvsr-real, tecogan, tecogan-clean), stepped through the fp32 model so that
the warped history is real. The result is OpenVINO IR beside the weights (`vsr/weights/NAME.int8.xml` and
`.bin`), tied to those weights by their fingerprint: `vsr run --precision int8` refuses IR made from other
weights. Needs NNCF (`pip install nncf`), only here; vsr itself reads the IR with OpenVINO alone.

    python scripts/calibrate_int8.py frvsr            # 24 frames from each training clip
    python scripts/calibrate_int8.py frvsr-real       # real-world damage, its default
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsr.backends.int8 import int8_ir_path, weights_fingerprint  # noqa: E402
from vsr.backends.openvino_models import OpenVinoFRVSR  # noqa: E402
from vsr.bench.clips import degrade  # noqa: E402
from vsr.io.probe import probe  # noqa: E402
from vsr.io.reader import FrameReader  # noqa: E402
from vsr.models.zoo import ZOO, build_model  # noqa: E402
from vsr.realworld import clip_seed, degrade_realworld_stream  # noqa: E402

TRAIN = ROOT.parent / "shared" / "data" / "clips" / "train" / "natural"
CROP = (176, 320)  # low-res frames near the size users upscale most (320x180), a multiple of 16


# Trained on real-world damage (vsr/realworld.py), so calibrated on it.
REAL_WORLD = ("frvsr-real", "tecogan", "tecogan-clean")


def low_res_frames(clip: Path, scale: int, degradation: str, frames: int) -> Iterator[np.ndarray]:
    """The first `frames` frames of a clip, degraded as the model's input is."""
    images = (decoded.image for decoded in islice(FrameReader(probe(clip)), frames))
    if degradation == "realworld":
        return degrade_realworld_stream(images, scale, clip_seed(clip.name))
    return (degrade(image, scale, degradation) for image in images)


def calibration_inputs(model: OpenVinoFRVSR, clips: list[Path], frames: int,
                       degradation: str) -> list[tuple[np.ndarray, ...]]:
    """(frame, folded history) pairs as the reconstruction network receives them, frame by frame."""
    samples = []
    for clip in clips:
        state = None
        for image in low_res_frames(clip, model.scale, degradation, frames):
            multiple = model.size_multiple
            height = min(CROP[0], image.shape[0] // multiple * multiple)
            width = min(CROP[1], image.shape[1] // multiple * multiple)
            top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
            image = image[top:top + height, left:left + width]
            frame = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255
            folded = model.folded_history(frame, state)
            samples.append((frame.numpy(), folded.numpy()))
            _, state = model.step_from(frame, folded)  # the history once per frame, as in use
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a zoo model with bundled FRVSR weights (frvsr, frvsr-real)")
    parser.add_argument("--frames", type=int, default=24, help="frames per training clip")
    parser.add_argument("--degradation", choices=["BI", "realworld"], default=None,
                        help=f"how the training clips are degraded (default: realworld for {', '.join(REAL_WORLD)}, "
                             "BI otherwise)")
    args = parser.parse_args()
    degradation = args.degradation or ("realworld" if args.model in REAL_WORLD else "BI")

    import nncf
    import openvino as ov

    entry = ZOO[args.model]
    weights = Path(entry.bundled_weights)
    model = OpenVinoFRVSR(build_model(args.model), "fp32")
    clips = sorted(TRAIN.glob("*.mp4"))
    samples = calibration_inputs(model, clips, args.frames, degradation)
    print(f"{len(samples)} calibration frames ({degradation}) from {len(clips)} clips", flush=True)
    network = model.reconstruct.exported()
    quantized = nncf.quantize(network, nncf.Dataset(samples), subset_size=len(samples),
                              preset=nncf.QuantizationPreset.MIXED)
    quantized.set_rt_info(weights_fingerprint(weights), ["vsr", "weights_fingerprint"])
    target = int8_ir_path(weights)
    ov.save_model(quantized, str(target), compress_to_fp16=False)
    print(f"wrote {target} and {target.with_suffix('.bin')}", flush=True)


if __name__ == "__main__":
    main()
