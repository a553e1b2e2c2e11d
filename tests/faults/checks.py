"""What every fault case asserts: one line naming the problem, the exit status, and nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def assert_one_line_error(result, *words: str, status: int = 1) -> None:
    """A click Result (or a CompletedProcess) that failed with one `vsr: error:` line holding `words`."""
    code = getattr(result, "exit_code", None)
    code = result.returncode if code is None else code
    assert code == status, (code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("vsr: error: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in result.stderr


def partial_files(folder: Path) -> list[Path]:
    """Hidden partial outputs anywhere under `folder`."""
    return [p for p in folder.rglob("*") if ".partial-" in p.name]


def vsr_process(*args, **popen) -> subprocess.Popen:
    """`vsr ARGS` in a fresh process, as a user's shell starts it: stop signals at their defaults, output captured.

    (A background shell job ignores SIGINT, and children inherit ignored signals.)
    """
    return subprocess.Popen([sys.executable, "-m", "vsr", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals, **popen)


def _default_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def run_vsr(*args, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vsr", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
