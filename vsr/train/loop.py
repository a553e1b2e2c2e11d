"""`vsr train`: the training loop, with checkpoints that resume exactly, validation, logs and exports.

One process per device; under torchrun each rank draws its own share of every step's samples and DDP
averages the gradients, so the same config trains on one CPU or on several GPUs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as torch_dist
from torch import nn

from vsr.errors import VsrError
from vsr.models.refiner import DiffusionRefiner, RefinedVSR
from vsr.models.weights import load_state_dict
from vsr.models.zoo import WEIGHTS_DIR, build_model, load_into
from vsr.train.config import TrainingConfig
from vsr.train.data import TrainingClips
from vsr.train.gan import TecoGanCritic
from vsr.train.losses import charbonnier_loss, grid_loss, pingpong_sequence, warping_loss
from vsr.train.report import RunFiles
from vsr.train.validation import bicubic_scores, evaluate, load_validation_clips


@dataclass(frozen=True)
class Ranks:
    """Where this process sits in a torchrun job (rank 0 of 1 when run plainly)."""

    rank: int = 0
    world: int = 1
    local: int = 0

    @staticmethod
    def from_environment() -> Ranks:
        return Ranks(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
                     int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


class StepBatches(torch.utils.data.Sampler):
    """Sample indices for steps start..end-1: step s, rank r draws s*B*world + r*B + (0..B-1)."""

    def __init__(self, start: int, end: int, batch_size: int, ranks: Ranks) -> None:
        self.start, self.end, self.batch_size, self.ranks = start, end, batch_size, ranks

    def __iter__(self):
        for step in range(self.start, self.end):
            first = (step * self.ranks.world + self.ranks.rank) * self.batch_size
            yield list(range(first, first + self.batch_size))

    def __len__(self) -> int:
        return self.end - self.start


class TrainingForward(nn.Module):
    """What one training step needs from the model, behind `forward` so that DDP sees it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if hasattr(self.model, "forward_with_flows"):
            return self.model.forward_with_flows(lr)
        return self.model(lr), None


def train(config: TrainingConfig, resume: bool = False, device: torch.device | None = None,
          stop_after: int | None = None) -> RunFiles:
    """Trains to config.train.steps (or stops after `stop_after` more steps), checkpointing on the way."""
    ranks = Ranks.from_environment()
    device = device or _default_device(ranks)
    if ranks.world > 1:
        torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    torch.manual_seed(config.seed)
    model = config.model.build()
    if config.init_weights:
        state = load_state_dict(config.init_weights)
        kept = {key: value for key, value in state.items() if not key.startswith(tuple(config.init_ignore))}
        load_into(model, kept, Path(config.init_weights))
    base = _refiner_base(config, device) if config.refiner else None
    teacher = _teacher(config, device) if config.teacher_weights else None
    model = model.to(device, memory_format=torch.channels_last if config.train.channels_last else None)
    critic = TecoGanCritic(config.gan, config.data.crop * config.data.scale, device) if config.gan else None
    settings = config.train
    trained = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.Adam(trained, lr=settings.lr, betas=settings.betas)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.steps, eta_min=settings.min_lr)
    files = RunFiles(config.run_dir, config)
    start, best = 0, None
    if resume:
        start, best = _resume(files, config, model, optimizer, schedule, critic)
    elif files.checkpoint.exists():
        raise VsrError(files.checkpoint, "a run is already here; pass --resume to continue it, or change output_dir")
    if ranks.is_main:
        files.start(resumed_at=start)
    step_model = RefinerObjective(model, base) if base is not None else TrainingForward(model)
    if ranks.world > 1:
        step_model = nn.parallel.DistributedDataParallel(step_model, device_ids=[device.index] if device.index else None)

    validation = _validation(config) if ranks.is_main else None
    end = settings.steps if stop_after is None else min(settings.steps, start + stop_after)
    loader = torch.utils.data.DataLoader(
        TrainingClips(config.data, config.seed), batch_sampler=StepBatches(start, end, settings.batch_size, ranks),
        num_workers=settings.num_workers)
    model.train()
    tic, cpu_tic, logged = time.perf_counter(), time.process_time(), start
    for step, (lr, hr) in enumerate(loader, start=start + 1):
        lr, hr = lr.to(device), hr.to(device)
        warming_up = critic is not None and step <= critic.settings.discriminator_warmup
        with _autocast(device, settings.autocast):
            if warming_up:
                loss = _discriminator_alone(model, critic, lr, hr)
            elif base is not None:
                loss = step_model(lr, hr)
            else:
                loss = _generator_loss(step_model, model, critic, teacher, lr, hr, config)
        if not warming_up:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
        with warnings.catch_warnings():
            if warming_up:  # warm-up steps count towards `steps`: the schedule moves on through them, though the
                warnings.simplefilter("ignore", UserWarning)  # generator's optimizer did not step (torch warns)
            schedule.step()
        if not ranks.is_main:
            continue
        if step % settings.log_every == 0 or step == end:
            now, cpu_now = time.perf_counter(), time.process_time()
            # Per step since the last log line, validation included: what the CPU hours of a curve add up.
            # Process CPU time as well as wall time: a shared or paused machine inflates only the latter.
            files.log_step(step, loss.item(), schedule.get_last_lr()[0], (now - tic) / (step - logged),
                           (cpu_now - cpu_tic) / (step - logged))
            tic, cpu_tic, logged = now, cpu_now, step
        if validation and (step % config.validation.every == 0 or step == end):
            scored = RefinedVSR(base, model) if base is not None else model
            best = files.log_validation(step, evaluate(scored, validation[0], config.data.scale, device),
                                        validation[1], model, best)
        if step % settings.checkpoint_every == 0 or step == end:
            files.save_checkpoint(model, optimizer, schedule, step, best, critic)
    if ranks.is_main:
        files.finish(model)
    if ranks.world > 1:
        torch_dist.destroy_process_group()
    return files


def _resume(files: RunFiles, config: TrainingConfig, model: nn.Module, optimizer, schedule,
            critic: TecoGanCritic | None) -> tuple[int, float | None]:
    """From the run's checkpoint; where there is none (another machine), from the weights committed under the
    run's name at the step they record, so that no committed progress is lost."""
    committed = WEIGHTS_DIR / f"{config.name}.safetensors"
    if files.checkpoint.exists() or not committed.exists():
        return files.load_checkpoint(model, optimizer, schedule, critic)
    from safetensors import safe_open

    with safe_open(str(committed), "pt") as weights:
        step = (weights.metadata() or {}).get("step")
    if step is None:
        raise VsrError(committed, "no checkpoint to resume, and these weights record no training step")
    load_into(model, load_state_dict(committed), committed)
    with warnings.catch_warnings():  # the schedule alone is advanced: no optimizer step to precede it
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(int(step)):
            schedule.step()
    print(f"vsr train: no checkpoint in {files.folder}; resuming from the committed {committed} at step {step}"
          " (the optimiser" + (" and the discriminator" if critic else "") + " start afresh)", file=sys.stderr, flush=True)
    return int(step), None


def _generator_loss(step_model: nn.Module, model: nn.Module, critic: TecoGanCritic | None, teacher: nn.Module | None,
                    lr: torch.Tensor, hr: torch.Tensor, config: TrainingConfig) -> torch.Tensor:
    """A VSR network's loss: Charbonnier (to the ground truth or the teacher's output), plus the flow's warping
    loss, the low-res grid loss and the GAN terms if configured."""
    settings = config.train
    # TecoGAN trains on the ping-pong sequence 0..T-1..0, so that drifting artefacts show as a mismatch.
    lr_in, hr_target = (pingpong_sequence(lr), pingpong_sequence(hr)) if critic else (lr, hr)
    sr, flows = step_model(lr_in)
    if teacher is not None:
        with torch.no_grad():
            pixel_target = teacher(lr_in).clamp(0, 1)
    else:
        pixel_target = hr_target
    loss = charbonnier_loss(sr, pixel_target)
    if flows is not None and settings.warp_loss_weight:
        loss = loss + settings.warp_loss_weight * warping_loss(lr_in[:, :-1], lr_in[:, 1:], flows)
    if settings.grid_weight:
        loss = loss + settings.grid_weight * grid_loss(sr, hr_target, config.data.scale)
    if critic:
        frames = lr.shape[1]
        real, fake = critic.triplets(model, lr, hr, sr[:, :frames])
        critic.update_discriminator(real, fake)
        loss = loss + critic.generator_terms(real, fake, sr, sr[:, :frames], hr)
    return loss


def _discriminator_alone(model: nn.Module, critic: TecoGanCritic, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """A warm-up step (`gan.discriminator_warmup`): the discriminator learns from the generator's frames, the
    generator does not. Returns the generator's pixel loss, for the log."""
    with torch.no_grad():
        sr = model(lr)
    real, fake = critic.triplets(model, lr, hr, sr)
    critic.update_discriminator(real, fake)
    return charbonnier_loss(sr, hr)


class RefinerObjective(nn.Module):
    """The refiner's training step behind `forward`, for DDP: the frozen model's output, then the DDPM loss."""

    def __init__(self, refiner: DiffusionRefiner, base: nn.Module) -> None:
        super().__init__()
        self.refiner, self.base = refiner, base

    def forward(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        # The last frame of each clip: a recurrent base has seen the frames before it, as it will in use.
        with torch.no_grad():
            sr = self.base(lr)[:, -1].clamp(0, 1)
        return self.refiner.training_loss(sr, hr[:, -1])


def _teacher(config: TrainingConfig, device: torch.device) -> nn.Module:
    """The frozen model whose output the pixel loss targets (`teacher_weights`): the config's network."""
    teacher = config.model.build()
    load_into(teacher, load_state_dict(config.teacher_weights), Path(config.teacher_weights))
    return teacher.to(device).eval().requires_grad_(False)


def _refiner_base(config: TrainingConfig, device: torch.device) -> nn.Module:
    """The frozen base model whose output the refiner learns to refine."""
    base = build_model(config.refiner.base_model, config.data.scale).to(device).eval()
    return base.requires_grad_(False)


def _autocast(device: torch.device, precision: str):
    """bf16 autocast for the forward pass and the loss; on CPUs with AMX it makes convolutions several times
    cheaper, while the weights, their gradients and Adam's moments stay float32."""
    if precision == "none":
        return contextlib.nullcontext()
    if precision != "bf16":
        raise VsrError(None, f"train.autocast is 'none' or 'bf16', not '{precision}'")
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _default_device(ranks: Ranks) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", ranks.local)
    return torch.device("cpu")


def _validation(config: TrainingConfig):
    """Validation clips and their bicubic scores, or None when the config names none."""
    settings = config.validation
    if not settings.clips:
        return None
    data = config.data
    clips = load_validation_clips(settings.clips, settings.frames, data.scale, data.degradation,
                                  settings.max_height, settings.max_width)
    return clips, bicubic_scores(clips, data.scale)
