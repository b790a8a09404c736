"""Price table, cost per audio hour, RunResult figures and JSON form, and the comparison summary."""

from __future__ import annotations

import dataclasses
import json
import tomllib

import pytest

from workbench.cost import DEFAULT_PRICES, HardwarePrice, load_prices, usd_per_audio_hour
from workbench.datamodel import Recording, Segment, StageTiming, Transcript, Word
from workbench.errors import BadInputError
from workbench.metrics import ErrorCounts, char_errors, word_errors
from workbench.result import RunResult, Scores
from workbench.summary import MISSING, markdown, summarize, table

PRICE = HardwarePrice("test-box", 0.36, "a test", "2026-01-01", "a box")


# --- price table ------------------------------------------------------------------------------


def test_shipped_price_table_loads_with_source_and_date():
    prices = load_prices(DEFAULT_PRICES)
    assert prices.hardware
    for hw_id, row in prices.hardware.items():
        assert row.id == hw_id
        assert row.source.strip()
        assert row.date.strip()
        assert row.usd_per_hour > 0
    raw = tomllib.loads(DEFAULT_PRICES.read_text(encoding="utf-8"))
    marked = [k for k, v in raw["hardware"].items() if v.get("default")]
    assert marked == [prices.default_hardware]
    assert prices.pick(None).id == prices.default_hardware


def test_load_prices_default_path_and_env(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_PRICES", raising=False)
    assert load_prices().path == str(DEFAULT_PRICES)
    own = tmp_path / "prices.toml"
    own.write_text('[hardware.mine]\nusd_per_hour = 2.0\nsource = "me"\ndate = "2026-01-01"\n')
    monkeypatch.setenv("WORKBENCH_PRICES", str(own))
    table_ = load_prices()
    assert table_.path == str(own)
    assert table_.pick(None).id == "mine"  # no row marked default: the first


def test_pick_by_id():
    prices = load_prices(DEFAULT_PRICES)
    some = list(prices.hardware)[-1]
    assert prices.pick(some).id == some


def test_unknown_hardware_lists_ids():
    prices = load_prices(DEFAULT_PRICES)
    with pytest.raises(BadInputError) as info:
        prices.pick("cray-1")
    message = str(info.value)
    assert "'cray-1'" in message
    for hw_id in prices.hardware:
        assert hw_id in message


def test_row_without_source_is_bad_input(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text('[hardware.box]\nusd_per_hour = 1.0\ndate = "2026-01-01"\n')
    with pytest.raises(BadInputError) as info:
        load_prices(path)
    assert "source" in str(info.value)
    assert str(path) in str(info.value)
    assert "box" in str(info.value)


def test_row_with_empty_source_or_negative_price_is_bad_input(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text('[hardware.box]\nusd_per_hour = 1.0\nsource = ""\ndate = "2026-01-01"\n')
    with pytest.raises(BadInputError, match="source"):
        load_prices(path)
    path.write_text('[hardware.box]\nusd_per_hour = -1.0\nsource = "x"\ndate = "2026-01-01"\n')
    with pytest.raises(BadInputError, match="usd_per_hour"):
        load_prices(path)


def test_bad_price_files(tmp_path):
    with pytest.raises(BadInputError, match="not found"):
        load_prices(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[hardware\n")
    with pytest.raises(BadInputError, match="TOML"):
        load_prices(bad)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(BadInputError, match="no"):
        load_prices(empty)


def test_usd_per_audio_hour():
    assert usd_per_audio_hour(PRICE, 10.0) == pytest.approx(0.036)
    assert usd_per_audio_hour(PRICE, 0.5) == pytest.approx(0.72)
    assert usd_per_audio_hour(PRICE, None) is None
    assert usd_per_audio_hour(PRICE, 0) is None
    assert usd_per_audio_hour(PRICE, 0.0) is None


# --- RunResult --------------------------------------------------------------------------------

RECORDING = Recording("rec", "/data/rec.wav", 60.0, 16000, 1, "pcm_s16le")
REFERENCE = "the quick brown fox jumps over the lazy dog"


def make_result(
    recipe="fast",
    *,
    text="the quick brown fox jumps over the lazy dog",
    timings=(StageTiming("load", 5.0, 4.0), StageTiming("vad", 1.0, 0.9), StageTiming("asr", 5.0, 9.0)),
    error=None,
    reference=REFERENCE,
    recording=RECORDING,
    price=PRICE,
    scored=True,
    peak=512.3,
) -> RunResult:
    transcript = None if error else Transcript((Segment(0.0, 3.0, text, "S1", (Word(0.0, 0.4, "the", 0.9),)),), "en")
    hyp = "" if error else text
    scores = Scores(word_errors(reference, hyp), char_errors(reference, hyp), "whisper-english", "ref.stm", "stm") if scored else None
    return RunResult(
        run_id="run-1",
        recipe=recipe,
        recipe_hash=f"hash-{recipe}",
        pipeline="cascade",
        recording=recording,
        transcript=transcript,
        timings=tuple(timings),
        scores=scores,
        error=error,
        error_stage="asr" if error else None,
        peak_rss_mb=peak,
        price=price,
        versions={"jiwer": "4.0.0"},
        hardware={"cpu": "test cpu", "cpu_count": 2, "memory_gb": 4.0, "gpu": []},
    )


def test_rtfx_excludes_load():
    r = make_result()
    assert r.ok
    assert r.load_s == 5.0
    assert r.processing_s == pytest.approx(6.0)
    assert r.rtfx == pytest.approx(60.0 / 6.0)
    assert r.cpu_s == pytest.approx(9.9)
    assert r.cost_usd_per_audio_hour == pytest.approx(0.36 / 10.0)


def test_no_price_no_cost():
    r = make_result(price=None)
    assert r.rtfx == pytest.approx(10.0)
    assert r.cost_usd_per_audio_hour is None
    assert r.to_json()["cost"] is None


def test_only_load_timing_means_rtfx_not_measured():
    r = make_result(timings=(StageTiming("load", 1.0, 1.0),))
    assert r.processing_s == 0
    assert r.rtfx is None
    assert r.cost_usd_per_audio_hour is None


def test_failed_result_has_no_speed_or_cost():
    r = make_result(error="RuntimeError: boom")
    assert not r.ok
    assert r.processing_s is None
    assert r.cpu_s is None
    assert r.rtfx is None
    assert r.cost_usd_per_audio_hour is None
    # its output scores as all deletions
    assert r.scores.words.deletions == 9 and r.scores.words.rate == 1.0


def test_to_json_has_required_keys():
    j = make_result().to_json()
    for key in ("recipe", "recipe_hash", "recording", "transcript", "metrics", "timings", "rtfx", "peak_rss_mb",
                "cost_usd_per_audio_hour", "error", "versions"):
        assert key in j, key
    assert j["recipe"] == "fast" and j["recipe_hash"] == "hash-fast"
    assert j["recording"]["id"] == "rec"
    assert j["recording"]["path"] == "/data/rec.wav"
    assert j["recording"]["duration_s"] == 60.0
    assert j["transcript"]["text"] == REFERENCE
    seg = j["transcript"]["segments"][0]
    assert {k: seg[k] for k in ("start", "end", "speaker", "text")} == {"start": 0.0, "end": 3.0, "speaker": "S1", "text": REFERENCE}
    m = j["metrics"]
    assert m["wer"] == 0.0 and m["cer"] == 0.0
    assert (m["substitutions"], m["deletions"], m["insertions"], m["reference_words"]) == (0, 0, 0, 9)
    assert j["timings"] == {"load": 5.0, "vad": 1.0, "asr": 5.0}
    assert j["rtfx"] == 10.0
    assert j["peak_rss_mb"] == 512.3
    assert j["cost_usd_per_audio_hour"] == pytest.approx(0.036)
    assert j["cost"]["source"] == PRICE.source and j["cost"]["date"] == PRICE.date
    assert j["error"] is None
    assert j["versions"] == {"jiwer": "4.0.0"}
    json.dumps(j)  # serialisable as is


def test_to_json_missing_values_are_null_not_zero():
    j = make_result(error="load failed: boom", timings=(), scored=False, peak=None).to_json()
    assert j["error"] == "load failed: boom"
    for key in ("rtfx", "processing_s", "cpu_s", "peak_rss_mb", "cost_usd_per_audio_hour"):
        assert j[key] is None, key
    for key in ("wer", "cer", "substitutions", "deletions", "insertions", "reference_words"):
        assert j["metrics"][key] is None, key
    assert j["transcript"]["text"] == ""
    assert j["transcript"]["segments"] == []
    assert "null" in json.dumps(j)


def test_to_json_wer_null_for_empty_reference():
    j = make_result(reference="").to_json()
    assert j["metrics"]["wer"] is None
    assert j["metrics"]["insertions"] == 9
    assert j["metrics"]["reference_words"] == 0


# --- summary ----------------------------------------------------------------------------------


def test_summarize_sums_counts_over_recordings():
    short = Recording("short", "/s.wav", 10.0, 16000, 1)
    a = make_result(reference="hello", text="goodbye", recording=short)  # 1 error / 1 word
    b = make_result(reference=REFERENCE, text=REFERENCE)  # 0 / 9
    (s,) = summarize([a, b])
    assert s.recordings == 2 and s.failed == 0
    assert s.words.reference_length == 10
    assert s.words.errors == 1
    assert s.words.rate == pytest.approx(0.1)  # not the mean of 1.0 and 0.0
    assert s.audio_s == 70.0
    assert s.processing_s == pytest.approx(12.0)
    assert s.rtfx == pytest.approx(70.0 / 12.0)
    assert s.stage_s == {"vad": 2.0, "asr": 10.0}
    assert s.cost_usd_per_audio_hour == pytest.approx(0.36 / (70.0 / 12.0))
    assert s.load_s == 5.0
    assert s.peak_rss_mb == 512.3


def test_summarize_groups_by_recipe_in_order():
    results = [make_result("b"), make_result("a"), make_result("b")]
    assert [s.recipe for s in summarize(results)] == ["b", "a"]


def test_summarize_keeps_versions_of_an_edited_recipe_apart():
    old, new = make_result("a"), dataclasses.replace(make_result("a", text="the quick brown"), recipe_hash="feedface99")
    summaries = summarize([old, new, make_result("b")])
    assert [s.shown for s in summaries] == ["a@hash-a", "a@feedfac", "b"]
    assert summaries[0].words.errors == 0 and summaries[1].words.errors > 0
    assert "a@feedfac" in markdown([old, new])


def test_failed_recipe_row_shows_missing_and_failed_count():
    ok, failed = make_result("good"), make_result("broken", error="RuntimeError: boom", timings=())
    summaries = summarize([ok, failed])
    broken = summaries[1]
    assert broken.failed == 1 and broken.recordings == 1
    assert broken.rtfx is None and broken.cost_usd_per_audio_hour is None
    headers, body = table(summaries)
    assert headers == ["metric", "good", "broken"]
    rows = {row[0]: row[1:] for row in body}
    assert rows["RTFx (audio s / processing s)"] == ["10.0", MISSING]
    assert rows["cost $/audio hour"][1] == MISSING
    assert rows["processing s (load excluded)"][1] == MISSING
    assert rows["failed recordings"] == ["0/1", "1/1"]
    assert rows["WER"] == ["0.0%", "100.0%"]  # a failed run scores as all deletions


def test_no_reference_shows_missing_not_zero():
    headers, body = table(summarize([make_result(scored=False)]))
    rows = {row[0]: row[1:] for row in body}
    assert rows["WER"] == [MISSING]
    assert rows["CER"] == [MISSING]
    assert rows["reference words"] == [MISSING]


def test_table_marks_best():
    fast = make_result("fast", timings=(StageTiming("asr", 2.0, 2.0),))
    slow = make_result("slow", timings=(StageTiming("asr", 6.0, 6.0),))
    _, body = table(summarize([fast, slow]), mark_best=lambda c: f"*{c}*")
    rows = {row[0]: row[1:] for row in body}
    assert rows["RTFx (audio s / processing s)"] == ["*30.0*", "10.0"]
    assert rows["latency: asr s"] == ["2.00", "6.00"]  # the one metric table names stage rows so


def test_markdown_has_table_transcripts_errors_and_provenance():
    ok, failed = make_result("good"), make_result("broken", error="RuntimeError: boom", timings=())
    md = markdown([ok, failed], title="My run")
    assert md.startswith("# My run\n")
    assert "| metric | good | broken |" in md
    assert "| failed recordings | 0/1 | 1/1 |" in md
    assert "## Errors" in md and "RuntimeError: boom" in md
    assert "## Transcripts" in md and REFERENCE in md
    assert "hash-good" in md and "hash-broken" in md
    assert "test-box" in md


def test_markdown_escapes_untrusted_model_text():
    evil = "<script>alert(1)</script> | col | *bold* [link](http://x)\nnew line"
    md = markdown([make_result("r", text=evil)])
    assert "<script>" not in md
    assert "</script>" not in md
    assert "&lt;script&gt;" in md
    transcript_line = next(line for line in md.splitlines() if line.startswith("- **r** on"))
    assert "| col |" not in transcript_line
    assert "\\|" in transcript_line
    assert "new line" in transcript_line  # the newline did not start a new line
    # every table row still has exactly as many cells as the header
    table_lines = [line for line in md.splitlines() if line.startswith("|")]
    widths = {len(line.replace("\\|", "")) - len(line.replace("\\|", "").replace("|", "")) for line in table_lines}
    assert len(widths) == 1


def test_markdown_escapes_untrusted_recipe_and_error_text():
    r = dataclasses.replace(make_result("a|b<i>", error="boom <img src=x> | x", timings=()), recipe_hash="0123abcd")
    md = markdown([r])
    assert "<img" not in md and "<i>" not in md
    header = next(line for line in md.splitlines() if line.startswith("| metric"))
    assert header == "| metric | a\\|b&lt;i&gt; |"


def test_markdown_without_reference_says_so():
    md = markdown([make_result(scored=False)])
    assert "none (WER not measured)" in md


def test_two_default_rows_are_an_error(tmp_path):
    path = tmp_path / "prices.toml"
    row = 'usd_per_hour = 1.0\nsource = "me"\ndate = "2026-01-01"\ndefault = true\n'
    path.write_text(f'[hardware."a"]\n{row}\n[hardware."b"]\n{row}')
    with pytest.raises(BadInputError, match="both marked default"):
        load_prices(path)


def test_every_result_says_how_it_ran_and_summary_shows_it():
    import dataclasses

    from workbench.execution import Execution

    alone = make_result("alone")
    assert alone.to_json()["execution"]["executor"] == "in-process"
    md = markdown([alone])
    assert "- execution: in one process, 1 worker at once" in md
    assert "under contention" not in md
    shared = dataclasses.replace(make_result("shared"), execution=Execution("processes", 4, 2, 8))
    assert shared.to_json()["execution"] == {"executor": "processes", "workers": 4, "threads": 2, "cpu_count": 8,
                                             "contended": True}
    md = markdown([shared])
    assert "- execution: worker processes, 4 workers at once, each worker's models given 2 CPU threads of 8 cores" in md
    assert "Measured under contention: 4 workers shared this machine's cores" in md
