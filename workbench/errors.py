"""Errors the workbench raises on purpose. Each carries one clear, actionable message."""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class: the message is meant for the user, as it is."""


class BadInputError(WorkbenchError):
    """Input the user gave cannot be used (CLI exit code 2)."""


class AudioError(BadInputError):
    """An audio file that cannot be decoded or is unusable; the message names the file."""

    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ReferenceFormatError(BadInputError):
    """A malformed reference file; the message names the file and, where known, the line."""

    def __init__(self, path: object, problem: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class RecipeError(BadInputError):
    """A recipe that cannot be parsed or validated, or a recipe name that does not exist."""


class UnknownBackendError(RecipeError):
    """A backend name not in its registry; the message lists the known ones."""


class BackendUnavailable(WorkbenchError):
    """A backend whose package or model is missing here; ``fix`` says how to make it available."""

    def __init__(self, reason: str, fix: str = ""):
        self.reason = reason
        self.fix = fix
        super().__init__(f"{reason}. {fix}".strip() if fix else reason)


class StoreError(WorkbenchError):
    """The results store cannot be written (locked by another program, disk full, read-only); the message names
    the store and what to do. Nothing computed is lost: the result is in results.jsonl."""
