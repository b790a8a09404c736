"""Exports (SegLST, CTM, RTTM, SRT, WebVTT): scoring the exported files with the field's libraries reproduces the
stored cpWER and DER, and every file reads back into the segments it came from.

The rows are real results.jsonl rows: a hand-made hypothesis of the pyannote sample, its words given speakers by
the workbench's own attribution, scored by ``workbench.scoring.score`` against the sample's STM and RTTM."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from meeteval.io import CTM, RTTM, STM, SegLST
from meeteval.wer import cpwer
from pyannote.core import Segment as PSegment, Timeline
from pyannote.database.util import load_rttm
from pyannote.metrics.diarization import DiarizationErrorRate
from typer.testing import CliRunner

from conftest import PYANNOTE_RTTM, PYANNOTE_STM, PYANNOTE_WAV
from workbench.cli import app
from workbench.datamodel import Recording, Segment, Transcript, Turn, Word
from workbench.errors import BadInputError
from workbench.exports import FORMATS, export_rows, parse_formats, safe_name, srt_escape
from workbench.metrics import normalize
from workbench.references import load_reference
from workbench.result import RunResult
from workbench.scoring import score
from workbench.speakers import attribute

DURATION = 30.0


def hypothesis() -> tuple[Transcript, tuple[Turn, ...]]:
    """The sample's words, evenly timed inside each reference line, with errors: one substituted, one dropped,
    one invented; grouped into ASR segments of five words; and diarization turns that are shifted, renamed,
    one confused, one missed and one invented."""
    ref = load_reference(PYANNOTE_STM)
    words = []
    for seg in ref.segments:
        tokens = seg.text.split()
        step = (seg.end - seg.start) / len(tokens)
        words += [Word(seg.start + j * step, seg.start + (j + 1) * step, tok, 0.9 - 0.01 * j) for j, tok in enumerate(tokens)]
    words[2] = Word(words[2].start, words[2].end, "Oh,", 0.5)
    del words[10]
    words.insert(20, Word(words[19].end, words[19].end + 0.05, "um", None))
    segments = tuple(Segment(ws[0].start, ws[-1].end, " ".join(w.text for w in ws), None, tuple(ws))
                     for ws in (words[i:i + 5] for i in range(0, len(words), 5)))
    names = {"speaker90": "SPEAKER_00", "speaker91": "SPEAKER_01"}
    turns = []
    for i, t in enumerate(load_reference(PYANNOTE_RTTM).segments):
        if i == 3:
            continue
        label = "SPEAKER_00" if i == 5 else names[t.speaker]
        turns.append(Turn(t.start + 0.2037, min(t.end + 0.3511, DURATION), label))  # not on a ms grid
    turns.append(Turn(1.0, 2.0, "SPEAKER_02"))
    turns.append(Turn(3.0, 3.0, "SPEAKER_02"))  # zero length: DER ignores it
    return Transcript(segments, "en", speaker_count_estimated=True), tuple(turns)


def as_row(result: RunResult) -> dict:
    return json.loads(json.dumps(result.to_json()))  # as results.jsonl holds it


def result(recipe: str, transcript: Transcript | None, *, recording_id: str = "sample", error: str | None = None,
           diarizes: bool = True) -> RunResult:
    refs = (load_reference(PYANNOTE_STM), load_reference(PYANNOTE_RTTM))
    scores = score(refs, transcript, DURATION, diarizes=diarizes, failed=error is not None)
    return RunResult(run_id="run1", recipe=recipe, recipe_hash="h" + recipe, pipeline="cascade",
                     recording=Recording(recording_id, str(PYANNOTE_WAV), DURATION, 16000, 1), transcript=transcript,
                     scores=scores, error=error, error_stage="asr" if error else None)


@pytest.fixture(scope="module")
def diarized_row() -> dict:
    transcript, turns = hypothesis()
    row = as_row(result("cascade", attribute(transcript, turns)))
    m = row["metrics"]
    assert m["cpwer"]["cpwer"] > 0.05 and m["cpwer"]["substitutions"] and m["cpwer"]["deletions"]
    assert all(d["der"] > 0.05 for d in m["der"]) and len(m["der"]) == 2
    return row


def normalized(seglst: SegLST, normalizer: str) -> SegLST:
    return seglst.map(lambda s: {**s, "words": normalize(s["words"], normalizer)})


def test_exported_seglst_scored_by_meeteval_reproduces_the_stored_cpwer(diarized_row, tmp_path):
    (done,) = export_rows([diarized_row], tmp_path, ["seglst"])
    hyp = SegLST(json.loads(done.written[0].read_text()))  # SegLST.load needs simplejson (meeteval[cli])
    ref = STM.load(PYANNOTE_STM).to_seglst()
    norm = diarized_row["metrics"]["normalizer"]
    got = cpwer(normalized(ref, norm), normalized(hyp, norm))["sample"]
    stored = diarized_row["metrics"]["cpwer"]
    assert float(got.error_rate) == pytest.approx(stored["cpwer"], abs=1e-9)
    assert (got.substitutions, got.deletions, got.insertions, got.length) == (
        stored["substitutions"], stored["deletions"], stored["insertions"], stored["reference_words"])
    assert (got.missed_speaker, got.falarm_speaker) == (stored["missed_speakers"], stored["falarm_speakers"])


@pytest.mark.parametrize("index", [0, 1])
def test_exported_rttm_scored_by_pyannote_reproduces_the_stored_der(diarized_row, tmp_path, index):
    (done,) = export_rows([diarized_row], tmp_path, ["rttm"])
    stored = diarized_row["metrics"]["der"][index]
    metric = DiarizationErrorRate(collar=stored["collar_s"], skip_overlap=stored["skip_overlap"])
    uem = Timeline([PSegment(0.0, diarized_row["recording"]["duration_s"])])
    got = metric(load_rttm(PYANNOTE_RTTM)["sample"], load_rttm(done.written[0])["sample"], uem=uem, detailed=True)
    assert got["diarization error rate"] == pytest.approx(stored["der"], abs=1e-9)
    assert got["total"] == pytest.approx(stored["total_s"], abs=1e-3)  # stored components are rounded to ms


def test_every_file_reads_back_with_its_library_into_the_same_segments(diarized_row, tmp_path):
    (done,) = export_rows([diarized_row], tmp_path)
    assert [p.name for p in done.written] == [f"sample.cascade{s}" for s in FORMATS.values()] and not done.skipped
    files = dict(zip(FORMATS, done.written))
    segments = diarized_row["transcript"]["segments"]
    assert len({s["speaker"] for s in segments}) >= 2

    seglst = SegLST(json.loads(files["seglst"].read_text()))
    assert [(s["session_id"], s["speaker"], s["start_time"], s["end_time"], s["words"]) for s in seglst] == [
        ("sample", s["speaker"], s["start"], s["end"], s["text"]) for s in segments]

    ctm = CTM.load(files["ctm"])
    words = [w for s in segments for w in s["words"]]
    assert [(line.filename, float(line.begin_time), float(line.begin_time + line.duration), line.word,
             None if line.confidence is None else float(line.confidence)) for line in ctm] == [
        ("sample", w[0], w[1], w[2], w[3]) for w in words]

    rttm = RTTM.load(files["rttm"])
    turns = [t for t in diarized_row["speakers"]["turns"] if t[1] > t[0]]
    assert len(turns) == len(diarized_row["speakers"]["turns"]) - 1  # the zero-length turn is left out
    assert [(line.filename, float(line.begin_time), float(line.begin_time + line.duration), line.speaker_id)
            for line in rttm] == [("sample", s, e, spk) for s, e, spk in turns]

    ms = lambda t: round(t, 3)  # noqa: E731 — SRT and WebVTT carry milliseconds
    srt = load_reference(files["srt"])
    assert [(c.start, c.end, c.text) for c in srt.segments] == [(ms(s["start"]), ms(s["end"]), s["text"]) for s in segments]
    vtt = load_reference(files["vtt"])
    assert [(c.start, c.end, c.speaker, c.text) for c in vtt.segments] == [
        (ms(s["start"]), ms(s["end"]), s["speaker"], s["text"]) for s in segments]


def test_meeteval_reads_the_seglst_file_itself(diarized_row, tmp_path):
    pytest.importorskip("simplejson", reason="meeteval's SegLST reader needs simplejson (meeteval[cli])")
    (done,) = export_rows([diarized_row], tmp_path, ["seglst"])
    assert SegLST.load(done.written[0], parse_float=float) == SegLST(json.loads(done.written[0].read_text()))


def test_times_are_exact_decimals_of_the_stored_floats(diarized_row, tmp_path):
    (done,) = export_rows([diarized_row], tmp_path, ["rttm", "ctm"])
    for path in done.written:
        at = 3 if path.suffix == ".rttm" else 2
        for line in path.read_text().splitlines():
            start, duration = line.split()[at:at + 2]
            assert len(start) < 20 and len(duration) < 20  # 0.4, never 0.40000000000000036
            assert Decimal(duration) >= 0


def test_a_result_object_exports_the_same_files_as_its_row(diarized_row, tmp_path):
    rows, objects = export_rows([diarized_row], tmp_path / "rows"), export_rows([RunResult.from_json(diarized_row)], tmp_path / "objects")
    assert [p.name for p in objects[0].written] == [p.name for p in rows[0].written] and len(rows[0].written) == 5
    assert [p.read_bytes() for p in objects[0].written] == [p.read_bytes() for p in rows[0].written]


UNTRUSTED = "<i>x</i> {\\an8}top --> \n\n2\n00:00:01,000 --> 00:00:02,000\ninjected & <b>bold</b> a < b"


def untrusted_row() -> dict:
    seg = Segment(0.5, 2.0, UNTRUSTED, "A <v> & B")
    return as_row(result("fmt", Transcript((seg,), "en"), diarizes=False))


def test_untrusted_text_cannot_add_cues_or_markup(tmp_path):
    (done,) = export_rows([untrusted_row()], tmp_path, ["srt", "vtt"])
    srt, vtt = (load_reference(p) for p in done.written)
    flat = " ".join(UNTRUSTED.split())
    assert [(s.start, s.end, s.speaker, s.text) for s in vtt.segments] == [(0.5, 2.0, "A <v> & B", flat)]
    assert len(srt.segments) == 1
    text = srt.segments[0].text
    assert "‹i›x‹/i›" in text and "｛\\an8｝top" in text and "‹b›bold‹/b›" in text and "a < b" in text
    assert "-->" not in text and "\n" not in done.written[0].read_text().split("\n", 3)[2]


def test_srt_escape_keeps_ordinary_text():
    assert srt_escape("Hello, world: 3 < 4 & {braces}") == "Hello, world: 3 < 4 & {braces}"


def test_failed_results_and_results_without_segments_are_skipped_with_a_reason(tmp_path):
    transcript, _ = hypothesis()
    failed = as_row(result("broken", transcript, error="boom"))
    empty = as_row(result("silent", Transcript((), "en", speaker_count_estimated=True)))
    unavailable = {**as_row(result("remote", None, error="unavailable: no OPENAI_API_KEY")), "error_stage": "check",
                   "error_kind": None}  # an old row: the kind is derived from the stage
    done = export_rows([failed, empty, unavailable], tmp_path)
    assert [e.written for e in done] == [(), (), ()]
    assert done[0].skipped == ("skipped: the result has an error (failed)",)
    assert done[1].skipped == ("skipped: the result has no segments",)
    assert done[2].skipped == ("skipped: the recipe did not run (unavailable)",)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_a_result_without_word_times_or_diarization_writes_no_ctm_or_rttm(tmp_path):
    row = as_row(result("llm", Transcript((Segment(1.0, 3.0, "Hello there."),), "en"), diarizes=False))
    (done,) = export_rows([row], tmp_path)
    assert [p.suffix for p in done.written] == [".json", ".srt", ".vtt"]
    assert done.skipped == ("ctm: no word times", "rttm: no diarization turns")


def test_untimed_segments_go_to_seglst_without_times_and_to_no_subtitle(tmp_path):
    row = as_row(result("llm", Transcript((Segment(None, None, "Hello there.", "A"),), "en"), diarizes=False))
    (done,) = export_rows([row], tmp_path, ["seglst", "srt", "vtt"])
    assert json.loads(done.written[0].read_text()) == [{"session_id": "sample", "speaker": "A", "words": "Hello there."}]
    assert done.skipped == ("srt: no timed segment with text", "vtt: no timed segment with text")


def test_rttm_is_written_for_what_der_used_and_not_for_speaker_labels_alone(tmp_path):
    labelled = Transcript((Segment(1.0, 3.0, "Hi.", "Speaker 1"), Segment(3.0, 4.0, "Yes.", "Speaker 2")), "en",
                          speaker_count_estimated=True)  # an audio-LLM's labels: no turns, no DER
    no_turns = Transcript((Segment(1.0, 3.0, "Hi."),), "en", speaker_count_estimated=True)  # diarized, found no one
    rows = [as_row(result("llm", labelled, diarizes=False)), as_row(result("cascade", no_turns))]
    assert rows[0]["speakers"] is not None and rows[0]["metrics"]["der"] is None
    assert rows[1]["metrics"]["der"][0]["der"] == 1.0
    done = export_rows(rows, tmp_path, ["rttm", "vtt"])
    assert done[0].skipped == ("rttm: no diarization turns",)
    assert [p.suffix for p in done[1].written] == [".rttm", ".vtt"]
    assert done[1].written[0].read_text() == ""  # no turns: DER counted all speech as missed


def test_names_are_file_safe_distinct_and_repeats_numbered(tmp_path):
    row = as_row(result("cascade", Transcript((Segment(1.0, 3.0, "Hi."),), "en"), recording_id="../a b/c"))
    done = export_rows([row, row], tmp_path, ["seglst"])
    names = [e.written[0].name for e in done]
    assert names[0].startswith("_a_b_c-") and names[0].endswith(".cascade.seglst.json")
    assert names[1] == names[0].replace(".cascade.", ".cascade-2.")
    assert all(p.parent == tmp_path for e in done for p in e.written)
    assert safe_name("a_b") != safe_name("a b") and safe_name("ok-1.x") == "ok-1.x"


def test_unknown_format_lists_the_known_ones():
    assert parse_formats(" SRT, vtt,srt") == ("srt", "vtt")
    with pytest.raises(BadInputError, match="unknown export format 'docx'; known: seglst, ctm, rttm, srt, vtt"):
        parse_formats("srt,docx")


runner = CliRunner()


def test_cli_exports_a_results_file_and_a_stored_run(diarized_row, tmp_path, monkeypatch):
    from workbench.store import ResultStore

    run_dir = tmp_path / "reports" / "run1"
    run_dir.mkdir(parents=True)
    failed = as_row(result("broken", None, error="boom"))
    (run_dir / "results.jsonl").write_text(json.dumps(diarized_row) + "\n" + json.dumps(failed) + "\n")
    res = runner.invoke(app, ["export", str(run_dir / "results.jsonl"), "--format", "seglst,rttm"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (run_dir / "export").iterdir()) == ["sample.cascade.rttm", "sample.cascade.seglst.json"]
    assert "broken: skipped: the result has an error (failed)" in res.output

    monkeypatch.chdir(tmp_path)
    with ResultStore(tmp_path / "store.sqlite") as store:
        store.add(diarized_row)
    res = runner.invoke(app, ["export", "run1", "--store", "store.sqlite", "--format", "vtt"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "reports" / "run1" / "export" / "sample.cascade.vtt").is_file()
    res = runner.invoke(app, ["export", "run1", "--store", "store.sqlite", "--out", "elsewhere", "--format", "srt"])
    assert res.exit_code == 0 and (tmp_path / "elsewhere" / "sample.cascade.srt").is_file()


@pytest.mark.parametrize("args, message", [
    (["run1", "--format", "docx"], "unknown export format 'docx'; known: seglst, ctm, rttm, srt, vtt"),
    (["run1", "--store", "missing.sqlite"], "no results store at missing.sqlite"),
    (["nope", "--store", "store.sqlite"], "run 'nope' has no results"),
])
def test_cli_bad_input_is_one_line_and_exit_2(diarized_row, tmp_path, monkeypatch, args, message):
    from workbench.store import ResultStore

    monkeypatch.chdir(tmp_path)
    with ResultStore(tmp_path / "store.sqlite") as store:
        store.add(diarized_row)
    res = runner.invoke(app, ["export", *args])
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())
    assert not (tmp_path / "reports").exists()
