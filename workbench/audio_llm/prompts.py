"""Prompt templates for audio-LLM recipes, and parsing of what the model answers."""

from __future__ import annotations

import re

from workbench.datamodel import Segment, Span

TASKS = ("transcript", "formatted")

DEFAULT_SYSTEM = "You are a careful speech transcription assistant."
DEFAULT_PROMPTS = {
    "transcript": "Transcribe the audio verbatim, in the language spoken. Output only the transcript.",
    "formatted": (
        "Transcribe the audio verbatim. Start a new paragraph at every change of speaker and open it with the "
        "speaker's label (Speaker 1:, Speaker 2:, …). Add punctuation and capitalisation. Output only the "
        "transcript."
    ),
}
DEFAULT_SUMMARY = "Summarise what is said in the audio in two to four sentences."

_LABEL = re.compile(
    r"^\s*(?:\[(?P<ts>\d{1,2}(?::\d{2}){1,2}(?:\.\d+)?)(?:\s*[-–]+>?\s*(?P<te>\d{1,2}(?::\d{2}){1,2}(?:\.\d+)?))?\]\s*)?"
    r"(?:[*_]*(?P<spk>(?:Speaker|SPEAKER|Spk)[ _]?[\w]+|[A-Z][a-z]+(?: [A-Z][a-z]+)?)[*_]*\s*:\s*)?(?P<text>.*)$"
)


def _seconds(stamp: str | None) -> float | None:
    if not stamp:
        return None
    value = 0.0
    for part in stamp.split(":"):
        value = value * 60 + float(part)
    return value


def parse_output(text: str, window: Span) -> list[Segment]:
    """Lines of model output → segments. ``Speaker N:`` (or a name) opening a line gives the speaker;
    ``[mm:ss - mm:ss]`` timestamps, when the model writes them, give times relative to the window.
    Otherwise a segment spans its window (the model said nothing about when)."""
    segments: list[Segment] = []
    for line in (ln for ln in text.splitlines() if ln.strip()):
        m = _LABEL.match(line)
        body = (m.group("text") if m else line).strip()
        if not body:
            continue
        start, end = _seconds(m.group("ts")) if m else None, _seconds(m.group("te")) if m else None
        speaker = m.group("spk") if m else None
        if start is not None:
            start = round(window.start + start, 3)
            end = round(window.start + end, 3) if end is not None else None
        segments.append(Segment(start if start is not None else window.start,
                                end if end is not None else window.end, body, speaker))
    return segments


_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "「": "」"}


def wrapper_patterns(patterns: list[str] | None = None) -> list[re.Pattern]:
    """The compiled answer-wrapper patterns: ``patterns`` or the shipped ones (data/answer_wrappers.toml)."""
    if patterns is None:
        import tomllib
        from importlib.resources import files

        patterns = tomllib.loads(files("workbench").joinpath("data/answer_wrappers.toml").read_text("utf-8"))["patterns"]
    return [re.compile(p, re.IGNORECASE | re.DOTALL) for p in patterns]


def strip_wrappers(text: str, patterns: list[re.Pattern]) -> str:
    """``text`` without an answer wrapper around it: the first pattern that matches the whole text gives its
    ``body`` group; one pair of matching quotes around the body goes too. Text no pattern matches is returned
    as it is."""
    for pattern in patterns:
        m = pattern.fullmatch(text)
        if m and m.group("body") and m.group("body").strip():
            body = m.group("body").strip()
            if len(body) >= 2 and _QUOTES.get(body[0]) == body[-1]:
                body = body[1:-1].strip()
            elif len(body) >= 3 and _QUOTES.get(body[0]) == body[-2] and body[-1] in ".!?":
                body = body[1:-2].strip()  # "'…'." : the quote closed before the final full stop
            return body
    return text
