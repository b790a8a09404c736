"""Cue blocks shared by SRT and WebVTT: ``[identifier]``, ``start --> end [settings]``, text lines."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from workbench.errors import ReferenceFormatError

from ._common import check_order

Line = tuple[int, str]


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    identifier: str | None
    text_lines: tuple[str, ...]
    line: int  # the timing line


def blocks(lines: Iterable[Line]) -> Iterator[list[Line]]:
    """Runs of non-blank lines."""
    block: list[Line] = []
    for n, line in lines:
        if line.strip():
            block.append((n, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def parse_cue(
    block: list[Line],
    source: str,
    parse_timestamp: Callable[[str], float | None],
    example: str,
    is_identifier: Callable[[str], bool] = lambda line: True,
) -> Cue:
    """One cue from a block; ``parse_timestamp`` returns seconds, or ``None`` for a malformed stamp.

    The timing line comes first, or second after an identifier line that ``is_identifier`` accepts.
    """
    at = next((i for i, (_, line) in enumerate(block) if "-->" in line), None)
    if at != 0:
        first_n, first = block[0]
        if not (len(block) > 1 and is_identifier(first.strip())):
            problem = (
                f"{first.strip()!r} is not a cue number; expected a number or the timing line"
                if at == 1
                else f"expected a timing line like '{example}'"
            )
            raise ReferenceFormatError(source, problem, first_n)
        if at != 1:
            problem = f"expected a timing line like '{example}' after the cue identifier"
            raise ReferenceFormatError(source, problem, block[1][0])
    n, timing = block[at or 0]
    left, _, right = timing.partition("-->")
    right_tokens = right.split()
    if not right_tokens:
        raise ReferenceFormatError(source, f"timing line has no end time; expected '{example}'", n)
    times = []
    for what, token in (("start", left.strip()), ("end", right_tokens[0])):
        seconds = parse_timestamp(token)
        if seconds is None:
            raise ReferenceFormatError(source, f"bad {what} time {token!r}; expected '{example}'", n)
        times.append(seconds)
    start, end = times
    check_order(start, end, source, n)
    text_lines = []
    for tn, line in block[at + 1 :]:
        if "-->" in line:
            raise ReferenceFormatError(source, "'-->' inside cue text; separate cues with a blank line", tn)
        text_lines.append(line)
    identifier = block[0][1].strip() if at == 1 else None
    return Cue(start, end, identifier, tuple(text_lines), n)


def hms(hours: str | None, minutes: str, seconds: str, millis: str) -> float:
    """Seconds from timestamp parts (already checked by a regex)."""
    return round(int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000, 3)
