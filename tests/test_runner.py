"""Wiring of run_recipes: results written as they come, failures recorded, timings and hooks.

The pipeline here is a FAKE registered under a test-only name: these tests check the runner's wiring
(what is written, scored, timed and reported), not any model. Audio and references are the real samples.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from fake_pipeline import BEHAVIOUR, EVENTS, FAKE, register

from workbench.audio import Audio, load_audio
from workbench.datamodel import Segment, Transcript, Usage
from workbench.metrics import normalize
from workbench.pipelines import PipelineOutput
from workbench.recipes import Recipe, load_recipe
from workbench.references import load_reference
from workbench.runner import RESULTS_FILE, Item, ResultWriter, load_item, run_recipes, score

ROOT = Path(__file__).resolve().parent.parent
WAV = ROOT / "samples" / "pyannote" / "sample.wav"
STM = ROOT / "samples" / "pyannote" / "sample.stm"
RTTM = ROOT / "samples" / "pyannote" / "sample.rttm"


@pytest.fixture(autouse=True)
def fake_pipeline(monkeypatch):
    """Register the fake under its test-only name for each test, and take it away afterwards."""
    register(monkeypatch)
    yield
    BEHAVIOUR.clear()
    EVENTS.clear()


@pytest.fixture(scope="module")
def audio() -> Audio:
    return load_audio(WAV)


@pytest.fixture(scope="module")
def stm():
    return load_reference(STM)


def make_items(audio: Audio, references, n: int = 2) -> list[Item]:
    items = []
    for i in range(n):
        rec = dataclasses.replace(audio.recording, id=f"{audio.recording.id}-{i}")
        items.append(Item(Audio(rec, audio.samples), tuple(references)))
    return items


def recipe(name: str, **behaviour) -> Recipe:
    BEHAVIOUR[name] = behaviour
    return Recipe(name, FAKE, stages=(), description="fake", path=f"/fake/{name}.toml")


def read_lines(out_dir: Path) -> list[dict]:
    path = out_dir / RESULTS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_one_line_per_recording_and_recipe_written_immediately(tmp_path, audio, stm):
    items = make_items(audio, [stm], n=2)
    seen_at_run = {}  # lines on disk when each run starts: earlier results are already written
    recipes = [recipe("a", text=stm.text), recipe("b", text=stm.text)]
    BEHAVIOUR["a"]["before_run"] = lambda i: seen_at_run.__setitem__(("a", i), len(read_lines(tmp_path)))
    BEHAVIOUR["b"]["before_run"] = lambda i: seen_at_run.__setitem__(("b", i), len(read_lines(tmp_path)))
    writer = ResultWriter(tmp_path)
    results = run_recipes(recipes, items, writer=writer, run_id="run-x")
    assert seen_at_run == {("a", 0): 0, ("a", 1): 1, ("b", 0): 2, ("b", 1): 3}
    lines = read_lines(tmp_path)
    assert len(lines) == len(results) == 4
    assert [(j["recipe"], j["recording"]["id"]) for j in lines] == [
        ("a", "sample-0"), ("a", "sample-1"), ("b", "sample-0"), ("b", "sample-1"),
    ]
    assert writer.results == results
    for j in lines:
        assert j["run_id"] == "run-x"
        assert j["error"] is None
        assert j["metrics"]["wer"] == 0.0
        assert j["metrics"]["reference_words"] == len(normalize(stm.text).split())
        assert j["recipe_path"].startswith("/fake/")
        assert j["versions"]["fake-asr"] == "0.0"
        assert j["components"] == {"asr": {"backend": "fake"}}
    # models load once per recipe and are released before the next recipe loads
    assert EVENTS == [
        ("load", "a"), ("run", "a", 0), ("run", "a", 1), ("unload", "a"),
        ("load", "b"), ("run", "b", 0), ("run", "b", 1), ("unload", "b"),
    ]


def test_results_file_is_appended_across_calls(tmp_path, audio, stm):
    items = make_items(audio, [stm], n=1)
    writer = ResultWriter(tmp_path)
    run_recipes([recipe("a", text="hello")], items, writer=writer, run_id="r1")
    assert len(read_lines(tmp_path)) == 1
    run_recipes([recipe("b", text="hello")], items, writer=writer, run_id="r1")
    assert [j["recipe"] for j in read_lines(tmp_path)] == ["a", "b"]


def test_load_failure_is_recorded_and_next_recipe_runs(tmp_path, audio, stm):
    items = make_items(audio, [stm], n=2)
    recipes = [recipe("broken", load=RuntimeError("no weights")), recipe("good", text=stm.text)]
    results = run_recipes(recipes, items, writer=ResultWriter(tmp_path), run_id="r")
    assert [(r.recipe, r.ok) for r in results] == [("broken", False), ("broken", False), ("good", True), ("good", True)]
    for r in results[:2]:
        assert r.error_stage == "load"
        assert "no weights" in r.error and "RuntimeError" in r.error
        assert r.transcript is None
        # its models never loaded: it did not run, so nothing of it is scored (no WER 100 % entering figures)
        assert r.kind == "load-failed" and not r.did_run and r.scores is None
        assert r.rtfx is None and r.cost_usd_per_audio_hour is None
        assert [t.stage for t in r.timings] == ["load"]
    lines = read_lines(tmp_path)
    assert lines[0]["error_stage"] == "load" and lines[0]["error_kind"] == "load-failed"
    assert lines[0]["metrics"]["wer"] is None and lines[0]["metrics"]["deletions"] is None
    assert lines[0]["rtfx"] is None and lines[0]["cost_usd_per_audio_hour"] is None
    assert lines[2]["error"] is None and lines[2]["metrics"]["wer"] == 0.0
    assert ("run", "broken", 0) not in EVENTS


def test_run_failure_on_one_item_continues_with_next(tmp_path, audio, stm):
    items = make_items(audio, [stm], n=3)
    r = recipe("flaky", text=stm.text, run={1: ValueError("decoder exploded")})
    results = run_recipes([r], items, writer=ResultWriter(tmp_path), run_id="r")
    assert [x.ok for x in results] == [True, False, True]
    failed = results[1]
    assert failed.error == "ValueError: decoder exploded"
    assert failed.error_stage == "asr"  # the stage that was running
    assert failed.scores.words.rate == 1.0
    assert failed.rtfx is None
    assert [t.stage for t in failed.timings] == ["load", "vad", "asr"]
    assert results[2].scores.words.rate == 0.0
    assert EVENTS[-1] == ("unload", "flaky")
    assert [j["error"] for j in read_lines(tmp_path)] == [None, "ValueError: decoder exploded", None]


def test_load_time_in_timings_but_excluded_from_rtfx(tmp_path, audio, stm):
    items = make_items(audio, [stm], n=2)
    results = run_recipes([recipe("a", text="x")], items, writer=ResultWriter(tmp_path), run_id="r")
    for r in results:
        stages = [t.stage for t in r.timings]
        assert stages == ["load", "vad", "asr"]
        load = r.timings[0]
        assert load.wall_s >= 0.03  # the fake sleeps 30 ms in load()
        assert load.detail["shared_by_recordings"] == 2
        processing = sum(t.wall_s for t in r.timings if t.stage != "load")
        assert r.processing_s == pytest.approx(processing)
        assert r.rtfx == pytest.approx(audio.recording.duration_s / processing)
        assert r.load_s == load.wall_s
    j = read_lines(tmp_path)[0]
    assert set(j["timings"]) == {"load", "vad", "asr"}
    assert j["rtfx"] == round(results[0].rtfx, 4)
    assert j["timings"]["load"] == round(results[0].load_s, 4)
    assert j["peak_rss_mb"] > 0


def test_hook_receives_prefixed_steps(tmp_path, audio, stm):
    calls = []

    def hook(step_name, artifact=None, *, total=None, completed=None):
        calls.append((step_name, artifact, total, completed))

    items = make_items(audio, [stm], n=1)
    run_recipes([recipe("rx", text="x")], items, writer=ResultWriter(tmp_path), run_id="r", hook=hook)
    names = [c[0] for c in calls]
    assert set(names) == {"rx/load", "rx/vad", "rx/asr"}
    assert all(name.startswith("rx/") for name in names)
    duration = audio.recording.duration_s
    asr = [(c[2], c[3]) for c in calls if c[0] == "rx/asr"]
    assert asr == [(duration, 0), (duration, duration / 2), (duration, duration)]
    ends = [c[1] for c in calls if c[1] is not None]
    assert [t.stage for t in ends] == ["load", "vad", "asr"]


def test_keyboard_interrupt_propagates_and_keeps_written_results(tmp_path, audio, stm):
    items = make_items(audio, [stm], n=3)
    recipes = [recipe("a", text="x", run={1: KeyboardInterrupt()}), recipe("never", text="x")]
    with pytest.raises(KeyboardInterrupt):
        run_recipes(recipes, items, writer=ResultWriter(tmp_path), run_id="r")
    lines = read_lines(tmp_path)
    assert [(j["recipe"], j["recording"]["id"]) for j in lines] == [("a", "sample-0")]
    assert ("unload", "a") in EVENTS  # models are released on the way out
    assert ("load", "never") not in EVENTS


def test_rttm_only_reference_gives_no_wer(tmp_path, audio):
    rttm = load_reference(RTTM)
    assert not rttm.has_text
    items = make_items(audio, [rttm], n=1)
    (r,) = run_recipes([recipe("a", text="hello there")], items, writer=ResultWriter(tmp_path), run_id="r")
    assert r.ok
    assert r.scores is not None and r.scores.words is None and r.scores.chars is None
    assert r.scores.reference_format == "rttm"
    j = read_lines(tmp_path)[0]
    assert j["metrics"]["wer"] is None  # not measurable, not 0
    assert j["metrics"]["cer"] is None
    assert j["metrics"]["reference_format"] == "rttm"


def test_rttm_only_reference_failed_run_still_no_wer(tmp_path, audio):
    items = make_items(audio, [load_reference(RTTM)], n=1)
    (r,) = run_recipes([recipe("a", load=RuntimeError("x"))], items, writer=ResultWriter(tmp_path), run_id="r")
    assert r.error_stage == "load"
    assert r.scores is None


def test_text_reference_preferred_over_rttm(audio, stm):
    item = make_items(audio, [load_reference(RTTM), stm], n=1)[0]
    assert item.text_reference is stm
    scores = score(item, Transcript((Segment(0, 1, stm.text),)), "whisper-english")
    assert scores.reference_format == "stm" and scores.words.rate == 0.0


def test_no_reference_no_error_rates_but_reference_free_measures(tmp_path, audio):
    items = make_items(audio, [], n=1)
    (r,) = run_recipes([recipe("a", text="Thank you for watching")], items, writer=ResultWriter(tmp_path), run_id="r")
    assert r.scores.words is None and r.scores.reference is None
    j = read_lines(tmp_path)[0]["metrics"]
    assert j["wer"] is None and j["reference"] is None
    # stock phrases need no reference; words in non-speech do (so they are missing, not 0)
    assert j["hallucination"]["stock_phrases"] == ["thanks-for-watching", "thank-you"]
    assert j["hallucination"]["nonspeech_words"] is None


def test_unavailable_recipe_is_recorded_at_check_without_loading(tmp_path, audio, stm):
    real = load_recipe("cascade-fast")
    asr = real.stage("asr")
    missing = dataclasses.replace(
        real,
        name="missing-model",
        stages=(real.stage("vad"), dataclasses.replace(asr, options=asr.options.model_copy(update={"model": "/nonexistent/folder"}))),
    )
    items = make_items(audio, [stm], n=2)
    results = run_recipes([missing, recipe("ok", text=stm.text)], items, writer=ResultWriter(tmp_path), run_id="r")
    assert [(r.recipe, r.error_stage) for r in results] == [
        ("missing-model", "check"), ("missing-model", "check"), ("ok", None), ("ok", None)
    ]
    assert "/nonexistent/folder" in results[0].error
    assert "To make it available" in results[0].error
    assert results[0].kind == "unavailable" and results[0].scores is None  # did not run: not scored
    assert results[0].timings == ()


def test_load_item_decodes_and_parses(audio):
    item = load_item(str(WAV), [str(STM), str(RTTM)])
    assert item.audio.recording.duration_s == pytest.approx(audio.recording.duration_s)
    assert [r.format for r in item.references] == ["stm", "rttm"]
    assert item.text_reference.format == "stm"


def test_error_stage_names_the_stage_that_failed(tmp_path, audio, stm):
    items = make_items(audio, [stm], n=1)
    [r] = run_recipes([recipe("b", run={0: RuntimeError("asr broke")})], items, writer=ResultWriter(tmp_path), run_id="r")
    assert r.error_stage == "asr"
    assert r.error == "RuntimeError: asr broke"


def test_a_late_stage_failure_keeps_what_earlier_stages_produced(tmp_path, audio, stm):
    """A formatter that fails after ASR finished: the ASR transcript is kept and scored as the ASR stage,
    while the final output (which never came) counts as all deletions."""
    from workbench.pipelines import StageFailed

    asr_text = load_reference(STM).text
    partial = PipelineOutput(Transcript((Segment(0.0, 30.0, asr_text),), "en"), Usage(audio_s=30.0, calls=1))
    items = make_items(audio, [stm], n=1)
    [r] = run_recipes([recipe("late", run={0: StageFailed("formatter", partial, ConnectionError("server gone"))})],
                      items, writer=ResultWriter(tmp_path), run_id="r")
    assert r.error == "ConnectionError: server gone"
    assert r.transcript is not None and r.transcript.text == asr_text
    assert r.scores.words.deletions == r.scores.words.reference_length  # the final output failed
    assert r.scores.asr_words.errors == 0  # but the finished ASR stage is still measured
    [j] = read_lines(tmp_path)
    assert j["transcript"]["text"] == asr_text and j["metrics"]["asr"]["wer"] == 0.0 and j["metrics"]["wer"] == 1.0


def test_results_are_strict_json_without_nan_or_infinity(tmp_path):
    writer = ResultWriter(tmp_path)
    writer.write_json({"a": float("inf"), "b": [float("nan"), 1.5], "c": {"d": float("-inf")}})

    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    [row] = [json.loads(line, parse_constant=refuse) for line in (tmp_path / RESULTS_FILE).read_text().splitlines()]
    assert row == {"a": None, "b": [None, 1.5], "c": {"d": None}}


def test_pool_keeps_models_loaded_across_runs(tmp_path, audio, stm):
    from workbench.runner import PipelinePool

    pool = PipelinePool(capacity=2)
    items = make_items(audio, [stm], n=1)
    a = recipe("a", text=stm.text)
    first = run_recipes([a], items, writer=ResultWriter(tmp_path / "1"), run_id="r1", pool=pool)
    second = run_recipes([a], items, writer=ResultWriter(tmp_path / "2"), run_id="r2", pool=pool)
    assert [e[0] for e in EVENTS] == ["load", "run", "run"]  # one load, no unload in between
    assert pool.loads == 1 and a in pool
    [t1] = [t for t in first[0].timings if t.stage == "load"]
    [t2] = [t for t in second[0].timings if t.stage == "load"]
    assert "reused" not in t1.detail and t2.detail["reused"] is True
    assert t2.wall_s == t1.wall_s  # the reused run reports the load its models were made with
    assert second[0].ok and second[0].scores.words.rate == 0.0


def test_pool_reloads_an_edited_recipe_and_evicts_the_least_recently_used(tmp_path, audio, stm):
    from workbench.runner import PipelinePool

    pool = PipelinePool(capacity=2)
    items = make_items(audio, [stm], n=1)
    a, b, c = recipe("a", text="x"), recipe("b", text="y"), recipe("c", text="z")
    for r in (a, b, a, c):  # a used again after b, so b is the least recently used when c arrives
        run_recipes([r], items, writer=ResultWriter(tmp_path), run_id="r", pool=pool)
    assert pool.loads == 3 and a in pool and c in pool and b not in pool
    assert ("unload", "b") in EVENTS and ("unload", "a") not in EVENTS
    edited = dataclasses.replace(a, description="edited", pipeline=FAKE, path="/fake/a2.toml")
    assert edited.hash == a.hash  # same content: reused
    run_recipes([edited], items, writer=ResultWriter(tmp_path), run_id="r", pool=pool)
    assert pool.loads == 3


def test_pool_keeps_nothing_after_a_failed_load(tmp_path, audio, stm):
    from workbench.runner import PipelinePool

    pool = PipelinePool()
    items = make_items(audio, [stm], n=1)
    bad = recipe("bad", load=RuntimeError("weights corrupt"))
    for _ in range(2):
        [r] = run_recipes([bad], items, writer=ResultWriter(tmp_path), run_id="r", pool=pool)
        assert r.error_stage == "load" and "weights corrupt" in r.error
    assert pool.loads == 0 and len(pool) == 0
    assert [e[0] for e in EVENTS] == ["load", "unload", "load", "unload"]  # tried again, not cached as broken
