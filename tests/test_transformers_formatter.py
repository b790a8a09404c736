"""The ``transformers`` formatter on the real bundled SmolLM2 GGUF (de-quantised by transformers)."""

from __future__ import annotations

import pytest

from workbench.backends.formatter import TransformersFormatter, TransformersOptions
from workbench.datamodel import Segment, Transcript
from workbench.recipes import check_recipe, parse_recipe

pytestmark = pytest.mark.integration


def test_formats_a_short_transcript_with_the_bundled_gguf():
    formatter = TransformersFormatter(TransformersOptions(max_tokens=64, summary_prompt=""))
    formatter.load()
    try:
        transcript = Transcript((Segment(0, 1, "hello there how are you", "SPEAKER_00"),
                                 Segment(1, 2, "i am fine thanks", "SPEAKER_01")))
        out = formatter.format(transcript)
    finally:
        formatter.unload()
    assert out.calls == 1 and out.summary is None
    assert out.input_tokens > 20  # system prompt + chat template + transcript, counted by the real tokenizer
    assert 1 <= out.output_tokens <= 64  # capped: max_output_ratio × chunk + 16, under max_tokens 64
    assert isinstance(out.text, str)


def test_unknown_hub_model_is_unavailable_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    recipe = parse_recipe({"pipeline": "cascade", "asr": {"backend": "faster-whisper", "model": "tiny.en"},
                           "formatter": {"backend": "transformers", "model": "someone/not-cached-llm"}}, name="t")
    status = check_recipe(recipe)
    assert not status.ok and "someone/not-cached-llm" in status.reason and "huggingface-cli download" in status.fix
