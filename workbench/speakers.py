"""Give ASR words the speaker of the diarization turn they overlap most, and regroup into speaker turns."""

from __future__ import annotations

import bisect
from dataclasses import replace

from workbench.datamodel import Segment, Transcript, Turn, Word


class TurnIndex:
    """Turns sorted by start, with a running maximum of their ends, for fast overlap look-ups."""

    def __init__(self, turns: tuple[Turn, ...]):
        self.turns = tuple(sorted(turns, key=lambda t: t.start))
        self.starts = [t.start for t in self.turns]
        self.max_end: list[float] = []
        for t in self.turns:
            self.max_end.append(max(t.end, self.max_end[-1]) if self.max_end else t.end)

    def speaker_at(self, start: float, end: float) -> str | None:
        """The speaker whose turns overlap [start, end] most; the nearest turn's when none overlaps."""
        if not self.turns:
            return None
        overlap: dict[str, float] = {}
        j = bisect.bisect_left(self.starts, end) - 1
        while j >= 0 and self.max_end[j] > start:
            t = self.turns[j]
            if (ov := min(end, t.end) - max(start, t.start)) > 0:
                overlap[t.speaker] = overlap.get(t.speaker, 0.0) + ov
            j -= 1
        if overlap:
            return max(overlap, key=overlap.get)
        mid = (start + end) / 2
        return min(self.turns, key=lambda t: max(t.start - mid, mid - t.end, 0.0)).speaker


def attribute(transcript: Transcript, turns: tuple[Turn, ...]) -> Transcript:
    """Label every word (or, without word times, every segment) with a speaker; split segments where
    the speaker changes."""
    index = TurnIndex(turns)
    turns = index.turns
    if not turns:
        return replace(transcript, turns=turns)
    segments: list[Segment] = []
    for seg in transcript.segments:
        if not seg.words:
            if seg.start is None or seg.end is None:
                segments.append(seg)
            else:
                segments.append(replace(seg, speaker=index.speaker_at(seg.start, seg.end)))
            continue
        run: list[Word] = []
        for word in seg.words:
            labelled = replace(word, speaker=index.speaker_at(word.start, word.end))
            if run and run[-1].speaker != labelled.speaker:
                segments.append(_segment(run))
                run = []
            run.append(labelled)
        if run:
            segments.append(_segment(run))
    return replace(transcript, segments=tuple(segments), turns=turns)


def _segment(words: list[Word]) -> Segment:
    return Segment(words[0].start, words[-1].end, " ".join(w.text for w in words).strip(), words[0].speaker, tuple(words))


def speaker_texts(transcript: Transcript) -> dict[str, str]:
    """Per-speaker concatenated text in time order (for cpWER); unlabelled text goes to "unknown"."""
    out: dict[str, list[str]] = {}
    for seg in transcript.segments:
        if seg.words:
            for w in seg.words:
                out.setdefault(w.speaker or "unknown", []).append(w.text)
        elif seg.text.strip():
            out.setdefault(seg.speaker or "unknown", []).append(seg.text)
    return {k: " ".join(v) for k, v in out.items()}
