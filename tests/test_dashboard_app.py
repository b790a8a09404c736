"""Page logic of the dashboard, driven with Streamlit's AppTest (the real app script, pages, store and runner).

The recipes here run the wiring FAKE pipeline (tests/fake_pipeline.py), so these tests are fast and check what
the pages do with results — uploads, errors, caching, the store, escaping — not any model; the real models
run in tests/test_dashboard_integration.py and the browser test.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import PYANNOTE_STM, PYANNOTE_WAV
from fake_pipeline import BEHAVIOUR, EVENTS, register
from streamlit.testing.v1 import AppTest

from workbench.dashboard import APP
from workbench.references import load_reference
from workbench.store import ResultStore

EVIL = "<script>alert(1)</script> ![x](http://evil.example/p.png) <img src=x onerror=alert(2)>"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Fake recipes in their own folder, a fresh store and output folder, caches cleared."""
    from workbench.dashboard.resources import pipeline_pool, recipe_choices

    register(monkeypatch)
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "fake-exact-copy.toml").write_text('pipeline = "test-fake"\n[model]\nbackend = "fake"\nlabel = "fake-exact"\n')
    for name in ("fake-exact", "fake-half", "fake-broken", "fake-evil"):
        (recipes / f"{name}.toml").write_text(f'pipeline = "test-fake"\ndescription = "wiring fake {name}"\n'
                                              f'[model]\nbackend = "fake"\nlabel = "{name}"\n')
    ref = load_reference(PYANNOTE_STM).text
    BEHAVIOUR.update({"fake-exact": {"text": ref}, "fake-half": {"text": " ".join(ref.split()[:40])},
                      "fake-broken": {"load": RuntimeError("weights corrupt")},
                      "fake-evil": {"text": EVIL, "formatted": "Speaker 1: " + EVIL, "summary": "Summary: " + EVIL}})
    monkeypatch.setenv("WORKBENCH_RECIPES", str(recipes))
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "store.sqlite"))
    monkeypatch.setenv("WORKBENCH_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("WORKBENCH_MAX_UPLOAD_MB", "5")
    monkeypatch.chdir(tmp_path)
    pipeline_pool.clear()
    recipe_choices.clear()
    yield tmp_path
    pipeline_pool.clear()


def app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception
    return at


def upload(at: AppTest, audio=PYANNOTE_WAV, reference=PYANNOTE_STM, audio_bytes: bytes | None = None) -> None:
    at.file_uploader(key="upload").set_value((audio.name, audio_bytes if audio_bytes is not None else audio.read_bytes(), "audio/wav"))
    if reference is not None:
        at.file_uploader(key="reference").set_value((reference.name, reference.read_bytes(), "text/plain"))


def run(at: AppTest, recipes: list[str]) -> AppTest:
    at.multiselect(key="recipes").set_value(recipes)
    at.button(key="run").click().run()
    assert not at.exception, at.exception
    return at


def text(markdown: str) -> str:
    """Markdown as the reader sees it (the pages backslash-escape untrusted text)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def html_text(at: AppTest) -> str:
    return "\n".join(h.value for h in at.get("html"))


def stored(env) -> list[dict]:
    with ResultStore(env / "store.sqlite") as store:
        return store.rows()


def test_compare_page_offers_available_recipes_and_explains_the_others(env):
    at = app()
    options = at.multiselect(key="recipes").options
    assert {"fake-exact", "fake-half", "cascade-fast", "whisper-raw"} <= set(options)
    assert "audio-llm-openai" not in options  # needs an API key here
    unavailable = text(" ".join(m.value for e in at.expander for m in e.markdown))
    assert "audio-llm-openai" in unavailable and "To make it available" in unavailable
    assert "up to 5 MB" in at.file_uploader(key="upload").label


def test_run_shows_metrics_errors_and_keeps_models_loaded(env):
    at = app()
    upload(at)
    run(at, ["fake-exact", "fake-half", "fake-broken"])
    rows = stored(env)
    assert [r["recipe"] for r in rows] == ["fake-exact", "fake-half", "fake-broken"]
    run_id = rows[0]["run_id"]
    # the table: every recipe, the best WER marked (the exact one)
    page = html_text(at)
    assert "wb-metrics" in page and all(n in page for n in ("fake-exact", "fake-half", "fake-broken"))
    assert '<td class="best"><strong>0.0%</strong></td>' in page
    # the verdict above the table: the best recipe per axis, the one that did not run named
    assert page.index("data-testid=\"wb-verdict\"") < page.index("data-testid=\"wb-metrics\"")
    assert "Accuracy: fake-exact is most accurate" in page and "Did not run (in no verdict): fake-broken." in page
    # the recipe whose models failed to load is a "did not run" message, the others' results still show
    assert not at.error
    [error] = [text(w.value) for w in at.warning if "fake-broken" in text(w.value)]
    assert "did not run" in error and "weights corrupt" in error and "load" in error
    [status] = at.status
    assert status.label == "Finished: 2 of 3 recipe(s) ran, 1 failed or did not run"
    # live progress: each recipe's line lists its stages with their times (models loaded: load first)
    progress = [text(m.value) for m in status.markdown]
    assert any(p.startswith("**fake-exact** load") and "asr" in p and "✓" in p for p in progress), progress
    # what the run kept: uploads, results.jsonl, summary.md, the store (tag dashboard)
    folder = env / "out" / run_id
    assert (folder / "input" / "sample.wav").is_file() and (folder / "input" / "sample.stm").is_file()
    assert len((folder / "results.jsonl").read_text().splitlines()) == 3 and (folder / "summary.md").is_file()
    with ResultStore(env / "store.sqlite") as store:
        assert store.runs()[0]["tags"] == ["dashboard"]
    loads = [e for e in EVENTS if e[0] == "load"]
    # a second comparison with the same recipes: no model is loaded again (the broken one is retried)
    run(at, ["fake-exact", "fake-half", "fake-broken"])
    assert [e for e in EVENTS if e[0] == "load"][len(loads):] == [("load", "fake-broken")]
    second = [r for r in stored(env) if r["run_id"] != run_id]
    assert len(second) == 3
    assert all(r["stage_details"]["load"]["reused"] for r in second if r["recipe"] != "fake-broken")
    assert "(reused)" in html_text(at)


def test_a_bad_upload_is_a_message_and_the_previous_results_stay(env):
    at = app()
    upload(at)
    run(at, ["fake-exact"])
    before = stored(env)
    runs_before = sorted(p.name for p in (env / "out").iterdir())
    upload(at, audio=PYANNOTE_WAV.with_name("notes.wav"), audio_bytes=b"this is not audio", reference=None)
    run(at, ["fake-exact"])
    [error] = [text(e.value) for e in at.error]
    assert error.startswith("Nothing was run") and "notes.wav" in error
    assert stored(env) == before and sorted(p.name for p in (env / "out").iterdir()) == runs_before
    assert "fake-exact" in html_text(at)  # the earlier comparison is still shown


def test_a_malformed_reference_is_a_message_naming_the_line(env, tmp_path):
    bad = tmp_path / "bad.stm"
    bad.write_text("sample 1 A 0.0 not-a-time hello\n")
    at = app()
    upload(at, reference=bad)
    run(at, ["fake-exact"])
    [error] = [text(e.value) for e in at.error]
    assert "bad.stm" in error and ":1" in error
    assert stored(env) == []


def test_run_without_an_upload_asks_for_one(env):
    at = app()
    run(at, ["fake-exact"])
    assert "Upload a recording first" in at.error[0].value
    assert stored(env) == []


def test_model_output_is_escaped_everywhere(env):
    at = app()
    upload(at, reference=None)  # no reference: the transcript is shown as it came, not normalised
    run(at, ["fake-evil", "fake-exact"])
    page = html_text(at)
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;" in page
    # the formatted output and the summary are shown side by side, escaped
    assert "Speaker 1: &lt;script&gt;" in page and "Summary: &lt;script&gt;" in page
    markdown = " ".join(m.value for m in at.markdown)
    assert "](http" not in markdown  # no live link or image from model output
    from workbench.dashboard.views import report_data

    rows = stored(env)
    report = report_data(rows, rows[0]["run_id"], "html")
    assert "<script>alert" not in report and "&lt;script&gt;" in report


def test_exports_hold_the_run(env):
    from workbench.dashboard.views import EXPORTS, report_data

    at = app()
    upload(at)
    run(at, ["fake-exact", "fake-half"])
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == [f"Report ({label})" for _, label, _ in EXPORTS]
    rows = stored(env)
    run_id = rows[0]["run_id"]
    assert "fake-half" in report_data(rows, run_id, "html") and "Report " + run_id in report_data(rows, run_id, "html")
    assert "<th>reference</th>" in report_data(rows, run_id, "html")  # the uploaded reference lies in the dashboard's folder
    assert json.loads(report_data(rows, run_id, "json"))["run_id"] == run_id
    assert report_data(rows, run_id, "csv").count("\n") >= 3 and "fake-exact" in report_data(rows, run_id, "md")


def test_runs_page_filters_and_opens_a_run_in_the_compare_view(env):
    at = app()
    upload(at)
    run(at, ["fake-exact"])
    run(at, ["fake-half"])
    with ResultStore(env / "store.sqlite") as store:  # a batch run, tagged
        batch = [dict(r, run_id="batch-1", tags=["interviews"]) for r in store.rows()]
        store.add_run("batch-1", command="workbench batch data/", tags=["nightly"])
        store.add_many(batch)
    at.switch_page("page_scripts/runs.py").run()
    assert not at.exception
    assert "3 run(s), 4 result(s) match" in " ".join(c.value for c in at.caption)
    at.multiselect(key="runs-recipes").set_value(["fake-half"]).run()
    assert "2 run(s), 2 result(s) match" in " ".join(c.value for c in at.caption)
    at.multiselect(key="runs-recipes").set_value([]).run()
    at.multiselect(key="runs-tags").set_value(["interviews"]).run()
    assert "1 run(s), 2 result(s) match" in " ".join(c.value for c in at.caption)
    assert at.selectbox(key="runs-run").options == ["batch-1"]
    assert "wb-metrics" in html_text(at)  # corpus table over the selection
    at.button(key="runs-open").click().run()
    assert not at.exception
    assert at.title[0].value.startswith("Compare")
    page = html_text(at)
    assert "fake-exact" in page and "fake-half" in page
    assert any("batch-1" in text(m.value) for m in at.markdown)


def test_runs_page_with_an_empty_store_says_where_runs_come_from(env):
    at = app()
    at.switch_page("page_scripts/runs.py").run()
    assert not at.exception
    assert "No runs yet" in at.info[0].value


def test_a_reloaded_page_shows_the_run_named_in_the_address(env):
    at = app()
    upload(at)
    run(at, ["fake-exact"])
    run_id = stored(env)[0]["run_id"]
    assert at.query_params["run"] == [run_id] or at.query_params["run"] == run_id
    fresh = AppTest.from_file(str(APP), default_timeout=60)
    fresh.query_params["run"] = run_id
    fresh.run()
    assert not fresh.exception and "fake-exact" in html_text(fresh)


def test_the_same_recipe_under_two_names_runs_once_and_says_so(env):
    at = app()
    upload(at)
    run(at, ["fake-exact", "fake-exact-copy", "fake-half"])
    assert [r["recipe"] for r in stored(env)] == ["fake-exact", "fake-half"]
    assert "fake-exact-copy is the same recipe as fake-exact" in text(at.info[0].value)


def test_a_run_cut_short_is_announced_and_what_it_finished_is_shown(env):
    at = app()
    upload(at)
    run(at, ["fake-exact"])
    run_id = stored(env)[0]["run_id"]
    fresh = AppTest.from_file(str(APP), default_timeout=60)
    fresh.session_state["wb_running"] = run_id  # as a rerun during a comparison leaves it
    fresh.run()
    assert not fresh.exception
    assert "was cut short" in fresh.warning[0].value and "fake-exact" in html_text(fresh)
    fresh.run()
    assert not fresh.warning  # said once
