"""The data model: what a recording is, what was said in it, and what a pipeline heard.

Audio is kept apart from what was said (as in lhotse): a :class:`Recording` describes a file,
a :class:`Reference` holds the truth, a :class:`Transcript` holds a pipeline's output.
All are frozen; times are seconds from the start of the recording.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """A time interval [start, end) in seconds."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True)
class Recording:
    """Where the audio is and what it is (as decoded: the original rate and channel count)."""

    id: str
    path: str
    duration_s: float
    sample_rate: int
    channels: int
    codec: str = ""


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float | None = None
    speaker: str | None = None


@dataclass(frozen=True)
class Segment:
    """A timed piece of text; ``start``/``end`` are ``None`` when the source carries no times."""

    start: float | None
    end: float | None
    text: str
    speaker: str | None = None
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Turn:
    """Who spoke when (a diarization turn)."""

    start: float
    end: float
    speaker: str


@dataclass(frozen=True)
class Transcript:
    """What a pipeline produced: timed, optionally speaker-labelled segments, plus formatted output.

    ``turns`` are the diarization's who-spoke-when; ``speaker_count_estimated`` says whether the number
    of speakers was estimated (True), given (False), or not applicable (None).
    """

    segments: tuple[Segment, ...] = ()
    language: str | None = None
    formatted: str | None = None
    summary: str | None = None
    turns: tuple[Turn, ...] = ()
    speaker_count_estimated: bool | None = None

    @property
    def speakers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.speaker for t in self.turns))

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)


@dataclass(frozen=True)
class Reference:
    """What was really said. An empty reference (no segments) means "no speech here".

    ``timed`` says whether segment times are real (STM, RTTM, SRT, VTT, JSON with times) or absent
    (plain text). ``has_text`` is False for formats that only carry who spoke when (RTTM).
    ``nonspeech`` holds regions the format marks explicitly as non-speech; :meth:`nonspeech_regions`
    adds the gaps between speech when the times are known.
    """

    segments: tuple[Segment, ...] = ()
    nonspeech: tuple[Span, ...] = ()
    timed: bool = False
    has_text: bool = True
    has_speakers: bool = False
    source: str = ""
    format: str = ""

    @property
    def text(self) -> str:
        segs = self.segments
        if self.timed:
            segs = tuple(sorted(segs, key=lambda s: (s.start or 0.0, s.end or 0.0)))
        return " ".join(s.text.strip() for s in segs if s.text.strip())

    @property
    def speakers(self) -> tuple[str, ...]:
        return tuple(sorted({s.speaker for s in self.segments if s.speaker}))

    def speech_spans(self) -> tuple[Span, ...]:
        """Merged speech regions (empty when the reference is untimed)."""
        if not self.timed:
            return ()
        spans = sorted(
            (Span(s.start, s.end) for s in self.segments if s.start is not None and s.end is not None),
            key=lambda s: s.start,
        )
        merged: list[Span] = []
        for span in spans:
            if merged and span.start <= merged[-1].end:
                merged[-1] = Span(merged[-1].start, max(merged[-1].end, span.end))
            else:
                merged.append(span)
        return tuple(merged)

    def nonspeech_regions(self, duration_s: float) -> tuple[Span, ...] | None:
        """Regions with no speech over ``[0, duration_s]``: the gaps between timed speech plus the regions
        the format marks as non-speech. ``None`` when the reference cannot tell (untimed text)."""
        if not self.timed:
            if not self.segments:
                return (Span(0.0, duration_s),)
            return self.nonspeech or None
        gaps: list[Span] = []
        cursor = 0.0
        for span in self.speech_spans():
            if span.start > cursor:
                gaps.append(Span(cursor, min(span.start, duration_s)))
            cursor = max(cursor, span.end)
        if cursor < duration_s:
            gaps.append(Span(cursor, duration_s))
        merged: list[Span] = []
        for span in sorted((*gaps, *self.nonspeech), key=lambda s: s.start):
            if merged and span.start <= merged[-1].end:
                merged[-1] = Span(merged[-1].start, max(merged[-1].end, span.end))
            else:
                merged.append(span)
        return tuple(g for g in merged if g.duration > 0)


@dataclass(frozen=True)
class StageTiming:
    """Wall and CPU seconds one stage took (model load is its own stage, ``load``)."""

    stage: str
    wall_s: float
    cpu_s: float | None = None
    detail: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Usage:
    """What a run consumed: audio seconds, model calls, tokens (``None`` where a backend has none)."""

    audio_s: float = 0.0
    calls: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
