"""Recipes that did not run are shown as such and enter no figure; cost is for this machine or says it is not;
a cascade's remote formatter calls are priced; recipe listings never cut names and come as JSON."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

import pytest

from workbench.cost import ApiPrice, HardwarePrice, load_prices
from workbench.datamodel import Recording, Segment, StageTiming, Transcript, Usage, Word
from workbench.metrics import char_errors, word_errors
from workbench.result import RunResult, Scores

PRICE = HardwarePrice("test-box", 3.6, "a test", "2026-01-01", "a box")
REFERENCE = "the quick brown fox jumps over the lazy dog"
UNAVAILABLE = "unavailable: [model] openai-compatible: no API key: $OPENAI_API_KEY is not set"


def result(recipe, recording="rec", *, text=REFERENCE, kind=None, error=None, price=PRICE, **kw) -> RunResult:
    rec = Recording(recording, f"/data/{recording}.wav", 60.0, 16000, 1, "pcm_s16le")
    failed = error is not None
    hyp = "" if failed else text
    scores = Scores(word_errors(REFERENCE, hyp), char_errors(REFERENCE, hyp), "whisper-english", "ref.stm", "stm")
    transcript = None if failed else Transcript((Segment(0.0, 3.0, text, None, (Word(0.0, 0.4, "the", 0.9),)),), "en")
    base = dict(run_id="run", recipe=recipe, recipe_hash=f"h-{recipe}", pipeline="cascade", recording=rec,
                transcript=transcript, timings=(StageTiming("load", 1.0, 1.0), StageTiming("asr", 6.0, 6.0)),
                scores=scores, error=error, error_stage="check" if kind == "unavailable" else "asr" if failed else None,
                error_kind=kind, price=price, hardware={"cpu": "x", "cpu_count": 2, "gpu": []})
    base.update(kw)
    return RunResult(**base)


def mixed() -> list[RunResult]:
    """good: ran on both recordings; api: did not run anywhere; half: ran on rec1 (with one error), not on rec2;
    broken: ran and failed on rec1 (all deletions, it counts)."""
    return [
        result("good", "rec1"), result("good", "rec2", text="the quick brown fox"),
        result("api", "rec1", error=UNAVAILABLE, kind="unavailable"),
        result("api", "rec2", error=UNAVAILABLE, kind="unavailable"),
        result("half", "rec1", text="the quick brown fox jumps over the dog"),
        result("half", "rec2", error="load failed: OSError: weights corrupt", kind="load-failed"),
        result("broken", "rec1", error="RuntimeError: boom", kind="failed"),
    ]


# --- summary.md and the terminal table ---------------------------------------------------------


def test_summary_keeps_recipes_that_did_not_run_out_of_every_figure():
    from workbench.summary import markdown, summarize, table

    by = {s.recipe: s for s in summarize(mixed())}
    assert by["api"].words is None and by["api"].recordings == 0 and by["api"].not_run == 2
    assert by["half"].words.rate == pytest.approx(1 / 9) and by["half"].recordings == 1 and by["half"].not_run == 1
    assert by["half"].rtfx == pytest.approx(10.0)
    assert by["broken"].words.rate == 1.0  # it ran and failed: all deletions
    headers, body = table(list(by.values()))
    wer = dict(zip(headers, body[0]))
    assert wer["api"] == "did not run" and wer["half"] == "11.1%" and wer["broken"] == "100.0%"
    assert ["did not run (recordings, in no figure)", "0", "2", "1", "0"] in body
    md = markdown(mixed())
    assert "## Did not run" in md and "**api** (2 of 2 recordings)" in md and "weights corrupt" in md
    wer_line = next(line for line in md.splitlines() if line.startswith("| WER |"))
    assert wer_line.count("100.0%") == 1  # only "broken", which ran


# --- reports (HTML, Markdown, JSON, CSV) ---------------------------------------------------------


def test_reports_show_did_not_run_and_keep_those_rows_out_of_figures_and_tests():
    from workbench.report import render

    rows = [r.to_json() for r in mixed()]
    doc = json.loads(render(rows, "run", "json"))
    names = {f["recipe"]: f for f in doc["recipes"]}
    assert "api" not in names and names["half"]["wer"] == pytest.approx(1 / 9)
    assert names["half"]["recordings"] == 1
    assert all("api" not in (p["a"], p["b"]) for p in doc["paired"])
    assert {"recipe": "api", "count": 2, "of": 2, "reasons": [UNAVAILABLE]} in doc["did_not_run"]
    md = render(rows, "run", "md")
    assert "api: did not run on 2 of 2 recordings" in md and "half: did not run on 1 of 2 recordings" in md
    html = render(rows, "run", "html")
    assert "id=did-not-run" in html and "<td>did not run</td>" in html
    table = list(csv.DictReader(io.StringIO(render(rows, "run", "csv"))))
    api = [r for r in table if r["recipe"] == "api"]
    assert api and all(r["wer"] == "" and r["error"].startswith("did not run: ") for r in api)
    assert [r["wer"] for r in table if r["recipe"] == "broken"] == ["1.0"]


def test_dashboard_table_shows_did_not_run_and_keeps_it_out():
    from workbench.dashboard.tables import metrics_table

    table = metrics_table([r.to_json() for r in mixed()])
    wer = dict(zip(table.recipes, table.row("WER").cells))
    assert wer["api"] == "did not run" and wer["half"] == "11.1%" and wer["broken"] == "100.0%"
    assert dict(zip(table.recipes, table.row("did not run (recordings, in no figure)").cells))["half"] == "1"


# --- cost -------------------------------------------------------------------------------------


def test_price_row_follows_the_machine():
    prices = load_prices()
    assert prices.for_machine({"cpu_count": 2, "gpu": [], "gpu_models": []}).id == "aws-c7i.large"
    assert prices.for_machine({"cpu_count": 4, "gpu": [], "gpu_models": []}).id == "aws-c7i.xlarge"
    l4 = prices.for_machine({"cpu_count": 4, "gpu": ["cuda:0"], "gpu_models": ["NVIDIA L4"]})
    assert l4.id == "aws-g6.xlarge" and l4.matched and not l4.note
    other = prices.for_machine({"cpu_count": 16, "gpu": ["cuda:0"], "gpu_models": ["NVIDIA L40S"]})
    assert other.id == prices.default_hardware and not other.matched
    assert other.note.startswith(f"priced as {prices.default_hardware}: no price row matches this machine")
    assert "NVIDIA L40S" in other.note


def test_unmatched_price_is_said_in_the_result_and_the_summary():
    from workbench.summary import markdown

    note = "priced as test-box: no price row matches this machine (16 CPUs, GPU: NVIDIA H200)"
    r = result("good", price=dataclasses.replace(PRICE, matched=False, note=note))
    cost = r.to_json()["cost"]
    assert cost["matched"] is False and cost["note"] == note
    assert note in markdown([r])
    assert result("good").to_json()["cost"]["matched"] is True


def test_prepare_prices_this_machine_without_hardware(monkeypatch):
    from workbench import environment
    from workbench.session import RunSettings, prepare

    monkeypatch.setattr(environment, "hardware", lambda: {"cpu_count": 4, "gpu": [], "gpu_models": []})
    assert prepare(["whisper-raw"]).price.id == "aws-c7i.xlarge"
    assert prepare(["whisper-raw"], RunSettings(hardware="aws-g5.xlarge")).price.id == "aws-g5.xlarge"


def test_cascade_with_a_priced_remote_formatter_pays_both_parts():
    api = ApiPrice("llm", "a test", "2026-01-01", usd_per_1m_input_tokens=10.0, usd_per_1m_output_tokens=30.0)
    timings = (StageTiming("load", 1.0, 1.0), StageTiming("asr", 6.0, 6.0), StageTiming("formatter", 30.0, 0.1))
    r = result("c", timings=timings, api_price=api, api_stage="formatter",
               usage=Usage(60.0, 3, input_tokens=100_000, output_tokens=10_000))
    hardware = 3.6 * 6.0 / 60.0  # $/h ÷ RTFx of the local stages (60 s of audio in 6 s)
    calls = (100_000 * 10 + 10_000 * 30) / 1e6 * 3600 / 60.0  # the formatter's usage × price, per audio hour
    assert r.cost_usd_per_audio_hour == pytest.approx(hardware + calls)
    cost = r.to_json()["cost"]
    assert cost["hardware"]["usd_per_audio_hour"] == pytest.approx(hardware)
    assert cost["api"]["usd_per_audio_hour"] == pytest.approx(calls) and cost["api"]["stage"] == "formatter"


def test_formatter_recipe_takes_a_price_row_and_the_runner_marks_its_stage():
    from workbench.recipes import parse_recipe
    from workbench.runner import api_price_id, api_price_stage

    recipe = parse_recipe({"pipeline": "cascade", "asr": {"backend": "faster-whisper", "model": "tiny.en"},
                           "formatter": {"backend": "openai-compatible", "base_url": "https://llm.example.com/v1",
                                         "price": "openai-gpt-4o-audio-preview"}}, name="c")
    assert api_price_id(recipe) == "openai-gpt-4o-audio-preview" and api_price_stage(recipe) == "formatter"


def test_gpu_models_come_from_nvidia_smi_when_present(monkeypatch, tmp_path):
    from workbench import environment

    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA L4'\necho 'NVIDIA L4'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert environment._gpu_models() == ["NVIDIA L4", "NVIDIA L4"]
    monkeypatch.setenv("PATH", str(tmp_path / "none"))
    assert environment._gpu_models() == []


# --- listings -----------------------------------------------------------------------------------


LONG = "a-recipe-with-a-very-long-name-that-must-never-be-cut"


@pytest.fixture
def long_named(tmp_path, monkeypatch):
    extra = tmp_path / "recipes"
    extra.mkdir()
    (extra / f"{LONG}.toml").write_text('pipeline = "cascade"\n[asr]\nbackend = "faster-whisper"\nmodel = "tiny.en"\n')
    monkeypatch.setenv("WORKBENCH_RECIPES", str(extra))
    return extra


def test_recipes_never_cuts_names_piped_at_a_narrow_width(long_named):
    from typer.testing import CliRunner

    from workbench.cli import app

    result = CliRunner().invoke(app, ["recipes"], env={"COLUMNS": "30"})
    assert result.exit_code == 0, result.output
    for name in (LONG, "audio-llm-qwen2-audio", "audio-llm-qwen2.5-omni-3b"):
        assert name in result.output.split()


def test_recipes_table_in_a_narrow_terminal_keeps_names_whole(long_named, monkeypatch):
    from rich.console import Console

    from workbench import cli

    for width in (60, 120):
        buf = io.StringIO()
        monkeypatch.setattr(cli, "out", Console(file=buf, force_terminal=True, width=width, color_system=None))
        cli.list_recipes(json_lines=False, verbose=0)
        text = buf.getvalue()
        assert LONG in text and "audio-llm-qwen2.5-omni-3b" in text and "…" not in text.replace("→", "")


def test_recipes_json_has_one_object_per_recipe(long_named):
    from typer.testing import CliRunner

    from workbench.cli import app

    result = CliRunner().invoke(app, ["recipes", "--json"], env={"COLUMNS": "30"})
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    by = {r["name"]: r for r in rows}
    keys = {"name", "path", "description", "pipeline", "stages", "available", "reason", "fix", "remote", "downloads"}
    assert all(keys <= set(r) for r in rows)
    assert by[LONG]["path"] == str(long_named / f"{LONG}.toml") and by[LONG]["available"] is True
    assert by[LONG]["stages"]["asr"]["model"] == "tiny.en"
    assert by["audio-llm-openai"]["remote"].startswith("sends audio to")


def test_a_remote_formatter_without_a_price_makes_the_cost_unknown():
    from workbench.recipes import check_recipe, parse_recipe
    from workbench.runner import hardware_price_for

    api = ApiPrice("llm", "a test", "2026-01-01", usd_per_1m_input_tokens=1.0, usd_per_1m_output_tokens=1.0)
    for url, unpriced, priced in (("https://llm.example.com/v1", None, PRICE), ("http://127.0.0.1:8000/v1", PRICE, PRICE)):
        recipe = parse_recipe({"pipeline": "cascade", "asr": {"backend": "faster-whisper", "model": "tiny.en"},
                               "formatter": {"backend": "openai-compatible", "base_url": url}}, name="c")
        status = check_recipe(recipe)
        assert hardware_price_for(recipe, status, PRICE, None) == unpriced
        assert hardware_price_for(recipe, status, PRICE, api) == priced


def test_probe_summary_does_not_count_a_recipe_that_did_not_run_as_writing_nothing():
    from workbench.hallucination.suite import probe_markdown, summarize_probes

    silent = [result("quiet", f"clip{k}", text="") for k in range(2)]
    absent = [result("api", f"clip{k}", error=UNAVAILABLE, kind="unavailable") for k in range(2)]
    by = {s.recipe: s for s in summarize_probes(silent + absent)}
    assert by["quiet"].share_with_output == 0.0 and by["quiet"].clips == 2
    assert by["api"].share_with_output is None and by["api"].not_run == 2 and by["api"].failed == 0
    md = probe_markdown(silent + absent, "probes")
    assert "| api | did not run |" in md and "0/2 (0%)" in md and "did not run (2 results, in no figure)" in md


def test_report_lists_its_files_as_json(tmp_path):
    from typer.testing import CliRunner

    from workbench.cli import app

    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in mixed()))
    result = CliRunner().invoke(app, ["report", str(path), "--format", "md,csv", "--json"], env={"COLUMNS": "20"})
    assert result.exit_code == 0, result.output
    listed = [json.loads(line) for line in result.stdout.splitlines()]
    assert listed == [{"run_id": "run", "format": f, "path": str(tmp_path / f"report.{f}")} for f in ("md", "csv")]
