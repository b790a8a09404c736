"""What a recipe specifies: a pipeline kind, and each stage's backend with its validated options.

The pipelines are built from it, so it lives with them; reading, validating and listing recipe files is
:mod:`workbench.recipes`, which sits above the pipelines (it asks their registry which stages a kind has).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from workbench.backends.base import Backend, BackendOptions
from workbench.registry import Registry


@dataclass(frozen=True)
class StageSpec:
    stage: str
    backend: str
    options: BackendOptions

    def build(self, registry: Registry) -> Backend:
        return registry.get(self.backend)(self.options)


@dataclass(frozen=True)
class Recipe:
    name: str
    pipeline: str
    stages: tuple[StageSpec, ...]
    description: str = ""
    path: str = ""

    def stage(self, name: str) -> StageSpec:
        for spec in self.stages:
            if spec.stage == name:
                return spec
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {
            "pipeline": self.pipeline,
            # stages left out ("none") are omitted, so adding a new stage kind keeps existing hashes
            "stages": {
                s.stage: {"backend": s.backend, **s.options.model_dump(mode="json")} for s in self.stages if s.backend != "none"
            },
        }

    @property
    def hash(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
