"""Question sets: TOML files of questions asked about a recording (issue 13), validated at the edge with
pydantic into frozen dataclasses.

The schema (the contract)::

    name = "call-basics"
    [[question]]
    id = "dog"                  # unique in the file
    category = "sound"          # free text; reports group by it
    kind = "yesno"              # yesno | number | short | choice | locate | keypoints | open
    prompt = "Is a dog heard barking in this recording?"
    answer = "yes"
    recordings = ["conversation"]   # optional: the recording ids it applies to; absent = any recording

Per kind: ``yesno`` answer "yes"/"no"; ``number`` answer a number, ``tolerance`` (default 0); ``short`` answer a
string or a list of accepted answers; ``choice`` ``choices`` (a list) and ``answer`` one of them; ``locate``
answer ``[start, end]`` in seconds, ``tolerance_s`` (default 2.0); ``keypoints`` ``points`` (what a good answer
covers); ``open`` ``rubric`` (what a 5/5 answer does). Any other key is an error. A malformed file raises one
:class:`~workbench.errors.BadInputError` naming the file, the question (its id, or its number when it has none)
and the field.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError, model_validator

from workbench.errors import BadInputError

KINDS = ("yesno", "number", "short", "choice", "locate", "keypoints", "open")
KEYED_KINDS = ("yesno", "number", "short", "choice", "locate")  # scored by rules (workbench.tasks.answers)
JUDGED_KINDS = ("keypoints", "open")  # scored by a judge only; unjudged without one
DEFAULT_TOLERANCE_S = 2.0


@dataclass(frozen=True)
class Question:
    """One question. ``answer``: "yes"/"no" (yesno), a float (number), the accepted answers (short), the right
    choice's text (choice), ``(start, end)`` seconds (locate), None (keypoints, open)."""

    id: str
    category: str
    kind: str
    prompt: str
    answer: str | float | tuple[str, ...] | tuple[float, float] | None = None
    tolerance: float = 0.0  # number: |parsed − answer| allowed
    tolerance_s: float = DEFAULT_TOLERANCE_S  # locate: seconds allowed outside the span
    choices: tuple[str, ...] = ()
    points: tuple[str, ...] = ()
    rubric: str | None = None
    recordings: tuple[str, ...] | None = None  # None: any recording

    def applies_to(self, recording_id: str) -> bool:
        return self.recordings is None or recording_id in self.recordings


@dataclass(frozen=True)
class QuestionSet:
    name: str
    questions: tuple[Question, ...]
    path: str = ""

    def questions_for(self, recording_id: str) -> tuple[Question, ...]:
        """The questions that apply to a recording (those without ``recordings`` apply to every one)."""
        return tuple(q for q in self.questions if q.applies_to(recording_id))

    def __len__(self) -> int:
        return len(self.questions)


# --- the edge: pydantic models of the TOML ------------------------------------------------------------

Text = Annotated[StrictStr, Field(min_length=1)]
Num = Union[StrictInt, StrictFloat]


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Text
    category: Text
    prompt: Text
    recordings: list[Text] | None = None

    @model_validator(mode="after")
    def _blank(self):
        for name in ("id", "category", "prompt"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name}: must not be blank")
        return self


class _YesNo(_Base):
    kind: Literal["yesno"]
    answer: Literal["yes", "no"]


class _Number(_Base):
    kind: Literal["number"]
    answer: Num
    tolerance: Annotated[Num, Field(ge=0)] = 0


class _Short(_Base):
    kind: Literal["short"]
    answer: Union[Text, Annotated[list[Text], Field(min_length=1)]]

    @model_validator(mode="after")
    def _normalisable(self):
        from workbench.metrics import normalize

        for alias in [self.answer] if isinstance(self.answer, str) else self.answer:
            if not normalize(alias):
                raise ValueError(f"answer: {alias!r} is empty once normalised; give words")
        return self


class _Choice(_Base):
    kind: Literal["choice"]
    choices: Annotated[list[Text], Field(min_length=2)]
    answer: Text

    @model_validator(mode="after")
    def _among(self):
        from workbench.metrics import normalize

        normalised = [normalize(c) for c in self.choices]
        if len(set(self.choices)) != len(self.choices):
            raise ValueError("choices: the same choice is listed twice")
        if "" in normalised or len(set(normalised)) != len(normalised):
            raise ValueError("choices: two choices read the same once normalised (or one is empty): answers "
                             "could not tell them apart")
        if self.answer not in self.choices:
            raise ValueError(f"answer: {self.answer!r} is not one of the choices {self.choices}")
        return self


class _Locate(_Base):
    kind: Literal["locate"]
    answer: Annotated[list[Num], Field(min_length=2, max_length=2)]
    tolerance_s: Annotated[Num, Field(ge=0)] = DEFAULT_TOLERANCE_S

    @model_validator(mode="after")
    def _span(self):
        start, end = self.answer
        if start < 0:
            raise ValueError(f"answer: the span starts before 0 s ({start})")
        if end < start:
            raise ValueError(f"answer: the span ends before it starts ([{start}, {end}])")
        return self


class _Keypoints(_Base):
    kind: Literal["keypoints"]
    points: Annotated[list[Text], Field(min_length=1)]


class _Open(_Base):
    kind: Literal["open"]
    rubric: Text


_MODELS = {"yesno": _YesNo, "number": _Number, "short": _Short, "choice": _Choice, "locate": _Locate,
           "keypoints": _Keypoints, "open": _Open}


_EXPECTED = {  # what a field holds, said where pydantic would list the members of a union
    ("number", "answer"): "must be a number", ("number", "tolerance"): "must be a number",
    ("locate", "answer"): "must be [start, end] in seconds", ("locate", "tolerance_s"): "must be a number",
    ("short", "answer"): "must be a string or a non-empty list of strings",
}


def _problem(exc: ValidationError, kind: str) -> tuple[str, str]:
    """(field, message) of a validation error's first problem."""
    err = exc.errors()[0]
    parts = err["loc"]
    msg = err["msg"]
    loc = [str(parts[0])] if parts else []
    if len(parts) > 1 and isinstance(parts[1], int):  # a list's item: "answer[1]"
        loc = [f"{parts[0]}[{parts[1]}]"]
    if len(parts) > 1 and not isinstance(parts[1], int) and (kind, str(parts[0])) in _EXPECTED:
        msg = _EXPECTED[(kind, str(parts[0]))]  # a union member's name ("int", "list[str]") is no help
    if err["type"] == "value_error":  # our own checks say "field: problem"
        msg = msg.removeprefix("Value error, ")
        if ": " in msg and not loc:
            field, msg = msg.split(": ", 1)
            return field, msg
    field = ".".join(loc) or "(question)"
    if err["type"] == "extra_forbidden":
        return field, "unknown key"
    if err["type"] == "missing":
        return field, "missing"
    got = err.get("input")
    return field, f"{msg} (got {got!r})" if got is not None and not isinstance(got, dict) else msg


def _question(raw: object, index: int, where: str, seen: set[str]) -> Question:
    qid = raw.get("id") if isinstance(raw, dict) else None
    label = f"question {qid!r}" if isinstance(qid, str) and qid.strip() else f"question #{index + 1} (no id)"
    if not isinstance(raw, dict):
        raise BadInputError(f"{where}: {label}: must be a [[question]] table")
    kind = raw.get("kind")
    if kind is None:
        raise BadInputError(f"{where}: {label}: field 'kind': missing; one of {', '.join(KINDS)}")
    if kind not in _MODELS:
        raise BadInputError(f"{where}: {label}: field 'kind': unknown kind {kind!r}; one of {', '.join(KINDS)}")
    try:
        m = _MODELS[kind].model_validate(raw)
    except ValidationError as exc:
        field, msg = _problem(exc, kind)
        raise BadInputError(f"{where}: {label}: field {field!r}: {msg}") from None
    if m.id in seen:
        raise BadInputError(f"{where}: {label}: field 'id': duplicate id (ids must be unique in the file)")
    seen.add(m.id)
    common = dict(id=m.id, category=m.category, kind=kind, prompt=m.prompt,
                  recordings=tuple(m.recordings) if m.recordings is not None else None)
    if kind == "yesno":
        return Question(**common, answer=m.answer)
    if kind == "number":
        return Question(**common, answer=float(m.answer), tolerance=float(m.tolerance))
    if kind == "short":
        return Question(**common, answer=(m.answer,) if isinstance(m.answer, str) else tuple(m.answer))
    if kind == "choice":
        return Question(**common, answer=m.answer, choices=tuple(m.choices))
    if kind == "locate":
        return Question(**common, answer=(float(m.answer[0]), float(m.answer[1])), tolerance_s=float(m.tolerance_s))
    if kind == "keypoints":
        return Question(**common, points=tuple(m.points))
    return Question(**common, rubric=m.rubric)


def parse_question_set(data: dict, where: str = "<question set>") -> QuestionSet:
    """A question set from parsed TOML; ``where`` (the file) starts every error message."""
    unknown = [k for k in data if k not in ("name", "question")]
    if unknown:
        raise BadInputError(f"{where}: field {unknown[0]!r}: unknown key; a question set has name and [[question]]")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadInputError(f"{where}: field 'name': {'missing' if name is None else 'must be a non-empty string'}")
    questions = data.get("question")
    if not isinstance(questions, list) or not questions:
        raise BadInputError(f"{where}: field 'question': no [[question]] tables")
    seen: set[str] = set()
    return QuestionSet(name, tuple(_question(q, i, where, seen) for i, q in enumerate(questions)), where)


def load_question_set(path: str | os.PathLike) -> QuestionSet:
    """Read and validate a question-set TOML file (one :class:`BadInputError` when it is malformed)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise BadInputError(f"question set {path} not found") from None
    except IsADirectoryError:
        raise BadInputError(f"question set {path} is a directory, not a TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path}: not valid TOML: {exc}") from None
    return parse_question_set(data, str(path))
