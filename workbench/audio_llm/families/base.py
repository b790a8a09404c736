"""What a model family provides."""

from __future__ import annotations

from typing import ClassVar, Protocol

import numpy as np

from workbench.backends.base import require_packages
from workbench.errors import BackendUnavailable
from workbench.registry import Registry


class Runner(Protocol):
    def generate(self, samples: np.ndarray, *, system: str, prompt: str, task: str, language: str | None,
                 max_new_tokens: int, temperature: float): ...


class Family:
    """A model family: ``model_types`` (config.json), ``id_patterns`` (hub ids), per-call audio limit."""

    name: ClassVar[str] = ""
    model_types: ClassVar[tuple[str, ...]] = ()
    id_patterns: ClassVar[tuple[str, ...]] = ()
    max_audio_s: ClassVar[float] = 30.0
    requires: ClassVar[tuple[tuple[str, str], ...]] = (("transformers", "transformers"), ("torch", "torch"))
    supported: ClassVar[bool] = True
    hardware: ClassVar[str] = ""

    @classmethod
    def check(cls) -> None:
        require_packages(cls.requires, extra_hint=f"(the {cls.name} family)")

    @classmethod
    def load(cls, location: str, *, device: str, dtype) -> Runner:
        raise NotImplementedError


FAMILIES: Registry[Family] = Registry("audio-LLM family")


def not_supported(family: str) -> BackendUnavailable:
    supported = ", ".join(n for n in FAMILIES.names() if FAMILIES.get(n).supported)
    return BackendUnavailable(f"the {family} family is not supported yet", f"supported families: {supported}")


def sampling(temperature: float) -> dict:
    return {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
