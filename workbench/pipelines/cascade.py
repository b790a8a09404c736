"""The classic cascade: VAD → ASR → speaker diarization → formatting. Each stage is a registry backend;
a stage set to ``none`` is skipped (and not timed). An ``[answer]`` stage answers questions about the recording
from the cascade's output (:mod:`workbench.pipelines.answering`): it is no part of the transcription — loaded
only when a run asks questions (:meth:`CascadePipeline.load_answering`), and run outside the stage clock."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.backends.asr import ASR_BACKENDS
from workbench.backends.diarization import DIARIZATION_BACKENDS
from workbench.backends.formatter import FORMATTER_BACKENDS
from workbench.backends.vad import VAD_BACKENDS
from workbench.datamodel import Usage
from workbench.measure import StageClock
from workbench.pipelines.answering import ANSWER_BACKENDS, Answer
from workbench.pipelines.base import PIPELINES, PipelineOutput, StageFailed, Traits, calls_api
from workbench.pipelines.spec import Recipe
from workbench.registry import Registry
from workbench.speakers import attribute


@PIPELINES.register("cascade")
class CascadePipeline:
    warm_up = True  # the runner may run it once on a short prefix as part of load
    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        registries = self.stage_registries()
        self.backends = {spec.stage: spec.build(registries[spec.stage]) for spec in recipe.stages}

    @classmethod
    def stage_registries(cls) -> dict[str, Registry]:
        return {"vad": VAD_BACKENDS, "asr": ASR_BACKENDS, "diarization": DIARIZATION_BACKENDS, "formatter": FORMATTER_BACKENDS,
                "answer": ANSWER_BACKENDS}

    @classmethod
    def traits(cls, recipe: Recipe) -> Traits:
        """Local models (a formatter may call an API server); diarizes and formats when those stages are set."""
        active = {s.stage for s in recipe.stages if s.backend != "none"}
        registries = cls.stage_registries()
        # the answer stage is not part of a transcription run (nor of its warm-up)
        return Traits(remote=False, calls_api=any(calls_api(registries, s) for s in recipe.stages if s.stage != "answer"),
                      diarizes="diarization" in active, formats="formatter" in active)

    def _active(self, stage: str) -> bool:
        return self.recipe.stage(stage).backend != "none"

    def load(self) -> None:
        for stage, backend in self.backends.items():
            if stage != "answer":  # loaded only when a run asks questions (load_answering)
                backend.load()
        self._answer_loaded = False

    def load_answering(self) -> bool:
        """Load the answer stage's model (once); True when this call loaded it (the runner times it apart)."""
        if getattr(self, "_answer_loaded", False) or not self._active("answer"):
            return False
        self.backends["answer"].load()
        self._answer_loaded = True
        return True

    def answer(self, samples: np.ndarray, output: PipelineOutput, question) -> Answer:
        """Answer ``question`` from this cascade's output (its transcript, with times, speakers and gaps)."""
        return self.backends["answer"].answer(output.transcript, len(samples) / SAMPLE_RATE, question)

    def run(self, samples: np.ndarray, clock: StageClock, *, num_speakers: int | None = None) -> PipelineOutput:
        duration = len(samples) / SAMPLE_RATE
        speech = None
        usage = Usage(audio_s=duration, calls=1)
        details: dict = {}
        if self._active("vad"):
            with clock.stage("vad") as detail:
                speech = self.backends["vad"].detect(samples)
                detail["speech_s"] = round(sum(s.duration for s in speech), 3)
                detail["regions"] = len(speech)
        with clock.stage("asr", total=duration) as detail:
            transcript = self.backends["asr"].transcribe(
                samples, speech, progress=lambda t: clock.hook("asr", None, total=duration, completed=min(t, duration))
            )
            detail["segments"] = len(transcript.segments)
        if self._active("diarization"):
            try:
                with clock.stage("diarization") as detail:
                    result = self.backends["diarization"].diarize(samples, speech, num_speakers)
                    transcript = replace(attribute(transcript, result.turns), speaker_count_estimated=result.estimated)
                    detail.update(speakers=result.speaker_count, estimated=result.estimated, turns=len(result.turns))
            except Exception as exc:  # keep the ASR output: nothing already computed is lost
                raise StageFailed("diarization", PipelineOutput(transcript, usage), exc) from exc
        if self._active("formatter"):
            try:
                with clock.stage("formatter") as detail:
                    formatted = self.backends["formatter"].format(transcript)
                    transcript = replace(transcript, formatted=formatted.text, summary=formatted.summary)
                    detail.update(calls=formatted.calls)
                    if formatted.calls:
                        usage = Usage(duration, 1 + formatted.calls, formatted.input_tokens, formatted.output_tokens)
                        # the budgets used, and how many chunks' output hit its cap (cut short, not "drift")
                        detail.update(chunks=formatted.chunks, chunks_cut=formatted.chunks_cut,
                                      chunk_tokens=formatted.chunk_tokens, max_tokens=formatted.max_tokens,
                                      summary_cut=formatted.summary_cut)
                        details["formatter_chunks_cut"] = formatted.chunks_cut
            except Exception as exc:
                raise StageFailed("formatter", PipelineOutput(transcript, usage, details), exc) from exc
        return PipelineOutput(transcript, usage, details)

    def unload(self) -> None:
        for backend in self.backends.values():
            backend.unload()
        self._answer_loaded = False

    def fresh_random_state(self) -> list[str]:
        """The stages whose backend had to rebuild state so the next run starts from the seed."""
        return [stage for stage, backend in self.backends.items() if self._active(stage) and backend.fresh_random_state()]

    def describe(self) -> dict:
        return {stage: backend.describe() for stage, backend in self.backends.items() if self._active(stage)}

    def versions(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for stage, backend in self.backends.items():
            if self._active(stage):
                out.update(backend.versions())
        return out
