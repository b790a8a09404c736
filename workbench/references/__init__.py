"""Reference transcripts: load STM, RTTM, SRT, WebVTT, plain text or JSON into a :class:`Reference`.

The format is chosen by the file's extension (:data:`REFERENCE_FORMATS`). Every problem with a
file is a :class:`~workbench.errors.ReferenceFormatError` naming the file and, where known, the line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

from workbench.datamodel import Reference
from workbench.errors import ReferenceFormatError

from ._common import read_text
from .jsonref import parse_json, reference_to_json
from .rttm import parse_rttm
from .srt import parse_srt
from .stm import parse_stm
from .text import parse_text
from .vtt import parse_vtt
from .writers import write_rttm, write_stm

__all__ = ["REFERENCE_FORMATS", "load_reference", "reference_to_json", "write_rttm", "write_stm"]

log = logging.getLogger(__name__)

#: File extension (lower case, with the dot) -> format name.
REFERENCE_FORMATS = MappingProxyType(
    {".stm": "stm", ".rttm": "rttm", ".srt": "srt", ".vtt": "vtt", ".txt": "text", ".json": "json"}
)

_PARSERS: dict[str, Callable[[str, str], Reference]] = {
    "stm": parse_stm,
    "rttm": parse_rttm,
    "srt": parse_srt,
    "vtt": parse_vtt,
    "text": parse_text,
    "json": parse_json,
}


def load_reference(path: str | os.PathLike[str]) -> Reference:
    """Load the reference at ``path``, its format chosen by extension."""
    p = Path(path)
    fmt = REFERENCE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        supported = ", ".join(REFERENCE_FORMATS)
        problem = f"unsupported reference extension {p.suffix or '(none)'!r}; expected one of {supported}"
        raise ReferenceFormatError(p, problem)
    reference = _PARSERS[fmt](read_text(p), str(p))
    log.debug("loaded %s reference %s: %d segment(s)", fmt, p, len(reference.segments))
    return reference
