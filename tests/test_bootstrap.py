"""scripts/bootstrap.py picks the torch build: CPU by default, from PyTorch's index where PyPI's is CUDA."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bootstrap.py"


@pytest.fixture(scope="module")
def bootstrap():
    spec = importlib.util.spec_from_file_location("bootstrap", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("resolved, system, machine, expected", [
    ("2.13.0", "Linux", "x86_64", True),  # PyPI's Linux wheel: a CUDA build
    (None, "Linux", "x86_64", True),  # pip could not say: do not risk several GB
    ("2.13.0+cpu", "Linux", "x86_64", False),  # a CPU wheel at hand (a local folder or mirror)
    ("2.13.0", "Darwin", "arm64", False),  # PyPI's macOS and Windows wheels are CPU builds
    ("2.13.0", "Windows", "AMD64", False),
    ("2.13.0", "Linux", "aarch64", False),
])
def test_the_cpu_index_is_used_only_where_the_plain_one_gives_cuda(bootstrap, resolved, system, machine, expected):
    assert bootstrap.needs_cpu_index(resolved, system, machine) is expected


def test_cuda_asks_pytorchs_index_for_that_build(bootstrap):
    command = bootstrap.torch_install(["pip", "install"], "cu128")

    assert command == ["pip", "install", "torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cu128"]

