"""The Compare page: upload a recording (and optionally a reference and a speaker count), pick recipes, run them
with live per-stage progress, and see the results — or a run opened from the Runs page. Below them, the Ask panel
(:mod:`workbench.dashboard.ask`: a free question every selected recipe answers, run as a comparison) and the blind
Judge panel (:mod:`workbench.dashboard.judge`) for the run's answers to questions.

Each comparison is a run in the result store (tag ``dashboard``) with its uploads, ``results.jsonl`` and
``summary.md`` under ``<out>/<run-id>/``: results are stored as each recipe finishes, so a run cut short
(a rerun, a closed tab, a crash) keeps what it finished, and the Runs page lists it.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from workbench.dashboard import views
from workbench.dashboard.resources import pipeline_pool, recipe_choices, run_queue
from workbench.dashboard.settings import settings
from workbench.errors import WorkbenchError


REFERENCE_TYPES = ["stm", "rttm", "srt", "vtt", "txt", "json"]
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "pyannote"
DEFAULT_RECIPES = ("cascade-fast", "whisper-raw")

# session state keys
SHOWN = "wb_shown"  # {"run": run_id, "recipes": [names] | None}: what the results section shows
RUNNING = "wb_running"  # a run in progress; still set on the next rerun when the run was cut short


def safe_name(name: str, fallback: str = "upload") -> str:
    """A file name safe to write (the upload's own name, path parts and odd characters removed; extension kept)."""
    base = Path(name.replace("\\", "/")).name
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:80] or fallback
    ext = re.sub(r"[^A-Za-z0-9]+", "", ext)[:10]
    return f"{stem}.{ext}" if ext else stem


def _keep(upload, folder: Path) -> Path:
    """Write an upload under ``folder`` (kept: the report and the Runs page read it later); paths pass as they are."""
    if isinstance(upload, Path):
        return upload
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe_name(upload.name)
    path.write_bytes(upload.getvalue())
    return path


class LiveProgress:
    """The runner's hook as live page elements: one line per recipe showing its current stage, with a bar
    where the stage reports progress, and each finished stage with its time."""

    def __init__(self) -> None:
        self.lines: dict[str, object] = {}
        self.done: dict[str, list[str]] = {}

    def __call__(self, step_name, artifact=None, *, total=None, completed=None) -> None:
        recipe, _, stage = step_name.partition("/")
        line = self.lines.get(recipe)
        if line is None:
            line = self.lines[recipe] = st.empty()
            self.done[recipe] = []
        finished = " · ".join(self.done[recipe])
        head = f"**{views.plain(recipe)}** " + (f"{finished} · " if finished else "")
        if artifact is not None:
            note = " (models reused)" if artifact.detail.get("reused") else ""
            self.done[recipe].append(f"{views.plain(stage)} {artifact.wall_s:.2f} s{note} ✓")
            line.markdown(f"**{views.plain(recipe)}** " + " · ".join(self.done[recipe]))
        elif total:
            line.progress(min(1.0, (completed or 0) / total), text=f"{head}{views.plain(stage)} …")
        else:
            line.markdown(f"{head}{views.plain(stage)} …")


def _too_big(references: Sequence, max_mb: float) -> str | None:
    """Why a reference upload is refused (over the size cap), or None."""
    for r in references:
        size = len(r.getvalue()) if not isinstance(r, Path) else r.stat().st_size
        if size > max_mb * 1e6:
            return (f"the reference {r.name} is {size / 1e6:.1f} MB; references up to {max_mb:g} MB are accepted "
                    "(workbench dashboard --max-reference-mb)")
    return None


def run_comparison(audio, references: Sequence, speakers: int | None, recipe_names: Sequence[str],
                   question: str | None = None) -> str | None:
    """Run the recipes on the recording (each also answering ``question``, if given: the Ask panel) — one
    comparison at a time on the server, this one waiting its turn with its place shown; returns the run id, or None
    after showing why nothing ran."""
    s = settings()
    refused = _too_big(references, s.max_reference_mb)
    if refused:
        st.error(f"Nothing was run: {views.plain(refused)}")
        return None
    waiting = st.empty()

    def show_place(ahead: int) -> None:
        waiting.info(f"Another comparison is running on this server: yours is number {ahead} in the queue and "
                     "starts when the ones before it finish (keep this page open).")

    with run_queue().turn(show_place):
        waiting.empty()
        return _run_comparison(audio, references, speakers, recipe_names, question)


def _run_comparison(audio, references: Sequence, speakers: int | None, recipe_names: Sequence[str],
                    question: str | None = None) -> str | None:
    from workbench.dashboard.retention import prune_uploads
    from workbench.runner import run_recipes
    from workbench.session import RunSettings, start_run
    from workbench.summary import markdown

    s = settings()
    prune_uploads(s.out, s.keep_uploads_days)  # the retention period also holds on a server that runs for weeks
    run_settings = RunSettings(hardware=s.hardware, max_duration_s=s.max_duration_s, speakers=speakers,
                               question=question)
    try:
        run = start_run(s.out, list(recipe_names), run_settings, store=s.store,
                        tags=["dashboard", *(["ask"] if question else [])], hook=LiveProgress(),
                        command=["workbench", "dashboard", "ask" if question else "compare", *recipe_names,
                                 *([question] if question else [])])
    except WorkbenchError as exc:
        st.error(f"Nothing was run: {views.plain(str(exc))}")
        return None
    with run:
        try:
            audio_path = _keep(audio, run.folder / "input")
            reference_paths = [_keep(r, run.folder / "input") for r in references]
            item = run.load_item(audio_path, reference_paths)
        except (WorkbenchError, OSError) as exc:
            shutil.rmtree(run.folder, ignore_errors=True)  # nothing ran: leave no half run behind
            message = str(exc) if isinstance(exc, WorkbenchError) else f"could not keep the upload: {exc}"
            st.error(f"Nothing was run: {views.plain(message)}")
            return None
        _say_same(run.prepared.same)
        st.session_state[RUNNING] = run.run_id
        with st.status(f"Running {len(run.recipes)} recipe(s) on {views.plain(item.audio.recording.id)} "
                       f"({item.audio.duration_s:.1f} s)", expanded=True) as status:
            results = run.call(run_recipes, [item], pool=pipeline_pool())
            failed = sum(1 for r in results if r.error)
            status.update(label=f"Finished: {len(results) - failed} of {len(results)} recipe(s) ran"
                          + (f", {failed} failed or did not run" if failed else ""),
                          state="error" if failed == len(results) else "complete", expanded=False)
        run.write_summary(markdown(results, title=f"Comparison {run.run_id}"))
    st.session_state[RUNNING] = None
    st.session_state[SHOWN] = {"run": run.run_id, "recipes": None}
    return run.run_id


def _say_same(same) -> None:
    for name, original in same:
        st.info(f"{views.plain(name)} is the same recipe as {views.plain(original)} (same stages and settings): it runs once.")


def stored_rows(run_id: str, recipes: Sequence[str] | None = None) -> list[dict]:
    from workbench.store import ResultStore

    with ResultStore(settings().store) as store:
        rows = store.rows(run_id=run_id)
    return [r for r in rows if not recipes or r["recipe"] in recipes]


def default_selection(choices) -> list[str]:
    """The recipes selected before the user picks: the same rule as the command line's default — only recipes
    that run here on what is installed, sending nothing to a server and downloading nothing."""
    local = [c.name for c in choices if c.local]
    return [n for n in DEFAULT_RECIPES if n in local] or local[:2]


def _inputs():
    s = settings()
    choices = recipe_choices()
    available = [c.name for c in choices if c.ok]
    left, right = st.columns(2)
    with left:
        audio = st.file_uploader(f"Recording: any audio or video FFmpeg decodes, up to {s.max_upload_mb} MB",
                                 key="upload", max_upload_size=s.max_upload_mb)
    with right:
        reference = st.file_uploader("Reference (optional): " + ", ".join(f".{t}" for t in REFERENCE_TYPES)
                                     + f", up to {s.max_reference_mb:g} MB", type=REFERENCE_TYPES, key="reference",
                                     max_upload_size=max(1, math.ceil(s.max_reference_mb)))
        speakers = st.number_input("Speakers (optional: leave empty to estimate)", min_value=1, max_value=100,
                                   value=None, step=1, key="speakers")
    described = {c.name: c.description for c in choices}
    chosen = st.multiselect("Recipes", available, default=default_selection(choices),
                            key="recipes", help="; ".join(f"{n}: {described[n]}" for n in available if described.get(n)))
    unavailable = [c for c in choices if not c.ok]
    if unavailable:
        with st.expander(f"{len(unavailable)} recipe(s) unavailable here"):
            for c in unavailable:
                st.markdown(f"- **{views.plain(c.name)}**: {views.plain(c.reason)}"
                            + (f". To make it available: {views.plain(c.fix)}" if c.fix else ""))
    return audio, reference, speakers, chosen


def page() -> None:
    views.page("Compare recipes on a recording", _page, kept="results finished so far are kept in the store (Runs page)")


def _page() -> None:
    audio, reference, speakers, chosen = _inputs()
    buttons = st.columns([1, 2, 3])
    run_clicked = buttons[0].button("Run comparison", type="primary", disabled=not chosen, key="run")
    sample_clicked = (SAMPLE / "sample.wav").is_file() and buttons[1].button(
        "Run on the bundled sample (30 s, with STM)", disabled=not chosen, key="run-sample")
    interrupted = st.session_state.get(RUNNING)
    if interrupted:  # the previous script run ended before the comparison finished
        st.session_state[RUNNING] = None
        st.session_state[SHOWN] = {"run": interrupted, "recipes": None}
        st.warning(f"Run {views.code(interrupted)} was cut short; the results it finished are kept and shown below.")
    if sample_clicked:
        run_comparison(SAMPLE / "sample.wav", [SAMPLE / "sample.stm"], int(speakers) if speakers else None, chosen)
    elif run_clicked:
        if audio is None:
            st.error("Upload a recording first (or run on the bundled sample).")
        else:
            run_comparison(audio, [reference] if reference is not None else [], int(speakers) if speakers else None, chosen)
    shown = st.session_state.get(SHOWN)
    if shown is None and st.query_params.get("run"):  # a reloaded or shared page: ?run=<run-id>
        shown = st.session_state[SHOWN] = {"run": st.query_params["run"], "recipes": None}
    if shown:
        st.query_params["run"] = shown["run"]
        st.divider()
        rows = stored_rows(shown["run"], shown.get("recipes"))
        if not rows:
            st.info(f"Run {views.code(shown['run'])} has no results in the store.")
            return
        views.render_run(rows, shown["run"], key="compare")
        from workbench.dashboard import ask, judge

        ask.panel(rows, shown["run"], chosen, int(speakers) if speakers else None, run_comparison)
        judge.panel(rows, shown["run"])
