"""Nothing at the destination is ever half-written: output goes to a hidden sibling, renamed in on success."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from vsr.errors import VsrError


def check_destination(target: Path, overwrite: bool, sources: tuple[Path, ...] = ()) -> None:
    """Fail before any work if the target cannot or must not be written."""
    for source in sources:
        if source.exists() and target.exists() and target.resolve() == source.resolve():
            raise VsrError(target, "is the input; choose another output path")
    if target.exists() and not overwrite:
        raise VsrError(target, "already exists; pass --overwrite to replace it")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise VsrError(target, f"folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise VsrError(target, f"folder {parent} is not writable")


def temporary_sibling(target: Path) -> Path:
    """A hidden path beside the target (same file system, so the final rename is atomic), same extension."""
    return target.with_name(f".{target.stem}.partial-{uuid.uuid4().hex[:8]}{target.suffix}")


def commit(temporary: Path, target: Path) -> None:
    """Move the finished output into place, replacing an old target only now that the new one is complete."""
    if target.is_dir() and not target.is_symlink():
        trash = temporary_sibling(target)
        target.rename(trash)
        temporary.rename(target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(temporary, target)


def discard(temporary: Path) -> None:
    if temporary.is_dir():
        shutil.rmtree(temporary, ignore_errors=True)
    else:
        temporary.unlink(missing_ok=True)
