"""Recipes: shipped ones parse and can run here; hashes; clear errors; availability checks; lookup."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from workbench.backends.asr import ASR_BACKENDS
from workbench.backends.vad import VAD_BACKENDS
from workbench.errors import BadInputError, RecipeError, UnknownBackendError
from workbench.recipes import (
    Availability,
    Recipe,
    StageSpec,
    available_recipe_files,
    check_recipe,
    load_recipe,
    load_recipe_file,
    parse_recipe,
)
from workbench.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "pipelines").glob("*.toml"))

MINIMAL = """\
name = "mini"
description = "a test recipe"
pipeline = "cascade"

[vad]
backend = "silero"

[asr]
backend = "faster-whisper"
model = "tiny.en"
"""


def write(tmp_path: Path, text: str, name: str = "mini.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def with_asr_option(recipe: Recipe, **update) -> Recipe:
    asr = recipe.stage("asr")
    new = dataclasses.replace(asr, options=asr.options.model_copy(update=update))
    return dataclasses.replace(recipe, stages=tuple(new if s.stage == "asr" else s for s in recipe.stages))


# --- shipped recipes --------------------------------------------------------------------------


def test_recipes_are_shipped():
    assert {p.stem for p in SHIPPED} >= {"cascade", "cascade-fast", "whisper-raw"}


CASCADES = [p for p in SHIPPED if not p.stem.startswith("audio-llm")]
AUDIO_LLMS = [p for p in SHIPPED if p.stem.startswith("audio-llm")]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_recipe_parses_and_validates(path):
    recipe = load_recipe_file(path)
    assert recipe.name == path.stem  # file name and name key agree
    assert recipe.description
    assert recipe.path == str(path)
    assert len(recipe.hash) == 16
    if path in CASCADES:
        assert recipe.pipeline == "cascade"
        # the shipped cascades answer questions too (issue 13: the [answer] stage)
        assert [s.stage for s in recipe.stages] == ["vad", "asr", "diarization", "formatter", "answer"]
        assert recipe.stage("asr").backend == "faster-whisper"
    else:
        assert recipe.pipeline == "audio-llm"
        assert [s.stage for s in recipe.stages] == ["model"]


@pytest.mark.parametrize("path", CASCADES, ids=lambda p: p.stem)
def test_shipped_cascade_is_available_here(path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    availability = check_recipe(load_recipe_file(path))
    assert availability == Availability(True), availability


def test_audio_llm_recipes_are_shipped():
    assert {p.stem for p in AUDIO_LLMS} == {"audio-llm-qwen2-audio", "audio-llm-voxtral-mini",
                                            "audio-llm-qwen2.5-omni-3b", "audio-llm-openai",
                                            "audio-llm-qwen3-omni", "audio-llm-gemma3n", "audio-llm-phi4-multimodal",
                                            "audio-llm-audioflamingo3", "audio-llm-granite-speech"}


@pytest.mark.parametrize("path", [p for p in AUDIO_LLMS if "openai" not in p.stem], ids=lambda p: p.stem)
def test_audio_llm_recipes_say_how_to_get_their_weights(path, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    recipe = load_recipe_file(path)
    availability = check_recipe(recipe)
    model = recipe.stage("model").options.model
    assert not availability.ok
    assert model in availability.reason and "HF_HUB_OFFLINE" in availability.reason
    assert f"huggingface-cli download {model}" in availability.fix


def test_audio_llm_openai_recipe_says_which_key_to_set(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    availability = check_recipe(load_recipe_file(next(p for p in AUDIO_LLMS if "openai" in p.stem)))
    assert not availability.ok and "OPENAI_API_KEY" in availability.reason and "export OPENAI_API_KEY" in availability.fix
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert check_recipe(load_recipe_file(next(p for p in AUDIO_LLMS if "openai" in p.stem))).ok


def test_shipped_recipes_hash_differently():
    hashes = {load_recipe_file(p).hash for p in SHIPPED}
    assert len(hashes) == len(SHIPPED)


# --- hash and to_dict -------------------------------------------------------------------------


def test_hash_ignores_name_and_description(tmp_path):
    a = load_recipe_file(write(tmp_path, MINIMAL))
    b = load_recipe_file(
        write(tmp_path, MINIMAL.replace('"mini"', '"renamed"').replace("a test recipe", "other words"), "b.toml")
    )
    assert a.name != b.name and a.description != b.description
    assert a.hash == b.hash
    assert a.hash == load_recipe_file(write(tmp_path, MINIMAL, "again.toml")).hash  # stable


def test_hash_counts_defaults_written_out(tmp_path):
    a = load_recipe_file(write(tmp_path, MINIMAL))
    b = load_recipe_file(write(tmp_path, MINIMAL + "beam_size = 5\n", "b.toml"))  # 5 is the default
    assert a.hash == b.hash


def test_hash_changes_when_an_option_changes(tmp_path):
    a = load_recipe_file(write(tmp_path, MINIMAL))
    b = load_recipe_file(write(tmp_path, MINIMAL + "beam_size = 1\n", "b.toml"))
    c = load_recipe_file(write(tmp_path, MINIMAL.replace('backend = "silero"', 'backend = "none"'), "c.toml"))
    d = load_recipe_file(write(tmp_path, MINIMAL.replace("[vad]", "[vad]\nthreshold = 0.4"), "d.toml"))
    assert len({a.hash, b.hash, c.hash, d.hash}) == 4
    assert with_asr_option(a, model="base").hash != a.hash


def test_to_dict_fills_defaults(tmp_path):
    d = load_recipe_file(write(tmp_path, MINIMAL)).to_dict()
    assert d["pipeline"] == "cascade"
    assert set(d["stages"]) == {"vad", "asr"}
    asr = d["stages"]["asr"]
    assert asr["backend"] == "faster-whisper"
    assert asr["model"] == "tiny.en"
    assert asr["beam_size"] == 5
    assert asr["vad_gating"] is True
    assert asr["batch_size"] == 0
    assert asr["temperature"] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    vad = d["stages"]["vad"]
    assert vad["backend"] == "silero"
    assert vad["runtime"] == "onnx"
    assert vad["threshold"] == 0.5
    assert vad["min_silence_duration_ms"] == 2000
    assert "name" not in d and "description" not in d


def test_omitted_vad_stage_means_none(tmp_path):
    text = 'pipeline = "cascade"\n[asr]\nbackend = "faster-whisper"\n'
    recipe = load_recipe_file(write(tmp_path, text))
    assert recipe.stage("vad").backend == "none"
    assert recipe.name == "mini"  # no name key: the file's stem


# --- errors -----------------------------------------------------------------------------------


def test_recipe_error_is_bad_input():
    assert issubclass(RecipeError, BadInputError)
    assert issubclass(UnknownBackendError, RecipeError)


def recipe_error(tmp_path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(RecipeError) as info:
        load_recipe_file(path)
    message = str(info.value)
    assert str(path) in message  # every message names the file
    return message


def test_unknown_pipeline_lists_known(tmp_path):
    message = recipe_error(tmp_path, MINIMAL.replace('pipeline = "cascade"', 'pipeline = "cascada"'))
    assert "'cascada'" in message
    assert "cascade" in message.split("known", 1)[1]


def test_missing_pipeline_key(tmp_path):
    message = recipe_error(tmp_path, MINIMAL.replace('pipeline = "cascade"\n', ""))
    assert "pipeline" in message
    assert "cascade" in message


def test_pipeline_must_be_a_string(tmp_path):
    assert "pipeline" in recipe_error(tmp_path, MINIMAL.replace('pipeline = "cascade"', "pipeline = 3"))


def test_unknown_stage_table_lists_stages(tmp_path):
    message = recipe_error(tmp_path, MINIMAL + '\n[diarize]\nbackend = "pyannote"\n')
    assert "'diarize'" in message
    assert "vad" in message and "asr" in message


def test_unknown_vad_backend_lists_known(tmp_path):
    message = recipe_error(tmp_path, MINIMAL.replace('backend = "silero"', 'backend = "webrtc"'))
    assert "'webrtc'" in message
    assert "silero" in message and "none" in message
    assert "[vad]" in message


def test_unknown_asr_backend_lists_known(tmp_path):
    message = recipe_error(tmp_path, MINIMAL.replace('backend = "faster-whisper"', 'backend = "whisper.cpp"'))
    assert "'whisper.cpp'" in message
    assert "faster-whisper" in message
    assert "[asr]" in message


def test_missing_asr_table_says_so(tmp_path):
    message = recipe_error(tmp_path, 'pipeline = "cascade"\n[vad]\nbackend = "silero"\n')
    assert "[asr]" in message
    assert "faster-whisper" in message
    assert "'none'" not in message  # not a confusing "unknown backend 'none'"


def test_stage_without_backend_key(tmp_path):
    message = recipe_error(tmp_path, MINIMAL.replace('backend = "silero"\n', ""))
    assert "[vad]" in message and "backend" in message and "silero" in message


def test_stage_must_be_a_table(tmp_path):
    message = recipe_error(tmp_path, 'pipeline = "cascade"\nvad = "silero"\n[asr]\nbackend = "faster-whisper"\n')
    assert "[vad]" in message and "table" in message


def test_unknown_option_lists_valid_options(tmp_path):
    message = recipe_error(tmp_path, MINIMAL + "beam = 5\n")
    assert "unknown option 'beam'" in message
    assert "beam_size" in message
    assert "word_timestamps" in message


def test_unknown_vad_option_lists_valid_options(tmp_path):
    message = recipe_error(tmp_path, MINIMAL.replace("[vad]", "[vad]\nthreshhold = 0.3"))
    assert "'threshhold'" in message and "threshold" in message and "speech_pad_ms" in message


def test_wrong_option_type(tmp_path):
    message = recipe_error(tmp_path, MINIMAL + 'beam_size = "five"\n')
    assert "beam_size" in message
    assert "'five'" in message
    assert "integer" in message


def test_out_of_range_option(tmp_path):
    message = recipe_error(tmp_path, MINIMAL + "beam_size = 0\n")
    assert "beam_size" in message


def test_invalid_toml_names_the_file(tmp_path):
    message = recipe_error(tmp_path, 'pipeline = "cascade\n[asr\n')
    assert "TOML" in message


def test_missing_recipe_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(RecipeError, match="not found") as info:
        load_recipe_file(path)
    assert str(path) in str(info.value)
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(str(path))


def test_unknown_recipe_name_lists_known():
    with pytest.raises(RecipeError) as info:
        load_recipe("no-such-recipe")
    message = str(info.value)
    assert "'no-such-recipe'" in message
    for name in ("cascade", "cascade-fast", "whisper-raw"):
        assert name in message


def test_parse_recipe_without_path_names_the_recipe():
    with pytest.raises(RecipeError, match="^inline: "):
        parse_recipe({"pipeline": "nope"}, name="inline")


# --- registry ---------------------------------------------------------------------------------


def test_registry_get_unknown_lists_names():
    reg: Registry = Registry("widget")

    @reg.register("b-thing")
    class B:
        pass

    @reg.register("a-thing")
    class A:
        pass

    assert reg.get("a-thing") is A
    assert A.name == "a-thing"
    assert reg.names() == ["a-thing", "b-thing"]
    assert "a-thing" in reg and "c-thing" not in reg
    with pytest.raises(UnknownBackendError) as info:
        reg.get("c-thing")
    assert "widget" in str(info.value)
    assert "'c-thing'" in str(info.value)
    assert "a-thing, b-thing" in str(info.value)


def test_registering_a_name_twice_raises():
    reg: Registry = Registry("widget")

    @reg.register("x")
    class X:
        pass

    with pytest.raises(ValueError, match="twice"):

        @reg.register("x")
        class Y:
            pass

    assert reg.get("x") is X


def test_builtin_registries():
    assert {"none", "silero"} <= set(VAD_BACKENDS.names())
    assert "faster-whisper" in ASR_BACKENDS.names()


# --- availability -----------------------------------------------------------------------------


@pytest.fixture
def tiny(tmp_path) -> Recipe:
    return load_recipe_file(write(tmp_path, MINIMAL))


def test_missing_model_folder_is_unavailable(tiny):
    availability = check_recipe(with_asr_option(tiny, model="/nonexistent/folder"))
    assert availability.ok is False
    assert "/nonexistent/folder" in availability.reason
    assert "[asr]" in availability.reason
    assert availability.fix


def test_hub_model_offline_and_not_cached_is_unavailable(tiny, monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    empty_cache = tmp_path / "hf-cache"
    empty_cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(empty_cache))
    availability = check_recipe(with_asr_option(tiny, model="large-v3"))
    assert availability.ok is False
    assert "large-v3" in availability.reason
    assert "HF_HUB_OFFLINE" in availability.reason
    assert "download" in availability.fix
    assert "Systran/faster-whisper-large-v3" in availability.fix


def test_unknown_model_name_is_unavailable(tiny):
    availability = check_recipe(with_asr_option(tiny, model="huge-v9"))
    assert availability.ok is False
    assert "huge-v9" in availability.reason
    assert "large-v3" in availability.fix  # lists the size names


def test_folder_without_model_bin_is_unavailable(tiny, tmp_path):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    availability = check_recipe(with_asr_option(tiny, model=str(folder)))
    assert availability.ok is False
    assert "model.bin" in availability.reason
    assert str(folder) in availability.reason
    assert availability.fix


def test_folder_with_model_bin_is_available(tiny, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"")
    assert check_recipe(with_asr_option(tiny, model=str(folder))).ok


def test_recipe_with_no_stages_is_available():
    assert check_recipe(Recipe("empty", "cascade", stages=())).ok


def test_stage_spec_builds_backend(tiny):
    spec: StageSpec = tiny.stage("vad")
    backend = spec.build(VAD_BACKENDS)
    assert backend.name == "silero"
    assert backend.options is spec.options
    with pytest.raises(KeyError):
        tiny.stage("diarize")


# --- lookup -----------------------------------------------------------------------------------


def test_load_recipe_by_name_and_by_path_agree():
    by_name = load_recipe("cascade-fast")
    by_path = load_recipe(str(ROOT / "pipelines" / "cascade-fast.toml"))
    assert by_name.hash == by_path.hash
    assert by_name.name == by_path.name == "cascade-fast"


def test_relative_toml_path_is_a_path(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert load_recipe("pipelines/whisper-raw.toml").name == "whisper-raw"


def test_workbench_recipes_env_dir(tmp_path, monkeypatch):
    mine = tmp_path / "my-recipes"
    mine.mkdir()
    write(mine, MINIMAL, "my-recipe.toml")
    monkeypatch.setenv("WORKBENCH_RECIPES", str(mine))
    assert "my-recipe" in available_recipe_files()
    recipe = load_recipe("my-recipe")
    assert recipe.name == "mini"  # the name key wins over the file stem
    assert recipe.path == str(mine / "my-recipe.toml")
    # the shipped recipes are still found
    assert load_recipe("cascade").pipeline == "cascade"


def test_workbench_recipes_env_dir_shadows_shipped(tmp_path, monkeypatch):
    mine = tmp_path / "override"
    mine.mkdir()
    write(mine, MINIMAL.replace('"mini"', '"cascade"'), "cascade.toml")
    monkeypatch.setenv("WORKBENCH_RECIPES", str(mine))
    recipe = load_recipe("cascade")
    assert recipe.path == str(mine / "cascade.toml")
    assert recipe.stage("asr").options.model == "tiny.en"


def test_unknown_recipe_lists_env_recipes(tmp_path, monkeypatch):
    mine = tmp_path / "r"
    mine.mkdir()
    write(mine, MINIMAL, "only-here.toml")
    monkeypatch.setenv("WORKBENCH_RECIPES", str(mine))
    with pytest.raises(RecipeError, match="only-here"):
        load_recipe("missing")
