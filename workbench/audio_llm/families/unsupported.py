"""Families transformers knows whose processors cannot be satisfied here yet: a clear "not supported yet"."""

from __future__ import annotations

from workbench.audio_llm.families.base import FAMILIES, Family, not_supported


class _Unsupported(Family):
    supported = False

    @classmethod
    def check(cls) -> None:
        raise not_supported(cls.name)

    @classmethod
    def load(cls, location: str, *, device: str, dtype):
        raise not_supported(cls.name)


@FAMILIES.register("gemma3n")
class Gemma3n(_Unsupported):
    """Its processor needs timm + Pillow for the vision tower."""

    model_types = ("gemma3n",)
    id_patterns = ("gemma-3n",)
    max_audio_s = 30.0


@FAMILIES.register("granite-speech")
class GraniteSpeech(_Unsupported):
    """Its feature extractor needs torchaudio."""

    model_types = ("granite_speech",)
    id_patterns = ("granite-speech",)
