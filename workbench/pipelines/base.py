"""The pipeline protocol every arm of the comparison implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from workbench.datamodel import Transcript, Usage
from workbench.measure import StageClock
from workbench.registry import Registry


@dataclass(frozen=True)
class Traits:
    """What a recipe's pipeline does, as the runner needs to know it (before anything is built or loaded)."""

    #: its model runs on a server: this machine's hourly price says nothing about its cost
    remote: bool = False
    #: some stage calls an API server (a warm-up run would be billed, so there is none)
    calls_api: bool = False
    #: it labels speakers (speaker metrics apply)
    diarizes: bool = False
    #: it writes a formatted text (formatting metrics apply)
    formats: bool = False


@dataclass(frozen=True)
class PipelineOutput:
    transcript: Transcript
    usage: Usage
    #: pipeline-specific facts stored with the result (an audio-LLM's windows and coverage flags …)
    details: dict = field(default_factory=dict)


class Pipeline(Protocol):
    """Loads its models once (the runner times that as ``load``), then runs on 16 kHz mono samples,
    timing each of its stages on the clock it is given."""

    name: str
    #: True when the runner may warm it up (one run on a short prefix, timed as part of ``load``)
    warm_up: bool

    @classmethod
    def stage_registries(cls) -> dict[str, Registry]: ...

    @classmethod
    def traits(cls, recipe) -> Traits:
        """Remote? Calls an API? Diarizes? Formats? — from the recipe's stages (optional: default all False)."""
        ...

    def load(self) -> None: ...

    def run(self, samples: np.ndarray, clock: StageClock, *, num_speakers: int | None = None) -> PipelineOutput: ...

    def unload(self) -> None: ...

    def load_answering(self) -> bool:
        """Load what answering questions needs beyond the transcription's models (optional; True when it loaded
        something: the runner times it apart from every stage)."""
        ...

    def answer(self, samples: np.ndarray, output: PipelineOutput, question):
        """Answer one question about the recording (optional): an ``answering.Answer``; raises on failure."""
        ...

    def fresh_random_state(self) -> list[str]:
        """Stages that rebuilt state so the next run starts from the seed (optional; see runner.fresh_random_state)."""
        ...

    def describe(self) -> dict: ...

    def versions(self) -> dict[str, str]: ...


PIPELINES: Registry = Registry("pipeline")


def calls_api(registries: dict[str, Registry], stage) -> bool:
    """Whether a recipe stage's backend calls an API server (its class says so: ``api = True``)."""
    return bool(getattr(registries[stage.stage].get(stage.backend), "api", False))


class StageFailed(Exception):
    """A stage failed after earlier stages finished: ``partial`` keeps what they produced."""

    def __init__(self, stage: str, partial: PipelineOutput, cause: BaseException):
        self.stage, self.partial, self.cause = stage, partial, cause
        super().__init__(f"{stage}: {type(cause).__name__}: {cause}")
