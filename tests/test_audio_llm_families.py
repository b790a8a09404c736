"""The newer audio-LLM families end to end through the workbench's audio-llm pipeline (``workbench compare``), each
on a tiny random checkpoint built offline from its transformers config (tests/tiny_families.py): Qwen3-Omni
(thinker), Gemma 3n, Phi-4-multimodal, Audio Flamingo 3, Granite Speech. The models' text is random: only
structure is asserted (family, windows, calls, tokens), never words. ``pytest -k audio_llm`` runs them.
"""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import tiny_families
from conftest import PYANNOTE_WAV
from workbench.audio_llm.backends import TransformersAudio, TransformersAudioOptions
from workbench.audio_llm.families import FAMILIES, family_for
from workbench.audio_llm.windows import split_windows
from workbench.cli import app
from workbench.datamodel import Span
from workbench.errors import BackendUnavailable

LIMIT_S = 12.0  # below every family's own limit: the 30 s recording becomes several windows
MAX_NEW_TOKENS = 4


@pytest.fixture(scope="module")
def speech():
    samples, rate = sf.read(PYANNOTE_WAV, dtype="float32")
    assert rate == 16000
    return samples


@pytest.fixture
def torchaudio_or_double(monkeypatch):
    """Granite Speech's feature extractor needs torchaudio only for ``MelSpectrogram``. Where torchaudio is not
    installed, this test (only) swaps in a plain-torch implementation of that transform and lets the family's
    check pass, so the rest of the real code path runs; the family itself keeps requiring torchaudio."""
    import importlib.util

    if importlib.util.find_spec("torchaudio") is not None:
        return
    import transformers.models.granite_speech.feature_extraction_granite_speech as fx

    double = types.SimpleNamespace(transforms=types.SimpleNamespace(
        MelSpectrogram=lambda **kw: tiny_families.torch_melspectrogram(**kw)))
    monkeypatch.setattr(fx, "torchaudio", double, raising=False)
    monkeypatch.setattr(fx, "requires_backends", lambda obj, backends: None)
    granite = FAMILIES.get("granite-speech")
    monkeypatch.setattr(granite, "requires", tuple(r for r in granite.requires if r[0] != "torchaudio"))


def compare_end_to_end(folder, family: str, own_limit: float, speech, tmp_path, monkeypatch):
    """``workbench compare`` of the 30 s sample with a recipe on ``folder`` (windows of ≤ 12 s): one result, no
    error, the family's name, one call per window, tokens counted."""
    options = TransformersAudioOptions(model=str(folder))
    assert family_for(options).name == family
    assert TransformersAudio(options).max_audio_s() == own_limit
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "tiny.toml").write_text(
        f'pipeline = "audio-llm"\n[model]\nbackend = "transformers"\nmodel = "{folder.as_posix()}"\n'
        f'max_new_tokens = {MAX_NEW_TOKENS}\nmax_audio_s = {LIMIT_S}\n')
    monkeypatch.setenv("WORKBENCH_RECIPES", str(recipes))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "reports"
    result = CliRunner().invoke(app, ["compare", str(PYANNOTE_WAV), "--recipes", "tiny", "--out", str(out)])
    assert result.exit_code == 0, result.output
    [run_dir] = out.iterdir()
    [r] = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert r["error"] is None, r["error"]
    assert r["components"]["model"]["family"] == family
    assert r["components"]["model"]["backend"] == "transformers"
    details = r["details"]
    windows = [Span(w["start"], w["end"]) for w in details["windows"]]
    assert windows == split_windows(speech, LIMIT_S) and len(windows) >= 3
    assert details["per_call_limit_s"] == LIMIT_S
    assert r["usage"]["calls"] == details["calls"] == len(windows)
    assert r["usage"]["input_tokens"] > 0 and 0 < r["usage"]["output_tokens"] <= len(windows) * MAX_NEW_TOKENS
    assert isinstance(r["transcript"]["text"], str) and r["rtfx"] > 0
    return r


def test_audio_llm_qwen3_omni_end_to_end(tmp_path, monkeypatch, speech):
    folder = tiny_families.build_tiny_qwen3_omni(tmp_path / "tiny-qwen3-omni")
    compare_end_to_end(folder, "qwen3-omni", 1200.0, speech, tmp_path, monkeypatch)
    # ~12.5 audio tokens per second: 3 s → 39 placeholders between <|audio_start|> and <|audio_end|>
    runner = FAMILIES.get("qwen3-omni").load(str(folder), device="cpu", dtype=__import__("torch").float32)
    ids = runner.inputs(speech[: 3 * 16000], system="Be careful.", prompt="Transcribe.")["input_ids"][0].tolist()
    assert ids.count(runner.processor.audio_token_id) == 39
    text = runner.processor.tokenizer.decode(ids)
    assert text.index("Be careful.") < text.index("<|audio_start|>") < text.index("Transcribe.")
    # the hub's layout (model_type qwen3_omni_moe, thinker_config inside, weights under "thinker."): the same thinker
    hub = as_full_qwen3_omni_checkpoint(folder, tmp_path / "hub-layout")
    from workbench.audio_llm.families.qwen3_omni import load_thinker

    torch = __import__("torch")
    full, alone = load_thinker(str(hub), dtype=torch.float32).state_dict(), runner.model.state_dict()
    assert full.keys() == alone.keys() and all(torch.equal(full[k], alone[k]) for k in full)


def as_full_qwen3_omni_checkpoint(thinker_folder, folder):
    import shutil

    from safetensors.torch import load_file, save_file

    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "processor_config.json",
                 "chat_template.jinja"):
        shutil.copy(thinker_folder / name, folder / name)
    weights = load_file(str(thinker_folder / "model.safetensors"))
    save_file({f"thinker.{k}": v for k, v in weights.items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    thinker = json.loads((thinker_folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["Qwen3OmniMoeForConditionalGeneration"], "model_type": "qwen3_omni_moe",
        "enable_audio_output": False, "thinker_config": {k: v for k, v in thinker.items() if k != "architectures"}}))
    return folder


def test_audio_llm_gemma3n_end_to_end(tmp_path, monkeypatch, speech):
    folder = tiny_families.build_tiny_gemma3n(tmp_path / "tiny-gemma3n")
    compare_end_to_end(folder, "gemma3n", 30.0, speech, tmp_path, monkeypatch)
    runner = FAMILIES.get("gemma3n").load(str(folder), device="cpu", dtype=__import__("torch").float32)
    ids = runner.inputs(speech[: 3 * 16000], system="Be careful.", prompt="Transcribe.")["input_ids"][0].tolist()
    assert ids.count(runner.processor.audio_token_id) == 188  # every clip: 188 audio soft tokens
    text = runner.processor.tokenizer.decode(ids)
    assert "<start_of_turn>system" not in text and text.index("Be careful.") < text.index("Transcribe.")
    with pytest.raises(ValueError, match="first 30 s"):
        runner.inputs(np.zeros(31 * 16000, np.float32), system="", prompt="Transcribe.")


def test_audio_llm_phi4_multimodal_end_to_end(tmp_path, monkeypatch, speech):
    folder = tiny_families.build_tiny_phi4_multimodal(tmp_path / "tiny-phi4")
    compare_end_to_end(folder, "phi4-multimodal", 30.0, speech, tmp_path, monkeypatch)
    runner = FAMILIES.get("phi4-multimodal").load(str(folder), device="cpu", dtype=__import__("torch").float32)
    ids = runner.inputs(speech[: 3 * 16000], system="Be careful.", prompt="Transcribe.")["input_ids"][0].tolist()
    assert ids.count(runner.processor.audio_token_id) == 38  # one per 80 ms
    text = runner.processor.tokenizer.decode(ids)
    assert text.startswith("<|system|>Be careful.<|end|><|user|>") and text.endswith("Transcribe.<|end|><|assistant|>")
    if type(runner.processor.image_processor).__name__ == "AudioOnlyImageProcessor":
        with pytest.raises(BackendUnavailable, match="torchvision"):
            runner.processor.image_processor(images=[np.zeros((28, 28, 3), np.uint8)])


def test_phi4_multimodal_remote_code_layout_names_the_revision(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "phi4mm"}))
    assert family_for(TransformersAudioOptions(model=str(tmp_path))).name == "phi4-multimodal"
    with pytest.raises(BackendUnavailable) as err:
        FAMILIES.get("phi4-multimodal").load(str(tmp_path), device="cpu", dtype=None)
    assert "--revision refs/pr/70" in err.value.fix


def test_audio_llm_audioflamingo3_end_to_end(tmp_path, monkeypatch, speech):
    folder = tiny_families.build_tiny_audioflamingo3(tmp_path / "tiny-af3")
    compare_end_to_end(folder, "audioflamingo3", 600.0, speech, tmp_path, monkeypatch)
    runner = FAMILIES.get("audioflamingo3").load(str(folder), device="cpu", dtype=__import__("torch").float32)
    ids = runner.inputs(speech[: 3 * 16000], system="Be careful.", prompt="Transcribe.")["input_ids"][0].tolist()
    assert ids.count(runner.processor.audio_token_id) == 75  # one per 40 ms
    text = runner.processor.tokenizer.decode(ids)
    # no system message (NVIDIA documents none): the system prompt leads the user turn's text, then the audio
    assert "<|im_start|>system" not in text and "Be careful.\n\nTranscribe.<sound>" in text
    with pytest.raises(ValueError, match="first 600 s"):
        runner.inputs(np.zeros(601 * 16000, np.float32), system="", prompt="Transcribe.")


def test_audio_llm_granite_speech_end_to_end(tmp_path, monkeypatch, speech, torchaudio_or_double):
    folder = tiny_families.build_tiny_granite_speech(tmp_path / "tiny-granite")
    compare_end_to_end(folder, "granite-speech", 30.0, speech, tmp_path, monkeypatch)
    runner = FAMILIES.get("granite-speech").load(str(folder), device="cpu", dtype=__import__("torch").float32)
    ids = runner.inputs(speech[: 3 * 16000], system="Be careful.", prompt="Transcribe.")["input_ids"][0].tolist()
    assert ids.count(runner.model.config.audio_token_index) == 30  # one per 100 ms
    text = runner.processor.tokenizer.decode(ids)
    assert text.index("Be careful.") < text.index("<|audio|>") < text.index("Transcribe.")


def test_granite_speech_without_torchaudio_says_how_to_install_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchaudio" else real(name, *a))
    with pytest.raises(BackendUnavailable) as err:
        FAMILIES.get("granite-speech").check()
    assert "torchaudio" in err.value.reason and "pip install torchaudio" in err.value.fix


def test_lora_checkpoints_without_peft_say_how_to_get_it(tmp_path, monkeypatch):
    """Phi-4's speech-lora/ and Granite Speech's audio LoRA load only with peft: refused before any weights load."""
    import transformers.utils

    monkeypatch.setattr(transformers.utils, "is_peft_available", lambda: False)
    phi = tmp_path / "phi"
    (phi / "speech-lora").mkdir(parents=True)
    (phi / "config.json").write_text(json.dumps({"model_type": "phi4_multimodal"}))
    (phi / "speech-lora" / "adapter_config.json").write_text("{}")
    granite = tmp_path / "granite"
    granite.mkdir()
    (granite / "config.json").write_text(json.dumps({"model_type": "granite_speech", "has_lora_adapter": True}))
    for family, folder in (("phi4-multimodal", phi), ("granite-speech", granite)):
        with pytest.raises(BackendUnavailable) as err:
            FAMILIES.get(family).load(str(folder), device="cpu", dtype=None)
        assert "peft" in err.value.reason and err.value.fix == "pip install peft"
