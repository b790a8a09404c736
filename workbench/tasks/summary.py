"""Accuracy per category per recipe over answered questions, with a percentile bootstrap interval over questions.

A question's answer counts when it was scored: a keyed kind always is (an unread answer is wrong and counted); a
judged kind (keypoints, open) only once a judge marked it correct or not — until then it is missing, counted in
``not_judged`` and in no figure. The interval is :func:`workbench.aggregate.ratio_interval` (scipy, seeded) over
the questions, with the same minimum count as the recordings' (:data:`workbench.aggregate.MIN_RECORDINGS`):
below it, no interval and a note ("too few questions (n=3)").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from workbench.aggregate import ratio_interval, recipe_key, recipe_labels, too_few
from workbench.tasks.answers import TaskResult


@dataclass(frozen=True)
class CategoryAccuracy:
    recipe: str
    category: str
    questions: int  # scored (correct or not): the denominator
    correct: int
    not_judged: int  # answered but not scored yet: in no figure
    ci: tuple[float, float] | None = None  # 95% percentile bootstrap over the questions
    ci_note: str | None = None  # why there is no interval

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.questions if self.questions else None


def accuracy_by_category(rows: Iterable[tuple[str, TaskResult | dict]]) -> list[CategoryAccuracy]:
    """(recipe label, task result or its JSON) pairs → one figure per (recipe, category), in order of first
    appearance."""
    groups: dict[tuple[str, str], list[TaskResult]] = {}
    for recipe, t in rows:
        t = t if isinstance(t, TaskResult) else TaskResult.from_json(t)
        groups.setdefault((recipe, t.category), []).append(t)
    out = []
    for (recipe, category), ts in groups.items():
        scored = [t for t in ts if t.correct is not None]
        pairs = [(1.0 if t.correct else 0.0, 1.0) for t in scored]
        out.append(CategoryAccuracy(recipe, category, len(scored), sum(1 for t in scored if t.correct),
                                    len(ts) - len(scored), ratio_interval(pairs) if pairs else None,
                                    too_few(len(pairs), "questions") if pairs else None))
    return out


def accuracy_from_rows(rows: Iterable[dict]) -> list[CategoryAccuracy]:
    """The same from results.jsonl / store rows that carry ``tasks``: grouped by recipe version, labelled as the
    metric table labels them (``name``, or ``name@hash`` when the rows hold several versions of a recipe)."""
    rows = list(rows)
    labels = recipe_labels(rows)
    return accuracy_by_category((labels[recipe_key(r)], t) for r in rows for t in r.get("tasks") or ())
