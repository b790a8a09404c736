"""Entry script of the dashboard (``workbench dashboard`` runs ``streamlit run`` on it)."""

from pathlib import Path

import streamlit as st

from workbench.dashboard.access import gate
from workbench.dashboard.settings import settings

PAGES = Path(__file__).resolve().parent / "page_scripts"  # not "pages/": Streamlit would serve that folder as pages of its own

st.set_page_config(page_title="Speech workbench", layout="wide")
if not gate(settings().token):  # shared beyond this machine: nothing but the token field until it is given
    st.stop()
st.navigation([
    st.Page(PAGES / "compare.py", title="Compare", default=True),
    st.Page(PAGES / "runs.py", title="Runs"),
    st.Page(PAGES / "models.py", title="Models"),
]).run()
