"""The audio-LLM arm: audio + prompt → text in one call per window.

A recording longer than the model's per-call limit is split at low-energy points near the limit and the
outputs are joined; the number of calls is part of the result. Each call's output budget follows its window's
length. A coverage check flags windows whose output stopped at that budget (cut short), or is empty or far
shorter than their speech warrants (servers are known to truncate long audio silently while answering 200): it
runs after the timed stages, so it does not count against the model's speed. Answer wrappers are stripped
(``strip_wrappers``); the raw output of a window whose text changed stays in ``details.windows[].raw_output``.
"""

from __future__ import annotations

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.audio_llm.backends import AUDIO_LLM_BACKENDS
from workbench.audio_llm.prompts import parse_output, strip_wrappers, wrapper_patterns
from workbench.audio_llm.windows import split_windows
from workbench.datamodel import Span, Transcript, Usage
from workbench.measure import StageClock
from workbench.pipelines.answering import Answer, answer_from_audio
from workbench.pipelines.base import PIPELINES, PipelineOutput, Traits, calls_api
from workbench.pipelines.spec import Recipe
from workbench.registry import Registry

#: a window with at least this much speech and fewer words per speech second than this is flagged "short"
MIN_SPEECH_FOR_CHECK_S = 3.0
MIN_WORDS_PER_SPEECH_S = 0.8


@PIPELINES.register("audio-llm")
class AudioLLMPipeline:
    warm_up = True  # the runner may run it once on a short prefix as part of load (never for remote models)
    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        spec = recipe.stage("model")
        self.backend = spec.build(AUDIO_LLM_BACKENDS)

    @classmethod
    def stage_registries(cls) -> dict[str, Registry]:
        return {"model": AUDIO_LLM_BACKENDS}

    @classmethod
    def traits(cls, recipe: Recipe) -> Traits:
        """Remote when its model is an API; it neither diarizes nor formats as a separate stage."""
        remote = calls_api(cls.stage_registries(), recipe.stage("model"))
        return Traits(remote=remote, calls_api=remote)

    def load(self) -> None:
        self.backend.load()

    def run(self, samples: np.ndarray, clock: StageClock, *, num_speakers: int | None = None) -> PipelineOutput:
        o = self.backend.options
        duration = len(samples) / SAMPLE_RATE
        limit = self.backend.max_audio_s()
        windows = split_windows(samples, limit)
        replies, summaries = [], []
        with clock.stage("audio-llm", total=duration) as detail:
            for w in windows:
                chunk = samples[int(w.start * SAMPLE_RATE): int(w.end * SAMPLE_RATE)]
                replies.append(self.backend.generate(chunk, o.system_prompt, o.user_prompt,
                                                     max_new_tokens=o.output_budget(w.end - w.start)))
                if o.summary_prompt:  # always a chat call, never a second transcription request
                    summaries.append(self.backend.generate(chunk, o.system_prompt, o.summary_prompt,
                                                           max_new_tokens=o.summary_max_new_tokens, summary=True))
                clock.hook("audio-llm", None, total=duration, completed=w.end)
            detail.update(calls=len(replies) + len(summaries), windows=len(windows), limit_s=limit)
        raw = [r.text for r in replies]
        texts = [strip_wrappers(t, wrapper_patterns(o.wrapper_patterns)) for t in raw] if o.strip_wrappers else raw
        segments = [seg for w, t in zip(windows, texts) for seg in parse_output(t, w)]
        labelled = any(seg.speaker for seg in segments)
        transcript = Transcript(
            tuple(segments),
            formatted="\n\n".join(t.strip() for t in texts if t.strip()) if o.task == "formatted" else None,
            summary="\n\n".join(r.text.strip() for r in summaries if r.text.strip()) or None,
            speaker_count_estimated=True if labelled else None,
        )
        all_replies = replies + summaries
        tokens_known = all(r.input_tokens is not None and r.output_tokens is not None for r in all_replies)
        usage = Usage(
            audio_s=duration,
            calls=len(all_replies),
            input_tokens=sum(r.input_tokens for r in all_replies) if tokens_known else None,
            output_tokens=sum(r.output_tokens for r in all_replies) if tokens_known else None,
        )
        coverage = coverage_check(samples, windows, texts, replies)
        for c, text, original in zip(coverage, texts, raw):
            if text != original:
                c["raw_output"] = original
        details = {"windows": coverage, "calls": usage.calls, "per_call_limit_s": limit,
                   "coverage_flags": sum(1 for c in coverage if c["flag"])}
        return PipelineOutput(transcript, usage, details)

    def load_answering(self) -> bool:
        """The model that transcribes also answers: nothing more to load."""
        return False

    def answer(self, samples: np.ndarray, output: PipelineOutput, question) -> Answer:
        """Answer ``question`` from the audio (windows and a combining call when it is longer than one call takes,
        or refused: the model stage's ``long_audio``)."""
        return answer_from_audio(self.backend, samples, question, long_audio=self.backend.options.long_audio)

    def unload(self) -> None:
        self.backend.unload()

    def fresh_random_state(self) -> list[str]:
        """See ``CascadePipeline.fresh_random_state``."""
        return ["model"] if self.backend.fresh_random_state() else []

    def describe(self) -> dict:
        return {"model": self.backend.describe()}

    def versions(self) -> dict[str, str]:
        return self.backend.versions()


def coverage_check(samples: np.ndarray, windows: list[Span], texts: list[str], replies=None) -> list[dict]:
    """Per window: seconds of speech (silero VAD), words produced, the call's output budget, tokens and
    ``finish_reason`` (from ``replies``, when given), and a flag when the output stopped at its budget (cut
    short), or is empty or far shorter than the speech warrants."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    out = []
    for i, (w, text) in enumerate(zip(windows, texts)):
        reply = replies[i] if replies is not None else None
        chunk = samples[int(w.start * SAMPLE_RATE): int(w.end * SAMPLE_RATE)]
        speech = sum(c["end"] - c["start"] for c in get_speech_timestamps(chunk, VadOptions())) / SAMPLE_RATE
        words = len(text.split())
        flag = None
        if reply is not None and reply.cut_at_cap:
            cap = f"{reply.max_new_tokens} tokens" if reply.max_new_tokens else "its output budget"
            flag = (f"cut short: the output stopped at the cap of {cap} ({words} words for {speech:.1f} s of "
                    "speech); raise output_tokens_per_s or max_new_tokens, or shorten max_audio_s")
        elif words == 0 and speech >= 1.0:
            flag = "empty output for a window with speech"
        elif speech >= MIN_SPEECH_FOR_CHECK_S and words / speech < MIN_WORDS_PER_SPEECH_S:
            flag = f"short output: {words} words for {speech:.1f} s of speech (possible silent truncation)"
        row = {"start": w.start, "end": w.end, "speech_s": round(speech, 2), "words": words, "flag": flag}
        if reply is not None:
            row.update(max_new_tokens=reply.max_new_tokens, output_tokens=reply.output_tokens,
                       finish_reason=reply.finish_reason)
        out.append(row)
    return out
