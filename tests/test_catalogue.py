"""The model catalogue: sourced facts, user rows, filters, `workbench models` (table, --json), new-recipe, and the
dashboard's Models page."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from workbench.catalogue import FACTS, PRECISIONS, load_catalogue, select, write_recipe
from workbench.cli import app
from workbench.errors import BadInputError
from workbench.recipes import load_recipe_file

runner = CliRunner()

#: the models issue 14 names: each has a row
NAMED = ("qwen2-audio-7b", "qwen2-audio-7b-instruct", "qwen2.5-omni-3b", "qwen2.5-omni-7b",
         "qwen3-omni-30b-a3b-instruct", "voxtral-mini-3b", "voxtral-small-24b", "gemma-3n-e2b", "gemma-3n-e4b",
         "phi-4-multimodal", "audio-flamingo-3", "granite-speech-3.3-2b", "granite-speech-3.3-8b",
         "ultravox-v0.5-llama-3.1-8b", "kimi-audio-7b-instruct", "minicpm-o-2.6", "step-audio", "salmonn",
         "gpt-4o-audio-preview", "gpt-4o-transcribe", "gemini-2.5-flash", "gemini-2.5-pro",
         "voxtral-mini-transcribe-api")

USER_ROWS = '''
[model."tiny-local"]
name = "Tiny local model"
family = "Test"
open_weights = true
runs = "server"
hub_id = "my-org/tiny-local"
base_url = "http://127.0.0.1:9/v1"
parameters_b = 4
sources.parameters_b = { url = "https://example.org/tiny", date = "2026-12-01" }

[model."huge-local"]
name = "Huge local model"
family = "Test"
open_weights = true
runs = "transformers"
transformers_family = "qwen2-audio"
hub_id = "my-org/huge-local"
parameters_b = 70
memory_bf16_gb = 150
sources.parameters_b = { url = "https://example.org/huge", date = "2026-12-01" }
sources.memory_bf16_gb = { url = "https://example.org/huge#memory", date = "2026-12-01" }

[model."gemini-2.5-pro"]
name = "Gemini 2.5 Pro (my row)"
family = "Gemini"
open_weights = false
runs = "api"
api_model = "gemini-2.5-pro"
base_url = "https://generativelanguage.googleapis.com/v1beta/openai/"
'''


@pytest.fixture
def user_catalogue(tmp_path, monkeypatch):
    path = tmp_path / "my-models.toml"
    path.write_text(USER_ROWS)
    monkeypatch.setenv("WORKBENCH_MODELS", str(path))
    monkeypatch.setenv("WORKBENCH_RECIPES", str(tmp_path / "no-recipes"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return path


def test_shipped_catalogue_has_every_named_model_and_a_source_and_date_for_each_fact():
    catalogue = load_catalogue()
    ids = [r.id for r in catalogue.rows]
    assert set(NAMED) <= set(ids) and len(ids) == len(set(ids))
    for row in catalogue.rows:
        for fact in FACTS:
            if getattr(row, fact) is None:
                assert fact not in row.sources, (row.id, fact)
                continue
            source = row.sources[fact]
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", source.date), (row.id, fact)
            assert source.url.startswith("https://") or source.url == "computed", (row.id, fact)
        for name, source in row.sources.items():  # every source, facts or not (runs, server, api_model)
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", source.date), (row.id, name)
            assert source.url.startswith("https://") or source.url == "computed", (row.id, name)
        if row.runs in ("transformers", "server"):
            assert row.hub_id, row.id
        if row.runs == "api":
            assert row.api_model and row.base_url.startswith("https://"), row.id


def test_memory_is_computed_from_parameters_unless_documented(user_catalogue):
    rows = {r.id: r for r in load_catalogue().rows}
    tiny = rows["tiny-local"]
    assert (tiny.memory_bf16_gb, tiny.memory_int8_gb, tiny.memory_int4_gb) == (8.0, 4.0, 2.0)
    assert tiny.sources["memory_int4_gb"].url == "computed" and "4 B parameters" in tiny.sources["memory_int4_gb"].note
    huge = rows["huge-local"]
    assert huge.memory_bf16_gb == 150 and not huge.computed("memory_bf16_gb") and huge.computed("memory_int8_gb")
    # a user row replaces the shipped row of the same id, whole; the other shipped rows stay
    assert rows["gemini-2.5-pro"].name == "Gemini 2.5 Pro (my row)" and rows["gemini-2.5-pro"].max_audio_s is None
    assert "qwen2-audio-7b-instruct" in rows


def test_filters_by_memory_precision_and_how_it_runs(user_catalogue):
    rows = load_catalogue().rows
    fits = {r.id for r in select(rows, fits_gb=10)}
    assert "tiny-local" in fits and "huge-local" not in fits
    assert "gemini-2.5-flash" not in fits  # no known memory figure: not claimed to fit
    assert "huge-local" not in {r.id for r in select(rows, fits_gb=30, precision="int4")}  # 35 GB at int4
    assert "huge-local" in {r.id for r in select(rows, fits_gb=40, precision="int4")}
    assert "huge-local" not in {r.id for r in select(rows, fits_gb=40, precision="bf16")}  # 150 GB documented
    assert {r.runs for r in select(rows, runs="api")} == {"api"}
    served = {r.id for r in select(rows, runs="server")}
    assert served >= {"tiny-local", "minicpm-o-2.6", "qwen2-audio-7b-instruct"} and "qwen2-audio-7b" not in served
    assert all("transformers" in r.ways for r in select(rows, runs="transformers"))
    assert select(rows, runs="here") == []  # no recipe for any of them here
    with pytest.raises(BadInputError, match="precision"):
        select(rows, precision="fp8")
    with pytest.raises(BadInputError, match="--runs"):
        select(rows, runs="everywhere")


def test_runs_here_means_an_available_recipe_names_the_model(user_catalogue, tmp_path, monkeypatch):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "tiny.toml").write_text('pipeline = "audio-llm"\n[model]\nbackend = "openai-compatible"\n'
                                       'base_url = "http://127.0.0.1:9/v1"\nmodel = "my-org/tiny-local"\n')
    monkeypatch.setenv("WORKBENCH_RECIPES", str(recipes))
    here = select(load_catalogue().rows, runs="here")
    assert [r.id for r in here] == ["tiny-local"]
    result = runner.invoke(app, ["models", "--runs", "here", "--json"])
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    assert json.loads(line)["recipes_here"] == ["tiny"]


def test_models_json_is_one_object_per_line(user_catalogue):
    result = runner.invoke(app, ["models", "--json", "--fits", "10", "--precision", "int8"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and all(r["memory_int8_gb"] <= 10 for r in rows)
    tiny = next(r for r in rows if r["id"] == "tiny-local")
    assert tiny["licence"] is None and tiny["sources"]["parameters_b"]["url"] == "https://example.org/tiny"


def test_models_table_shows_every_id_whole_and_missing_facts_as_dashes(user_catalogue):
    result = runner.invoke(app, ["models"])  # piped: one block per model
    assert result.exit_code == 0, result.output
    for model_id in NAMED:
        assert re.search(rf"^{re.escape(model_id)}\b", result.output, re.M), model_id
    assert "licence: —" in result.output and "bf16 GB: ≈8" in result.output
    assert f"of {len(load_catalogue().rows)} models" in result.output
    fits = runner.invoke(app, ["models", "--fits", "10"])
    assert "without a known bf16 memory figure left out" in " ".join(fits.output.split())
    assert set(PRECISIONS) == {"bf16", "int8", "int4"}


def test_new_recipe_writes_a_recipe_that_loads_and_never_overwrites(user_catalogue, tmp_path):
    result = runner.invoke(app, ["models", "new-recipe", "gpt-4o-transcribe"])
    assert result.exit_code == 0, result.output
    written = tmp_path / "pipelines" / "audio-llm-gpt-4o-transcribe.toml"
    recipe = load_recipe_file(written)
    options = recipe.stage("model").options
    assert recipe.name == "audio-llm-gpt-4o-transcribe" and recipe.pipeline == "audio-llm"
    assert (options.model, options.endpoint, options.price) == ("gpt-4o-transcribe", "transcriptions",
                                                                "openai-gpt-4o-transcribe")
    before = written.read_text()
    again = runner.invoke(app, ["models", "new-recipe", "gpt-4o-transcribe"])
    assert again.exit_code == 2 and "already exists" in again.output
    assert written.read_text() == before
    # a transformers row: the hub id; a server row: base_url and model; no price row → no price
    local = load_recipe_file(write_recipe(load_catalogue().get("Qwen/Qwen2-Audio-7B-Instruct"), tmp_path / "q.toml"))
    assert (local.stage("model").backend, local.stage("model").options.model) == ("transformers",
                                                                                  "Qwen/Qwen2-Audio-7B-Instruct")
    served = load_recipe_file(write_recipe(load_catalogue().get("tiny-local"), tmp_path / "t.toml"))
    assert served.stage("model").options.base_url == "http://127.0.0.1:9/v1"
    # a model this tool's transformers arm does not run, but vLLM serves: a server recipe for its hub id
    ultravox = load_recipe_file(write_recipe(load_catalogue().get("ultravox-v0.5-llama-3.1-8b"), tmp_path / "u.toml"))
    assert (ultravox.stage("model").options.base_url, ultravox.stage("model").options.model) == (
        "http://127.0.0.1:8000/v1", "fixie-ai/ultravox-v0_5-llama-3_1-8b")
    # a family the arm runs since issue 14 (Phi-4-multimodal): a transformers recipe
    phi = load_recipe_file(write_recipe(load_catalogue().get("phi-4-multimodal"), tmp_path / "phi.toml"))
    assert (phi.stage("model").backend, phi.stage("model").options.model) == (
        "transformers", "microsoft/Phi-4-multimodal-instruct")
    # --via picks another way the row runs; a way it does not run is refused
    via = runner.invoke(app, ["models", "new-recipe", "qwen2-audio-7b-instruct", "--via", "server", "--out", "v.toml"])
    assert via.exit_code == 0, via.output
    assert load_recipe_file(tmp_path / "v.toml").stage("model").backend == "openai-compatible"
    refused = runner.invoke(app, ["models", "new-recipe", "qwen2-audio-7b", "--via", "api", "--out", "w.toml"])
    assert refused.exit_code == 2 and "does not run via api" in refused.output and not (tmp_path / "w.toml").exists()
    gemini = load_recipe_file(write_recipe(load_catalogue().get("gemini-2.5-flash"), tmp_path / "g.toml"))
    assert gemini.stage("model").options.price is None and gemini.stage("model").options.api_key_env == "GEMINI_API_KEY"


def test_new_recipe_refuses_a_model_that_does_not_run_with_the_tool(user_catalogue, tmp_path):
    result = runner.invoke(app, ["models", "new-recipe", "step-audio"])
    assert result.exit_code == 2 and "does not run with this tool yet" in result.output
    assert not (tmp_path / "pipelines").exists()
    unknown = runner.invoke(app, ["models", "new-recipe", "no-such-model"])
    assert unknown.exit_code == 2 and "unknown model 'no-such-model'" in unknown.output


@pytest.mark.parametrize("row, field", [
    ('licence = "mit"\n', "licence has no entry in sources"),
    ('parameters_b = "seven"\nsources.parameters_b = { url = "https://x", date = "2026-12-01" }\n', "parameters_b"),
    ('sources.licence = { url = "https://x" }\nlicence = "mit"\n', "sources.licence.date"),
    ('colour = "blue"\n', "colour"),
])
def test_a_malformed_user_row_is_one_error_naming_file_row_and_field(tmp_path, monkeypatch, row, field):
    path = tmp_path / "bad.toml"
    path.write_text('[model."mine"]\nname = "Mine"\nfamily = "X"\nopen_weights = true\nruns = "not runnable yet"\n' + row)
    result = runner.invoke(app, ["models", "--catalogue", str(path)])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert str(path) in message.replace(" ", "") or "bad.toml" in message
    assert "model 'mine'" in message and field in message and "Traceback" not in result.output
    monkeypatch.setenv("WORKBENCH_MODELS", str(path))
    with pytest.raises(BadInputError, match="'mine'"):
        load_catalogue()


def test_models_page_renders_filters_and_escapes(user_catalogue, tmp_path):
    from streamlit.testing.v1 import AppTest

    from workbench.dashboard import APP

    evil = "<script>alert(1)</script> [x](http://evil.example)"
    user_catalogue.write_text(USER_ROWS.replace('"Tiny local model"', json.dumps(evil)))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page("page_scripts/models.py").run()
    assert not at.exception and not at.error
    total = len(load_catalogue().rows)
    captions = " ".join(c.value for c in at.caption)
    assert f"{total} of {total} models" in re.sub(r"\\(.)", r"\1", captions)
    [frame] = at.dataframe
    assert evil in list(frame.value["model"])  # a dataframe shows text as text
    assert "<script>" not in " ".join(m.value for m in at.markdown) + captions
    at.number_input(key="models-fits").set_value(10.0).run()
    assert set(at.dataframe[0].value["id"]) >= {"tiny-local"} and "huge-local" not in set(at.dataframe[0].value["id"])
    at.selectbox(key="models-runs").set_value("api").run()
    assert at.info and "No model matches" in at.info[0].value


def test_a_transformers_family_this_tool_lacks_runs_through_a_server_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "mine.toml"
    path.write_text('[model."future"]\nname = "Future"\nfamily = "X"\nopen_weights = true\nruns = "transformers"\n'
                    'transformers_family = "no-such-family"\nhub_id = "x/future"\n')
    monkeypatch.setenv("WORKBENCH_MODELS", str(path))
    rows = {r.id: r for r in load_catalogue().rows}
    assert rows["future"].runs == "not runnable yet" and "no no-such-family family" in rows["future"].notes
    assert rows["future"].ways == ()
    assert rows["qwen2-audio-7b-instruct"].ways == ("transformers", "server")  # a family this tool runs
    gemma = rows["gemma-3n-e4b"]  # a family the arm runs (issue 14); vLLM serves it too
    assert gemma.runs == "transformers" and gemma.ways == ("transformers", "server")
    assert rows["audio-flamingo-3"].runs == "transformers"  # its family name matches the registry's


def test_models_page_says_what_is_wrong_with_a_malformed_catalogue(user_catalogue):
    from streamlit.testing.v1 import AppTest

    from workbench.dashboard import APP

    user_catalogue.write_text('[model."mine"]\nname = "Mine"\n')
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page("page_scripts/models.py").run()
    assert not at.exception
    [error] = [re.sub(r"\\(.)", r"\1", e.value) for e in at.error]
    assert "my-models.toml" in error and "'mine'" in error and "family" in error and not at.dataframe
