"""Answering questions about a recording (issue 13), for both arms.

- A cascade answers from its own output through its ``[answer]`` stage: an LLM (the formatter's backends:
  ``llama-cpp``, ``transformers``, ``openai-compatible``; or ``none``) gets the transcript rendered with times,
  speaker labels and the gaps without speech marked (:func:`workbench.tasks.prompts.transcript_lines`), and the
  question with its kind's instruction. A transcript that does not fit the model's context is never cut
  silently: with ``long_transcript = "combine"`` (default) each part that fits is asked, then one combining call
  gives the answer; with ``"refuse"`` the question gets an error (wrong and counted).
- An audio-LLM answers from the audio: one call with the audio and the question. A recording longer than the
  per-call limit follows the model stage's ``long_audio``: ``"combine"`` (default) asks each window (told where
  it starts, so times are from the recording's start), then one text-only call to the same model combines the
  answers; ``"refuse"`` gives the question an error.

The strategy and the number of parts/windows are part of every answer (``TaskResult.strategy``/``windows``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from workbench.backends.formatter import (TEMPLATE_TOKENS, Completion, LlamaCppFormatter, LlamaCppModelOptions,
                                          LLMCallOptions, OpenAICompatibleFormatter, OpenAICompatibleModelOptions,
                                          TransformersFormatter, TransformersModelOptions)
from workbench.backends.base import Backend
from workbench.datamodel import Transcript
from workbench.registry import Registry
from workbench.tasks.prompts import (ANSWER_SYSTEM, MAX_ANSWER_TOKENS, TRANSCRIPT_SYSTEM, clock, combine_prompt,
                                     question_prompt, transcript_lines, transcript_prompt)
from workbench.tasks.questions import Question

log = logging.getLogger(__name__)

#: strategies recorded with each answer
WHOLE = "whole"  # one call saw the whole transcript / recording
COMBINE = "combine"  # each part (window) asked, then one combining call
REFUSE = "refuse"  # too long for one call, and the recipe says refuse: an error


class AnswerRefused(Exception):
    """No answer is asked for: the recording (or its transcript) is longer than one call takes and the recipe says
    refuse (``strategy`` "refuse"), or the recipe has no answer stage (``strategy`` None)."""

    def __init__(self, message: str, strategy: str | None = "refuse"):
        super().__init__(message)
        self.strategy = strategy


@dataclass(frozen=True)
class Answer:
    """One question's answer: the text, the calls it took and their tokens (None when a call did not say), how the
    recording was covered (``strategy``: whole / combine) and in how many parts (``windows``)."""

    text: str
    calls: int = 1
    input_tokens: int | None = None
    output_tokens: int | None = None
    strategy: str = WHOLE
    windows: int = 1
    audio_s: float = 0.0  # seconds of audio the calls carried (0: text only)
    cut_short: bool = False  # some call's output stopped at its token cap


class _Tokens:
    """Adds up the calls of one answer (tokens unknown once any call did not say)."""

    def __init__(self):
        self.calls, self.tin, self.tout, self.known, self.cut = 0, 0, 0, True, False

    def add(self, tin: int | None, tout: int | None, cut: bool = False) -> None:
        self.calls += 1
        self.cut = self.cut or bool(cut)
        if tin is None or tout is None:
            self.known = False
        else:
            self.tin, self.tout = self.tin + tin, self.tout + tout

    def answer(self, text: str, strategy: str, windows: int, audio_s: float = 0.0) -> Answer:
        return Answer(text.strip(), self.calls, self.tin if self.known else None, self.tout if self.known else None,
                      strategy, windows, round(audio_s, 3), self.cut)


# --- the cascade's [answer] stage -------------------------------------------------------------------------


class AnswerOptions(LLMCallOptions):
    system_prompt: str = Field(TRANSCRIPT_SYSTEM, description="the system message of every answering call")
    max_tokens: int | None = Field(None, ge=1, description="output budget of an answer; unset = by kind "
                                   "(short kinds 32-48 tokens, keypoints/open 256)")
    long_transcript: Literal["combine", "refuse"] = Field(
        "combine", description="a transcript longer than the context: ask each part that fits, then one combining "
                               "call (combine); or the question gets an error (refuse)")


class AnswerBackend(Backend):
    """An answer stage: ``answer(transcript, duration_s, question)``; loaded only when a run asks questions."""

    def answer(self, transcript: Transcript, duration_s: float, question: Question) -> Answer:
        raise NotImplementedError


ANSWER_BACKENDS: Registry[AnswerBackend] = Registry("answer backend")


@ANSWER_BACKENDS.register("none")
class NoAnswer(AnswerBackend):
    def answer(self, transcript: Transcript, duration_s: float, question: Question) -> Answer:
        raise AnswerRefused("this recipe has no [answer] stage: add one (backend = \"llama-cpp\", model = \"smollm2\") "
                            "to answer questions", strategy=None)


class LLMAnswerer(AnswerBackend):
    """Shared by the LLM answer backends (mixed into the formatter classes, which give ``complete``,
    ``count_tokens``, ``context_window``, ``load``)."""

    def _cap(self, question: Question) -> int:
        return self.options.max_tokens or MAX_ANSWER_TOKENS[question.kind]

    def _call(self, tokens: _Tokens, user: str, cap: int) -> str:
        reply = Completion(*self.complete(self.options.system_prompt, user, cap))
        cut = reply.cut if reply.cut is not None else reply.output_tokens is not None and reply.output_tokens >= cap
        tokens.add(reply.input_tokens, reply.output_tokens, cut)
        return reply.text

    def _room(self, fixed: str, cap: int) -> int:
        """Transcript tokens a call can hold beside ``fixed`` (the rest of its user message) and the output cap."""
        return (self.context_window() - self.count_tokens(self.options.system_prompt) - TEMPLATE_TOKENS
                - self.count_tokens(fixed) - cap)

    def _parts(self, lines: list[str], room: int) -> list[list[str]]:
        """The lines packed into parts of at most ``room`` tokens (a longer line is cut between words)."""
        parts: list[list[str]] = [[]]
        used = 0
        for line in lines:
            pieces = [line]
            if self.count_tokens(line) > room:
                pieces, words, size = [], [], 0
                for word in line.split():
                    c = self.count_tokens(word + " ")
                    if words and size + c > room:
                        pieces.append(" ".join(words))
                        words, size = [], 0
                    words.append(word)
                    size += c
                pieces.append(" ".join(words))
            for piece in pieces:
                cost = self.count_tokens(piece + "\n")
                if parts[-1] and used + cost > room:
                    parts.append([])
                    used = 0
                parts[-1].append(piece)
                used += cost
        return parts

    def answer(self, transcript: Transcript, duration_s: float, question: Question) -> Answer:
        o: AnswerOptions = self.options  # type: ignore[assignment]
        lines = transcript_lines(transcript, duration_s)
        cap = self._cap(question)
        tokens = _Tokens()
        whole = transcript_prompt(lines, question)
        if self._room(whole, cap) >= 0:
            return tokens.answer(self._call(tokens, whole, cap), WHOLE, 1)
        room = self._room(transcript_prompt([], question, part=(99, 99)), cap)
        if o.long_transcript == REFUSE or room < 32:
            raise AnswerRefused(
                f"the transcript ({self.count_tokens(chr(10).join(lines))} tokens) does not fit the answer model's "
                f"{self.context_window()}-token context" + (' and long_transcript = "refuse"' if room >= 32 else
                                                              ": the prompt leaves no room for it"))
        parts = self._parts(lines, room)
        partial = [(f"part {i} of {len(parts)}", self._call(tokens, transcript_prompt(p, question, part=(i, len(parts))), cap))
                   for i, p in enumerate(parts, 1)]
        log.info("answer %s: the transcript took %d parts and a combining call", question.id, len(parts))
        return tokens.answer(self._combine(tokens, question, partial, cap), COMBINE, len(parts))

    def _combine(self, tokens: _Tokens, question: Question, partial: list[tuple[str, str]], cap: int) -> str:
        """One combining call — or, when the parts' answers do not fit one, combining groups of them first."""
        if len(partial) == 1 or self._room(combine_prompt(question, partial), cap) >= 0:
            return self._call(tokens, combine_prompt(question, partial), cap)
        half = len(partial) // 2
        groups = [partial[:half], partial[half:]]
        return self._call(tokens, combine_prompt(question, [
            (f"{g[0][0]} to {g[-1][0]}", self._combine(tokens, question, g, cap)) for g in groups]), cap)


class LlamaCppAnswerOptions(LlamaCppModelOptions, AnswerOptions):
    pass


class OpenAICompatibleAnswerOptions(OpenAICompatibleModelOptions, AnswerOptions):
    pass


class TransformersAnswerOptions(TransformersModelOptions, AnswerOptions):
    pass


@ANSWER_BACKENDS.register("llama-cpp")
class LlamaCppAnswerer(LLMAnswerer, LlamaCppFormatter):
    """The llama-cpp formatter's model (default: the bundled SmolLM2), answering questions."""

    Options = LlamaCppAnswerOptions


@ANSWER_BACKENDS.register("openai-compatible")
class OpenAICompatibleAnswerer(LLMAnswerer, OpenAICompatibleFormatter):
    Options = OpenAICompatibleAnswerOptions


@ANSWER_BACKENDS.register("transformers")
class TransformersAnswerer(LLMAnswerer, TransformersFormatter):
    Options = TransformersAnswerOptions


# --- the audio-LLM arm ------------------------------------------------------------------------------------


def answer_from_audio(backend, samples, question: Question, *, long_audio: str = COMBINE) -> Answer:
    """The audio-LLM's answer: one call with the audio and the question; a recording longer than the backend's
    per-call limit is asked window by window (each told where it starts), then one text-only call combines the
    answers (``long_audio = "combine"``), or refused (``"refuse"``: :class:`AnswerRefused`)."""
    from workbench.audio import SAMPLE_RATE
    from workbench.audio_llm.windows import split_windows

    cap = MAX_ANSWER_TOKENS[question.kind]
    tokens = _Tokens()
    limit = backend.max_audio_s()
    duration = len(samples) / SAMPLE_RATE
    windows = split_windows(samples, limit)

    def ask(chunk, prompt: str) -> str:
        reply = backend.generate(chunk, ANSWER_SYSTEM, prompt, max_new_tokens=cap, summary=True)
        tokens.add(reply.input_tokens, reply.output_tokens, reply.cut_at_cap)
        return reply.text

    if len(windows) == 1:
        return tokens.answer(ask(samples, question_prompt(question)), WHOLE, 1, duration)
    if long_audio == REFUSE:
        raise AnswerRefused(f"recording longer than the per-call limit ({duration:.0f} s > {limit:.0f} s) and "
                            'long_audio = "refuse"')
    partial = []
    for i, w in enumerate(windows, 1):
        chunk = samples[int(w.start * SAMPLE_RATE): int(w.end * SAMPLE_RATE)]
        where = (f"This audio is part {i} of {len(windows)} of a longer recording: from {clock(w.start)} to "
                 f"{clock(w.end)} ({w.start:.1f} s to {w.end:.1f} s from the start). Answer from this part, or say "
                 "it does not tell.\n")
        partial.append((f"part {i} ({w.start:.0f}–{w.end:.0f} s)", ask(chunk, where + question_prompt(question, offset_s=w.start))))
    reply = backend.generate_text(ANSWER_SYSTEM, combine_prompt(question, partial), max_new_tokens=cap)
    tokens.add(reply.input_tokens, reply.output_tokens, reply.cut_at_cap)
    return tokens.answer(reply.text, COMBINE, len(windows), duration)

