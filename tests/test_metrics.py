"""WER/CER: edge cases, normalisation, corpus sums, and agreement with jiwer on normalised text."""

from __future__ import annotations

import random

import jiwer
import pytest
from whisper_normalizer.english import EnglishTextNormalizer

from workbench.errors import RecipeError
from workbench.metrics import ErrorCounts, char_errors, get_normalizer, normalize, score_text, word_errors

NORMALIZER = EnglishTextNormalizer()


def norm(text: str) -> str:
    return " ".join(NORMALIZER(text).split())


# --- edge cases -------------------------------------------------------------------------------


def test_empty_reference_and_empty_hypothesis():
    for counts in (word_errors("", ""), char_errors("", "")):
        assert counts == ErrorCounts()
        assert counts.errors == 0
        assert counts.rate is None


def test_empty_reference_with_words_counts_insertions_rate_undefined():
    w = word_errors("", "hello there world")
    assert w.insertions == 3
    assert w.errors == 3
    assert w.reference_length == 0
    assert w.rate is None  # undefined, not 0 and not infinity
    c = char_errors("", "hi you")
    assert c.insertions == len("hi you")
    assert c.rate is None


def test_empty_hypothesis_is_all_deletions():
    w = word_errors("the cat sat on the mat", "")
    assert (w.substitutions, w.deletions, w.insertions, w.hits) == (0, 6, 0, 0)
    assert w.reference_length == 6
    assert w.rate == 1.0
    c = char_errors("the cat", "")
    assert c.deletions == len("the cat") == c.reference_length
    assert c.rate == 1.0


def test_none_hypothesis_treated_as_empty():
    assert normalize(None) == ""  # type: ignore[arg-type]


def test_fillers_are_removed_by_whisper_english_normaliser():
    # Whisper's English normaliser drops hesitations ("uh", "um", "hmm", ...).
    assert norm("uh um") == ""
    assert normalize("uh um") == ""
    w = word_errors("uh um", "")
    assert w == ErrorCounts()
    assert w.rate is None
    # A hypothesis with fillers against an empty-after-normalisation reference costs nothing either.
    assert word_errors("uh um", "um uh hmm").errors == 0
    # ... but real words are insertions, and the rate stays undefined.
    w = word_errors("uh um", "hello")
    assert w.insertions == 1 and w.rate is None
    # Fillers in a normal sentence are not counted as errors.
    assert word_errors("so uh I went home", "so I went home").errors == 0


def test_identical_after_normalisation():
    w = word_errors("Hello, World!", "hello world")
    assert w.errors == 0
    assert w.hits == 2
    assert w.rate == 0.0
    assert char_errors("Hello, World!", "hello world").rate == 0.0


@pytest.mark.parametrize(
    "reference, hypothesis",
    [
        ("twenty", "20"),
        ("twenty one dollars", "$21"),
        ("colour", "color"),
        ("the colour of the centre", "the color of the center"),
        ("Mr. Smith", "mister smith"),
        ("I'm here", "I am here"),
    ],
)
def test_number_and_spelling_normalisation(reference, hypothesis):
    assert norm(reference) == norm(hypothesis)  # what whisper_normalizer itself does
    assert word_errors(reference, hypothesis).errors == 0
    assert char_errors(reference, hypothesis).errors == 0


def test_spoken_digit_runs_are_joined_by_the_normaliser():
    # A Whisper English normaliser quirk worth knowing: consecutive spoken numbers become one number.
    assert norm("one two three four") == "1234"
    assert word_errors("one two three four", "1234").errors == 0


def test_normalizer_none_keeps_case_and_punctuation():
    w = word_errors("Hello, World!", "hello world", normalizer="none")
    assert w.substitutions == 2
    assert w.rate == 1.0


def test_basic_normalizer_available():
    assert word_errors("Hello, World!", "hello world", normalizer="whisper-basic").errors == 0


def test_unknown_normalizer_is_a_recipe_error_listing_known():
    with pytest.raises(RecipeError, match="whisper-english"):
        get_normalizer("klingon")


def test_score_text_returns_words_and_chars():
    words, chars = score_text("a b c", "a x c")
    assert words == word_errors("a b c", "a x c")
    assert chars == char_errors("a b c", "a x c")
    assert words.substitutions == 1


def test_counts_are_consistent():
    w = word_errors("red green blue black", "red grin blue black white")
    assert w.substitutions + w.deletions + w.hits == w.reference_length == 4
    assert w.errors == w.substitutions + w.deletions + w.insertions


# --- sums across files ------------------------------------------------------------------------


def test_corpus_rate_sums_counts_and_differs_from_mean_of_rates():
    short = word_errors("hello", "goodbye")  # 1 error / 1 word: rate 1.0
    long = word_errors("a b c d e f g h i", "a b c d e f g h i")  # 0 errors / 9 words: rate 0.0
    total = short + long
    assert total.reference_length == 10
    assert total.errors == 1
    assert total.rate == pytest.approx(0.1)
    mean_of_rates = (short.rate + long.rate) / 2
    assert mean_of_rates == pytest.approx(0.5)
    assert total.rate != pytest.approx(mean_of_rates)


def test_sum_starts_from_zero():
    parts = [word_errors("a b", "a"), word_errors("c d", "c d e"), word_errors("", "f")]
    total = sum(parts)
    assert isinstance(total, ErrorCounts)
    assert total.deletions == 1
    assert total.insertions == 2
    assert total.reference_length == 4
    assert total.rate == pytest.approx(3 / 4)
    assert sum([], ErrorCounts()) == ErrorCounts()
    assert sum(parts, ErrorCounts()) == total


def test_adding_non_counts_is_a_type_error():
    with pytest.raises(TypeError):
        ErrorCounts() + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        1 + ErrorCounts()  # type: ignore[operator]


def test_empty_reference_files_add_insertions_to_the_corpus():
    total = word_errors("a b c d", "a b c d") + word_errors("", "x y")
    assert total.rate == pytest.approx(2 / 4)


# --- agreement with jiwer ---------------------------------------------------------------------

VOCAB = (
    "the a cat sat on mat Hello, World! colour color twenty 20 one two three uh um Mr. mister "
    "I'm going to gonna don't it's centre OK okay yes no! well... Chicago Texas hello? 5 five"
).split()


def _random_text(rng: random.Random) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(rng.randint(0, 12)))


def test_random_texts_agree_with_jiwer():
    rng = random.Random(1234)
    compared = 0
    for _ in range(200):
        ref, hyp = _random_text(rng), _random_text(rng)
        nr, nh = norm(ref), norm(hyp)
        w, c = word_errors(ref, hyp), char_errors(ref, hyp)
        if nr and nh:
            compared += 1
            assert w.rate == pytest.approx(jiwer.wer(nr, nh)), (ref, hyp)
            assert c.rate == pytest.approx(jiwer.cer(nr, nh)), (ref, hyp)
            out = jiwer.process_words(nr, nh)
            assert (w.substitutions, w.deletions, w.insertions, w.hits) == (
                out.substitutions, out.deletions, out.insertions, out.hits
            )
            assert w.reference_length == len(nr.split())
            assert c.reference_length == len(nr)
        elif nr:  # empty hypothesis: all deletions
            assert w.rate == 1.0 and w.deletions == len(nr.split())
            assert c.rate == 1.0 and c.deletions == len(nr)
        else:  # empty reference: undefined rate, insertions counted
            assert w.rate is None and c.rate is None
            assert w.insertions == len(nh.split())
            assert c.insertions == len(nh)
    assert compared > 100  # the property was really exercised
