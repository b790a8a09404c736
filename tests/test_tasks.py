"""Issue 13, first slice: question sets (format, validation), deterministic answer extraction and scoring, the
per-question result, accuracy per category, and the shipped question sets checked against the references."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest

from workbench.errors import BadInputError
from workbench.metrics import normalize
from workbench.tasks import (JUDGED_KINDS, Judge, TaskResult, load_question_set, parse_question_set, score_answer,
                             task_result)
from workbench.tasks.answers import parse_choice, parse_number, parse_short, parse_time, parse_yesno
from workbench.tasks.questions import Question
from workbench.tasks.summary import accuracy_by_category

ROOT = Path(__file__).resolve().parent.parent
TASKS = ROOT / "pipelines" / "tasks"

GOOD = '''
name = "call-basics"
[[question]]
id = "dog"
category = "sound"
kind = "yesno"
prompt = "Is a dog heard barking?"
answer = "yes"
recordings = ["conversation"]
[[question]]
id = "n"
category = "speaker"
kind = "number"
prompt = "How many speakers?"
answer = 3
[[question]]
id = "who"
category = "speaker"
kind = "short"
prompt = "Who?"
answer = ["the two", "two"]
[[question]]
id = "day"
category = "content"
kind = "choice"
prompt = "Which day?"
choices = ["Monday", "Friday", "Sunday"]
answer = "Sunday"
[[question]]
id = "when"
category = "temporal"
kind = "locate"
prompt = "When?"
answer = [57.2, 62.2]
[[question]]
id = "sum"
category = "summary"
kind = "keypoints"
prompt = "Summarise."
points = ["a", "b"]
[[question]]
id = "mood"
category = "paralinguistic"
kind = "open"
prompt = "Mood?"
rubric = "names the mood"
'''


def _write(tmp_path, text, name="set.toml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_a_question_set_loads_with_its_defaults_and_filters_by_recording(tmp_path):
    qs = load_question_set(_write(tmp_path, GOOD))
    assert qs.name == "call-basics" and [q.kind for q in qs.questions] == [
        "yesno", "number", "short", "choice", "locate", "keypoints", "open"]
    by = {q.id: q for q in qs.questions}
    assert by["n"].answer == 3.0 and by["n"].tolerance == 0.0
    assert by["who"].answer == ("the two", "two")
    assert by["when"].answer == (57.2, 62.2) and by["when"].tolerance_s == 2.0
    assert by["sum"].points == ("a", "b") and by["mood"].rubric == "names the mood"
    assert [q.id for q in qs.questions_for("conversation")] == ["dog", "n", "who", "day", "when", "sum", "mood"]
    assert "dog" not in [q.id for q in qs.questions_for("other")]
    with pytest.raises(Exception):
        by["dog"].id = "x"  # frozen


def _q(body: str, qid: str | None = "q1") -> str:
    head = f'id = "{qid}"\n' if qid else ""
    return f'name = "s"\n[[question]]\n{head}category = "c"\nprompt = "p?"\n{body}\n'


MALFORMED = [
    # (file text, what the one error must name besides the file)
    (_q('kind = "yesno"\nanswer = "yes"') + '[[question]]\nid = "q1"\ncategory = "c"\nkind = "yesno"\nprompt = "p"\n'
     'answer = "no"\n', ["'q1'", "'id'", "duplicate"]),
    (_q('kind = "essay"\nanswer = "yes"'), ["'q1'", "'kind'", "essay"]),
    (_q('answer = "yes"'), ["'q1'", "'kind'", "missing"]),
    (_q('kind = "choice"\nchoices = ["Monday", "Friday"]\nanswer = "Sunday"'), ["'q1'", "'answer'", "Sunday"]),
    (_q('kind = "choice"\nchoices = ["Monday"]\nanswer = "Monday"'), ["'q1'", "'choices'"]),
    (_q('kind = "choice"\nchoices = ["Monday", "Monday"]\nanswer = "Monday"'), ["'q1'", "'choices'"]),
    (_q('kind = "choice"\nchoices = ["Monday", "monday!"]\nanswer = "Monday"'), ["'q1'", "'choices'", "normalised"]),
    (_q('kind = "locate"\nanswer = [62.2, 57.2]'), ["'q1'", "'answer'", "ends before it starts"]),
    (_q('kind = "locate"\nanswer = [1, 2, 3]'), ["'q1'", "'answer'"]),
    (_q('kind = "locate"\nanswer = [1, 2]\ntolerance_s = -1'), ["'q1'", "'tolerance_s'"]),
    (_q('kind = "yesno"'), ["'q1'", "'answer'", "missing"]),
    (_q('kind = "yesno"\nanswer = "maybe"'), ["'q1'", "'answer'"]),
    (_q('kind = "yesno"\nanswer = true'), ["'q1'", "'answer'"]),
    (_q('kind = "number"\nanswer = "3"'), ["'q1'", "'answer'"]),
    (_q('kind = "number"\nanswer = 3\ntolerance = -0.5'), ["'q1'", "'tolerance'"]),
    (_q('kind = "short"\nanswer = ["uh"]'), ["'q1'", "'answer'", "normalised"]),
    (_q('kind = "short"\nanswer = []'), ["'q1'", "'answer'"]),
    (_q('kind = "keypoints"\npoints = "one point"'), ["'q1'", "'points'"]),
    (_q('kind = "open"'), ["'q1'", "'rubric'", "missing"]),
    (_q('kind = "yesno"\nanswer = "yes"\ncolour = "red"'), ["'q1'", "'colour'", "unknown key"]),
    (_q('kind = "yesno"\nanswer = "yes"\nrubric = "x"'), ["'q1'", "'rubric'", "unknown key"]),
    (_q('kind = "yesno"\nanswer = "yes"\nrecordings = "meeting"'), ["'q1'", "'recordings'"]),
    (_q('kind = "yesno"\nanswer = "yes"', qid=None), ["question #1 (no id)", "'id'", "missing"]),
    (_q('kind = "yesno"\nanswer = "yes"', qid=" "), ["'id'", "blank"]),
    ('name = "s"\nwhat = 1\n', ["'what'", "unknown key"]),
    ('[[question]]\nid = "a"\n', ["'name'", "missing"]),
    ('name = "s"\n', ["'question'"]),
    ('name = "s"\n[[question\n', ["not valid TOML"]),
]


@pytest.mark.parametrize("text,expected", MALFORMED, ids=[str(i) for i in range(len(MALFORMED))])
def test_a_malformed_question_set_is_one_error_naming_the_file_question_and_field(tmp_path, text, expected):
    path = _write(tmp_path, text, "bad-set.toml")
    with pytest.raises(BadInputError) as info:
        load_question_set(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    for part in expected:
        assert part in message, message


def test_the_second_question_is_named_by_its_index_when_it_has_no_id(tmp_path):
    text = _q('kind = "yesno"\nanswer = "yes"') + '[[question]]\ncategory = "c"\nkind = "yesno"\nprompt = "p"\n'
    with pytest.raises(BadInputError, match=r"question #2 \(no id\): field 'id'"):
        load_question_set(_write(tmp_path, text))


def test_a_missing_question_set_file_is_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="not found"):
        load_question_set(tmp_path / "nope.toml")


# --- answer extraction --------------------------------------------------------------------------------


@pytest.mark.parametrize("answer,expected", [
    ("Yes, a dog barks twice.", "yes"), ("Yes — a dog barks", "yes"), ("yes", "yes"), ("Yeah.", "yes"),
    ("**Yes**", "yes"), ("Correct.", "yes"), ("I think so.", "yes"), ("No doubt, a dog barks.", "yes"),
    ("The answer is yes.", "yes"), ("There is a dog barking in the background.", "yes"),
    ("No.", "no"), ("no", "no"), ("Nope", "no"), ("Definitely not.", "no"), ("I don't think so.", "no"),
    ("There is no dog barking.", "no"), ("There isn't any dog.", "no"), ("Answer: No", "no"),
    ("Maybe.", None), ("Possibly yes, it's hard to say.", None), ("I'm not sure.", None), ("Yes and no.", None),
    ("It is not clear from the audio.", None), ("A cat meows.", None), ("", None), ("Not sure.", None),
    ("No idea, sorry.", None),
])
def test_yes_no_answers(answer, expected):
    parsed, reason = parse_yesno(answer)
    assert parsed == expected
    assert (reason is None) == (expected is not None)


@pytest.mark.parametrize("answer,expected", [
    ("3", 3), ("There are 3 speakers.", 3), ("Twenty-three", 23), ("twenty three people", 23),
    ("two hundred and five", 205), ("Two speakers: Diane and Sheila.", 2), ("a dozen", 12), ("half a dozen", 6),
    ("a couple of people", 2), ("twice", 2), ("No one.", 0), ("1,200 words", 1200), ("2.5", 2.5),
    ("one point five", 1.5), ("I think three, maybe four", 3), ("-3 degrees", -3),
    ("Several people.", None), ("", None),
])
def test_number_answers(answer, expected):
    assert parse_number(answer)[0] == expected


@pytest.mark.parametrize("answer,correct,parsed_none", [
    ("Sheila", True, False), ("It was Sheila.", True, False), ("SHEILA!", True, False), ("Diane", False, False),
    ("Sheilas", False, False), ("", False, True),
    ("The speaker who lives in Texas and is originally from Chicago is called Sheila, as she says", False, True),
])
def test_short_answers_compare_normalised_aliases_as_whole_phrases(answer, correct, parsed_none):
    parsed, ok, reason = parse_short(answer, ("Sheila",))
    assert ok is correct and (parsed is None) is parsed_none and (reason is not None) is parsed_none


def test_short_answers_go_through_the_whisper_normaliser():
    assert parse_short("Two.", ("the two", "two"))[1]  # "two" → "2" on both sides
    assert parse_short("the colour red", ("color red",))[1]


CHOICES = ("Monday", "Friday", "Sunday")


@pytest.mark.parametrize("answer,expected", [
    ("(B)", "Friday"), ("B)", "Friday"), ("b.", "Friday"), ("B", "Friday"), ("C: Sunday", "Sunday"),
    ("(c) Sunday", "Sunday"), ("Option A", "Monday"), ("The answer is (C).", "Sunday"), ("Sunday", "Sunday"),
    ("It was on sunday.", "Sunday"), ("I think it's Friday.", "Friday"),
    ("Monday or Friday", None), ("(B) Sunday", None), ("(D)", None), ("A dog barks.", None), ("", None),
    ("The answer is a dog.", None), ("Answer: b.", "Friday"),
])
def test_choice_answers_by_letter_or_text(answer, expected):
    parsed, reason = parse_choice(answer, CHOICES)
    assert parsed == expected and (reason is None) == (expected is not None)


def test_a_choice_inside_a_longer_choice_is_named_once():
    assert parse_choice("Monday morning", ("Monday", "Monday morning"))[0] == "Monday morning"


@pytest.mark.parametrize("answer,expected", [
    ("57 s", 57), ("57.2 seconds", 57.2), ("At 0:57.", 57), ("1:03", 63), ("00:00:57.2", 57.2),
    ("at 1 minute 3 seconds", 63), ("1 min 3 s", 63), ("1m3s", 63), ("one minute three seconds", 63),
    ("around the 57-second mark", 57), ("It happens at about fifty-seven seconds.", 57), ("2 minutes", 120),
    ("between 55 and 60 seconds", 57.5), ("55–60 s", 57.5), ("from 0:55 to 1:00", 57.5), ("57", 57),
    ("Speaker 1 says it at 57 s", 57), ("At 57 and 98", None), ("I don't know", None),
])
def test_times_in_answers(answer, expected):
    parsed, _ = parse_time(answer)
    assert parsed == (pytest.approx(expected) if expected is not None else None)


# --- scoring --------------------------------------------------------------------------------------


def _question(kind, **kw):
    return Question(id="q", category="c", kind=kind, prompt="p?", **kw)


def test_locate_is_correct_within_the_span_and_tolerance_with_the_error_in_seconds():
    q = _question("locate", answer=(57.2, 62.2), tolerance_s=2.0)
    inside = score_answer(q, "At 1:00.")
    assert inside.correct and inside.error_s == 0 and inside.parsed == 60
    near = score_answer(q, "At 55.5 seconds")
    assert near.correct and near.error_s == pytest.approx(1.7)
    far = score_answer(q, "At 1:10")
    assert far.correct is False and far.error_s == pytest.approx(7.8)


def test_number_tolerance():
    q = _question("number", answer=10.0, tolerance=1.0)
    assert score_answer(q, "eleven").correct and not score_answer(q, "twelve").correct


@pytest.mark.parametrize("kind,key,answer", [
    ("yesno", dict(answer="yes"), "Maybe."), ("number", dict(answer=2.0), "several"),
    ("short", dict(answer=("Sheila",)), ""), ("choice", dict(answer="Sunday", choices=CHOICES), "Monday or Sunday"),
    ("locate", dict(answer=(1.0, 2.0)), "no idea"),
])
def test_an_unread_answer_is_wrong_and_counted_with_a_reason(kind, key, answer):
    r = task_result(_question(kind, **key), answer)
    assert r.correct is False and r.parsed is None and r.judge == Judge("rules", r.judge.note) and r.judge.note
    assert r.to_json()["correct"] is False  # counted, not dropped


@pytest.mark.parametrize("kind,key", [("keypoints", dict(points=("a",))), ("open", dict(rubric="r"))])
def test_judged_kinds_are_not_judged_here_never_guessed(kind, key):
    r = task_result(_question(kind, **key), "A thorough, brilliant answer covering a.")
    assert kind in JUDGED_KINDS
    assert r.correct is None and r.score is None and r.parsed is None and r.judge is None
    assert r.note == "not judged"


def test_a_task_result_round_trips_through_json_with_the_issues_fields_plus_key_and_error():
    from workbench.datamodel import Usage

    r = task_result(_question("locate", answer=(57.2, 62.2)), "between 55 and 60 s", latency_s=0.25,
                    usage=Usage(audio_s=0.0, calls=1, input_tokens=120, output_tokens=9))
    row = json.loads(json.dumps(r.to_json()))
    assert set(row) == {"id", "category", "kind", "prompt", "answer", "parsed", "correct", "score", "error_s",
                        "judge", "latency_s", "usage", "key", "error", "strategy", "windows", "cut_short"}
    # the issue's fields, plus what it is scored against and how the recording was covered (issue 13 asking)
    assert row["key"] == {"answer": [57.2, 62.2], "tolerance_s": 2.0} and row["error"] is None
    assert TaskResult.from_json(row) == r
    unjudged = task_result(_question("open", rubric="r"), "x")
    assert TaskResult.from_json(json.loads(json.dumps(unjudged.to_json()))) == unjudged


# --- accuracy per category ------------------------------------------------------------------------


def _results(correct: list[bool | None], category="content"):
    return [TaskResult(f"q{i}", category, "yesno" if c is not None else "open", "p?", "a", None, c)
            for i, c in enumerate(correct)]


def test_accuracy_counts_unread_as_wrong_and_unjudged_as_missing():
    rows = [("cascade", t) for t in _results([True, False, None])]
    unread = task_result(_question("yesno", answer="yes"), "maybe")
    rows.append(("cascade", unread.to_json()))  # a JSON row works too
    figures = {(a.recipe, a.category): a for a in accuracy_by_category(rows)}
    content = figures[("cascade", "content")]
    assert (content.questions, content.correct, content.not_judged) == (2, 1, 1)
    assert content.accuracy == 0.5 and content.ci is None and content.ci_note == "too few questions (n=2)"
    assert figures[("cascade", "c")].accuracy == 0.0 and figures[("cascade", "c")].questions == 1


def test_accuracy_has_a_seeded_bootstrap_interval_from_the_minimum_count_of_questions():
    from workbench.aggregate import MIN_RECORDINGS

    many = [("llm", t) for t in _results([True, True, False, True, False, True, True, False, True, True])]
    (a,) = accuracy_by_category(many)
    assert a.accuracy == 0.7 and a.ci_note is None
    low, high = a.ci
    assert 0 <= low < 0.7 < high <= 1
    assert accuracy_by_category(many)[0].ci == a.ci  # seeded
    few = [("llm", t) for t in _results([True, False] * ((MIN_RECORDINGS - 1) // 2) + [True][:(MIN_RECORDINGS - 1) % 2])]
    assert len(few) == MIN_RECORDINGS - 1 and accuracy_by_category(few)[0].ci is None


def test_accuracy_from_results_rows_groups_by_recipe_version():
    from workbench.tasks.summary import accuracy_from_rows

    def row(recipe, h, correct):
        return {"recipe": recipe, "recipe_hash": h, "tasks": [t.to_json() for t in _results(correct)]}

    rows = [row("cascade", "aaaaaaa1", [True, True]), row("cascade", "bbbbbbb2", [False, True]),
            row("llm", "c", [False]), {"recipe": "llm", "recipe_hash": "c"}]
    got = {a.recipe: a.accuracy for a in accuracy_from_rows(rows)}
    assert got == {"cascade@aaaaaaa": 1.0, "cascade@bbbbbbb": 0.5, "llm": 0.0}


def test_per_recipe_figures_are_kept_apart():
    rows = [("a", t) for t in _results([True, True])] + [("b", t) for t in _results([False, False])]
    assert {(x.recipe, x.accuracy) for x in accuracy_by_category(rows)} == {("a", 1.0), ("b", 0.0)}


# --- the shipped question sets, checked against the references ----------------------------------------


def _duration(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def _stm(path: Path) -> list[tuple[str, float, float, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith(";;"):
            _, _, speaker, start, end, text = line.split(maxsplit=5)
            out.append((speaker, float(start), float(end), text))
    return out


SAMPLES = {
    "meeting": (ROOT / "samples/meeting/meeting.wav", ROOT / "samples/meeting/meeting.stm", "meeting"),
    "pyannote": (ROOT / "samples/pyannote/sample.wav", ROOT / "samples/pyannote/sample.stm", "sample"),
}


def test_every_shipped_question_set_loads():
    names = sorted(p.stem for p in TASKS.glob("*.toml"))
    assert names == ["meeting", "pyannote", "understanding"]
    for p in TASKS.glob("*.toml"):
        assert len(load_question_set(p)) >= 8


def test_the_understanding_library_is_open_or_keypoints_with_rubrics_for_any_recording():
    qs = load_question_set(TASKS / "understanding.toml")
    assert all(q.kind in JUDGED_KINDS and q.recordings is None for q in qs.questions)
    assert {"paralinguistic", "speaker", "sound", "safety"} <= {q.category for q in qs.questions}
    assert any("danger" in q.prompt for q in qs.questions) and any("accent" in q.prompt for q in qs.questions)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_sample_question_sets_agree_with_the_references(name):
    wav, stm_path, recording = SAMPLES[name]
    qs = load_question_set(TASKS / f"{name}.toml")
    duration, stm = _duration(wav), _stm(stm_path)
    regions = [(s, e) for _, s, e, _ in stm]
    if name == "meeting":
        regions += [(r["start"], r["end"]) for r in json.loads((ROOT / "samples/meeting/meeting.json").read_text())["nonspeech"]]
    reference = normalize(" ".join(t for *_, t in stm))
    speakers = {s for s, *_ in stm}
    kinds = set()
    for q in qs.questions:
        kinds.add(q.kind)
        assert q.recordings == (recording,), q.id
        if q.kind == "locate":
            start, end = q.answer
            assert 0 <= start < end <= duration, q.id
            assert any(abs(start - s) < 1e-3 and abs(end - e) < 1e-3 for s, e in regions), f"{q.id}: not a reference span"
        elif q.kind == "short":
            assert any(f" {normalize(a)} " in f" {reference} " for a in q.answer), q.id
        elif q.kind == "number" and q.id == "speakers":
            assert q.answer == len(speakers)
        elif q.kind == "choice" and q.answer in speakers:
            quoted = q.prompt.split('"')[1] if '"' in q.prompt else None
            if quoted:
                assert any(s == q.answer and normalize(quoted) in normalize(t) for s, _, _, t in stm), q.id
    assert {"number", "short", "choice", "yesno", "locate", "keypoints"} <= kinds


def test_the_counted_facts_of_the_sample_sets():
    meeting = {q.id: q for q in load_question_set(TASKS / "meeting.toml").questions}
    stm = _stm(SAMPLES["meeting"][1])
    assert meeting["texas-count"].answer == sum("Sheila in Texas" in t for *_, t in stm)
    first_texas = min((s, e) for sp, s, e, t in stm if "Texas" in t and sp == "Sheila")
    assert meeting["first-texas"].answer == first_texas
    silences = [(0.0, 2.0), (29.65, 37.65), (93.48, 96.48)]  # digital silence in the README's layout
    assert meeting["long-silence"].answer == max(silences, key=lambda r: r[1] - r[0])
    pyannote = {q.id: q for q in load_question_set(TASKS / "pyannote.toml").questions}
    sample = _stm(SAMPLES["pyannote"][1])
    assert pyannote["hello-count"].answer == sum(normalize(t).split().count("hello") for *_, t in sample)
    assert pyannote["first-speaker"].answer == min(sample, key=lambda x: x[1])[0]
    assert pyannote["speech-starts"].answer == min((s, e) for _, s, e, _ in sample)


def test_a_task_result_carries_its_key_and_a_failed_answer_is_wrong_and_counted():
    from workbench.tasks import TaskResult, parse_question_set, task_result

    qs = parse_question_set({"name": "t", "question": [
        {"id": "c", "category": "content", "kind": "choice", "prompt": "Which day?", "choices": ["Monday", "Sunday"],
         "answer": "Sunday"},
        {"id": "k", "category": "summary", "kind": "keypoints", "prompt": "Summarise.", "points": ["a", "b"]}]})
    choice, points = qs.questions
    r = task_result(choice, "(B)")
    assert r.correct is True and r.key == {"answer": "Sunday", "choices": ["Monday", "Sunday"]}
    assert TaskResult.from_json(r.to_json()) == r
    failed = task_result(points, "", error="ConnectionError: refused")
    assert failed.correct is False and failed.error == "ConnectionError: refused" and failed.key == {"answer": None, "points": ["a", "b"]}
    assert TaskResult.from_json(failed.to_json()) == failed
