"""How figures and untrusted text are written in tables: percentages, numbers, intervals, p-values, and Markdown
escaping. Pure functions, no workbench imports: every face and report uses these, none defines its own.
A figure that could not be measured is written as :data:`MISSING`, never as 0."""

from __future__ import annotations

from collections.abc import Callable

MISSING = "—"


def pct(x: float | None) -> str:
    return MISSING if x is None else f"{100 * x:.1f}%"


def num(x: float | None, fmt: str = ".2f") -> str:
    return MISSING if x is None else format(x, fmt)


def number(fmt: str) -> Callable[[float | None], str]:
    """:func:`num` with its format fixed (a column's formatter)."""
    return lambda x: num(x, fmt)


def p_value(x: float | None, note: str | None = None) -> str:
    """A p-value to three places, or why there is none ("too few recordings (n=2)"), or —."""
    return (note or MISSING) if x is None else "< 0.001" if x < 0.001 else f"{x:.3f}"


def pct_interval(ci, note: str | None = None) -> str:
    """An interval, or why there is none ("too few recordings (n=2)"), or — (not measured)."""
    return (note or MISSING) if ci is None else f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f}%"


def md(text: str, keep_bold: bool = False) -> str:
    """Escape untrusted text (model output, file names) for Markdown tables: no HTML, no table breaks."""
    text = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("\n", " ").replace("`", "'")
    if not keep_bold:
        text = text.replace("*", "\\*").replace("_", "\\_").replace("[", "\\[")
    return text
