"""Report files and results.jsonl as files: written whole or not at all; a torn last line is skipped and said."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.files import write_atomic


def row(recipe: str, recording: str) -> dict:
    return {"run_id": "r", "recipe": recipe, "recipe_hash": recipe * 2, "error": None, "pipeline": "cascade",
            "recording": {"id": recording, "path": f"/data/{recording}.wav", "duration_s": 60.0},
            "transcript": {"text": "hello world", "segments": []},
            "metrics": {"wer": 0.1, "substitutions": 1, "deletions": 1, "insertions": 0, "reference_words": 20},
            "timings": {"load": 1.0, "asr": 6.0}, "processing_s": 6.0, "rtfx": 10.0}


def test_write_atomic_replaces_whole_or_leaves_the_old_file(tmp_path):
    path = tmp_path / "report.md"
    write_atomic(path, "old report\n")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(path, "new report, cut short by \ud800")
    assert path.read_text(encoding="utf-8") == "old report\n"
    write_atomic(path, "new report ü\n")
    assert path.read_text(encoding="utf-8") == "new report ü\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]  # no temporary file left behind


def test_a_report_that_fails_to_write_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    from workbench import report

    report.write_reports([row("a", "x")], "r", tmp_path, ["md"])
    before = (tmp_path / "report.md").read_text(encoding="utf-8")
    monkeypatch.setattr(report, "render", lambda *a, **k: "half a report \ud800")
    with pytest.raises(UnicodeEncodeError):
        report.write_reports([row("a", "x")], "r", tmp_path, ["md"])
    assert (tmp_path / "report.md").read_text(encoding="utf-8") == before


def test_report_from_a_results_file_with_a_torn_last_line(tmp_path):
    path = tmp_path / "results.jsonl"
    lines = [json.dumps(row("a", "x")), json.dumps(row("b", "x")), json.dumps(row("a", "y"))[:50]]
    path.write_text("\n".join(lines), encoding="utf-8")  # killed in the middle of the third append
    result = CliRunner().invoke(app, ["report", str(path), "--format", "md,json"])
    assert result.exit_code == 0, result.output
    assert f"{path}:3" in result.output.replace("\n", "") and "torn" in result.output
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert "x" in json.dumps(report) and "/data/y.wav" not in json.dumps(report)


def test_report_from_a_results_file_with_a_bad_line_before_the_last_names_it(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(row("a", "x")) + "\n{oops\n" + json.dumps(row("b", "x")) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["report", str(path), "--format", "md"])
    assert result.exit_code == 2 and "results.jsonl:2" in result.output.replace("\n", ""), result.output
