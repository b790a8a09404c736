"""Reports: the same corpus figures in HTML, Markdown, JSON and CSV; untrusted text stays text."""

from __future__ import annotations

import copy
import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from workbench.errors import BadInputError
from workbench.result import RunResult
from workbench.report import (MIN_RECORDINGS, comparisons, figures, holm, paired, to_csv, to_html, to_json, to_markdown,
                              write_reports)

ROOT = Path(__file__).resolve().parent.parent
EVIL = '<script>alert("pwned")</script> | =cmd'


def row(recipe: str, recording: str, s: int, d: int, i: int, n: int, text: str = "hello world", error=None) -> dict:
    return {
        "run_id": "r", "recipe": recipe, "recipe_hash": recipe * 2, "error": error,
        "recording": {"id": recording, "path": f"/data/{recording}.wav", "duration_s": 60.0},
        "transcript": {"text": text, "segments": []},
        "metrics": {"wer": (s + d + i) / n, "cer": None, "substitutions": s, "deletions": d, "insertions": i,
                    "reference_words": n, "reference": None, "der": None, "cpwer": None,
                    "hallucination": {"nonspeech_words": None, "nonspeech_s": None, "stock_phrases": []}},
        "timings": {"load": 1.0, "asr": 6.0}, "processing_s": 6.0, "rtfx": 10.0, "cost_usd_per_audio_hour": 0.01,
        "peak_rss_mb": 300.0,
    }


ROWS = [row("a", f"rec{k}", k % 3, 1, 0, 20) for k in range(8)] + [row("b", f"rec{k}", 3, 2, k % 2, 20) for k in range(8)]


def test_corpus_wer_sums_counts_and_has_a_bootstrap_interval():
    [a, b] = figures(ROWS)
    assert a.wer == pytest.approx(sum(k % 3 + 1 for k in range(8)) / 160)
    assert a.wer_ci[0] <= a.wer <= a.wer_ci[1]
    assert a.rtfx == pytest.approx(480 / 48)
    assert b.wer > a.wer


def test_paired_comparison_finds_a_consistent_difference():
    p = paired(ROWS, "a", "b")
    assert p.recordings == 8 and p.wer_difference < 0
    assert p.ci[1] < 0 and p.p_value < 0.05
    same = paired(ROWS + [dict(r, recipe="c") for r in ROWS if r["recipe"] == "a"], "a", "c")
    assert same.wer_difference == 0 and same.p_value == 1.0


def test_a_failed_or_unscored_result_is_missing_not_zero():
    rows = [dict(row("x", "r1", 0, 0, 0, 10), error="boom", cost_usd_per_audio_hour=None, processing_s=None)]
    [f] = figures(rows)
    assert f.failed == 1 and f.rtfx is None and f.cost_usd_per_audio_hour is None
    assert "—" in to_markdown(rows, "r")


def test_untrusted_text_is_escaped_in_every_format():
    rows = [row("a", "rec", 0, 0, 0, 2, text=EVIL)]
    page = to_html(rows, "r")
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "default-src 'none'" in page  # no script could run even if one slipped through
    assert "<script" not in to_markdown([dict(rows[0], recipe="<script>")], "r")
    [record] = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert record["text"].startswith("'<script>") or not record["text"].startswith("=")
    assert json.loads(to_json(rows, "r"))["results"][0]["transcript"]["text"] == EVIL  # JSON keeps the data as data


def test_csv_guards_against_formulas():
    [record] = list(csv.DictReader(io.StringIO(to_csv([row("a", "rec", 0, 0, 0, 2, text="=HYPERLINK(1)")]))))
    assert record["text"] == "'=HYPERLINK(1)"


def test_all_formats_carry_the_same_numbers(tmp_path):
    paths = write_reports(ROWS, "r", tmp_path, ["html", "md", "json", "csv"])
    assert [p.name for p in paths] == ["report.html", "report.md", "report.json", "report.csv"]
    data = json.loads((tmp_path / "report.json").read_text())
    wer_a = data["recipes"][0]["wer"]
    assert f"{100 * wer_a:.1f}%" in (tmp_path / "report.md").read_text()
    assert f"{100 * wer_a:.1f}%" in (tmp_path / "report.html").read_text()
    assert len(list(csv.DictReader(io.StringIO((tmp_path / "report.csv").read_text())))) == len(ROWS)


def test_reports_read_result_objects_as_they_read_rows():
    flagged = dict(row("a", "rec9", 0, 1, 0, 20), details={"windows": [{"start": 0.0, "end": 30.0, "flag": "short <b>"}]})
    rows = ROWS + [flagged]
    results = [RunResult.from_json(r) for r in rows]
    page = to_html(rows, "r")
    assert "<h2>Coverage flags</h2>" in page and "a on rec9 0.0–30.0 s: short &lt;b&gt;" in page
    assert to_html(results, "r") == page
    assert to_markdown(results, "r") == to_markdown(rows, "r")
    assert to_csv(results) == to_csv(rows)


def test_unknown_format(tmp_path):
    with pytest.raises(BadInputError, match="pdf"):
        write_reports(ROWS, "r", tmp_path, ["pdf"])


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.integration
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/test.sh installs it)")
def test_html_report_opens_offline_in_headless_chromium_and_shows_its_charts(tmp_path):
    from playwright.sync_api import sync_playwright

    rows = copy.deepcopy(ROWS)
    rows[0]["transcript"]["text"] = EVIL
    [page_path] = write_reports(rows, "browser-test", tmp_path, ["html"])
    shot = ROOT / "reports" / "report-screenshot.png"
    shot.parent.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                    "--disable-background-networking", "--disable-component-update", "--no-first-run"])
        page = browser.new_page()
        requests, dialogs = [], []
        page.on("request", lambda r: requests.append(r.url))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(page_path.as_uri())
        assert page.locator(".chart svg").count() == 2  # the dashboard's two charts (workbench.charts), as SVG
        assert page.locator(".chart svg .mark-rect path").count() >= 4  # bars
        assert page.locator(".chart svg").first.bounding_box()["width"] > 300
        assert page.locator("table#figures tr").count() == 3
        assert EVIL.split(" |")[0] in page.locator(".tx").first.inner_text()  # shown as text
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert dialogs == []  # the transcript's <script> never ran
    assert all(u.startswith(("file:", "data:", "about:")) for u in requests)  # nothing fetched from a network
    assert shot.stat().st_size > 10_000


def test_json_report_is_strict_even_for_old_rows_holding_infinity():
    old = row("a", "r1", 1, 0, 0, 10)
    old["components"] = {"vad": {"max_speech_duration_s": float("inf")}}
    out = json.loads(to_json([old], "old"))
    assert out["results"][0]["components"]["vad"]["max_speech_duration_s"] is None


# --- statistics: a minimum of recordings, an exact paired test, Holm ------------------------------------------


TWO = [row("a", f"rec{k}", 1, 0, 0, 20) for k in range(2)] + [row("b", f"rec{k}", 5, 0, 0, 20) for k in range(2)]


def test_two_recordings_with_the_same_sign_have_no_p_value_anywhere(tmp_path):
    """Two recordings, b worse on both: an exact sign test gives p = 0.5; the old bootstrap printed < 0.001."""
    p = paired(TWO, "a", "b")
    assert p.recordings == 2 and p.wer_difference == pytest.approx(-0.2)
    assert p.ci is None and p.p_value is None and p.p_holm is None
    assert p.note == "too few recordings (n=2)"
    [fa, _] = figures(TWO)
    assert fa.wer_ci is None and fa.wer_ci_note == "too few recordings (n=2)"
    write_reports(TWO, "r", tmp_path, ["html", "md", "json"])
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["paired"][0]["p_value"] is None and data["paired"][0]["ci"] is None
    assert data["paired"][0]["note"] == "too few recordings (n=2)"
    assert data["recipes"][0]["wer_ci"] is None and data["recipes"][0]["wer_ci_note"] == "too few recordings (n=2)"
    for name in ("report.md", "report.html"):
        text = (tmp_path / name).read_text()
        assert "too few recordings (n=2)" in text and "< 0.001" not in text
        assert f"at least {MIN_RECORDINGS} recordings" in text  # the rule is stated where the figures are


def test_exact_paired_permutation_p_value():
    """Six recordings, same reference length: a is 3 errors better on five and 1 worse on one. Of the 2⁶ swaps,
    exactly four give a difference at least as large (none swapped, only the sixth swapped, and their mirror
    images): p = 4/64."""
    assert MIN_RECORDINGS <= 6
    rows = [row("a", f"rec{k}", 1 if k < 5 else 4, 0, 0, 20) for k in range(6)]
    rows += [row("b", f"rec{k}", 4 if k < 5 else 3, 0, 0, 20) for k in range(6)]
    p = paired(rows, "a", "b")
    assert p.recordings == 6 and p.note is None
    assert p.wer_difference == pytest.approx((9 - 23) / 120)
    assert p.p_value == pytest.approx(4 / 64)
    all_better = [row("a", f"rec{k}", 1, 0, 0, 20) for k in range(6)] + [row("b", f"rec{k}", 4, 0, 0, 20) for k in range(6)]
    assert paired(all_better, "a", "b").p_value == pytest.approx(2 / 64)  # the exact sign test


def test_holm_adjusts_known_p_values():
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == [] and holm([None]) == [None]


def test_comparisons_holm_adjust_over_every_pair():
    rows = ROWS + [dict(r, recipe="c", recipe_hash="cc") for r in ROWS if r["recipe"] == "b"]
    pairs = comparisons(rows, figures(rows))
    assert [(p.a, p.b) for p in pairs] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert [p.p_holm for p in pairs] == pytest.approx(holm([p.p_value for p in pairs]))
    ab = pairs[0]
    assert ab.p_value == pytest.approx(2 / 2 ** 8)  # b worse on all eight recordings: exact
    assert ab.p_holm == pytest.approx(min(1, 3 * ab.p_value))
    assert "p (Holm)" in to_markdown(rows, "r")


def _numpy_bootstrap(pairs, samples=20000):
    errors, lengths = np.array([e for e, _ in pairs]), np.array([n for _, n in pairs])
    idx = np.random.default_rng(1).integers(0, len(pairs), size=(samples, len(pairs)))
    stats = errors[idx].sum(axis=1) / lengths[idx].sum(axis=1)
    return np.percentile(stats, 2.5), np.percentile(stats, 97.5)


def test_intervals_from_the_minimum_on_are_the_usual_bootstrap_and_deterministic():
    rows = [row("a", f"rec{k}", k % 4, k % 3, 0, 15 + k) for k in range(12)]
    [f] = figures(rows)
    low, high = _numpy_bootstrap([((k % 4) + (k % 3), 15 + k) for k in range(12)])
    assert f.wer_ci_note is None and f.wer_ci[0] < f.wer < f.wer_ci[1]
    assert f.wer_ci == pytest.approx((low, high), abs=0.01)  # a plain percentile bootstrap, within resampling noise
    assert figures(rows)[0].wer_ci == f.wer_ci  # seeded
    assert paired(ROWS, "a", "b") == paired(ROWS, "a", "b")


# --- recipe versions: (name, hash) ---------------------------------------------------------------------------


def test_a_recipe_edited_between_runs_is_two_versions():
    old = [dict(r, recipe_hash="1111111aaaa") for r in ROWS if r["recipe"] == "a"]
    new = [dict(r, recipe_hash="2222222bbbb", run_id="r2") for r in ROWS if r["recipe"] == "b"]
    new = [dict(r, recipe="a") for r in new]
    rows = old + new + [r for r in ROWS if r["recipe"] == "b"]
    figs = figures(rows)
    assert [f.label for f in figs] == ["a@1111111", "a@2222222", "b"]
    assert figs[0].wer == pytest.approx(figures(ROWS)[0].wer) and figs[1].wer == pytest.approx(figures(ROWS)[1].wer)
    assert figs[0].recordings == 8  # not 16: the versions are not averaged together
    p = paired(rows, "a@1111111", "a@2222222")
    assert p.recordings == 8 and p.wer_difference < 0
    md = to_markdown(rows, "r")
    assert "a@1111111" in md and "a@2222222" in md
    assert "a@1111111" in to_html(rows, "r")


# --- CSV and references: untrusted rows ------------------------------------------------------------------------


@pytest.mark.parametrize("evil", ["=HYPERLINK(1)", "\t=1+1", "\r=1+1", "+1", "-1+1", "@SUM(1)"])
def test_csv_guards_every_string_cell(evil):
    r = row(evil, evil, 0, 0, 0, 2, text=evil, error=evil)
    r["recording"]["path"] = evil
    r["recipe_hash"] = evil
    [record] = list(csv.DictReader(io.StringIO(to_csv([r]))))
    for column in ("recipe", "recipe_hash", "recording", "path", "error", "text"):
        assert record[column] == "'" + evil, column
    assert record["wer"] == "0.0" and record["deletions"] == "0"  # numbers stay numbers


def _with_reference(path) -> list[dict]:
    r = row("a", "rec", 0, 0, 0, 2, text="hello there")
    r["metrics"]["reference"] = str(path)
    return [r]


def test_report_reads_references_only_from_the_run_folder_or_allowed_paths(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret words\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "link.txt").symlink_to(secret)
    for ref in (secret, run_dir / "link.txt", run_dir / ".." / "secret.txt"):
        [page] = write_reports(_with_reference(ref), "r", run_dir, ["html"])
        text = page.read_text()
        assert "top secret" not in text and "outside the run folder" in text
    for allowed in ([secret], [tmp_path]):  # a file or a folder named on the command line
        [page] = write_reports(_with_reference(secret), "r", run_dir, ["html"], references=allowed)
        assert "top secret" in page.read_text()
    inside = run_dir / "ref.txt"
    inside.write_text("hello world\n")
    [page] = write_reports(_with_reference(inside), "r", run_dir, ["html"])
    assert "<th>reference</th>" in page.read_text() and "outside the run folder" not in page.read_text()
    other_out = tmp_path / "elsewhere"
    [page] = write_reports(_with_reference(inside), "r", other_out, ["html"], run_dir=run_dir)
    assert "<th>reference</th>" in page.read_text()
    assert "outside the run folder" in to_html(_with_reference(inside), "r")  # nothing allowed: nothing read


def test_cli_report_reads_a_reference_only_when_given(tmp_path):
    from typer.testing import CliRunner

    from workbench.cli import app

    secret = tmp_path / "secret.txt"
    secret.write_text("top secret words\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    results = run_dir / "results.jsonl"
    results.write_text(json.dumps(_with_reference(secret)[0]) + "\n")
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(results), "--format", "html"])
    assert result.exit_code == 0, result.output
    assert "top secret" not in (run_dir / "report.html").read_text()
    result = runner.invoke(app, ["report", str(results), "--format", "html", "--reference", str(secret)])
    assert result.exit_code == 0, result.output
    assert "top secret" in (run_dir / "report.html").read_text()
