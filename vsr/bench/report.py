"""What `vsr bench` hands back: a terminal table, JSON, CSV and PNG plots of the results."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from vsr.bench.runner import ClipResult, ModelResult
from vsr.bench.scoring import FRAME_METRICS, PAIR_METRICS

QUALITY = FRAME_METRICS + PAIR_METRICS
NIQE_NOTE = "NIQE: no reference, lower is more natural"
CSV_FIELDS = ["model", "clip", "frames", "width", "height", *QUALITY, "niqe", "fps", "fps_model", "peak_mem_mb",
              "peak_gpu_mem_mb", *(f"{where}_{m}" for m in QUALITY for where in ("seam", "elsewhere"))]


def clip_entry(clip: ClipResult) -> dict[str, object]:
    """One clip's JSON: its figures, seams (null for models that stream), and per-frame values."""
    seams = None if clip.boundaries is None else clip.scores.seams(clip.boundaries)
    return {**clip.summary(), "tof_note": clip.scores.tof_note(), "seams": seams,
            "per_frame": clip.scores.per_frame, "per_pair": clip.scores.per_pair}


def fidelity_by_clip(result: ModelResult) -> dict[str, tuple[float, float]]:
    """{clip: (PSNR-Y, SSIM-Y)}, the form model cards and training logs print."""
    return {clip.clip: (clip.summary()["psnr_y"], clip.summary()["ssim_y"]) for clip in result.clips}


def model_mean(result: ModelResult) -> dict[str, object]:
    """Over clips as the papers average: each clip counts once. Speed over all frames; memory is the peak."""
    summaries = [clip.summary() for clip in result.clips]
    mean: dict[str, object] = {name: _mean([s[name] for s in summaries]) for name in QUALITY}
    if any("niqe" in s for s in summaries):  # measured only with --niqe
        mean["niqe"] = _mean([s.get("niqe") for s in summaries])
    frames = sum(clip.frames for clip in result.clips)
    mean["fps"] = frames / sum(clip.pipeline_seconds for clip in result.clips)
    mean["fps_model"] = frames / sum(clip.model_seconds for clip in result.clips)
    mean["peak_mem_mb"] = max(clip.peak_ram_mb for clip in result.clips)
    gpu = [clip.peak_gpu_mb for clip in result.clips if clip.peak_gpu_mb is not None]
    mean["peak_gpu_mem_mb"] = max(gpu) if gpu else None
    mean["frames"] = frames
    mean["clips"] = len(result.clips)
    # The cost of windows: frames the model ran on per frame it gave (1.0: nothing computed twice).
    mean["frames_computed_per_output"] = sum(clip.frames_computed for clip in result.clips) / frames if frames else None
    seams = [clip.scores.seams(clip.boundaries) for clip in result.clips if clip.boundaries]
    mean["seams"] = None if not seams else {
        where: {name: _mean([s[where][name] for s in seams]) for name in QUALITY}
        for where in ("at_seams", "elsewhere")}
    return mean


def seam_gap(figures: dict[str, object]) -> float | None:
    """PSNR-Y at window seams minus elsewhere, from a clip's or a mean's figures; None without seams."""
    seams = figures.get("seams")
    if not seams or seams["at_seams"]["psnr_y"] is None or seams["elsewhere"]["psnr_y"] is None:
        return None
    return seams["at_seams"]["psnr_y"] - seams["elsewhere"]["psnr_y"]


def to_json(results: list[ModelResult], settings: dict[str, object],
            ground_truth: dict[str, list[float | None]] | None = None) -> dict[str, object]:
    """{"settings": ..., "models": {model: {"mean": ..., "clips": {clip: ...}, "speed": [...]}}}, and with
    NIQE, "ground_truth": the ground truth's NIQE (per clip, and the mean over clips)."""
    payload = {"settings": settings,
               "models": {r.name: {"mean": model_mean(r), "clips": {c.clip: clip_entry(c) for c in r.clips},
                                   "speed": [vars(point) for point in r.speed]}
                          for r in results}}
    if ground_truth is not None:
        clips = {name: {"niqe": _mean(values), "per_frame": {"niqe": values}} for name, values in ground_truth.items()}
        payload["ground_truth"] = {"mean": {"niqe": _mean([clip["niqe"] for clip in clips.values()])},
                                   "clips": clips}
    return payload


def json_text(payload: dict[str, object]) -> str:
    # inf (a frame identical to its ground truth) has no JSON spelling; null says "no finite value".
    return json.dumps(_finite(payload), indent=1) + "\n"


def csv_text(results: list[ModelResult]) -> str:
    """One row per model and clip, then the model's mean (clip "mean")."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for result in results:
        for clip in result.clips:
            writer.writerow(_csv_row(result.name, clip.clip, {**clip.summary(), "seams": clip_entry(clip)["seams"]}))
        writer.writerow(_csv_row(result.name, "mean", model_mean(result)))
    return out.getvalue()


def table_text(results: list[ModelResult], ground_truth: dict[str, list[float | None]] | None = None) -> str:
    """The summary a person reads: one line per model, then PSNR-Y / SSIM-Y per clip.

    With NIQE (`ground_truth` holds the ground truth's per clip), a NIQE column and the ground truth's figure.
    """
    with_niqe = ground_truth is not None
    header = (f"{'model':<22} {'PSNR-Y':>7} {'SSIM-Y':>7} {'PSNR-RGB':>8} {'detail':>6} {'tOF':>6} {'warp e-3':>8} "
              + (f"{'NIQE':>6} " if with_niqe else "")
              + f"{'fps':>7} {'fps model':>9} {'peak MB':>8} {'seams dPSNR-Y':>13}")
    lines = [header]
    for result in results:
        mean = model_mean(result)
        gap = seam_gap(mean)
        seam_text = "-" if gap is None else f"{gap:+.3f}"
        warp = mean["warping_error"]
        niqe_text = f"{_f(mean.get('niqe'), 3):>6} " if with_niqe else ""
        lines.append(f"{result.name:<22} {_f(mean['psnr_y'], 2):>7} {_f(mean['ssim_y'], 4):>7} "
                     f"{_f(mean['psnr_rgb'], 2):>8} {_f(mean['detail'], 3):>6} {_f(mean['tof'], 3):>6} "
                     f"{_f(None if warp is None else warp * 1e3, 3):>8} {niqe_text}{mean['fps']:>7.2f} "
                     f"{mean['fps_model']:>9.2f} {mean['peak_mem_mb']:>8.0f} {seam_text:>13}")
    if with_niqe:
        truth = _mean([_mean(values) for values in ground_truth.values()])
        lines.append(f"{'ground truth':<22} {'':>7} {'':>7} {'':>8} {'':>6} {'':>6} {'':>8} {_f(truth, 3):>6}"
                     f"   ({NIQE_NOTE})")
    lines += ["", "PSNR-Y / SSIM-Y per clip:"]
    names = [clip.clip for clip in results[0].clips]
    width = max(len(n) for n in names) + 2
    lines.append(f"{'clip':<{width}}" + "".join(f" {r.name[:18]:>18}" for r in results))
    for index, name in enumerate(names):
        cells = [r.clips[index].summary() for r in results]
        lines.append(f"{name:<{width}}" + "".join(f" {_f(c['psnr_y'], 2):>9} {_f(c['ssim_y'], 4):>8}" for c in cells))
    notes = {f"{clip.clip}: {note}" for result in results for clip in result.clips
             if (note := clip.scores.tof_note()) is not None}
    if notes:
        lines += ["", "tOF '-' (null in JSON):"] + [f"  {note}" for note in sorted(notes)]
    return "\n".join(lines) + "\n"


def write_plots(folder: Path, results: list[ModelResult], scale: int) -> list[Path]:
    """psnr_y_<clip>.png (per frame, one line per model, window boundaries dotted) and fps_vs_resolution.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index, clip in enumerate(results[0].clips):
        figure, axes = plt.subplots(figsize=(8, 4))
        for result in results:
            values = result.clips[index].scores.per_frame["psnr_y"]
            axes.plot(range(len(values)), values, marker="." if len(values) < 50 else None, label=result.name)
        boundaries = next((r.clips[index].boundaries for r in results if r.clips[index].boundaries), [])
        for boundary in boundaries[1:] if boundaries and boundaries[0] == 0 else boundaries:
            axes.axvline(boundary - 0.5, color="grey", linestyle=":", linewidth=0.8)
        axes.set(title=f"{clip.clip}: PSNR-Y per frame (dotted: window boundaries)", xlabel="frame",
                 ylabel="PSNR-Y (dB)")
        axes.legend()
        written.append(_save(figure, folder / f"psnr_y_{clip.clip}.png"))
        plt.close(figure)

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for result in results:
        points = {(c.width * c.height / 1e6): c.summary()["fps"] for c in result.clips}
        points.update({p.lr_width * p.lr_height * scale**2 / 1e6: p.fps for p in result.speed})
        sizes = sorted(points)
        axes.plot(sizes, [points[s] for s in sizes], marker="o", label=result.name)
    axes.set(title="frames/s against output resolution (end to end, without file I/O)",
             xlabel="output megapixels per frame", ylabel="frames/s", xscale="log", yscale="log")
    axes.legend()
    written.append(_save(figure, folder / "fps_vs_resolution.png"))
    plt.close(figure)
    return written


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def _csv_row(model: str, clip: str, figures: dict[str, object]) -> dict[str, object]:
    row = {"model": model, "clip": clip, **{k: v for k, v in figures.items() if k != "seams"}}
    seams = figures.get("seams")
    if seams:
        for name in QUALITY:
            row[f"seam_{name}"] = seams["at_seams"][name]
            row[f"elsewhere_{name}"] = seams["elsewhere"][name]
    return {k: ("" if v is None else v) for k, v in row.items()}


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _f(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _finite(value):
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
