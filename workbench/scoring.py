"""Score one pipeline output against the references given for its recording.

- ``words``/``chars``: the final output (the formatted transcript when there is one, speaker labels
  removed; otherwise the ASR text) against the reference text.
- ``asr_words``: the ASR stage's text against the reference (equal to ``words`` without a formatter).
- ``drift``: the ASR text as reference, the formatted text as hypothesis — words a formatter dropped,
  changed or invented.
- ``der``: pyannote.metrics DER (no collar, and ±0.25 s), overlap scored; ``cpwer``: meeteval cpWER.
A missing output (a failed run) scores as empty: all deletions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from workbench.datamodel import Reference, Transcript
from workbench.metrics import ErrorCounts, score_text, word_errors
from workbench.metrics.diarization import DER_COLLARS, CpWer, DerCounts, cpwer, der
from workbench.hallucination.measures import Hallucination, Phrase, load_phrases, measure
from workbench.speakers import speaker_texts

GENERIC_LABEL = r"(?:SPEAKER[_ ]?\d+|Speaker\s+\w+|Unknown|SPEAKER)"


@dataclass(frozen=True)
class Scores:
    """Error counts against a reference; a field is ``None`` when it cannot be measured here."""

    words: ErrorCounts | None
    chars: ErrorCounts | None
    normalizer: str
    reference: str | None
    reference_format: str | None
    asr_words: ErrorCounts | None = None
    drift: ErrorCounts | None = None
    der: tuple[DerCounts, ...] = ()
    cpwer: CpWer | None = None
    speaker_reference: str | None = None
    hallucination: Hallucination | None = None


    @classmethod
    def from_json(cls, metrics: dict) -> "Scores | None":
        """The inverse of the ``metrics`` of a results.jsonl row (:meth:`workbench.result.RunResult.to_json`):
        None when the row holds no scores at all (a recipe that did not run). Character errors come back as one
        count (their rate and total are what was written; the split was never written)."""
        if not metrics or all(v is None for v in metrics.values()):
            return None
        words = ErrorCounts.from_json(metrics)
        chars = None if metrics.get("reference_chars") is None else ErrorCounts(
            substitutions=metrics.get("char_errors") or 0, reference_length=metrics["reference_chars"])
        halluc = metrics.get("hallucination")
        return cls(words, chars, metrics.get("normalizer") or "whisper-english", metrics.get("reference"),
                   metrics.get("reference_format"), ErrorCounts.from_json(metrics.get("asr")),
                   ErrorCounts.from_json(metrics.get("formatting_drift")),
                   tuple(DerCounts.from_json(d) for d in metrics.get("der") or ()),
                   CpWer.from_json(metrics.get("cpwer")), metrics.get("speaker_reference"),
                   Hallucination.from_json(halluc) if halluc is not None else None)


def strip_speaker_labels(text: str, speakers: tuple[str, ...] = ()) -> str:
    """Remove the ``LABEL:`` that opens a paragraph or line (known speakers and generic labels)."""
    names = "|".join(re.escape(s) for s in sorted(speakers, key=len, reverse=True) if s)
    label = f"(?:{names}|{GENERIC_LABEL})" if names else GENERIC_LABEL
    pattern = re.compile(rf"^[ \t]*[*_\[]*{label}[*_\]]*[ \t]*:[*_\]]*[ \t]*", re.MULTILINE)  # "**Speaker 1:**" too
    return pattern.sub("", text)


def final_text(transcript: Transcript) -> str:
    if transcript.formatted is None:
        return transcript.text
    return strip_speaker_labels(transcript.formatted, transcript.speakers)


def score(references: tuple[Reference, ...], transcript: Transcript | None, duration_s: float,
          normalizer: str = "whisper-english", *, diarizes: bool | None = None, formats: bool | None = None,
          failed: bool = False, phrases: tuple[Phrase, ...] | None = None) -> Scores | None:
    """``diarizes`` says whether the recipe has a diarization stage (so a failed run still scores its
    DER and cpWER, as everything missed); by default it is read off the transcript. ``failed`` marks a run
    that did not finish: its final output counts as empty (all deletions), while what its finished stages
    produced (``transcript`` may be partial) is still scored for the ASR stage and the speakers.
    ``formats`` says whether a formatting stage ran after ASR (drift is only meaningful then); cpWER is also
    scored for speaker-labelled output from a model that labels speakers itself (an audio-LLM)."""
    transcript = transcript or Transcript()
    phrases = phrases if phrases is not None else default_phrases()
    if not references:
        return Scores(None, None, normalizer, None, None,
                      hallucination=measure(final_text(transcript), transcript.words, None, "", phrases))
    text_ref = next((r for r in references if r.has_text), None)
    speaker_ref = next((r for r in references if r.has_speakers and r.timed and r.format == "rttm"), None) or next(
        (r for r in references if r.has_speakers and r.timed), None)
    main = text_ref or references[0]
    words = chars = asr = drift = None
    if text_ref is not None:
        words, chars = score_text(text_ref.text, "" if failed else final_text(transcript), normalizer)
        asr = word_errors(text_ref.text, transcript.text, normalizer)
    formatted = formats if formats is not None else transcript.formatted is not None
    if formatted and transcript.formatted is not None and not failed:
        drift = word_errors(transcript.text, final_text(transcript), normalizer)
    diarized = diarizes if diarizes is not None else transcript.speaker_count_estimated is not None
    labelled = diarized or any(seg.speaker for seg in transcript.segments)
    der_counts: tuple[DerCounts, ...] = ()
    cp = None
    if diarized and speaker_ref is not None:
        der_counts = tuple(der(speaker_ref, transcript.turns, duration_s, c) for c in DER_COLLARS)
    if labelled and text_ref is not None and text_ref.has_speakers:
        cp = cpwer(text_ref, speaker_texts(transcript), normalizer)
    timed_ref = next((r for r in (text_ref, speaker_ref) if r is not None and r.timed), None)
    if timed_ref is None and text_ref is not None and not text_ref.segments:
        timed_ref = text_ref  # an empty reference: the whole recording is non-speech
    nonspeech = timed_ref.nonspeech_regions(duration_s) if timed_ref is not None else None
    halluc = measure("" if failed else final_text(transcript), () if failed else transcript.words, nonspeech,
                     text_ref.text if text_ref else "", phrases, duration_s)
    return Scores(words, chars, normalizer, main.source, main.format, asr, drift, der_counts, cp,
                  speaker_ref.source if speaker_ref else None, halluc)


@lru_cache(maxsize=1)
def default_phrases() -> tuple[Phrase, ...]:
    return load_phrases()
