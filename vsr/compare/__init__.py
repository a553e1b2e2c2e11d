"""`vsr compare` and `vsr bench --html`: one self-contained HTML page to compare videos frame by frame.

media.py makes the browser videos, figures.py the per-frame scores (the bench's own), page.py the HTML,
files.py decides what is embedded and writes it all, sections.py says what goes on the page.
"""

DEFAULT_EMBED_LIMIT_MB = 20.0  # past this, videos go beside the page instead of inside it
