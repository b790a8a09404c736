"""Speaker metrics and scoring: DER (pyannote.metrics), cpWER (meeteval), formatting drift, label stripping.

Every figure is checked against the library that defines it, called directly here.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from meeteval.wer.wer.cp import cp_word_error_rate
from pyannote.core import Annotation, Segment as PSegment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

from conftest import PYANNOTE_RTTM, PYANNOTE_STM
from workbench.backends.formatter import Formatted, FormatterBackend
from workbench.datamodel import Reference, Segment, Transcript, Turn, Word
from workbench.metrics import ErrorCounts, normalize
from workbench.metrics.diarization import DER_COLLARS, CpWer, DerCounts, cpwer, der
from workbench.references import load_reference
from workbench.scoring import final_text, score, strip_speaker_labels

DURATION = 30.0


def rttm_reference(turns) -> Reference:
    return Reference(segments=tuple(Segment(s, e, "", spk) for s, e, spk in turns), timed=True, has_text=False,
                     has_speakers=True, source="hand.rttm", format="rttm")


def annotation(turns) -> Annotation:
    ann = Annotation()
    for i, (s, e, spk) in enumerate(turns):
        ann[PSegment(s, e), i] = spk
    return ann


def pyannote_der(ref_turns, hyp_turns, duration, collar):
    """pyannote.metrics, called directly: (rate, details)."""
    metric = DiarizationErrorRate(collar=collar, skip_overlap=False)
    details = metric(annotation(ref_turns), annotation(hyp_turns), uem=Timeline([PSegment(0.0, duration)]), detailed=True)
    return details["diarization error rate"], details


def assert_same_der(counts: DerCounts, ref_turns, hyp_turns, duration, collar):
    rate, details = pyannote_der(ref_turns, hyp_turns, duration, collar)
    assert counts.collar == collar and counts.skip_overlap is False
    assert counts.rate == pytest.approx(rate, abs=1e-9)
    assert counts.total == pytest.approx(details["total"], abs=1e-9)
    assert counts.missed == pytest.approx(details["missed detection"], abs=1e-9)
    assert counts.false_alarm == pytest.approx(details["false alarm"], abs=1e-9)
    assert counts.confusion == pytest.approx(details["confusion"], abs=1e-9)


HAND_REF = [(0.0, 4.0, "alice"), (4.0, 7.0, "bob"), (6.5, 9.0, "alice"), (12.0, 15.0, "bob")]  # one overlap
HAND_HYP = [(0.3, 3.8, "S0"), (3.8, 6.0, "S1"), (6.0, 9.5, "S0"), (10.0, 11.0, "S1"), (12.2, 14.0, "S0"), (14.0, 15.0, "S1")]


@pytest.mark.parametrize("collar", DER_COLLARS)
def test_der_equals_pyannote_on_hand_made_turns(collar):
    counts = der(rttm_reference(HAND_REF), tuple(Turn(*t) for t in HAND_HYP), 16.0, collar)
    assert_same_der(counts, HAND_REF, HAND_HYP, 16.0, collar)
    assert counts.missed > 0 and counts.false_alarm > 0 and counts.confusion > 0  # every kind exercised


def test_der_collar_values_are_none_and_quarter_second_each_side():
    assert DER_COLLARS == (0.0, 0.5)


def perturbed(turns):
    """A plausible system output: labels renamed, boundaries shifted, one turn mislabelled, one dropped,
    one invented."""
    names = {"speaker90": "SPEAKER_00", "speaker91": "SPEAKER_01"}
    out = []
    for i, (s, e, spk) in enumerate(turns):
        if i == 3:
            continue  # missed
        label = names[spk]
        if i == 5:
            label = "SPEAKER_00"  # confused
        out.append((round(s + 0.2, 3), round(min(e + 0.35, DURATION), 3), label))
    out.append((1.0, 2.0, "SPEAKER_02"))  # false alarm in the silence before anyone speaks
    return out


@pytest.mark.parametrize("collar", DER_COLLARS)
def test_der_equals_pyannote_on_the_real_sample_rttm(collar):
    ref = load_reference(PYANNOTE_RTTM)
    ref_turns = [(s.start, s.end, s.speaker) for s in ref.segments]
    assert len(ref_turns) == 10
    hyp = perturbed(ref_turns)
    counts = der(ref, tuple(Turn(*t) for t in hyp), DURATION, collar)
    assert_same_der(counts, ref_turns, hyp, DURATION, collar)
    assert 0.05 < counts.rate < 0.6


def test_collar_forgives_boundary_errors():
    ref = load_reference(PYANNOTE_RTTM)
    hyp = tuple(Turn(*t) for t in perturbed([(s.start, s.end, s.speaker) for s in ref.segments]))
    strict, forgiving = (der(ref, hyp, DURATION, c) for c in DER_COLLARS)
    assert forgiving.rate < strict.rate
    assert forgiving.total < strict.total  # the collar removes reference time from scoring


def test_perfect_hypothesis_scores_zero_even_with_overlap():
    ref = load_reference(PYANNOTE_RTTM)
    hyp = tuple(Turn(s.start, s.end, {"speaker90": "X", "speaker91": "Y"}[s.speaker]) for s in ref.segments)
    for collar in DER_COLLARS:
        counts = der(ref, hyp, DURATION, collar)
        assert counts.rate == pytest.approx(0.0, abs=1e-9)
        assert counts.total > 0


def test_no_hypothesis_turns_is_all_missed():
    ref = load_reference(PYANNOTE_RTTM)
    for collar in DER_COLLARS:
        counts = der(ref, (), DURATION, collar)
        assert counts.rate == pytest.approx(1.0)
        assert counts.missed == pytest.approx(counts.total)
        assert counts.false_alarm == 0 and counts.confusion == 0


def test_empty_reference_has_no_rate():
    counts = der(Reference(timed=True, has_speakers=True, format="rttm"), (Turn(0.0, 1.0, "A"),), 10.0, 0.0)
    assert counts.total == 0
    assert counts.rate is None  # undefined, not 0 and not infinite
    assert counts.false_alarm == pytest.approx(1.0)  # still counted, so it adds up across files


def test_der_counts_sum_across_files_and_the_rate_is_of_the_sums():
    ref = load_reference(PYANNOTE_RTTM)
    ref_turns = [(s.start, s.end, s.speaker) for s in ref.segments]
    a = der(ref, tuple(Turn(*t) for t in perturbed(ref_turns)), DURATION, 0.0)
    b = der(rttm_reference(HAND_REF), tuple(Turn(*t) for t in HAND_HYP), 16.0, 0.0)
    total = a + b
    assert total.total == pytest.approx(a.total + b.total)
    errors = a.missed + a.false_alarm + a.confusion + b.missed + b.false_alarm + b.confusion
    assert total.rate == pytest.approx(errors / (a.total + b.total))
    assert total.rate != pytest.approx((a.rate + b.rate) / 2)  # not a mean of per-file rates
    # counts with an empty reference add their errors but no total
    empty = DerCounts(0.0, False, 0.0, 2.0, 0.0, 0.0)
    assert (a + empty).rate == pytest.approx((a.missed + a.false_alarm + a.confusion + 2.0) / a.total)


def test_der_counts_of_different_collars_do_not_add():
    with pytest.raises(TypeError):
        DerCounts(0.0, False, 1.0) + DerCounts(0.5, False, 1.0)


# --- cpWER -------------------------------------------------------------------------------------------


def stm_speaker_texts(path=PYANNOTE_STM) -> dict[str, str]:
    ref = load_reference(path)
    out: dict[str, list[str]] = {}
    for seg in sorted(ref.segments, key=lambda s: s.start):
        out.setdefault(seg.speaker, []).append(seg.text)
    return {spk: " ".join(parts) for spk, parts in out.items()}


HYP = {
    "SPEAKER_00": "Hello. Oh hello, I didn't know you were there. Okay then I thought you know I heard a beep. "
                  "This is Diane in New Jersey. Oh I'm originally from Chicago also. I'm in New Jersey now though. "
                  "Oh, I don't hear that in New Jersey.",
    "SPEAKER_01": "Hello. Neither did I. And I'm Sheila in Texas, originally from Chicago. Well there isn't much "
                  "difference. At least you know they all call me a Yankee down here so what can I say",
}


def test_cpwer_equals_meeteval_on_normalised_per_speaker_texts():
    ref = load_reference(PYANNOTE_STM)
    got = cpwer(ref, HYP)
    expected = cp_word_error_rate(
        {k: normalize(v, "whisper-english") for k, v in stm_speaker_texts().items()},
        {k: normalize(v, "whisper-english") for k, v in HYP.items()},
        reference_sort=False, hypothesis_sort=False,
    )
    assert got.words.rate == pytest.approx(float(expected.error_rate))
    assert (got.words.substitutions, got.words.deletions, got.words.insertions) == (
        expected.substitutions, expected.deletions, expected.insertions)
    assert got.words.reference_length == expected.length == 87
    assert got.words.hits == expected.length - expected.substitutions - expected.deletions
    assert (got.missed_speakers, got.falarm_speakers) == (0, 0)
    assert 0 < got.words.rate < 0.1  # a few words dropped ("Oh", "that", "now")


def test_cpwer_does_not_depend_on_label_names():
    ref = load_reference(PYANNOTE_STM)
    swapped = {"zz": HYP["SPEAKER_00"], "aa": HYP["SPEAKER_01"]}
    assert cpwer(ref, swapped) == cpwer(ref, HYP)
    assert cpwer(ref, dict(reversed(list(HYP.items())))) == cpwer(ref, HYP)


def test_cpwer_with_the_speakers_swapped_is_worse_than_with_them_right():
    ref = load_reference(PYANNOTE_STM)
    all_one = {"A": HYP["SPEAKER_00"] + " " + HYP["SPEAKER_01"]}
    assert cpwer(ref, all_one).words.rate > cpwer(ref, HYP).words.rate
    assert cpwer(ref, all_one).missed_speakers == 1


def test_an_extra_hypothesis_speaker_counts_insertions_and_a_false_alarm_speaker():
    ref = Reference(segments=(Segment(0.0, 1.0, "red green blue", "A"), Segment(1.0, 2.0, "cat dog bird", "B")),
                    timed=True, has_speakers=True)
    got = cpwer(ref, {"x": "red green blue", "y": "cat dog bird", "z": "house tree"})
    assert got.words == ErrorCounts(substitutions=0, deletions=0, insertions=2, hits=6, reference_length=6)
    assert (got.missed_speakers, got.falarm_speakers) == (0, 1)
    assert got.words.rate == pytest.approx(2 / 6)


def test_cpwer_counts_sum():
    a = CpWer(ErrorCounts(1, 2, 3, 4, 7), 1, 0)
    b = CpWer(ErrorCounts(0, 1, 0, 9, 10), 0, 2)
    total = a + b
    assert total == CpWer(ErrorCounts(1, 3, 3, 13, 17), 1, 2)
    assert total.words.rate == pytest.approx(7 / 17)


# --- scoring.score -----------------------------------------------------------------------------------

STM_TO_LABEL = {"Diane": "SPEAKER_00", "Sheila": "SPEAKER_01"}
RTTM_TO_LABEL = {"speaker90": "SPEAKER_00", "speaker91": "SPEAKER_01"}


def diarized_transcript() -> Transcript:
    """A perfect diarized transcript of the pyannote sample, as the cascade would produce it."""
    stm = load_reference(PYANNOTE_STM)
    rttm = load_reference(PYANNOTE_RTTM)
    segments = tuple(Segment(s.start, s.end, s.text, STM_TO_LABEL[s.speaker]) for s in stm.segments)
    turns = tuple(Turn(s.start, s.end, RTTM_TO_LABEL[s.speaker]) for s in rttm.segments)
    return Transcript(segments=segments, language="en", turns=turns, speaker_count_estimated=False)


@pytest.mark.parametrize("order", ["stm-first", "rttm-first"])
def test_score_takes_der_from_the_rttm_and_cpwer_from_the_stm(order):
    refs = (load_reference(PYANNOTE_STM), load_reference(PYANNOTE_RTTM))
    if order == "rttm-first":
        refs = refs[::-1]
    s = score(refs, diarized_transcript(), DURATION)
    assert s.reference.endswith(".stm") and s.reference_format == "stm"
    assert s.speaker_reference.endswith(".rttm")
    assert [d.collar for d in s.der] == list(DER_COLLARS)
    rttm = load_reference(PYANNOTE_RTTM)
    ref_turns = [(x.start, x.end, x.speaker) for x in rttm.segments]
    hyp_turns = [(t.start, t.end, t.speaker) for t in diarized_transcript().turns]
    for d in s.der:
        assert_same_der(d, ref_turns, hyp_turns, DURATION, d.collar)
        assert d.rate == pytest.approx(0.0, abs=1e-9)
    assert s.cpwer.words.errors == 0 and s.cpwer.words.reference_length == 87
    assert s.words.errors == 0 and s.words.reference_length == 87


def test_score_without_an_rttm_takes_der_from_the_stm_turns():
    s = score((load_reference(PYANNOTE_STM),), diarized_transcript(), DURATION)
    assert s.speaker_reference.endswith(".stm")
    assert len(s.der) == 2 and s.cpwer is not None


def test_score_without_speakers_in_the_transcript_has_no_speaker_metrics():
    plain = Transcript(segments=(Segment(0.0, 30.0, load_reference(PYANNOTE_STM).text),))
    assert plain.speaker_count_estimated is None
    s = score((load_reference(PYANNOTE_STM), load_reference(PYANNOTE_RTTM)), plain, DURATION)
    assert s.der == ()
    assert s.cpwer is None
    assert s.words.errors == 0


def test_a_failed_diarizing_run_scores_as_everything_missed():
    s = score((load_reference(PYANNOTE_STM), load_reference(PYANNOTE_RTTM)), None, DURATION, diarizes=True)
    assert [d.rate for d in s.der] == [pytest.approx(1.0), pytest.approx(1.0)]
    assert s.cpwer.words.deletions == s.cpwer.words.reference_length == 87
    assert s.cpwer.words.rate == 1.0
    assert s.words.rate == 1.0 and s.drift is None


def test_a_failed_run_of_a_recipe_without_diarization_has_no_speaker_metrics():
    s = score((load_reference(PYANNOTE_STM), load_reference(PYANNOTE_RTTM)), None, DURATION, diarizes=False)
    assert s.der == () and s.cpwer is None
    assert s.words.rate == 1.0


def test_score_without_references_has_no_error_rates():
    s = score((), diarized_transcript(), DURATION)
    assert s.words is None and s.der == () and s.cpwer is None and s.reference is None
    assert s.hallucination is not None and s.hallucination.nonspeech_words is None  # needs a reference


# --- speaker labels and formatting drift -------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("SPEAKER_00: hello there", "hello there"),
    ("**Speaker 1:** hello there", "hello there"),
    ("**Speaker 1**: hello there", "hello there"),
    ("[SPEAKER_01]: hello there", "hello there"),
    ("Speaker A: hello there", "hello there"),
    ("Diane: hello there", "hello there"),
    ("the time: noon", "the time: noon"),
    ("We meet at the time: noon", "We meet at the time: noon"),
    ("Note: Diane said hi", "Note: Diane said hi"),
])
def test_strip_speaker_labels(text, expected):
    assert strip_speaker_labels(text, ("Diane", "Sheila")) == expected


def test_known_names_are_stripped_only_when_known_and_only_at_line_starts():
    assert strip_speaker_labels("Diane: hello") == "Diane: hello"
    text = "SPEAKER_00: hello, Diane: how are you\n\nSheila: fine, the time: noon"
    assert strip_speaker_labels(text, ("Sheila",)) == "hello, Diane: how are you\n\nfine, the time: noon"


def test_final_text_strips_the_transcripts_own_speaker_labels():
    t = Transcript(segments=(Segment(0.0, 1.0, "hi there", "Diane"),), turns=(Turn(0.0, 1.0, "Diane"),),
                   formatted="Diane: Hi there.", speaker_count_estimated=False)
    assert final_text(t) == "Hi there."
    assert final_text(Transcript(segments=(Segment(0.0, 1.0, "raw words"),))) == "raw words"


ASR_TEXT = "the quick brown fox jumps over the lazy sleeping dog"


class DroppingFormatter(FormatterBackend):
    """Labels the paragraph and drops two of its ten words ("lazy", "sleeping")."""

    def format(self, transcript):
        kept = [w for w in transcript.text.split() if w not in {"lazy", "sleeping"}]
        return Formatted("SPEAKER_00: " + " ".join(kept).capitalize() + ".", None)


def test_drift_is_the_wer_of_the_formatted_text_against_the_asr_text():
    words = tuple(Word(i * 0.5, i * 0.5 + 0.4, w, speaker="SPEAKER_00") for i, w in enumerate(ASR_TEXT.split()))
    transcript = Transcript(segments=(Segment(0.0, 5.0, ASR_TEXT, "SPEAKER_00", words),),
                            turns=(Turn(0.0, 5.0, "SPEAKER_00"),), speaker_count_estimated=False)
    formatted = DroppingFormatter(DroppingFormatter.Options()).format(transcript)
    transcript = replace(transcript, formatted=formatted.text)
    reference = Reference(segments=(Segment(None, None, ASR_TEXT),), has_text=True, source="ref.txt", format="text")
    s = score((reference,), transcript, 5.0)
    assert s.drift.rate == pytest.approx(0.2)
    assert (s.drift.deletions, s.drift.substitutions, s.drift.insertions) == (2, 0, 0)
    assert s.drift.reference_length == 10
    assert s.asr_words.errors == 0  # the ASR stage got everything
    assert s.words.deletions == 2  # the final output lost what the formatter dropped


def test_no_formatter_no_drift():
    reference = Reference(segments=(Segment(None, None, ASR_TEXT),), has_text=True, source="ref.txt", format="text")
    s = score((reference,), Transcript(segments=(Segment(0.0, 5.0, ASR_TEXT),)), 5.0)
    assert s.drift is None
    assert s.words == s.asr_words
