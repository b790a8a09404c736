"""A run's results in the field's interchange formats, one file per recording × recipe and format.

- **SegLST** (``<recording>.<recipe>.seglst.json``, meeteval's format for speaker-attributed transcripts): one
  entry per hypothesis segment — ``session_id`` (the recording id), ``speaker`` (``unknown`` when unlabelled, as
  cpWER counts it), ``start_time``, ``end_time``, ``words`` (the segment's text). ``meeteval.wer.cpwer``
  on it and the reference gives the stored cpWER once each segment is normalised with the run's normaliser.
- **CTM** (``.ctm``): one line per word with its times and probability; a result without word times has none.
- **RTTM** (``.rttm``): the diarization turns DER was computed from (``speakers.turns``, not the speakers the
  words were given; turns of zero length, which DER ignores, are left out). An audio-LLM's speaker labels are not
  diarization turns (no DER is computed for them): such results write no RTTM. Score it with pyannote.metrics
  (``collar`` 0 and 0.5, overlap scored) over the UEM ``[0, duration]`` to get the stored DER.
- **SRT** / **WebVTT** (``.srt`` / ``.vtt``): one cue per timed segment with text; WebVTT carries the speaker as a
  voice tag ``<v SPEAKER_00>``.

CTM and RTTM are written with :mod:`meeteval.io` (times as exact decimals of the stored floats, so nothing is
rounded away), and so is SegLST (``meeteval.io.SegLST.dumps``; its JSON needs ``simplejson``, a dependency of the
workbench since meeteval's ``[cli]`` extra is the only one that pulls it in). SRT and WebVTT are
written here: neither ``srt`` nor ``webvtt-py`` is installed, and the writers are small (tested by reading every
file back with :mod:`workbench.references`). Model output is
untrusted, so cue text is escaped per format: WebVTT text and voice names are HTML-escaped (``&amp; &lt; &gt;``);
SubRip has no escape syntax, so cue text is written on one line (no blank line or timing line can appear in it),
``-->`` becomes ``->``, and markup players interpret (``<i>``, ``<font …>``, ``{\\an8}``) gets look-alike brackets
(``‹i›``, ``｛\\an8｝``) so it shows as text. Every file is written whole (a temporary file, then renamed).
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from workbench.datamodel import Segment
from workbench.errors import BadInputError
from workbench.result import RunResult

log = logging.getLogger(__name__)

#: format name -> file suffix (after ``<recording>.<recipe>``)
FORMATS = {"seglst": ".seglst.json", "ctm": ".ctm", "rttm": ".rttm", "srt": ".srt", "vtt": ".vtt"}
UNKNOWN_SPEAKER = "unknown"  # what cpWER (workbench.speakers.speaker_texts) calls unlabelled text
_MAX_NAME = 80


@dataclass(frozen=True)
class Exported:
    """What became of one result row: the files written and, per format not written, why not."""

    recording: str
    recipe: str
    written: tuple[Path, ...] = ()
    skipped: tuple[str, ...] = ()  # "ctm: no word times", or one line for a row skipped whole


def parse_formats(text: str) -> tuple[str, ...]:
    """``"seglst,ctm"`` -> ``("seglst", "ctm")``; an unknown name is a :class:`BadInputError` listing the known."""
    names = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        what = f"unknown export format {', '.join(map(repr, unknown))}" if unknown else "no export format given"
        raise BadInputError(f"{what}; known: {', '.join(FORMATS)}")
    return names


def safe_name(text: str) -> str:
    """``text`` as a file-name part: letters, digits, ``._-`` kept, anything else ``_``; when that changed the
    text (or cut it short), a short hash of the original is added so two ids never share a name."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", text).lstrip(".")[:_MAX_NAME] or "_"
    if clean != text:
        clean += "-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
    return clean


def _token(text: str) -> str:
    """A whitespace-free field for CTM / RTTM (``session_id``, speaker, word)."""
    return "_".join(str(text).split()) or "<NA>"


def _dec(value: float) -> Decimal:
    """The shortest decimal that reads back as ``value`` (``0.1``, not ``0.1000000000000000055…``)."""
    return Decimal(repr(float(value)))


def _timed(seg: Segment) -> bool:
    return seg.start is not None and seg.end is not None


def _segments(r: RunResult) -> tuple[Segment, ...]:
    return r.transcript.segments if r.transcript else ()


def _result(row: RunResult | dict) -> RunResult:
    return row if isinstance(row, RunResult) else RunResult.from_json(row)


# --- the formats, each from one result (a RunResult, or a results.jsonl row read through from_json) -----------

def seglst_segments(row: RunResult | dict) -> list[dict]:
    """SegLST entries, one per hypothesis segment in output order (untimed segments carry no times)."""
    r = _result(row)
    out = []
    for seg in _segments(r):
        entry = {"session_id": r.recording.id, "speaker": seg.speaker or UNKNOWN_SPEAKER}
        if _timed(seg):
            entry["start_time"], entry["end_time"] = float(seg.start), float(seg.end)
        entry["words"] = seg.text or ""
        out.append(entry)
    return out


def seglst_text(row: RunResult | dict) -> str:
    """The SegLST JSON file, as ``meeteval.io.SegLST.dumps`` writes it (a list of segments, two-space indent)."""
    from meeteval.io import SegLST

    return SegLST(seglst_segments(row)).dumps() + "\n"


def ctm_text(row: RunResult | dict) -> str | None:
    """One CTM line per timed word (``session 1 start duration word [probability]``); None without word times."""
    from meeteval.io import CTM
    from meeteval.io.ctm import CTMLine

    r = _result(row)
    session = _token(r.recording.id)
    lines = []
    for seg in _segments(r):
        for w in seg.words:
            if w.start is None or w.end is None or not str(w.text or "").strip():
                continue
            lines.append(CTMLine(session, 1, _dec(w.start), _dec(w.end) - _dec(w.start), _token(w.text),
                                 None if w.probability is None else _dec(w.probability)))
    if not lines:
        return None
    return CTM(lines).dumps()


def der_turns(row: RunResult | dict) -> list[tuple[float, float, str]] | None:
    """The diarization's turns (``speakers.turns``: what DER is computed from, not the words' speakers), zero-length
    turns dropped as pyannote does. None when there are none — unless DER was scored, which makes an empty turn
    list a real answer (everything missed). An audio-LLM that labels speakers has no turns and no DER: None."""
    r = _result(row)
    turns = [(float(t.start), float(t.end), str(t.speaker)) for t in (r.transcript.turns if r.transcript else ())
             if t.end > t.start]
    if turns or (r.scores and r.scores.der):
        return turns
    return None


def rttm_text(row: RunResult | dict) -> str | None:
    from meeteval.io import RTTM
    from meeteval.io.rttm import RTTMLine

    r = _result(row)
    turns = der_turns(r)
    if turns is None:
        return None
    session = _token(r.recording.id)
    lines = [RTTMLine(filename=session, channel="1", begin_time=_dec(s), duration=_dec(e) - _dec(s),
                      speaker_id=_token(spk)) for s, e, spk in turns]
    return RTTM(lines).dumps()


def _cues(row: RunResult | dict) -> list[tuple[float, float, str | None, str]]:
    """(start, end, speaker, text) of the timed segments with text, in time order."""
    cues = []
    for seg in _segments(_result(row)):
        text = " ".join(str(seg.text or "").split())
        if _timed(seg) and text:
            start = max(0.0, float(seg.start))
            cues.append((start, max(start, float(seg.end)), seg.speaker, text))
    return sorted(cues, key=lambda c: (c[0], c[1]))


def _stamp(seconds: float, separator: str) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


# What SubRip players read as markup (the same tags workbench.references.srt strips) and ASS overrides
_SRT_MARKUP = re.compile(r"</?(?:i|b|u|s|font)\b[^>]*>|\{\\[^}]*\}", re.IGNORECASE)
_LOOKALIKE = str.maketrans({"<": "‹", ">": "›", "{": "｛", "}": "｝"})


def srt_escape(text: str) -> str:
    """Cue text SubRip reads as text: one line, no ``-->``, markup given look-alike brackets."""
    text = " ".join(text.split()).replace("-->", "->")
    return _SRT_MARKUP.sub(lambda m: m.group(0).translate(_LOOKALIKE), text)


def srt_text(row: RunResult | dict) -> str | None:
    cues = _cues(row)
    if not cues:
        return None
    return "".join(f"{i}\n{_stamp(s, ',')} --> {_stamp(e, ',')}\n{srt_escape(text)}\n\n"
                   for i, (s, e, _, text) in enumerate(cues, start=1))


def vtt_escape(text: str) -> str:
    return html.escape(" ".join(text.split()), quote=False)


def vtt_text(row: RunResult | dict) -> str | None:
    cues = _cues(row)
    if not cues:
        return None
    blocks = ["WEBVTT\n"]
    for s, e, speaker, text in cues:
        voice = f"<v {vtt_escape(speaker)}>" if speaker and speaker.strip() else ""
        blocks.append(f"{_stamp(s, '.')} --> {_stamp(e, '.')}\n{voice}{vtt_escape(text)}\n")
    return "\n".join(blocks)


_WRITERS = {"seglst": seglst_text, "ctm": ctm_text, "rttm": rttm_text, "srt": srt_text, "vtt": vtt_text}
_WHY_NOT = {"ctm": "no word times", "rttm": "no diarization turns",
            "srt": "no timed segment with text", "vtt": "no timed segment with text"}


# --- a run -----------------------------------------------------------------------------------------------------

def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_rows(rows: Iterable[RunResult | dict], out_dir: str | os.PathLike[str],
                formats: Sequence[str] = tuple(FORMATS)) -> list[Exported]:
    """Write each result's files under ``out_dir`` as ``<recording>.<recipe><suffix>`` (results.jsonl / store rows
    are read through ``RunResult.from_json``); failed results and results without segments are skipped (said in
    :attr:`Exported.skipped`). A name taken earlier in the run (the same recording and recipe twice, as probe
    repeats are) gets ``-2``, ``-3``, …"""
    from workbench.result import DID_NOT_RUN

    out = Path(out_dir)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise BadInputError(f"unknown export format {', '.join(map(repr, unknown))}; known: {', '.join(FORMATS)}")
    results: list[Exported] = []
    taken: dict[str, int] = {}
    for row in rows:
        r = _result(row)
        recording, recipe = str(r.recording.id), str(r.recipe)
        if r.error:
            kind = r.kind
            why = f"the recipe did not run ({kind})" if kind in DID_NOT_RUN else f"the result has an error ({kind})"
            results.append(Exported(recording, recipe, skipped=(f"skipped: {why}",)))
            continue
        if not _segments(r):
            results.append(Exported(recording, recipe, skipped=("skipped: the result has no segments",)))
            continue
        stem = f"{safe_name(recording)}.{safe_name(recipe)}"
        taken[stem] = taken.get(stem, 0) + 1
        if taken[stem] > 1:
            stem = f"{stem}-{taken[stem]}"
        written, skipped = [], []
        for fmt in formats:
            text = _WRITERS[fmt](r)
            if text is None:
                skipped.append(f"{fmt}: {_WHY_NOT[fmt]}")
                continue
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{stem}{FORMATS[fmt]}"
            _write(path, text)
            written.append(path)
        log.debug("exported %s × %s: %d file(s)", recording, recipe, len(written))
        results.append(Exported(recording, recipe, tuple(written), tuple(skipped)))
    return results
