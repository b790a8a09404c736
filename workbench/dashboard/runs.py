"""The Runs page: earlier comparisons and batch results from the store, filtered by recipe or tag, corpus
charts over what the filters keep, any run opened in the compare view, the report of the selection."""

from __future__ import annotations

import streamlit as st

from workbench.dashboard import views
from workbench.dashboard.compare import SHOWN
from workbench.dashboard.settings import settings


def _load() -> tuple[list[dict], list[dict]]:
    from workbench.store import ResultStore

    path = settings().store
    if not path.exists():
        return [], []
    with ResultStore(path) as store:
        return store.runs(), store.rows()


def select(runs: list[dict], rows: list[dict], recipes: list[str], tags: list[str]) -> list[dict]:
    """The rows of the chosen recipes (all when none chosen) whose run or own tags include a chosen tag."""
    run_tags = {r["run_id"]: set(r["tags"]) for r in runs}
    return [r for r in rows if (not recipes or r["recipe"] in recipes)
            and (not tags or (run_tags.get(r["run_id"], set()) | set(r.get("tags") or [])) & set(tags))]


def page() -> None:
    views.page("Runs", _page)


def _page() -> None:
    import pandas as pd

    runs, rows = _load()
    if not runs:
        st.info(f"No runs yet in {views.code(settings().store)}. Run a comparison (Compare page) or "
                "`workbench batch`; both write there.")
        return
    left, right = st.columns(2)
    recipes = left.multiselect("Recipes", sorted({r["recipe"] for r in rows}), key="runs-recipes")
    tags = right.multiselect("Tags", sorted({t for r in runs for t in r["tags"]} | {t for r in rows for t in r.get("tags") or []}),
                             key="runs-tags")
    kept = select(runs, rows, recipes, tags)
    from workbench.aggregate import as_results, recipe_key, recipe_labels, summarize

    results = as_results(kept)  # read once; the report downloads embed the rows as the store holds them
    by_run: dict[str, list] = {}
    for r in results:
        by_run.setdefault(r.run_id, []).append(r)
    listed = [u for u in reversed(runs) if u["run_id"] in by_run]  # newest first
    labels = recipe_labels(results)  # name@short-hash where the selection holds several versions of a recipe
    table = pd.DataFrame([{
        "run": u["run_id"], "created": u["created_at"],
        "recipes": ", ".join(sorted({labels[recipe_key(r)] for r in by_run[u["run_id"]]})),
        "recordings": len({r.recording.path for r in by_run[u["run_id"]]}), "results": len(by_run[u["run_id"]]),
        "failed": sum(1 for r in by_run[u["run_id"]] if r.error), "tags": ", ".join(u["tags"]),
        "command": u["command"] or "",
    } for u in listed])
    st.caption(f"{len(listed)} run(s), {len(kept)} result(s) match.")
    if table.empty:
        return
    st.dataframe(table, hide_index=True, width="stretch")
    chosen = st.selectbox("Run", [u["run_id"] for u in listed], key="runs-run")
    if st.button("Open in compare view", type="primary", key="runs-open"):
        st.session_state[SHOWN] = {"run": chosen, "recipes": recipes or None}
        st.switch_page("page_scripts/compare.py")
    st.subheader("Across the selection")
    st.caption("Corpus figures over every result the filters keep (a recording in several runs counts each time), "
               "per recipe version: a recipe edited between runs shows as name@hash, one column per version.")
    figs = summarize(results)  # results that did not run enter no figure: they are counted
    views.metrics(results, figs)
    views.export_buttons(kept, "selection", key="runs")
    views.charts(figs, key="runs")
