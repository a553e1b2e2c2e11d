"""Set up `.venv` in the project folder with vsr and what it needs; safe to run again.

The virtual environment gets the CPU build of torch 2.13.0 unless the Python that runs this script already
has a torch (a CUDA build, say): then the environment sees that one instead of downloading another.

    python3 scripts/bootstrap.py                # vsr itself
    python3 scripts/bootstrap.py --extras test  # and the test tools
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CPU_TORCH = "torch==2.13.0"


def run(*command: str) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extras", default="", help="comma-separated extras of setup.cfg, e.g. test")
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv")
    args = parser.parse_args()

    host_has_torch = importlib.util.find_spec("torch") is not None
    python = args.venv / "bin" / "python"
    if not python.exists():
        venv.EnvBuilder(with_pip=True, system_site_packages=host_has_torch).create(args.venv)
    has_torch = subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode == 0
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if not has_torch:
        run(*pip, CPU_TORCH)
    target = f"{ROOT}[{args.extras}]" if args.extras else str(ROOT)
    run(*pip, "-e", target)
    print(f"ready: {args.venv}/bin/vsr", flush=True)


if __name__ == "__main__":
    main()
