"""Reports: the same corpus figures in HTML, Markdown, JSON and CSV; untrusted text stays text."""

from __future__ import annotations

import copy
import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from workbench.errors import BadInputError
from workbench.report import figures, paired, to_csv, to_html, to_json, to_markdown, write_reports

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
        assert page.locator("svg.chart").count() >= 4
        assert page.locator("svg.chart rect").count() >= 4
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
