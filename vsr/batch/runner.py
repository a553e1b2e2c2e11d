"""Running a batch: each job through the same `upscale_video` as `vsr run`, in one process or several.

A failing file is recorded and the batch goes on. With `workers` > 1 each worker process builds the model
once and gets its share of the CPU threads; jobs are handed out one at a time as workers free up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context

import torch
from tqdm import tqdm

from vsr.batch.jobs import Job, plan, remove_partial_outputs
from vsr.batch.journal import Entry, Journal
from vsr.errors import VsrError
from vsr.io.writer import EncoderSettings


@dataclass(frozen=True)
class BatchSettings:
    """Everything a worker needs to build its model and run a job; plain values, so it pickles."""

    model: str
    weights: str | None = None
    scale: int | None = None
    device: str = "auto"
    chunk: int = 8
    tile: int = 0
    tile_overlap: int = 16
    scene_cuts: bool = True
    precision: str = "auto"
    codec: str | None = None
    crf: int | None = None
    preset: str | None = None

    def key(self) -> str:
        """The settings that shape the output; a change makes earlier outputs stale."""
        return f"{self.model}|{self.weights}|{self.scale}|{self.codec}|{self.crf}|{self.preset}|{self.precision}"


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
              say: Callable[[str], None] | None = None, ray_address: str | None = None) -> BatchReport:
    """Run what is not done yet; return every job's outcome. `ray_address` runs the jobs as Ray tasks."""
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
    bar = tqdm(total=len(todo), unit="file", desc="batch", disable=not progress or None, dynamic_ncols=True)
    try:
        for outcome in _run_jobs(todo, journal, settings, workers, overwrite, progress and workers == 1,
                                 ray_address):
            report.outcomes.append(outcome)
            bar.update()
            if say is not None:
                say(f"{outcome.status}: {outcome.job.key}" + (f" ({outcome.detail})" if outcome.detail else ""))
    finally:
        bar.close()
    report.seconds = time.perf_counter() - started
    return report


def _run_jobs(todo: list[Job], journal: Journal, settings: BatchSettings, workers: int, overwrite: bool,
              file_progress: bool, ray_address: str | None) -> Iterator[Outcome]:
    model = build_model_for(settings)  # here too with workers: a bad --model fails once, with its own message
    if ray_address is not None and todo:
        from vsr.batch.ray_jobs import run_on_ray

        for outcome in run_on_ray(todo, settings, ray_address, overwrite):
            _record(journal, outcome)
            yield outcome
        return
    if workers <= 1 or len(todo) <= 1:
        for job in todo:
            outcome = run_job(model, job, settings, overwrite, file_progress)
            _record(journal, outcome)
            yield outcome
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_start_worker,
                             initargs=(settings, threads)) as pool:
        futures = [pool.submit(_worker_job, job, settings, overwrite) for job in todo]
        for future in as_completed(futures):
            outcome = future.result()
            _record(journal, outcome)
            yield outcome


def _record(journal: Journal, outcome: Outcome) -> None:
    status = "done" if outcome.status == "upscaled" else "failed"
    journal.record(Entry(outcome.job.key, status, outcome.job.fingerprint, outcome.detail))


def build_model_for(settings: BatchSettings) -> torch.nn.Module:
    from vsr.models.zoo import build_model

    return build_model(settings.model, settings.scale, settings.weights)


def run_job(model: torch.nn.Module, job: Job, settings: BatchSettings, overwrite: bool,
            progress: bool) -> Outcome:
    """One file; any error becomes a failed outcome naming it, so the batch goes on."""
    from vsr.pipeline.job import pick_device, upscale_video

    job.target.parent.mkdir(parents=True, exist_ok=True)
    try:
        report = upscale_video(job.source, job.target, model, pick_device(settings.device), chunk=settings.chunk,
                               tile=settings.tile, tile_overlap=settings.tile_overlap,
                               scene_cuts=settings.scene_cuts, precision=settings.precision,
                               settings=EncoderSettings(settings.codec, settings.crf, settings.preset),
                               overwrite=overwrite, progress=progress)
    except VsrError as error:
        return Outcome(job, "failed", str(error))
    except Exception as error:  # noqa: BLE001 - a bug or a codec crash on one file must not stop the others
        return Outcome(job, "failed", f"{job.source}: {type(error).__name__}: {error}")
    return Outcome(job, "upscaled", f"{report.frames} frames, {report.seconds:.1f} s")


_worker_model: torch.nn.Module | None = None


def _start_worker(settings: BatchSettings, threads: int) -> None:
    global _worker_model
    torch.set_num_threads(threads)
    _worker_model = build_model_for(settings)


def _worker_job(job: Job, settings: BatchSettings, overwrite: bool) -> Outcome:
    return run_job(_worker_model, job, settings, overwrite, progress=False)
