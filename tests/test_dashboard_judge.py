"""The blind Judge panel (Compare page), driven with Streamlit's AppTest: names hidden until a vote, the order stable
across reruns, the vote in the store, the ranking updated, model output escaped. The rows are written by hand
(results with ``tasks``) into a store; the browser test drives the same panel in chromium."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from workbench.dashboard import APP
from workbench.datamodel import Recording, Transcript
from workbench.result import RunResult
from workbench.store import ResultStore
from workbench.tasks.answers import TaskResult

EVIL = "<script>alert(1)</script> ![x](http://evil.example/p.png) <img src=x onerror=alert(2)>"
NAMES = ("recipe-xylo", "recipe-zeta")
ANSWERS = {  # question id → each recipe's answer (none names its recipe)
    "people": ("Two people speak.", "There are 3 speakers."),
    "dog": ("Yes, a dog barks near the end.", "No dog is heard."),
    "mood": ("Calm and friendly.", EVIL),
}


def rows(run_id: str = "run-q", names=NAMES, answers=ANSWERS) -> list[dict]:
    out = []
    for i, name in enumerate(names):
        tasks = tuple(TaskResult(qid, "speaker", "open", f"Question {qid}: what do you hear?", per[i],
                                 key={"rubric": "5: names the mood <b>exactly</b>"} if qid == "mood" else {"answer": "2"})
                      for qid, per in answers.items())
        out.append(RunResult(run_id, name, f"hash-{name}", "fake", Recording("call", "/data/call.wav", 30.0, 16000, 1),
                             Transcript(), tasks=tasks, created_at="2026-12-01T10:00:00+00:00").to_json())
    return out


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "store.sqlite"))
    monkeypatch.setenv("WORKBENCH_OUT", str(tmp_path / "out"))
    monkeypatch.chdir(tmp_path)
    with ResultStore(tmp_path / "store.sqlite") as store:
        store.add_run("run-q", command="workbench ask call.wav --tasks call.toml")
        store.add_many(rows())
    return tmp_path


def judge_page(run_id: str) -> None:
    from workbench.dashboard.judge import panel
    from workbench.dashboard.settings import settings
    from workbench.store import ResultStore

    with ResultStore(settings().store) as store:
        found = store.rows(run_id=run_id)
    panel(found, run_id)


def panel_app(run_id: str = "run-q") -> AppTest:
    at = AppTest.from_function(judge_page, args=(run_id,), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def text(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown)


def everything(at: AppTest) -> str:
    """All the text the panel shows (Markdown unescaped, HTML as sent, button and field labels)."""
    parts = [m.value for kind in ("markdown", "caption", "success", "error", "info", "html") for m in at.get(kind)]
    parts += [b.label for b in at.button] + [t.label for t in at.text_input]
    return text("\n".join(parts))


def shown(at: AppTest, label: str) -> str:
    [body] = [h.value for h in at.get("html") if f'data-testid="wb-answer-{label}"' in h.value]
    return re.search(r'data-testid="wb-answer-.">(.*)</div>', body, re.S).group(1)


def recipe_of(answer_html: str) -> str:
    import html

    for per in ANSWERS.values():
        for i, answer in enumerate(per):
            if html.escape(answer) == answer_html:
                return NAMES[i]
    raise AssertionError(answer_html)


def stored_votes(env):
    with ResultStore(env / "store.sqlite") as store:
        return store.votes()


def test_names_are_hidden_until_the_vote_which_is_stored_and_ranks_the_recipes(env):
    at = panel_app()
    page = everything(at)
    assert "Answer A" in page and "Answer B" in page and "Question " in page
    assert not any(name in page for name in NAMES)  # blind
    a, b = shown(at, "a"), shown(at, "b")
    winner, loser = recipe_of(a), recipe_of(b)
    assert winner != loser
    at.run()
    assert (shown(at, "a"), shown(at, "b")) == (a, b)  # a rerun does not reshuffle
    assert "No votes yet" in everything(at)

    at.text_input(key="judge-voter").set_value("ann")
    at.button(key="judge-vote-A").click().run()
    assert not at.exception, at.exception
    [vote] = stored_votes(env)
    assert (vote.winner[0], vote.loser[0], vote.voter, vote.run_id, vote.recording_id) == (winner, loser, "ann", "run-q", "call")
    [said] = [text(s.value) for s in at.success]
    assert said == f"Your vote: Answer A is better. Answer A was **{winner}**, Answer B was **{loser}**."
    ranking = [h.value for h in at.get("html") if "wb-ranking" in h.value]
    assert len(ranking) == 1 and ranking[0].index(winner) < ranking[0].index(loser)
    assert "too few votes (n=1)" in ranking[0]  # one vote: no interval, and why

    # the next pair: another question (fewest votes), names hidden again
    at.button(key="judge-next").click().run()
    assert not at.success and not any(name in text(" ".join(m.value for m in at.markdown)) for name in NAMES)
    assert shown(at, "a") not in (a, b) or shown(at, "b") not in (a, b)
    at.button(key="judge-vote-tie").click().run()
    assert [v.vote for v in stored_votes(env)] == ["A", "tie"]
    assert "a tie" in at.success[0].value
    ranking = [h.value for h in at.get("html") if "wb-ranking" in h.value][0]
    assert "<td>2</td><td>1</td><td>0</td><td>1</td>" in ranking  # the winner: 2 votes, 1 won, 0 lost, 1 tied


def test_model_output_in_the_panel_is_escaped(env):
    at = panel_app()
    for _ in range(len(ANSWERS)):
        if "mood" in everything(at):
            break
        at.button(key="judge-vote-tie").click().run()
        at.button(key="judge-next").click().run()
    page = "\n".join(h.value for h in at.get("html"))
    assert "Question mood" in everything(at)
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;exactly&lt;/b&gt;" in page  # the answer key too
    assert "](http" not in " ".join(m.value for m in at.markdown)


def test_a_run_without_answers_to_compare_says_so(env):
    with ResultStore(env / "store.sqlite") as store:
        store.add_many(rows("run-one", names=("recipe-xylo",)))  # one recipe: no pair
    at = panel_app("run-one")
    assert "Nothing to judge blind" in at.caption[0].value and not at.button


def test_the_compare_page_shows_the_panel_for_the_run_it_shows(env):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["run"] = "run-q"
    at.run()
    assert not at.exception, at.exception
    assert "Judge answers blind" in [h.value for h in at.subheader]
    assert {b.key for b in at.button} >= {"judge-vote-A", "judge-vote-B", "judge-vote-tie"}
    at.button(key="judge-vote-B").click().run()
    assert not at.exception, at.exception
    [vote] = stored_votes(env)
    assert vote.vote == "B" and vote.winner == vote.b
