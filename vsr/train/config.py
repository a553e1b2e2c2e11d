"""Training configs: YAML files whose sections map one to one onto the dataclasses below."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from torch import nn

from vsr.errors import VsrError
from vsr.models.basicvsrpp import BasicVSRPlusPlus
from vsr.models.frvsr import FRVSR
from vsr.models.refiner import DiffusionRefiner
from vsr.models.srvgg import SRVGGNetCompact
from vsr.train.data import DataSettings
from vsr.train.gan import GanSettings

# The networks a config can name, by their constructors; `model.args` are the constructor's arguments.
MODEL_TYPES: dict[str, type[nn.Module]] = {
    "basicvsrpp": BasicVSRPlusPlus,
    "frvsr": FRVSR,
    "refiner": DiffusionRefiner,
    "srvgg": SRVGGNetCompact,
}


@dataclass(frozen=True)
class ModelSettings:
    type: str
    args: dict = field(default_factory=dict)

    def build(self) -> nn.Module:
        if self.type not in MODEL_TYPES:
            raise VsrError(None, f"unknown model type '{self.type}' (one of {', '.join(MODEL_TYPES)})")
        return MODEL_TYPES[self.type](**self.args)


@dataclass(frozen=True)
class TrainSettings:
    steps: int
    batch_size: int = 4
    lr: float = 2e-4
    min_lr: float = 1e-6  # the end of the cosine schedule
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0  # max global gradient norm; 0 disables
    warp_loss_weight: float = 0.0  # FRVSR: the flow network's unsupervised low-res warping loss
    grid_weight: float = 0.0  # energy on the low-res grid's frequencies beyond the truth's (losses.grid_loss)
    checkpoint_every: int = 200
    log_every: int = 10
    num_workers: int = 0  # data loader processes; 0 draws samples in the training process
    channels_last: bool = False  # NHWC weights: measured 15-25% faster steps on the CPU (oneDNN's layout)
    autocast: str = "none"  # "bf16": forward and loss under bf16 autocast (weights and optimizer stay fp32)


@dataclass(frozen=True)
class ValidationSettings:
    clips: list[str] = field(default_factory=list)
    frames: int = 10  # the first frames of each clip
    max_height: int = 0  # centre crop of the high-res frames (0: whole frames), to keep validation quick
    max_width: int = 0
    every: int = 500
    # Which weights each validation exports: the best PSNR-Y so far, or the latest. A GAN trades PSNR for
    # texture on purpose, so the highest PSNR would pick the least adversarial weights.
    select: str = "psnr"


@dataclass(frozen=True)
class RefinerSettings:
    """A diffusion refiner learns the residual of a frozen VSR model's output."""

    base_model: str  # a `vsr models` name, with its bundled weights


@dataclass(frozen=True)
class TrainingConfig:
    name: str
    model: ModelSettings
    data: DataSettings
    train: TrainSettings
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    gan: GanSettings | None = None  # adversarial training (TecoGAN) when present
    refiner: RefinerSettings | None = None  # diffusion refiner training when present (model.type: refiner)
    init_weights: str = ""  # start from these weights (e.g. the FRVSR a TecoGAN run refines)
    init_ignore: list[str] = field(default_factory=list)  # key prefixes of init_weights the model has no place for
    # The pixel loss's target: the output of the model under these weights instead of the ground truth. For a
    # run that should change one thing about trained weights (the beading grid_weight charges) and keep the
    # rest, such as texture a GAN made that the ground truth would pull towards a blur.
    teacher_weights: str = ""
    seed: int = 0
    output_dir: str = ""  # default runs/<name>
    description: str = ""  # a sentence for the model card

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir or f"runs/{self.name}")


def load_config(path: str | Path) -> TrainingConfig:
    path = Path(path)
    if not path.is_file():
        raise VsrError(path, "no such config file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise VsrError(path, f"not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise VsrError(path, "a training config is a YAML mapping")
    try:
        return TrainingConfig(
            name=raw["name"],
            model=ModelSettings(**raw["model"]),
            data=_checked_data(DataSettings(**raw["data"]), path),
            train=_with_tuples(TrainSettings(**raw["train"])),
            validation=_checked_validation(ValidationSettings(**raw.get("validation", {})), path),
            gan=GanSettings(**raw["gan"]) if raw.get("gan") is not None else None,
            refiner=RefinerSettings(**raw["refiner"]) if raw.get("refiner") is not None else None,
            init_weights=raw.get("init_weights", ""),
            init_ignore=list(raw.get("init_ignore", [])),
            teacher_weights=raw.get("teacher_weights", ""),
            seed=raw.get("seed", 0),
            output_dir=raw.get("output_dir", ""),
            description=raw.get("description", ""),
        )
    except KeyError as error:
        raise VsrError(path, f"missing setting {error}") from None
    except TypeError as error:
        raise VsrError(path, f"bad setting: {error}") from None


def _checked_data(settings: DataSettings, path: Path) -> DataSettings:
    if not 0 <= settings.clean_fraction <= 1:
        raise VsrError(path, f"data.clean_fraction is a share between 0 and 1, not {settings.clean_fraction}")
    if settings.clean_fraction and settings.degradation != "realworld":
        raise VsrError(path, "data.clean_fraction applies to the realworld degradation only")
    return settings


def _checked_validation(settings: ValidationSettings, path: Path) -> ValidationSettings:
    if settings.select not in ("psnr", "latest"):
        raise VsrError(path, f"validation.select is 'psnr' or 'latest', not '{settings.select}'")
    return settings


def _with_tuples(settings: TrainSettings) -> TrainSettings:
    return dataclasses.replace(settings, betas=tuple(settings.betas))
