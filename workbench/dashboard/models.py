"""The Models page: the model catalogue as a table, with the filters of `workbench models` (fits in N GB at a
precision, how it runs). Text comes from catalogue files users edit: it is shown in a dataframe (plain text)
or escaped with :func:`views.plain`."""

from __future__ import annotations

import streamlit as st

from workbench.dashboard import views

RUNS_LABELS = {"any": None, "here (a recipe is available on this machine)": "here", "transformers": "transformers",
               "server (vLLM, OpenAI-compatible)": "server", "api": "api"}


def page() -> None:
    views.page("Models", _page)


def _page() -> None:
    import pandas as pd

    from workbench.catalogue import PRECISIONS, load_catalogue, recipes_here, select, table_rows
    from workbench.errors import WorkbenchError

    try:
        catalogue = load_catalogue()
    except WorkbenchError as exc:
        st.error(views.plain(exc))
        return
    left, middle, right = st.columns(3)
    fits = left.number_input("Fits in (GB of accelerator memory, 0 = any)", min_value=0.0, value=0.0, step=4.0,
                             key="models-fits")
    precision = middle.selectbox("Precision", list(PRECISIONS), key="models-precision")
    runs = RUNS_LABELS[right.selectbox("Runs", list(RUNS_LABELS), key="models-runs")]
    available = recipes_here()  # cheap (recipe files and local checks), and current after a recipe is added
    kept = select(catalogue.rows, fits_gb=fits or None, precision=precision, runs=runs, available=available)
    st.caption(views.plain(f"{len(kept)} of {len(catalogue.rows)} models. — not confirmed; ≈ computed from the "
                           "parameter count (weights only, no activations or cache). Catalogue: "
                           + ", ".join(catalogue.paths)))
    if not kept:
        st.info("No model matches these filters.")
        return
    table = pd.DataFrame(table_rows(kept, precision, available))
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption("Add your own rows with WORKBENCH_MODELS=FILE; write a recipe for a row with "
               "`workbench models new-recipe ID`.")
