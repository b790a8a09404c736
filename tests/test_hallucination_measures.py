"""Hallucination measures on hand-made timed transcripts: words in non-speech (with the collar), stock
phrases, repetition loops, and how score() and results.jsonl carry them. Fast: no models."""

from __future__ import annotations

import json

import pytest

from workbench.datamodel import Recording, Segment, Span, Transcript, Word
from workbench.errors import BadInputError
from workbench.hallucination.measures import (
    DEFAULT_PHRASES,
    NONSPEECH_COLLAR_S,
    Hallucination,
    Repetition,
    load_phrases,
    measure,
    repetition,
    scored_nonspeech_s,
    stock_phrases,
    words_in_nonspeech,
)
from workbench.references import load_reference
from workbench.result import RunResult
from workbench.scoring import score

from conftest import PYANNOTE_STM

PHRASES = load_phrases()
DURATION_S = 30.0  # samples/pyannote/sample.wav
FIRST_SPEECH_S = 6.68  # first STM segment of samples/pyannote/sample.stm

HALLUCINATION_KEYS = {"nonspeech_words", "nonspeech_s", "words_per_hour_nonspeech", "stock_phrases",
                      "repeated_ngrams_beyond_reference", "longest_repeat_run"}


def w(start: float, end: float, text: str = "word") -> Word:
    return Word(start, end, text)


def transcript_of(*words: Word) -> Transcript:
    """One segment per word, each carrying its word timestamp."""
    return Transcript(segments=tuple(Segment(x.start, x.end, x.text, words=(x,)) for x in words))


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


# --- words in non-speech ----------------------------------------------------------------------


def test_collar_is_a_quarter_second():
    assert NONSPEECH_COLLAR_S == 0.25


def test_word_inside_a_gap_counts():
    inside = w(2.0, 2.5, "you")
    assert words_in_nonspeech((inside,), (Span(0.0, 5.0),)) == [inside]


def test_word_outside_every_gap_does_not_count():
    assert words_in_nonspeech((w(6.0, 6.5),), (Span(0.0, 5.0), Span(10.0, 20.0))) == []


def test_word_straddling_a_speech_boundary_within_the_collar_does_not_count():
    gaps = (Span(0.0, 5.0), Span(10.0, 20.0))
    # speech runs 5.0–10.0: midpoints 4.85 and 10.1 lie within 0.25 s of its edges
    assert words_in_nonspeech((w(4.6, 5.1), w(9.9, 10.3)), gaps) == []
    # just beyond the collar they count (midpoints 4.7 and 10.3)
    beyond = (w(4.5, 4.9), w(10.1, 10.5))
    assert words_in_nonspeech(beyond, gaps) == list(beyond)


def test_collar_can_be_changed():
    word = w(4.6, 5.1)  # midpoint 4.85
    assert words_in_nonspeech((word,), (Span(0.0, 5.0),), collar_s=0.0) == [word]
    assert words_in_nonspeech((word,), (Span(0.0, 5.0),), collar_s=0.2) == []


@pytest.mark.parametrize("gap", [Span(3.0, 3.4), Span(3.0, 3.5)])
def test_gap_no_longer_than_two_collars_scores_nothing(gap):
    word = w(3.15, 3.25)  # dead centre of the gap
    assert words_in_nonspeech((word,), (gap,)) == []
    assert scored_nonspeech_s((gap,)) == 0.0


def test_scored_nonspeech_subtracts_the_collars():
    gaps = (Span(0.0, 5.0), Span(10.0, 20.0), Span(30.0, 30.3))
    # no collar at the recording's own start: nobody's speech borders it
    assert scored_nonspeech_s(gaps) == pytest.approx(4.75 + 9.5 + 0.0)
    # nor at its end, when the duration is known
    assert scored_nonspeech_s((Span(25.0, 30.0),), duration_s=30.0) == pytest.approx(4.75)
    assert scored_nonspeech_s(gaps, collar_s=0.0) == pytest.approx(5.0 + 10.0 + 0.3)
    assert scored_nonspeech_s(()) == 0.0


# --- measure() --------------------------------------------------------------------------------


def test_words_per_hour_of_nonspeech():
    gap = Span(1.0, 1801.5)  # 1800 s (half an hour) once the collars are off
    words = (w(10.0, 10.4, "thank"), w(10.4, 10.8, "you"), w(900.0, 900.2, "so"), w(1801.4, 1801.5, "edge"))
    h = measure("thank you so edge", words, (gap,), "", PHRASES)
    assert h.nonspeech_words == 3  # the last word's midpoint is inside the end collar
    assert h.nonspeech_s == pytest.approx(1800.0)
    assert h.words_per_hour_nonspeech == pytest.approx(3 / 0.5)
    assert h.nonspeech_examples == ("thank", "you", "so")


def test_no_output_with_a_reference_is_zero_not_missing():
    h = measure("", (), (Span(1.0, 11.0),), "", PHRASES)
    assert h.nonspeech_words == 0
    assert h.nonspeech_s == pytest.approx(9.5)
    assert h.words_per_hour_nonspeech == 0.0
    assert h.words_per_hour_nonspeech is not None
    assert h.stock_phrases == ()
    assert h.repetition == Repetition(0, 1, "")


def test_text_without_word_timestamps_cannot_be_measured():
    transcript = Transcript(segments=(Segment(0.0, 5.0, "Thank you."),))  # segment times only, no words
    assert transcript.words == ()
    h = measure(transcript.text, transcript.words, (Span(0.0, 10.0),), "", PHRASES)
    assert h.nonspeech_words is None
    assert h.nonspeech_s is None
    assert h.words_per_hour_nonspeech is None
    assert h.stock_phrases == ("thank-you",)  # text-only measures still work


def test_filler_only_text_without_word_timestamps_is_not_counted_as_nothing():
    """The English normaliser drops "hmm"/"mm"; the model still said something, so it is not 0."""
    h = measure("Hmm. Mm.", (), (Span(0.0, 10.0),), "", PHRASES)
    assert h.nonspeech_words is None


def test_no_reference_cannot_be_measured():
    h = measure("You", (w(1.0, 1.3, "You"),), None, "", PHRASES)
    assert h.nonspeech_words is None
    assert h.nonspeech_s is None
    assert h.words_per_hour_nonspeech is None
    assert h.stock_phrases == ("you",)


def test_reference_with_no_nonspeech_has_no_rate():
    h = measure("hello", (w(1.0, 1.3, "hello"),), (), "hello", PHRASES)
    assert h.nonspeech_words == 0
    assert h.nonspeech_s == 0.0
    assert h.words_per_hour_nonspeech is None  # nothing to divide by


def test_measure_is_deterministic():
    words = (w(1.0, 1.3, "You"), w(2.0, 2.2, "mm"), w(2.2, 2.4, "mm"), w(2.4, 2.6, "mm"))
    args = ("You mm mm mm. Thank you for watching! Thank you for watching!", words, (Span(0.0, 6.0),),
            "hello there", PHRASES)
    first, second = measure(*args), measure(*args)
    assert first == second
    assert isinstance(first, Hallucination)
    assert first.words_per_hour_nonspeech == second.words_per_hour_nonspeech


# --- stock phrases ----------------------------------------------------------------------------


def test_shipped_phrase_list_loads():
    names = [p.name for p in PHRASES]
    assert len(names) == len(set(names))
    assert {"thanks-for-watching", "thank-you", "you", "subtitles-by", "subtitles-amara"} <= set(names)
    assert DEFAULT_PHRASES.is_file()


def test_thank_you_for_watching_flags_both_phrases():
    found = stock_phrases("Thank you for watching!", PHRASES)
    assert found == ["thanks-for-watching", "thank-you"]  # in list order, "you" not (not the whole output)


def test_you_alone_is_flagged_only_as_the_whole_output():
    assert stock_phrases("You", PHRASES) == ["you"]
    assert stock_phrases(" you. ", PHRASES) == ["you"]
    assert "you" not in stock_phrases("you know what", PHRASES)
    assert stock_phrases("you know what", PHRASES) == []


def test_amara_subtitles():
    assert stock_phrases("Subtitles by the Amara.org community", PHRASES) == ["subtitles-by", "subtitles-amara"]


def test_matching_ignores_case_and_punctuation():
    assert stock_phrases("THANK YOU... for WATCHING!!!", PHRASES) == ["thanks-for-watching", "thank-you"]
    assert stock_phrases("YOU!", PHRASES) == ["you"]
    assert stock_phrases("So.", PHRASES) == ["so"]
    assert stock_phrases("I don't know, I don't know.", PHRASES) == ["i-do-not-know-loop"]  # contraction expanded


def test_phrases_match_whole_words_only():
    assert stock_phrases("thank youth for watching", PHRASES) == []
    assert stock_phrases("", PHRASES) == []


def test_each_phrase_is_flagged_once():
    assert stock_phrases("Thank you. Thank you. Thank you.", PHRASES) == ["thank-you"]


def test_user_phrase_file_adds_rows(tmp_path):
    extra = write(tmp_path / "mine.toml", '[[phrase]]\nname = "outro"\ntext = "Bye, bye now."\n\n'
                                           '[[phrase]]\nname = "okay"\ntext = "okay"\nwhole = true\n')
    phrases = load_phrases(extra)
    assert len(phrases) == len(PHRASES) + 2
    assert phrases[: len(PHRASES)] == PHRASES
    assert stock_phrases("Okay, BYE bye now!", phrases) == ["outro"]
    assert stock_phrases("Okay.", phrases) == ["okay"]
    assert stock_phrases("Okay.", PHRASES) == []
    assert load_phrases(str(extra)) == phrases


@pytest.mark.parametrize("body", [
    '[[phrase]]\ntext = "no name here"\n',
    '[[phrase]]\nname = "no-text"\n',
    '[[phrase]]\nname = ""\ntext = "empty name"\n',
    '[[phrase]\nname = "broken"\ntext = "toml"\n',
    'phrase = "not a table"\n',
])
def test_malformed_phrase_file_names_the_file(tmp_path, body):
    bad = write(tmp_path / "bad_phrases.toml", body)
    with pytest.raises(BadInputError, match="bad_phrases.toml"):
        load_phrases(bad)


def test_missing_phrase_file_names_the_file(tmp_path):
    with pytest.raises(BadInputError, match="no_such_phrases.toml"):
        load_phrases(tmp_path / "no_such_phrases.toml")


# --- repetition -------------------------------------------------------------------------------


def test_repetition_loop_against_an_empty_reference():
    r = repetition("I don't know, I don't know, I don't know", "")
    assert r.excess > 0
    assert r.longest_run == 3
    assert r.example == "i do not know"


def test_repetition_the_reference_also_has_is_not_counted():
    text = "I don't know, I don't know, I don't know"
    assert repetition(text, text) == Repetition(0, 1, "")


def test_repetition_is_compared_n_gram_by_n_gram():
    """A reference that repeats one thing does not excuse a hypothesis looping another."""
    r = repetition("thank you thank you thank you", "no no no")
    assert (r.longest_run, r.example) == (3, "thank you")
    r = repetition("no no no no", "no no no")
    assert (r.longest_run, r.example) == (4, "no")


def test_filler_loop_is_seen():
    r = repetition("mm mm mm mm mm")
    assert r.longest_run == 5
    assert r.example == "mm"
    assert r.excess == 4  # one loop of "mm" five times in a row: four repeats beyond the first


def test_no_repetition():
    assert repetition("The quick brown fox jumps over the lazy dog.") == Repetition(0, 1, "")
    assert repetition("") == Repetition(0, 1, "")


def test_long_loop_is_fast():
    import time

    start = time.perf_counter()
    r = repetition("thank you " * 5000)
    assert time.perf_counter() - start < 5.0
    assert (r.longest_run, r.example) == (5000, "thank you")


# --- scoring and results.jsonl ----------------------------------------------------------------


def test_score_finds_a_word_before_the_first_speech():
    ref = load_reference(PYANNOTE_STM)
    assert min(s.start for s in ref.segments) == pytest.approx(FIRST_SPEECH_S)
    transcript = transcript_of(w(1.0, 1.3, "You"))
    h = score((ref,), transcript, DURATION_S).hallucination
    assert h.nonspeech_words == 1
    assert h.nonspeech_examples == ("You",)
    assert h.stock_phrases == ("you",)
    assert h.nonspeech_s == pytest.approx(scored_nonspeech_s(ref.nonspeech_regions(DURATION_S)))
    assert h.nonspeech_s >= FIRST_SPEECH_S - 2 * NONSPEECH_COLLAR_S


def test_score_does_not_blame_words_during_speech():
    ref = load_reference(PYANNOTE_STM)
    transcript = transcript_of(w(6.7, 7.1, "Hello?"), w(FIRST_SPEECH_S - 0.3, FIRST_SPEECH_S + 0.1, "oh"))
    h = score((ref,), transcript, DURATION_S).hallucination
    assert h.nonspeech_words == 0
    assert h.words_per_hour_nonspeech == 0.0


def test_score_with_an_empty_text_reference_treats_the_recording_as_nonspeech(tmp_path):
    ref = load_reference(write(tmp_path / "silence.txt", ""))
    assert ref.segments == ()
    transcript = transcript_of(w(1.0, 1.3, "Thank"), w(1.3, 1.6, "you."), w(29.7, 30.0, "edge"))
    scores = score((ref,), transcript, DURATION_S)
    h = scores.hallucination
    # no speech anywhere: no collar at the recording's edges, so every word counts
    assert h.nonspeech_words == 3
    assert h.nonspeech_s == pytest.approx(DURATION_S)
    assert h.words_per_hour_nonspeech == pytest.approx(3 / (DURATION_S / 3600))
    assert h.stock_phrases == ("thank-you",)


def test_score_with_an_empty_reference_and_no_output_is_zero(tmp_path):
    ref = load_reference(write(tmp_path / "silence.txt", "\n"))
    h = score((ref,), Transcript(), DURATION_S).hallucination
    assert h.nonspeech_words == 0
    assert h.words_per_hour_nonspeech == 0.0


def test_score_without_word_timestamps_or_without_reference_is_missing():
    ref = load_reference(PYANNOTE_STM)
    untimed = Transcript(segments=(Segment(0.0, 30.0, "Hello? Hello? Oh, hello."),))
    assert score((ref,), untimed, DURATION_S).hallucination.nonspeech_words is None
    h = score((), transcript_of(w(1.0, 1.3, "You")), DURATION_S).hallucination
    assert h.nonspeech_words is None
    assert h.stock_phrases == ("you",)


def run_result(scores) -> RunResult:
    recording = Recording(id="sample", path="sample.wav", duration_s=DURATION_S, sample_rate=16000, channels=1)
    return RunResult(run_id="run-1", recipe="r", recipe_hash="h", pipeline="cascade", recording=recording,
                     transcript=None, scores=scores)


def test_results_json_carries_the_measures(tmp_path):
    ref = load_reference(PYANNOTE_STM)
    scores = score((ref,), transcript_of(w(1.0, 1.3, "You")), DURATION_S)
    out = json.loads(json.dumps(run_result(scores).to_json()))["metrics"]["hallucination"]
    assert HALLUCINATION_KEYS <= set(out)
    assert out["nonspeech_words"] == 1
    assert out["stock_phrases"] == ["you"]
    assert out["nonspeech_s"] == pytest.approx(scores.hallucination.nonspeech_s, abs=1e-3)
    assert out["words_per_hour_nonspeech"] == pytest.approx(scores.hallucination.words_per_hour_nonspeech, abs=0.01)
    assert out["repeated_ngrams_beyond_reference"] == 0
    assert out["longest_repeat_run"] == 1
    assert out["nonspeech_collar_s"] == NONSPEECH_COLLAR_S


def test_results_json_missing_values_are_null_not_zero():
    ref = load_reference(PYANNOTE_STM)
    untimed = Transcript(segments=(Segment(0.0, 30.0, "Hello?"),))
    for scores in (score((ref,), untimed, DURATION_S), score((), untimed, DURATION_S)):
        out = json.loads(json.dumps(run_result(scores).to_json()))["metrics"]["hallucination"]
        assert HALLUCINATION_KEYS <= set(out)
        assert out["nonspeech_words"] is None
        assert out["nonspeech_s"] is None
        assert out["words_per_hour_nonspeech"] is None
        assert out["stock_phrases"] == []
        assert out["repeat_example"] is None


def test_results_json_keeps_a_true_zero():
    scores = score((), None, DURATION_S)
    assert scores.hallucination.nonspeech_words is None  # no reference at all
    ref_scores = score((load_reference(PYANNOTE_STM),), Transcript(), DURATION_S)
    out = run_result(ref_scores).to_json()["metrics"]["hallucination"]
    assert out["nonspeech_words"] == 0
    assert out["words_per_hour_nonspeech"] == 0.0


def test_punctuation_alone_is_not_a_word_in_nonspeech():
    words = (w(2.0, 2.1, "."), w(3.0, 3.1, "."), w(4.0, 4.2, "You"))
    assert [x.text for x in words_in_nonspeech(words, (Span(1.0, 10.0),))] == ["You"]


def test_a_phrase_the_reference_says_at_that_place_is_not_a_hallucination():
    said = "Well, that is all for today. Thank you."
    assert stock_phrases("well that is all for today thank you", PHRASES, said) == []
    assert stock_phrases("You", PHRASES, "you") == []  # a whole-output phrase that was really said


def test_a_phrase_the_reference_lacks_there_still_counts():
    reference = "thank you all for coming"
    # inserted after the speech: the reference's "thank you" is at the start, not here
    assert stock_phrases("thank you all for coming thank you", PHRASES, reference) == ["thank-you"]
    # substituted: the reference says something else at that place
    assert stock_phrases("thank you for watching", PHRASES, "we thank the jury for listening") == [
        "thanks-for-watching", "thank-you"]
    # partly said: "thank" is a hit, "you" is inserted
    assert stock_phrases("thank you", PHRASES, "thank") == ["thank-you"]


def test_without_a_reference_every_phrase_counts_as_before():
    assert stock_phrases("Thank you.", PHRASES, "") == ["thank-you"]
    assert stock_phrases("Thank you.", PHRASES) == ["thank-you"]


def test_measure_and_score_use_the_reference_for_stock_phrases(tmp_path):
    h = measure("thank you", (), None, "Thank you!", PHRASES)
    assert h.stock_phrases == ()
    assert measure("thank you", (), None, "", PHRASES).stock_phrases == ("thank-you",)
    ref = load_reference(write(tmp_path / "ref.txt", "Thank you very much."))
    scores = score([ref], Transcript(segments=(Segment(0.0, 2.0, "Thank you very much."),)), 30.0)
    assert scores.hallucination.stock_phrases == ()


def test_a_phrase_timed_in_reference_non_speech_counts_even_if_the_reference_says_it_elsewhere(tmp_path):
    ref = load_reference(write(tmp_path / "ref.stm", "rec 1 A 5.0 7.0 thank you very much\n"))
    said_there = transcript_of(w(5.1, 5.4, "Thank"), w(5.4, 5.7, "you"), w(5.7, 6.0, "very"), w(6.0, 6.4, "much."))
    assert score((ref,), said_there, 10.0).hallucination.stock_phrases == ()
    in_silence = transcript_of(w(1.0, 1.3, "Thank"), w(1.3, 1.6, "you."))  # aligns to the reference's words, but in silence
    assert score((ref,), in_silence, 10.0).hallucination.stock_phrases == ("thank-you",)
