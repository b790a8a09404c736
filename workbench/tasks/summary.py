"""Questions about recordings, aggregated: accuracy per category per recipe with a percentile bootstrap interval
over questions, recipes compared on the same questions, and the cost per correct answer — the one aggregation of
``tasks`` that the terminal, summary.md and the HTML/MD/JSON/CSV reports render (:func:`question_figures`).

- **Accuracy**: a question's answer counts when it was scored: a keyed kind always is (an unread answer, or no
  answer because the call failed, is wrong and counted); a judged kind (keypoints, open) only once a judge marked
  it correct or not — until then it is missing, counted in ``not_judged`` ("not judged (n)") and in no figure,
  never 0. Per recipe version (grouped and labelled as the metric table does, ``name@hash`` when the rows hold
  several versions) and category, plus one ``all`` row per recipe. Results that did not run (unavailable, load
  failed, bad input) enter no figure, as in :mod:`workbench.aggregate`.
- **Interval**: :func:`workbench.aggregate.ratio_interval` (95% percentile bootstrap, scipy, seeded) over the
  questions, with the same minimum count as the recordings' (:data:`workbench.aggregate.MIN_RECORDINGS`): below
  it, no interval and a note ("too few questions (n=3)").
- **Judge scores**: keypoints (share of the points covered) and open (1–5) answers a judge scored: their mean, per
  kind, with the count.
- **Paired comparison**: two recipe versions on the questions both had scored on the same recording (same
  recording, same question id): the accuracy difference a − b, its 95% paired bootstrap interval over those
  questions, and the two-sided **exact McNemar test** — ``scipy.stats.binomtest`` of the discordant pairs
  (questions only a got right against questions only b got right, p = ½); statsmodels is not a dependency —
  Holm-adjusted over all the pairs (:func:`workbench.aggregate.holm`). Below the minimum count of shared questions:
  no interval and no p-value, a note instead.
- **Cost per correct answer** of a recipe version: its cost on the recordings it answered questions about, divided
  by its correct answers there. That cost is, per recording, the transcription run's cost (the row's
  ``cost_usd_per_audio_hour`` × the recording's hours: the stages in its timings, priced as the metric table prices
  them) plus each question's answering cost: the question's API usage × the row's API price when that price covers
  the recipe's own model calls or its ``answer`` stage (audio minutes, or input/output tokens, as the price is
  given), otherwise the answering seconds (``latency_s``) × the hardware price per hour. ``None`` (shown "—", with
  the reason) when any part cannot be measured (no price, a failed run, an answer without usage or latency) or
  when there is no correct answer — never 0 or infinity.
- **Median answer latency** per recipe version: the median ``latency_s`` of its answers (None when none was timed).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from workbench.aggregate import (MIN_RECORDINGS, as_results, holm, mcnemar_p, ratio_interval, recipe_key, recipe_labels,
                                 too_few)
from workbench.formatting import MISSING, num, p_value, pct, pct_interval
from workbench.result import RunResult, did_run
from workbench.tasks.answers import TaskResult

ALL = "all"  # the category of a recipe's row over all its questions
ANSWER_STAGE = "answer"  # the cascade stage that answers questions (an API price of this stage prices the answers)
JUDGED_SCORE_KINDS = ("keypoints", "open")


@dataclass(frozen=True)
class CategoryAccuracy:
    recipe: str
    category: str
    questions: int  # scored (correct or not): the denominator
    correct: int
    not_judged: int  # answered but not scored yet: in no figure
    ci: tuple[float, float] | None = None  # 95% percentile bootstrap over the questions
    ci_note: str | None = None  # why there is no interval
    #: (kind, mean judge score, how many) for the keypoints (share of points) / open (1–5) answers a judge scored
    scores: tuple[tuple[str, float, int], ...] = ()

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.questions if self.questions else None

    def to_json(self) -> dict:
        return {"recipe": self.recipe, "category": self.category, "questions": self.questions, "correct": self.correct,
                "accuracy": self.accuracy, "ci": list(self.ci) if self.ci else None, "ci_note": self.ci_note,
                "not_judged": self.not_judged,
                "mean_scores": {kind: {"mean": mean, "n": n} for kind, mean, n in self.scores}}


def _figure(recipe: str, category: str, ts: Sequence[TaskResult]) -> CategoryAccuracy:
    scored = [t for t in ts if t.correct is not None]
    pairs = [(1.0 if t.correct else 0.0, 1.0) for t in scored]
    means = []
    for kind in JUDGED_SCORE_KINDS:
        values = [t.score for t in ts if t.kind == kind and t.score is not None]
        if values:
            means.append((kind, sum(values) / len(values), len(values)))
    return CategoryAccuracy(recipe, category, len(scored), sum(1 for t in scored if t.correct),
                            sum(1 for t in ts if not t.judged), ratio_interval(pairs) if pairs else None,
                            too_few(len(pairs), "questions") if pairs else None, tuple(means))


def accuracy_by_category(rows: Iterable[tuple[str, TaskResult | dict]], *,
                         overall: bool = False) -> list[CategoryAccuracy]:
    """(recipe label, task result or its JSON) pairs → one figure per (recipe, category), in order of first
    appearance; ``overall``: each recipe's categories together, followed by its ``all`` row."""
    groups: dict[tuple[str, str], list[TaskResult]] = {}
    for recipe, t in rows:
        t = t if isinstance(t, TaskResult) else TaskResult.from_json(t)
        groups.setdefault((recipe, t.category), []).append(t)
    if not overall:
        return [_figure(recipe, category, ts) for (recipe, category), ts in groups.items()]
    out = []
    for recipe in dict.fromkeys(r for r, _ in groups):
        mine = [(c, ts) for (r, c), ts in groups.items() if r == recipe]
        out += [_figure(recipe, c, ts) for c, ts in mine]
        out.append(_figure(recipe, ALL, [t for _, ts in mine for t in ts]))
    return out


def accuracy_from_rows(rows: Iterable[RunResult | dict], *, overall: bool = False) -> list[CategoryAccuracy]:
    """The same from results.jsonl / store rows (or results) that carry ``tasks``: grouped by recipe version,
    labelled as the metric table labels them (``name``, or ``name@hash`` when the rows hold several versions of a
    recipe); rows that did not run enter no figure."""
    rows = list(rows)
    labels = recipe_labels(rows)
    return accuracy_by_category(((labels[recipe_key(r)], t) for r in rows if _ran(r) for t in _tasks(r)),
                                overall=overall)


def _ran(r: RunResult | dict) -> bool:
    return r.did_run if isinstance(r, RunResult) else did_run(r)


def _tasks(r: RunResult | dict):
    return r.tasks if isinstance(r, RunResult) else (r.get("tasks") or ())


def has_tasks(rows: Iterable[RunResult | dict]) -> bool:
    """Whether any row carries answered questions (the reports' Questions section appears only then)."""
    return any(_tasks(r) for r in rows)


# --- paired comparison ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairedAccuracy:
    a: str  # recipe labels
    b: str
    questions: int  # scored for both, on the same recording
    accuracy_a: float | None
    accuracy_b: float | None
    difference: float | None  # accuracy a − b
    ci: tuple[float, float] | None  # 95% paired bootstrap interval of the difference, over the questions
    only_a: int  # discordant pairs: a right, b wrong
    only_b: int  # b right, a wrong
    p_value: float | None  # two-sided exact McNemar (binomial test of the discordant pairs)
    p_holm: float | None = None  # Holm-adjusted over the pairs compared together
    note: str | None = None  # why there is no interval / p-value

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "questions": self.questions, "accuracy_a": self.accuracy_a,
                "accuracy_b": self.accuracy_b, "difference": self.difference,
                "ci": list(self.ci) if self.ci else None, "only_a_correct": self.only_a,
                "only_b_correct": self.only_b, "p_value": self.p_value, "p_holm": self.p_holm, "note": self.note}


def paired_accuracy(a: str, b: str, per_a: dict, per_b: dict) -> PairedAccuracy:
    """Recipe a against b on the questions both had scored: ``per_*`` maps (recording, question id) → correct."""
    shared = [(per_a[k], per_b[k]) for k in per_a if k in per_b]
    n = len(shared)
    if not n:
        return PairedAccuracy(a, b, 0, None, None, None, None, 0, 0, None)
    acc_a, acc_b = sum(x for x, _ in shared) / n, sum(y for _, y in shared) / n
    only_a = sum(1 for x, y in shared if x and not y)
    only_b = sum(1 for x, y in shared if y and not x)
    if note := too_few(n, "questions"):
        return PairedAccuracy(a, b, n, acc_a, acc_b, acc_a - acc_b, None, only_a, only_b, None, None, note)
    ci = ratio_interval([(float(x) - float(y), 1.0) for x, y in shared])  # a mean difference: Σd / n
    p = mcnemar_p(only_a, only_b)
    return PairedAccuracy(a, b, n, acc_a, acc_b, acc_a - acc_b, ci, only_a, only_b, p, p)


# --- cost per correct answer ------------------------------------------------------------------------


def answer_cost_usd(t: TaskResult, r: RunResult) -> float | None:
    """What answering one question cost (see the module docstring): API usage × the row's API price when it
    prices the recipe's model calls or its answer stage, else answering seconds × the hardware $/hour; None when
    that cannot be measured."""
    price = r.api_price
    if price is not None and r.api_stage in (None, "model", ANSWER_STAGE):
        u = t.usage
        if u is None:
            return None
        if price.usd_per_audio_minute is not None:
            return price.usd_per_audio_minute * u.audio_s / 60 if u.audio_s and u.audio_s > 0 else None
        if u.input_tokens is None or u.output_tokens is None:
            return None
        return (u.input_tokens * (price.usd_per_1m_input_tokens or 0)
                + u.output_tokens * (price.usd_per_1m_output_tokens or 0)) / 1e6
    if r.price is not None and t.latency_s is not None and t.latency_s >= 0:
        return t.latency_s * r.price.usd_per_hour / 3600
    return None


def transcription_cost_usd(r: RunResult) -> float | None:
    """The row's own run (its stages, as the metric table prices them) for the whole recording, in $."""
    c = r.cost_usd_per_audio_hour
    return None if c is None or not r.recording.duration_s else c * r.recording.duration_s / 3600


@dataclass(frozen=True)
class RecipeQuestions:
    """One recipe version's questions: how many, correct, not judged, what they cost, how fast they came."""

    recipe: str
    recordings: int  # recordings it answered questions about
    asked: int  # questions asked (every answer, judged or not)
    scored: int
    correct: int
    not_judged: int
    cost_usd: float | None  # transcription + answering, on those recordings
    cost_per_correct_usd: float | None
    cost_note: str | None  # why there is no cost per correct answer
    median_latency_s: float | None

    def to_json(self) -> dict:
        return {"recipe": self.recipe, "recordings": self.recordings, "asked": self.asked, "scored": self.scored,
                "correct": self.correct, "not_judged": self.not_judged, "cost_usd": self.cost_usd,
                "cost_per_correct_usd": self.cost_per_correct_usd, "cost_note": self.cost_note,
                "median_answer_latency_s": self.median_latency_s}


def _recipe_questions(label: str, rs: Sequence[RunResult]) -> RecipeQuestions:
    ts = [t for r in rs for t in r.tasks]
    correct = sum(1 for t in ts if t.correct)
    transcription = [transcription_cost_usd(r) for r in rs]
    answering = [answer_cost_usd(t, r) for r in rs for t in r.tasks]
    missing = []
    if (k := sum(c is None for c in transcription)):
        missing.append(f"transcription cost not measured on {k} recording{'s' if k > 1 else ''}")
    if (k := sum(c is None for c in answering)):
        missing.append(f"answering cost not measured for {k} question{'s' if k > 1 else ''}")
    cost = None if missing else sum(transcription) + sum(answering)
    if missing and not any(r.price or r.api_price for r in rs):
        missing = ["no price: give --hardware, or a recipe's API price"]
    note = "; ".join(missing) if missing else None if correct else "no correct answer"
    latencies = [t.latency_s for t in ts if t.latency_s is not None]
    return RecipeQuestions(label, len(rs), len(ts), sum(1 for t in ts if t.correct is not None), correct,
                           sum(1 for t in ts if not t.judged), cost,
                           cost / correct if cost is not None and correct else None, note,
                           statistics.median(latencies) if latencies else None)


# --- everything together ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionRow:
    """One question on one recording, and each recipe version's answer (None: it was not asked, or did not run)."""

    recording: str  # the recording's id
    id: str
    category: str
    kind: str
    prompt: str
    answers: tuple[TaskResult | None, ...]  # in the order of QuestionFigures.recipes


@dataclass(frozen=True)
class QuestionFigures:
    recipes: tuple[str, ...]  # recipe labels, in order of first appearance
    accuracy: tuple[CategoryAccuracy, ...]  # per recipe: its categories, then its ``all`` row
    paired: tuple[PairedAccuracy, ...]
    per_recipe: tuple[RecipeQuestions, ...]
    questions: tuple[QuestionRow, ...]

    def to_json(self) -> dict:
        return {"accuracy": [a.to_json() for a in self.accuracy], "paired": [p.to_json() for p in self.paired],
                "recipes": [r.to_json() for r in self.per_recipe],
                "questions": [{"recording": q.recording, "id": q.id, "category": q.category, "kind": q.kind,
                               "prompt": q.prompt,
                               "answers": {name: (t.to_json() if t else None)
                                           for name, t in zip(self.recipes, q.answers)}}
                              for q in self.questions]}


def question_figures(rows: Sequence[RunResult | dict]) -> QuestionFigures | None:
    """The Questions section's figures of results / results.jsonl rows (see the module docstring); None when no
    row that ran carries questions."""
    results = [r for r in as_results(rows) if r.did_run and r.tasks]
    if not results:
        return None
    labels = recipe_labels(results)
    by_recipe: dict[str, list[RunResult]] = {}
    for r in results:
        by_recipe.setdefault(labels[recipe_key(r)], []).append(r)
    names = tuple(by_recipe)
    accuracy = accuracy_by_category(((name, t) for name, rs in by_recipe.items() for r in rs for t in r.tasks),
                                    overall=True)
    scored = {name: {(r.recording.path, t.id): bool(t.correct) for r in rs for t in r.tasks if t.correct is not None}
              for name, rs in by_recipe.items()}
    pairs = [paired_accuracy(a, b, scored[a], scored[b]) for i, a in enumerate(names) for b in names[i + 1:]]
    pairs = [replace(p, p_holm=h) for p, h in zip(pairs, holm([p.p_value for p in pairs]))]
    table: dict[tuple[str, str], dict] = {}
    for name, rs in by_recipe.items():
        for r in rs:
            for t in r.tasks:
                entry = table.setdefault((r.recording.path, t.id), {"recording": r.recording.id, "task": t, "by": {}})
                entry["by"].setdefault(name, t)
    questions = tuple(QuestionRow(e["recording"], e["task"].id, e["task"].category, e["task"].kind, e["task"].prompt,
                                  tuple(e["by"].get(n) for n in names)) for e in table.values())
    return QuestionFigures(names, tuple(accuracy), tuple(pairs),
                           tuple(_recipe_questions(n, rs) for n, rs in by_recipe.items()), questions)


# --- cells and tables every face writes (escape them for the medium they go to: they hold model output) --------


def score_cell(a: CategoryAccuracy) -> str:
    """The judge scores of a figure: "keypoints 67% (n=3); open 3.5/5 (n=2)", or —."""
    parts = [f"keypoints {100 * m:.0f}% (n={n})" if kind == "keypoints" else f"open {m:.1f}/5 (n={n})"
             for kind, m, n in a.scores]
    return "; ".join(parts) or MISSING


def accuracy_cell(a: CategoryAccuracy) -> str:
    """"70.0% (7/10)", — when no question was scored."""
    return f"{pct(a.accuracy)} ({a.correct}/{a.questions})" if a.questions else MISSING


def not_judged_cell(n: int) -> str:
    return f"not judged ({n})" if n else "0"


def mark(t: TaskResult | None) -> str:
    """How an answer was scored: correct / wrong (with why, when unread or failed) / not judged; the judge score and
    the locate error when there are."""
    if t is None:
        return "not asked"
    parts = ["correct" if t.correct else "wrong" if t.correct is False else "not judged"]
    if t.score is not None:
        parts.append(f"{100 * t.score:.0f}% of points" if t.kind == "keypoints" else f"score {t.score:g}/5")
    if t.error_s is not None:
        parts.append(f"{t.error_s:.1f} s off")
    if t.cut_short:
        parts.append("cut short at the token cap")
    if t.error:
        parts.append(f"no answer: {t.error}")
    elif t.correct is False and t.parsed is None and t.judge and t.judge.note:
        parts.append(f"unread: {t.judge.note}")
    return ", ".join(parts)


ACCURACY_HEADER = ["recipe", "category", "accuracy", "95% CI (bootstrap over questions)", "judge score", "not judged"]
PAIRED_HEADER = ["recipes", "questions", "accuracy difference", "95% CI", "only first right", "only second right",
                 "p (exact McNemar)", "p (Holm)"]
COST_HEADER = ["recipe", "recordings", "questions", "correct", "not judged", "cost $", "$ per correct answer",
               "median answer latency s"]


def accuracy_rows(f: QuestionFigures) -> list[list[str]]:
    return [[a.recipe, a.category, accuracy_cell(a), pct_interval(a.ci, a.ci_note) if a.questions else MISSING,
             score_cell(a), not_judged_cell(a.not_judged)] for a in f.accuracy]


def paired_rows(f: QuestionFigures) -> list[list[str]]:
    return [[f"{p.a} − {p.b}", str(p.questions), pct(p.difference), pct_interval(p.ci, p.note), str(p.only_a),
             str(p.only_b), p_value(p.p_value, p.note), p_value(p.p_holm, p.note)] for p in f.paired]


def cost_rows(f: QuestionFigures) -> list[list[str]]:
    return [[r.recipe, str(r.recordings), str(r.asked), str(r.correct), not_judged_cell(r.not_judged),
             num(r.cost_usd, ".4f"), num(r.cost_per_correct_usd, ".5f") + (f" ({r.cost_note})" if r.cost_note else ""),
             num(r.median_latency_s, ".2f")] for r in f.per_recipe]


def accuracy_matrix(f: QuestionFigures) -> tuple[list[str], list[list[str]]]:
    """Categories × recipes (the terminal's compact table): "70.0% (7/10), 95% CI 40.0–90.0%", plus "not judged
    (n)" where answers wait for a judge."""
    cells = {(a.recipe, a.category): a for a in f.accuracy}
    categories = list(dict.fromkeys(a.category for a in f.accuracy if a.category != ALL)) + [ALL]
    body = []
    for c in categories:
        row = [c]
        for name in f.recipes:
            a = cells.get((name, c))
            if a is None:
                row.append(MISSING)
                continue
            text = accuracy_cell(a)
            if a.questions:
                text += f", 95% CI {pct_interval(a.ci, a.ci_note)}"
            if a.scores:
                text += f", {score_cell(a)}"
            if a.not_judged:
                text += f", {not_judged_cell(a.not_judged)}"
            row.append(text)
        body.append(row)
    return ["category", *f.recipes], body


QUESTIONS_NOTE = (
    "Accuracy: correct / scored answers; an answer that could not be read, or never came, is wrong and counted; "
    "keypoints/open answers no judge has scored are \"not judged\" and in no figure. 95% CI: percentile bootstrap "
    "over the questions (seeded), from {n} questions. Paired comparisons: the questions both recipes had scored on "
    "the same recording; 95% paired bootstrap interval of the accuracy difference; two-sided exact McNemar test "
    "(binomial test of the questions only one of the two got right), Holm-adjusted over the pairs; from {n} shared "
    "questions. Cost per correct answer: (the recipe's run cost on the recordings it answered about — its $/audio "
    "hour × their hours — plus each answer's cost: API usage × the API price, else answering seconds × the "
    "hardware $/hour) ÷ its correct answers; — when a part is not measured or no answer is correct.")


def questions_note() -> str:
    return QUESTIONS_NOTE.format(n=MIN_RECORDINGS)


def questions_markdown(f: QuestionFigures, md, heading: str = "##") -> list[str]:
    """The Questions section as Markdown lines (``md`` escapes a cell: every cell here may hold model output)."""
    def table(header, body):
        return ["| " + " | ".join(md(h) for h in header) + " |", "|" + "---|" * len(header),
                *("| " + " | ".join(md(c) for c in row) + " |" for row in body), ""]

    lines = [f"{heading} Questions", "", *table(ACCURACY_HEADER, accuracy_rows(f))]
    if f.paired:
        lines += [f"{heading}# Paired comparisons (accuracy, the same questions)", "",
                  *table(PAIRED_HEADER, paired_rows(f))]
    lines += [f"{heading}# Cost per correct answer", "", *table(COST_HEADER, cost_rows(f))]
    header = ["recording", "question", "category", "kind", "prompt", *f.recipes]
    body = [[q.recording, q.id, q.category, q.kind, q.prompt,
             *(f"{t.answer if t.answer else '(no answer)'} [{mark(t)}]" if t else "not asked" for t in q.answers)]
            for q in f.questions]
    lines += [f"{heading}# Answers", "", *table(header, body), md(questions_note())]
    return lines
