"""The batch journal: one JSON line per finished job, so a rerun after a crash knows what is done.

Outputs only ever appear complete (the writer renames them into place), so a crash leaves either no output
or a whole one. A job killed between that rename and its journal line finds its output on the rerun
without a `done` line, and is skipped as an existing file, not redone.

A kill in the middle of writing a line leaves it torn, without its newline: the next line written starts on
a line of its own, so the torn one never swallows it. Lines that cannot be read (torn, or damaged by hand or
by the disk) are skipped and listed in `unreadable`; the jobs they were about are then treated as not run.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import BinaryIO

from vsr.errors import VsrError
from vsr.io.sources import printable

JOURNAL_NAME = ".vsr-batch-journal.jsonl"
STATUSES = ("done", "failed")
REQUIRED = {"source", "status", "fingerprint"}


@dataclass(frozen=True)
class Entry:
    source: str  # relative to the input folder, with forward slashes
    status: str  # "done" or "failed"
    fingerprint: str  # the source's size and mtime, and the settings that shape the output
    detail: str = ""  # the error of a failed job; frames and seconds of a done one


class Journal:
    """The journal of one output folder, open for appending from `open()` until `close()`."""

    def __init__(self, output_dir: Path) -> None:
        self.path = output_dir / JOURNAL_NAME
        self.unreadable: list[int] = []  # line numbers, from 1, of the lines latest() had to skip
        self._file: BinaryIO | None = None
        self._entries: dict[str, Entry] | None = None

    @classmethod
    def open(cls, output_dir: Path) -> Journal:
        """Create the output folder and open its journal, so that one that cannot be written fails before any work."""
        journal = cls(output_dir)
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise VsrError(printable(output_dir), f"cannot be created ({error.strerror or error})") from None
        try:
            journal._file = journal.path.open("a+b")
        except OSError as error:
            raise journal._error(error) from None
        return journal

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def latest(self) -> dict[str, Entry]:
        """The last readable entry of each source; read once, so `unreadable` is reported once."""
        if self._entries is None:
            self._entries = {}
            for number, line in enumerate(self._read().split(b"\n"), start=1):
                if not line.strip():
                    continue
                entry = parse_line(line)
                if entry is None:
                    self.unreadable.append(number)
                else:
                    self._entries[entry.source] = entry
        return self._entries

    def warning(self) -> str | None:
        """One line on the lines that cannot be read, or None."""
        self.latest()
        if not self.unreadable:
            return None
        numbers = ", ".join(map(str, self.unreadable))
        return (f"{printable(self.path)}: skipped line{'s' if len(self.unreadable) > 1 else ''} {numbers}, which "
                "cannot be read (torn by a crash, or damaged); the files they were about are treated as not run")

    def record(self, entry: Entry) -> None:
        """Append one line, on a line of its own, and push it to the disk before going on."""
        line = json.dumps(asdict(entry)).encode() + b"\n"  # ASCII: json escapes the rest, undecodable names too
        try:
            journal = self._append_handle()
            journal.seek(0, os.SEEK_END)
            if journal.tell() > 0 and not self._ends_in_newline(journal):
                line = b"\n" + line  # the last line was torn by a kill mid-write
            journal.write(line)
            journal.flush()
            os.fsync(journal.fileno())
        except OSError as error:
            raise self._error(error, "the batch stopped so as not to lose track of what finished") from None

    def _read(self) -> bytes:
        try:
            if self._file is not None:
                self._file.seek(0)
                return self._file.read()
            return self.path.read_bytes() if self.path.exists() else b""
        except OSError as error:
            raise VsrError(printable(self.path), f"cannot be read ({error.strerror or error})") from None

    def _append_handle(self) -> BinaryIO:
        if self._file is None:
            self._file = self.path.open("a+b")
        return self._file

    @staticmethod
    def _ends_in_newline(journal: BinaryIO) -> bool:
        journal.seek(-1, os.SEEK_END)
        ends = journal.read(1) == b"\n"
        journal.seek(0, os.SEEK_END)
        return ends

    def _error(self, error: OSError, then: str = "") -> VsrError:
        problem = f"the batch journal cannot be written ({error.strerror or error})"
        return VsrError(printable(self.path), f"{problem}; {then}" if then else problem)


def parse_line(line: bytes) -> Entry | None:
    """The entry a journal line holds, or None where it is not one (bad UTF-8, not JSON, wrong fields)."""
    try:
        fields = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(fields, dict) or not REQUIRED <= set(fields) <= {field.name for field in dataclass_fields(Entry)}:
        return None
    if not all(isinstance(value, str) for value in fields.values()) or fields["status"] not in STATUSES:
        return None
    return Entry(**fields)
