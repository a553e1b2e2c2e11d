"""The batch journal: one JSON line per finished job, so a rerun after a crash knows what is done.

Outputs only ever appear complete (the writer renames them into place), so a crash leaves either no output
or a whole one. A job killed between that rename and its journal line finds its output on the rerun
without a `done` line, and is skipped as an existing file, not redone. A torn last line (kill -9 while
writing it) is ignored.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

JOURNAL_NAME = ".vsr-batch-journal.jsonl"


@dataclass(frozen=True)
class Entry:
    source: str  # relative to the input folder, with forward slashes
    status: str  # "done" or "failed"
    fingerprint: str  # the source's size and mtime, and the settings that shape the output
    detail: str = ""  # the error of a failed job; frames and seconds of a done one


class Journal:
    def __init__(self, output_dir: Path) -> None:
        self.path = output_dir / JOURNAL_NAME

    def latest(self) -> dict[str, Entry]:
        """The last entry of each source."""
        entries: dict[str, Entry] = {}
        if not self.path.exists():
            return entries
        for line in self.path.read_text().splitlines():
            try:
                entry = Entry(**json.loads(line))
            except (ValueError, TypeError):
                continue  # a line torn by a crash
            entries[entry.source] = entry
        return entries

    def record(self, entry: Entry) -> None:
        """Append one line and push it to the disk before going on."""
        with self.path.open("a") as journal:
            journal.write(json.dumps(asdict(entry)) + "\n")
            journal.flush()
            os.fsync(journal.fileno())
