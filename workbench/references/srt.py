"""SubRip (SRT): numbered cues timed ``HH:MM:SS,mmm --> HH:MM:SS,mmm``."""

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
