"""The blind Judge panel of the Compare page: two recipes' answers to the same question on the same recording, side
by side as "Answer A" and "Answer B", names hidden and order drawn per pair (seeded by a salt kept for the browser
session, so a rerun of the script never reshuffles what the reader is reading). A vote (A better, B better, tie)
goes to the store (:meth:`workbench.store.ResultStore.add_vote`), then the names are revealed and the ranking
(:func:`workbench.tasks.ranking.rank`: Bradley–Terry with a bootstrap interval over votes) is shown updated.
The next pair offered is one with the fewest votes.

Answers are model output: they reach the page only through ``html.escape`` (HTML) or :func:`views.plain`
(Markdown).
"""

from __future__ import annotations

import html
import logging
import secrets
from collections.abc import Sequence
from functools import lru_cache

import streamlit as st

from workbench.dashboard import views
from workbench.dashboard.settings import settings
from workbench.formatting import MISSING, num

log = logging.getLogger(__name__)

SALT = "wb_judge_salt"  # per browser session: which answer of a pair is shown as A
STATE = "wb_judge"  # {run_id: {"pair": ident, "voted": "A" | "B" | "tie" | None, "seen": [ident, ...]}}
ERROR = "wb_judge_error"  # a vote that could not be stored: said once on the next run of the script
CHOICES = (("A", "A is better"), ("B", "B is better"), ("tie", "Tie"))
SAID = {"A": "Answer A is better", "B": "Answer B is better", "tie": "a tie"}


def _store():
    from workbench.store import ResultStore

    return ResultStore(settings().store)


def _votes(run_id: str | None):
    with _store() as store:
        return store.votes(run_id)


@lru_cache(maxsize=32)
def _ranking(votes: tuple) -> list:
    """The ranking of these votes (a vote refits it; the same votes are not fitted twice)."""
    from workbench.tasks.ranking import rank

    return rank(votes)


def ranking_html(standings: Sequence, labels: dict) -> str:
    """The ranking as an escaped HTML table (strongest first)."""
    e = html.escape
    head = ("<tr><th>#</th><th>recipe</th><th>strength</th><th>95% interval</th><th>votes</th><th>won</th>"
            "<th>lost</th><th>tied</th></tr>")
    body = []
    for place, s in enumerate(standings, start=1):
        interval = (f"{s.interval[0]:+.2f} … {s.interval[1]:+.2f}" if s.interval else s.note or MISSING)
        cells = [str(place), labels.get(s.key) or f"{s.key[0]}@{s.key[1][:7]}", num(s.strength, "+.2f"), interval,
                 str(s.votes), str(s.wins), str(s.losses), str(s.ties)]
        body.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    return f'<table class="wb-metrics" data-testid="wb-ranking">{head}{"".join(body)}</table>'


def _key_text(key: dict | None) -> list[str]:
    """The answer key's fields as plain lines (what the answer is scored against)."""
    out = []
    for name in ("answer", "choices", "tolerance", "tolerance_s", "points", "rubric"):
        value = (key or {}).get(name)
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = "; ".join(str(v) for v in value)
        out.append(f"{name}: {value}")
    return out


def _cast(run_id: str, pair, salt: str, choice: str, voter_key: str) -> None:
    """Button callback: store the vote, then reveal the names (the vote is kept even if the page is closed now)."""
    try:
        with _store() as store:
            store.add_vote(pair.vote(salt, choice, (st.session_state.get(voter_key) or "").strip() or None))
    except Exception as exc:  # noqa: BLE001 - the user sees one line, the log keeps the traceback
        log.exception("storing a vote failed")
        st.session_state[ERROR] = f"The vote was not stored: {type(exc).__name__}: {exc}"
        return
    st.session_state[STATE][run_id]["voted"] = choice


def _next(run_id: str) -> None:
    state = st.session_state[STATE][run_id]
    state["seen"] = [*state.get("seen", []), state["pair"]]
    state["pair"], state["voted"] = None, None


def panel(rows: Sequence[dict], run_id: str, *, key: str = "judge") -> None:
    """The Judge panel over ``rows`` (one run's store rows), in a container of class ``st-key-<key>-panel``."""
    with st.container(key=f"{key}-panel"):
        _panel(rows, run_id, key)


def _panel(rows: Sequence[dict], run_id: str, key: str) -> None:
    from workbench.aggregate import recipe_labels
    from workbench.tasks.ranking import next_pair, pairs

    st.subheader("Judge answers blind")
    candidates = pairs(rows)
    if not candidates:
        st.caption("Nothing to judge blind here: no question of this run was answered by two recipes on the same "
                   "recording (ask one in the Ask panel above, or with `workbench ask … --tasks FILE`, or open such a run "
                   "from the Runs page).")
        return
    if error := st.session_state.pop(ERROR, None):
        st.error(views.plain(error))
    salt = st.session_state.setdefault(SALT, secrets.token_hex(8))
    state = st.session_state.setdefault(STATE, {}).setdefault(run_id, {"pair": None, "voted": None, "seen": []})
    votes = _votes(run_id)
    by_ident = {p.ident: p for p in candidates}
    pair = by_ident.get(state["pair"])
    if pair is None:
        pair = next_pair(candidates, votes, salt, skip=state.get("seen", ()))
        state["pair"], state["voted"] = pair.ident, None
    voted = state["voted"]
    (a_key, a), (b_key, b) = pair.shown(salt)
    counts = sum(1 for v in votes if v.pair == pair.ident)
    st.caption(f"{len(candidates)} pair(s) of answers in this run · this pair has {counts} vote(s) · recording "
               f"{views.plain(pair.recording_id)} · {views.plain(pair.question.category)}, "
               f"{views.plain(pair.question.kind)}. The recipes' names are shown after you vote.")
    st.markdown(f"**Question:** {views.plain(pair.question.prompt)}")
    if lines := _key_text(pair.question.key):
        with st.expander("Answer key (what the answer is scored against)"):
            st.html('<div class="wb-pre" data-testid="wb-answer-key">'
                    + "<br>".join(html.escape(x) for x in lines) + "</div>")
    for col, (label, answer) in zip(st.columns(2), (("A", a), ("B", b))):
        with col:
            st.markdown(f"**Answer {label}**")
            st.html(f'{views.CSS}<div class="wb-pre" data-testid="wb-answer-{label.lower()}">'
                    f"{html.escape(answer.answer)}</div>")
    labels = recipe_labels(rows)
    if voted is None:
        voter_key = f"{key}-voter"
        st.text_input("Your name (optional, stored with the vote)", key=voter_key, max_chars=80)
        for col, (choice, text) in zip(st.columns([1, 1, 1, 3])[:3], CHOICES):
            col.button(text, key=f"{key}-vote-{choice}", on_click=_cast, args=(run_id, pair, salt, choice, voter_key),
                       width="stretch")
    else:
        name = {k: labels.get(k) or k[0] for k in (a_key, b_key)}
        st.success(f"Your vote: {SAID[voted]}. Answer A was **{views.plain(name[a_key])}**, Answer B was "
                   f"**{views.plain(name[b_key])}**.")
        st.button("Next pair", key=f"{key}-next", on_click=_next, args=(run_id,), type="primary")
    everywhere = st.toggle("Rank over every stored vote (all runs)", key=f"{key}-all")
    ranked_votes = _votes(None) if everywhere else votes
    if not ranked_votes:
        st.caption("No votes yet" + ("" if everywhere else " in this run") + ": the ranking appears with the first.")
        return
    standings = _ranking(tuple(ranked_votes))
    st.html(views.CSS + ranking_html(standings, recipe_labels([{"recipe": n, "recipe_hash": h} for n, h in
                                                               (s.key for s in standings)])))
    from workbench.aggregate import MIN_RECORDINGS
    from workbench.tasks.ranking import BOOTSTRAP_SAMPLES

    st.caption(f"{len(ranked_votes)} vote(s). Bradley–Terry strengths (choix; log-odds, mean 0: +1 over another "
               "recipe ≈ preferred 73% of the time); a tie counts as half a win each way. 95% interval: bootstrap "
               f"over votes ({BOOTSTRAP_SAMPLES} resamples, seeded), from {MIN_RECORDINGS} votes of a recipe on.")
