"""One hook signature for progress and timing, shared by the CLI's progress bars and the dashboard.

Modelled on pyannote.audio's hooks: ``hook(step_name, artifact, total=..., completed=...)``.
A stage announces itself with ``completed=0``, may report progress in its own unit (audio seconds for
ASR), and ends with ``completed == total`` and its :class:`~workbench.datamodel.StageTiming` as artifact.
"""

from __future__ import annotations

from typing import Any, Protocol


class Hook(Protocol):
    def __call__(
        self, step_name: str, artifact: Any = None, *, total: float | None = None, completed: float | None = None
    ) -> None: ...


def null_hook(step_name: str, artifact: Any = None, *, total: float | None = None, completed: float | None = None) -> None:
    """A hook that does nothing."""


class Hooks:
    """Calls several hooks in turn."""

    def __init__(self, *hooks: Hook | None):
        self.hooks = [h for h in hooks if h is not None]

    def __call__(self, step_name: str, artifact: Any = None, *, total: float | None = None, completed: float | None = None) -> None:
        for hook in self.hooks:
            hook(step_name, artifact, total=total, completed=completed)
