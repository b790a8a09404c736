"""What the dashboard keeps between reruns and sessions: loaded models (a cached resource), the recipe list
with availability, waveforms of recordings already drawn."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from workbench.dashboard.settings import settings
from workbench.runner import PipelinePool

log = logging.getLogger(__name__)


@st.cache_resource(show_spinner=False)
def pipeline_pool(size: int | None = None) -> PipelinePool:
    """One pool for the server's life: a second comparison with the same recipes reuses the loaded models."""
    return PipelinePool(capacity=size or settings().pool_size)


@dataclass(frozen=True)
class RecipeChoice:
    name: str
    description: str
    ok: bool
    reason: str = ""
    fix: str = ""
    #: why a run that names no recipes leaves this one out (sends data to a server, downloads weights,
    #: unavailable); "" for a recipe that runs here on what is installed
    left_out_because: str = ""

    @property
    def local(self) -> bool:
        return self.ok and not self.left_out_because


@st.cache_data(ttl=60, show_spinner=False)
def recipe_choices() -> list[RecipeChoice]:
    """Every recipe found, with whether it can run here (cheap checks: packages, model files, keys)."""
    from workbench.recipes import available_recipe_files, check_recipe, load_recipe

    out = []
    for name in available_recipe_files():
        try:
            recipe = load_recipe(name)
            availability = check_recipe(recipe)
        except Exception as exc:  # noqa: BLE001 - a broken recipe file is listed with its error
            out.append(RecipeChoice(name, "", False, str(exc), "fix the recipe file", "not available here"))
            continue
        out.append(RecipeChoice(name, recipe.description, availability.ok, availability.reason or "", availability.fix or "",
                                availability.left_out_because))
    return out


@st.cache_data(max_entries=16, show_spinner=False)
def waveform(path: str, mtime: float) -> tuple[list[dict], float]:
    """The envelope of a recording (and its duration) for the timeline; ``mtime`` keys the cache."""
    from workbench.audio import load_audio
    from workbench.dashboard.tables import envelope

    audio = load_audio(path)
    return envelope(audio.samples), audio.duration_s


def recording_waveform(path: str) -> tuple[list[dict], float] | None:
    """The waveform when the recording is still on disk and decodes; None otherwise (the timeline still shows)."""
    p = Path(path)
    try:
        return waveform(str(p), p.stat().st_mtime)
    except Exception as exc:  # noqa: BLE001 - a moved or unreadable file just means no waveform
        log.info("no waveform for %s: %s", path, exc)
        return None
