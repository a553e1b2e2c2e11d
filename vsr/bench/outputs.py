"""The files `vsr bench` writes, each checked before any work and moved into place only when complete."""

from __future__ import annotations

import re
from pathlib import Path

from vsr.bench.report import csv_text, json_text, to_json, write_plots
from vsr.bench.runner import ModelResult
from vsr.io.destination import FolderOutput, check_destination, commit, discard, temporary_sibling


PLOTS_FOLDER = FolderOutput("a plots folder", re.compile(r"(psnr_y_.+|fps_vs_resolution)\.png"))
FRAMES_FOLDER = FolderOutput("a bench frames folder (MODEL/CLIP/00000000.png)", re.compile(r"\d{8}\.png"), depth=2)


class BenchOutputs:
    """JSON, CSV, plots folder and SR frames folder, any of them optional; nothing half-written survives.

    Use as a context manager around the benchmark: the frames folder fills up as the models run and is
    renamed into place at the end, or removed if the run fails.
    """

    def __init__(self, json_path: Path | None, csv_path: Path | None, plots_dir: Path | None,
                 frames_dir: Path | None, overwrite: bool, reads: tuple[Path | None, ...] = ()) -> None:
        self.targets = {"json": json_path, "csv": csv_path, "plots": plots_dir, "frames": frames_dir}
        kinds = {"json": None, "csv": None, "plots": PLOTS_FOLDER, "frames": FRAMES_FOLDER}
        chosen = [target for target in self.targets.values() if target is not None]
        for name, target in self.targets.items():
            if target is not None:
                others = [other for other in chosen if other is not target]
                check_destination(target, overwrite, reads=(*reads, *others), folder=kinds[name])
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
