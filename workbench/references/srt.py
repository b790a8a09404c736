"""SubRip (SRT): numbered cues timed ``HH:MM:SS,mmm --> HH:MM:SS,mmm``.

Read here rather than with the ``srt`` library (3.5.3; measured, and pinned by tests/test_reference_libraries.py):
a reference must be refused, with its line, where it is malformed, and ``srt.parse`` accepts ``00:00:03`` (no
milliseconds) as 3 s, ``00:61:00,000`` as 61 minutes and an end before its start, takes a stray text block after a
blank line as more text of the cue before it, and reports the rest as character offsets with the unmatched text,
not what is wrong. On well-formed files the two agree cue for cue (tested).
"""

from __future__ import annotations

import re

from workbench.datamodel import Reference, Segment

from ._common import clean_text, numbered_lines, sort_segments
from ._cues import blocks, hms, parse_cue

_TIMESTAMP = re.compile(r"(\d+):([0-5]\d):([0-5]\d)[,.](\d{3})")
# Formatting SubRip players understand: <i>, <b>, <u>, <s>, <font ...>, and ASS overrides like {\an8}.
_MARKUP = re.compile(r"</?(?:i|b|u|s|font)\b[^>]*>|\{\\[^}]*\}", re.IGNORECASE)
EXAMPLE = "00:00:01,000 --> 00:00:02,500"


def _timestamp(token: str) -> float | None:
    m = _TIMESTAMP.fullmatch(token)
    return hms(*m.groups()) if m else None


def parse_srt(text: str, source: str) -> Reference:
    """Parse SRT text; cues without text are skipped, multi-line text joined with spaces."""
    segments: list[Segment] = []
    for block in blocks(numbered_lines(text)):
        cue = parse_cue(block, source, _timestamp, EXAMPLE, is_identifier=str.isdigit)
        body = clean_text(_MARKUP.sub("", " ".join(cue.text_lines)))
        if body:
            segments.append(Segment(start=cue.start, end=cue.end, text=body))
    return Reference(
        segments=sort_segments(segments),
        timed=True,
        has_text=True,
        has_speakers=False,
        source=source,
        format="srt",
    )
