"""Where the page and its videos go: inside the page while they are small, in a folder beside it otherwise.

A page of data URIs is one file to mail or attach; past the embed limit it would be slow to open (base64 is
4/3 of the bytes, all parsed at once), so those clips' videos go to `<page stem>_files/`, linked by relative
paths: the page and that folder travel together. As everywhere in vsr, nothing is half-written: videos are
encoded into a hidden folder, and the page and its folder are renamed into place only when complete.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from urllib.parse import quote

from vsr.compare import DEFAULT_EMBED_LIMIT_MB
from vsr.compare.media import PageSource, encode_for_browser
from vsr.compare.page import PageClip, PageVideo, page_html
from vsr.io.destination import (
    FolderOutput,
    check_destination,
    commit,
    discard,
    remove_stale_partials,
    start_partial,
)

MB = 2**20
LINKED_VIDEOS = FolderOutput("a comparison page's video folder", re.compile(r"\d{2,}_\d{2,}_[\w.+-]*\.mp4"))


@dataclass
class ClipPlan:
    """A section of the page before its videos are encoded."""

    title: str
    width: int
    height: int
    frames: int
    frame_rate: Fraction
    videos: list[PageSource]
    description: str = ""
    figures: dict[str, dict[str, list[float | None]]] | None = None
    means: dict[str, dict[str, float | None]] | None = None
    wipe: tuple[int, int] = (0, 1)


@dataclass
class PageWritten:
    page: Path
    page_bytes: int
    video_bytes: int  # of all the encoded videos, embedded or linked
    linked_folder: Path | None = None  # set when some clips' videos are beside the page
    linked_clips: list[str] = field(default_factory=list)


def linked_folder(page: Path) -> Path:
    """`compare.html` -> `compare_files`, beside it, as browsers name the folder of a saved page."""
    return page.with_name(f"{page.stem}_files")


def check_page_destination(page: Path, overwrite: bool, reads: Iterable[Path | None] = ()) -> None:
    """Before any work: the page, and its video folder in case the videos end up there, may be written.

    The folder is only needed past the embed limit, which the encoded sizes decide; one already there is
    refused now all the same (without --overwrite), rather than after the encoding.
    """
    reads = tuple(reads)
    check_destination(page, overwrite, reads)
    check_destination(linked_folder(page), overwrite, (*reads, page), folder=LINKED_VIDEOS)


def write_page(page: Path, title: str, plans: list[ClipPlan], embed_limit_mb: float = DEFAULT_EMBED_LIMIT_MB,
               note: str = "", progress: Callable[[str], None] | None = None) -> PageWritten:
    """Encode every clip's videos, embed the clips that fit in the limit (in order), link the others."""
    folder = linked_folder(page)
    for target in (page, folder):
        remove_stale_partials(target)
    staging = start_partial(folder)
    page_partial = start_partial(page)
    try:
        staging.mkdir()
        encoded = [_encode_clip(index, plan, staging, progress) for index, plan in enumerate(plans)]
        clips, embedded, linked = [], 0, []
        sizes = [sum(path.stat().st_size for path in paths) for paths in encoded]
        total = sum(sizes)
        for plan, paths, size in zip(plans, encoded, sizes):
            if embedded + size <= embed_limit_mb * MB:
                embedded += size
                sources = [_data_uri(path) for path in paths]
                for path in paths:
                    path.unlink()
            else:
                linked.append(plan.title)
                sources = [f"{quote(folder.name)}/{quote(path.name)}" for path in paths]
            videos = [PageVideo(video.label, video.role, src) for video, src in zip(plan.videos, sources)]
            clips.append(PageClip(plan.title, plan.width, plan.height, plan.frames, float(plan.frame_rate), videos,
                                  plan.description, plan.figures, plan.means, plan.wipe))
        if linked:
            note = f"{note} Videos of {len(linked)} clip(s) are in {folder.name}/ beside this page.".strip()
        text = page_html(title, clips, note)
        page_partial.write_text(text, encoding="utf-8")
        if linked:
            commit(staging, folder)
        else:
            discard(staging)
        commit(page_partial, page)
    except BaseException:
        discard(staging)
        discard(page_partial)
        raise
    return PageWritten(page, len(text.encode("utf-8")), total, folder if linked else None, linked)


def size_text(size: int) -> str:
    """Bytes as a person reads them: '38 KB', '4.2 MB'."""
    return f"{size / MB:.1f} MB" if size >= MB / 10 else f"{max(1, round(size / 1024))} KB"


def _encode_clip(index: int, plan: ClipPlan, folder: Path, progress: Callable[[str], None] | None) -> list[Path]:
    paths = []
    for number, video in enumerate(plan.videos):
        if progress is not None:
            progress(f"encoding {plan.title}: {video.label}")
        target = folder / f"{index:02d}_{number:02d}_{_slug(video.label)}.mp4"
        encode_for_browser(video, target, plan.width, plan.height, plan.frames, plan.frame_rate)
        paths.append(target)
    return paths


def _slug(label: str) -> str:
    """A label as a file name a URL and any file system take: 'frvsr+refine' stays, 'my clip/x4' does not."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", label).strip("-.")[:48]


def _data_uri(path: Path) -> str:
    return "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
