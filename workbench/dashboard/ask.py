"""The Ask panel of the Compare page: type a free question about the recording shown, and every selected recipe
answers it side by side (recipe, answer, time).

Asking is a comparison run with the question (:func:`workbench.dashboard.compare.run_comparison`): queued like any
comparison, the models kept loaded in the server's pipeline pool reused, the results in ``results.jsonl`` and the
store (tags ``dashboard``), so the page then shows that run, and the blind Judge panel below can pair its answers.
The answers shown are those of the free question (id ``question``) in the run shown.

Answers are model output: they reach the page only through ``html.escape``; the question through
:func:`views.plain`.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from pathlib import Path

import streamlit as st

from workbench.dashboard import views
from workbench.formatting import MISSING, num


def answers_html(rows: Sequence[dict], recording: str) -> tuple[str | None, str]:
    """The free question asked in ``rows`` on ``recording`` (None if none was) and every recipe's answer to it as an
    escaped HTML table."""
    from workbench.aggregate import as_results, recipe_labels
    from workbench.session import FREE_QUESTION_ID

    e = html.escape
    results = [r for r in as_results(rows) if r.recording.path == recording]
    labels = recipe_labels(results)
    prompt, body = None, []
    for r in results:
        task = next((t for t in r.tasks or () if t.id == FREE_QUESTION_ID), None)
        if task is None and r.did_run:
            continue  # a run without the free question
        if task is not None:
            prompt = prompt or task.prompt
        if task is None:
            answer, time = f"(did not run: {r.error})", MISSING
        elif task.error:
            answer, time = f"(no answer: {task.error})", num(task.latency_s)
        else:
            answer, time = task.answer or "(empty)", num(task.latency_s)
        name = labels.get((r.recipe, r.recipe_hash)) or r.recipe
        body.append(f'<tr><th scope="row">{e(name)}</th><td class="wb-pre" style="text-align:left">{e(answer)}</td>'
                    f"<td>{e(time)}</td></tr>")
    if prompt is None:
        return None, ""
    head = "<tr><th>recipe</th><th>answer</th><th>time (s)</th></tr>"
    return prompt, f'<table class="wb-metrics" data-testid="wb-ask-answers">{head}{"".join(body)}</table>'


def panel(rows: Sequence[dict], run_id: str, recipes: Sequence[str], speakers: int | None, run: Callable, *,
          key: str = "ask") -> None:
    """The Ask panel for the run shown (``rows``: its store rows), asking the ``recipes`` selected on the page with
    ``run`` (the page's ``run_comparison``: passed in, so this module does not import the page), in a container of
    class ``st-key-<key>-panel``."""
    with st.container(key=f"{key}-panel"):
        _panel(rows, run_id, recipes, speakers, run, key)


def _panel(rows: Sequence[dict], run_id: str, recipes: Sequence[str], speakers: int | None, run: Callable,
           key: str) -> None:
    from workbench.aggregate import as_results

    st.subheader("Ask every recipe")
    results = as_results(rows)
    recordings = list(dict.fromkeys(r.recording.path for r in results))
    recording = st.session_state.get("compare-recording")  # the recording render_run shows, if it offers a choice
    if recording not in recordings:
        recording = recordings[0]
    prompt, table = answers_html(rows, recording)
    if prompt is not None:
        st.markdown(f"**Question:** {views.plain(prompt)}")
        st.html(views.CSS + table)
        st.caption("Time: the answering call(s) alone, after the recipe's one transcription of the recording.")
    if not Path(recording).is_file():
        st.caption("The recording is no longer on disk: nothing more can be asked about it.")
        return
    question = st.text_input("A question about this recording (every selected recipe answers it)",
                             key=f"{key}-question", max_chars=1000)
    if not st.button("Ask every recipe", key=f"{key}-run", disabled=not recipes):
        if not recipes:
            st.caption("Select recipes above to ask them.")
        return
    if not (question or "").strip():
        st.warning("Type a question first: nothing was asked.")
        return
    reference = next((r.scores.reference for r in results if r.recording.path == recording and r.scores
                      and r.scores.reference and Path(r.scores.reference).is_file()), None)
    asked = run(Path(recording), [Path(reference)] if reference else [], speakers, recipes,
                question=question.strip())
    if asked is not None:
        st.rerun()  # show the new run: its answers here, its pairs in the Judge panel
