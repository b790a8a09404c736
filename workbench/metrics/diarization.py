"""Speaker metrics: DER with pyannote.metrics, cpWER with meeteval.

DER is reported twice, both with overlapped speech scored: with no collar (pyannote's default, the
strict figure) and with a ±0.25 s collar around reference boundaries (pyannote ``collar=0.5``, the
NIST-style figure). Components are kept in seconds so they add up across recordings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.datamodel import Reference, Turn
from workbench.metrics.errors import ErrorCounts
from workbench.metrics.normalize import normalize

#: pyannote.metrics ``collar`` values (total width: half before, half after each reference boundary)
DER_COLLARS = (0.0, 0.5)


@dataclass(frozen=True)
class DerCounts:
    """Seconds of each error kind over ``total`` seconds of reference speech (summable)."""

    collar: float
    skip_overlap: bool
    total: float = 0.0
    false_alarm: float = 0.0
    missed: float = 0.0
    confusion: float = 0.0
    #: the rate as a results.jsonl row holds it (computed before its seconds were rounded), set by from_json only
    written_rate: float | None = field(default=None, compare=False, repr=False)

    @property
    def rate(self) -> float | None:
        if self.written_rate is not None:
            return self.written_rate
        return None if self.total <= 0 else (self.false_alarm + self.missed + self.confusion) / self.total

    @classmethod
    def from_json(cls, row: dict) -> "DerCounts":
        """One entry of a results.jsonl row's ``metrics.der`` (seconds rounded to the millisecond there)."""
        return cls(row["collar_s"], bool(row.get("skip_overlap", False)), row.get("total_s") or 0.0,
                   row.get("false_alarm_s") or 0.0, row.get("missed_s") or 0.0, row.get("confusion_s") or 0.0,
                   row.get("der"))

    def __add__(self, other: "DerCounts") -> "DerCounts":
        if not isinstance(other, DerCounts) or (other.collar, other.skip_overlap) != (self.collar, self.skip_overlap):
            return NotImplemented
        return DerCounts(self.collar, self.skip_overlap, self.total + other.total, self.false_alarm + other.false_alarm,
                         self.missed + other.missed, self.confusion + other.confusion)


@dataclass(frozen=True)
class CpWer:
    """cpWER counts from meeteval, plus speaker-count mismatches (summable)."""

    words: ErrorCounts
    missed_speakers: int = 0
    falarm_speakers: int = 0

    @classmethod
    def from_json(cls, row: dict | None) -> "CpWer | None":
        """A results.jsonl row's ``metrics.cpwer``; None when not measured."""
        words = ErrorCounts.from_json(row)
        if words is None:
            return None
        return cls(words, row.get("missed_speakers") or 0, row.get("falarm_speakers") or 0)

    def __add__(self, other: "CpWer") -> "CpWer":
        if not isinstance(other, CpWer):
            return NotImplemented
        return CpWer(self.words + other.words, self.missed_speakers + other.missed_speakers,
                     self.falarm_speakers + other.falarm_speakers)


def _annotation(turns):
    from pyannote.core import Annotation, Segment

    ann = Annotation()
    for i, (start, end, speaker) in enumerate(turns):
        if end > start:
            ann[Segment(start, end), i] = speaker
    return ann


def reference_turns(reference: Reference) -> list[tuple[float, float, str]]:
    return [(s.start, s.end, s.speaker or "unknown") for s in reference.segments if s.start is not None and s.end is not None]


def der(reference: Reference, turns: tuple[Turn, ...], duration_s: float, collar: float, skip_overlap: bool = False) -> DerCounts:
    """DER of hypothesis turns against a timed, speaker-labelled reference, over the whole recording."""
    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    metric = DiarizationErrorRate(collar=collar, skip_overlap=skip_overlap)
    details = metric(
        _annotation(reference_turns(reference)),
        _annotation([(t.start, t.end, t.speaker) for t in turns]),
        uem=Timeline([Segment(0.0, duration_s)]),
        detailed=True,
    )
    return DerCounts(collar, skip_overlap, details["total"], details["false alarm"], details["missed detection"], details["confusion"])


def cpwer(reference: Reference, hypothesis: dict[str, str], normalizer: str = "whisper-english") -> CpWer:
    """Concatenated minimum-permutation WER: each reference speaker's words against the best-matching
    hypothesis speaker's, after Whisper normalisation of every stream."""
    from meeteval.wer.wer.cp import cp_word_error_rate

    ref: dict[str, list[str]] = {}
    for seg in sorted(reference.segments, key=lambda s: (s.start or 0.0)):
        ref.setdefault(seg.speaker or "unknown", []).append(seg.text)
    ref_text = {spk: normalize(" ".join(parts), normalizer) for spk, parts in ref.items()}
    hyp_text = {spk: normalize(text, normalizer) for spk, text in hypothesis.items()}
    result = cp_word_error_rate(ref_text, hyp_text, reference_sort=False, hypothesis_sort=False)
    hits = result.length - result.substitutions - result.deletions
    return CpWer(
        ErrorCounts(result.substitutions, result.deletions, result.insertions, hits, result.length),
        result.missed_speaker,
        result.falarm_speaker,
    )
