"""Whisper's text normalisers (English and basic), applied to both sides before scoring.

The implementation is the ``whisper-normalizer`` package: a copy of openai/whisper's normalisers without
torch, the same normaliser the Open ASR Leaderboard uses.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from workbench.errors import RecipeError

NORMALIZERS = ("whisper-english", "whisper-basic", "none")


@lru_cache(maxsize=None)
def get_normalizer(name: str = "whisper-english") -> Callable[[str], str]:
    if name == "whisper-english":
        from whisper_normalizer.english import EnglishTextNormalizer

        return EnglishTextNormalizer()
    if name == "whisper-basic":
        from whisper_normalizer.basic import BasicTextNormalizer

        return BasicTextNormalizer()
    if name == "none":
        return lambda text: " ".join(text.split())
    raise RecipeError(f"unknown normaliser {name!r}; known: {', '.join(NORMALIZERS)}")


def normalize(text: str, name: str = "whisper-english") -> str:
    return " ".join(get_normalizer(name)(text or "").split())
