"""Measures of text invented where nobody spoke.

- words in non-speech: hypothesis words whose time falls inside a reference non-speech region (shrunk by a
  collar at each edge, so words at speech boundaries are not blamed), per hour of non-speech;
- stock phrases: known hallucination strings ("thank you for watching" …), flagged by name — only where the
  reference does not say them at that place (a "thank you" that was really said is not a hallucination): the
  word alignment against the reference, and, when both sides are timed, the words' times (a word in reference
  non-speech was not said there, whatever it aligns to);
- repetition loops: n-grams repeated beyond what the reference contains, and the longest run of one n-gram
  repeated back to back.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from workbench.datamodel import Span, Word
from workbench.errors import BadInputError
from workbench.metrics.normalize import normalize

DEFAULT_PHRASES = Path(__file__).resolve().parent.parent / "data" / "hallucination_phrases.toml"
NONSPEECH_COLLAR_S = 0.25


@dataclass(frozen=True)
class Phrase:
    name: str
    words: tuple[str, ...]
    whole: bool = False  # only a match when it is the entire output


def load_phrases(extra: str | os.PathLike | None = None) -> tuple[Phrase, ...]:
    """The shipped phrase list, plus the rows of ``extra`` (a TOML file of ``[[phrase]]`` rows)."""
    phrases: list[Phrase] = []
    for path in [DEFAULT_PHRASES] + ([Path(extra)] if extra else []):
        try:
            with open(path, "rb") as f:
                rows = tomllib.load(f).get("phrase", [])
        except FileNotFoundError:
            raise BadInputError(f"phrase list {path} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise BadInputError(f"{path}: not valid TOML: {exc}") from None
        for i, row in enumerate(rows, 1):
            if not isinstance(row, dict) or not row.get("name") or not row.get("text"):
                raise BadInputError(f"{path}: [[phrase]] number {i} needs name = \"...\" and text = \"...\"")
            words = tuple(normalize(str(row["text"])).split())
            if words:
                phrases.append(Phrase(str(row["name"]), words, bool(row.get("whole", False))))
    return tuple(phrases)


def _said_in_reference(words: list[str], reference: str) -> list[bool]:
    """For each hypothesis word: whether the word alignment (jiwer, Whisper-normalised texts) matches it to the
    same word in the reference. All False without a reference."""
    ref = normalize(reference or "")
    if not ref.split() or not words:
        return [False] * len(words)
    import jiwer

    out = jiwer.process_words(ref, " ".join(words))
    said = [False] * len(out.hypotheses[0])
    for chunk in out.alignments[0]:
        if chunk.type == "equal":
            said[chunk.hyp_start_idx:chunk.hyp_end_idx] = [True] * (chunk.hyp_end_idx - chunk.hyp_start_idx)
    return said


def stock_phrases(text: str, phrases: tuple[Phrase, ...], reference: str = "") -> list[str]:
    """Names of the phrases found in ``text`` (Whisper-normalised, whole words), each once, in list order.
    With a ``reference``, an occurrence whose every word aligns to the same word of the reference (it was
    said there) does not count; inserted or substituted words do. Without one (a probe clip), every
    occurrence counts."""
    words = normalize(text).split()
    return _phrases_found(words, _said_in_reference(words, reference), phrases)


def _timed_not_said(tokens: list[str], said: list[bool], words: tuple[Word, ...], inside: list[Word]) -> list[bool]:
    """``said`` with the tokens of words lying in reference non-speech (``inside``) set to False — when the
    timed words are the text's words (not, say, a formatter's rewrite of them); ``said`` unchanged otherwise."""
    timed = [(t, w) for w in words for t in normalize(w.text).split()]
    if [t for t, _ in timed] != tokens:
        return said
    silent = {id(w) for w in inside}
    return [s and id(w) not in silent for s, (_, w) in zip(said, timed)]


def _phrases_found(words: list[str], said: list[bool], phrases: tuple[Phrase, ...]) -> list[str]:
    found = []
    for p in phrases:
        n = len(p.words)
        starts = [0] if p.whole and tuple(words) == p.words else [] if p.whole else [
            i for i in range(len(words) - n + 1) if tuple(words[i : i + n]) == p.words]
        if any(not all(said[i : i + n]) for i in starts):
            found.append(p.name)
    return found


def _scored_regions(nonspeech: tuple[Span, ...], collar_s: float, duration_s: float | None) -> list[Span]:
    """Non-speech regions shrunk by the collar at each edge that borders speech (not at the recording's
    own start or end, where nobody's speech can blur the boundary)."""
    out = []
    for s in nonspeech:
        start = s.start if s.start <= 1e-6 else s.start + collar_s
        end = s.end if duration_s is not None and s.end >= duration_s - 1e-6 else s.end - collar_s
        if end > start:
            out.append(Span(start, end))
    return out


def words_in_nonspeech(words: tuple[Word, ...], nonspeech: tuple[Span, ...], collar_s: float = NONSPEECH_COLLAR_S,
                       duration_s: float | None = None) -> list[Word]:
    """Words whose midpoint lies inside a non-speech region shrunk by ``collar_s`` at each speech edge."""
    inner = _scored_regions(nonspeech, collar_s, duration_s)
    out = []
    for w in words:
        if not loop_words(w.text):  # punctuation alone (". .") is not a word
            continue
        mid = (w.start + w.end) / 2
        if any(s.start <= mid <= s.end for s in inner):
            out.append(w)
    return out


def scored_nonspeech_s(nonspeech: tuple[Span, ...], collar_s: float = NONSPEECH_COLLAR_S,
                       duration_s: float | None = None) -> float:
    return sum(s.duration for s in _scored_regions(nonspeech, collar_s, duration_s))


@dataclass(frozen=True)
class Repetition:
    """``excess``: back-to-back repeats of n-grams beyond the reference's own back-to-back repeats; ``longest_run``: the most
    times one n-gram (1–4 words) follows itself back to back, where that is more than the same n-gram's
    longest run in the reference (1 when no run goes beyond); ``example``: that n-gram ("" when none)."""

    excess: int
    longest_run: int
    example: str


def loop_words(text: str) -> list[str]:
    """Whisper-normalised words with the fillers (hmm, mm, uh, um …) kept: the English normaliser drops
    them, which would hide a model looping "mm mm mm" on silence."""
    return _filler_keeping_normalizer()(text or "").split()


@lru_cache(maxsize=1)
def _filler_keeping_normalizer():
    from whisper_normalizer.english import EnglishTextNormalizer

    normalizer = EnglishTextNormalizer()
    normalizer.ignore_patterns = r"(?!)"  # matches nothing
    return normalizer


def _runs(words: list[str]):
    """Every position where an n-gram (1–4 words) is followed by itself: (start, size, times in a row,
    whether the run starts here rather than inside a longer run). Linear in the length for each n."""
    for size in range(1, 5):
        last = len(words) - size
        # streak[i]: how many positions from i on satisfy words[k] == words[k + size] in a row
        streak = [0] * (last + 2)
        for i in range(last - 1, -1, -1):
            streak[i] = streak[i + 1] + 1 if words[i] == words[i + size] else 0
        for i in range(last + 1):
            run = 1 + streak[i] // size
            if run > 1:
                yield i, size, run, i < size or words[i - size : i] != words[i : i + size]


def _longest_runs(words: list[str]) -> dict[tuple[str, ...], int]:
    """For each n-gram, the most times it follows itself back to back (only runs over 1)."""
    runs: dict[tuple[str, ...], int] = {}
    for i, size, run, _ in _runs(words):
        gram = tuple(words[i : i + size])
        if run > runs.get(gram, 1):
            runs[gram] = run
    return runs


def _loops(words: list[str]) -> list[tuple[tuple[str, ...], int]]:
    """Back-to-back repeats: (n-gram, times in a row) for maximal runs of 2+, non-overlapping, longest spans
    first (so "mm mm mm mm" is one run of "mm", not also two of "mm mm")."""
    candidates = [(run * size, i, size, run) for i, size, run, starts in _runs(words) if starts]
    taken: list[tuple[int, int]] = []
    loops = []
    for span, i, size, run in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if all(i + span <= a or b <= i for a, b in taken):
            taken.append((i, i + span))
            loops.append((tuple(words[i : i + size]), run))
    return loops


def repetition(hypothesis: str, reference: str = "") -> Repetition:
    """Loops: n-grams (1–4 words) repeated back to back, beyond how often the same n-gram repeats back to
    back in the reference. Repeats spread across a recording (a phrase said twice, minutes apart) are not
    loops and do not count."""
    hyp = loop_words(hypothesis)
    ref_runs = _longest_runs(loop_words(reference)) if reference else {}
    excess = sum(max(0, run - ref_runs.get(gram, 1)) for gram, run in _loops(hyp))
    best, example = 1, ""
    for gram, run in _longest_runs(hyp).items():  # a run counts only beyond the same n-gram's run in the reference
        if run > ref_runs.get(gram, 1) and run > best:
            best, example = run, " ".join(gram)
    return Repetition(excess, best, example)


@dataclass(frozen=True)
class Hallucination:
    """Everything measured for one output (fields are None when the inputs needed are missing)."""

    nonspeech_words: int | None
    nonspeech_s: float | None
    stock_phrases: tuple[str, ...]
    repetition: Repetition
    nonspeech_examples: tuple[str, ...] = ()
    #: words per hour of non-speech as a results.jsonl row holds it (rounded), set by from_json only
    written_per_hour: float | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_json(cls, row: dict) -> "Hallucination":
        """A results.jsonl row's ``metrics.hallucination`` (rows older than the repetition measures: ``None``
        counts, not measured)."""
        return cls(row.get("nonspeech_words"), row.get("nonspeech_s"), tuple(row.get("stock_phrases") or ()),
                   Repetition(row.get("repeated_ngrams_beyond_reference"), row.get("longest_repeat_run"),
                              row.get("repeat_example") or ""),
                   tuple(row.get("nonspeech_examples") or ()), row.get("words_per_hour_nonspeech"))

    @property
    def words_per_hour_nonspeech(self) -> float | None:
        if self.written_per_hour is not None:
            return self.written_per_hour
        if self.nonspeech_words is None or not self.nonspeech_s:
            return None
        return self.nonspeech_words / (self.nonspeech_s / 3600)


def measure(text: str, words: tuple[Word, ...], nonspeech: tuple[Span, ...] | None, reference_text: str,
            phrases: tuple[Phrase, ...], duration_s: float | None = None) -> Hallucination:
    """All measures for one output. Words in non-speech need word timestamps and reference non-speech."""
    inside: list[Word] = []
    if nonspeech is not None and words:
        inside = words_in_nonspeech(words, nonspeech, duration_s=duration_s)
        count, seconds = len(inside), scored_nonspeech_s(nonspeech, duration_s=duration_s)
        examples = tuple(w.text for w in inside[:20])
    elif nonspeech is not None and not loop_words(text):
        count, seconds, examples = 0, scored_nonspeech_s(nonspeech, duration_s=duration_s), ()  # no output
    else:
        count, seconds, examples = None, None, ()
    tokens = normalize(text).split()
    said = _said_in_reference(tokens, reference_text)
    if inside and any(said):
        said = _timed_not_said(tokens, said, words, inside)
    return Hallucination(count, seconds, tuple(_phrases_found(tokens, said, phrases)), repetition(text, reference_text),
                         examples)
