"""The Ask panel (Compare page), driven with Streamlit's AppTest on the real app script with the FAKE pipeline
(tests/fake_pipeline.py): after a comparison, a free question asked of every selected recipe, the answers side
by side and escaped, stored as a run the blind Judge panel pairs, the models kept loaded in the pool."""

from __future__ import annotations

import json

from fake_pipeline import BEHAVIOUR, EVENTS
from test_dashboard_app import EVIL, app, env, html_text, run, stored, text, upload  # noqa: F401 - env: a fixture

QUESTION = "How many people speak?"


def compared(recipes=("fake-exact", "fake-half")):
    at = app()
    upload(at)
    return run(at, list(recipes))


def ask(at, question: str = QUESTION):
    at.text_input(key="ask-question").set_value(question)
    at.button(key="ask-run").click().run()
    assert not at.exception, at.exception
    return at


def answers_table(at) -> str:
    [table] = [h.value for h in at.get("html") if 'data-testid="wb-ask-answers"' in h.value]
    return table


def test_ask_shows_every_recipes_answer_side_by_side_stored_as_a_run_the_judge_pairs(env):
    BEHAVIOUR["fake-exact"]["answers"] = {"question": "Two people speak."}
    BEHAVIOUR["fake-half"]["answers"] = {"question": "Three, I think."}
    at = compared()
    assert not [h for h in at.get("html") if "wb-ask-answers" in h.value]  # nothing asked yet
    assert "Nothing to judge blind" in " ".join(c.value for c in at.caption)
    first_run = stored(env)[0]["run_id"]
    ask(at)
    table = answers_table(at)
    assert table.index("fake-exact") < table.index("Two people speak.") < table.index("fake-half") < table.index("Three, I think.")
    assert f"**Question:** {QUESTION}" in [text(m.value) for m in at.markdown]
    # stored like any run: results.jsonl and the store, with the free question's answers
    asked = [r for r in stored(env) if r["run_id"] != first_run]
    assert [r["recipe"] for r in asked] == ["fake-exact", "fake-half"]
    run_id = asked[0]["run_id"]
    assert [[(t["id"], t["answer"]) for t in r["tasks"]] for r in asked] == [
        [("question", "Two people speak.")], [("question", "Three, I think.")]]
    lines = (env / "out" / run_id / "results.jsonl").read_text().splitlines()
    assert [json.loads(x)["tasks"][0]["answer"] for x in lines] == ["Two people speak.", "Three, I think."]
    assert at.query_params["run"] == run_id  # the page shows the new run
    # the Judge panel pairs the two answers
    judged = "\n".join(h.value for h in at.get("html") if 'data-testid="wb-answer-' in h.value)
    assert "Two people speak." in judged and "Three, I think." in judged


def test_markup_in_an_answer_is_shown_as_text(env):
    BEHAVIOUR["fake-exact"]["answers"] = {"question": EVIL}
    at = ask(compared(), "What is <b>said</b>?")
    table = answers_table(at)
    assert "<script" not in table and "<img" not in table and "&lt;script&gt;alert(1)&lt;/script&gt;" in table
    assert "<script" not in html_text(at)
    assert "<b>" not in " ".join(m.value for m in at.markdown)  # the question too
    assert "What is <b>said</b>?" in [text(m.value).removeprefix("**Question:** ") for m in at.markdown]


def test_an_empty_question_is_a_warning_and_runs_nothing(env):
    at = compared()
    before = stored(env)
    events = len(EVENTS)
    ask(at, "   ")
    assert any("Type a question first" in w.value for w in at.warning)
    assert stored(env) == before and len(EVENTS) == events
    assert not [h for h in at.get("html") if "wb-ask-answers" in h.value]


def test_asking_reuses_the_loaded_models(env):
    at = compared()
    loads = [e for e in EVENTS if e[0] == "load"]
    assert sorted(loads) == [("load", "fake-exact"), ("load", "fake-half")]
    ask(at)
    assert [e for e in EVENTS if e[0] == "load"] == loads  # no model loaded again
    assert ("answer", "fake-exact", "question") in EVENTS and ("answer", "fake-half", "question") in EVENTS
    assert "wb-ask-answers" in html_text(at)


def test_a_recording_no_longer_on_disk_cannot_be_asked_about(env):
    at = compared()
    [kept] = (env / "out" / stored(env)[0]["run_id"] / "input").glob("*.wav")
    kept.unlink()  # the retention period deleted the upload
    at.run()
    assert not at.exception, at.exception
    assert "The recording is no longer on disk" in " ".join(c.value for c in at.caption)
    assert not [t for t in at.text_input if t.key == "ask-question"] and not [b for b in at.button if b.key == "ask-run"]
