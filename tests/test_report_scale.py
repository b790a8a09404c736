"""Reports at scale (issue 15, item 4): writing every format reads each row once and normalises each reference
once, whatever the number of recipes shown against it — counted, not timed."""

from __future__ import annotations

import json
import math

from workbench import report
from workbench.result import RunResult

RECIPES, RECORDINGS = ("a", "b", "c"), 4


def _rows(ref) -> list[dict]:
    rows = []
    for k in range(RECORDINGS):
        for recipe in RECIPES:
            rows.append({
                "run_id": "r", "recipe": recipe, "recipe_hash": recipe * 2,
                "recording": {"id": f"rec{k}", "path": f"/data/rec{k}.wav", "duration_s": 60.0},
                "transcript": {"text": f"hello there {recipe}", "segments": []},
                "metrics": {"wer": 0.5, "substitutions": 1, "deletions": 0, "insertions": 0, "reference_words": 2,
                            "reference": str(ref)},
                "timings": {"load": 1.0, "asr": 6.0}, "processing_s": 6.0, "rtfx": 10.0, "peak_rss_mb": 300.0,
            })
    return rows


def test_writing_all_formats_reads_each_row_once(tmp_path, monkeypatch):
    ref = tmp_path / "ref.txt"
    ref.write_text("hello there")
    rows = _rows(ref)
    calls = []
    original = RunResult.from_json.__func__
    monkeypatch.setattr(RunResult, "from_json", classmethod(lambda cls, row: calls.append(1) or original(cls, row)))
    report.write_reports(rows, "r", tmp_path / "out", list(report.FORMATS), run_dir=tmp_path)
    assert len(calls) == len(rows)  # was once per row and format (4×)


def test_the_html_diff_normalises_each_reference_once(tmp_path, monkeypatch):
    ref = tmp_path / "ref.txt"
    ref.write_text("hello there, general kenobi")
    import workbench.metrics

    normalised = []
    original = workbench.metrics.normalize
    monkeypatch.setattr(workbench.metrics, "normalize", lambda text, *a: normalised.append(text) or original(text, *a))
    if hasattr(report, "_normalized_reference"):
        report._normalized_reference.cache_clear()  # another test may have cached this text
    [page] = report.write_reports(_rows(ref), "r", tmp_path / "out", ["html"], run_dir=tmp_path)
    assert "<th>reference</th>" in page.read_text()
    assert normalised.count("hello there, general kenobi") == 1  # was once per result shown against it (12)
    assert len(normalised) == 1 + len(RECIPES) * RECORDINGS  # and each hypothesis once


def test_json_report_still_nulls_non_finite_numbers_in_rows(tmp_path):
    rows = _rows(tmp_path / "ref.txt")
    rows[0]["rtfx"] = math.inf  # a row written before results.jsonl was strict
    [out] = report.write_reports(rows, "r", tmp_path / "out", ["json"])
    data = json.loads(out.read_text())
    assert data["results"][0]["rtfx"] is None and data["results"][1]["rtfx"] == 10.0


def test_json_report_indents_the_figures_and_writes_one_line_per_row(tmp_path):
    rows = _rows(tmp_path / "ref.txt")
    text = report.to_json(rows, "r")
    assert json.loads(text)["results"] == rows
    lines = [line.strip().rstrip(",") for line in text.splitlines()]
    assert all(json.dumps(r, ensure_ascii=False) in lines for r in rows)  # was indented over ~30 lines each
    assert '  "run_id": "r",' in text.splitlines()  # the figures stay indented
    assert json.loads(report.to_json([], "r"))["results"] == []
