"""The field's readers next to ours: where they agree (well-formed files, the writers' output) and the measured
reasons each reference reader is still written here (see the docstrings of workbench/references/*.py).

A ``test_reason_*`` test failing means a library no longer has the flaw that keeps our reader: read the
module's docstring and consider reading that format with the library.
"""

from __future__ import annotations

import decimal
from pathlib import Path

import pytest

from workbench.datamodel import Reference, Segment, Span
from workbench.references import load_reference, write_rttm, write_stm
from workbench.references.srt import _MARKUP

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "pyannote"
needs_sample = pytest.mark.skipif(not (SAMPLE / "sample.stm").exists(), reason="pyannote sample not present")

SRT_TEXT = (
    "1\n00:00:01,000 --> 00:00:02,500\nHello <i>there</i>,\nworld.\n\n"
    "2\n00:00:03,000 --> 00:00:04,000\n\n"
    "3\n01:00:00,250 --> 01:00:01,000 X1:1 X2:2 Y1:1 Y2:2\n{\\an8}Late line\n\n"
    "4\n01:00:02,000 --> 01:00:03,000\n<font color=\"red\">two</font>\nlines\n"
)
VTT_TEXT = (
    "WEBVTT - a test\nKind: captions\n\n"
    "NOTE this is\na comment\n\n"
    "STYLE\n::cue { color: red }\n\n"
    "intro\n00:01.000 --> 00:02.500 align:start position:10%\n<v Roger Bingham>We are here &amp; <i>now</i></v>\n\n"
    "00:00:03.000 --> 00:00:04.000\n"
    "<v.loud Neil>Tom &lt;3 &gt; <b>bold</b>&nbsp;text\nmore <00:00:03.500><c.yellow>words</c>\n\n"
    "00:07.000 --> 00:08.000\n\n"
    "01:00:09.000 --> 01:00:10.000\nplain\n"
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _words(text: str) -> str:
    return " ".join(text.split())


# --- agreement on well-formed files ------------------------------------------------------------------


@needs_sample
def test_stm_agrees_with_meeteval():
    from meeteval.io import STM

    ours = load_reference(SAMPLE / "sample.stm")
    theirs = sorted(STM.load(SAMPLE / "sample.stm", parse_float=float), key=lambda l: (l.begin_time, l.end_time))
    assert [(s.start, s.end, s.speaker, s.text) for s in ours.segments] == [
        (float(l.begin_time), float(l.end_time), l.speaker_id, _words(l.transcript)) for l in theirs
    ]


@needs_sample
def test_rttm_agrees_with_meeteval():
    from meeteval.io import RTTM

    ours = load_reference(SAMPLE / "sample.rttm")
    theirs = sorted(RTTM.load(SAMPLE / "sample.rttm", parse_float=float), key=lambda l: (l.begin_time, l.duration))
    assert [(s.start, s.end, s.speaker) for s in ours.segments] == [
        (float(l.begin_time), round(float(l.begin_time) + float(l.duration), 3), l.speaker_id) for l in theirs
    ]


def test_srt_agrees_with_srt(tmp_path):
    srt = pytest.importorskip("srt")
    ours = load_reference(_write(tmp_path, "a.srt", SRT_TEXT))
    theirs = [s for s in srt.parse(SRT_TEXT) if s.content.strip()]
    assert [(s.start, s.end, s.text) for s in ours.segments] == [
        (s.start.total_seconds(), s.end.total_seconds(), _words(_MARKUP.sub("", s.content))) for s in theirs
    ]


def test_vtt_agrees_with_webvtt_py(tmp_path):
    webvtt = pytest.importorskip("webvtt")
    import html
    import io

    ours = load_reference(_write(tmp_path, "a.vtt", VTT_TEXT))
    theirs = [c for c in webvtt.WebVTT.from_buffer(io.StringIO(VTT_TEXT), strict=True).captions if c.text.strip()]
    assert [(s.start, s.end, s.speaker, s.text) for s in ours.segments] == [
        (c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000, c.voice, _words(html.unescape(c.text)))
        for c in theirs
    ]


def test_writers_are_read_back_by_meeteval(tmp_path):
    """What write_stm / write_rttm produce is what meeteval (which scores cpWER) reads, and what we read."""
    from meeteval.io import RTTM, STM

    ref = Reference(
        segments=(Segment(0.5, 1.25, "hello  there", "Ann"), Segment(1.0, 2.0, "hi", "Bob Smith"), Segment(3.0, 3.5, "x")),
        nonspeech=(Span(2.0, 3.0),),
        timed=True,
    )
    write_stm(ref, tmp_path / "r.stm", "rec")
    write_rttm(ref, tmp_path / "r.rttm", "rec")
    stm = STM.load(tmp_path / "r.stm", parse_float=float)
    assert [(l.filename, l.speaker_id, l.begin_time, l.end_time, l.transcript) for l in stm] == [
        ("rec", "Ann", 0.5, 1.25, "hello there"), ("rec", "Bob_Smith", 1.0, 2.0, "hi"),
        ("rec", "inter_segment_gap", 2.0, 3.0, ""), ("rec", "unknown", 3.0, 3.5, "x"),
    ]
    rttm = RTTM.load(tmp_path / "r.rttm", parse_float=float)
    assert [(l.speaker_id, l.begin_time, l.duration) for l in rttm] == [("Ann", 0.5, 0.75), ("Bob_Smith", 1.0, 1.0), ("unknown", 3.0, 0.5)]
    back = load_reference(tmp_path / "r.stm")
    assert [(s.start, s.end, s.speaker, s.text) for s in back.segments] == [
        (0.5, 1.25, "Ann", "hello there"), (1.0, 2.0, "Bob_Smith", "hi"), (3.0, 3.5, "unknown", "x")]
    assert back.nonspeech == (Span(2.0, 3.0),)


# --- the measured reasons ------------------------------------------------------------------------------


def test_reason_meeteval_rejects_a_valid_stm_and_rttm_line(tmp_path):
    from meeteval.io.rttm import RTTMLine
    from meeteval.io.stm import STMLine

    with pytest.raises(ValueError):  # int("A"): the channel tested by the start time's digits
        STMLine.parse("rec A Bob 3 4 hi")
    with pytest.raises(ValueError):
        RTTMLine.parse("SPEAKER rec A 3 4 <NA> <NA> Bob <NA> <NA>")
    assert load_reference(_write(tmp_path, "a.stm", "rec A Bob 3 4 hi\n")).segments == (Segment(3.0, 4.0, "hi", "Bob"),)
    assert load_reference(_write(tmp_path, "a.rttm", "SPEAKER rec A 3 4 <NA> <NA> Bob <NA> <NA>\n")).segments == (
        Segment(3.0, 7.0, "", "Bob"),)


def test_reason_meeteval_checks_no_times_and_names_no_line():
    from meeteval.io.rttm import RTTMLine
    from meeteval.io.stm import STM, STMLine

    line = STMLine.parse("r 1 A 2 1 <o,f0,male> x")  # end before start, label kept in the text
    assert line.end_time < line.begin_time and line.transcript.startswith("<o,f0,male>")
    assert RTTMLine.parse("SPEAKER f 1 0 -1.0 <NA> <NA> A <NA> <NA>").duration < 0
    with pytest.raises(ValueError, match="not enough values"):  # no line number, no word on what is wrong
        STM.parse("r 1 A 0 1 ok\nr 1 A 2\n")
    with pytest.raises(decimal.InvalidOperation):  # SPKR-INFO's <NA> times
        RTTMLine.parse("SPKR-INFO f 1 <NA> <NA> <NA> adult_male A <NA>")
    with pytest.raises(AssertionError):  # the field count, checked by an assert
        RTTMLine.parse("SPEAKER f 1 0.0 1.0 <NA> <NA>")


def test_reason_srt_accepts_malformed_cues():
    srt = pytest.importorskip("srt")
    assert [s.start.total_seconds() for s in srt.parse("1\n00:00:03 --> 00:00:04,000\nb\n")] == [3.0]
    assert [s.start.total_seconds() for s in srt.parse("1\n00:61:00,000 --> 00:62:00,000\na\n")] == [3660.0]
    assert [s.end < s.start for s in srt.parse("1\n00:00:05,000 --> 00:00:04,000\na\n")] == [True]
    assert [s.content for s in srt.parse("1\n00:00:01,000 --> 00:00:02,000\na\n\njust text\n")] == ["a\n\njust text"]


def test_reason_webvtt_py_accepts_malformed_files():
    webvtt = pytest.importorskip("webvtt")
    import io

    def captions(text: str):
        return webvtt.WebVTT.from_buffer(io.StringIO(text), strict=True).captions

    assert len(captions("WEBVTTX\n\n00:01.000 --> 00:02.000\nhi\n")) == 1
    assert len(captions("WEBVTT\n00:01.000 --> 00:02.000\nhi\n")) == 1
    assert len(captions("WEBVTT\n\n00:03.000 --> 00:02.000\nhi\n")) == 1
    assert captions("WEBVTT\n\nid\nno timing here\nhi\n") == []
    two_voices = captions("WEBVTT\n\n00:05.000 --> 00:06.000\n<v Ann>Hi</v> <v Bob>Hello</v>\n")[0]
    assert (two_voices.voice, two_voices.text) == ("Ann", "Hi Hello")
