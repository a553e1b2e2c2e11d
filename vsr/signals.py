"""Signals end a run as Ctrl-C does: SIGTERM and SIGHUP raise `Stopped`, a KeyboardInterrupt, so every
`finally` and `except BaseException` that removes partial outputs runs for them too.

After the first signal the others are held off: a second Ctrl-C pressed while partial files are being
removed must not cut that clean-up short (or print a traceback from inside it).
"""

from __future__ import annotations

import signal

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


def _stop(signum: int, _frame) -> None:
    hold_signals()
    raise Stopped(signum)


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
