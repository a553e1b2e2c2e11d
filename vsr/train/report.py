"""A training run's files: checkpoint, CSV logs, the loss/PSNR plot, exported weights and their model card.

    runs/<name>/checkpoint.pt     model, optimiser, schedule, step, RNG: what --resume needs (weights_only)
    runs/<name>/train_log.csv     step, loss, learning rate, seconds per step
    runs/<name>/val_log.csv       step, clip, PSNR-Y, SSIM-Y, and the bicubic figures beside them
    runs/<name>/curves.png        loss and validation PSNR-Y against the step
    runs/<name>/best.safetensors  the weights with the best mean validation PSNR-Y (or the latest validated, with
                                validation.select: latest), and best.md, its card
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from pathlib import Path

import torch
import yaml
from torch import nn

from vsr.errors import VsrError
from vsr.io.destination import commit, start_partial
from vsr.train.validation import mean_scores

TRAIN_FIELDS = ["step", "loss", "lr", "seconds_per_step", "threads", "cpu_seconds_per_step"]
VAL_FIELDS = ["step", "clip", "psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y"]


class RunFiles:
    def __init__(self, folder: Path, config) -> None:
        self.folder = folder
        self.config = config
        self.checkpoint = folder / "checkpoint.pt"
        self.train_log = folder / "train_log.csv"
        self.val_log = folder / "val_log.csv"
        self.plot = folder / "curves.png"
        self.best = folder / "best.safetensors"
        self.final = folder / "final.safetensors"

    # --- checkpoints ---

    def save_checkpoint(self, model: nn.Module, optimizer, schedule, step: int, best: float | None,
                        critic=None) -> None:
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                 "step": step, "best_psnr_y": -1.0 if best is None else best, "torch_rng": torch.get_rng_state()}
        if critic is not None:
            state["critic"] = critic.state_dict()
        temporary = start_partial(self.checkpoint)
        torch.save(state, temporary)
        commit(temporary, self.checkpoint)  # a kill mid-write leaves the previous checkpoint whole

    def load_checkpoint(self, model: nn.Module, optimizer, schedule, critic=None) -> tuple[int, float | None]:
        if not self.checkpoint.exists():
            raise VsrError(self.checkpoint, "nothing to resume: no checkpoint here")
        state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"])
        if critic is not None:
            critic.load_state_dict(state["critic"])
        best = state["best_psnr_y"]
        return state["step"], (None if best < 0 else best)

    # --- logs ---

    def start(self, resumed_at: int) -> None:
        """Creates the folder and logs, or on resume drops the rows logged after the checkpoint (redone now)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "config.yaml").write_text(yaml.safe_dump(_plain(self.config), sort_keys=False))
        for path, fields in ((self.train_log, TRAIN_FIELDS), (self.val_log, VAL_FIELDS)):
            rows = [row for row in _read_csv(path) if int(row["step"]) <= resumed_at] if resumed_at else []
            with path.open("w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=fields)
                writer.writeheader()
                writer.writerows(rows)

    def log_step(self, step: int, loss: float, lr: float, seconds: float, cpu_seconds: float) -> None:
        _append(self.train_log, TRAIN_FIELDS, {"step": step, "loss": f"{loss:.6f}", "lr": f"{lr:.3e}",
                                               "seconds_per_step": f"{seconds:.3f}",
                                               "threads": torch.get_num_threads(),
                                               "cpu_seconds_per_step": f"{cpu_seconds:.3f}"})
        total = self.config.train.steps
        _say(f"step {step}/{total}  loss {loss:.4f}  lr {lr:.2e}  {seconds:.2f} s/step  "
             f"(~{(total - step) * seconds / 3600:.1f} h to go)")

    def log_validation(self, step: int, scores: dict, bicubic: dict, model: nn.Module, best: float | None) -> float:
        for clip, (p, s) in scores.items():
            _append(self.val_log, VAL_FIELDS, {"step": step, "clip": clip, "psnr_y": f"{p:.4f}", "ssim_y": f"{s:.5f}",
                                               "bicubic_psnr_y": f"{bicubic[clip][0]:.4f}",
                                               "bicubic_ssim_y": f"{bicubic[clip][1]:.5f}"})
        mean, baseline = mean_scores(scores)[0], mean_scores(bicubic)[0]
        latest = self.config.validation.select == "latest"
        chosen = latest or best is None or mean > best
        _say(f"validation at step {step}: PSNR-Y {mean:.2f} dB, bicubic {baseline:.2f} dB ({mean - baseline:+.2f})"
             + (("; latest, exported" if latest else "; best so far, exported") if chosen else ""))
        if chosen:
            self.export(model, self.best, step, scores, bicubic)
            best = mean
        self.draw()
        return best

    # --- outputs ---

    def export(self, model: nn.Module, path: Path, step: int, scores: dict | None, bicubic: dict | None) -> None:
        """Weights as safetensors with a model card beside them (same name, .md)."""
        from safetensors.torch import save

        tensors = {key: value.detach().cpu().contiguous().clone() for key, value in model.state_dict().items()}
        temporary = start_partial(path)
        metadata = {"config": json.dumps(_plain(self.config)), "step": str(step)}
        temporary.write_bytes(save(tensors, metadata=metadata))  # save_file would make it readable by its owner only
        commit(temporary, path)
        path.with_suffix(".md").write_text(model_card(self.config, model, step, scores, bicubic))

    def finish(self, model: nn.Module) -> None:
        self.export(model, self.final, _last_step(self.train_log), None, None)
        self.draw()

    def draw(self) -> None:
        """curves.png: training loss and validation PSNR-Y (with bicubic's) against the step."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        train_rows, val_rows = _read_csv(self.train_log), _read_csv(self.val_log)
        figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        left.plot([int(r["step"]) for r in train_rows], [float(r["loss"]) for r in train_rows], lw=0.8)
        left.set(xlabel="step", ylabel="training loss (Charbonnier)", yscale="log", title=self.config.name)
        steps = sorted({int(r["step"]) for r in val_rows})
        if steps:
            means = [_mean(val_rows, s, "psnr_y") for s in steps]
            right.plot(steps, means, marker="o", label="model")
            right.axhline(_mean(val_rows, steps[0], "bicubic_psnr_y"), color="grey", ls="--", label="bicubic")
            right.legend()
        right.set(xlabel="step", ylabel="validation PSNR-Y (dB), mean of clips")
        figure.tight_layout()
        figure.savefig(self.plot, dpi=100)
        plt.close(figure)


def model_card(config, model: nn.Module, step: int, scores: dict | None, bicubic: dict | None) -> str:
    """What a user needs to trust the weights: data, degradation, training length, validation figures."""
    params = sum(p.numel() for p in model.parameters())
    data, train = config.data, config.train
    lines = [
        f"# {config.name}", "", config.description or "", "",
        f"- Architecture: `{config.model.type}` {json.dumps(config.model.args)}, {params:,} parameters",
        (f"- Training data: {', '.join(data.sources)}; {data.frames}-frame clips, {data.crop}px low-res crops, "
        f"{data.image_fraction:.0%} of clips from still images under synthetic camera motion"),
        f"- Degradation: {data.degradation} x{data.scale}" + (f", {data.clean_fraction:.0%} of clips left clean "
                                                              "(bicubic)" if data.clean_fraction else ""),
        f"- Training: {step} of {train.steps} steps, batch {train.batch_size}, Adam lr {train.lr:g} (cosine to "
        f"{train.min_lr:g}), {_objective(config)}",
        f"- Reproduce: `vsr train configs/{config.name}.yaml` (seed {config.seed})", "",
    ]
    if config.gan:
        g = config.gan
        lines[-1:-1] = [(f"- Adversarial (TecoGAN): spatio-temporal discriminator, weights: adversarial "
                        f"{g.adversarial_weight:g}, feature matching {g.feature_matching_weight:g}, ping-pong "
                        f"{g.pingpong_weight:g}, spectral {g.frequency_weight:g}, colour {g.low_frequency_weight:g}, "
                        f"local range {g.range_weight:g}; "
                        f"discriminator lr {g.lr:g}"
                        + (f", trained alone for the first {g.discriminator_warmup} steps" if g.discriminator_warmup
                           else "")
                        + ("" if g.adversarial_colour else "; the discriminator sees the generated luma with the "
                           "ground truth's chroma, so colour is left to the pixel losses"))]
    if config.init_weights:
        ignored = "".join(f", without `{prefix}*`" for prefix in config.init_ignore)
        lines[-1:-1] = [f"- Initialised from `{config.init_weights}`{ignored}"]
    if scores and bicubic:
        v = config.validation
        crop = f", centre crop {v.max_width}x{v.max_height}" if v.max_height or v.max_width else ""
        lines += [f"Validation (first {v.frames} frames{crop}; PSNR-Y/SSIM-Y, {data.scale} px border cropped):", "",
                  *scores_table(scores, bicubic)]
    return "\n".join(lines) + "\n"


def _objective(config) -> str:
    """The loss, in words, for the card's Training line."""
    if config.refiner:
        r = config.refiner
        return (f"DDPM noise objective (MSE) on the residual between the frozen `{r.base_model}`'s output and the "
                "ground truth")
    target = f"the output of `{config.teacher_weights}`" if config.teacher_weights else "the ground truth"
    warping = f" + {config.train.warp_loss_weight:g} x warping loss" if config.train.warp_loss_weight else ""
    grid = f" + {config.train.grid_weight:g} x low-res grid loss" if config.train.grid_weight else ""
    return f"Charbonnier loss to {target}" + warping + grid


def scores_table(scores: dict, bicubic: dict) -> list[str]:
    """Markdown rows: per clip and mean, the model's PSNR-Y/SSIM-Y beside bicubic's, and the gain."""
    lines = ["| clip | PSNR-Y | SSIM-Y | bicubic PSNR-Y | bicubic SSIM-Y | gain (dB) |", "|---|---|---|---|---|---|"]
    rows = [*((clip, p_s, bicubic[clip]) for clip, p_s in scores.items()),
            ("**mean**", mean_scores(scores), mean_scores({clip: bicubic[clip] for clip in scores}))]
    for clip, (p, s), (bp, bs) in rows:
        lines.append(f"| {clip} | {p:.2f} | {s:.4f} | {bp:.2f} | {bs:.4f} | {p - bp:+.2f} |")
    return lines


def _say(line: str) -> None:
    """Progress for whoever watches the terminal or the nohup log; the CSV files are the record."""
    print(f"vsr train: {line}", file=sys.stderr, flush=True)


def _plain(config) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def _append(path: Path, fields: list[str], row: dict) -> None:
    with path.open("a", newline="") as file:
        csv.DictWriter(file, fieldnames=fields).writerow(row)


def _mean(rows: list[dict], step: int, key: str) -> float:
    values = [float(r[key]) for r in rows if int(r["step"]) == step]
    return sum(values) / len(values)


def _last_step(path: Path) -> int:
    rows = _read_csv(path)
    return int(rows[-1]["step"]) if rows else 0
