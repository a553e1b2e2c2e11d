"""Which metadata tags of a source the output carries: what a person wrote, not what a program measured.

Titles, comments holding a licence or an attribution, artists, dates and language tags describe the content and
stay true after upscaling. Encoder names, durations, bit rates and Matroska's statistics tags describe the old
encoding and would be wrong in the new file; the muxer writes its own where it wants them.
"""

from __future__ import annotations

from collections.abc import Mapping

STALE_TAGS = frozenset({
    "encoder", "duration", "major_brand", "minor_version", "compatible_brands", "handler_name", "vendor_id",
    "bps", "number_of_frames", "number_of_bytes", "rotate",  # rotation travels as a display matrix instead
})
STALE_PREFIXES = ("_statistics", "bps-", "duration-", "number_of_frames-", "number_of_bytes-")


def carried_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags worth copying into the output, keys as they were written (FFmpeg matches them without case)."""
    return {key: value for key, value in tags.items()
            if key.lower() not in STALE_TAGS and not key.lower().startswith(STALE_PREFIXES) and value != ""}
