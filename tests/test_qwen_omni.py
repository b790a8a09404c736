"""The Qwen2.5-Omni family: dispatch, its per-call limit, and (integration) the real transformers code path —
processor (with the audio-only video stand-in where torchvision is missing) and thinker — on a tiny randomly
initialised thinker built locally, in both a thinker folder and the layout of the Qwen/Qwen2.5-Omni-* repos.

The weights are random, so the text is noise: tests assert on structure, never on what it writes.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import PYANNOTE_STM, PYANNOTE_WAV
from tiny_qwen_omni import as_hub_checkpoint, build_tiny_qwen2_5_omni
from workbench.audio import load_audio
from workbench.audio_llm.backends import Reply, TransformersAudio, TransformersAudioOptions
from workbench.audio_llm.families import FAMILIES, family_for
from workbench.audio_llm.windows import split_windows
from workbench.cli import app
from workbench.datamodel import Span
from workbench.errors import BackendUnavailable

SR = 16000
MAX_NEW_TOKENS = 8
LIMIT_S = 300.0  # the checkpoint's feature extractor: chunk_length 300 s


def folder_with(tmp_path, model_type: str):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    return tmp_path


@pytest.mark.parametrize("model", ["Qwen/Qwen2.5-Omni-3B", "Qwen/Qwen2.5-Omni-7B"])
def test_hub_ids_dispatch_to_the_family(model):
    family = family_for(TransformersAudioOptions(model=model))
    assert family.name == "qwen2.5-omni" and family.supported
    assert family.max_audio_s == LIMIT_S
    assert "12 GB" in family.hardware and "22 GB" in family.hardware


@pytest.mark.parametrize("model_type", ["qwen2_5_omni", "qwen2_5_omni_thinker"])
def test_folders_dispatch_by_model_type(tmp_path, model_type):
    options = TransformersAudioOptions(model=str(folder_with(tmp_path, model_type)))
    assert family_for(options).name == "qwen2.5-omni"
    assert TransformersAudio(options).max_audio_s() == LIMIT_S


def test_the_shipped_recipe_uses_the_family():
    from workbench.recipes import load_recipe

    options = load_recipe("audio-llm-qwen2.5-omni-3b").stage("model").options
    assert family_for(options).name == "qwen2.5-omni"


def test_check_names_pillow_when_it_is_missing(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "PIL" else real(name, *a))
    with pytest.raises(BackendUnavailable) as err:
        FAMILIES.get("qwen2.5-omni").check()
    assert "pillow" in err.value.reason and "pip install pillow" in err.value.fix


# --- integration: the real transformers code path on a tiny random thinker ---------------------------------


@pytest.fixture(scope="module")
def tiny_omni(tmp_path_factory):
    return build_tiny_qwen2_5_omni(tmp_path_factory.mktemp("tiny-qwen2.5-omni"))


@pytest.fixture(scope="module")
def tiny_omni_hub(tmp_path_factory, tiny_omni):
    return as_hub_checkpoint(tiny_omni, tmp_path_factory.mktemp("tiny-qwen2.5-omni-hub") / "Qwen2.5-Omni-tiny")


@pytest.fixture(scope="module")
def speech():
    return load_audio(str(PYANNOTE_WAV)).samples


@pytest.mark.integration
@pytest.mark.parametrize("layout", ["thinker folder", "hub layout"])
def test_backend_generates_on_real_speech(request, layout, speech):
    folder = request.getfixturevalue("tiny_omni" if layout == "thinker folder" else "tiny_omni_hub")
    backend = TransformersAudio(TransformersAudioOptions(model=str(folder), max_new_tokens=MAX_NEW_TOKENS))
    TransformersAudio.check(backend.options)
    assert backend.max_audio_s() == LIMIT_S
    assert backend.describe()["family"] == "qwen2.5-omni"
    backend.load()
    try:
        processor = backend._runner.processor
        assert processor.feature_extractor.n_samples == LIMIT_S * SR
        reply = backend.generate(speech[: 3 * SR], "You transcribe.", "Transcribe the audio.")
        # past the feature extractor's ceiling the call is refused, not silently cut
        with pytest.raises(ValueError, match="300 s"):
            backend.generate(np.zeros(int((LIMIT_S + 1) * SR), dtype=np.float32), "s", "p")
        if type(processor.video_processor).__name__ == "AudioOnlyVideoProcessor":
            with pytest.raises(BackendUnavailable, match="torchvision"):
                processor(text="<|vision_bos|><|VIDEO|><|vision_eos|>", videos=[np.zeros((2, 28, 28, 3), np.uint8)])
    finally:
        backend.unload()
    assert isinstance(reply, Reply) and isinstance(reply.text, str)
    # 3 s → 300 feature frames → 75 <|AUDIO|> placeholders, plus the ChatML prompt around them
    audio_placeholders = ((300 - 1) // 2 + 1 - 2) // 2 + 1
    assert reply.input_tokens > audio_placeholders
    assert 0 < reply.output_tokens <= MAX_NEW_TOKENS


@pytest.mark.integration
def test_compare_runs_the_family_with_its_own_limit(tmp_path, tiny_omni, speech, monkeypatch):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    body = (f'pipeline = "audio-llm"\n[model]\nbackend = "transformers"\nmodel = "{tiny_omni.as_posix()}"\n'
            f'max_new_tokens = {MAX_NEW_TOKENS}\n')
    (recipes / "tiny-omni.toml").write_text(body)
    (recipes / "tiny-omni-12s.toml").write_text(body + "max_audio_s = 12\n")
    monkeypatch.setenv("WORKBENCH_RECIPES", str(recipes))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "reports"
    result = CliRunner().invoke(app, ["compare", str(PYANNOTE_WAV), "-r", str(PYANNOTE_STM),
                                      "--recipes", "tiny-omni,tiny-omni-12s", "--out", str(out)])
    assert result.exit_code == 0, result.output
    [run_dir] = out.iterdir()
    by = {r["recipe"]: r for r in map(json.loads, (run_dir / "results.jsonl").read_text().splitlines())}
    for name, limit in (("tiny-omni", LIMIT_S), ("tiny-omni-12s", 12.0)):
        r = by[name]
        assert r["error"] is None, r["error"]
        assert r["components"]["model"]["family"] == "qwen2.5-omni"
        assert r["components"]["model"]["backend"] == "transformers"
        details = r["details"]
        windows = [Span(w["start"], w["end"]) for w in details["windows"]]
        assert windows == split_windows(speech, limit)
        assert details["per_call_limit_s"] == limit
        assert r["usage"]["calls"] == details["calls"] == len(windows)
        assert {k: v for k, v in r["stage_details"]["audio-llm"].items() if k != "peak_rss_mb"} == {"calls": len(windows), "windows": len(windows), "limit_s": limit}
        assert r["usage"]["input_tokens"] > 0 and 0 < r["usage"]["output_tokens"] <= len(windows) * MAX_NEW_TOKENS
        assert r["rtfx"] > 0 and r["metrics"]["reference_words"] == 87
        assert isinstance(r["transcript"]["text"], str)
    assert len(by["tiny-omni"]["details"]["windows"]) == 1  # 30 s: one call under the family's 300 s
    assert len(by["tiny-omni-12s"]["details"]["windows"]) >= 3  # cut at quiet points at or before 12 s
