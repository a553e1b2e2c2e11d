"""Signals end a run as Ctrl-C does: SIGTERM and SIGHUP raise `Stopped`, a KeyboardInterrupt, so every
`finally` and `except BaseException` that removes partial outputs runs for them too.

After the first signal the others are held off: a second Ctrl-C pressed while partial files are being
removed must not cut that clean-up short (or print a traceback from inside it).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """The process was asked to stop by `signum`; the exit status is 128 + signum, as shells report it."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_status(interrupt: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + getattr(interrupt, "signum", signal.SIGINT)


def signal_name(interrupt: KeyboardInterrupt) -> str:
    return signal.Signals(getattr(interrupt, "signum", signal.SIGINT)).name


_stopped = False  # whether a stop signal arrived


def _stop(signum: int, _frame) -> None:
    global _stopped
    _stopped = True
    hold_signals()
    raise Stopped(signum)


def run_until_exit(command_line: Callable[[], object]) -> None:
    """Runs the command line; once a stop signal has ended it, leaves without the interpreter's teardown.

    By the time the stop has unwound the main thread, partial outputs are removed and the last line is said;
    but a pipeline thread may still be inside native code (torch, FFmpeg), and tearing the interpreter down
    under it can abort the process with 'terminate called without an active exception' instead of the
    128 + signal status (seen in CI on a SIGTERM). Nothing is left to finalise, so exit at once.
    """
    try:
        command_line()
    except SystemExit as done:
        if not _stopped:
            raise
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # after SIGHUP the terminal may be gone
                pass
        os._exit(done.code if isinstance(done.code, int) else 1)


def hold_signals() -> None:
    """Ignore further stop signals from now on: the process is already stopping."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def install_stop_handlers() -> None:
    """In the main thread of a vsr process: INT, TERM and HUP raise Stopped once, then are ignored.

    A signal the process inherited as ignored (a `nohup` run's SIGHUP, a background job's SIGINT) stays
    ignored: whoever started us chose that.
    """
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _stop)
