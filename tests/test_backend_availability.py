"""Backends that cannot run here say why, and how to make them run (no model is loaded)."""

from __future__ import annotations

import importlib.util

import pytest

from workbench.recipes import check_recipe, parse_recipe

BASE = {"pipeline": "cascade", "asr": {"backend": "faster-whisper", "model": "tiny.en"}}


def availability(**stages):
    return check_recipe(parse_recipe({**BASE, **stages}, name="t"))


@pytest.mark.skipif(importlib.util.find_spec("pyannote.audio") is not None, reason="pyannote.audio is installed here")
def test_pyannote_without_the_extra_names_the_install():
    status = availability(diarization={"backend": "pyannote", "model": "pyannote/speaker-diarization-community-1"})
    assert not status.ok
    assert "pyannote.audio" in status.reason
    assert "pip install" in status.fix


def test_llama_cpp_missing_gguf_file(tmp_path):
    status = availability(formatter={"backend": "llama-cpp", "model": str(tmp_path / "missing.gguf")})
    assert not status.ok and "missing.gguf" in status.reason and ".gguf" in status.fix


def test_bundled_smollm2_is_available():
    assert availability(formatter={"backend": "llama-cpp"}).ok


def test_openai_compatible_needs_no_server_to_validate():
    # reachability is a run-time matter: the recipe is valid and the package is there
    assert availability(formatter={"backend": "openai-compatible", "base_url": "http://127.0.0.1:9/v1"}).ok


def test_resemblyzer_is_available_offline():
    assert availability(diarization={"backend": "resemblyzer", "num_speakers": 2}).ok
