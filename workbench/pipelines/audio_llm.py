"""The audio-LLM arm: audio + prompt → text in one call per window.

A recording longer than the model's per-call limit is split at low-energy points near the limit and the
outputs are joined; the number of calls is part of the result. A coverage check flags windows whose output
is empty or far shorter than their speech warrants (servers are known to truncate long audio silently while
answering 200): it runs after the timed stages, so it does not count against the model's speed.
"""

from __future__ import annotations

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.audio_llm.backends import AUDIO_LLM_BACKENDS
from workbench.audio_llm.prompts import parse_output
from workbench.audio_llm.windows import split_windows
from workbench.datamodel import Span, Transcript, Usage
from workbench.measure import StageClock
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
                replies.append(self.backend.generate(chunk, o.system_prompt, o.user_prompt))
                if o.summary_prompt:
                    summaries.append(self.backend.generate(chunk, o.system_prompt, o.summary_prompt))
                clock.hook("audio-llm", None, total=duration, completed=w.end)
            detail.update(calls=len(replies) + len(summaries), windows=len(windows), limit_s=limit)
        segments = [seg for w, r in zip(windows, replies) for seg in parse_output(r.text, w)]
        labelled = any(seg.speaker for seg in segments)
        transcript = Transcript(
            tuple(segments),
            formatted="\n\n".join(r.text.strip() for r in replies if r.text.strip()) if o.task == "formatted" else None,
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
        coverage = coverage_check(samples, windows, [r.text for r in replies])
        details = {"windows": coverage, "calls": usage.calls, "per_call_limit_s": limit,
                   "coverage_flags": sum(1 for c in coverage if c["flag"])}
        return PipelineOutput(transcript, usage, details)

    def unload(self) -> None:
        self.backend.unload()

    def fresh_random_state(self) -> list[str]:
        """See ``CascadePipeline.fresh_random_state``."""
        return ["model"] if self.backend.fresh_random_state() else []

    def describe(self) -> dict:
        return {"model": self.backend.describe()}

    def versions(self) -> dict[str, str]:
        return self.backend.versions()


def coverage_check(samples: np.ndarray, windows: list[Span], texts: list[str]) -> list[dict]:
    """Per window: seconds of speech (silero VAD), words produced, and a flag when the output is empty or
    far shorter than the speech warrants."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    out = []
    for w, text in zip(windows, texts):
        chunk = samples[int(w.start * SAMPLE_RATE): int(w.end * SAMPLE_RATE)]
        speech = sum(c["end"] - c["start"] for c in get_speech_timestamps(chunk, VadOptions())) / SAMPLE_RATE
        words = len(text.split())
        flag = None
        if words == 0 and speech >= 1.0:
            flag = "empty output for a window with speech"
        elif speech >= MIN_SPEECH_FOR_CHECK_S and words / speech < MIN_WORDS_PER_SPEECH_S:
            flag = f"short output: {words} words for {speech:.1f} s of speech (possible silent truncation)"
        out.append({"start": w.start, "end": w.end, "speech_s": round(speech, 2), "words": words, "flag": flag})
    return out
