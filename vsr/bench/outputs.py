"""The files `vsr bench` writes, each checked before any work and moved into place only when complete."""

from __future__ import annotations

from pathlib import Path

from vsr.bench.report import csv_text, json_text, to_json, write_plots
from vsr.bench.runner import ModelResult
from vsr.io.destination import check_destination, commit, discard, temporary_sibling


class BenchOutputs:
    """JSON, CSV, plots folder and SR frames folder, any of them optional; nothing half-written survives.

    Use as a context manager around the benchmark: the frames folder fills up as the models run and is
    renamed into place at the end, or removed if the run fails.
    """

    def __init__(self, json_path: Path | None, csv_path: Path | None, plots_dir: Path | None,
                 frames_dir: Path | None, overwrite: bool) -> None:
        self.targets = {"json": json_path, "csv": csv_path, "plots": plots_dir, "frames": frames_dir}
        for target in self.targets.values():
            if target is not None:
                check_destination(target, overwrite)
        self.frames_folder = temporary_sibling(frames_dir) if frames_dir is not None else None
        self.written: list[Path] = []

    def __enter__(self) -> BenchOutputs:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self.frames_folder is None or not self.frames_folder.exists():
            return
        if exc_type is None:
            commit(self.frames_folder, self.targets["frames"])
            self.written.append(self.targets["frames"])
        else:
            discard(self.frames_folder)

    def write(self, results: list[ModelResult], settings: dict[str, object]) -> None:
        if self.targets["json"] is not None:
            self._write_text(self.targets["json"], json_text(to_json(results, settings)))
        if self.targets["csv"] is not None:
            self._write_text(self.targets["csv"], csv_text(results))
        if self.targets["plots"] is not None:
            folder = temporary_sibling(self.targets["plots"])
            try:
                write_plots(folder, results, int(settings["scale"]))
                commit(folder, self.targets["plots"])
            except BaseException:
                discard(folder)
                raise
            self.written.append(self.targets["plots"])

    def _write_text(self, target: Path, text: str) -> None:
        temporary = temporary_sibling(target)
        try:
            temporary.write_text(text)
            commit(temporary, target)
        except BaseException:
            discard(temporary)
            raise
        self.written.append(target)
