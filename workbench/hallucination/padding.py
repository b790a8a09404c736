"""Padding delta: splice digital silence into a recording and count the extra insertions it causes.

For models that give no timestamps, words "in non-speech" cannot be located; the padding delta still shows
what silence does to them: insertions on the padded recording minus insertions on the original.
A pad is ``SECONDS@WHERE`` with WHERE = ``start``, ``end``, ``middle`` (the reference's non-speech gap nearest
the middle) or a time in seconds that falls outside reference speech.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.datamodel import Reference, Span
from workbench.errors import BadInputError


@dataclass(frozen=True)
class Pad:
    seconds: float
    where: str  # "start" | "end" | "middle" | a number of seconds

    def __str__(self) -> str:
        return f"{self.seconds:g}@{self.where}"


def parse_pads(spec: str) -> list[Pad]:
    pads = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        seconds, _, where = part.partition("@")
        try:
            value = float(seconds)
        except ValueError:
            value = -1.0
        where = where.strip() or "end"
        if value <= 0 or (where not in ("start", "end", "middle") and not _is_number(where)):
            raise BadInputError(f"bad pad {part!r}: write SECONDS@WHERE, WHERE = start, end, middle or a time in seconds "
                                "(e.g. 30@start,30@end,10@middle)")
        pads.append(Pad(value, where))
    if not pads:
        raise BadInputError("no pads given (e.g. --pad 30@start,30@end)")
    return pads


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def insertion_point(pad: Pad, reference: Reference, duration_s: float) -> float:
    if pad.where == "start":
        return 0.0
    if pad.where == "end":
        return duration_s
    if not reference.timed:
        raise BadInputError(f"pad {pad}: only start and end work with an untimed reference ({reference.source})")
    speech = reference.speech_spans()
    if pad.where == "middle":
        gaps = reference.nonspeech_regions(duration_s) or ()
        if not gaps:
            raise BadInputError(f"pad {pad}: the reference has no non-speech gap to put it in")
        gap = min(gaps, key=lambda g: abs((g.start + g.end) / 2 - duration_s / 2))
        return round((gap.start + gap.end) / 2, 3)
    t = float(pad.where)
    if not 0 <= t <= duration_s or any(s.start < t < s.end for s in speech):
        raise BadInputError(f"pad {pad}: {t:g} s is outside the recording or inside reference speech")
    return t


def pad_recording(samples: np.ndarray, reference: Reference, pads: list[Pad]) -> tuple[np.ndarray, Reference, list[float]]:
    """The padded samples, the reference shifted to match, and where (in the original) each pad went."""
    duration = len(samples) / SAMPLE_RATE
    points = sorted((insertion_point(p, reference, duration), p.seconds) for p in pads)
    pieces, cursor, shift_at = [], 0, []
    for t, seconds in points:
        cut = int(round(t * SAMPLE_RATE))
        pieces += [samples[cursor:cut], np.zeros(int(round(seconds * SAMPLE_RATE)), np.float32)]
        cursor = cut
        shift_at.append((t, seconds))
    pieces.append(samples[cursor:])

    def moved(x: float | None, *, is_end: bool) -> float | None:
        """Original time → padded time. Silence inserted exactly at a start comes before it; at an end, after."""
        if x is None:
            return None
        return round(x + sum(sec for t, sec in shift_at if (t < x if is_end else t <= x)), 3)

    segments = tuple(replace(s, start=moved(s.start, is_end=False), end=moved(s.end, is_end=True)) for s in reference.segments)
    nonspeech = tuple(Span(moved(n.start, is_end=False), moved(n.end, is_end=True)) for n in reference.nonspeech)
    return np.concatenate(pieces).astype(np.float32), replace(reference, segments=segments, nonspeech=nonspeech), [t for t, _ in points]


