"""`vsr batch --jobs N`: N worker processes, each with its own model, fed one job at a time over a pipe.

Not concurrent.futures' pool: there one dead worker (the OOM killer, a codec crash) breaks the whole pool and
ends the batch. Here a dead worker fails its own file only, and another takes its place. The parent waits on
the pipes and on the processes' sentinels at once, so it sees an outcome or a death as soon as it happens.

Stopping: the parent alone decides. Workers ignore SIGINT and SIGHUP (a terminal sends those to every process
of the job) and take SIGTERM as an orderly stop: the file in progress is abandoned and its writer deletes its
hidden partial output. On Ctrl-C, SIGTERM or SIGHUP the parent sends SIGTERM to every worker, SIGKILLs those
still there after GRACE_SECONDS, and deletes their partial outputs itself. A worker whose parent is gone
(kill -9, a closed terminal) stops the same way: PR_SET_PDEATHSIG on Linux, and a watch on its parent's pid.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from vsr.batch.jobs import Job, remove_partial_outputs
from vsr.batch.runner import BatchSettings, Outcome, build_model_for, run_job
from vsr.errors import VsrError
from vsr.io.sources import printable
from vsr.signals import STOP_SIGNALS, hold_signals, install_stop_handlers

GRACE_SECONDS = 10.0  # for workers to stop on SIGTERM before they are killed
PARENT_POLL_SECONDS = 1.0
PR_SET_PDEATHSIG = 1


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    job: Job | None = None  # the job handed to it and not answered yet


class WorkerPool:
    """Runs jobs in `size` worker processes; `finished` gets each outcome in the parent, as it comes."""

    def __init__(self, size: int, settings: BatchSettings, overwrite: bool) -> None:
        self.size = size
        self.settings = settings
        self.overwrite = overwrite
        self.threads = max(1, (os.cpu_count() or 1) // size)
        self._context = get_context("spawn")
        self._workers: list[_Worker] = []
        self._queue: deque[Job] = deque()

    def run(self, todo: list[Job], finished: Callable[[Outcome], None]) -> None:
        """Every job's outcome to `finished`; on any exception (Ctrl-C first), every worker is stopped first."""
        self._queue = deque(todo)
        try:
            for _ in range(min(self.size, len(self._queue))):
                self._start_worker()
            while self._workers:
                self._step(finished)
        except KeyboardInterrupt:
            _hold_stop_signals()
            self._stop_all(finished)
            raise
        except BaseException:
            self._stop_all(None)  # the journal cannot be written, most likely: outcomes cannot be kept anyway
            raise

    def _start_worker(self) -> None:
        """A new worker, handed the next job at once: it reads it when its model is built."""
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=worker_main, name="vsr-batch-worker", daemon=True,
                                        args=(theirs, self.settings, self.overwrite, self.threads, os.getpid()))
        with _stop_signals_blocked():  # until the worker has its own handlers; a Ctrl-C now waits for the parent
            try:
                process.start()
            except OSError as error:  # no more processes or memory
                raise VsrError(None, f"cannot start a worker process ({error.strerror or error})") from None
            worker = _Worker(process, ours)
            self._workers.append(worker)
        theirs.close()
        self._hand_out(worker)

    def _hand_out(self, worker: _Worker) -> None:
        """The next job to `worker`, or None (stop) when none is left."""
        worker.job = self._queue.popleft() if self._queue else None
        try:
            worker.conn.send(worker.job)
        except OSError:
            pass  # it died: its sentinel says so next, and the job counts as failed

    def _step(self, finished: Callable[[Outcome], None]) -> None:
        ready = set(wait([w.conn for w in self._workers if w.job is not None]
                         + [w.process.sentinel for w in self._workers]))
        for worker in list(self._workers):
            if worker.process.sentinel in ready:
                outcome = self._receive(worker)  # what it said before it ended
                if outcome is not None:
                    finished(outcome)
                self._bury(worker, finished)
            elif worker.conn in ready:
                outcome = self._receive(worker)
                if outcome is not None:
                    finished(outcome)
                    self._hand_out(worker)

    @staticmethod
    def _receive(worker: _Worker) -> Outcome | None:
        """The outcome the worker sent, if one is waiting; its job is then no longer in flight."""
        try:
            if not worker.conn.poll():
                return None
            outcome = worker.conn.recv()
        except (EOFError, OSError):
            return None  # it closed its end (died); its sentinel is next
        worker.job = None
        return outcome

    def _bury(self, worker: _Worker, finished: Callable[[Outcome], None]) -> None:
        """A worker has ended; if it had a job, that file failed, and another worker takes over the rest."""
        worker.process.join()
        self._workers.remove(worker)
        worker.conn.close()
        job = worker.job
        if job is None:
            return
        remove_partial_outputs(job)
        finished(Outcome(job, "failed", f"{printable(job.source)}: the worker process died "
                                        f"({how_it_ended(worker.process.exitcode)})"))
        if self._queue:
            self._start_worker()

    def _stop_all(self, finished: Callable[[Outcome], None] | None) -> None:
        """SIGTERM to every worker, SIGKILL after the grace period; then no partial output is left behind."""
        self._queue.clear()
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.terminate()
        deadline = time.monotonic() + GRACE_SECONDS
        while (alive := [w for w in self._workers if w.process.is_alive()]) and time.monotonic() < deadline:
            wait([w.process.sentinel for w in alive], timeout=max(0.0, deadline - time.monotonic()))
        last = []
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join()
            last.append(self._receive(worker))  # a file that finished just as the stop came
            if worker.job is not None:
                remove_partial_outputs(worker.job)
            worker.conn.close()
        self._workers.clear()
        for outcome in last:
            if outcome is not None and finished is not None:
                finished(outcome)  # kept and journaled


def how_it_ended(exitcode: int | None) -> str:
    """'killed by SIGKILL', 'exit status 1'."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


def _hold_stop_signals() -> None:
    """A second Ctrl-C must not cut the stopping short; Stopped has done this already, a plain KeyboardInterrupt not."""
    if threading.current_thread() is threading.main_thread():
        hold_signals()


@contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    """Hold INT, TERM and HUP back in this thread; a child starts with them held back too (the mask is inherited).

    One sent meanwhile waits, and is acted on when the block ends: by the parent as usual, by the worker
    with the handlers it sets first thing (an ignored SIGINT is dropped there, not raised as a traceback
    while it is still importing).
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def worker_main(conn: Connection, settings: BatchSettings, overwrite: bool, threads: int, parent: int) -> None:
    """A worker process: build the model once, then run each job the parent sends until it sends None."""
    job = None
    try:
        _take_signals()
        _die_with_parent(parent)
        run = _job_runner(settings, overwrite, threads)
        while (job := conn.recv()) is not None:
            outcome = run(job)
            job = None  # done: its output is in place
            conn.send(outcome)
    except (KeyboardInterrupt, EOFError, OSError):
        # Stopped (SIGTERM, or the parent is gone). The writer has deleted its partial output already; this is
        # in case its clean-up was cut short. Only this process's own partials: they carry its pid.
        if job is not None:
            with suppress(OSError):
                remove_partial_outputs(job)


def _take_signals() -> None:
    """Ignore SIGINT and SIGHUP (the parent decides), SIGTERM raises Stopped; then let the held ones in."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # even if the parent was started with it ignored
    install_stop_handlers()  # SIGTERM only: it leaves ignored signals alone
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _die_with_parent(parent: int) -> None:
    """SIGTERM to this worker as soon as its parent is gone, however it went."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass  # the watch below still catches it, within a second
    threading.Thread(target=_watch_parent, args=(parent,), name="vsr-parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    """Also where prctl is missing, and for a parent that died before prctl was set: then we have a new one."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def _job_runner(settings: BatchSettings, overwrite: bool, threads: int) -> Callable[[Job], Outcome]:
    """run_job with this worker's model; if the model cannot be built here, every job fails saying why."""
    import torch
    from tqdm import tqdm

    torch.set_num_threads(threads)
    # tqdm's default lock is a multiprocessing semaphore; had this worker one when it is SIGKILLed, the resource
    # tracker would print a warning about it. A worker shows no bars, so a thread lock does.
    tqdm.set_lock(threading.RLock())
    try:
        model = build_model_for(settings)
    except Exception as error:  # noqa: BLE001 - the parent built it, so this is rare; each file says why
        problem = f"the worker could not build the model: {type(error).__name__}: {error}"
        return lambda job: Outcome(job, "failed", f"{printable(job.source)}: {printable(problem)}")
    return lambda job: run_job(model, job, settings, overwrite, progress=False)
