"""Streamlit views of a set of results (one comparison, or a run from the store): metrics table, errors,
charts, timeline over the waveform with a seeking audio player, transcripts against the reference,
formatted outputs, provenance, report downloads.

Model output and file names are untrusted: HTML goes through ``html.escape`` (and Streamlit's sanitiser),
Markdown through :func:`plain`.
"""

from __future__ import annotations

import html
import logging
import mimetypes
import re
from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from workbench.dashboard import tables
from workbench.dashboard.settings import settings
from workbench.result import RunResult

log = logging.getLogger(__name__)

WAVEFORM_MAX_S = 2 * 3600
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")

CSS = """<style>
.wb-metrics{border-collapse:collapse;font-size:0.9rem;margin:0.25rem 0 1rem}
.wb-metrics th,.wb-metrics td{border:1px solid rgba(128,128,128,.35);padding:3px 10px;text-align:right}
.wb-metrics th:first-child{text-align:left}.wb-metrics th[scope=row]{text-align:left;font-weight:normal}
.wb-metrics td.best{background:rgba(46,160,67,.18)}
.wb-tx{line-height:1.6}.wb-tx .sub{background:#fde2a7}.wb-tx del{background:#f6c1c1}
.wb-tx ins{background:#c8efc8;text-decoration:none}.wb-pre{white-space:pre-wrap}
</style>"""


def plain(text: object) -> str:
    """Untrusted text made inert for Streamlit Markdown (no links, images, HTML, LaTeX or emphasis)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def page(title: str, body, *, kept: str = "") -> None:
    """A page: its title, then ``body()``; anything it raises becomes one message (the traceback goes to the
    server log, never to the user). ``kept`` tells the user what survived."""
    st.title(title)
    try:
        body()
    except Exception as exc:  # noqa: BLE001 - the user sees a message, the log keeps the traceback
        log.exception("%s page failed", title)
        st.error(f"Something went wrong: {plain(f'{type(exc).__name__}: {exc}')}. Details are in the server log"
                 + (f"; {kept}." if kept else "."))


def code(text: object) -> str:
    """Untrusted text as a Markdown code span (backticks and line breaks removed: nothing inside is markup)."""
    return "`" + str(text).replace("`", "'").replace("\n", " ") + "`"


def report_data(rows: Sequence[dict], run_id: str, fmt: str) -> str:
    """A report of ``rows``; its diff view reads reference texts only from the dashboard's own runs folder."""
    from workbench.report import render

    return render(rows, run_id, fmt, references=(settings().out,))


EXPORTS = (("html", "HTML", "text/html"), ("md", "Markdown", "text/markdown"), ("json", "JSON", "application/json"),
           ("csv", "CSV", "text/csv"))


def export_buttons(rows: Sequence[dict], run_id: str, *, key: str) -> None:
    """Download the report of exactly these rows in every format (rendered when the button is pressed)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id) or "report"
    for col, (fmt, label, mime) in zip(st.columns(len(EXPORTS)), EXPORTS):
        col.download_button(f"Report ({label})", data=lambda fmt=fmt: report_data(rows, run_id, fmt),
                            file_name=f"report-{safe}.{fmt}", mime=mime, key=f"{key}-dl-{fmt}", on_click="ignore",
                            width="stretch")


def errors(results: Sequence[RunResult]) -> None:
    """One message per failed result; the other recipes' results still show below."""
    for r in results:
        if not r.error:
            continue
        where = f"{r.recipe} on {r.recording.id}"
        if not r.did_run:  # unavailable, load failed, bad input: in no figure
            st.warning(f"**{plain(where)}** did not run: {plain(r.error)}")
        else:
            st.error(f"**{plain(where)}** failed at stage *{plain(r.error_stage or 'run')}*: {plain(r.error)}")


def metrics(rows: Sequence[RunResult | dict], figs) -> None:
    """The verdict and the metrics table; ``figs``: the rows' corpus figures (:func:`workbench.aggregate.summarize`
    of every row, computed once per view, shared with the charts)."""
    st.html(CSS + tables.verdict_html(rows, figs) + tables.table_html(tables.metrics_table(rows, figs)))
    from workbench.aggregate import MIN_RECORDINGS

    st.caption("Best value per row highlighted. — means not measured (no reference, or the recipe failed). "
               f"WER CI: 95% percentile bootstrap over recordings, from {MIN_RECORDINGS} scored recordings on. "
               "WER: Whisper English normaliser + jiwer, corpus Σ(S+D+I)/ΣN over the final output. DER: pyannote.metrics. "
               "cpWER: meeteval. RTFx and latency exclude model load; cost = hardware $/hour ÷ RTFx, or the API price.")


def charts(figs, *, key: str) -> None:
    """The comparison charts of :mod:`workbench.charts` (the HTML report renders the same specifications to
    SVG): one faceted chart of the headline figures (each with its own scale) and one of latency per stage, two
    chart views, so a finished run renders fast. Unmeasured figures are named, never drawn as 0."""
    from workbench import charts as specs

    for i, spec in enumerate(specs.specs(figs)):
        st.vega_lite_chart(spec=spec, key=f"{key}-chart{i}")
    if missing := specs.not_measured(figs):
        st.caption("Not measured: " + "; ".join(plain(m) for m in missing))


def _reference(path: str | None):
    if not path:
        return None
    try:
        p = Path(path)
        return _load_reference(str(p), p.stat().st_mtime)
    except Exception:  # noqa: BLE001 - a moved reference means no diff or reference lane, not an error
        return None


@st.cache_data(max_entries=32, show_spinner=False)
def _load_reference(path: str, mtime: float):
    from workbench.references import load_reference

    return load_reference(path)


def _seek_to(state_key: str, value: float) -> None:
    st.session_state[state_key] = float(value)


def timeline(results: Sequence[RunResult], *, key: str) -> None:
    """Speech and speakers per lane over the waveform; a click on a segment (or the picker below) seeks the
    audio player to it."""
    import altair as alt
    import pandas as pd

    from workbench.dashboard.resources import recording_waveform

    first = results[0]
    scores = first.scores
    reference = _reference(scores and (scores.speaker_reference or scores.reference))
    segments = pd.DataFrame(tables.timeline(results, reference))
    path = first.recording.path
    # decoding hours of audio again just to draw it is not worth the memory: long recordings get lanes only
    wave = recording_waveform(path) if first.recording.duration_s <= WAVEFORM_MAX_S else None
    duration = wave[1] if wave else first.recording.duration_s
    seek_key = f"{key}-seek"
    x = alt.X("t:Q", title=None, scale=alt.Scale(domain=[0, duration]), axis=alt.Axis(labels=False, ticks=False))
    layers = []
    if wave and wave[0]:
        layers.append(alt.Chart(pd.DataFrame(wave[0]), height=70).mark_area(color="#7f8ea3").encode(
            x=x, y=alt.Y("lo:Q", title=None, axis=None), y2="hi:Q"))
    if not segments.empty:
        segments["label"] = segments["text"].str.slice(0, 120)
        pick = alt.selection_point(name="segment", fields=["start", "lane"], on="click")
        lanes = alt.Chart(segments, height=28 * segments["lane"].nunique() + 30).mark_bar(cornerRadius=2).encode(
            x=alt.X("start:Q", title="seconds", scale=alt.Scale(domain=[0, duration])), x2="end:Q",
            y=alt.Y("lane:N", title=None, sort=list(dict.fromkeys(segments["lane"]))),
            color=alt.Color("speaker:N", title="speaker"),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.55)),
            tooltip=["lane", "speaker", alt.Tooltip("start:Q", format=".2f"), alt.Tooltip("end:Q", format=".2f"), "label"],
        ).add_params(pick)
        layers.append(lanes)
    if not layers:
        st.caption("No timed segments to draw.")
        return

    def clicked() -> None:
        state = st.session_state.get(f"{key}-timeline")
        points = ((state or {}).get("selection") or {}).get("segment") or []
        if points:
            _seek_to(seek_key, points[0].get("start") or 0.0)

    chart = alt.vconcat(*layers, spacing=4).resolve_scale(x="shared") if len(layers) > 1 else layers[0]
    st.altair_chart(chart, key=f"{key}-timeline", on_select=clicked, selection_mode="segment" if not segments.empty else None,
                    width="stretch")
    if not segments.empty:
        options = segments.sort_values("start").to_dict("records")

        def picked() -> None:
            choice = st.session_state.get(f"{key}-jump")
            if choice is not None:
                _seek_to(seek_key, options[choice]["start"])

        st.selectbox("Jump to a segment", range(len(options)), index=None, key=f"{key}-jump", on_change=picked,
                     placeholder="click a segment above, or pick one here",
                     format_func=lambda i: f"{options[i]['start']:7.2f} s · {options[i]['lane']} · {options[i]['label'][:70]}")
    start = st.session_state.get(seek_key, 0.0)
    if Path(path).is_file():
        mime = mimetypes.guess_type(path)[0] or "audio/wav"  # served as-is; the browser plays what it can
        st.audio(path, format=mime if mime.startswith(("audio/", "video/")) else "audio/wav", start_time=start,
                 autoplay=start > 0)
        st.caption(f"Player at {start:.2f} s.")
    else:
        st.caption("The recording is no longer on disk; no audio player.")


def _side_by_side(items: Sequence, per_row: int = 3):
    """(column, item) pairs laying ``items`` out ``per_row`` to a row."""
    for start in range(0, len(items), per_row):
        yield from zip(st.columns(per_row), items[start:start + per_row])


def transcripts(results: Sequence[RunResult]) -> None:
    """The reference and every recipe's scored text side by side, differences marked."""
    from workbench.report import diff_html

    reference = _reference(results[0].scores and results[0].scores.reference)
    ref_text = reference.text if reference is not None and reference.has_text else None
    columns = ([("reference", html.escape(ref_text))] if ref_text is not None else []) + [
        (r.recipe, diff_html(ref_text, tables.final_text(r)) if ref_text is not None
         else html.escape(tables.final_text(r)) or "<em>(empty)</em>") for r in results]
    for col, (name, body) in _side_by_side(columns):
        with col:
            st.markdown(f"**{plain(name)}**")
            st.html(f'{CSS}<div class="wb-tx">{body}</div>')
    if ref_text is not None:
        st.html(CSS + '<p class="wb-tx">Against the reference after Whisper normalisation: <span class="sub">substituted</span> '
                "(hover: the reference word), <del>deleted</del>, <ins>inserted</ins>.</p>")


def formatted(results: Sequence[RunResult]) -> None:
    shown = [(r, r.transcript) for r in results
             if r.transcript is not None and (r.transcript.formatted is not None or r.transcript.summary)]
    if not shown:
        st.caption("No recipe here formats its output (no formatter stage).")
        return
    for col, (r, t) in _side_by_side(shown):
        with col:
            st.markdown(f"**{plain(r.recipe)}**")
            st.html(f'{CSS}<div class="wb-pre">{html.escape(t.formatted or "") or "<em>(empty)</em>"}</div>')
            if t.summary:
                st.markdown("*Summary*")
                st.html(f'{CSS}<div class="wb-pre">{html.escape(t.summary)}</div>')


def provenance(results: Sequence[RunResult]) -> None:
    seen = {}
    for r in results:
        seen.setdefault(r.recipe, {"recipe_hash": r.recipe_hash, "recipe_path": r.recipe_path,
                                   "components": r.components, "versions": r.versions,
                                   "hardware": r.hardware, "cost": r.cost_json()})
    st.json(seen, expanded=False)


def render_run(rows: Sequence[dict], run_id: str, *, key: str) -> None:
    """Everything about one set of results (results.jsonl / store rows, read into objects once here; the report
    downloads embed the rows as they are). ``key`` keeps widget ids apart between views."""
    if not rows:
        st.info("No results in this run.")
        return
    from workbench.aggregate import as_results, recipe_key, summarize

    results = as_results(rows)
    recordings = list(dict.fromkeys(r.recording.path for r in results))
    ids = {r.recording.path: r.recording.id for r in results}
    st.markdown(f"Run {code(run_id)} · {len(recordings)} recording(s) · "
                f"{len({recipe_key(r) for r in results})} recipe(s)")
    figs = summarize(results)  # results that did not run enter no figure: they are counted
    errors(results)
    metrics(results, figs)
    export_buttons(rows, run_id, key=key)
    st.subheader("Charts")
    charts(figs, key=key)
    path = recordings[0]
    if len(recordings) > 1:
        path = st.selectbox("Recording", recordings, format_func=lambda p: ids[p], key=f"{key}-recording")
    one = [r for r in results if r.recording.path == path and r.did_run]
    st.subheader("Timeline")
    timeline(one, key=f"{key}-{recordings.index(path)}")
    st.subheader("Transcripts")
    transcripts(one)
    st.subheader("Formatted outputs and summaries")
    formatted(one)
    with st.expander("Provenance: recipes, models, versions, hardware"):
        provenance(results)
