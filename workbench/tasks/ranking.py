"""Blind human judgement: which pairs of answers can be judged, in what order they are shown, and the ranking of
recipes from the votes (:class:`workbench.store.Vote`).

**Pairs.** Two results of one run on the same recording (two recipe versions: name and hash) that both answered
the same question (same id) make a pair. An answer that did not come (the answering call failed) or is empty is
left out: there is nothing to compare. Which answer is shown as "Answer A" is drawn per pair from a seed (the
dashboard's per-session salt), so a rerun of the page never reshuffles what the reader is reading, and the next
pair offered is one with the fewest votes so far.

**Ranking.** A Bradley–Terry model fitted with ``choix.ilsr_pairwise_dense`` (maintained; iterative Luce
spectral ranking) over the votes' wins matrix. A tie counts as half a win each way (½ to each side; a decisive
vote is 1 to the winner). A weak regularisation (:data:`ALPHA`) keeps a recipe that
won every vote at a finite strength. The strength is the log-odds scale of the model, mean 0 over the ranked
recipes: a recipe 1.0 above another is expected to be preferred in e^1 / (1 + e^1) ≈ 73% of their comparisons.

**Interval.** A 95% percentile bootstrap over votes (:data:`BOOTSTRAP_SAMPLES` resamples of the votes with
replacement, drawn as multinomial counts, numpy's generator seeded with :data:`workbench.aggregate.SEED`, the model refitted on each): the
same votes always give the same interval. A recipe in fewer than :data:`workbench.aggregate.MIN_RECORDINGS`
votes gets no interval, with the reason (``too few votes (n=…)``), as every other interval of the workbench.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from workbench.aggregate import SEED, as_results, recipe_key, too_few
from workbench.result import RunResult
from workbench.store import Vote
from workbench.tasks.answers import TaskResult

ALPHA = 0.01  # choix's regularisation: a prior pulling every strength towards the mean
TOL = 1e-6  # convergence of the fit (L1 change of the strengths): far below what a vote moves
BOOTSTRAP_SAMPLES = 200  # each resample refits the model (~5 ms); 200 keep a vote's refresh in the dashboard short

Key = tuple[str, str]


@dataclass(frozen=True)
class Pair:
    """Two recipe versions' answers to one question on one recording of one run. ``first`` holds the smaller
    key (as :class:`~workbench.store.Vote` stores it)."""

    run_id: str
    recording_id: str
    recording_path: str
    question: TaskResult  # the first recipe's entry: prompt, kind, category, key
    first: Key
    second: Key
    first_answer: TaskResult
    second_answer: TaskResult

    @property
    def ident(self) -> tuple:
        """As :attr:`Vote.pair`: (run, recording path, question id, first, second)."""
        return self.run_id, self.recording_path, self.question.id, self.first, self.second

    def a_is_first(self, salt: str) -> bool:
        """Whether ``first`` is shown as "Answer A": a fair coin seeded by ``salt`` and the pair, the same on
        every call with the same salt."""
        digest = hashlib.sha256(repr((salt, self.ident)).encode("utf-8")).digest()
        return random.Random(digest).random() < 0.5

    def shown(self, salt: str) -> tuple[tuple[Key, TaskResult], tuple[Key, TaskResult]]:
        """((key, answer) shown as A, (key, answer) shown as B)."""
        first, second = (self.first, self.first_answer), (self.second, self.second_answer)
        return (first, second) if self.a_is_first(salt) else (second, first)

    def vote(self, salt: str, choice: str, voter: str | None = None) -> Vote:
        """The vote ``choice`` ("A", "B" or "tie") cast on this pair as shown with ``salt``."""
        (a, _), (b, _) = self.shown(salt)
        return Vote.cast(self.run_id, self.recording_id, self.recording_path, self.question.id, a, b, choice, voter)


def _answered(task: TaskResult) -> bool:
    return task.error is None and bool(task.answer and task.answer.strip())


def pairs(results: Sequence[RunResult | dict]) -> list[Pair]:
    """Every pair that can be judged blind in ``results`` (results.jsonl / store rows or objects), in a stable
    order: by run, recording, question, then the two keys."""
    by_item: dict[tuple[str, str], dict[Key, RunResult]] = {}
    for r in as_results(results):
        if r.did_run and r.tasks:
            by_item.setdefault((r.run_id, r.recording.path), {}).setdefault(recipe_key(r), r)
    out = []
    for (run_id, path), by_key in by_item.items():
        keys = sorted(by_key)
        answers = {k: {t.id: t for t in by_key[k].tasks if _answered(t)} for k in keys}
        questions = list(dict.fromkeys(t.id for k in keys for t in by_key[k].tasks))
        for question in questions:
            for i, first in enumerate(keys):
                for second in keys[i + 1:]:
                    one, two = answers[first].get(question), answers[second].get(question)
                    if one is not None and two is not None:
                        out.append(Pair(run_id, by_key[first].recording.id, path, one, first, second, one, two))
    return out


def vote_counts(votes: Iterable[Vote]) -> dict[tuple, int]:
    """Votes per pair (:attr:`Pair.ident`)."""
    counts: dict[tuple, int] = {}
    for v in votes:
        counts[v.pair] = counts.get(v.pair, 0) + 1
    return counts


def next_pair(candidates: Sequence[Pair], votes: Iterable[Vote], salt: str, skip: Iterable[tuple] = ()) -> Pair | None:
    """The pair to show next: one with the fewest votes (those in ``skip``, by ident, only when nothing else is
    left), drawn among them with ``salt`` so different readers start on different pairs; None when there is
    no pair."""
    if not candidates:
        return None
    counts, skipped = vote_counts(votes), set(skip)
    pool = [p for p in candidates if p.ident not in skipped] or list(candidates)
    fewest = min(counts.get(p.ident, 0) for p in pool)
    least = [p for p in pool if counts.get(p.ident, 0) == fewest]
    digest = hashlib.sha256(repr((salt, len(skipped), fewest)).encode("utf-8")).digest()
    return random.Random(digest).choice(least)


@dataclass(frozen=True)
class Standing:
    """One recipe version's place in the ranking."""

    key: Key
    strength: float  # Bradley–Terry log-strength, mean 0 over the ranked recipes
    interval: tuple[float, float] | None  # 95% bootstrap over votes; None with ``note``
    votes: int
    wins: int
    losses: int
    ties: int
    note: str | None = None

    def to_json(self) -> dict:
        return {"recipe": self.key[0], "recipe_hash": self.key[1], "strength": self.strength,
                "interval": list(self.interval) if self.interval else None, "votes": self.votes, "wins": self.wins,
                "losses": self.losses, "ties": self.ties, "note": self.note}


def _contributions(votes: Sequence[Vote], index: dict[Key, int]) -> np.ndarray:
    """Per vote, its wins matrix (``m[i, j]``: wins of i over j): 1 to the winner over the loser, ½ each way for a
    tie."""
    n = len(index)
    out = np.zeros((len(votes), n, n))
    for row, v in enumerate(votes):
        a, b = index[v.first], index[v.second]
        if v.vote == "tie":
            out[row, a, b] = out[row, b, a] = 0.5
        else:
            out[row, index[v.winner], index[v.loser]] = 1.0
    return out


def _fit(wins: np.ndarray) -> np.ndarray:
    import choix

    return np.asarray(choix.ilsr_pairwise_dense(wins, alpha=ALPHA, tol=TOL), dtype=float)


def rank(votes: Iterable[Vote]) -> list[Standing]:
    """The recipes in ``votes``, strongest first (ties in strength by name), each with its interval or the
    reason it has none."""
    votes = [v for v in votes if v.first != v.second]
    if not votes:
        return []
    keys = sorted({k for v in votes for k in (v.first, v.second)})
    index = {k: i for i, k in enumerate(keys)}
    contributions = _contributions(votes, index)
    strength = _fit(contributions.sum(axis=0))
    tally = {k: [0, 0, 0, 0] for k in keys}  # votes, wins, losses, ties
    for v in votes:
        for k in (v.first, v.second):
            tally[k][0] += 1
            tally[k][1 if v.winner == k else 2 if v.loser == k else 3] += 1
    intervals = _bootstrap(contributions, keys, index) if any(not too_few(tally[k][0], "votes") for k in keys) else {}
    out = []
    for k in keys:
        note = too_few(tally[k][0], "votes")
        out.append(Standing(k, float(strength[index[k]]), None if note else intervals.get(k), *tally[k], note=note))
    return sorted(out, key=lambda s: (-s.strength, s.key))


def _bootstrap(contributions: np.ndarray, keys: Sequence[Key], index: dict[Key, int]) -> dict[Key, tuple[float, float]]:
    """Each recipe's 95% percentile interval over fits to votes resampled with replacement (seeded)."""
    rng = np.random.default_rng(SEED)
    n = len(contributions)
    fits = []
    for counts in rng.multinomial(n, np.full(n, 1.0 / n), size=BOOTSTRAP_SAMPLES):
        wins = np.tensordot(counts.astype(float), contributions, axes=1)
        if ((wins + wins.T).sum(axis=1) == 0).any():  # a recipe drawn in no vote has no strength in this resample
            continue
        try:
            fits.append(_fit(wins))
        except RuntimeError:  # did not converge: this resample says nothing
            continue
    if not fits:
        return {}
    low, high = np.percentile(np.vstack(fits), [2.5, 97.5], axis=0)
    return {k: (float(low[index[k]]), float(high[index[k]])) for k in keys}
