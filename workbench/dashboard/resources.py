"""What the dashboard keeps between reruns and sessions: loaded models (a cached resource), the recipe list
with availability, waveforms of recordings already drawn."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


class RunQueue:
    """One comparison at a time across every session of the server, first come first served: a session waits
    for its turn and is told its place (1 = next). A session that goes away (rerun, closed tab) leaves the
    queue, so the ones behind it move up."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._tickets: list[object] = []  # the first one runs

    def position(self, ticket: object) -> int | None:
        """0 = running, 1 = next, …; None when not queued."""
        with self._changed:
            return self._tickets.index(ticket) if ticket in self._tickets else None

    def __len__(self) -> int:
        with self._changed:
            return len(self._tickets)

    @contextmanager
    def turn(self, on_wait: Callable[[int], None] = lambda ahead: None, poll_s: float = 1.0) -> Iterator[None]:
        """Wait for this caller's turn, calling ``on_wait(runs ahead)`` while waiting (at least every
        ``poll_s``: a Streamlit session stops or reruns inside it), then hold it until the block ends."""
        ticket = object()
        with self._changed:
            self._tickets.append(ticket)
        try:
            while True:
                with self._changed:
                    ahead = self._tickets.index(ticket)
                    if ahead == 0:
                        break
                on_wait(ahead)
                with self._changed:
                    if self._tickets.index(ticket) != 0:
                        self._changed.wait(poll_s)
            yield
        finally:
            with self._changed:
                self._tickets.remove(ticket)
                self._changed.notify_all()


@st.cache_resource(show_spinner=False)
def run_queue() -> RunQueue:
    """The server's one queue: models and CPUs are shared, and a run may send recordings to a paid API."""
    return RunQueue()


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
