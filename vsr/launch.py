"""The `vsr` console script. Kept apart from vsr.cli so that a Ctrl-C while the command line's modules are
still importing ends quietly (exit 130) instead of with a traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from vsr.signals import install_stop_handlers, run_until_exit

        install_stop_handlers()
        from vsr.cli import main as cli_main

        run_until_exit(cli_main)
    except KeyboardInterrupt as interrupt:  # before the command line's own handler took over
        from vsr.signals import exit_status

        sys.exit(exit_status(interrupt))
