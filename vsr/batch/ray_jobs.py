"""`vsr batch --ray`: the same per-file job as Ray tasks, one per GPU (or CPU) slot of a Ray cluster.

The driver (the machine running `vsr batch`) plans the jobs, keeps the journal and hands out tasks; the tasks
run `upscale_video` on whichever node Ray places them, so the input and output folders must be at the same
path on every node (a shared file system). Outputs are written to a hidden file and renamed into place, so a
task killed midway, and retried by Ray, leaves nothing half-written.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterator

from vsr.batch.jobs import Job
from vsr.errors import VsrError

INSTALL_HINT = "pip install 'vsr[ray]'"


def run_on_ray(todo: list[Job], settings, address: str, overwrite: bool) -> Iterator:
    """Outcomes as tasks finish. `address` is a cluster's ('auto', 'ray://host:10001', ...) or 'local'."""
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        _connect(ray, address)
    try:
        uses_gpus = settings.device != "cpu" and ray.cluster_resources().get("GPU", 0) >= 1
        task = ray.remote(_ray_job).options(num_gpus=1 if uses_gpus else 0, num_cpus=0 if uses_gpus else 1,
                                            max_retries=1)
        pending = {task.remote(job, settings, overwrite, uses_gpus): job for job in todo}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(done[0])
            yield _outcome(ray, done[0], job)
    finally:
        if started_here:
            ray.shutdown()


def _import_ray():
    if importlib.util.find_spec("ray") is None:
        raise VsrError(None, f"--ray needs Ray, which is not installed: {INSTALL_HINT}")
    import ray

    return ray


def _connect(ray, address: str) -> None:
    """Join the cluster, or start a local instance sized to this machine for 'local'."""
    try:
        if address == "local":
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR)
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise VsrError(None, f"cannot reach the Ray cluster at {address!r}: {_first_line(error)}") from None


def _outcome(ray, reference, job: Job):
    """The task's outcome; a task that died (its worker killed, say) counts as a failed file."""
    from vsr.batch.runner import Outcome

    try:
        return ray.get(reference)
    except Exception as error:  # noqa: BLE001 - Ray wraps what killed the task in several exception types
        return Outcome(job, "failed", f"{job.source}: the Ray task died: {_first_line(error)}")


def _first_line(error: Exception) -> str:
    """Ray's errors carry whole remote tracebacks; the user gets the error's name and its first line."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def _ray_job(job: Job, settings, overwrite: bool, uses_gpu: bool):
    """Runs in a Ray worker: one file with a model built here, on this task's one CPU or GPU."""
    import dataclasses

    import torch

    from vsr.batch.runner import build_model_for, run_job

    if not uses_gpu:
        torch.set_num_threads(1)
        settings = dataclasses.replace(settings, device="cpu")
    return run_job(build_model_for(settings), job, settings, overwrite, progress=False)
