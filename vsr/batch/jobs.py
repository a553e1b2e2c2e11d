"""What a batch has to do: the sources of the input tree, where each goes, and which are already done."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from vsr.batch.journal import Entry
from vsr.errors import VsrError
from vsr.io.destination import discard
from vsr.io.sources import find_sources


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path  # the same relative path under the output folder
    key: str  # the source's path relative to the input folder, as the journal names it
    fingerprint: str


def find_jobs(input_dir: Path, output_dir: Path, settings_key: str) -> list[Job]:
    """Every video file and PNG-frame folder under `input_dir`, mirrored under `output_dir`."""
    if not input_dir.is_dir():
        raise VsrError(input_dir, "is not a folder")
    if output_dir.resolve() == input_dir.resolve() or input_dir.resolve() in output_dir.resolve().parents:
        raise VsrError(output_dir, f"is inside the input folder {input_dir}; choose a folder outside it")
    jobs = []
    for source in find_sources(input_dir, recursive=True):
        relative = source.relative_to(input_dir)
        jobs.append(Job(source, output_dir / relative, relative.as_posix(), fingerprint(source, settings_key)))
    return jobs


def fingerprint(source: Path, settings_key: str) -> str:
    """Changes when the source file (or any frame of a frame folder) or the output-shaping settings change."""
    files = sorted(source.iterdir()) if source.is_dir() else [source]
    digest = hashlib.sha256(settings_key.encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def plan(job: Job, previous: Entry | None, overwrite: bool) -> str:
    """'run', or why the job is skipped: 'already done', 'exists' (not made by this batch) or 'stale'.

    'stale': this batch made the output, but from another version of the source or other settings; it is
    the user's file now, so it is replaced only with --overwrite.
    """
    exists = job.target.exists()
    if previous is not None and previous.status == "done" and exists:
        if previous.fingerprint == job.fingerprint:
            return "already done"
        return "run" if overwrite else "stale"
    if exists and not overwrite:
        return "exists"
    return "run"


def remove_partial_outputs(job: Job) -> None:
    """Delete what a killed run of this job left: the writer's hidden `.NAME.partial-XXXXXXXX` siblings."""
    folder = job.target.parent
    if folder.is_dir():
        for leftover in folder.glob(f".{job.target.stem}.partial-*"):
            discard(leftover)
