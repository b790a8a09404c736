"""NIST RTTM: ``TYPE file chan start duration ortho stype name conf [slat]``; SPEAKER lines are turns.

Read here rather than with meeteval.io's ``RTTM`` (meeteval 0.4.3; measured, and pinned by
tests/test_reference_libraries.py): its ``RTTMLine.parse`` checks the field count with an ``assert`` (an
``AssertionError`` naming no line, and no check at all under ``python -O``), fails on the other RTTM types' ``<NA>``
times (``SPKR-INFO``: ``decimal.InvalidOperation``), rejects a valid line whose channel is not a number and whose
start is a whole number, and accepts negative durations; its SegLST view takes every line for a speaker turn
(NON-SPEECH and NOSCORE too). On the files it does read, it and this reader agree (tested on the bundled
sample); the writer (:mod:`.writers`) uses it.
"""

from __future__ import annotations

from workbench.datamodel import Reference, Segment, Span
from workbench.errors import ReferenceFormatError

from ._common import check_recording, numbered_lines, parse_seconds, sort_segments, sort_spans

NONSPEECH_TYPES = frozenset({"NON-SPEECH", "NOSCORE"})
IGNORED_TYPES = frozenset(
    {"SEGMENT", "NO_RT_METADATA", "LEXEME", "NON-LEX", "FILLER", "EDIT", "IP", "SU", "CB", "A/P", "SPKR-INFO"}
)
KNOWN_TYPES = NONSPEECH_TYPES | IGNORED_TYPES | {"SPEAKER"}


def parse_rttm(text: str, source: str) -> Reference:
    """Parse RTTM text: speaker turns (overlaps kept, no text) plus NON-SPEECH/NOSCORE regions."""
    segments: list[Segment] = []
    nonspeech: list[Span] = []
    recording: str | None = None
    for n, line in numbered_lines(text):
        stripped = line.strip()
        if not stripped or stripped.startswith(";;"):
            continue
        fields = stripped.split()
        kind = fields[0].upper()
        if kind not in KNOWN_TYPES:
            raise ReferenceFormatError(
                source, f"unknown RTTM type {fields[0]!r}; expected one of {', '.join(sorted(KNOWN_TYPES))}", n
            )
        if kind in IGNORED_TYPES:
            continue
        needed = 8 if kind == "SPEAKER" else 5
        if len(fields) < needed:
            raise ReferenceFormatError(
                source,
                f"{kind} line has {len(fields)} field(s); expected "
                "'TYPE file channel start duration <NA> <NA> speaker <NA> <NA>'",
                n,
            )
        recording = check_recording(recording, fields[1], source, n)
        start = parse_seconds(fields[3], source, n, "start time")
        duration = parse_seconds(fields[4], source, n, "duration")
        end = round(start + duration, 3)
        if kind == "SPEAKER":
            speaker = fields[7]
            if speaker.upper() == "<NA>":
                raise ReferenceFormatError(source, "SPEAKER line has no speaker name (field 8 is <NA>)", n)
            segments.append(Segment(start=start, end=end, text="", speaker=speaker))
        else:
            nonspeech.append(Span(start, end))
    return Reference(
        segments=sort_segments(segments),
        nonspeech=sort_spans(nonspeech),
        timed=True,
        has_text=False,
        has_speakers=True,
        source=source,
        format="rttm",
    )
