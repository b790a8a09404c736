"""Blind judgement: the pairs to judge, the order they are shown in, and the Bradley–Terry ranking from votes."""

from __future__ import annotations

import math

import pytest

from workbench.datamodel import Recording, Transcript
from workbench.result import RunResult
from workbench.store import Vote
from workbench.tasks.answers import TaskResult
from workbench.tasks.ranking import next_pair, pairs, rank

A, B, C = ("alpha", "ha"), ("beta", "hb"), ("gamma", "hc")


def vote(winner, loser, choice="A", question="q", run="run-1"):
    """A vote as shown: ``winner`` as Answer A, ``loser`` as Answer B."""
    return Vote.cast(run, "rec", "/rec.wav", question, winner, loser, choice)


def task(qid: str, answer: str, error: str | None = None) -> TaskResult:
    return TaskResult(qid, "content", "short", f"question {qid}?", answer, key={"answer": ["x"]}, error=error)


def result(recipe: str, tasks, *, path="/rec.wav", run="run-1", error=None) -> dict:
    return RunResult(run, recipe, f"h{recipe}", "fake", Recording(path.strip("/").split(".")[0], path, 10.0, 16000, 1),
                     Transcript(), tasks=tuple(tasks), error=error, error_stage="load" if error else None,
                     error_kind="load-failed" if error else None).to_json()


# --- ranking -------------------------------------------------------------------------------------


def test_a_recipe_that_always_wins_ranks_first_with_an_interval():
    votes = ([vote(A, B, question=f"q{i}") for i in range(6)] + [vote(C, A, "B", question=f"r{i}") for i in range(6)]
             + [vote(B, C, "tie", question=f"s{i}") for i in range(6)])
    ranking = rank(votes)
    assert [s.key for s in ranking][0] == A
    first = ranking[0]
    assert (first.votes, first.wins, first.losses, first.ties) == (12, 12, 0, 0)
    assert first.interval is not None and first.interval[0] <= first.strength <= first.interval[1]
    assert first.interval[0] > 0 and first.note is None
    assert all(s.interval is not None for s in ranking)
    assert sum(s.strength for s in ranking) == pytest.approx(0, abs=1e-6)  # mean 0
    assert rank(votes) == ranking  # seeded: the same votes give the same figures


def test_ties_are_half_a_win_each_way():
    ranking = rank([vote(A, B, "tie", question=f"q{i}") for i in range(8)])
    assert {s.key: (s.ties, s.wins) for s in ranking} == {A: (8, 0), B: (8, 0)}
    assert ranking[0].strength == pytest.approx(ranking[1].strength, abs=1e-6)
    # a win and a tie against each other: the winner is ahead, less far than after two wins
    one = {s.key: s.strength for s in rank([vote(A, B), vote(A, B, "tie", question="r")])}
    two = {s.key: s.strength for s in rank([vote(A, B), vote(A, B, question="r")])}
    assert 0 < one[A] - one[B] < two[A] - two[B]
    # half a win each way: a win and a tie are 1.5 wins to 0.5, as three wins to one (odds 3, log 3 apart)
    three = {s.key: s.strength for s in rank([vote(A, B, question=f"q{i}") for i in range(3)] + [vote(B, A, question="r")])}
    assert one[A] - one[B] == pytest.approx(three[A] - three[B], rel=0.05) == pytest.approx(math.log(3), rel=0.05)


def test_a_vote_for_b_counts_for_the_answer_shown_as_b():
    [first, second] = rank([vote(A, B, "B"), vote(B, A, "A", question="r")])
    assert first.key == B and (first.wins, second.losses) == (2, 2)


def test_too_few_votes_give_no_interval_and_say_why():
    votes = [vote(A, B, question=f"q{i}") for i in range(6)] + [vote(C, A, "B", question="r")]
    by = {s.key: s for s in rank(votes)}
    assert by[A].interval is not None and by[A].note is None  # 7 votes
    assert by[B].interval is not None and by[B].note is None  # 6 votes: enough
    assert by[C].interval is None and by[C].note == "too few votes (n=1)"
    few = rank([vote(A, B)])
    assert [s.note for s in few] == ["too few votes (n=1)"] * 2 and all(s.interval is None for s in few)
    assert rank([]) == []


# --- pairs ---------------------------------------------------------------------------------------


def test_pairs_are_two_recipes_answering_the_same_question_on_the_same_recording():
    rows = [result("beta", [task("q1", "two"), task("q2", "Sheila")]),
            result("alpha", [task("q1", "2"), task("q2", "", error="timeout")]),
            result("gamma", [task("q1", "three")]),
            result("broken", [], error="weights corrupt"),
            result("alpha", [task("q1", "2")], path="/other.wav"),  # alone on its recording
            result("beta", [task("q1", "2")], run="run-2")]  # another run
    found = pairs(rows)
    assert [(p.question.id, p.first[0], p.second[0]) for p in found] == [
        ("q1", "alpha", "beta"), ("q1", "alpha", "gamma"), ("q1", "beta", "gamma")]  # q2: alpha's call failed
    p = found[0]
    assert (p.first_answer.answer, p.second_answer.answer, p.recording_id, p.run_id) == ("2", "two", "rec", "run-1")
    assert p.question.prompt == "question q1?" and p.question.key == {"answer": ["x"]}


def test_the_order_shown_is_stable_per_salt_and_random_across_pairs():
    rows = [result(name, [task(f"q{i}", f"{name} {i}") for i in range(40)]) for name in ("alpha", "beta")]
    found = pairs(rows)
    assert len(found) == 40
    first_as_a = [p.a_is_first("session-1") for p in found]
    assert first_as_a == [p.a_is_first("session-1") for p in found]  # a rerun does not reshuffle
    assert 5 < sum(first_as_a) < 35  # both orders occur
    assert first_as_a != [p.a_is_first("session-2") for p in found]
    p = found[0]
    (a_key, a_answer), (b_key, b_answer) = p.shown("s")
    cast = p.vote("s", "A", voter="ann")
    assert cast.winner == a_key and cast.loser == b_key and cast.pair == p.ident and cast.voter == "ann"
    assert a_answer.answer.startswith(a_key[0])


def test_the_next_pair_is_one_with_the_fewest_votes():
    rows = [result(name, [task(f"q{i}", f"{name} {i}") for i in range(3)]) for name in ("alpha", "beta")]
    found = pairs(rows)
    votes = [found[0].vote("s", "A"), found[1].vote("s", "tie")]
    assert next_pair(found, votes, "s").ident == found[2].ident
    assert next_pair(found, votes, "s") == next_pair(found, votes, "s")  # stable
    assert next_pair(found, votes + [found[2].vote("s", "B")], "s", skip=[found[0].ident]).ident in {
        found[1].ident, found[2].ident}
    assert next_pair([], votes, "s") is None
