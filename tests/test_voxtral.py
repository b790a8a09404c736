"""The Voxtral family on the real transformers + mistral-common code path, with a tiny random checkpoint built
offline (tests/tiny_voxtral.py): transcription requests, the chat template, system-prompt handling per
tokenizer version, audio longer than one 30 s chunk, and a ``workbench compare``. The model's text is random:
only structure is asserted, never words.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from conftest import PYANNOTE_WAV
from tiny_voxtral import AUDIO_TOKEN_ID, build_tiny_voxtral, tekken_json

pytestmark = pytest.mark.integration

pytest.importorskip("mistral_common")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_voxtral(tmp_path_factory.mktemp("voxtral") / "tiny-voxtral")


@pytest.fixture(scope="module")
def speech():
    samples, rate = sf.read(PYANNOTE_WAV, dtype="float32")
    assert rate == 16000
    return samples


@pytest.fixture(scope="module")
def backend(tiny):
    from workbench.audio_llm.backends import TransformersAudio, TransformersAudioOptions

    options = TransformersAudioOptions(model=str(tiny), max_new_tokens=8)
    TransformersAudio.check(options)
    b = TransformersAudio(options)
    b.load()
    yield b
    b.unload()


def with_task(backend, task: str, language: str | None = None):
    from workbench.audio_llm.backends import TransformersAudio

    return TransformersAudio(backend.options.model_copy(update={"task": task, "language": language}))


def test_family_from_config_and_from_hub_id(tiny):
    from workbench.audio_llm.backends import TransformersAudio, TransformersAudioOptions
    from workbench.audio_llm.families import FAMILIES, family_for

    voxtral = FAMILIES.get("voxtral")
    assert voxtral.supported and voxtral.max_audio_s == 1800
    assert family_for(TransformersAudioOptions(model=str(tiny))) is voxtral
    assert family_for(TransformersAudioOptions(model="mistralai/Voxtral-Mini-3B-2507")) is voxtral
    voxtral.check()
    assert TransformersAudio(TransformersAudioOptions(model=str(tiny))).max_audio_s() == 1800
    assert TransformersAudio(TransformersAudioOptions(model=str(tiny))).describe()["family"] == "voxtral"


def assert_reply(reply):
    assert isinstance(reply.text, str)
    assert reply.input_tokens > 0 and 0 < reply.output_tokens <= 8


def test_transcription_request(backend, speech):
    from workbench.audio_llm.prompts import DEFAULT_PROMPTS, DEFAULT_SYSTEM

    runner = backend._runner
    window = speech[: 3 * 16000]
    transcript = with_task(backend, "transcript", "en")
    transcript._runner = runner
    reply = transcript.generate(window, DEFAULT_SYSTEM, DEFAULT_PROMPTS["transcript"])
    assert_reply(reply)
    # 3 s pads to one 30 s chunk: 375 audio tokens, then the transcription-request tail; no prompt text
    inputs = runner.inputs(window, system=DEFAULT_SYSTEM, prompt=DEFAULT_PROMPTS["transcript"], task="transcript",
                           language="en")
    ids = inputs["input_ids"][0].tolist()
    assert ids.count(AUDIO_TOKEN_ID) == 375 and tuple(inputs["input_features"].shape) == (1, 128, 3000)
    text = runner.processor.tokenizer.decode(ids)
    assert text.endswith("lang:en[TRANSCRIBE]") and "Transcribe" not in text and DEFAULT_SYSTEM not in text
    assert reply.input_tokens == len(ids)
    auto = runner.processor.tokenizer.decode(runner.inputs(window, system="", prompt="", task="transcript",
                                                           language=None)["input_ids"][0].tolist())
    assert auto.endswith("[TRANSCRIBE]") and "lang:" not in auto  # no hint: Voxtral detects the language


def test_chat_template_with_system_prompt_in_the_user_turn(backend, speech):
    from workbench.audio_llm.prompts import DEFAULT_PROMPTS, DEFAULT_SYSTEM

    reply = backend.generate(speech[: 3 * 16000], DEFAULT_SYSTEM, DEFAULT_PROMPTS["formatted"])
    assert_reply(reply)
    runner = backend._runner
    assert runner.system_message is False  # v7, like the released checkpoints: no system message next to audio
    inputs = runner.inputs(speech[: 3 * 16000], system=DEFAULT_SYSTEM, prompt=DEFAULT_PROMPTS["formatted"],
                           task="formatted", language=None)
    text = runner.processor.tokenizer.decode(inputs["input_ids"][0].tolist())
    assert f"{DEFAULT_SYSTEM}\n\n{DEFAULT_PROMPTS['formatted']}" in text and "[SYSTEM_PROMPT]" not in text
    assert text.index("[AUDIO]") < text.index(DEFAULT_SYSTEM) < text.index("[/INST]")
    assert reply.input_tokens == inputs["input_ids"].shape[1]


def test_v13_tokenizer_gets_a_real_system_message(tiny, tmp_path, speech):
    from workbench.audio_llm.families.voxtral import Voxtral

    folder = shutil.copytree(tiny, tmp_path / "v13")
    (folder / "tekken.json").write_text(json.dumps(tekken_json("v13")))
    runner = Voxtral.load(str(folder), device="cpu", dtype=__import__("torch").float32)
    assert runner.system_message is True
    inputs = runner.inputs(speech[: 3 * 16000], system="Be careful.", prompt="Transcribe.", task="formatted",
                           language=None)
    text = runner.processor.tokenizer.decode(inputs["input_ids"][0].tolist())
    assert "[SYSTEM_PROMPT]Be careful.[/SYSTEM_PROMPT]" in text and "Be careful.\n\n" not in text


def test_audio_longer_than_one_chunk(backend, speech):
    """31 s → two 30 s encoder chunks, 750 audio tokens, one call."""
    window = np.concatenate([speech, speech[:16000]])
    runner = backend._runner
    inputs = runner.inputs(window, system="", prompt="Transcribe.", task="formatted", language=None)
    assert tuple(inputs["input_features"].shape) == (2, 128, 3000)
    assert inputs["input_ids"][0].tolist().count(AUDIO_TOKEN_ID) == 750
    assert_reply(backend.generate(window, "", "Transcribe."))


def test_compare_with_a_voxtral_recipe(tiny, tmp_path, monkeypatch):
    from workbench.cli import app

    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "voxtral-tiny.toml").write_text(
        'name = "voxtral-tiny"\npipeline = "audio-llm"\n'
        f'[model]\nbackend = "transformers"\nmodel = "{tiny}"\ntask = "formatted"\nmax_new_tokens = 8\n'
    )
    monkeypatch.setenv("WORKBENCH_RECIPES", str(recipes))
    out = tmp_path / "reports"
    result = CliRunner().invoke(app, ["compare", str(PYANNOTE_WAV), "--recipes", "voxtral-tiny", "--out", str(out)])
    assert result.exit_code == 0, result.output
    [run_dir] = out.iterdir()
    [r] = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert r["error"] is None, r["error"]
    assert r["usage"]["calls"] == 1  # 30 s < the 1800 s per-call limit
    assert r["usage"]["input_tokens"] > 0 and r["usage"]["output_tokens"] > 0
    assert len(r["details"]["windows"]) == 1 and r["details"]["per_call_limit_s"] == 1800
    assert r["components"]["model"]["family"] == "voxtral"
