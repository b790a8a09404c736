"""Audio-LLM model families: each knows its processor, prompt format and per-call audio limit.

A family is picked from the model's ``config.json`` (``model_type``) when the weights are here, else from
the model id, or named in the recipe (``family = "qwen2-audio"``).
"""

from __future__ import annotations

import json
from pathlib import Path

from workbench.audio_llm.families.base import FAMILIES, Family, Runner
from workbench.audio_llm.families import qwen2_audio, unsupported  # noqa: F401  (registration)
from workbench.errors import BackendUnavailable

for _optional in ("voxtral", "qwen2_5_omni", "audioflamingo3", "qwen3_omni", "gemma3n", "phi4_multimodal",
                  "granite_speech"):
    try:
        __import__(f"workbench.audio_llm.families.{_optional}")
    except ModuleNotFoundError as exc:  # a family module not written yet
        if exc.name != f"workbench.audio_llm.families.{_optional}":
            raise

__all__ = ["FAMILIES", "Family", "Runner", "family_for", "model_type"]


def model_type(model: str) -> str | None:
    """``model_type`` from a local folder's or the hub cache's config.json, without network."""
    folder = Path(model).expanduser()
    config = folder / "config.json" if folder.is_dir() else None
    if config is None:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, "config.json")
            config = Path(cached) if isinstance(cached, str) else None
        except Exception:  # noqa: BLE001
            config = None
    if config is None or not config.is_file():
        return None
    try:
        return json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError):
        return None


def family_for(options) -> Family:
    if options.family != "auto":
        return FAMILIES.get(options.family)
    kind = model_type(options.model)
    lowered = options.model.lower()
    for name in FAMILIES.names():
        family = FAMILIES.get(name)
        if (kind and kind in family.model_types) or (not kind and any(p in lowered for p in family.id_patterns)):
            return family
    supported = ", ".join(n for n in FAMILIES.names() if FAMILIES.get(n).supported)
    raise BackendUnavailable(
        f"cannot tell the model family of {options.model!r}" + (f" (model_type {kind!r})" if kind else ""),
        f"set family = one of {', '.join(FAMILIES.names())} in the recipe; supported now: {supported}",
    )
