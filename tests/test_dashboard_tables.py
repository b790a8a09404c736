"""What the dashboard shows, computed from result rows: metrics table (best marked, missing never 0), chart and
timeline data, escaping, upload names. Rows are built by the real runner (with the wiring fake) or by hand."""

from __future__ import annotations

import html

import numpy as np
import pytest
from conftest import PYANNOTE_STM, PYANNOTE_WAV
from fake_pipeline import BEHAVIOUR, register

from workbench.dashboard import tables
from workbench.dashboard.compare import safe_name
from workbench.recipes import Recipe
from workbench.references import load_reference
from workbench.result import RunResult
from workbench.report import MIN_RECORDINGS, figures
from workbench.runner import MemoryWriter, load_item, run_recipes


@pytest.fixture
def rows(monkeypatch):
    """Two fake recipes on the real sample + STM (one exact, one dropping half the words), one failing at load."""
    register(monkeypatch)
    ref = load_reference(PYANNOTE_STM)
    words = ref.text.split()
    BEHAVIOUR.update({"exact": {"text": ref.text}, "half": {"text": " ".join(words[: len(words) // 2])},
                      "broken": {"load": RuntimeError("weights corrupt")}})
    recipes = [Recipe(n, "test-fake", stages=(), path=f"/fake/{n}.toml") for n in ("exact", "half", "broken")]
    writer = MemoryWriter()
    item = load_item(str(PYANNOTE_WAV), [str(PYANNOTE_STM)])
    results = run_recipes(recipes, [item], writer=writer, run_id="r1")
    return [r.to_json() for r in results]


def test_metrics_table_marks_the_best_and_shows_missing_as_a_dash(rows):
    table = tables.metrics_table(rows)
    assert table.recipes == ("exact", "half", "broken")
    wer = table.row("WER")
    assert wer.cells[0] == "0.0%" and wer.best == (True, False, False)
    assert float(wer.cells[1].rstrip("%")) == pytest.approx(100 * rows[1]["metrics"]["wer"], abs=0.05)
    assert wer.cells[2] == "did not run"  # its models never loaded: in no figure (one that ran and failed scores 100%)
    assert table.row("cpWER").cells == ("—", "—", "did not run")  # no speakers in these outputs: not measured
    assert table.row("RTFx (audio s / processing s)").cells[2] == "did not run"
    for row in table.rows:  # only measured cells can be best, and a row's best exists only among 2+ measured
        assert not any(b and c == "—" for c, b in zip(row.cells, row.best))
        assert sum(row.best) == 0 or sum(c != "—" for c in row.cells) > 1
    assert table.row("failed recordings").cells == ("0/1", "0/1", "—")
    assert table.row("did not run (recordings, in no figure)").cells == ("0", "0", "1")
    assert any(r.label == "latency: asr s" for r in table.rows)


def test_table_html_escapes_names_and_marks_best_cells(rows):
    for r in rows:
        r["recipe"] = r["recipe"] + "<img src=x onerror=alert(1)>"
    out = tables.table_html(tables.metrics_table(rows))
    assert "<img" not in out and html.escape("<img src=x onerror=alert(1)>") in out
    assert out.count('class="best"') >= 2


def test_missing_figures_are_not_charted_as_zero(rows):
    records = tables.chart_records(figures(rows))
    broken = {r["metric"]: r["value"] for r in records if r["recipe"].startswith("broken")}
    # its models failed to load: it did not run, so no figure of it is measured (not WER 100 %)
    assert broken["RTFx (higher is faster)"] is None and broken["WER % (lower is better)"] is None
    stages = tables.stage_records(figures(rows))
    assert {s["recipe"] for s in stages} == {"exact", "half"} and all(s["seconds"] >= 0 for s in stages)


X_WAV = {"path": "x.wav", "id": "x", "duration_s": 5.0}


def test_timeline_has_reference_and_recipe_lanes():
    ref = load_reference(PYANNOTE_STM)
    rows = [{"recipe": "a", "recording": X_WAV,
             "transcript": {"segments": [{"start": 1.0, "end": 2.0, "speaker": None, "text": "hi"}]},
             "speakers": {"turns": [[0.5, 2.5, "S1"]]}},
            {"recipe": "b", "recording": X_WAV,
             "transcript": {"segments": [{"start": 3.0, "end": 4.0, "speaker": "S2", "text": "yo"}]}}]
    lanes = tables.timeline(rows, ref)
    assert {x["lane"] for x in lanes} == {"reference", "a", "b"}
    assert sum(x["lane"] == "reference" for x in lanes) == len(ref.segments)
    assert [x for x in lanes if x["lane"] == "a"] == [{"lane": "a", "start": 0.5, "end": 2.5, "speaker": "S1", "text": ""}]
    assert [x["speaker"] for x in lanes if x["lane"] == "b"] == ["S2"]
    assert tables.timeline([{**rows[1], "transcript": {"segments": [{"start": None, "end": None, "text": "untimed"}]}}]) == []
    # the dashboard's views hand it RunResult objects (rows read once per view): the same lanes
    assert tables.timeline([RunResult.from_json(r) for r in rows], ref) == lanes


def test_envelope_bounds_the_samples():
    samples = np.sin(np.linspace(0, 200, 16000 * 3)).astype(np.float32) * 0.5
    env = tables.envelope(samples, points=100)
    assert 90 <= len(env) <= 100 and env[-1]["t"] < 3.0
    assert min(e["lo"] for e in env) == pytest.approx(-0.5, abs=0.01) and max(e["hi"] for e in env) == pytest.approx(0.5, abs=0.01)
    assert tables.envelope(np.zeros(0, dtype=np.float32)) == []


def test_final_text_is_what_wer_scored():
    row = {"recipe": "a", "recording": X_WAV,
           "transcript": {"text": "raw words", "formatted": "SPEAKER_00: Hello there.\nSPEAKER_01: Hi.",
                          "segments": [{"speaker": "SPEAKER_00"}, {"speaker": "SPEAKER_01"}]}}
    raw = {"recipe": "a", "recording": X_WAV, "transcript": {"text": "raw words", "formatted": None}}
    for read in (dict, RunResult.from_json):  # a row, or the object the dashboard's views read
        assert tables.final_text(read(row)) == "Hello there.\nHi."
        assert tables.final_text(read(raw)) == "raw words"


@pytest.mark.parametrize("name, expected", [
    ("talk.wav", "talk.wav"), ("../../etc/passwd", "passwd"), ("C:\\Users\\me\\my talk (1).mp3", "my_talk_1.mp3"),
    ("....", "upload"), ("<script>.stm", "script.stm"), ("noext", "noext"),
])
def test_upload_names_are_made_safe(name, expected):
    assert safe_name(name) == expected


def _copies(rows, n):
    """``rows`` on ``n`` recordings (the same results, other paths)."""
    return [dict(r, recording=dict(r["recording"], path=f"/other/{k}.wav", id=f"other-{k}")) for k in range(n) for r in rows]


def test_several_recordings_add_the_wer_interval(rows):
    table = tables.metrics_table(_copies(rows, MIN_RECORDINGS))
    ci = table.row("WER 95% CI (bootstrap over recordings)")
    assert ci.cells[0] == "0.0–0.0%" and ci.cells[2] == "did not run"  # load failed: in no interval
    assert all(r.label != "WER 95% CI (bootstrap over recordings)" for r in tables.metrics_table(rows).rows)


def test_too_few_recordings_say_so_where_the_interval_would_be(rows):
    """Changed with issue 11: two recordings used to get an interval; below MIN_RECORDINGS there is none."""
    ci = tables.metrics_table(_copies(rows, 2)).row("WER 95% CI (bootstrap over recordings)")
    assert ci.cells[0] == "too few recordings (n=2)"


def test_a_recipe_edited_between_runs_gets_one_column_per_version(rows):
    edited = [dict(r, recipe_hash="f00dfeed" + (r.get("recipe_hash") or ""), run_id="r2") for r in rows
              if r["recipe"] == "exact"]
    table = tables.metrics_table(rows + edited)
    exact = [n for n in table.recipes if n.startswith("exact")]
    assert len(exact) == 2 and all("@" in n for n in exact) and "exact@f00dfee" in exact
    assert "half" in table.recipes
