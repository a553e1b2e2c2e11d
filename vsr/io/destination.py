"""Nothing at the destination is ever half-written, and nothing the user has is lost.

Output goes to a hidden sibling and is renamed in on success. Before any work, `check_destination` refuses a
target that is, or contains, a file the run reads, and a target whose replacement would destroy something
that is not an earlier output of the same kind: `--overwrite` replaces a file with a file and a folder vsr
wrote with a folder of the same kind, never anything else.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vsr.errors import VsrError

PARTIAL_MARK = ".partial-"

# Partials this process has started and neither committed nor discarded. The code that writes one removes it
# when a run fails; a Ctrl-C can still land in the few instructions between a file's creation and the `try`
# that guards it, so the command line discards what is left here when it stops (`discard_unfinished`).
_unfinished: set[Path] = set()


@dataclass(frozen=True)
class FolderOutput:
    """A kind of folder vsr writes: file names it puts there, and how deep its subfolders go.

    `--overwrite` replaces an existing folder only if everything in it could have come from vsr: a folder of
    the user's own frames, say, has other names, and is refused.
    """

    description: str
    file_name: re.Pattern
    depth: int = 0  # levels of subfolders (bench frames: model/clip/00000000.png)

    def made_by_vsr(self, folder: Path, depth: int | None = None) -> bool:
        depth = self.depth if depth is None else depth
        for entry in folder.iterdir():
            if entry.is_symlink():
                return False
            if entry.is_dir():
                if depth == 0 or not self.made_by_vsr(entry, depth - 1):
                    return False
            elif not (entry.is_file() and self.file_name.fullmatch(entry.name)):
                return False
        return True


FRAME_FOLDER = FolderOutput("a PNG frame folder", re.compile(r"frame_\d{6,}\.png"))


def check_destination(target: Path, overwrite: bool, reads: Iterable[Path | None] = (),
                      folder: FolderOutput | None = None) -> None:
    """Fail before any work if the target cannot or must not be written.

    `reads` are every file and folder the run reads (inputs, weights, ground truth): the target may be none of
    them, contain none of them, and lie inside none of them. `folder` is the kind of folder the output is, or
    None for a file.
    """
    if target.name in ("", ".", ".."):
        raise VsrError(target, "names a folder by '.' or '..'; give the output a name of its own")
    for read in reads:
        if read is not None:
            _refuse_overlap(target, Path(read))
    if target.exists() or target.is_symlink():
        if not overwrite:
            raise VsrError(target, "already exists; pass --overwrite to replace it")
        _refuse_replacing(target, folder)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise VsrError(target, f"folder {parent} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise VsrError(target, f"folder {parent} is not writable")
    _refuse_long_name(target, parent)


def _refuse_overlap(target: Path, read: Path) -> None:
    """The target may not be a file the run reads, hold one (a folder replaced whole), or lie inside one."""
    if not (read.exists() or read.is_symlink()):
        return
    where, what = _real(target), _real(read)
    if where == what or (target.exists() and what.exists() and os.path.samefile(target, read)):
        raise VsrError(target, f"is {read}, which this run reads; choose another output")
    if where in what.parents:
        raise VsrError(target, f"contains {read}, which this run reads; choose another output")
    if what in where.parents and read.is_dir():
        raise VsrError(target, f"lies inside {read}, which this run reads; choose an output outside it")


def _real(path: Path) -> Path:
    """The absolute path with symlinks resolved, for paths that do not exist yet too."""
    return Path(os.path.realpath(path))


def _refuse_replacing(target: Path, folder: FolderOutput | None) -> None:
    """--overwrite replaces like with like: a file with a file, a folder vsr wrote with the same kind."""
    if folder is None:
        if target.is_dir():
            raise VsrError(target, "is a folder; --overwrite replaces a file with a file, never a folder")
        if not target.is_file():
            raise VsrError(target, "is not a regular file (a pipe, socket or device); it is not replaced")
        return
    if not target.is_dir() or target.is_symlink():
        raise VsrError(target, f"is a file, and the output is {folder.description}; --overwrite never "
                               "deletes a file to make room for a folder (use a video extension for a video)")
    if not folder.made_by_vsr(target):
        raise VsrError(target, f"holds files vsr did not write there; --overwrite replaces only "
                               f"{folder.description} that vsr wrote, so this folder is kept")


def _refuse_long_name(target: Path, parent: Path) -> None:
    """The hidden partial's name is longer than the target's: find out now, not after the work."""
    try:
        limit = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    longest = max(len(os.fsencode(target.name)), len(os.fsencode(temporary_sibling(target).name)))
    if longest > limit:
        raise VsrError(target, f"name is too long: the hidden partial file beside it needs {longest} bytes, "
                               f"and this file system allows {limit}; choose a shorter name")


def temporary_sibling(target: Path) -> Path:
    """A hidden path beside the target (same file system, so the final rename is atomic), same extension.

    The name carries the writing process's id, so that a later run can tell a killed run's leftovers from
    the partial of a run still going.
    """
    return target.with_name(f".{target.stem}{PARTIAL_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}{target.suffix}")


def start_partial(target: Path) -> Path:
    """The hidden sibling to write `target` into, remembered until it is committed or discarded."""
    temporary = temporary_sibling(target)
    _unfinished.add(temporary)
    return temporary


def discard_unfinished() -> None:
    """Remove every partial this process started and did not finish: the last step of a stopped run."""
    for temporary in list(_unfinished):
        discard(temporary)


def remove_stale_partials(target: Path) -> list[Path]:
    """Delete the hidden partials of `target` that killed runs left (their process is gone); return them."""
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        return []
    removed = []
    for leftover in folder.glob(f".{glob_escape(target.stem)}{PARTIAL_MARK}*{glob_escape(target.suffix)}"):
        if not _writer_alive(leftover.name):
            discard(leftover)
            removed.append(leftover)
    return removed


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _writer_alive(name: str) -> bool:
    """Whether the process that named this partial still runs (names without a process id: no)."""
    found = re.search(re.escape(PARTIAL_MARK) + r"(\d+)-", name)
    if not found:
        return False
    pid = int(found.group(1))
    if pid == os.getpid():
        return False  # this process starts the target afresh: what it left before is stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def commit(temporary: Path, target: Path) -> None:
    """Move the finished output into place, replacing an old target only now that the new one is complete."""
    try:
        if target.is_dir() and not target.is_symlink():
            trash = temporary_sibling(target)
            target.rename(trash)
            temporary.rename(target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(temporary, target)
    except OSError as error:
        discard(temporary)
        raise VsrError(target, f"could not be moved into place ({error.strerror or error})") from None
    _unfinished.discard(temporary)


def discard(temporary: Path) -> None:
    if temporary.is_dir() and not temporary.is_symlink():
        shutil.rmtree(temporary, ignore_errors=True)
    else:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass  # its folder is gone or read-only now: nothing more can be done, and the error that
            # brought us here is the one to report
    _unfinished.discard(temporary)
