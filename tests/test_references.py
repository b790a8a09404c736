"""Reference loaders and writers: every format, the writers' round trips, and every malformed case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.datamodel import Reference, Segment, Span, Word
from workbench.errors import ReferenceFormatError
from workbench.references import REFERENCE_FORMATS, load_reference, reference_to_json, write_rttm, write_stm

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "pyannote"
needs_sample = pytest.mark.skipif(not (SAMPLE / "sample.stm").exists(), reason="pyannote sample not present")


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    return p


def raises_at(path: Path, line: int | None) -> ReferenceFormatError:
    with pytest.raises(ReferenceFormatError) as info:
        load_reference(path)
    err = info.value
    assert path.name in str(err)
    assert err.line == line
    if line is not None:
        assert f"{path.name}:{line}:" in str(err)
    return err


# --- STM -------------------------------------------------------------------------------------------


@needs_sample
def test_stm_sample():
    ref = load_reference(SAMPLE / "sample.stm")
    assert ref.format == "stm" and ref.source == str(SAMPLE / "sample.stm")
    assert ref.timed and ref.has_text and ref.has_speakers
    assert len(ref.segments) == 13
    assert ref.speakers == ("Diane", "Sheila")
    first = ref.segments[0]
    assert (first.start, first.end, first.text, first.speaker) == (6.68, 7.16, "Hello?", "Diane")
    assert ref.segments[-1].text == "Oh, I don't hear that in New Jersey now."
    starts = [s.start for s in ref.segments]
    assert starts == sorted(starts)
    assert ref.text.startswith("Hello? Hello? Oh, hello.")


@needs_sample
def test_stm_sample_nonspeech_regions():
    ref = load_reference(SAMPLE / "sample.stm")
    regions = ref.nonspeech_regions(30.0)
    assert regions[0] == Span(0.0, 6.68)
    assert Span(7.16, 7.634) in regions
    assert regions[-1].end == 30.0


def test_stm_comments_labels_and_nonspeech(tmp_path):
    p = write(
        tmp_path,
        "a.stm",
        ";; CATEGORY \"0\" \"\" \"\"\n"
        ";; LABEL \"O\" \"Overall\" \"All\"\n"
        "\n"
        "rec A inter_segment_gap 0.0 1.5 \n"
        "rec A Bob 3.0 4.0 <o,f0,male> second   line\n"
        "rec A Alice 1.5 3.0 <o,f0,female> first line\n"
        "rec A Excluded_Region 4.0 5.0 <o> noise\n"
        "rec A Alice 5.0 6.0 IGNORE_TIME_SEGMENT_IN_SCORING\n"
        "rec A Bob 6.0 6.5\n",
    )
    ref = load_reference(p)
    assert [(s.start, s.end, s.speaker, s.text) for s in ref.segments] == [
        (1.5, 3.0, "Alice", "first line"),
        (3.0, 4.0, "Bob", "second line"),
        (6.0, 6.5, "Bob", ""),
    ]
    assert ref.nonspeech == (Span(0.0, 1.5), Span(4.0, 5.0), Span(5.0, 6.0))


# --- RTTM ------------------------------------------------------------------------------------------


@needs_sample
def test_rttm_sample_keeps_overlaps():
    ref = load_reference(SAMPLE / "sample.rttm")
    assert ref.format == "rttm" and ref.timed and not ref.has_text and ref.has_speakers
    assert len(ref.segments) == 10
    assert ref.speakers == ("speaker90", "speaker91")
    assert all(s.text == "" for s in ref.segments)
    first = ref.segments[0]
    assert (first.start, first.end, first.speaker) == (6.69, 7.12, "speaker90")
    # 18.05 + 3.44 by speaker90 overlaps 18.15 + 0.44 by speaker91: both kept.
    overlapping = [s for s in ref.segments if s.start in (18.05, 18.15)]
    assert [(s.speaker, s.end) for s in overlapping] == [("speaker90", 21.49), ("speaker91", 18.59)]


def test_rttm_other_types(tmp_path):
    p = write(
        tmp_path,
        "b.rttm",
        ";; comment\n"
        "SPKR-INFO f 1 <NA> <NA> <NA> adult_male A <NA>\n"
        "SPEAKER f 1 2.0 1.0 <NA> <NA> A <NA> <NA>\n"
        "LEXEME f 1 2.1 0.3 hello lex A <NA>\n"
        "NON-SPEECH f 1 0.0 2.0 <NA> noise <NA> <NA>\n"
        "NOSCORE f 1 5.0 1.0 <NA> <NA> <NA> <NA>\n"
        "SPEAKER f 1 0.5 1.0 <NA> <NA> B <NA>\n",
    )
    ref = load_reference(p)
    assert [(s.start, s.end, s.speaker) for s in ref.segments] == [(0.5, 1.5, "B"), (2.0, 3.0, "A")]
    assert ref.nonspeech == (Span(0.0, 2.0), Span(5.0, 6.0))


# --- SRT / VTT -------------------------------------------------------------------------------------


def test_srt(tmp_path):
    p = write(
        tmp_path,
        "c.srt",
        "\ufeff1\n00:00:01,000 --> 00:00:02,500\nHello <i>there</i>,\nworld.\n\n"
        "2\n00:00:03,000 --> 00:00:04,000\n\n"
        "3\r\n01:00:00,250 --> 01:00:01,000 X1:1 X2:2 Y1:1 Y2:2\r\n{\\an8}Late line\r\n",
    )
    ref = load_reference(p)
    assert ref.format == "srt" and ref.timed and not ref.has_speakers
    assert [(s.start, s.end, s.text) for s in ref.segments] == [
        (1.0, 2.5, "Hello there, world."),
        (3600.25, 3601.0, "Late line"),
    ]


def test_srt_without_cue_numbers(tmp_path):
    p = write(tmp_path, "d.srt", "00:00:05,000 --> 00:00:06,000\nb\n\n00:00:01,000 --> 00:00:02,000\na\n")
    assert [s.text for s in load_reference(p).segments] == ["a", "b"]


def test_vtt(tmp_path):
    p = write(
        tmp_path,
        "e.vtt",
        "\ufeffWEBVTT - a test\nKind: captions\n\n"
        "NOTE this is\na comment\n\n"
        "STYLE\n::cue { color: red }\n\n"
        "intro\n00:01.000 --> 00:02.500 align:start position:10%\n<v Roger Bingham>We are here &amp; <i>now</i></v>\n\n"
        "00:00:03.000 --> 00:00:04.000\n"
        "<v.loud Neil>Tom &lt;3 &gt; <b>bold</b>&nbsp;text\nmore <00:00:03.500><c.yellow>words</c>\n\n"
        "00:05.000 --> 00:06.000\n<v Ann>Hi</v> <v Bob>Hello</v>\n\n"
        "00:07.000 --> 00:08.000\n\n"
        "00:09.000 --> 00:10.000\nplain\n",
    )
    ref = load_reference(p)
    assert ref.format == "vtt" and ref.timed and ref.has_speakers
    assert [(s.start, s.end, s.speaker, s.text) for s in ref.segments] == [
        (1.0, 2.5, "Roger Bingham", "We are here & now"),
        (3.0, 4.0, "Neil", "Tom <3 > bold text more words"),
        (5.0, 6.0, "Ann", "Hi"),
        (5.0, 6.0, "Bob", "Hello"),
        (9.0, 10.0, None, "plain"),
    ]


def test_vtt_without_speakers(tmp_path):
    p = write(tmp_path, "f.vtt", "WEBVTT\n\n1\n00:00:00.500 --> 00:00:01.000\nhello\n")
    ref = load_reference(p)
    assert not ref.has_speakers
    assert ref.segments == (Segment(0.5, 1.0, "hello"),)


# --- text / JSON -----------------------------------------------------------------------------------


def test_text(tmp_path):
    ref = load_reference(write(tmp_path, "g.txt", "\ufeffHello  world.\nSecond line.\n"))
    assert ref.format == "text" and not ref.timed
    assert ref.segments == (Segment(None, None, "Hello world. Second line."),)
    assert ref.speech_spans() == ()
    assert ref.nonspeech_regions(10.0) is None


@pytest.mark.parametrize("content", ["", "  \n\t\n"])
def test_empty_text_means_no_speech(tmp_path, content):
    ref = load_reference(write(tmp_path, "h.txt", content))
    assert ref.segments == () and ref.text == ""
    assert ref.nonspeech_regions(5.0) == (Span(0.0, 5.0),)


def test_json(tmp_path):
    data = {
        "segments": [
            {"start": 2.0, "end": 3, "speaker": "B", "text": "second"},
            {"start": 0.5, "end": 1.5, "text": "first"},
        ],
        "nonspeech": [{"start": 0, "end": 0.5}],
    }
    ref = load_reference(write(tmp_path, "i.json", json.dumps(data)))
    assert ref.format == "json" and ref.timed and ref.has_text and ref.has_speakers
    assert ref.segments == (Segment(0.5, 1.5, "first"), Segment(2.0, 3.0, "second", "B"))
    assert ref.nonspeech == (Span(0.0, 0.5),)


def test_json_untimed(tmp_path):
    ref = load_reference(write(tmp_path, "j.json", '{"segments": [{"text": "b"}, {"text": "a"}]}'))
    assert not ref.timed and [s.text for s in ref.segments] == ["b", "a"]


def test_json_round_trip(tmp_path):
    ref = Reference(
        segments=(
            Segment(0.0, 1.0, "hi there", "A", words=(Word(0.0, 0.4, "hi", 0.9), Word(0.5, 1.0, "there"))),
            Segment(1.5, 2.0, "yes", None),
        ),
        nonspeech=(Span(2.0, 3.0),),
        timed=True,
        has_speakers=True,
    )
    p = write(tmp_path, "k.json", json.dumps(reference_to_json(ref)))
    back = load_reference(p)
    assert back.segments == ref.segments and back.nonspeech == ref.nonspeech
    assert (back.timed, back.has_text, back.has_speakers) == (True, True, True)


@needs_sample
def test_json_round_trip_keeps_who_spoke_when(tmp_path):
    ref = load_reference(SAMPLE / "sample.rttm")
    back = load_reference(write(tmp_path, "l.json", json.dumps(reference_to_json(ref))))
    assert back.segments == ref.segments and not back.has_text


# --- writers ---------------------------------------------------------------------------------------


@needs_sample
def test_stm_writer_round_trip(tmp_path):
    ref = load_reference(SAMPLE / "sample.stm")
    out = tmp_path / "out.stm"
    write_stm(ref, out, "sample")
    assert out.read_text().splitlines()[0] == "sample 1 Diane 6.680 7.160 Hello?"
    assert load_reference(out).segments == ref.segments


def test_stm_writer_unknown_speaker_and_gaps(tmp_path):
    ref = Reference(segments=(Segment(1.0, 2.0, "a  b"),), nonspeech=(Span(0.0, 1.0),), timed=True)
    out = tmp_path / "x.stm"
    write_stm(ref, out, "rec")
    assert out.read_text() == "rec 1 inter_segment_gap 0.000 1.000\nrec 1 unknown 1.000 2.000 a b\n"
    back = load_reference(out)
    assert back.segments == (Segment(1.0, 2.0, "a b", "unknown"),)
    assert back.nonspeech == ref.nonspeech


@needs_sample
def test_rttm_writer_round_trip(tmp_path):
    ref = load_reference(SAMPLE / "sample.rttm")
    out = tmp_path / "out.rttm"
    write_rttm(ref, out, "sample")
    assert out.read_text().splitlines()[0] == "SPEAKER sample 1 6.690 0.430 <NA> <NA> speaker90 <NA> <NA>"
    assert load_reference(out).segments == ref.segments


def test_rttm_writer_needs_times(tmp_path):
    ref = Reference(segments=(Segment(None, None, "x"),))
    with pytest.raises(ReferenceFormatError, match="without times"):
        write_rttm(ref, tmp_path / "y.rttm", "rec")
    out = tmp_path / "z.rttm"
    write_rttm(Reference(segments=(Segment(0.0, 1.0, ""),), timed=True), out, "rec")
    assert out.read_text() == "SPEAKER rec 1 0.000 1.000 <NA> <NA> unknown <NA> <NA>\n"


# --- errors ----------------------------------------------------------------------------------------


def test_formats_table():
    assert REFERENCE_FORMATS[".stm"] == "stm" and REFERENCE_FORMATS[".txt"] == "text"


def test_unknown_extension(tmp_path):
    err = raises_at(write(tmp_path, "a.docx", "x"), None)
    assert all(ext in str(err) for ext in REFERENCE_FORMATS)


def test_missing_file(tmp_path):
    err = raises_at(tmp_path / "nope.stm", None)
    assert "file not found" in str(err)


def test_not_utf8(tmp_path):
    err = raises_at(write(tmp_path, "latin.txt", "caf\u00e9\nna\u00efve".encode("latin-1")), 1)
    assert "not UTF-8" in str(err)


MALFORMED = [
    # STM
    ("stm", "r 1 A 0 1 ok\nr 1 A 2\n", 2, "field"),
    ("stm", "r 1 A 0 1 ok\n;; c\nr 1 A x 1 bad\n", 3, "not a number"),
    ("stm", "r 1 A -1 1 bad\n", 1, "negative"),
    ("stm", "\nr 1 A 2 1 bad\n", 2, "before start"),
    ("stm", "r 1 A 0 1 nan\nr 1 A 1 nan x\n", 2, "not a number"),
    ("stm", "r 1 A 0 1 <o,f0 oops\n", 1, "'>'"),
    ("stm", "r 1 A 0 1 a\nq 1 A 1 2 b\n", 2, "one reference file per recording"),
    # RTTM
    ("rttm", "SPEAKER f 1 0.0 1.0 <NA> <NA>\n", 1, "field"),
    ("rttm", "SPEAKER f 1 0.0 1.0 <NA> <NA> A <NA> <NA>\nSPEAKER f 1 1.0 abc <NA> <NA> A <NA> <NA>\n", 2, "duration"),
    ("rttm", "SPEAKER f 1 -2 1.0 <NA> <NA> A <NA> <NA>\n", 1, "negative"),
    ("rttm", "SPEAKER f 1 0 -1.0 <NA> <NA> A <NA> <NA>\n", 1, "negative"),
    ("rttm", ";; x\nWHO f 1 0 1 <NA> <NA> A <NA> <NA>\n", 2, "unknown RTTM type"),
    ("rttm", "SPEAKER f 1 0 1 <NA> <NA> <NA> <NA> <NA>\n", 1, "speaker"),
    # SRT
    ("srt", "1\n00:00:01,000 --> 00:00:02,000\na\n\n2\n00:00:03 --> 00:00:04,000\nb\n", 6, "bad start time"),
    ("srt", "1\n00:00:05,000 --> 00:00:04,000\na\n", 2, "before start"),
    ("srt", "1\n00:61:00,000 --> 00:62:00,000\na\n", 2, "bad start time"),
    ("srt", "1\n00:00:01,000 -->\na\n", 2, "no end time"),
    ("srt", "1\nHello\n00:00:01,000 --> 00:00:02,000\n", 2, "timing line"),
    ("srt", "1\n00:00:01,000 --> 00:00:02,000\na\n\njust text\n", 5, "timing line"),
    ("srt", "one\n00:00:01,000 --> 00:00:02,000\na\n", 1, "not a cue number"),
    ("srt", "1\n00:00:01,000 --> 00:00:02,000\na\n2\n00:00:03,000 --> 00:00:04,000\nb\n", 5, "blank line"),
    # VTT
    ("vtt", "00:01.000 --> 00:02.000\nhi\n", 1, "WEBVTT"),
    ("vtt", "\nWEBVTT\n\n00:01.000 --> 00:02.000\nhi\n", 1, "WEBVTT"),
    ("vtt", "WEBVTTX\n\n00:01.000 --> 00:02.000\nhi\n", 1, "WEBVTT"),
    ("vtt", "WEBVTT\n00:01.000 --> 00:02.000\nhi\n", 2, "blank line"),
    ("vtt", "WEBVTT\n\nNOTE x\n\n00:01,000 --> 00:02.000\nhi\n", 5, "bad start time"),
    ("vtt", "WEBVTT\n\n00:01.000 --> 1:00:02.000\nhi\n", 3, "bad end time"),
    ("vtt", "WEBVTT\n\n00:03.000 --> 00:02.000\nhi\n", 3, "before start"),
    ("vtt", "WEBVTT\n\nid\nno timing here\nhi\n", 4, "timing line"),
    # JSON
    ("json", '{\n  "segments": [\n    {"text": "a",}\n  ]\n}\n', 3, "invalid JSON"),
    ("json", "", 1, "invalid JSON"),
]


@pytest.mark.parametrize(("ext", "content", "line", "needle"), MALFORMED)
def test_malformed_line(tmp_path, ext, content, line, needle):
    err = raises_at(write(tmp_path, f"bad.{ext}", content), line)
    assert needle in str(err)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ([], "JSON object"),
        ({}, "segments: Field required"),
        ({"segments": [{"text": "a"}, {"start": "1", "end": 2, "text": "b"}]}, "segments[1].start"),
        ({"segments": [{"start": 1, "text": "a"}]}, "segments[0]: give both start and end"),
        ({"segments": [{"start": 2, "end": 1, "text": "a"}]}, "segments[0]: end 1 is before start 2"),
        ({"segments": [{"start": -1, "end": 1, "text": "a"}]}, "segments[0].start"),
        ({"segments": [{"strat": 0, "text": "a"}]}, "segments[0].strat: Extra inputs"),
        ({"segments": [{"text": 5}]}, "segments[0].text"),
        ({"segments": [{"start": 0, "end": 1, "text": "a"}, {"text": "b"}]}, "segments[1] has no start/end"),
        ({"segments": [], "nonspeech": [{"start": 3, "end": 1}]}, "nonspeech[0]"),
        ({"segments": [{"start": 0, "end": 1, "words": [{"start": 0, "end": 1}]}]}, "segments[0].words[0].text"),
    ],
)
def test_json_schema_errors(tmp_path, data, needle):
    err = raises_at(write(tmp_path, "s.json", json.dumps(data)), None)
    assert needle in str(err)


def test_no_raw_exceptions_on_garbage(tmp_path):
    """Odd but decodable input never escapes as anything but ReferenceFormatError."""
    garbage = ["-->", "1\n-->\n", "\x00\x01", "WEBVTT\n\n-->", "SPEAKER", ";;", "< > <<<", "{", "[1,2]", "null"]
    for ext in REFERENCE_FORMATS:
        for i, content in enumerate(garbage):
            try:
                load_reference(write(tmp_path, f"g{i}{ext}", content))
            except ReferenceFormatError:
                pass
