"""Set up `.venv` in the project folder with vsr and what it needs; safe to run again.

The virtual environment gets the CPU build of torch 2.13.0 unless the Python that runs this script already
has a torch (a CUDA build, say): then the environment sees that one instead of downloading another.

    python3 scripts/bootstrap.py                      # vsr itself, CPU torch
    python3 scripts/bootstrap.py --extras test        # and the test tools
    python3 scripts/bootstrap.py --cuda cu128         # a CUDA build of torch instead (replaces a CPU one)

On Linux x86_64, PyPI's plain `torch` wheel is a CUDA build of several GB; the CPU build comes from PyTorch's
own index (download.pytorch.org/whl/cpu). This script asks pip which wheel it would take and goes to that
index only when the answer is not a CPU build, so machines with a CPU wheel at hand never leave it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TORCH = "torch==2.13.0"
PYTORCH_INDEX = "https://download.pytorch.org/whl/{build}"


def run(*command: str) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def installed_torch(python: Path) -> tuple[str, str | None] | None:
    """(version, CUDA version or None) of the environment's torch, or None when it has none."""
    probe = subprocess.run([str(python), "-c", "import json, torch; print(json.dumps([torch.__version__, "
                            "torch.version.cuda]))"], capture_output=True, text=True)
    if probe.returncode != 0:
        return None
    version, cuda = json.loads(probe.stdout.strip().splitlines()[-1])
    return version, cuda


def resolved_torch(pip: list[str]) -> str | None:
    """The torch version pip would install from the configured indexes ('2.13.0+cpu'), or None if unknown."""
    report = subprocess.run([*pip, "--dry-run", "--no-deps", "--ignore-installed", "--report", "-", TORCH],
                            capture_output=True, text=True)
    try:
        return json.loads(report.stdout)["install"][0]["metadata"]["version"]
    except (ValueError, KeyError, IndexError):
        return None


def needs_cpu_index(resolved: str | None, system: str, machine: str) -> bool:
    """Whether the plain index would give a CUDA build where a CPU one is wanted.

    Only Linux x86_64 wheels on PyPI carry CUDA (macOS and Windows wheels there are CPU builds, and Linux
    aarch64 ones too for the versions we pin); a local '+cpu' wheel means a CPU build is at hand.
    """
    if system != "Linux" or machine not in ("x86_64", "AMD64"):
        return False
    return resolved is None or "+cpu" not in resolved


def torch_install(pip: list[str], cuda: str | None) -> list[str]:
    """The pip command that installs the torch build asked for."""
    if cuda is not None:
        return [*pip, TORCH, "--index-url", PYTORCH_INDEX.format(build=cuda)]
    if needs_cpu_index(resolved_torch(pip), platform.system(), platform.machine()):
        return [*pip, TORCH, "--index-url", PYTORCH_INDEX.format(build="cpu")]
    return [*pip, TORCH]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extras", default="", help="comma-separated extras of setup.cfg, e.g. test")
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv")
    parser.add_argument("--cuda", metavar="BUILD", default=None,
                        help="install torch built for this CUDA version from PyTorch's index, e.g. cu128 or cu126 "
                             "(match your driver: nvidia-smi shows the highest CUDA it supports)")
    args = parser.parse_args()

    host_has_torch = importlib.util.find_spec("torch") is not None
    python = args.venv / "bin" / "python"
    if not python.exists():
        venv.EnvBuilder(with_pip=True, system_site_packages=host_has_torch and args.cuda is None).create(args.venv)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    torch = installed_torch(python)
    if torch is not None and args.cuda is not None and torch[1] is None:
        print(f"replacing the CPU build of torch {torch[0]} in {args.venv} with a {args.cuda} build", flush=True)
        run(str(python), "-m", "pip", "uninstall", "-y", "-q", "torch")
        torch = None
    if torch is None:
        run(*torch_install(pip, args.cuda))
        torch = installed_torch(python)
    else:
        print(f"keeping torch {torch[0]} ({'CUDA ' + torch[1] if torch[1] else 'CPU build'}) in {args.venv}; "
              "--cuda BUILD replaces a CPU build with a CUDA one", flush=True)
    target = f"{ROOT}[{args.extras}]" if args.extras else str(ROOT)
    run(*pip, "-e", target)
    build = "CPU build" if torch is None or torch[1] is None else f"CUDA {torch[1]}"
    print(f"ready: {args.venv}/bin/vsr (torch {torch[0] if torch else '?'}, {build})", flush=True)


if __name__ == "__main__":
    main()
