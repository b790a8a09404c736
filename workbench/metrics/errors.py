"""Error counts that sum: corpus WER = Σ(S+D+I) / ΣN, never a mean of per-file rates.

Modelled on meeteval's ``ErrorRate``. An empty hypothesis (or a failed run) against a non-empty
reference scores as all deletions; an empty reference makes the rate undefined (``None``) while
insertions still count.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.metrics.normalize import normalize


@dataclass(frozen=True)
class ErrorCounts:
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    hits: int = 0
    reference_length: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float | None:
        """Errors / reference length; ``None`` when the reference is empty (undefined, not 0)."""
        if self.reference_length == 0:
            return None
        return self.errors / self.reference_length

    @classmethod
    def from_json(cls, row: dict | None) -> "ErrorCounts | None":
        """Counts as results.jsonl holds them (``substitutions``, ``deletions``, ``insertions``, ``hits`` when
        written, ``reference_words``); None when the row has none (not measured)."""
        if not row or row.get("reference_words") is None:
            return None
        return cls(row.get("substitutions") or 0, row.get("deletions") or 0, row.get("insertions") or 0,
                   row.get("hits") or 0, row["reference_words"])

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        if not isinstance(other, ErrorCounts):
            return NotImplemented
        return ErrorCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.hits + other.hits,
            self.reference_length + other.reference_length,
        )

    def __radd__(self, other: object) -> "ErrorCounts":
        if other == 0:  # lets sum() start from its default 0
            return self
        return self.__add__(other)  # type: ignore[arg-type]


def _align(reference: list[str], hypothesis: list[str], *, chars: bool) -> ErrorCounts:
    if not reference:
        return ErrorCounts(insertions=len(hypothesis))
    if not hypothesis:
        return ErrorCounts(deletions=len(reference), reference_length=len(reference))
    import jiwer

    if chars:
        out = jiwer.process_characters(" ".join(reference), " ".join(hypothesis))
    else:
        out = jiwer.process_words(" ".join(reference), " ".join(hypothesis))
    return ErrorCounts(
        out.substitutions, out.deletions, out.insertions, out.hits, out.substitutions + out.deletions + out.hits
    )


def word_errors(reference: str, hypothesis: str, normalizer: str = "whisper-english") -> ErrorCounts:
    """Word-level counts from jiwer's alignment of the normalised texts."""
    return _align(normalize(reference, normalizer).split(), normalize(hypothesis, normalizer).split(), chars=False)


def char_errors(reference: str, hypothesis: str, normalizer: str = "whisper-english") -> ErrorCounts:
    """Character-level counts (spaces included, as jiwer's CER) of the normalised texts."""
    ref, hyp = normalize(reference, normalizer), normalize(hypothesis, normalizer)
    if not ref:
        return ErrorCounts(insertions=len(hyp))
    if not hyp:
        return ErrorCounts(deletions=len(ref), reference_length=len(ref))
    return _align(ref.split(), hyp.split(), chars=True)


def score_text(reference: str, hypothesis: str, normalizer: str = "whisper-english") -> tuple[ErrorCounts, ErrorCounts]:
    """(word counts, character counts) for one recording."""
    return word_errors(reference, hypothesis, normalizer), char_errors(reference, hypothesis, normalizer)
