"""WebVTT: a ``WEBVTT`` header, then cues timed ``[HH:]MM:SS.mmm --> ... [settings]``.

Voice tags (``<v Name>``, ``<v.loud Name>``) give the speaker; other tags are dropped and HTML
entities decoded. NOTE, STYLE and REGION blocks are skipped.

Read here rather than with ``webvtt-py`` (0.6.0, even with ``strict=True``; measured, and pinned by
tests/test_reference_libraries.py): it accepts a ``WEBVTTX`` header, a cue right under the header with no blank
line, and an end before its start; it drops a block with an identifier but no timing line without a word; its
errors quote the block but name no line; ``Caption.voice`` is the first voice only (``<v Ann>Hi</v> <v Bob>Hello</v>``
is all Ann's) and ``Caption.text`` leaves entities encoded (``&amp;``). On well-formed files the two agree on
every cue's times and text (tested).
"""

from __future__ import annotations

import html
import re

from workbench.datamodel import Reference, Segment
from workbench.errors import ReferenceFormatError

from ._common import clean_text, numbered_lines, sort_segments
from ._cues import blocks, hms, parse_cue

_TIMESTAMP = re.compile(r"(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})")
_TAG = re.compile(r"<([^>]*)>")
_VOICE = re.compile(r"v(?:\.[^\s>]*)?(?:\s+(.*))?", re.DOTALL)
_HEADER = re.compile(r"WEBVTT(?:[ \t].*)?")
_SKIPPED_BLOCKS = ("NOTE", "STYLE", "REGION")
EXAMPLE = "00:00:01.000 --> 00:00:02.500"


def _timestamp(token: str) -> float | None:
    m = _TIMESTAMP.fullmatch(token)
    return hms(*m.groups()) if m else None


def _is_skipped(first_line: str) -> bool:
    word = first_line.split(maxsplit=1)[0] if first_line.strip() else ""
    return word in _SKIPPED_BLOCKS


def voice_runs(text: str) -> list[tuple[str | None, str]]:
    """Cue text split into ``(speaker, text)`` runs by voice tags; other markup removed."""
    runs: list[tuple[str | None, list[str]]] = [(None, [])]
    pos = 0
    for m in _TAG.finditer(text):
        runs[-1][1].append(text[pos : m.start()])
        pos = m.end()
        tag = m.group(1).strip()
        voice = _VOICE.fullmatch(tag)
        if voice:
            name = clean_text(html.unescape(voice.group(1) or ""))
            runs.append((name or None, []))
        elif tag.lower() == "/v":
            runs.append((None, []))
    runs[-1][1].append(text[pos:])
    merged: list[tuple[str | None, str]] = []
    for speaker, parts in runs:
        body = clean_text(html.unescape("".join(parts)))
        if not body:
            continue
        if merged and merged[-1][0] == speaker:
            merged[-1] = (speaker, f"{merged[-1][1]} {body}")
        else:
            merged.append((speaker, body))
    return merged


def parse_vtt(text: str, source: str) -> Reference:
    """Parse WebVTT text; a cue with several voices gives one segment per voice (same times)."""
    found = list(blocks(numbered_lines(text)))
    if not found or found[0][0][0] != 1 or not _HEADER.fullmatch(found[0][0][1]):
        problem = "expected the first line to be 'WEBVTT' (optionally followed by a space and text)"
        raise ReferenceFormatError(source, problem, 1)
    header = found[0]
    for n, line in header[1:]:
        if "-->" in line:
            raise ReferenceFormatError(source, "expected a blank line between the WEBVTT header and the first cue", n)
    segments: list[Segment] = []
    for block in found[1:]:
        if _is_skipped(block[0][1]):
            continue
        cue = parse_cue(block, source, _timestamp, EXAMPLE)
        for speaker, body in voice_runs(" ".join(cue.text_lines)):
            segments.append(Segment(start=cue.start, end=cue.end, text=body, speaker=speaker))
    return Reference(
        segments=sort_segments(segments),
        timed=True,
        has_text=True,
        has_speakers=any(s.speaker for s in segments),
        source=source,
        format="vtt",
    )
