"""Copy a training run's best weights into the package, with a model card scored on the whole validation clips.

    python scripts/ship_weights.py runs/frvsr_bi_x4 frvsr_bi_x4

writes vsr/weights/frvsr_bi_x4.safetensors and vsr/weights/frvsr_bi_x4.md. The card is the run's own (data,
degradation, iterations, validation during training) plus PSNR-Y/SSIM-Y on every frame of every clip in
../shared/data/clips/val (clips/val/natural for runs on natural footage; cropped as the config's validation
section says) as `vsr run` produces them, beside MATLAB bicubic. It refuses weights that do not beat the ones
already shipped under that name, unless told --force.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from vsr.backends.int8 import int8_ir_path
from vsr.backends.choice import choose_engine
from vsr.bench.clips import find_clips
from vsr.bench.report import fidelity_by_clip, model_mean
from vsr.bench.runner import Settings, bench_model
from vsr.models.interpolation import MatlabBicubicUpscaler
from vsr.models.weights import load_state_dict
from vsr.models.zoo import WEIGHTS_DIR, fitted, load_into
from vsr.train.config import load_config
from vsr.train.report import scores_table
from vsr.train.validation import mean_scores

VAL_DIR = ROOT.parent / "shared" / "data" / "clips" / "val"
DATA_CREDITS = """Training media: Big Buck Bunny (c) Blender Foundation, CC BY 3.0 (clips/train); still images from
the CSet5, CSet14, CBSD68 and CUrban100 benchmark sets (majedelhelou/denoising_datasets), used for training
only and not shipped. Validation clips (never trained on): bikes, chaplin, carphone_pristine, fire2 and
bigbuckbunny_720p from ../shared/data/clips/val."""
NATURAL_CREDITS = """Natural camera footage (clips/train/natural, each shrunk by a whole factor to at most 540 lines): foreman
and mobile & calendar (cisco/openh264 test streams, BSD-2), cereus flower and street with red trees
(cisco/openh264, BSD-2), the dog, cups, blocks, coffee and bedroom clips of facebookresearch/sam2 (Apache-2.0),
the roller coaster of DepthAnything/Video-Depth-Anything (Apache-2.0), and people walking from
intel-iot-devkit/sample-videos (CC BY 4.0); see ../shared/data/README.md. Held out for validation, never
trained on: clips/val/natural (sam2 juggle, Apache-2.0; highway from IDEA-Research/Grounded-SAM-2,
Apache-2.0). Still images from the CSet5, CSet14, CBSD68 and CUrban100 benchmark sets
(majedelhelou/denoising_datasets), for training only and not shipped."""
INHERITED_CREDITS = "The weights this run started from also saw Big Buck Bunny (c) Blender Foundation, CC BY 3.0."


def credits(natural: bool, init_weights: str | None) -> str:
    """The training media's credits; a run started from weights that saw Big Buck Bunny (the frvsr_bi_x4 lineage,
    whose card credits it) credits it too."""
    if not natural:
        return DATA_CREDITS
    start_card = ROOT / Path(init_weights).with_suffix(".md") if init_weights else None
    if start_card and start_card.is_file() and "Big Buck Bunny" in start_card.read_text():
        return NATURAL_CREDITS + " " + INHERITED_CREDITS
    return NATURAL_CREDITS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("name")
    parser.add_argument("--force", action="store_true", help="ship even if the shipped weights score higher")
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    config = load_config(args.run / "config.yaml")
    # Snapshot the weights and their card first: a run still training may replace both while we score.
    # Shipped in fp16 (half the size; the model computes in fp32 or bf16 anyway), and scored as shipped.
    # The run's metadata (config, step) goes with them: `vsr train --resume` on a machine without the run's
    # checkpoint continues from the shipped weights at that step.
    snapshot = Path(tempfile.mkdtemp()) / "best.safetensors"
    with safe_open(str(args.run / "best.safetensors"), "pt") as best:
        metadata = best.metadata() or {}
    save_file({key: tensor.half() if tensor.is_floating_point() else tensor
               for key, tensor in load_state_dict(args.run / "best.safetensors").items()}, str(snapshot),
              metadata=metadata)
    run_card = (args.run / "best.md").read_text().rstrip("\n")
    scale = config.data.scale
    v = config.validation
    crop = (v.max_width, v.max_height) if v.max_width and v.max_height else None
    # A run on natural footage is judged on the held-out natural clips, as its training validation is.
    natural = any("natural" in source for source in config.data.sources)
    val_dir = VAL_DIR / "natural" if natural else VAL_DIR
    clips = find_clips(val_dir, None, scale, config.data.degradation, crop=crop)
    settings = Settings(torch.device("cpu"), temporal=False)

    scored: dict[str, tuple[dict, float]] = {}

    def score(weights: Path, label: str) -> tuple[dict, float]:
        """PSNR-Y/SSIM-Y per clip and frames/s of the config's model with these weights, once per file content
        (a stage-2 run starts from the very weights that are shipped)."""
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        if digest not in scored:
            state = load_state_dict(weights)
            model = fitted(config.model.build(), state)  # the starting weights may move by another flow
            load_into(model, state, weights)
            # On the engine `vsr run` uses by default (OpenVINO on a CPU, where the model has a form for it).
            model = choose_engine(model.eval(), "auto", settings.device, "auto").model
            result = bench_model(label, model, clips, settings)
            scored[digest] = fidelity_by_clip(result), model_mean(result)["fps"]
        return scored[digest]

    scores, fps = score(snapshot, args.name)
    bicubic = fidelity_by_clip(bench_model("bicubic-matlab", MatlabBicubicUpscaler(scale), clips, settings))
    mean = mean_scores(scores)[0]

    target = WEIGHTS_DIR / f"{args.name}.safetensors"
    if target.exists() and not args.force:
        old_mean = mean_scores(score(target, "shipped")[0])[0]
        if old_mean >= mean:
            sys.exit(f"not shipped: {mean:.3f} dB does not beat the shipped {old_mean:.3f} dB")
    region = f"centre {v.max_width}x{v.max_height} crop" if crop else "whole frames"
    if config.data.degradation != "BI":
        region += f", {config.data.degradation} low-res input"
    card = run_card + "\n\n" + full_validation_table(scores, bicubic, fps, region)
    if config.init_weights:
        start = mean_scores(score(Path(config.init_weights), "start")[0])
        change = mean - start[0]
        effect = f"adds {change:.2f} dB" if change >= 0 else f"gives up {-change:.2f} dB of PSNR-Y"
        card += (f"\nThe starting weights, `{config.init_weights}`, score {start[0]:.2f} / {start[1]:.4f} on the "
                 f"same input: this training {effect}.\n")
    shutil.copyfile(snapshot, target)
    target.with_suffix(".md").write_text(card + "\n" + credits(natural, config.init_weights) + "\n")
    print(f"shipped {target} ({mean:.2f} dB mean PSNR-Y on {val_dir.relative_to(VAL_DIR.parent)})")
    stale = int8_ir_path(target)
    if stale.exists():  # calibrated for the weights just replaced: --precision int8 now refuses it
        print(f"the int8 network {stale.name} was made from the old weights: run scripts/calibrate_int8.py again "
              "and measure it before shipping (int8 only where it costs at most 0.1 dB)")


def full_validation_table(scores: dict, bicubic: dict, fps: float, crop: str) -> str:
    lines = [(f"Every frame of each validation clip ({crop}) through the `vsr run` pipeline (PSNR-Y/SSIM-Y, "
              f"border cropped; {fps:.2f} frames/s on this CPU):"), "", *scores_table(scores, bicubic)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
