"""Side-by-side comparison of recipes, aggregated over recordings, for the terminal and Markdown.

Corpus figures add up: WER = Σerrors / Σreference words; RTFx = Σaudio seconds / Σprocessing seconds. They are
per recipe version (name, hash): a name with several hashes among the results shows as ``name@1a2b3c4``.
A figure that could not be measured is shown as "—", never as 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from workbench.aggregate import DID_NOT_RUN_CELL, RecipeSummary, metric_rows, summarize, verdict_lines
from workbench.formatting import MISSING
from workbench.formatting import md as _md
from workbench.result import RunResult
from workbench.tasks.summary import accuracy_matrix, question_figures, questions_markdown

__all__ = ["MISSING", "DID_NOT_RUN_CELL", "RecipeSummary", "summarize", "table", "markdown", "question_tables",
           "verdict_lines"]


def table(summaries: Sequence[RecipeSummary], *, mark_best: Callable[[str], str] | None = None) -> tuple[list[str], list[list[str]]]:
    """The metric table (:func:`workbench.aggregate.metric_rows`) as rows of metrics × columns of recipes.
    ``mark_best`` wraps the best cell of rows that have one."""
    headers = ["metric", *(s.shown for s in summaries)]
    body = [[row.label, *(mark_best(c) if mark_best and b else c for c, b in zip(row.cells, row.best))]
            for row in metric_rows(summaries)]
    return headers, body


def question_tables(results: Sequence[RunResult | dict]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The Questions figures for the terminal (:mod:`workbench.tasks.summary`), as (title, headers, rows) tables:
    accuracy per category (rows) per recipe (columns) with the bootstrap interval over questions and the
    not-judged counts; the paired comparisons; cost per correct answer and median answer latency. Empty when no
    result carries questions. Cells hold recipe and category names: escape them for the medium."""
    from workbench.tasks.summary import COST_HEADER, PAIRED_HEADER, cost_rows, paired_rows

    asked = question_figures(results)
    if asked is None:
        return []
    out = [("Accuracy per category", *accuracy_matrix(asked))]
    if asked.paired:
        out.append(("Paired comparisons (accuracy, the same questions; exact McNemar, Holm)", PAIRED_HEADER,
                    paired_rows(asked)))
    out.append(("Cost per correct answer", COST_HEADER, cost_rows(asked)))
    return out


def markdown(results: Sequence[RunResult], *, title: str = "Comparison") -> str:
    """The Markdown summary written beside results.jsonl."""
    summaries = summarize(results)
    headers, body = table(summaries, mark_best=lambda c: f"**{c}**")
    lines = [f"# {title}", "", "## Verdict", ""]
    lines += [f"- {_md(line)}" for line in verdict_lines(results, summaries)] + [""]
    recordings = list(dict.fromkeys((r.recording.id, r.recording.path, r.recording.duration_s) for r in results))
    lines.append("Recordings: " + ", ".join(f"`{_md(i)}` ({d:.1f} s)" for i, _, d in recordings))
    refs = list(dict.fromkeys(r.scores.reference for r in results if r.scores))
    lines.append("")
    lines.append("Reference: " + (", ".join(f"`{_md(x)}`" for x in refs) if refs else "none (WER not measured)"))
    lines += ["", "| " + " | ".join(_md(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_md(c, keep_bold=True) for c in row) + " |" for row in body]
    lines += ["", "Best value per row in **bold**. — means not measured (no reference, or the recipe failed).",
              "WER/CER: Whisper English normaliser on both sides, jiwer alignment; corpus WER = Σ(S+D+I)/ΣN. "
              "WER scores the final output (the formatted transcript, speaker labels removed, when there is one); "
              "ASR-stage WER scores Whisper's text; formatting drift is the WER of the formatted text against the ASR text.",
              "DER: pyannote.metrics, overlapped speech scored, over the whole recording. cpWER: meeteval.",
              "Words in reference non-speech: hypothesis words whose time falls in a non-speech region of the reference "
              "(0.25 s collar at speech edges), per hour of non-speech; — when the recipe gives no word times.",
              "RTFx = audio seconds / processing seconds (model load excluded). "
              "Cost = hardware $/hour ÷ RTFx; API calls: usage × the API price (a cascade with a priced remote "
              "formatter: its local stages ÷ their RTFx, plus the formatter's calls)."]
    first = results[0] if results else None
    contended = sorted({r.execution.workers for r in results if r.execution.contended})
    if contended:
        lines.append(f"Measured under contention: {' / '.join(map(str, contended))} workers shared this machine's cores, "
                     "so RTFx, CPU seconds and cost are not those of a run alone.")
    if first and first.price:
        p = first.price
        lines.append(f"Hardware price: `{_md(p.id)}` ${p.usd_per_hour}/h ({_md(p.source)}, {_md(p.date)}).")
        if p.note:
            lines.append(f"**Cost is for the `{_md(p.id)}` row, not this machine**: {_md(p.note)}.")
    if (asked := question_figures(results)) is not None:  # only when questions were asked
        lines += ["", *questions_markdown(asked, _md)]
    skipped = [(s, e) for s in summaries for e in s.not_run_reasons if s.not_run]
    if skipped:
        lines += ["", "## Did not run", "", "In no figure above (neither WER nor speed nor cost).", ""]
        lines += [f"- **{_md(s.shown)}** ({s.not_run} of {s.recordings + s.not_run} recordings): {_md(e)}"
                  for s, e in skipped]
    errors = [(s.shown, e) for s in summaries for e in s.errors]
    if errors:
        lines += ["", "## Errors", ""] + [f"- **{_md(name)}**: {_md(e)}" for name, e in errors]
    flagged = [(r, w) for r in results for w in r.details.get("windows", []) if w.get("flag")]
    if flagged:
        lines += ["", "## Coverage flags", ""]
        lines += [f"- **{_md(r.recipe)}** on `{_md(r.recording.id)}` {w['start']:.1f}–{w['end']:.1f} s: {_md(w['flag'])}"
                  for r, w in flagged]
    formatted = [r for r in results if r.transcript and r.transcript.formatted is not None]
    if len(formatted) > 1:
        lines += ["", "## Formatted outputs side by side", "", "| " + " | ".join(_md(r.recipe) for r in formatted) + " |",
                  "|" + "---|" * len(formatted),
                  "| " + " | ".join(_md(r.transcript.formatted) for r in formatted) + " |"]
    lines += ["", "## Transcripts", ""]
    for r in (r for r in results if r.did_run):
        text = r.transcript.text if r.transcript else ""
        lines.append(f"- **{_md(r.recipe)}** on `{_md(r.recording.id)}`: " + (_md(text) if text else "*(empty)*"))
        if r.transcript and r.transcript.formatted is not None:
            lines.append(f"  - formatted: {_md(r.transcript.formatted) or '*(empty)*'}")
        if r.transcript and r.transcript.summary:
            lines.append(f"  - summary: {_md(r.transcript.summary)}")
    if first:
        lines += ["", "## Provenance", ""]
        paths = {(r.recipe, r.recipe_hash): r.recipe_path for r in results}
        for s in summaries:
            where = paths.get((s.recipe, s.recipe_hash))
            lines.append(f"- `{_md(s.shown)}` recipe hash `{_md(s.recipe_hash)}`" + (f" from {_md(where)}" if where else ""))
        hw = first.hardware
        lines.append(f"- hardware: {_md(str(hw.get('cpu')))}, {hw.get('cpu_count')} cores, {hw.get('memory_gb')} GB, GPU: {', '.join(hw.get('gpu') or []) or 'none'}")
        lines += [f"- execution: {_execution_line(e)}" for e in dict.fromkeys(r.execution for r in results)]
        versions = {k: v for r in results for k, v in r.versions.items()}
        lines.append("- versions: " + ", ".join(f"{_md(k)} {_md(v)}" for k, v in sorted(versions.items())))
    return "\n".join(lines) + "\n"


def _execution_line(e) -> str:
    where = {"in-process": "in one process", "processes": "worker processes", "ray": "Ray tasks"}.get(e.executor, e.executor)
    return (f"{_md(where)}, {e.workers} worker{'s' if e.workers != 1 else ''} at once, each worker's models given "
            f"{e.model_threads} CPU thread{'s' if e.model_threads != 1 else ''} of {e.cpu_count} cores")
