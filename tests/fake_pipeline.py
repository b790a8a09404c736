"""A FAKE pipeline for wiring tests only (runner, dashboard): it "transcribes" by returning a configured text.
It is registered under a test-only name; no test that uses it says anything about a model."""

from __future__ import annotations

import time

import numpy as np

from workbench.backends.base import Backend, BackendOptions
from workbench.datamodel import Segment, Transcript, Usage
from workbench.measure import StageClock
from workbench.pipelines import PIPELINES, PipelineOutput, Traits
from workbench.recipes import Recipe
from workbench.registry import Registry

FAKE = "test-fake"

#: recipe name -> behaviour of the fake pipeline:
#: {"load": exc, "run": {item_index: exc}, "text": str, "formatted": str, "summary": str, "before_run": callable,
#:  "segments": (Segment, ...) instead of one segment of "text", "turns": (Turn, ...) — a diarization's output,
#:  "answers": {question id: text, or an exception to raise} (default: the transcript's text)}
BEHAVIOUR: dict[str, dict] = {}
#: what the fakes did, in order
EVENTS: list[tuple] = []


class FakeModelOptions(BackendOptions):
    label: str = ""  # only makes recipe hashes differ, as different real models would


FAKE_MODELS: Registry = Registry("fake model")


@FAKE_MODELS.register("fake")
class FakeModel(Backend):
    Options = FakeModelOptions


#: the fake's optional diarization and formatter stages ("none" when a recipe file leaves them out)
FAKE_STAGES: Registry = Registry("fake stage")
FAKE_STAGES.register("fake")(type("FakeStage", (Backend,), {"Options": FakeModelOptions}))
FAKE_STAGES.register("none")(type("NoFakeStage", (Backend,), {"Options": FakeModelOptions}))


class FakePipeline:
    """Fake, for wiring tests only: "transcribes" by returning a configured text."""

    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        self.behaviour = BEHAVIOUR.get(recipe.name, {})
        self.calls = 0

    @classmethod
    def stage_registries(cls) -> dict:
        """An optional [model] table (backend "fake", label = "…"), so recipe files can differ in content;
        [diarization] and [formatter] tables (backend "fake") mark a recipe that diarizes / formats, so its
        DER, cpWER and formatting drift are scored as a real cascade's would be."""
        return {"model": FAKE_MODELS, "diarization": FAKE_STAGES, "formatter": FAKE_STAGES}

    @classmethod
    def traits(cls, recipe: Recipe) -> Traits:
        """A [diarization] / [formatter] table with backend "fake" makes the fake diarize / format."""
        active = {s.stage for s in recipe.stages if s.backend != "none"}
        return Traits(diarizes="diarization" in active, formats="formatter" in active)

    def load(self) -> None:
        EVENTS.append(("load", self.recipe.name))
        time.sleep(0.03)  # load is slow: it must not count against RTFx
        if "load" in self.behaviour:
            raise self.behaviour["load"]

    def run(self, samples: np.ndarray, clock: StageClock, *, num_speakers: int | None = None) -> PipelineOutput:
        index = self.calls
        self.calls += 1
        EVENTS.append(("run", self.recipe.name, index))
        duration = len(samples) / 16000
        if "before_run" in self.behaviour:
            self.behaviour["before_run"](index)
        with clock.stage("vad") as detail:
            detail["regions"] = 1
        with clock.stage("asr", total=duration):
            clock.hook("asr", None, total=duration, completed=duration / 2)
            failure = self.behaviour.get("run", {}).get(index)
            if failure is not None:
                raise failure
        text = self.behaviour.get("text", "")
        segments = self.behaviour.get("segments") or (Segment(0.0, duration, text),)
        turns = tuple(self.behaviour.get("turns", ()))
        transcript = Transcript(tuple(segments), "en", formatted=self.behaviour.get("formatted"),
                                summary=self.behaviour.get("summary"), turns=turns,
                                speaker_count_estimated=True if turns else None)
        return PipelineOutput(transcript, Usage(audio_s=duration, calls=1))

    def load_answering(self) -> bool:
        EVENTS.append(("load_answering", self.recipe.name))
        return True

    def answer(self, samples: np.ndarray, output: PipelineOutput, question):
        from workbench.pipelines.answering import Answer

        EVENTS.append(("answer", self.recipe.name, question.id))
        reply = self.behaviour.get("answers", {}).get(question.id, output.transcript.text)
        if isinstance(reply, BaseException):
            raise reply
        return Answer(reply, calls=1, input_tokens=10, output_tokens=2)

    def unload(self) -> None:
        EVENTS.append(("unload", self.recipe.name))

    def describe(self) -> dict:
        return {"asr": {"backend": "fake"}}

    def versions(self) -> dict[str, str]:
        return {"fake-asr": "0.0"}




def register(monkeypatch) -> None:
    """Register the fake under its test-only name (monkeypatch takes it away after the test); clear its state."""
    monkeypatch.setitem(PIPELINES._items, FAKE, FakePipeline)
    FakePipeline.name = FAKE
    BEHAVIOUR.clear()
    EVENTS.clear()
