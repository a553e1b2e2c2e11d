"""Writing one benchmark's section of benchmarks/RESULTS.md, leaving the other sections as they are."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path


def describe_cpu() -> str:
    """The CPU side of a measurement, as every section names it: torch, cores, processor, torch threads."""
    import torch

    return (f"torch {torch.__version__}, {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
            f"{torch.get_num_threads()} torch threads")


def write_section(results: Path, heading: str, section: str) -> None:
    """Replace the section that starts with `heading` (or append it); create the file if need be."""
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    results.write_text(text.rstrip("\n") + "\n")
