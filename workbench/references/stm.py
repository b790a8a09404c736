"""NIST STM: ``filename channel speaker start end [<label>] transcript``.

Read here rather than with meeteval.io's ``STM`` (meeteval 0.4.3, the latest; measured, and pinned by
tests/test_reference_libraries.py): its ``STMLine.parse`` rejects valid lines whose channel is not a number and
whose start time is a whole number (``rec A Bob 3 4 hi``: it tests the start time where it means the channel and
calls ``int("A")``); ``STM.parse`` names no line, and a short line escapes as a bare unpacking ``ValueError``; it
accepts ``nan``, negative times and an end before the start; it leaves the ``<label>`` field in the transcript.
On the files it does read, it and this reader agree line for line (tested on the bundled sample), and the writers
(:mod:`.writers`) write through meeteval.io.
"""

from __future__ import annotations

from workbench.datamodel import Reference, Segment, Span
from workbench.errors import ReferenceFormatError

from ._common import (
    check_order,
    check_recording,
    clean_text,
    numbered_lines,
    parse_seconds,
    sort_segments,
    sort_spans,
)

NONSPEECH_SPEAKERS = frozenset({"inter_segment_gap", "excluded_region"})
IGNORE_MARK = "IGNORE_TIME_SEGMENT_IN_SCORING"


def parse_stm(text: str, source: str) -> Reference:
    """Parse STM text; non-speech lines (gaps, excluded regions, ignored time) go to ``nonspeech``."""
    segments: list[Segment] = []
    nonspeech: list[Span] = []
    recording: str | None = None
    for n, line in numbered_lines(text):
        stripped = line.strip()
        if not stripped or stripped.startswith(";;"):
            continue
        fields = stripped.split(maxsplit=5)
        if len(fields) < 5:
            expected = "'filename channel speaker start end [<label>] transcript'"
            raise ReferenceFormatError(source, f"expected {expected}, got {len(fields)} field(s)", n)
        recording = check_recording(recording, fields[0], source, n)
        speaker = fields[2]
        start = parse_seconds(fields[3], source, n, "start time")
        end = parse_seconds(fields[4], source, n, "end time")
        check_order(start, end, source, n)
        rest = fields[5] if len(fields) > 5 else ""
        if rest.startswith("<"):
            close = rest.find(">")
            if close < 0:
                raise ReferenceFormatError(source, "label field starts with '<' but has no closing '>'", n)
            rest = rest[close + 1 :]
        transcript = clean_text(rest)
        if speaker.lower() in NONSPEECH_SPEAKERS or transcript.upper() == IGNORE_MARK:
            nonspeech.append(Span(start, end))
        else:
            segments.append(Segment(start=start, end=end, text=transcript, speaker=speaker))
    return Reference(
        segments=sort_segments(segments),
        nonspeech=sort_spans(nonspeech),
        timed=True,
        has_text=True,
        has_speakers=True,
        source=source,
        format="stm",
    )
