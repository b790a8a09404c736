"""Speaker attribution: which diarization turn each ASR word (or segment) belongs to."""

from __future__ import annotations

from workbench.datamodel import Segment, Transcript, Turn, Word
from workbench.speakers import TurnIndex, attribute, speaker_texts


def words(*items):
    """``(start, end, text)`` triples as Words."""
    return tuple(Word(s, e, t) for s, e, t in items)


# --- TurnIndex.speaker_at ---------------------------------------------------------------------------


def test_speaker_with_most_overlap_wins():
    index = TurnIndex((Turn(0.0, 1.0, "A"), Turn(1.0, 3.0, "B")))
    assert index.speaker_at(0.7, 1.2) == "A"  # 0.3 s of A, 0.2 s of B
    assert index.speaker_at(0.9, 1.5) == "B"  # 0.1 s of A, 0.5 s of B
    assert index.speaker_at(0.2, 0.4) == "A"
    assert index.speaker_at(2.0, 2.5) == "B"


def test_overlap_is_summed_per_speaker_across_turns():
    # A has two short turns around B's: together they overlap the word more than B does.
    index = TurnIndex((Turn(0.0, 1.0, "A"), Turn(1.0, 1.5, "B"), Turn(1.5, 3.0, "A")))
    assert index.speaker_at(0.8, 1.9) == "A"  # A: 0.2 + 0.4, B: 0.5


def test_overlapping_turns_pyannote_style():
    # pyannote/RTTM style: turns overlap, and a long early turn spans later ones (the running maximum
    # of ends must keep it visible to look-ups that start after later turns began).
    turns = (Turn(0.0, 10.0, "long"), Turn(2.0, 3.0, "short"), Turn(4.0, 4.5, "blip"), Turn(8.0, 12.0, "late"))
    index = TurnIndex(turns)
    assert index.speaker_at(2.2, 2.8) in {"long", "short"}  # equal overlap: either is right
    assert index.speaker_at(5.0, 6.0) == "long"  # only the long turn covers it
    assert index.speaker_at(9.0, 11.5) == "late"  # late: 2.5 s, long: 1.0 s
    assert index.speaker_at(7.0, 8.5) == "long"  # long: 1.5 s, late: 0.5 s
    assert index.speaker_at(4.1, 4.4) in {"long", "blip"}  # a tie: either
    # two speakers talking over each other: the one covering more of the word wins
    index = TurnIndex((Turn(0.0, 5.0, "A"), Turn(4.0, 8.0, "B")))
    assert index.speaker_at(4.5, 5.5) == "B"  # A: 0.5 s, B: 1.0 s
    assert index.speaker_at(3.5, 4.4) == "A"  # A: 0.9 s, B: 0.4 s


def test_turns_given_out_of_order_are_sorted():
    index = TurnIndex((Turn(5.0, 6.0, "C"), Turn(0.0, 1.0, "A"), Turn(2.0, 3.0, "B")))
    assert [t.speaker for t in index.turns] == ["A", "B", "C"]
    assert index.speaker_at(2.1, 2.2) == "B"
    assert index.speaker_at(5.5, 5.6) == "C"


def test_no_overlap_gives_the_nearest_turn():
    index = TurnIndex((Turn(0.0, 1.0, "A"), Turn(5.0, 6.0, "B")))
    assert index.speaker_at(1.5, 2.0) == "A"  # in the gap, nearer A
    assert index.speaker_at(4.0, 4.5) == "B"  # in the gap, nearer B
    assert index.speaker_at(8.0, 9.0) == "B"  # after every turn
    index = TurnIndex((Turn(3.0, 4.0, "A"),))
    assert index.speaker_at(0.0, 0.5) == "A"  # before every turn


def test_no_turns_gives_none():
    assert TurnIndex(()).speaker_at(0.0, 1.0) is None


# --- attribute ---------------------------------------------------------------------------------------


def test_words_are_labelled_and_a_segment_is_split_where_the_speaker_changes():
    seg = Segment(0.0, 4.0, "hello there how are you", words=words(
        (0.0, 0.5, "hello"), (0.6, 1.0, "there"), (2.1, 2.5, "how"), (2.6, 3.0, "are"), (3.1, 3.5, "you")))
    turns = (Turn(0.0, 1.8, "A"), Turn(2.0, 4.0, "B"))
    out = attribute(Transcript(segments=(seg,), language="en"), turns)
    assert [w.speaker for w in out.words] == ["A", "A", "B", "B", "B"]
    assert [(s.speaker, s.text, s.start, s.end) for s in out.segments] == [
        ("A", "hello there", 0.0, 1.0),
        ("B", "how are you", 2.1, 3.5),
    ]
    assert [w.text for w in out.words] == ["hello", "there", "how", "are", "you"]  # no word lost or moved
    assert out.turns == turns and out.language == "en"
    assert out.speakers == ("A", "B")


def test_a_speaker_returning_starts_a_new_segment():
    seg = Segment(0.0, 3.0, "a b c", words=words((0.1, 0.4, "a"), (1.1, 1.4, "b"), (2.1, 2.4, "c")))
    turns = (Turn(0.0, 1.0, "A"), Turn(1.0, 2.0, "B"), Turn(2.0, 3.0, "A"))
    out = attribute(Transcript(segments=(seg,)), turns)
    assert [(s.speaker, s.text) for s in out.segments] == [("A", "a"), ("B", "b"), ("A", "c")]


def test_segments_without_words_get_a_speaker_by_span_and_untimed_ones_are_untouched():
    timed = Segment(2.0, 3.5, "no word times here")
    untimed = Segment(None, None, "no times at all")
    turns = (Turn(0.0, 2.2, "A"), Turn(2.2, 4.0, "B"))
    out = attribute(Transcript(segments=(timed, untimed)), turns)
    assert out.segments[0] == Segment(2.0, 3.5, "no word times here", "B")
    assert out.segments[1] is untimed


def test_no_turns_leave_the_transcript_unlabelled():
    seg = Segment(0.0, 1.0, "hi", words=words((0.0, 1.0, "hi")))
    out = attribute(Transcript(segments=(seg,)), ())
    assert out.segments == (seg,)
    assert out.turns == () and out.speakers == ()


def test_turns_are_stored_sorted():
    out = attribute(Transcript(), (Turn(3.0, 4.0, "B"), Turn(0.0, 1.0, "A")))
    assert out.turns == (Turn(0.0, 1.0, "A"), Turn(3.0, 4.0, "B"))


# --- speaker_texts -----------------------------------------------------------------------------------


def test_speaker_texts_group_per_speaker_in_order():
    transcript = Transcript(segments=(
        Segment(0.0, 1.0, "one two", "A", (Word(0.0, 0.4, "one", speaker="A"), Word(0.5, 1.0, "two", speaker="A"))),
        Segment(1.0, 2.0, "three", "B", (Word(1.0, 2.0, "three", speaker="B"),)),
        Segment(2.0, 3.0, "four", "A"),  # no word times: the segment's speaker
        Segment(3.0, 4.0, "five", None),  # unlabelled
        Segment(4.0, 5.0, "   ", "B"),  # blank: nothing
        Segment(5.0, 6.0, "six", "B", (Word(5.0, 6.0, "six", speaker="B"),)),
    ))
    assert speaker_texts(transcript) == {"A": "one two four", "B": "three six", "unknown": "five"}


def test_speaker_texts_of_an_attributed_transcript_keep_every_word():
    seg = Segment(0.0, 4.0, "a b c d", words=words((0.1, 0.4, "a"), (1.1, 1.4, "b"), (2.1, 2.4, "c"), (3.1, 3.4, "d")))
    out = attribute(Transcript(segments=(seg,)), (Turn(0.0, 1.0, "X"), Turn(1.0, 3.0, "Y"), Turn(3.0, 4.0, "X")))
    assert speaker_texts(out) == {"X": "a d", "Y": "b c"}


def test_speaker_texts_of_nothing():
    assert speaker_texts(Transcript()) == {}
