"""Asking recipes questions about a recording (issue 13): what each arm is sent, how a long recording is covered,
the runner's wiring (one transcription per recording, a failing answer counted wrong, others answered), the
``workbench ask`` face.

The answering models here are a scripted OpenAI-compatible server (tests/fake_llm_server.py, mode ``qa``), a tiny
random transformers audio-LLM (structure only, never its words) and the FAKE pipeline of tests/fake_pipeline.py
(wiring only). The integration test at the end runs the real bundled models.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_pipeline import BEHAVIOUR, EVENTS, FAKE
from server_helpers import get_json, stop
from typer.testing import CliRunner

import fake_llm_server
from workbench.audio import Audio, load_audio
from workbench.datamodel import Segment, Transcript
from workbench.recipes import Recipe
from workbench.runner import Item, run_recipes
from workbench.tasks import Question, QuestionSet
from workbench.tasks.prompts import question_prompt, transcript_lines
from workbench.writers import MemoryWriter

ROOT = Path(__file__).resolve().parent.parent
WAV = ROOT / "samples" / "pyannote" / "sample.wav"
MEETING_WAV = ROOT / "samples" / "meeting" / "meeting.wav"
RATE = 16000

YESNO = Question("dog", "sound", "yesno", "Is a dog heard?", answer="yes")
NUMBER = Question("speakers", "speaker", "number", "How many people speak?", answer=2.0)
CHOICE = Question("day", "content", "choice", "Which day?", answer="Friday", choices=("Monday", "Friday", "Sunday"))
LOCATE = Question("when", "temporal", "locate", "When is the door heard?", answer=(40.0, 44.0))
SHORT = Question("city", "content", "short", "Which city?", answer=("Friday",))
OPEN = Question("summary", "summary", "open", "Summarise the call.", rubric="names both speakers")


@pytest.fixture
def fake_server():
    procs: list[subprocess.Popen] = []

    def start(mode: str = "qa"):
        proc = subprocess.Popen([sys.executable, str(Path(fake_llm_server.__file__)), "--port", "0", "--mode", mode],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            stop(proc)
            pytest.fail(f"fake server did not start: {line!r}")
        return int(line.split()[-1])

    yield start
    for proc in procs:
        stop(proc)
        proc.stdout.close()
        proc.stderr.close()


def requests(port: int) -> list[dict]:
    import base64

    return [json.loads(base64.b64decode(r["body_b64"])) for r in get_json(f"http://127.0.0.1:{port}/requests")]


def user_text(body: dict) -> str:
    return fake_llm_server.last_user_text(body)


def has_audio(body: dict) -> bool:
    return any(isinstance(m.get("content"), list) and any(p.get("type") == "input_audio" for p in m["content"])
               for m in body["messages"])


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


# --- what is asked ------------------------------------------------------------------------------------------


def test_the_transcript_is_rendered_with_times_speakers_and_the_gaps_without_speech():
    t = Transcript((Segment(0.5, 3.0, " Shall we  meet?", "SPEAKER_0"), Segment(7.25, 9.0, "Friday.", "SPEAKER_1"),
                    Segment(9.2, 9.8, "Good.", "SPEAKER_0")))
    assert transcript_lines(t, 75.0) == [
        "[00:00.5–00:03.0] SPEAKER_0: Shall we meet?",
        "[gap 4.2 s: no speech]",
        "[00:07.2–00:09.0] SPEAKER_1: Friday.",  # 0.2 s between turns is no gap
        "[00:09.2–00:09.8] SPEAKER_0: Good.",
        "[gap 65.2 s: no speech]",  # the silence after the last word, up to the recording's end
    ]
    assert transcript_lines(Transcript((Segment(61.0, 62.5, "late"),)), None) == ["[gap 61.0 s: no speech]",
                                                                                 "[01:01.0–01:02.5] late"]


def test_each_kind_gets_its_instruction_and_choices_are_lettered():
    assert question_prompt(YESNO).endswith("Begin your answer with yes or no.")
    assert "a number" in question_prompt(NUMBER)
    assert question_prompt(CHOICE).splitlines()[1:4] == ["(A) Monday", "(B) Friday", "(C) Sunday"]
    assert "seconds from the start" in question_prompt(LOCATE)
    assert "add 60.0" in question_prompt(LOCATE, offset_s=60.0)  # a window's offset: times stay absolute
    assert "few words" in question_prompt(SHORT) and "paragraph" in question_prompt(OPEN)


# --- the cascade's [answer] stage through a scripted server -----------------------------------------------


def answerer(port: int, **options):
    from workbench.pipelines.answering import ANSWER_BACKENDS

    cls = ANSWER_BACKENDS.get("openai-compatible")
    return cls(cls.Options(base_url=f"http://127.0.0.1:{port}/v1", model="fake", timeout_s=5, max_retries=0, **options))


CONVERSATION = Transcript(tuple(Segment(i * 3.0, i * 3.0 + 2.5, f"sentence number {i} about the meeting on Friday",
                                        f"SPEAKER_{i % 2}") for i in range(60)))


def test_the_cascade_answers_from_its_transcript_with_the_question_and_its_instruction(fake_server):
    port = fake_server()
    a = answerer(port).answer(CONVERSATION, 200.0, CHOICE)
    [body] = requests(port)
    text = user_text(body)
    assert "[00:03.0–00:05.5] SPEAKER_1: sentence number 1" in text and "[gap 20.5 s: no speech]" in text
    assert "Which day?" in text and "(B) Friday" in text and "letter" in text
    assert body["messages"][0]["role"] == "system" and not has_audio(body)
    assert (a.text, a.calls, a.strategy, a.windows) == ("(B)", 1, "whole", 1)
    assert a.input_tokens is not None and a.audio_s == 0.0


def test_a_transcript_longer_than_the_context_is_asked_in_parts_then_combined_never_cut(fake_server):
    port = fake_server()
    a = answerer(port, context_tokens=400).answer(CONVERSATION, 200.0, YESNO)
    bodies = requests(port)
    parts, combine = bodies[:-1], bodies[-1]
    assert len(parts) >= 3 and a.windows == len(parts) and a.calls == len(bodies) and a.strategy == "combine"
    seen = "\n".join(user_text(b) for b in parts)
    for i in range(60):  # every line went to some part: nothing was cut
        assert f"sentence number {i} about" in seen
    assert f"part 1 of {len(parts)}" in user_text(parts[0])
    assert "The answers from the parts:" in user_text(combine) and a.text == "Yes, combined."


def test_refuse_makes_a_long_transcript_an_error_that_says_so(fake_server):
    from workbench.pipelines.answering import AnswerRefused

    port = fake_server()
    with pytest.raises(AnswerRefused, match="does not fit the answer model's 400-token context"):
        answerer(port, context_tokens=400, long_transcript="refuse").answer(CONVERSATION, 200.0, YESNO)
    assert requests(port) == []


# --- the audio-LLM arm ---------------------------------------------------------------------------------------


def audio_backend(port: int, **options):
    from workbench.audio_llm.backends import OpenAIAudio, OpenAIAudioOptions

    return OpenAIAudio(OpenAIAudioOptions(base_url=f"http://127.0.0.1:{port}/v1", model="fake-audio", timeout_s=5,
                                          max_retries=0, **options))


def test_the_audio_llm_gets_the_audio_and_the_question_in_one_call(fake_server):
    from workbench.pipelines.answering import answer_from_audio

    port = fake_server()
    a = answer_from_audio(audio_backend(port, max_audio_s=30), tone(10), NUMBER)
    [body] = requests(port)
    assert has_audio(body) and "How many people speak?" in user_text(body) and "a number" in user_text(body)
    assert (a.text, a.strategy, a.windows, a.audio_s) == ("2", "whole", 1, 10.0)


def test_a_long_recording_is_asked_window_by_window_with_offsets_then_combined_without_audio(fake_server):
    from workbench.pipelines.answering import answer_from_audio

    port = fake_server()
    a = answer_from_audio(audio_backend(port, max_audio_s=30), tone(70), LOCATE)
    bodies = requests(port)
    assert [has_audio(b) for b in bodies] == [True, True, True, False]  # 3 windows, then one text-only call
    second = user_text(bodies[1])
    assert "part 2 of 3" in second and "add 30.0" in second  # told where it starts: times stay absolute
    assert "The answers from the parts:" in user_text(bodies[3]) and "When is the door heard?" in user_text(bodies[3])
    assert (a.strategy, a.windows, a.calls, a.text) == ("combine", 3, 4, "Yes, combined.")


def test_refuse_gives_a_long_recording_an_error_and_calls_nothing(fake_server):
    from workbench.pipelines.answering import AnswerRefused, answer_from_audio

    port = fake_server()
    with pytest.raises(AnswerRefused, match="recording longer than the per-call limit"):
        answer_from_audio(audio_backend(port, max_audio_s=30), tone(70), LOCATE, long_audio="refuse")
    assert requests(port) == []


@pytest.fixture(scope="module")
def tiny_qwen2_audio(tmp_path_factory):
    from tiny_audio_llms import build_tiny_qwen2_audio

    return build_tiny_qwen2_audio(tmp_path_factory.mktemp("tiny-qwen2-audio"))


def test_a_tiny_transformers_audio_llm_answers_and_combines_its_windows_text_only(tiny_qwen2_audio):
    from workbench.audio_llm.backends import TransformersAudio, TransformersAudioOptions
    from workbench.pipelines.answering import answer_from_audio

    backend = TransformersAudio(TransformersAudioOptions(model=str(tiny_qwen2_audio), max_audio_s=5))
    backend.load()
    one = answer_from_audio(backend, tone(4), YESNO)
    assert (one.strategy, one.windows, one.calls) == ("whole", 1, 1) and isinstance(one.text, str)
    assert one.input_tokens > 0 and 0 < one.output_tokens <= 48
    long = answer_from_audio(backend, tone(12), YESNO)  # 3 windows of at most 5 s, then a text-only call
    assert (long.strategy, long.windows, long.calls) == ("combine", 3, 4)
    text_only = backend.generate_text("You answer.", "Is it yes?", max_new_tokens=8)
    assert text_only.input_tokens < one.input_tokens  # no audio tokens in it
    assert 0 < text_only.output_tokens <= 8


# --- the runner ----------------------------------------------------------------------------------------------


def fake_recipe(name: str, **behaviour) -> Recipe:
    BEHAVIOUR[name] = behaviour
    return Recipe(name, FAKE, stages=(), description="fake", path=f"/fake/{name}.toml")


def items(n: int) -> list[Item]:
    import dataclasses

    audio = load_audio(WAV)
    return [Item(Audio(dataclasses.replace(audio.recording, id=f"rec-{i}"), audio.samples)) for i in range(n)]


QUESTIONS = QuestionSet("t", (YESNO, NUMBER, CHOICE, SHORT, OPEN,
                              Question("only-1", "content", "yesno", "Only rec-1?", answer="no", recordings=("rec-1",))))


def test_each_recording_is_transcribed_once_however_many_questions_and_every_answer_is_scored(fake, tmp_path):
    r = fake_recipe("fa", text="hello", answers={"dog": "Yes, a dog barks.", "speakers": "three", "day": "(B)",
                                                  "city": "Friday", "summary": "They talk.", "only-1": "No."})
    results = run_recipes([r], items(2), writer=MemoryWriter(), run_id="t", questions=QUESTIONS)
    runs = [e for e in EVENTS if e[0] == "run"]
    assert len(runs) == 2  # one per recording (the fake has no warm-up)
    assert len([e for e in EVENTS if e[0] == "answer"]) == 5 + 6
    assert [e for e in EVENTS if e[0] == "load_answering"] == [("load_answering", "fa")] * 2
    first, second = results
    assert [t.id for t in first.tasks] == ["dog", "speakers", "day", "city", "summary"]
    assert [t.id for t in second.tasks] == ["dog", "speakers", "day", "city", "summary", "only-1"]
    by_id = {t.id: t for t in second.tasks}
    assert by_id["dog"].correct is True and by_id["speakers"].correct is False and by_id["speakers"].parsed == 3
    assert by_id["day"].correct is True and by_id["only-1"].correct is True
    assert by_id["summary"].correct is None  # open: not judged, never guessed
    assert all(t.latency_s is not None and t.usage.calls == 1 for t in second.tasks)
    assert second.details["answering"]["transcriptions"] == 1
    assert second.details["answering"]["answer_calls"] == 6 and second.details["answering"]["questions"] == 6
    assert {t.stage for t in second.timings} == {"load", "vad", "asr"}  # answering is in no stage timing
    row = json.loads(json.dumps(second.to_json()))
    assert [t["strategy"] for t in row["tasks"]] == ["whole"] * 6


def test_a_failing_answer_call_is_wrong_and_counted_and_the_other_questions_are_answered(fake, tmp_path):
    r = fake_recipe("fa", text="hello", answers={"speakers": RuntimeError("server said 500"), "dog": "Yes."})
    [result] = run_recipes([r], items(1), writer=MemoryWriter(), run_id="t", questions=QUESTIONS)
    by_id = {t.id: t for t in result.tasks}
    failed = by_id["speakers"]
    assert failed.correct is False and failed.error == "RuntimeError: server said 500" and failed.answer == ""
    assert by_id["dog"].correct is True and by_id["day"].error is None
    assert result.error is None  # the transcription result stands
    from workbench.tasks.summary import accuracy_from_rows

    speaker = next(a for a in accuracy_from_rows([result.to_json()]) if a.category == "speaker")
    assert (speaker.correct, speaker.questions) == (0, 1)  # counted, not dropped


def test_a_recipe_that_failed_to_transcribe_has_every_question_wrong_one_that_did_not_run_has_none(fake, tmp_path):
    failed = fake_recipe("broken", run={0: RuntimeError("asr crashed")})
    not_loaded = fake_recipe("noload", load=RuntimeError("no weights"))
    results = run_recipes([failed, not_loaded], items(1), writer=MemoryWriter(), run_id="t", questions=QUESTIONS)
    broken, noload = results
    assert len(broken.tasks) == 5 and all(t.correct is False and "asr crashed" in t.error for t in broken.tasks)
    assert not [e for e in EVENTS if e[0] == "answer"]
    assert noload.tasks == ()  # did not run: in no figure


def test_questions_travel_to_batch_workers(fake, tmp_path):
    import pickle

    assert pickle.loads(pickle.dumps(QUESTIONS)) == QUESTIONS  # Ray and process workers get them pickled
    from workbench.session import RunSettings, prepare

    prepared = prepare([str(ROOT / "pipelines" / "cascade-plain.toml")],
                       RunSettings(tasks=ROOT / "pipelines" / "tasks" / "meeting.toml"))
    assert prepared.runner_options()["questions"].name
    assert "questions" not in prepare([str(ROOT / "pipelines" / "cascade-plain.toml")]).runner_options()


# --- the face --------------------------------------------------------------------------------------------------


def test_ask_with_a_malformed_question_file_exits_2_with_one_line_naming_file_question_and_field(tmp_path):
    from workbench.cli import app

    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[question]]\nid = "q1"\ncategory = "c"\nkind = "number"\nprompt = "How many?"\n'
                   'answer = "three"\n')
    result = CliRunner().invoke(app, ["ask", str(WAV), "--tasks", str(bad), "--recipes", "cascade-plain",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "bad.toml" in lines[0] and "'q1'" in lines[0] and "'answer'" in lines[0]
    assert not (tmp_path / "out").exists()  # nothing loaded, nothing written


def test_ask_with_nothing_to_ask_exits_2(tmp_path):
    from workbench.cli import app

    result = CliRunner().invoke(app, ["ask", str(WAV), "--recipes", "cascade-plain", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "nothing to ask" in result.output


def test_ask_a_free_question_prints_every_recipes_answer_escaped(fake, tmp_path, monkeypatch):
    from workbench.cli import app

    folder = tmp_path / "recipes"
    folder.mkdir()
    for name in ("one", "two"):
        (folder / f"{name}.toml").write_text(f'name = "{name}"\npipeline = "{FAKE}"\n[model]\nbackend = "fake"\n'
                                             f'label = "{name}"\n')
    monkeypatch.setenv("WORKBENCH_RECIPES", str(folder))
    BEHAVIOUR["one"] = {"answers": {"question": "[bold red]not markup[/] the answer"}}
    BEHAVIOUR["two"] = {"answers": {"question": "Another answer."}}
    result = CliRunner().invoke(app, ["ask", str(WAV), "What is said?", "--recipes", "one,two",
                                      "--out", str(tmp_path / "out")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "What is said?" in result.output
    assert "one: [bold red]not markup[/] the answer" in result.output  # printed as written, not as markup
    assert "two: Another answer." in result.output and "not judged" in result.output
    [run_dir] = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert [(r["recipe"], r["tasks"][0]["kind"], r["tasks"][0]["answer"]) for r in rows] == [
        ("one", "open", "[bold red]not markup[/] the answer"), ("two", "open", "Another answer.")]


@pytest.mark.integration
def test_ask_the_meeting_questions_with_the_real_cascade(tmp_path):
    """The issue's done-when: every question answered by the bundled models and scored (whatever the accuracy)."""
    from workbench.cli import app
    from workbench.tasks import load_question_set

    tasks = ROOT / "pipelines" / "tasks" / "meeting.toml"
    result = CliRunner().invoke(app, ["ask", str(MEETING_WAV), "--tasks", str(tasks), "--recipes", "cascade",
                                      "--out", str(tmp_path / "out")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    [run_dir] = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    [row] = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    expected = load_question_set(tasks).questions_for(row["recording"]["id"])
    assert [t["id"] for t in row["tasks"]] == [q.id for q in expected]
    for t in row["tasks"]:
        assert t["error"] is None, t
        assert t["answer"].strip()
        assert t["correct"] in (True, False) or t["kind"] in ("keypoints", "open")
    assert row["details"]["answering"]["transcriptions"] == 1
    assert "Accuracy per category" in result.output


def test_ask_when_no_question_applies_to_the_recording_exits_2_before_any_model_loads(tmp_path):
    from workbench.cli import app

    # meeting.toml's questions name the recording "meeting": none applies to sample.wav
    result = CliRunner().invoke(app, ["ask", str(WAV), "--tasks", str(ROOT / "pipelines" / "tasks" / "meeting.toml"),
                                      "--recipes", "cascade-plain", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "no question of" in result.output and "'sample'" in result.output
    assert not (tmp_path / "o").exists()


def test_a_refused_question_records_the_strategy_and_a_recipe_without_an_answer_stage_says_so(fake):
    from workbench.pipelines.answering import ANSWER_BACKENDS, AnswerRefused

    r = fake_recipe("fa", text="hello", answers={"dog": AnswerRefused("recording longer than the per-call limit (70 s > 30 s)")})
    [result] = run_recipes([r], items(1), writer=MemoryWriter(), run_id="t", questions=QUESTIONS)
    dog = next(t for t in result.tasks if t.id == "dog")
    assert (dog.correct, dog.strategy, dog.error) == (False, "refuse", "recording longer than the per-call limit (70 s > 30 s)")
    none = ANSWER_BACKENDS.get("none")(ANSWER_BACKENDS.get("none").Options())
    with pytest.raises(AnswerRefused, match=r"no \[answer\] stage") as raised:
        none.answer(CONVERSATION, 200.0, YESNO)
    assert raised.value.strategy is None


def test_an_answer_whose_call_stopped_at_its_token_cap_is_flagged_cut_short():
    from workbench.audio_llm.backends import Reply
    from workbench.pipelines.answering import LLMAnswerer, answer_from_audio
    from workbench.tasks import task_result

    class Capped(LLMAnswerer):
        def __init__(self, cut, output_tokens=None):
            from workbench.pipelines.answering import AnswerOptions

            self.options, self.cut, self.output_tokens = AnswerOptions(), cut, output_tokens

        def complete(self, system, user, max_tokens):
            return "(B) Friday because", 10, self.output_tokens, self.cut

        def count_tokens(self, text):
            return len(text.split())

        def context_window(self):
            return 100_000

    assert Capped(True).answer(CONVERSATION, 200.0, CHOICE).cut_short is True
    assert Capped(False, 32).answer(CONVERSATION, 200.0, CHOICE).cut_short is False
    assert Capped(None, 32).answer(CONVERSATION, 200.0, CHOICE).cut_short is True  # no word: at the cap counts

    class Audio:
        def max_audio_s(self):
            return 30.0

        def generate(self, samples, system, prompt, max_new_tokens=None, summary=False):
            return Reply("Yes, and then", 5, max_new_tokens, "length", max_new_tokens)

    a = answer_from_audio(Audio(), np.zeros(16000, np.float32), CHOICE)
    assert a.cut_short is True
    r = task_result(CHOICE, a.text, cut_short=a.cut_short)
    assert r.cut_short is True and type(r).from_json(r.to_json()) == r
