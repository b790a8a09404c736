"""Defaults that surprise no one: a run that names no recipes stays on this machine and downloads nothing;
the hub is contacted only when asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.model_sources import hub_reachable
from workbench import recipes
from workbench.recipes import check_recipe, load_recipe, parse_recipe

HUB_ONLY = 'pipeline = "cascade"\n[asr]\nbackend = "faster-whisper"\nmodel = "{model}"\n'


@pytest.fixture
def no_network(monkeypatch):
    """Records every attempt to open a URL (and fails it)."""
    calls = []

    def urlopen(request, *a, **kw):
        calls.append(getattr(request, "full_url", request))
        raise OSError("no network in tests")

    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    hub_reachable.cache_clear()
    yield calls
    hub_reachable.cache_clear()


@pytest.fixture
def online(monkeypatch, no_network, tmp_path):
    """As on a connected laptop: no HF_HUB_OFFLINE, an empty hub cache, an API key exported."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("WORKBENCH_HUB_PROBE", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    return no_network


def test_default_recipes_leave_out_api_and_download_recipes(online):
    names, left_out = recipes.default_recipes()
    why = dict(left_out)
    assert "audio-llm-openai" in why and "sends audio to api.openai.com" in why["audio-llm-openai"]
    for name in ("audio-llm-qwen2-audio", "audio-llm-qwen2.5-omni-3b", "audio-llm-voxtral-mini"):
        assert name in why and name not in names
    assert "would download Qwen/Qwen2-Audio-7B-Instruct (~16.8 GB) on first use" in why["audio-llm-qwen2-audio"]
    assert {"cascade", "cascade-fast", "cascade-plain", "whisper-raw"} <= set(names)
    assert not set(names) & set(why)
    line = recipes.left_out_line(left_out)
    assert line.startswith("left out (name them with --recipes to run): ") and "audio-llm-openai (sends audio" in line
    assert online == []  # nothing was contacted to decide


def test_a_base_url_from_the_environment_counts_as_remote(online, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    status = check_recipe(load_recipe("audio-llm-openai"))
    assert status.ok and "OPENAI_BASE_URL" in status.remote and not status.local


@pytest.mark.parametrize("url, remote", [
    ("http://127.0.0.1:8000/v1", False), ("http://127.3.4.5/v1", False), ("http://localhost:8080/v1", False),
    ("http://[::1]:8000/v1", False), ("http://10.0.0.5:8000/v1", True), ("https://user:secret@api.example.com/v1", True),
])
def test_formatter_server_is_remote_unless_loopback(url, remote):
    recipe = parse_recipe({"pipeline": "cascade", "asr": {"backend": "faster-whisper", "model": "tiny.en"},
                           "formatter": {"backend": "openai-compatible", "base_url": url}}, name="f")
    status = check_recipe(recipe)
    assert bool(status.remote) is remote
    assert "secret" not in status.remote and "user" not in status.remote


def test_hub_model_not_cached_is_a_download_and_the_hub_is_not_contacted(online, tmp_path):
    recipe = parse_recipe({"pipeline": "cascade", "asr": {"backend": "faster-whisper", "model": "large-v3"}}, name="big")
    status = check_recipe(recipe)
    assert status.ok and status.downloads == "would download Systran/faster-whisper-large-v3 (~3.1 GB) on first use"
    assert online == []


def test_hub_probe_only_when_asked(online, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HUB_PROBE", "1")
    recipe = parse_recipe({"pipeline": "cascade", "asr": {"backend": "faster-whisper", "model": "large-v3"}}, name="big")
    status = check_recipe(recipe)
    assert len(online) == 1  # asked: one HEAD to the hub, which failed here
    assert not status.ok and "unreachable" in status.reason


def test_offline_hub_model_is_left_out_as_unavailable(monkeypatch, tmp_path, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    extra = tmp_path / "recipes"
    extra.mkdir()
    (extra / "big.toml").write_text(HUB_ONLY.format(model="large-v3"))
    monkeypatch.setenv("WORKBENCH_RECIPES", str(extra))
    names, left_out = recipes.default_recipes()
    assert "big" not in names and "not available here" in dict(left_out)["big"]
    assert no_network == []


def test_compare_without_recipes_says_what_it_left_out(online, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from workbench import cli

    seen = {}

    def fake_compare(names, *a, **kw):
        seen["names"] = names

    monkeypatch.setattr(cli, "_compare", fake_compare)
    result = CliRunner().invoke(cli.app, ["compare", str(tmp_path / "x.wav")], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "audio-llm-openai" not in seen["names"] and "whisper-raw" in seen["names"]
    assert "left out (name them with --recipes to run): " in result.output
    assert "audio-llm-openai (sends audio to api.openai.com)" in result.output


def test_named_recipes_run_even_when_remote(online, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from workbench import cli

    seen = {}
    monkeypatch.setattr(cli, "_compare", lambda names, *a, **kw: seen.setdefault("names", names))
    result = CliRunner().invoke(cli.app, ["compare", str(tmp_path / "x.wav"), "--recipes", "audio-llm-openai"])
    assert result.exit_code == 0 and seen["names"] == ["audio-llm-openai"] and "left out" not in result.output


def test_dashboard_preselects_only_recipes_that_run_here_without_a_server_or_download():
    from workbench.dashboard.compare import default_selection
    from workbench.dashboard.resources import RecipeChoice

    choices = [RecipeChoice("audio-llm-openai", "", True, left_out_because="sends audio to api.openai.com"),
               RecipeChoice("audio-llm-qwen2-audio", "", True, left_out_because="would download Qwen/… on first use"),
               RecipeChoice("mine", "", True), RecipeChoice("other", "", True), RecipeChoice("third", "", True)]
    assert default_selection(choices) == ["mine", "other"]
    assert default_selection(choices + [RecipeChoice("whisper-raw", "", True)]) == ["whisper-raw"]
