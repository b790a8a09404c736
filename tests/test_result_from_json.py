"""RunResult.from_json is the inverse of to_json, for every row shape results.jsonl and the store hold.

"Equal" after a round trip: every field of the row comes back with the same value, with two kinds of exception,
named here: a row written by an older version gains the fields it lacked (with their defaults; ``error_kind``
derived from the stage), and the figures a row derives from rounded numbers (:data:`DERIVED`) come back within
rounding (they are recomputed from the rounded seconds the row holds).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from workbench.cost import ApiPrice, HardwarePrice
from workbench.datamodel import Recording, StageTiming, Transcript, Usage
from workbench.metrics import ErrorCounts
from workbench.metrics.diarization import CpWer, DerCounts
from workbench.result import RunResult
from workbench.scoring import Scores

GOLDEN = Path(__file__).parent / "golden" / "results.jsonl"
GOLDEN_ROWS = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]

#: (path of a figure in the row) → tolerance: figures recomputed from rounded numbers on the way back
DERIVED = {("metrics", "der", "*", "der"): 1e-3, ("metrics", "hallucination", "words_per_hour_nonspeech"): 0.01,
           ("cost", "hardware", "usd_per_audio_hour"): 1e-6, ("cost", "api", "usd_per_audio_hour"): 1e-6}


def same(new, old, path=()) -> list[str]:
    """Where ``new`` differs from ``old`` (keys only ``new`` has are fields an older row lacked: allowed)."""
    tolerance = next((t for p, t in DERIVED.items() if len(p) == len(path)
                      and all(a in ("*", b) for a, b in zip(p, path))), None)
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in old for d in (same(new[k], old[k], (*path, k)) if k in new else [f"{path + (k,)} lost"])]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(new, old)) for d in same(a, b, (*path, "*"))]
    if tolerance is not None and isinstance(old, float) and isinstance(new, float):
        return [] if math.isclose(new, old, rel_tol=tolerance, abs_tol=tolerance) else [f"{path}: {new} != {old}"]
    if isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new):
        return []
    return [] if new == old else [f"{path}: {new!r} != {old!r}"]


def round_trip(row: dict) -> dict:
    return json.loads(json.dumps(RunResult.from_json(row).to_json()))


@pytest.mark.parametrize("row", GOLDEN_ROWS, ids=[f"{r['recipe']}-{r['recording']['id']}" for r in GOLDEN_ROWS])
def test_every_golden_row_round_trips(row):
    back = round_trip(row)
    assert sorted(back) == sorted(row)  # a current row: no field added, none lost
    assert same(back, row) == []


def test_a_round_trip_keeps_the_objects_figures():
    for row in GOLDEN_ROWS:
        r = RunResult.from_json(row)
        assert r.kind == row["error_kind"] and r.did_run == (row["error_kind"] not in ("unavailable", "load-failed", "bad-input"))
        assert r.rtfx == row["rtfx"] and r.processing_s == row["processing_s"]
        if row["metrics"]["wer"] is not None:
            assert r.scores.words.rate == row["metrics"]["wer"]
        if row["metrics"]["cpwer"]:
            assert r.scores.cpwer.words.rate == row["metrics"]["cpwer"]["cpwer"]
        assert RunResult.from_json(r.to_json()) == r  # objects round-trip too


def _old(row: dict, *drop: str) -> dict:
    old = copy.deepcopy(row)
    for key in drop:
        old.pop(key, None)
    return old


def test_rows_written_by_older_versions_read_back_with_defaults():
    failed = next(r for r in GOLDEN_ROWS if r["error_kind"] == "failed")
    unavailable = next(r for r in GOLDEN_ROWS if r["error_kind"] == "unavailable")
    for row in (failed, unavailable):
        old = _old(row, "error_kind", "execution")  # before error_kind and execution existed
        back = round_trip(old)
        assert same(back, old) == []
        assert back["error_kind"] == row["error_kind"]  # derived from the stage
        assert back["execution"]["executor"] == "in-process"
    # hallucination rows before the repetition measures
    ok = copy.deepcopy(next(r for r in GOLDEN_ROWS if r["metrics"]["hallucination"] and not r["error"]))
    for key in ("repeated_ngrams_beyond_reference", "longest_repeat_run", "repeat_example", "nonspeech_examples"):
        ok["metrics"]["hallucination"].pop(key)
    assert same(round_trip(ok), ok) == []


def test_a_row_holding_infinity_round_trips():
    """Rows written before results.jsonl was strict held Infinity (silero's max_speech_duration_s)."""
    row = copy.deepcopy(GOLDEN_ROWS[0])
    row["components"] = {"vad": {"max_speech_duration_s": float("inf")}}
    back = RunResult.from_json(row).to_json()
    assert back["components"] == row["components"] and same(back, row) == []


def test_priced_rows_round_trip_hardware_api_and_hybrid():
    rec = Recording("a", "/a.wav", 60.0, 16000, 1)
    timings = (StageTiming("load", 1.0, 0.5), StageTiming("asr", 3.0, 2.0), StageTiming("formatter", 2.0, 0.1))
    hw = HardwarePrice("box", 0.36, "a test", "2026-01-01", matched=False, note="priced as box")
    api = ApiPrice("llm", "a test", "2026-01-01", usd_per_1m_input_tokens=1.0, usd_per_1m_output_tokens=2.0)
    scores = Scores(ErrorCounts(1, 2, 0, 7, 10), ErrorCounts(3, 1, 1, 40, 45), "whisper-english", "r.stm", "stm",
                    der=(DerCounts(0.5, False, 10.0, 0.25, 0.5, 1.0),), cpwer=CpWer(ErrorCounts(1, 0, 0, 5, 6), 0, 1))
    usage = Usage(audio_s=60.0, calls=2, input_tokens=1000, output_tokens=300)
    for price, api_price, stage in ((hw, None, None), (None, api, None), (hw, api, "formatter")):
        r = RunResult("run", "x", "h", "cascade", rec, Transcript(), timings, usage, scores, price=price,
                      api_price=api_price, api_stage=stage)
        row = json.loads(json.dumps(r.to_json()))
        back = RunResult.from_json(row)
        assert (back.price, back.api_price, back.api_stage) == (price, api_price, stage)
        assert same(back.to_json(), row) == []
        assert back.cost_usd_per_audio_hour == row["cost_usd_per_audio_hour"]
        assert back.cost_json() == row["cost"]  # how it was priced, exactly as the row holds it (the dashboard shows it)


def test_minimal_rows_of_the_report_tests_read():
    """The hand-written rows of test_report.py (few fields): they read, with the figures they hold."""
    row = {"run_id": "r", "recipe": "a", "recipe_hash": "aa", "error": None,
           "recording": {"id": "r1", "path": "/data/r1.wav", "duration_s": 60.0},
           "transcript": {"text": "hello world", "segments": []},
           "metrics": {"wer": 0.1, "cer": None, "substitutions": 1, "deletions": 1, "insertions": 0,
                       "reference_words": 20, "reference": None, "der": None, "cpwer": None,
                       "hallucination": {"nonspeech_words": None, "nonspeech_s": None, "stock_phrases": []}},
           "timings": {"load": 1.0, "asr": 6.0}, "processing_s": 6.0, "rtfx": 10.0, "cost_usd_per_audio_hour": 0.01}
    r = RunResult.from_json(row)
    assert r.scores.words.rate == 0.1 and r.rtfx == 10.0 and r.cost_usd_per_audio_hour == 0.01 and r.load_s == 1.0
    assert r.kind is None and r.did_run


def test_a_row_with_answered_questions_round_trips():
    from workbench.tasks import Judge, TaskResult

    tasks = (TaskResult("dog", "sound", "yesno", "Is a dog heard?", "Yes, it barks.", "yes", True, None, None,
                        Judge("rules", "read 'yes'"), 0.42, Usage(audio_s=12.0, calls=1, input_tokens=30, output_tokens=4)),
             TaskResult("when", "temporal", "locate", "When?", "at 0:57", 57.0, True, None, 0.0, Judge("rules"), 0.3),
             TaskResult("gist", "summary", "open", "Summarise.", "They talk.", None, None))
    row = {**copy.deepcopy(GOLDEN_ROWS[0]), "tasks": [t.to_json() for t in tasks]}
    result = RunResult.from_json(row)
    assert result.tasks == tasks
    assert same(round_trip(row), row) == []
