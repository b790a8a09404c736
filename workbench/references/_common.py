"""Helpers shared by the reference readers: reading text, parsing seconds, tidying segments."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from pathlib import Path

from workbench.datamodel import Segment, Span
from workbench.errors import ReferenceFormatError

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def read_text(path: str | os.PathLike[str]) -> str:
    """The file's text as UTF-8 (a leading BOM dropped, line endings made ``\\n``)."""
    p = Path(path)
    if not p.exists():
        raise ReferenceFormatError(p, "file not found")
    if not p.is_file():
        raise ReferenceFormatError(p, "not a regular file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ReferenceFormatError(p, f"cannot read the file: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ReferenceFormatError(
            p,
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save the file as UTF-8",
            line=line,
        ) from exc
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def numbered_lines(text: str) -> Iterable[tuple[int, str]]:
    """``(line_number, line)`` pairs, 1-based, trailing whitespace removed."""
    return ((n, line.rstrip()) for n, line in enumerate(text.split("\n"), start=1))


def parse_seconds(token: str, source: str, line: int, what: str) -> float:
    """A non-negative, finite number of seconds, rounded to the millisecond."""
    if not _NUMBER.fullmatch(token):
        raise ReferenceFormatError(source, f"{what} {token!r} is not a number; expected seconds such as 12.34", line)
    value = float(token)
    if not math.isfinite(value):
        raise ReferenceFormatError(source, f"{what} {token!r} is not a finite number of seconds", line)
    if value < 0:
        raise ReferenceFormatError(source, f"{what} {token!r} is negative; times must be >= 0", line)
    return round(value, 3)


def check_order(start: float, end: float, source: str, line: int) -> None:
    """Raise when ``end`` comes before ``start``."""
    if end < start:
        raise ReferenceFormatError(source, f"end time {end:g} is before start time {start:g}", line)


def clean_text(text: str) -> str:
    """Whitespace runs (newlines included) collapsed to single spaces."""
    return " ".join(text.split())


def sort_segments(segments: Iterable[Segment]) -> tuple[Segment, ...]:
    """Timed segments in order of start (then end); the sort is stable."""
    return tuple(sorted(segments, key=lambda s: (s.start or 0.0, s.end or 0.0)))


def sort_spans(spans: Iterable[Span]) -> tuple[Span, ...]:
    return tuple(sorted(spans, key=lambda s: (s.start, s.end)))


def check_recording(seen: str | None, name: str, source: str, line: int) -> str:
    """The file's one recording id; raise when a line names a different recording."""
    if seen is not None and name != seen:
        raise ReferenceFormatError(
            source,
            f"recording {name!r} differs from {seen!r} on earlier lines; "
            "give one reference file per recording",
            line,
        )
    return name
