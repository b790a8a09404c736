"""Who may use the dashboard: when ``workbench dashboard`` listens beyond this machine it sets a token, and a
session sees nothing but a token field until it gives the token (``?token=…`` in the address, or typed in).
The comparison is constant-time (:func:`hmac.compare_digest`); a session asks once."""

from __future__ import annotations

import hmac

import streamlit as st

AUTHORISED = "wb_authorised"  # session state: this session gave the right token


def token_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def gate(expected: str | None) -> bool:
    """True when this session may see the app; otherwise the page shows only the token field."""
    if not expected or st.session_state.get(AUTHORISED):
        return True
    given = st.query_params.get("token")
    if given is not None:
        del st.query_params["token"]  # not left in the address bar, history or links copied from it
        if token_matches(given, expected):
            st.session_state[AUTHORISED] = True
            return True
    st.title("Speech workbench")
    entered = st.text_input("Access token (printed where `workbench dashboard` was started)", type="password",
                            key="wb_token")
    if entered:
        if token_matches(entered, expected):
            st.session_state[AUTHORISED] = True
            st.rerun()
        st.error("That token is not right.")
    elif given is not None:
        st.error("The token in the address is not right.")
    return False
