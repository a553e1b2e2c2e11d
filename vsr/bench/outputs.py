"""The files `vsr bench` writes, each checked before any work and moved into place only when complete."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from vsr.bench.report import csv_text, json_text, to_json, write_plots
from vsr.bench.runner import ModelResult
from vsr.compare.files import check_page_destination, linked_folder, write_page
from vsr.compare.sections import bench_sections
from vsr.io.destination import FolderOutput, check_destination, commit, discard, start_partial


PLOTS_FOLDER = FolderOutput("a plots folder", re.compile(r"(psnr_y_.+|fps_vs_resolution)\.png"))
FRAMES_FOLDER = FolderOutput("a bench frames folder (MODEL/CLIP/00000000.png)", re.compile(r"\d{8}\.png"), depth=2)


class BenchOutputs:
    """JSON, CSV, plots folder, SR frames folder and HTML page, any of them optional; nothing half-written
    survives.

    Use as a context manager around the benchmark: the frames folder fills up as the models run and is
    renamed into place at the end, or removed if the run fails. The page shows the SR frames, so with a page
    and no frames folder they go to a temporary folder, removed at the end.
    """

    def __init__(self, json_path: Path | None, csv_path: Path | None, plots_dir: Path | None,
                 frames_dir: Path | None, overwrite: bool, reads: tuple[Path | None, ...] = (),
                 html_path: Path | None = None) -> None:
        self.targets = {"json": json_path, "csv": csv_path, "plots": plots_dir, "frames": frames_dir,
                        "html": html_path}
        kinds = {"json": None, "csv": None, "plots": PLOTS_FOLDER, "frames": FRAMES_FOLDER}
        chosen = [target for target in self.targets.values() if target is not None]
        for name, target in self.targets.items():
            if target is not None:
                others = [other for other in chosen if other is not target]
                if html_path is not None and name != "html":
                    others.append(linked_folder(html_path))
                if name == "html":
                    check_page_destination(target, overwrite, reads=(*reads, *others))
                else:
                    check_destination(target, overwrite, reads=(*reads, *others), folder=kinds[name])
        self._scratch: Path | None = None
        if frames_dir is not None:
            self.frames_folder = start_partial(frames_dir)
        elif html_path is not None:
            self._scratch = self.frames_folder = Path(tempfile.mkdtemp(prefix="vsr-bench-frames-"))
        else:
            self.frames_folder = None
        self.written: list[Path] = []

    def __enter__(self) -> BenchOutputs:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            return
        if self.frames_folder is None or not self.frames_folder.exists():
            return
        if exc_type is None:
            commit(self.frames_folder, self.targets["frames"])
            self.written.append(self.targets["frames"])
        else:
            discard(self.frames_folder)

    def write(self, results: list[ModelResult], settings: dict[str, object], clips: list | None = None,
              progress: Callable[[str], None] | None = None,
              ground_truth: dict[str, list[float | None]] | None = None) -> None:
        """Every file asked for; the page needs the clips (`vsr.bench.clips.BenchClip`) the results are of,
        the JSON the ground truth's NIQE per clip where it was measured."""
        if self.targets["json"] is not None:
            self._write_text(self.targets["json"], json_text(to_json(results, settings, ground_truth)))
        if self.targets["csv"] is not None:
            self._write_text(self.targets["csv"], csv_text(results))
        if self.targets["plots"] is not None:
            folder = start_partial(self.targets["plots"])
            try:
                write_plots(folder, results, int(settings["scale"]))
                commit(folder, self.targets["plots"])
            except BaseException:
                discard(folder)
                raise
            self.written.append(self.targets["plots"])
        if self.targets["html"] is not None:
            self._write_page(self.targets["html"], results, clips or [], str(settings.get("gt", "")), progress)

    def _write_page(self, target: Path, results: list[ModelResult], clips: list, gt: str,
                    progress: Callable[[str], None] | None) -> None:
        plans = bench_sections(clips, results, self.frames_folder)
        title = f"vsr bench: {', '.join(result.name for result in results)} on {gt}"
        written = write_page(target, title, plans, progress=progress)
        self.written.append(target)
        if written.linked_folder is not None:
            self.written.append(written.linked_folder)

    def _write_text(self, target: Path, text: str) -> None:
        temporary = start_partial(target)
        try:
            temporary.write_text(text)
            commit(temporary, target)
        except BaseException:
            discard(temporary)
            raise
        self.written.append(target)
