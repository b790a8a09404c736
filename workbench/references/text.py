"""Plain text: the whole transcript, untimed. An empty file means "no speech"."""

from __future__ import annotations

from workbench.datamodel import Reference, Segment

from ._common import clean_text


def parse_text(text: str, source: str) -> Reference:
    """One untimed segment holding all the text (whitespace collapsed), or none when blank."""
    body = clean_text(text)
    segments = (Segment(start=None, end=None, text=body),) if body else ()
    return Reference(segments=segments, timed=False, has_text=True, has_speakers=False, source=source, format="text")
