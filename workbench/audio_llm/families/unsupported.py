"""Families transformers knows whose processors cannot be satisfied here yet: a clear "not supported yet".

None at present (Gemma 3n, Phi-4-multimodal and Granite Speech have their own modules since issue 14); a new
entry subclasses ``_Unsupported`` and registers under the family's name.
"""

from __future__ import annotations

from workbench.audio_llm.families.base import Family, not_supported


class _Unsupported(Family):
    supported = False

    @classmethod
    def check(cls) -> None:
        raise not_supported(cls.name)

    @classmethod
    def load(cls, location: str, *, device: str, dtype):
        raise not_supported(cls.name)
