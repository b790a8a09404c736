"""The judge of keypoints/open answers (issue 13): reading its replies, the rules, the identity, the cache in the
store, a real scripted OpenAI-compatible server on 127.0.0.1 (good replies, garbage, down), ``workbench report
--judge``, and the bundled SmolLM2 judge (integration)."""

from __future__ import annotations

import json
import select
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import fake_llm_server
from server_helpers import free_port, get_json, stop
from workbench.datamodel import Recording
from workbench.errors import BadInputError
from workbench.result import RunResult
from workbench.store import STORE_SCHEMA_VERSION, ResultStore
from workbench.tasks import judge as J
from workbench.tasks.answers import RULES, Judge, TaskResult, task_result
from workbench.tasks.questions import Question

ROOT = Path(__file__).resolve().parent.parent
FAKE_SERVER = Path(fake_llm_server.__file__)

POINTS = Question("plan", "summary", "keypoints", "What did they agree?",
                  points=("ship on Friday", "Anna writes the notes", "budget is frozen"))
RUBRIC = Question("mood", "paralinguistic", "open", "How does the speaker sound?",
                  rubric="names the mood (tired) and the evidence (slow pace, sighs)")
YESNO = Question("dog", "sound", "yesno", "Is a dog barking?", answer="yes")


def tasks(plan="They ship on Friday and Anna writes the notes.", mood="Tired: slow and sighing.") -> list[TaskResult]:
    return [task_result(POINTS, plan), task_result(RUBRIC, mood), task_result(YESNO, "Yes, a dog barks.")]


class ScriptedJudge:
    """A judge without a server: answers from a list (the last repeats), or raises."""

    by = "test:judge@here"
    settings = "s"

    def __init__(self, *replies: str | Exception):
        self.replies = list(replies)
        self.calls = 0

    def complete(self, system: str, user: str, max_tokens: int) -> str:
        self.calls += 1
        reply = self.replies[min(self.calls, len(self.replies)) - 1]
        if isinstance(reply, Exception):
            raise reply
        return reply


# --- reading the judge's reply ----------------------------------------------------------------------


@pytest.mark.parametrize("reply, covered", [
    ('{"covered": [1, 3]}', (1, 3)),
    ('{"covered": [3, 1, 1]}', (1, 3)),
    ('{"covered": []}', ()),
    ('{"covered": ["2"]}', (2,)),
    ('Here is my grading:\n```json\n{"covered": [2]}\n```\nThe answer mentions the notes.', (2,)),
    ('Sure! {"covered": [1, 2], "why": "it says {Friday}"}', (1, 2)),
    ("Covered: 1, 3", (1, 3)),
    ("Covered points: none", ()),
    ("Covered: []", ()),
    ("Covered: 1. Not covered: 2, 3", (1,)),
])
def test_keypoints_replies_that_are_read(reply, covered):
    assert J.parse_keypoints_reply(reply, 3) == (covered, None)


@pytest.mark.parametrize("reply, why", [
    ("", "empty"),
    ("   \n", "empty"),
    ("The answer is quite good and covers most things.", "no {"),
    ('{"covered": [4]}', "point 4, but there are 3"),
    ('{"covered": [0]}', "point 0"),
    ('{"covered": "1, 3"}', "not a list"),
    ('{"covered": [true]}', "not a point number"),
    ('{"covered": ["Friday"]}', "not a point number"),
    ('{"covered": [1]} ... on reflection {"covered": [1, 2]}', "several different"),
    ('{"points": [1, 2]}', "no {"),
    ('{"covered": [1, 2', "cut short or malformed"),
    ('{"covered": [] when it does not include one of the points.', "cut short or malformed"),  # SmolLM2, seen
    ('{"covered": [1, 2\nCovered: [2]', "cut short or malformed"),
])
def test_keypoints_replies_that_cannot_be_read_are_never_guessed(reply, why):
    covered, reason = J.parse_keypoints_reply(reply, 3)
    assert covered is None and why in reason


@pytest.mark.parametrize("reply, score, reason", [
    ('{"score": 4, "reason": "names the mood"}', 4, "names the mood"),
    ('{"score": 4.0}', 4, None),
    ('{"score": "5"}', 5, None),
    ('{"score": "4/5"}', 4, None),
    ('```json\n{"score": 2, "reason": "misses the evidence"}\n```', 2, "misses the evidence"),
    ("Score: 4/5", 4, None),
    ("**Score:** 5", 5, None),
    ("I would give it 3 out of 5.", 3, None),
    ("Score: 4. It covers 3/5 of the rubric's evidence.", 4, None),
    ('{"score": 3} and again {"score": 3}', 3, None),
])
def test_rubric_replies_that_are_read(reply, score, reason):
    assert J.parse_score_reply(reply) == (score, reason, None)


@pytest.mark.parametrize("reply, why", [
    ("", "empty"),
    ('{"score": 9}', "outside 1–5"),
    ('{"score": 0, "reason": "bad"}', "outside 1–5"),
    ('{"score": 4.5}', "not a whole number"),
    ('{"score": true}', "not a whole number"),
    ('{"score": "great"}', "not a number"),
    ("Score: 8/10", "out of 10"),
    ("A lovely, thoughtful answer!", "no {"),
    ('{"grade": 4}', "no {"),
    ('{"score": 4} no wait {"score": 2}', "several different"),
    ('{"score": 4, "reason": "it names the mo', "cut short or malformed"),
])
def test_rubric_replies_that_cannot_be_read_are_never_guessed(reply, why):
    score, reason, problem = J.parse_score_reply(reply)
    assert score is None and reason is None and why in problem


# --- the rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("reply, score, correct", [
    ('{"covered": [1, 2, 3]}', 1.0, True), ('{"covered": [1, 3]}', 0.6667, True), ('{"covered": [2]}', 0.3333, False),
    ('{"covered": []}', 0.0, False),
])
def test_keypoints_score_is_the_share_covered_and_correct_from_half(reply, score, correct):
    (t,) = J.judge_tasks([task_result(POINTS, "an answer")], ScriptedJudge(reply))
    assert (t.score, t.correct) == (score, correct)
    assert t.parsed == json.loads(reply)["covered"] and t.judge.by == ScriptedJudge.by


def test_keypoints_half_of_an_even_number_of_points_is_correct():
    q = replace(POINTS, points=("a", "b"))
    (t,) = J.judge_tasks([task_result(q, "a")], ScriptedJudge('{"covered": [1]}'))
    assert (t.score, t.correct) == (0.5, True)


@pytest.mark.parametrize("score, correct", [(5, True), (4, True), (3, False), (1, False)])
def test_open_score_is_the_rubric_score_and_correct_from_4(score, correct):
    (t,) = J.judge_tasks([task_result(RUBRIC, "tired")], ScriptedJudge(json.dumps({"score": score, "reason": "r"})))
    assert (t.score, t.correct, t.parsed) == (score, correct, score)
    assert t.judge.note == f"{score}/5: r"


def test_unreadable_reply_leaves_the_answer_not_judged_with_the_reason():
    (k, o, y) = J.judge_tasks(tasks(), ScriptedJudge("I think this is a fine answer."))
    for t in (k, o):
        assert t.correct is None and t.score is None and not t.judged
        assert t.judge.by == ScriptedJudge.by and t.judge.note.startswith("not judged: unreadable judge reply")
    assert y == tasks()[2]  # a keyed kind is the rules' business: untouched


def test_a_failing_judge_call_leaves_that_answer_not_judged_and_the_others_go_on():
    judge = ScriptedJudge(ConnectionError("server went away"), '{"score": 5}')
    k, o, _ = J.judge_tasks(tasks(), judge)
    assert judge.calls == 2
    assert k.correct is None and "the judge call failed (server went away)" in k.judge.note
    assert (o.score, o.correct) == (5, True)


def test_an_answer_that_never_came_or_is_empty_is_not_sent_to_the_judge():
    failed = task_result(POINTS, "", error="timeout")
    empty_points, empty_open = task_result(POINTS, "  "), task_result(RUBRIC, "")
    judge = ScriptedJudge('{"covered": [1, 2, 3]}')
    out = J.judge_tasks([failed, empty_points, empty_open], judge)
    assert judge.calls == 0
    assert out[0] == failed  # wrong and counted already
    assert (out[1].score, out[1].correct, out[1].judge.by) == (0.0, False, RULES)
    assert (out[2].score, out[2].correct, out[2].judge.by) == (1.0, False, RULES)


def test_an_answer_already_judged_is_not_judged_again():
    judged = replace(task_result(RUBRIC, "tired"), score=5.0, correct=True, judge=Judge("other", "5/5"))
    judge = ScriptedJudge('{"score": 1}')
    assert J.judge_tasks([judged], judge) == (judged,) and judge.calls == 0


def test_a_question_without_points_is_not_judged_and_not_sent():
    t = replace(task_result(POINTS, "something"), key={"answer": None})
    judge = ScriptedJudge('{"covered": [1]}')
    (out,) = J.judge_tasks([t], judge)
    assert judge.calls == 0 and out.correct is None and "no key points" in out.judge.note


def test_the_prompt_carries_question_points_rubric_and_answer():
    system, user = J.judge_prompt(tasks()[0])
    assert "JSON" in system and "1. ship on Friday\n2. Anna writes the notes\n3. budget is frozen" in user
    assert "They ship on Friday and Anna writes the notes." in user
    # the form asked for is not itself a readable reply: a judge that parrots it is not judged, not read
    assert J.parse_keypoints_reply(user[user.index('{"covered"'):], 3)[0] is None
    _, user = J.judge_prompt(tasks()[1])
    assert "names the mood (tired)" in user and J.parse_score_reply(user[user.index('{"score"'):])[0] is None


def test_the_judgement_carries_the_prompt_version_and_round_trips_through_json():
    k, _, y = J.judge_tasks(tasks(), ScriptedJudge('{"covered": [1, 2]}'))
    assert k.judge == Judge(ScriptedJudge.by, "covers 2 of 3 points (1, 2)", J.PROMPT_VERSION)
    assert TaskResult.from_json(json.loads(json.dumps(k.to_json()))) == k
    assert k.to_json()["judge"]["version"] == J.PROMPT_VERSION
    assert "version" not in y.to_json()["judge"]  # the rules' judgements read as before


def test_a_changed_prompt_or_judge_or_answer_is_a_different_cache_key(monkeypatch):
    t = tasks()[0]
    judge = ScriptedJudge()
    key = J.cache_key(judge, t)
    assert J.cache_key(judge, t) == key
    assert J.cache_key(judge, replace(t, answer=t.answer + " ")) != key
    assert J.cache_key(judge, replace(t, key={"points": ["other"]})) != key
    other = ScriptedJudge()
    other.by = "test:other@here"
    assert J.cache_key(other, t) != key
    monkeypatch.setattr(J, "PROMPT_VERSION", "changed")
    assert J.cache_key(judge, t) != key


def test_judge_rows_fills_in_only_the_judged_kinds_and_leaves_other_rows_alone():
    rows = [{"run_id": "r", "tasks": [t.to_json() for t in tasks()]}, {"run_id": "r", "tasks": []}]
    out = J.judge_rows(rows, ScriptedJudge('{"covered": [1], "score": 4}'))
    assert out[1] is rows[1] and rows[0]["tasks"][0]["correct"] is None  # inputs not modified
    k, o, y = out[0]["tasks"]
    assert (k["score"], o["score"]) == (0.3333, 4.0) and y == rows[0]["tasks"][2]
    assert J.judged_counts(out) == (2, 0) and J.judged_counts(rows) == (0, 2)


# --- the cache in the store -----------------------------------------------------------------------


def test_the_store_keeps_judgements(tmp_path):
    with ResultStore(tmp_path / "w.sqlite") as store:
        assert store.get_judgement("k") is None
        store.put_judgement("k", {"by": "j", "version": "v", "kind": "keypoints", "score": 0.5, "correct": True,
                                  "parsed": [1], "note": "covers 1 of 2 points (1)"})
    with ResultStore(tmp_path / "w.sqlite") as store:
        assert store.get_judgement("k") == {"score": 0.5, "correct": True, "parsed": [1],
                                            "note": "covers 1 of 2 points (1)", "by": "j", "version": "v",
                                            "kind": "keypoints"}
        store.put_judgement("u", {"by": "j", "score": None, "correct": None, "note": "not judged: x"})
        assert store.get_judgement("u")["correct"] is None


def test_a_version_2_store_is_upgraded_in_place_with_a_judgements_table(tmp_path):
    path = tmp_path / "v2.sqlite"
    with ResultStore(path) as s:
        s.add_run("old", "workbench compare a.wav")
    db = sqlite3.connect(path)
    db.executescript("DROP TABLE judgements; PRAGMA user_version = 2;")
    db.close()
    with ResultStore(path) as s:
        assert s.schema_version == STORE_SCHEMA_VERSION == 4
        assert [r["run_id"] for r in s.runs()] == ["old"]
        s.put_judgement("k", {"by": "j", "score": 4.0, "correct": True})
        assert s.get_judgement("k")["score"] == 4.0


def test_judging_twice_from_the_store_asks_the_judge_once(tmp_path):
    judge = ScriptedJudge('{"covered": [1], "score": 4}')
    with ResultStore(tmp_path / "w.sqlite") as store:
        first = J.judge_tasks(tasks(), judge, store)
        assert judge.calls == 2
        assert J.judge_tasks(tasks(), judge, store) == first and judge.calls == 2


def test_a_failed_call_is_not_cached_but_an_unreadable_reply_is():
    cache = J.MemoryCache()
    judge = ScriptedJudge(TimeoutError("slow"), "no idea")
    J.judge_tasks(tasks()[:1], judge, cache)
    assert cache.entries == {}
    J.judge_tasks(tasks()[:1], judge, cache)
    (t,) = J.judge_tasks(tasks()[:1], judge, cache)
    assert judge.calls == 2 and "unreadable" in t.judge.note


# --- judge files ---------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "judge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_judge_file_names_its_identity_without_credentials(tmp_path, monkeypatch):
    from workbench.judging import load_judge

    monkeypatch.setenv("JUDGE_BASE_URL", "https://user:hunter2@llm.example.com/v1?api_key=sk-123")
    monkeypatch.setenv("JUDGE_MODEL", "big-judge")
    judge = load_judge(ROOT / "pipelines" / "judges" / "openai-compatible.toml")
    assert judge.by == "openai-compatible:big-judge@***@llm.example.com/v1?api_key=***"
    assert "hunter2" not in judge.by and "sk-123" not in judge.by
    assert judge.remote == "llm.example.com"
    monkeypatch.delenv("JUDGE_BASE_URL")
    monkeypatch.delenv("JUDGE_MODEL")
    local = load_judge(ROOT / "pipelines" / "judges" / "openai-compatible.toml")
    assert local.by == "openai-compatible:default@127.0.0.1:8080/v1" and local.remote is None


def test_settings_that_change_replies_change_the_judge(tmp_path):
    from workbench.judging import load_judge

    a = load_judge(write(tmp_path, 'backend = "openai-compatible"\ntemperature = 0.0\n'))
    b = load_judge(write(tmp_path, 'backend = "openai-compatible"\ntemperature = 0.7\n'))
    c = load_judge(write(tmp_path, 'backend = "openai-compatible"\ntemperature = 0.0\ntimeout_s = 5\n'))
    assert a.by == b.by and a.settings != b.settings and a.settings == c.settings


@pytest.mark.parametrize("text, message", [
    ('backend = "plain"\n', "backend must be one of llama-cpp, openai-compatible, transformers"),
    ('model = "x"\n', "backend must be one of"),
    ('backend = "openai-compatible"\ntemprature = 0\n', "unknown option 'temprature'; valid options:"),
    ('backend = "openai-compatible"\napi_key_env = "AWS_SECRET_ACCESS_KEY"\n', "api_key_env"),
    ('backend = "openai-compatible"\nbase_url_env = "JUDGE_KEY"\n', "*_URL"),
    ('backend = "llama-cpp"\nbase_url_env = "JUDGE_URL"\n', "openai-compatible"),
    ('backend = "openai-compatible"\nmax_tokens = "many"\n', "option 'max_tokens'"),
    ("backend = \n", "not valid TOML"),
])
def test_a_bad_judge_file_is_one_line_naming_the_file(tmp_path, text, message):
    from workbench.judging import load_judge

    path = write(tmp_path, text)
    with pytest.raises(BadInputError) as err:
        load_judge(path)
    assert str(path) in str(err.value) and message in str(err.value) and "\n" not in str(err.value)


def test_a_missing_judge_file_is_bad_input(tmp_path):
    from workbench.judging import load_judge

    with pytest.raises(BadInputError, match="not found"):
        load_judge(tmp_path / "nope.toml")


def test_the_shipped_local_judge_is_the_bundled_smollm2():
    pytest.importorskip("llama_cpp")
    from workbench.judging import load_judge

    judge = load_judge(ROOT / "pipelines" / "judges" / "smollm2.toml")
    assert judge.by.startswith("llama-cpp:smollm2@") and judge.by.endswith(".gguf") and judge.remote is None


# --- a real scripted server ------------------------------------------------------------------------------


class Server:
    def __init__(self, port: int):
        self.port = port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def count(self) -> int:
        return get_json(f"http://127.0.0.1:{self.port}/count")["count"]

    def judge_file(self, tmp_path: Path) -> Path:
        path = tmp_path / "server-judge.toml"
        path.write_text(f'backend = "openai-compatible"\nbase_url = "{self.base_url}"\nmodel = "fake-judge"\n'
                        'api_key_env = "JUDGE_API_KEY"\nmax_retries = 0\ntimeout_s = 10\n', encoding="utf-8")
        return path


@pytest.fixture
def server(tmp_path):
    procs: list[subprocess.Popen] = []

    def start(mode: str, replies: list[str] | None = None) -> Server:
        args = [sys.executable, str(FAKE_SERVER), "--port", "0", "--mode", mode]
        if replies is not None:
            script = tmp_path / f"replies-{len(procs)}.json"
            script.write_text(json.dumps(replies), encoding="utf-8")
            args += ["--replies", str(script)]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            stop(proc)
            pytest.fail(f"fake server ({mode}) did not start: {line!r}")
        return Server(int(line.split()[-1]))

    yield start
    for proc in procs:
        stop(proc)
        proc.stdout.close()
        proc.stderr.close()


def test_a_judge_server_judges_and_its_identity_is_stored(server, tmp_path, monkeypatch):
    from workbench.judging import load_judge

    monkeypatch.delenv("JUDGE_API_KEY", raising=False)
    s = server("judge")
    with load_judge(s.judge_file(tmp_path)) as judge:
        k, o, y = J.judge_tasks(tasks(), judge)
    identity = f"openai-compatible:fake-judge@127.0.0.1:{s.port}/v1"
    assert (k.score, k.correct, k.judge) == (0.3333, False, Judge(identity, "covers 1 of 3 points (1)", J.PROMPT_VERSION))
    assert (o.score, o.correct, o.judge) == (4.0, True, Judge(identity, f"4/5: {fake_llm_server.JUDGE_REASON}",
                                                                J.PROMPT_VERSION))
    assert y == tasks()[2] and s.count() == 2


@pytest.mark.parametrize("garbage", ["The answer is good.", '{"verdict": "fine"}', '{"score": 9, "covered": [7]}', "",
                                     '```json\n{"covered": [1,\n```'])
def test_a_judge_server_that_answers_garbage_leaves_answers_not_judged(server, tmp_path, garbage):
    from workbench.judging import load_judge

    s = server("scripted", [garbage])
    with load_judge(s.judge_file(tmp_path)) as judge:
        out = J.judge_tasks(tasks(), judge)
    assert s.count() == 2
    for t in out[:2]:
        assert t.correct is None and t.score is None and t.parsed is None
        assert t.judge.note.startswith("not judged: unreadable judge reply (") and t.judge.by.startswith("openai-compatible:")
    assert out[2] == tasks()[2]


def test_a_judge_server_that_is_down_leaves_answers_not_judged(tmp_path):
    from workbench.judging import load_judge

    down = Server(free_port())
    with load_judge(down.judge_file(tmp_path)) as judge:
        out = J.judge_tasks(tasks(), judge, J.MemoryCache())
    assert judge.calls == 2  # every answer was tried
    for t in out[:2]:
        assert t.correct is None and "not judged: the judge call failed" in t.judge.note and "cannot connect" in t.judge.note


def test_the_cache_saves_every_call_and_a_changed_answer_costs_one(server, tmp_path):
    from workbench.judging import load_judge

    s = server("judge")
    rows = [{"run_id": "r", "tasks": [t.to_json() for t in tasks()]},
            {"run_id": "r", "tasks": [t.to_json() for t in tasks(plan="Nothing was agreed.")]}]
    with load_judge(s.judge_file(tmp_path)) as judge, ResultStore(tmp_path / "w.sqlite") as store:
        first = J.judge_rows(rows, judge, store)
        assert s.count() == 3  # the same open answer in both rows is asked once
        assert J.judge_rows(rows, judge, store) == first
        assert s.count() == 3  # every judgement from the store: zero calls
        rows[1]["tasks"][0]["answer"] = "Nothing was agreed at all."
        J.judge_rows(rows, judge, store)
        assert s.count() == 4  # the changed answer, and only it


def result_row(run_id: str = "run-j") -> dict:
    r = RunResult(run_id=run_id, recipe="cascade", recipe_hash="hash-cascade", pipeline="cascade",
                  recording=Recording("meeting", "meeting.wav", 10.0, 16000, 1, "pcm_s16le"), transcript=None,
                  tasks=tuple(tasks()), created_at="2026-12-01T00:00:00+00:00")
    return json.loads(json.dumps(r.to_json()))


def test_report_with_a_judge_judges_the_run_and_a_second_report_calls_it_never(server, tmp_path):
    from typer.testing import CliRunner

    from workbench.cli import app

    s = server("judge")
    results = tmp_path / "run-j" / "results.jsonl"
    results.parent.mkdir()
    results.write_text(json.dumps(result_row()) + "\n", encoding="utf-8")
    args = ["report", str(results), "--judge", str(s.judge_file(tmp_path)), "--store", str(tmp_path / "w.sqlite"),
            "--format", "json", "--out", str(tmp_path / "out")]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "2 answer(s) judged, 0 not judged; 2 call(s)" in first.output
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    k, o, _ = report["results"][0]["tasks"]
    assert (k["score"], o["correct"]) == (0.3333, True) and o["judge"]["by"].startswith("openai-compatible:fake-judge@")
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "0 call(s)" in again.output and s.count() == 2
    bad = CliRunner().invoke(app, [*args[:3], str(tmp_path / "missing.toml"), *args[4:]])
    assert bad.exit_code == 2 and "not found" in bad.output


# --- the bundled local judge ---------------------------------------------------------------------------


@pytest.mark.integration
def test_the_bundled_smollm2_judge_judges_or_honestly_does_not(tmp_path):
    pytest.importorskip("llama_cpp")
    from workbench.judging import load_judge

    with load_judge(ROOT / "pipelines" / "judges" / "smollm2.toml") as judge, ResultStore(tmp_path / "w.sqlite") as store:
        out = J.judge_tasks(tasks(), judge, store)
        assert judge.calls == 2
        for t in out[:2]:
            assert t.judge.by == judge.by and t.judge.version == J.PROMPT_VERSION
            if t.judged:
                assert t.correct in (True, False)
                assert 0 <= t.score <= 1 if t.kind == "keypoints" else 1 <= t.score <= 5
            else:
                assert t.judge.note.startswith("not judged: ")
        print([(t.id, t.score, t.correct, t.judge.note) for t in out[:2]])
        assert J.judge_tasks(tasks(), judge, store) == out and judge.calls == 2  # cached, even when unreadable


def test_a_reply_the_reader_chokes_on_is_not_judged_never_a_crash(monkeypatch):
    def boom(task, text):
        raise RecursionError("deep")

    monkeypatch.setattr(J, "read_reply", boom)
    (t,) = J.judge_tasks(tasks()[:1], ScriptedJudge("[" * 10000))
    assert t.correct is None and "could not be read (RecursionError)" in t.judge.note


# --- --judge on a run: answers judged as they are written ---------------------------------------------------


def test_ask_with_a_judge_writes_judged_rows_and_a_second_run_asks_the_judge_nothing(server, fake, tmp_path,
                                                                                   monkeypatch):
    from typer.testing import CliRunner

    from fake_pipeline import BEHAVIOUR, FAKE
    from workbench.cli import app

    monkeypatch.delenv("JUDGE_API_KEY", raising=False)
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "one.toml").write_text(f'name = "one"\npipeline = "{FAKE}"\n[model]\nbackend = "fake"\n', encoding="utf-8")
    monkeypatch.setenv("WORKBENCH_RECIPES", str(folder))
    BEHAVIOUR["one"] = {"answers": {"plan": "They plan a trip."}}
    tasks_file = tmp_path / "q.toml"  # (a free question has no rubric: it stays not judged, for people to judge)
    tasks_file.write_text('name = "q"\n[[question]]\nid = "plan"\ncategory = "summary"\nkind = "open"\n'
                          'prompt = "What is the plan?"\nrubric = "Names the trip."\n', encoding="utf-8")
    s = server("judge")
    judge_file = s.judge_file(tmp_path)
    wav = ROOT / "samples" / "pyannote" / "sample.wav"
    store = tmp_path / "store.sqlite"
    for out in ("a", "b"):
        result = CliRunner().invoke(app, ["ask", str(wav), "--tasks", str(tasks_file), "--recipes", "one", "--judge",
                                          str(judge_file), "--out", str(tmp_path / out), "--store", str(store)])
        assert result.exit_code == 0, result.output
        [run_dir] = [p for p in (tmp_path / out).iterdir() if p.is_dir()]
        [row] = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
        [task] = row["tasks"]
        assert (task["score"], task["correct"]) == (4.0, True)
        assert task["judge"]["by"] == f"openai-compatible:fake-judge@127.0.0.1:{s.port}/v1"
        with ResultStore(store) as st:  # the store holds the judged row too
            [stored] = [r for r in st.rows() if r["run_id"] == row["run_id"]]
            assert stored["tasks"][0]["score"] == 4.0
    assert s.count() == 1  # the second run's judgement came from the store's cache


def test_a_judge_without_questions_is_bad_input(tmp_path):
    from typer.testing import CliRunner

    from workbench.cli import app

    result = CliRunner().invoke(app, ["compare", str(ROOT / "samples" / "pyannote" / "sample.wav"), "--recipes",
                                      "whisper-raw", "--judge", str(ROOT / "pipelines" / "judges" / "smollm2.toml"),
                                      "--out", str(tmp_path / "o"), "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 2 and "--judge judges the answers to questions" in result.output
