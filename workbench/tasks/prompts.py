"""What a recipe is asked: the question with an instruction for its kind, and (cascade) the transcript it answers
from, rendered with times, speaker labels and the gaps without speech marked.

The instruction per kind asks for the form :mod:`workbench.tasks.answers` reads: yesno begins with yes or no,
number is a number, choice names the option's letter, locate is a time in seconds from the start, short is a few
words, keypoints/open a short paragraph.
"""

from __future__ import annotations

from workbench.datamodel import Transcript
from workbench.tasks.questions import Question

#: a pause between speech of at least this long is marked as a gap in the rendered transcript
MIN_GAP_S = 1.0

ANSWER_SYSTEM = ("You answer questions about a recording. Answer only from what the recording contains; "
                 "follow the answer format asked for.")
TRANSCRIPT_SYSTEM = ("You answer questions about a recording from its transcript. Each line gives the time span "
                     "(minutes:seconds from the start), the speaker and the words; [gap …] lines are stretches with "
                     "no speech. Answer only from the transcript; follow the answer format asked for.")

INSTRUCTIONS = {
    "yesno": "Begin your answer with yes or no.",
    "number": "Answer with a number only.",
    "short": "Answer in a few words only.",
    "choice": "Answer with the letter of one option only.",
    # no example time: a small model repeats it as its answer (SmolLM2 answered "42.5 seconds" to every locate)
    "locate": "Answer with the time in seconds from the start of the recording.",
    "keypoints": "Answer in a short paragraph.",
    "open": "Answer in a short paragraph.",
}

#: output budget (tokens) of an answer per kind: short kinds need few tokens, paragraphs more
MAX_ANSWER_TOKENS = {"yesno": 48, "number": 32, "short": 48, "choice": 32, "locate": 48, "keypoints": 256, "open": 256}


def letter(i: int) -> str:
    return chr(ord("A") + i)


def question_prompt(question: Question, *, offset_s: float | None = None) -> str:
    """The question, its options lettered (choice), and the instruction for its kind. ``offset_s``: the audio is a
    window starting that many seconds into the recording (times are asked from the recording's start)."""
    lines = [question.prompt.strip()]
    if question.kind == "choice":
        lines += [f"({letter(i)}) {c}" for i, c in enumerate(question.choices)]
    instruction = INSTRUCTIONS[question.kind]
    if offset_s and question.kind == "locate":
        instruction += (f" This audio starts {offset_s:.1f} s into the recording: add {offset_s:.1f} to times "
                        "measured in it.")
    lines.append(instruction)
    return "\n".join(lines)


def clock(seconds: float) -> str:
    """``mm:ss.s`` (``h:mm:ss.s`` from an hour)."""
    seconds = max(0.0, seconds)
    m, s = divmod(seconds, 60)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m:02d}:{s:04.1f}"


def gap_line(seconds: float) -> str:
    return f"[gap {seconds:.1f} s: no speech]"


def transcript_lines(transcript: Transcript, duration_s: float | None = None, *, min_gap_s: float = MIN_GAP_S) -> list[str]:
    """One line per segment, ``[01:02.5–01:05.0] SPEAKER_1: words`` (no label when the transcript has none, no
    times when a segment has none), with ``[gap 4.2 s: no speech]`` lines where at least ``min_gap_s`` passes
    without speech (before the first segment and after the last too, given the recording's ``duration_s``)."""
    lines: list[str] = []
    cursor = 0.0
    for seg in transcript.segments:
        text = " ".join(seg.text.split())
        if not text:
            continue
        if seg.start is not None and seg.start - cursor >= min_gap_s:
            lines.append(gap_line(seg.start - cursor))
        when = f"[{clock(seg.start)}–{clock(seg.end if seg.end is not None else seg.start)}] " if seg.start is not None else ""
        lines.append(f"{when}{seg.speaker + ': ' if seg.speaker else ''}{text}")
        if seg.end is not None:
            cursor = max(cursor, seg.end)
    if duration_s is not None and duration_s - cursor >= min_gap_s:
        lines.append(gap_line(duration_s - cursor))
    return lines


def transcript_prompt(lines: list[str], question: Question, *, part: tuple[int, int] | None = None) -> str:
    """The user message of a cascade's answering call: the transcript (or one part of it) and the question."""
    head = "Transcript:" if part is None else (f"Transcript, part {part[0]} of {part[1]} (the other parts are asked "
                                               "separately; answer from this part, or say it does not tell):")
    body = "\n".join(lines) if lines else "(no speech was transcribed)"
    return f"{head}\n{body}\n\nQuestion: {question_prompt(question)}"


def combine_prompt(question: Question, partial: list[tuple[str, str]]) -> str:
    """The user message of the combining call: the question, and each part's (label, answer)."""
    answers = "\n".join(f"- {label}: {' '.join(text.split()) or '(no answer)'}" for label, text in partial)
    return (f"The recording was too long for one call, so the question was asked of each part separately. "
            f"The answers from the parts:\n{answers}\n\nGive one final answer to the question for the whole "
            f"recording (times are from the start of the recording).\nQuestion: {question_prompt(question)}")
