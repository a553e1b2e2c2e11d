"""Running a batch: each job through the same `upscale_video` as `vsr run`, in one process or several.

A failing file is recorded and the batch goes on. With `workers` > 1 each worker process builds the model
once and gets its share of the CPU threads; jobs are handed out one at a time as workers free up (see
workers.py).
"""

from __future__ import annotations

import sys
import time
from fractions import Fraction
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from vsr.batch.jobs import Job, plan, remove_partial_outputs
from vsr.batch.journal import Entry, Journal
from vsr.errors import VsrError
from vsr.io.frame_folder import list_frames
from vsr.io.sources import is_utf8, printable
from vsr.io.writer import EncoderSettings
from vsr.progress import Progress


@dataclass(frozen=True)
class BatchSettings:
    """Everything a worker needs to build its model and run a job; plain values, so it pickles."""

    model: str
    weights: str | None = None
    scale: int | None = None
    device: str = "auto"
    chunk: int | str = "auto"  # core frames per window, or "auto" (as many as fit half the free memory)
    tile: int = 0
    tile_overlap: int = 16
    scene_cuts: bool = True
    precision: str = "auto"
    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    backend: str = "auto"
    folder_fps: str | None = None  # the frame rate of PNG-folder inputs, as '30000/1001'; None: 25
    deinterlace: str = "frame"  # frame, field or off (vsr/io/deinterlace.py)

    def key(self) -> str:
        """The settings that shape the output; a change makes earlier outputs stale."""
        return (f"{self.model}|{self.weights}|{self.scale}|{self.codec}|{self.crf}|{self.preset}|{self.precision}"
                + ("" if self.backend == "auto" else f"|{self.backend}")
                + ("" if self.folder_fps is None else f"|fps {self.folder_fps}")
                + ("" if self.deinterlace == "frame" else f"|deinterlace {self.deinterlace}"))


@dataclass
class Outcome:
    job: Job
    status: str  # upscaled, failed, or why it was skipped: already done, exists, stale
    detail: str = ""


@dataclass
class BatchReport:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(outcome.status == status for outcome in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.status == "failed"]


def run_batch(jobs: list[Job], journal: Journal, settings: BatchSettings, workers: int = 1,
              overwrite: bool = False, progress: bool = True,
              on_outcome: Callable[[Outcome], None] | None = None, ray_address: str | None = None) -> BatchReport:
    """Run what is not done yet; return every job's outcome. `ray_address` runs the jobs as Ray tasks.

    Each outcome is journaled and passed to `on_outcome` as it comes. On Ctrl-C, SIGTERM or SIGHUP the
    KeyboardInterrupt goes on up with an `outcome` attribute saying how many finished files were kept.
    """
    started = time.perf_counter()
    previous = journal.latest()
    report = BatchReport()
    todo = []
    for job in jobs:
        decision = plan(job, previous.get(job.key), overwrite)
        if decision == "run":
            remove_partial_outputs(job)
            todo.append(job)
        else:
            report.outcomes.append(Outcome(job, decision))
    bar = Progress(len(todo), "file", "batch", progress, leave=True)

    def finished(outcome: Outcome) -> None:
        _record(journal, outcome)
        report.outcomes.append(outcome)
        bar.update()
        if on_outcome is not None:
            on_outcome(outcome)

    try:
        _run_jobs(todo, finished, settings, workers, overwrite, progress and workers == 1, ray_address)
    except KeyboardInterrupt as interrupt:
        interrupt.outcome = stopped_outcome(report.count("upscaled"))
        raise
    finally:
        bar.close()
    report.seconds = time.perf_counter() - started
    return report


def stopped_outcome(kept: int) -> str:
    """What a stopped batch leaves, for the `vsr: interrupted; ...` line."""
    if kept == 0:
        return "no file had finished; the files in progress were not written"
    return f"{kept} finished file{'' if kept == 1 else 's'} kept and journaled; the files in progress were not written"


def outcome_line(outcome: Outcome) -> str:
    """One line per file: 'failed: PATH: why', 'upscaled: a/b.mp4 (120 frames, 3.1 s)'; safe to print."""
    if outcome.status == "failed":
        return f"failed: {printable(outcome.detail)}"
    return f"{outcome.status}: {printable(outcome.job.key)}" + (f" ({outcome.detail})" if outcome.detail else "")


def _run_jobs(todo: list[Job], finished: Callable[[Outcome], None], settings: BatchSettings, workers: int,
              overwrite: bool, file_progress: bool, ray_address: str | None) -> None:
    # Here too with workers: a bad --model fails once, with its own message, and the engine's note is said once.
    model = build_model_for(settings, say=lambda line: print(line, file=sys.stderr, flush=True))
    if ray_address is not None and todo:
        from vsr.batch.ray_jobs import run_on_ray

        for outcome in run_on_ray(todo, settings, ray_address, overwrite):
            finished(outcome)
        return
    if workers <= 1 or len(todo) <= 1:
        for job in todo:
            try:
                outcome = run_job(model, job, settings, overwrite, file_progress)
            except KeyboardInterrupt:
                remove_partial_outputs(job)  # the writer deletes its partial; this in case a stop cut that short
                raise
            finished(outcome)
        return
    from vsr.batch.workers import WorkerPool  # it imports this module

    WorkerPool(workers, settings, overwrite).run(todo, finished)


def _record(journal: Journal, outcome: Outcome) -> None:
    status = "done" if outcome.status == "upscaled" else "failed"
    journal.record(Entry(outcome.job.key, status, outcome.job.fingerprint, outcome.detail))


def build_model_for(settings: BatchSettings, say: Callable[[str], None] | None = None) -> torch.nn.Module:
    """The model on the engine the settings choose (OpenVINO on a CPU where it can); `say` hears why the engine
    is not the one asked for, if it is not (the batch's own process says it, its workers do not repeat it)."""
    from vsr.backends.choice import choose_engine
    from vsr.models.zoo import build_model
    from vsr.pipeline.job import pick_device

    model = build_model(settings.model, settings.scale, settings.weights)
    engine = choose_engine(model, settings.backend, pick_device(settings.device), settings.precision)
    if engine.note and say is not None:
        say(f"vsr: note: {engine.note}")
    return engine.model


def run_job(model: torch.nn.Module, job: Job, settings: BatchSettings, overwrite: bool,
            progress: bool) -> Outcome:
    """One file; any error becomes a failed outcome naming it, so the batch goes on."""
    from vsr.pipeline.job import pick_device, upscale_video

    try:
        problem = name_problem(job)
        if problem is not None:
            return Outcome(job, "failed", f"{printable(job.source)}: {problem}")
        job.target.parent.mkdir(parents=True, exist_ok=True)
        report = upscale_video(job.source, job.target, model, pick_device(settings.device), chunk=settings.chunk,
                               tile=settings.tile, tile_overlap=settings.tile_overlap,
                               scene_cuts=settings.scene_cuts, precision=settings.precision,
                               settings=EncoderSettings(settings.codec, settings.crf, settings.preset),
                               overwrite=overwrite, progress=progress,
                               folder_fps=None if settings.folder_fps is None else Fraction(settings.folder_fps),
                               deinterlace=settings.deinterlace)
    except VsrError as error:
        return Outcome(job, "failed", printable(error))
    except Exception as error:  # noqa: BLE001 - a bug or a codec crash on one file must not stop the others
        return Outcome(job, "failed", printable(f"{job.source}: {type(error).__name__}: {error}"))
    return Outcome(job, "upscaled", f"{report.frames} frames, {report.seconds:.1f} s")


def name_problem(job: Job) -> str | None:
    """Why a frame folder job cannot run because of its names, or None.

    PyAV takes any file name, but OpenCV, which reads and writes the PNG frames, crashes the whole process
    (a segmentation fault) on a name that is not valid UTF-8; such a job fails here instead, on its own.
    """
    if not job.source.is_dir():
        return None
    paths = [job.source, job.target, *list_frames(job.source)]
    if all(is_utf8(path) for path in paths):
        return None
    return "a name in this frame folder's path is not valid UTF-8, which the PNG reader (OpenCV) cannot open; rename it"
