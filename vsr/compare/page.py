"""The comparison page: one HTML file, its script and styles inline, nothing fetched from anywhere.

`page.html` (package data) holds the markup, the styles and the player's script; this module fills in the
clips: a section each, with a table of means where there are figures, and everything the script needs as
one JSON block.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass
from importlib import resources

MEANS = (("psnr_y", "PSNR-Y (dB)", 2), ("ssim_y", "SSIM-Y", 4), ("tof", "tOF", 3))


@dataclass
class PageVideo:
    label: str
    role: str  # "source", "output" or "ground truth"
    src: str  # a data: URI, or a path relative to the page


@dataclass
class PageClip:
    """One section of the page: videos of one size and frame count, shown in sync."""

    title: str
    width: int
    height: int
    frames: int
    fps: float
    videos: list[PageVideo]
    description: str = ""
    figures: dict[str, dict[str, list[float | None]]] | None = None  # per output label: metric -> per frame
    means: dict[str, dict[str, float | None]] | None = None  # per output label: metric -> mean
    wipe: tuple[int, int] = (0, 1)  # the videos on the left and right of the wipe at first


def page_html(title: str, clips: list[PageClip], note: str = "") -> str:
    """The whole page as text."""
    template = resources.files("vsr.compare").joinpath("page.html").read_text(encoding="utf-8")
    sections = "\n".join(_section(index, clip) for index, clip in enumerate(clips))
    data = {"clips": [_clip_data(clip) for clip in clips]}
    values = {"TITLE": html.escape(title), "NOTE": html.escape(note), "SECTIONS": sections,
              "DATA": script_json(data)}
    # One pass: a label that reads '{{DATA}}' is text, never taken for a placeholder.
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda found: values[found.group(1)], template)


def script_json(data: object) -> str:
    """JSON safe inside a <script> element: '</script>' in a label must not end it."""
    text = json.dumps(_finite(data), separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _section(index: int, clip: PageClip) -> str:
    parts = [f'<section class="clip" id="clip-{index}">', f"<h2>{html.escape(clip.title)}</h2>"]
    if clip.description:
        parts.append(f'<p class="meta">{html.escape(clip.description)}</p>')
    parts.append('<div class="player"></div>')
    if clip.means:
        parts.append(_means_table(clip.means))
    parts.append("</section>")
    return "\n".join(parts)


def _means_table(means: dict[str, dict[str, float | None]]) -> str:
    head = "".join(f"<th>{name}</th>" for _, name, _ in MEANS)
    rows = []
    for label, values in means.items():
        cells = "".join(f"<td>{_number(values.get(key), digits)}</td>" for key, _, digits in MEANS)
        rows.append(f"<tr><td>{html.escape(label)}</td>{cells}</tr>")
    return (f'<table class="means"><tr><th>mean over the clip</th>{head}</tr>' + "".join(rows) + "</table>")


def _number(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"  # PSNR of frames identical to the ground truth
    return f"{value:.{digits}f}"


def _clip_data(clip: PageClip) -> dict[str, object]:
    return {"title": clip.title, "width": clip.width, "height": clip.height, "frames": clip.frames,
            "fps": clip.fps, "left": clip.wipe[0], "right": clip.wipe[1],
            "videos": [{"label": v.label, "role": v.role, "src": v.src} for v in clip.videos],
            "figures": clip.figures, "means": clip.means}


def _finite(value):
    """inf and nan have no JSON spelling: null, which the chart leaves as a gap and the table shows as '-'."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
