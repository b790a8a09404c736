"""The classic cascade: VAD → ASR (→ diarization → formatting, in later stages)."""

from __future__ import annotations

import numpy as np

from workbench.backends.asr import ASR_BACKENDS, SAMPLE_RATE
from workbench.backends.vad import VAD_BACKENDS
from workbench.datamodel import Usage
from workbench.measure import StageClock
from workbench.pipelines.base import PIPELINES, PipelineOutput
from workbench.recipes import Recipe
from workbench.registry import Registry


@PIPELINES.register("cascade")
class CascadePipeline:
    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        registries = self.stage_registries()
        self.backends = {spec.stage: spec.build(registries[spec.stage]) for spec in recipe.stages}

    @classmethod
    def stage_registries(cls) -> dict[str, Registry]:
        return {"vad": VAD_BACKENDS, "asr": ASR_BACKENDS}

    def load(self) -> None:
        for backend in self.backends.values():
            backend.load()

    def run(self, samples: np.ndarray, clock: StageClock) -> PipelineOutput:
        duration = len(samples) / SAMPLE_RATE
        vad, asr = self.backends["vad"], self.backends["asr"]
        speech = None
        if self.recipe.stage("vad").backend != "none":
            with clock.stage("vad") as detail:
                speech = vad.detect(samples)
                detail["speech_s"] = round(sum(s.duration for s in speech), 3)
                detail["regions"] = len(speech)
        with clock.stage("asr", total=duration) as detail:
            transcript = asr.transcribe(
                samples, speech, progress=lambda t: clock.hook("asr", None, total=duration, completed=min(t, duration))
            )
            detail["segments"] = len(transcript.segments)
        return PipelineOutput(transcript, Usage(audio_s=duration, calls=1))

    def unload(self) -> None:
        for backend in self.backends.values():
            backend.unload()

    def describe(self) -> dict:
        return {stage: backend.describe() for stage, backend in self.backends.items()}

    def versions(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for backend in self.backends.values():
            out.update(backend.versions())
        return out
