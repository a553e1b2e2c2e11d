"""What a batch has to do: the sources of the input tree, where each goes, and which are already done."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from vsr.batch.journal import Entry
from vsr.errors import VsrError
from vsr.io.destination import remove_stale_partials
from vsr.io.sources import find_sources, printable


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path  # the same relative path under the output folder
    key: str  # the source's path relative to the input folder, as the journal names it
    fingerprint: str


def find_jobs(input_dir: Path, output_dir: Path, settings_key: str,
              skipped: list[tuple[Path, str]] | None = None) -> list[Job]:
    """Every video file and PNG-frame folder under `input_dir`, mirrored under `output_dir`.

    Folders not searched (symbolic links to folders, unreadable ones) go into `skipped` with the reason.
    """
    if not input_dir.is_dir():
        raise VsrError(printable(input_dir), "is not a folder")
    if output_dir.resolve() == input_dir.resolve() or input_dir.resolve() in output_dir.resolve().parents:
        raise VsrError(printable(output_dir),
                       f"is inside the input folder {printable(input_dir)}; choose a folder outside it")
    jobs = []
    try:
        for source in find_sources(input_dir, recursive=True, skipped=skipped):
            relative = source.relative_to(input_dir)
            jobs.append(Job(source, output_dir / relative, relative.as_posix(), fingerprint(source, settings_key)))
    except OSError as error:  # the input folder itself, or a file that vanished while it was searched
        raise VsrError(printable(error.filename or input_dir), f"cannot be read ({error.strerror or error})") from None
    _refuse_targets_over_sources(jobs)
    return jobs


def _refuse_targets_over_sources(jobs: list[Job]) -> None:
    """An output folder around the input folder could map one file's output onto another input (IN=proj/in,
    OUT=proj: proj/in/in/a.mp4 -> proj/in/a.mp4): refuse any target that is, holds or lies inside a source."""
    sources = {job.source.resolve() for job in jobs}
    around_sources = {parent for source in sources for parent in source.parents}
    for job in jobs:
        target = job.target.resolve()
        if target in sources or target in around_sources or any(p in sources for p in target.parents):
            raise VsrError(printable(job.target), f"would replace or fill an input of this batch (the output of "
                                                  f"{printable(job.source)}); choose an output folder outside the "
                                                  "input folder's tree")


def fingerprint(source: Path, settings_key: str) -> str:
    """Changes when the source file (or any frame of a frame folder) or the output-shaping settings change."""
    files = sorted(source.iterdir()) if source.is_dir() else [source]
    digest = hashlib.sha256(settings_key.encode())
    for path in files:
        stat = path.stat()
        # fsencode: a name that is not valid UTF-8 holds surrogates, which str.encode() refuses.
        digest.update(os.fsencode(path.name) + f":{stat.st_size}:{stat.st_mtime_ns};".encode())
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
    """Delete the hidden partial outputs of this job that no running process writes: a killed run's or worker's.

    A partial's name carries its writer's pid, so one that another worker is writing right now (`NAME.mkv`
    beside `NAME.mp4`, say) is kept.
    """
    remove_stale_partials(job.target)
