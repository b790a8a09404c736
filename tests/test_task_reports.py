"""The Questions figures and their faces (workbench/tasks/summary.py, summary.md, the reports, the terminal tables):
accuracy per category per recipe with the bootstrap interval over questions, the paired exact McNemar test, cost
per correct answer, and model answers escaped everywhere they are written."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from workbench import report
from workbench.aggregate import MIN_RECORDINGS
from workbench.cost import ApiPrice, HardwarePrice
from workbench.datamodel import Recording, StageTiming, Transcript, Usage
from workbench.result import RunResult
from workbench.summary import markdown, question_tables
from workbench.tasks.answers import Judge, TaskResult, task_result
from workbench.tasks.questions import Question
from workbench.tasks.summary import ALL, accuracy_rows, cost_rows, mcnemar_p, paired_rows, question_figures

PRICE = HardwarePrice("box", 0.36, "a test", "2026-01-01")  # $0.36/h: $0.0001 per second


def task(i, correct, *, category="content", kind="yesno", answer="yes", latency_s=2.0, score=None, usage=None):
    judge = None if correct is None and score is None else Judge("rules")
    return TaskResult(f"q{i}", category, kind, f"question {i}?", answer, None, correct, score, None, judge,
                      latency_s, usage)


def result(recipe, k, tasks, *, price=PRICE, api_price=None, api_stage=None, error=None, recipe_hash=None,
           usage=Usage()) -> RunResult:
    """A 60 s recording processed in 6 s (RTFx 10): at $0.36/h that is $0.036/audio hour, $0.0006 for the minute."""
    return RunResult("run", recipe, recipe_hash or recipe * 3, "fake",
                     Recording(f"rec{k}", f"/rec{k}.wav", 60.0, 16000, 1), Transcript(),
                     (StageTiming("load", 1.0), StageTiming("asr", 6.0, 6.0)), error=error, price=price,
                     api_price=api_price, api_stage=api_stage, usage=usage, tasks=tuple(tasks))


def by(figures, recipe, category):
    return next(a for a in figures.accuracy if a.recipe == recipe and a.category == category)


# --- accuracy -------------------------------------------------------------------------------------------


def test_accuracy_per_category_per_recipe_with_an_all_row_unread_wrong_and_unjudged_counted_apart():
    unread = task_result(Question(id="u", category="sound", kind="yesno", prompt="Dog?", answer="yes"), "maybe")
    rows = [result("cascade", 0, [task(0, True), task(1, False), unread,
                                  task(2, None, kind="open", category="summary"),
                                  task(3, None, kind="keypoints", category="summary", score=0.5),
                                  task(4, True, kind="open", category="summary", score=4.0)])]
    f = question_figures(rows)
    content, sound, summary, everything = (by(f, "cascade", c) for c in ("content", "sound", "summary", ALL))
    assert (content.questions, content.correct, content.accuracy) == (2, 1, 0.5)
    assert (sound.questions, sound.correct, sound.accuracy) == (1, 0, 0.0)  # unread: wrong and counted
    # not judged: in no figure, counted; a keypoints score without a verdict is judged but not in the accuracy
    assert (summary.questions, summary.correct, summary.not_judged) == (1, 1, 1)
    assert summary.scores == (("keypoints", 0.5, 1), ("open", 4.0, 1))
    assert (everything.questions, everything.correct, everything.not_judged) == (4, 2, 1)
    assert [a.category for a in f.accuracy] == ["content", "sound", "summary", ALL]
    cells = {row[1]: row for row in accuracy_rows(f)}
    assert cells["summary"][5] == "not judged (1)" and cells["summary"][4] == "keypoints 50% (n=1); open 4.0/5 (n=1)"
    assert cells["content"][2] == "50.0% (1/2)" and cells["content"][3] == "too few questions (n=2)"


def test_a_category_nobody_judged_shows_not_judged_never_zero():
    f = question_figures([result("llm", 0, [task(0, None, kind="open"), task(1, None, kind="open")])])
    (open_row, all_row) = accuracy_rows(f)
    assert open_row[2:] == ["—", "—", "—", "not judged (2)"]
    assert by(f, "llm", "content").accuracy is None


def test_the_interval_over_questions_appears_from_the_minimum_count():
    enough = [task(i, i % 3 != 0) for i in range(MIN_RECORDINGS)]
    few = [task(i, i % 3 != 0) for i in range(MIN_RECORDINGS - 1)]
    f = question_figures([result("a", 0, enough), result("b", 0, few)])
    low, high = by(f, "a", "content").ci
    assert 0 <= low <= by(f, "a", "content").accuracy <= high <= 1
    b = by(f, "b", "content")
    assert b.ci is None and b.ci_note == f"too few questions (n={MIN_RECORDINGS - 1})"


def test_rows_that_did_not_run_and_rows_read_back_from_json():
    ran = result("a", 0, [task(0, True), task(1, False)])
    skipped = result("a", 1, [task(0, False)], error="unavailable: no key")
    f = question_figures([json.loads(json.dumps(r.to_json())) for r in (ran, skipped)])
    assert by(f, "a", ALL).questions == 2 and f.per_recipe[0].recordings == 1
    assert question_figures([result("a", 0, [])]) is None  # no questions: no section


# --- paired comparison ----------------------------------------------------------------------------------


def test_exact_mcnemar_on_a_known_table():
    # 7 questions only a got right, 1 only b: two-sided binomial p = 2 × (C(8,7) + C(8,8)) / 2⁸
    assert mcnemar_p(7, 1) == pytest.approx(2 * (8 + 1) / 256)
    assert mcnemar_p(1, 7) == mcnemar_p(7, 1) and mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(10, 0) == pytest.approx(2 / 2 ** 10)


def paired_rows_for(both, only_a, only_b, neither, recipes=("a", "b")):
    outcomes = [(True, True)] * both + [(True, False)] * only_a + [(False, True)] * only_b + [(False, False)] * neither
    return [result(name, 0, [task(i, o[j]) for i, o in enumerate(outcomes)]) for j, name in enumerate(recipes)]


def test_paired_comparison_of_two_recipes_on_the_same_questions():
    f = question_figures(paired_rows_for(8, 7, 1, 4))
    (p,) = f.paired
    assert (p.questions, p.only_a, p.only_b) == (20, 7, 1)
    assert p.difference == pytest.approx(0.75 - 0.45)
    assert p.p_value == pytest.approx(18 / 256) and p.p_holm == p.p_value  # a family of one
    low, high = p.ci
    assert low <= p.difference <= high
    assert paired_rows(f)[0][6] == "0.070"


def test_paired_comparison_pairs_questions_by_recording_and_id_and_adjusts_over_pairs():
    rows = paired_rows_for(8, 7, 1, 4, ("a", "b"))
    rows.append(result("c", 0, [task(i, True) for i in range(20)]))
    rows.append(result("c", 1, [task(i, False) for i in range(20)]))  # another recording: no pair with a or b
    f = question_figures(rows)
    assert [(p.a, p.b) for p in f.paired] == [("a", "b"), ("a", "c"), ("b", "c")]
    ab, ac, bc = f.paired
    assert ac.questions == 20 and ac.only_b == 5 and ac.only_a == 0  # c right on all 20 of rec0
    # Holm over the 3 pairs: bc (p = 2/2¹¹) × 3, ac (2/2⁵) × 2, ab (18/256) × 1 but never below the one before
    assert bc.p_value == pytest.approx(2 / 2 ** 11) and bc.p_holm == pytest.approx(3 * bc.p_value)
    assert ac.p_value == pytest.approx(2 / 2 ** 5) and ac.p_holm == pytest.approx(2 * ac.p_value)
    assert ab.p_value == pytest.approx(18 / 256) and ab.p_holm == ac.p_holm


def test_paired_comparison_below_the_minimum_count_has_no_test_and_says_why():
    f = question_figures(paired_rows_for(1, 2, 0, 0))
    (p,) = f.paired
    assert p.p_value is None and p.ci is None and p.note == "too few questions (n=3)"
    assert p.difference == pytest.approx(2 / 3)


# --- cost per correct answer ------------------------------------------------------------------------------


def test_cost_per_correct_answer_with_the_hardware_price():
    # transcription: $0.036/audio h × 1/60 h = $0.0006; answering: 4 × 2 s × $0.0001/s = $0.0008; 2 correct
    tasks = [task(0, True), task(1, True), task(2, False), task(3, None, kind="open")]
    f = question_figures([result("cascade", 0, tasks)])
    (r,) = f.per_recipe
    assert r.cost_usd == pytest.approx(0.0014)
    assert r.cost_per_correct_usd == pytest.approx(0.0007) and r.cost_note is None
    assert r.median_latency_s == 2.0 and (r.asked, r.scored, r.correct, r.not_judged) == (4, 3, 2, 1)
    assert cost_rows(f)[0][6] == "0.00070"


def test_cost_per_correct_answer_with_an_api_price():
    tokens = ApiPrice("api", "a test", "2026-01-01", usd_per_1m_input_tokens=2.0, usd_per_1m_output_tokens=10.0)
    usage = Usage(audio_s=60.0, calls=1, input_tokens=1000, output_tokens=100)  # the transcription call
    answer = Usage(audio_s=60.0, calls=1, input_tokens=500, output_tokens=50)  # $0.001 + $0.0005
    row = result("llm", 0, [task(0, True, usage=answer, latency_s=1.0), task(1, True, usage=answer, latency_s=3.0)],
                 price=None, api_price=tokens, usage=usage)
    (r,) = question_figures([row]).per_recipe
    assert r.cost_usd == pytest.approx(0.003 + 2 * 0.0015) and r.cost_per_correct_usd == pytest.approx(0.003)
    assert r.median_latency_s == 2.0
    per_minute = ApiPrice("api", "a test", "2026-01-01", usd_per_audio_minute=0.006)
    row = result("llm", 0, [task(0, True, usage=Usage(audio_s=30.0, calls=1))], price=None, api_price=per_minute,
                 usage=Usage(audio_s=60.0, calls=1))
    (r,) = question_figures([row]).per_recipe
    assert r.cost_usd == pytest.approx(0.006 + 0.003) and r.cost_per_correct_usd == pytest.approx(0.009)


def test_a_hybrid_cascade_prices_its_answers_on_the_hardware_unless_the_api_prices_the_answer_stage():
    tokens = ApiPrice("api", "a test", "2026-01-01", usd_per_1m_input_tokens=2.0, usd_per_1m_output_tokens=10.0)
    answer = Usage(audio_s=0.0, calls=1, input_tokens=500, output_tokens=50)
    local = result("cascade", 0, [task(0, True, usage=answer)], api_price=tokens, api_stage="format",
                   usage=Usage(audio_s=60.0, calls=1, input_tokens=0, output_tokens=0))
    (r,) = question_figures([local]).per_recipe
    assert r.cost_usd == pytest.approx(local.cost_usd_per_audio_hour / 60 + 2 * 0.0001)
    remote = result("cascade", 0, [task(0, True, usage=answer)], api_price=tokens, api_stage="answer",
                    usage=Usage(audio_s=60.0, calls=1, input_tokens=0, output_tokens=0))
    (r,) = question_figures([remote]).per_recipe
    assert r.cost_usd == pytest.approx(remote.cost_usd_per_audio_hour / 60 + 0.0015)


@pytest.mark.parametrize("row, note", [
    (result("a", 0, [task(0, True)], price=None), "no price: give --hardware, or a recipe's API price"),
    (result("a", 0, [task(0, True, latency_s=None)]), "answering cost not measured for 1 question"),
    (result("a", 0, [task(0, True)], error="boom"), "transcription cost not measured on 1 recording"),
    (result("a", 0, [task(0, True, usage=None)], price=None,
            api_price=ApiPrice("api", "t", "d", usd_per_1m_input_tokens=1.0, usd_per_1m_output_tokens=1.0),
            usage=Usage(audio_s=60.0, calls=1, input_tokens=1, output_tokens=1)),
     "answering cost not measured for 1 question"),
    (result("a", 0, [task(0, False), task(1, None, kind="open")]), "no correct answer"),
])
def test_cost_per_correct_answer_is_missing_when_unmeasurable_never_zero_or_infinite(row, note):
    (r,) = question_figures([row]).per_recipe
    assert r.cost_per_correct_usd is None and r.cost_note == note
    cell = cost_rows(question_figures([row]))[0][6]
    assert cell.startswith("—") and note in cell and "inf" not in cell
    if note == "no correct answer":
        assert r.cost_usd is not None and math.isfinite(r.cost_usd)


def test_median_answer_latency_is_missing_when_no_answer_was_timed():
    (r,) = question_figures([result("a", 0, [task(0, True, latency_s=None), task(1, True, latency_s=None)])]).per_recipe
    assert r.median_latency_s is None


# --- the faces ---------------------------------------------------------------------------------------------


HOSTILE = "<script>alert(1)</script> =cmd|' /C calc'!A0 | *bold* [x](javascript:y)"


def hostile_rows():
    rows = paired_rows_for(8, 7, 1, 4)
    a = rows[0]
    tasks = (TaskResult("evil", "content", "short", "<b>prompt</b>", HOSTILE, None, False, None, None,
                        Judge("rules", "not a short answer")),
             TaskResult("formula", "content", "short", "=SUM(A1)", "=cmd|' /C calc'!A0", None, False, None, None,
                        Judge("rules", "not a short answer")), *a.tasks)
    rows[0] = RunResult(a.run_id, a.recipe, a.recipe_hash, a.pipeline, a.recording, a.transcript, a.timings,
                        price=a.price, tasks=tasks)
    return [json.loads(json.dumps(r.to_json())) for r in rows]


def test_every_report_format_has_the_questions_section_with_answers_escaped(tmp_path):
    rows = hostile_rows()
    paths = report.write_reports(rows, "r1", tmp_path, list(report.FORMATS))
    assert sorted(p.name for p in paths) == ["report.csv", "report.html", "report.json", "report.md",
                                             "report.questions.csv"]
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<h2>Questions</h2>" in page and "id=question-accuracy" in page and "id=question-paired" in page
    assert "id=question-cost" in page and "exact McNemar" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>prompt</b>" not in page and "&lt;b&gt;prompt&lt;/b&gt;" in page

    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "## Questions" in md and "### Paired comparisons" in md and "### Cost per correct answer" in md
    assert "<script>" not in md and "&lt;script&gt;" in md and "\\*bold\\*" in md and "\\|" in md
    table = [line.replace("\\|", "") for line in md[md.index("### Answers"):].splitlines()[2:] if line.startswith("|")]
    assert len({line.count("|") for line in table}) == 1  # no answer breaks out of its cell

    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert {"accuracy", "paired", "recipes", "questions"} <= set(data["questions"])
    assert data["questions"]["paired"][0]["only_a_correct"] == 7
    assert data["questions"]["questions"][0]["answers"]["a"]["answer"] == HOSTILE  # JSON keeps the text, as data

    cells = [c for row in csv.reader(io.StringIO((tmp_path / "report.questions.csv").read_text(encoding="utf-8")))
             for c in row]
    assert "'=cmd|' /C calc'!A0" in cells and "'=SUM(A1)" in cells
    assert not any(c.startswith(report.CSV_FORMULA_STARTS) for c in cells)
    assert "<script>" not in (tmp_path / "report.csv").read_text(encoding="utf-8")  # the results' CSV: unchanged


def test_summary_md_and_the_terminal_tables_have_the_questions():
    from workbench.result import RunResult as R

    rows = [R.from_json(r) for r in hostile_rows()]
    text = markdown(rows, title="t")
    assert "## Questions" in text and "### Cost per correct answer" in text
    assert "<script>" not in text and "&lt;script&gt;" in text
    tables = question_tables(rows)
    assert [t for t, *_ in tables] == ["Accuracy per category",
                                       "Paired comparisons (accuracy, the same questions; exact McNemar, Holm)",
                                       "Cost per correct answer"]
    title, headers, body = tables[0]
    assert headers == ["category", "a", "b"] and body[-1][0] == ALL
    assert body[-1][1].startswith("68.2% (15/22), 95% CI ")  # a: 15 of its 22 (two hostile answers wrong)


def test_rows_without_questions_render_exactly_as_before(tmp_path):
    rows = [r.to_json() for r in paired_rows_for(1, 0, 0, 0)]
    for r in rows:
        r["tasks"] = []
    assert question_tables(rows) == []
    assert "Questions" not in markdown([RunResult.from_json(r) for r in rows])
    for fmt in ("md", "html", "json"):
        assert "Questions" not in report.render(rows, "r", fmt) and "question-" not in report.render(rows, "r", fmt)
    assert "questions" not in json.loads(report.render(rows, "r", "json"))
    paths = report.write_reports(rows, "r", tmp_path, ["csv"])
    assert [p.name for p in paths] == ["report.csv"]


def test_the_terminal_prints_the_questions_tables_after_compare(capsys):
    from workbench import cli

    rows = paired_rows_for(8, 7, 1, 4, ("[bold]a", "b"))
    cli._print_question_tables(rows)
    printed = capsys.readouterr().out
    assert "Accuracy per category" in printed and "Cost per correct answer" in printed and "McNemar" in printed
    assert "[bold]a" in printed  # a recipe name is text, not rich markup
    cli._print_question_tables([result("a", 0, [])])
    assert capsys.readouterr().out == ""


def test_the_accuracy_chart_names_unjudged_categories_and_draws_intervals_only_where_there_are():
    from workbench.charts import accuracy_records, accuracy_spec

    rows = paired_rows_for(8, 7, 1, 4)
    rows.append(result("c", 0, [task(0, None, kind="open", category="summary")]))
    records = {(r["recipe"], r["category"]): r for r in accuracy_records(question_figures(rows))}
    assert records[("a", "content")]["accuracy"] == 75.0 and records[("a", "content")]["low"] is not None
    assert records[("c", "summary")]["accuracy"] is None and records[("c", "summary")]["shown"] == "not judged"
    assert accuracy_spec(question_figures(rows))["layer"][1]["encoding"]["y"]["sort"][-1] == ALL
    assert accuracy_spec(None) is None


def test_the_html_report_draws_the_accuracy_chart_with_the_recipe_names_as_text():
    rows = [r.to_json() for r in paired_rows_for(8, 7, 1, 4, ("<script>x</script>", "b"))]
    page = report.render(rows, "r", "html")
    assert "Accuracy per category (%, higher is better)" in page
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
