"""The data model as JSON, validated with pydantic at this edge of the system.

``{"segments": [{"start": 1.0, "end": 2.0, "speaker": "A", "text": "..."}], "nonspeech": [{"start": 0, "end": 1}]}``
``start``/``end`` are given on every segment or on none; ``speaker``, ``text``, ``words`` and
``nonspeech`` are optional (no ``text`` anywhere means a who-spoke-when reference, as from RTTM).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workbench.datamodel import Reference, Segment, Span, Word
from workbench.errors import ReferenceFormatError

Seconds = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_order(start: float | None, end: float | None) -> None:
    if start is not None and end is not None and end < start:
        raise ValueError(f"end {end:g} is before start {start:g}")


class SpanModel(_Model):
    start: Seconds
    end: Seconds

    @model_validator(mode="after")
    def _ordered(self) -> SpanModel:
        _check_order(self.start, self.end)
        return self


class WordModel(SpanModel):
    text: Annotated[str, Field(strict=True)]
    probability: Annotated[float, Field(ge=0, le=1, strict=True)] | None = None
    speaker: Annotated[str, Field(strict=True)] | None = None


class SegmentModel(_Model):
    start: Seconds | None = None
    end: Seconds | None = None
    text: Annotated[str, Field(strict=True)] | None = None
    speaker: Annotated[str, Field(strict=True)] | None = None
    words: list[WordModel] = []

    @model_validator(mode="after")
    def _times(self) -> SegmentModel:
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end, or neither")
        _check_order(self.start, self.end)
        return self


class ReferenceModel(_Model):
    segments: list[SegmentModel]
    nonspeech: list[SpanModel] = []


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _schema_problem(exc: ValidationError, limit: int = 3) -> str:
    errors = exc.errors(include_url=False)
    parts = [f"{_location(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in errors[:limit]]
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


def parse_json(text: str, source: str) -> Reference:
    """Parse and validate the JSON form of a reference."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReferenceFormatError(source, f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from exc
    if not isinstance(data, dict):
        raise ReferenceFormatError(source, "expected a JSON object with a 'segments' list")
    try:
        model = ReferenceModel.model_validate(data)
    except ValidationError as exc:
        raise ReferenceFormatError(source, _schema_problem(exc)) from exc
    timed_flags = [s.start is not None for s in model.segments]
    if any(timed_flags) and not all(timed_flags):
        with_times, without = timed_flags.index(True), timed_flags.index(False)
        raise ReferenceFormatError(
            source,
            f"segments[{without}] has no start/end but segments[{with_times}] has; "
            "give times on every segment or on none",
        )
    segments = [
        Segment(
            start=s.start,
            end=s.end,
            text=s.text or "",
            speaker=s.speaker,
            words=tuple(Word(w.start, w.end, w.text, w.probability, w.speaker) for w in s.words),
        )
        for s in model.segments
    ]
    timed = bool(segments) and all(timed_flags)
    if timed:
        segments.sort(key=lambda s: (s.start, s.end))
    return Reference(
        segments=tuple(segments),
        nonspeech=tuple(sorted((Span(n.start, n.end) for n in model.nonspeech), key=lambda s: (s.start, s.end))),
        timed=timed,
        has_text=not segments or any(s.text is not None for s in model.segments),
        has_speakers=any(s.speaker for s in segments),
        source=source,
        format="json",
    )


def reference_to_json(reference: Reference) -> dict[str, Any]:
    """The JSON form of ``reference`` (what :func:`parse_json` reads back)."""
    segments = []
    for s in reference.segments:
        item: dict[str, Any] = {}
        if s.start is not None and s.end is not None:
            item["start"], item["end"] = s.start, s.end
        if s.speaker is not None:
            item["speaker"] = s.speaker
        if reference.has_text:
            item["text"] = s.text
        if s.words:
            item["words"] = [
                {k: v for k, v in vars(w).items() if v is not None} for w in s.words
            ]
        segments.append(item)
    return {
        "segments": segments,
        "nonspeech": [{"start": n.start, "end": n.end} for n in reference.nonspeech],
    }
