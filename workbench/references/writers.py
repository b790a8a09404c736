"""Writing a reference back out as STM or RTTM, line by line through meeteval.io (``STMLine`` / ``RTTMLine``
serialised by ``STM.dumps`` / ``RTTM.dumps``), so the files are what meeteval and the NIST tools read.

Times are written with three decimals (milliseconds, as the readers round them). meeteval ends an STM line with
an empty transcript in a space; it is stripped, so such a line ends at its end time.
"""

from __future__ import annotations

import os
from pathlib import Path

from workbench.datamodel import Reference, Segment
from workbench.errors import ReferenceFormatError

from ._common import clean_text


def _field(value: str | None, default: str) -> str:
    """A whitespace-free field value (spaces become underscores)."""
    return "_".join((value or "").split()) or default


def _timed_segments(reference: Reference, path: Path, fmt: str) -> list[Segment]:
    if any(s.start is None or s.end is None for s in reference.segments):
        raise ReferenceFormatError(path, f"cannot write {fmt}: the reference has segments without times")
    return sorted(reference.segments, key=lambda s: (s.start, s.end))


def _check_id(recording_id: str) -> None:
    if not recording_id or any(c.isspace() for c in recording_id):
        raise ValueError(f"recording_id must be a non-empty word without whitespace, got {recording_id!r}")


def write_stm(reference: Reference, path: str | os.PathLike[str], recording_id: str) -> None:
    """Write ``recording_id 1 SPEAKER start end text`` lines; ``nonspeech`` spans as ``inter_segment_gap``."""
    from meeteval.io.stm import STM, STMLine  # lazy: meeteval.io takes ~0.4 s to import

    _check_id(recording_id)
    p = Path(path)
    rows = [
        (s.start, s.end, _field(s.speaker, "unknown"), clean_text(s.text))
        for s in _timed_segments(reference, p, "STM")
    ]
    rows += [(n.start, n.end, "inter_segment_gap", "") for n in reference.nonspeech]
    rows.sort(key=lambda r: (r[0], r[1]))
    stm = STM([STMLine(recording_id, 1, spk, f"{start:.3f}", f"{end:.3f}", text) for start, end, spk, text in rows])
    p.write_text("".join(line.rstrip() + "\n" for line in stm.dumps().splitlines()), encoding="utf-8")


def write_rttm(reference: Reference, path: str | os.PathLike[str], recording_id: str) -> None:
    """Write one ``SPEAKER`` line per segment (speaker ``unknown`` when missing); needs a timed reference."""
    from meeteval.io.rttm import RTTM, RTTMLine

    _check_id(recording_id)
    p = Path(path)
    rttm = RTTM([
        RTTMLine(filename=recording_id, channel="1", begin_time=f"{s.start:.3f}", duration=f"{s.end - s.start:.3f}",
                 speaker_id=_field(s.speaker, "unknown"))
        for s in _timed_segments(reference, p, "RTTM")
    ])
    p.write_text(rttm.dumps(), encoding="utf-8")
