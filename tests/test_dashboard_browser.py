"""End to end in a real browser: `workbench dashboard` started as a server process on 127.0.0.1, Debian's
chromium driven by Playwright, the real bundled models. Upload the pyannote sample with its STM, run two recipes,
read the metrics table, seek the player, download the HTML report and read it; open the run again from the Runs
page. Prints the first page load and the render of a finished run (targets: < 3 s and < 1 s; not asserted).
A screenshot of the compare page after the run is saved as reports/dashboard-compare.png (not committed).
The blind Judge panel runs on answers written by hand into the store (no model): names hidden until the vote, the
vote stored, the ranking updated."""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import MEASURED, PYANNOTE_STM, PYANNOTE_WAV, ROOT
from server_helpers import free_port, stop

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("WORKBENCH_REQUIRE_BROWSER") == "1"  # scripts/test.sh: the browser is there, so run
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run"]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None and not REQUIRED, reason="Debian's chromium is not installed (scripts/test.sh installs it)"),
]


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the dashboard exited with {proc.returncode}: {proc.stdout.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("the dashboard did not answer within 90 s")


def settled(page) -> None:
    """Wait until Streamlit is not rerunning the script (each upload starts a rerun): a click that lands during a
    rerun can be lost (seen once in CI: "Run comparison" clicked right after the uploads, nothing ran)."""
    from playwright.sync_api import expect

    page.wait_for_timeout(300)  # the running icon shows a moment after a rerun starts
    expect(page.locator("[data-testid=stStatusWidgetRunningIcon]")).to_have_count(0, timeout=60_000)


def pick_option(page, combobox: str, index: int) -> None:
    """Open a select box and pick its ``index``-th option; a rerun that lands in between closes the list, so
    settle first and try again (three times) when the options do not show."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(3):
        settled(page)
        page.get_by_role("combobox", name=combobox).click()
        try:
            page.get_by_role("option").nth(index).click(timeout=10_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError(f"the options of {combobox!r} never showed")


@pytest.fixture
def dashboard(tmp_path):
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYANNOTE_METRICS_ENABLED": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "dashboard", "--port", str(port), "--store",
                             str(tmp_path / "store.sqlite"), "--out", str(tmp_path / "out")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        stop(proc)


def test_upload_compare_two_recipes_and_download_the_report(dashboard, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    assert CHROMIUM, "chromium is required here (WORKBENCH_REQUIRE_BROWSER=1) but not installed"
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2600}, accept_downloads=True)
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")) else None)

        start = time.perf_counter()
        page.goto(dashboard)
        expect(page.get_by_role("button", name="Run comparison")).to_be_visible(timeout=60_000)
        first_load = time.perf_counter() - start

        inputs = page.locator("input[type=file]")
        inputs.nth(0).set_input_files(str(PYANNOTE_WAV))
        inputs.nth(1).set_input_files(str(PYANNOTE_STM))
        expect(page.get_by_text("sample.wav")).to_be_visible(timeout=30_000)
        expect(page.get_by_text("sample.stm")).to_be_visible(timeout=30_000)
        chips = page.locator("[data-testid=stMultiSelect] [data-tag]")
        expect(chips).to_have_count(2)  # the two default recipes
        assert sorted(chips.all_inner_texts()) == ["cascade-fast", "whisper-raw"]

        settled(page)
        page.get_by_role("button", name="Run comparison").click()
        expect(page.get_by_text("Running 2 recipe(s) on sample")).to_be_visible(timeout=30_000)  # live progress
        table = page.locator("[data-testid=wb-metrics]")
        expect(table).to_be_visible(timeout=600_000)
        text = table.inner_text()
        assert "cascade-fast" in text and "whisper-raw" in text
        wer = re.search(r"^WER\s+([\d.]+)%\s+([\d.]+)%", text, re.MULTILINE)
        assert wer, text
        assert all(0 <= float(v) < 60 for v in wer.groups())
        assert table.locator("td.best").count() >= 3
        assert page.locator("[data-testid=stException]").count() == 0
        run_id = re.search(r"[?&]run=([\w-]+)", page.url).group(1)

        # the timeline: click a segment of whisper-raw's lane, the player seeks to its start
        expect(page.get_by_text("Player at 0.00 s.")).to_be_visible(timeout=30_000)  # drawn after the charts
        marks = page.locator('[data-testid=stVegaLiteChart] [role=graphics-symbol][aria-label*="lane: whisper-raw"]')
        expect(marks.first).to_be_visible(timeout=30_000)
        segment = marks.nth(min(4, marks.count() - 1))
        start_s = float(re.search(r"start: ([\d.]+)", segment.get_attribute("aria-label")).group(1))
        assert start_s > 0
        segment.click()
        player = page.get_by_text(re.compile(r"Player at (?!0\.00)\d+\.\d\d s\."))
        expect(player).to_be_visible(timeout=30_000)
        at_s = float(re.search(r"([\d.]+) s\.", player.inner_text()).group(1))
        assert abs(at_s - start_s) < 0.5, (at_s, start_s)  # that segment (Whisper's segments may touch)
        page.wait_for_function(f"() => document.querySelector('audio') && document.querySelector('audio').currentTime >= {at_s - 0.05}",
                               timeout=30_000)
        # or pick one from the list
        pick_option(page, "Jump to a segment", 1)
        expect(page.get_by_text(re.compile(rf"Player at (?!{at_s:.2f})\d+\.\d\d s\."))).to_be_visible(timeout=30_000)

        shots = ROOT / "reports"
        shots.mkdir(exist_ok=True)
        page.screenshot(path=str(shots / "dashboard-compare.png"), full_page=True)

        with page.expect_download(timeout=60_000) as download:
            page.get_by_role("button", name="Report (HTML)").first.click()
        report = Path(download.value.path()).read_text(encoding="utf-8")
        assert download.value.suggested_filename == f"report-{run_id}.html"
        assert f"Report {run_id}" in report and "cascade-fast" in report and "whisper-raw" in report
        assert "new jersey" in report  # the transcripts against the reference
        assert "<script" not in report

        # the render of a finished run: the Runs page opens it in the compare view (median of 3)
        renders = []
        for _ in range(3):
            page.get_by_role("link", name="Runs").click()
            expect(page.get_by_role("button", name="Open in compare view")).to_be_visible(timeout=30_000)
            start = time.perf_counter()
            page.get_by_role("button", name="Open in compare view").click()
            expect(page.locator("[data-testid=wb-metrics]")).to_be_visible(timeout=30_000)
            expect(page.get_by_role("heading", name="Transcripts")).to_be_visible(timeout=30_000)
            expect(page.locator("[data-testid=stVegaLiteChart] svg").nth(2)).to_be_visible(timeout=30_000)
            renders.append(time.perf_counter() - start)
            assert "whisper-raw" in page.locator("[data-testid=wb-metrics]").inner_text()
        render = statistics.median(renders)

        # a page's own address (bookmark, reload) opens it inside the app: its navigation, its layout
        page.goto(dashboard + "runs")
        expect(page.get_by_role("button", name="Open in compare view")).to_be_visible(timeout=30_000)
        nav = page.get_by_role("navigation")
        assert [t.strip() for t in nav.get_by_role("link").all_inner_texts()] == ["Compare", "Runs", "Models"]
        browser.close()
    assert not outside, f"the dashboard reached outside 127.0.0.1: {outside}"
    line = (f"dashboard: first page load {first_load:.2f} s (target < 3 s); "
            f"render of a finished run {render:.2f} s, median of {', '.join(f'{r:.2f}' for r in renders)} (target < 1 s)")
    MEASURED.append(line)
    print("\n" + line)


def test_blind_judge_panel_hides_names_until_voted_stores_the_vote_and_updates_the_ranking(dashboard, tmp_path):
    """The Judge panel of the Compare page on a run with answers written by hand (no model runs): the names are
    hidden until the vote, the vote lands in the store, the ranking appears and changes with the next vote."""
    from playwright.sync_api import expect, sync_playwright
    from test_dashboard_judge import ANSWERS, NAMES, rows

    from workbench.store import ResultStore

    store_path = tmp_path / "store.sqlite"
    with ResultStore(store_path) as store:
        store.add_run("run-q", command="workbench ask call.wav --tasks call.toml")
        store.add_many(rows())

    def recipe_of(answer: str) -> str:
        return next(NAMES[i] for per in ANSWERS.values() for i, a in enumerate(per) if a == answer)

    def votes():
        with ResultStore(store_path) as store:
            return store.votes()

    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2600})
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")) else None)
        page.goto(dashboard + "?run=run-q")
        panel = page.locator(".st-key-judge-panel")
        expect(panel.get_by_role("heading", name="Judge answers blind")).to_be_visible(timeout=60_000)
        expect(panel.get_by_role("button", name="A is better")).to_be_visible(timeout=30_000)
        before = panel.inner_text()
        assert "Answer A" in before and "Answer B" in before
        assert not any(name in before for name in NAMES), before  # blind
        a = page.locator("[data-testid=wb-answer-a]").inner_text()
        b = page.locator("[data-testid=wb-answer-b]").inner_text()
        winner, loser = recipe_of(a), recipe_of(b)
        assert winner != loser and votes() == []
        expect(panel.get_by_text("No votes yet")).to_be_visible(timeout=30_000)

        panel.get_by_label("Your name (optional, stored with the vote)").fill("ann")
        panel.get_by_label("Your name (optional, stored with the vote)").press("Enter")
        panel.get_by_role("button", name="A is better").click()
        expect(panel.get_by_text(f"Answer A was {winner}, Answer B was {loser}")).to_be_visible(timeout=30_000)
        [vote] = votes()
        assert (vote.winner[0], vote.loser[0], vote.vote, vote.voter) == (winner, loser, "A", "ann")
        ranking = panel.locator("[data-testid=wb-ranking]")
        expect(ranking).to_be_visible(timeout=30_000)
        first = ranking.locator("tr").nth(1).inner_text()
        assert winner in first and "too few votes (n=1)" in first

        panel.get_by_role("button", name="Next pair").click()
        expect(panel.get_by_role("button", name="B is better")).to_be_visible(timeout=30_000)
        assert "Answer A was" not in panel.inner_text()  # the new pair's names are hidden again
        (a2, b2) = (page.locator("[data-testid=wb-answer-a]").inner_text(), page.locator("[data-testid=wb-answer-b]").inner_text())
        assert {a2, b2} != {a, b}  # the pair with fewer votes: another question
        panel.get_by_role("button", name="B is better").click()
        expect(panel.get_by_text("Answer A was")).to_be_visible(timeout=30_000)
        assert [v.vote for v in votes()] == ["A", "B"]
        # the ranking now counts both votes for each recipe
        expect(ranking.locator("tr").nth(1)).to_contain_text("too few votes (n=2)", timeout=30_000)
        assert page.locator("[data-testid=stException]").count() == 0
        browser.close()
    assert not outside, f"the dashboard reached outside 127.0.0.1: {outside}"
