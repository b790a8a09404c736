"""The one aggregation (workbench/aggregate.py): the same figures from objects and from rows, the one metric
table every face renders, and the verdict — which recipe is best on each axis, by how much, and whether that is
significant on this many recordings."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from workbench.aggregate import METRICS, as_results, metric_rows, summarize, verdict
from workbench.cost import HardwarePrice
from workbench.datamodel import Recording, StageTiming, Transcript
from workbench.hallucination.measures import Hallucination, Repetition
from workbench.metrics import ErrorCounts
from workbench.result import RunResult
from workbench.scoring import Scores

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = [json.loads(line) for line in (Path(__file__).parent / "golden" / "results.jsonl").read_text().splitlines()]
PRICE = HardwarePrice("box", 0.36, "a test", "2026-01-01")


def result(recipe: str, k: int, errors: int, *, asr_s: float = 6.0, error=None, error_stage=None, phrases=(),
           nonspeech_words=None) -> RunResult:
    halluc = Hallucination(nonspeech_words, None if nonspeech_words is None else 30.0, tuple(phrases), Repetition(0, 1, ""))
    return RunResult("run", recipe, recipe * 3, "fake", Recording(f"rec{k}", f"/rec{k}.wav", 60.0, 16000, 1),
                     Transcript(), (StageTiming("load", 1.0), StageTiming("asr", asr_s, asr_s)),
                     scores=Scores(ErrorCounts(errors, 0, 0, 20 - errors, 20), None, "whisper-english", "r.stm", "stm",
                                   hallucination=halluc),
                     error=error, error_stage=error_stage, price=PRICE)


def test_rows_and_objects_give_the_same_summaries():
    from_rows, from_objects = summarize(GOLDEN), summarize(as_results(GOLDEN))
    assert [s.to_json() for s in from_rows] == [s.to_json() for s in from_objects]
    by = {s.shown: s for s in from_rows}
    assert by["cannot-load"].recordings == 0 and by["cannot-load"].not_run == 4  # did not run: counted, in no figure
    assert by["sloppy"].failed == 1 and by["sloppy"].not_run == 1  # the broken file did not run for anyone
    assert by["diarizes"].cpwer_rate is not None and by["formats"].drift is not None


def test_every_metric_row_has_one_cell_per_recipe_and_marks_only_measured_cells():
    summaries = summarize(GOLDEN)
    rows = metric_rows(summaries)
    labels = [r.label for r in rows]
    assert set(m.label for m in METRICS if m.label != "WER 95% CI (bootstrap over recordings)") <= set(labels)
    for row in rows:
        assert len(row.cells) == len(summaries)
        assert not any(b and c in ("—", "did not run") for c, b in zip(row.cells, row.best))


def test_verdict_names_the_best_by_how_much_and_that_it_is_significant():
    results = [result("good", k, 1, asr_s=2.0, phrases=()) for k in range(8)]
    results += [result("bad", k, 5, asr_s=6.0, phrases=("thank-you",)) for k in range(8)]
    v = verdict(results)
    axes = {a.name: a for a in v.axes}
    assert axes["accuracy"].best == "good" and axes["speed"].best == "good" and axes["cost"].best == "good"
    accuracy = axes["accuracy"].sentence
    assert "good is most accurate: WER 5.0% against WER 25.0% for bad (20.0 points lower)" in accuracy
    assert "significant on n=8 recordings" in accuracy and "not significant" not in accuracy
    assert "3.0× faster" in axes["speed"].sentence and "significant on n=8" in axes["speed"].sentence
    assert "67% lower" in axes["cost"].sentence
    # no reference marks non-speech here: stock phrases only
    assert "good produced no stock hallucination phrase" in axes["hallucination"].sentence
    assert "bad (thank-you)" in axes["hallucination"].sentence
    assert len(v.lines) == 4  # one sentence per axis, no "did not run"


def test_verdict_says_too_few_recordings_and_names_recipes_that_did_not_run():
    results = [result("a", k, 1) for k in range(2)] + [result("b", k, 4) for k in range(2)]
    results += [result("api", k, 20, error="unavailable: no key", error_stage="check") for k in range(2)]
    v = verdict(results)
    accuracy = next(a for a in v.axes if a.name == "accuracy").sentence
    assert accuracy.startswith("Accuracy: a is most accurate") and "n=2 recordings: too few to tell" in accuracy
    assert v.lines[-1] == "Did not run (in no verdict): api."
    assert "api" not in " ".join(a.sentence for a in v.axes)


def test_verdict_says_when_an_axis_is_not_measured():
    unscored = [RunResult("run", "a", "aaa", "fake", Recording("r", "/r.wav", 60.0, 16000, 1), Transcript())]
    sentences = {a.name: a.sentence for a in verdict(unscored).axes}
    assert sentences["accuracy"] == "Accuracy: not measured (no reference text)."
    assert sentences["cost"].startswith("Cost: not measured (no price")
    timed = [result("a", k, 1, nonspeech_words=0) for k in range(2)] + [result("b", k, 1, nonspeech_words=3) for k in range(2)]
    halluc = next(a for a in verdict(timed).axes if a.name == "hallucination")
    assert halluc.best == "a" and "0.0 words/h of non-speech against 360.0" in halluc.sentence


def test_every_comparison_shows_the_verdict_first():
    from workbench.dashboard.tables import verdict_html
    from workbench.report import render
    from workbench.summary import markdown

    lines = verdict(GOLDEN).lines
    md = markdown(as_results(GOLDEN), title="Comparison")
    assert md.index("## Verdict") < md.index("| metric |") and "Did not run (in no verdict)" in md
    page = render(GOLDEN, "golden", "html")
    assert page.index("id=verdict") < page.index("id=figures")
    assert json.loads(render(GOLDEN, "golden", "json"))["verdict"] == lines
    assert "## Verdict" in render(GOLDEN, "golden", "md")
    assert verdict_html(GOLDEN).count("<li>") == len(lines)


def test_no_module_imports_a_private_name_of_another():
    """Formatting helpers live in workbench/formatting.py: nothing imports a sibling's ``_private`` name."""
    offenders = []
    for path in (ROOT / "workbench").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("workbench"):
                offenders += [f"{path.name}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert offenders == []


def test_figures_a_row_never_held_are_missing_not_zero():
    """A hand-written or older row without usage or repetition measures: model calls and repeated n-grams are
    "—" (not measured), not 0."""
    row = {"run_id": "r", "recipe": "a", "recipe_hash": "aa", "error": None,
           "recording": {"id": "r1", "path": "/r1.wav", "duration_s": 60.0}, "transcript": {"text": "hi", "segments": []},
           "metrics": {"substitutions": 1, "deletions": 0, "insertions": 0, "reference_words": 10,
                       "hallucination": {"nonspeech_words": None, "nonspeech_s": None, "stock_phrases": []}},
           "timings": {"asr": 6.0}, "processing_s": 6.0, "rtfx": 10.0}
    [s] = summarize([row])
    assert s.calls is None and s.repeat_excess is None and s.wer == 0.1
    cells = {r.label: r.cells for r in metric_rows([s])}
    assert cells["model calls"] == ("—",) and cells["repeated n-grams beyond the reference"] == ("—",)


def test_compare_prints_the_verdict_in_the_terminal(tmp_path, monkeypatch):
    from fake_pipeline import BEHAVIOUR, register
    from typer.testing import CliRunner

    from workbench.cli import app
    from workbench.references import load_reference

    register(monkeypatch)
    stm = ROOT / "samples" / "pyannote" / "sample.stm"
    ref = load_reference(stm).text
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    for name in ("fake-exact", "fake-half"):
        (recipes / f"{name}.toml").write_text(f'pipeline = "test-fake"\n[model]\nbackend = "fake"\nlabel = "{name}"\n')
    BEHAVIOUR.update({"fake-exact": {"text": ref}, "fake-half": {"text": " ".join(ref.split()[:40])}})
    monkeypatch.setenv("WORKBENCH_RECIPES", str(recipes))
    result = CliRunner().invoke(app, ["compare", str(ROOT / "samples" / "pyannote" / "sample.wav"), "-r", str(stm),
                                      "--recipes", "fake-exact,fake-half", "--out", str(tmp_path / "out")],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Accuracy: fake-exact is most accurate: WER 0.0%" in result.output
    assert "n=1 recordings: too few to tell" in result.output
    assert result.output.index("Accuracy:") < result.output.index("reference words")  # above the table
