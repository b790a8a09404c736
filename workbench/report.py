"""Reports of a run: Markdown, JSON, CSV and a self-contained HTML page (inline CSS and SVG charts, no
scripts, no network) — all from the same corpus figures.

The HTML charts are the dashboard's: one Vega-Lite specification per chart (:mod:`workbench.charts`), rendered
here to static SVG by vl-convert (no script, no external reference, labels escaped by Vega's renderer).

The verdict, the corpus figures, their intervals and the paired tests come from the one aggregation,
:mod:`workbench.aggregate` (which documents them); this module only writes them out.

Model output is untrusted: every text is escaped, every CSV cell guarded against formulas, and reference files
named inside the rows are read only from the run folder or paths the user allowed.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

from workbench.aggregate import (BOOTSTRAP_SAMPLES, EXACT_UP_TO, MIN_RECORDINGS, PERMUTATIONS, Paired,
                                 RecipeSummary, Verdict, as_results, comparisons, holm, paired, recipe_key, recipe_labels,
                                 report_columns, summarize, too_few, verdict)
from workbench.charts import accuracy_spec
from workbench.charts import specs as chart_specs
from workbench.charts import to_svg
from workbench.formatting import md as _md
from workbench.formatting import num, p_value, pct, pct_interval
from workbench.jsonsafe import finite
from workbench.result import RunResult
from workbench.tasks.summary import (ACCURACY_HEADER, COST_HEADER, PAIRED_HEADER, QuestionFigures, accuracy_rows,
                                     cost_rows, has_tasks, mark, paired_rows, question_figures, questions_markdown,
                                     questions_note)

__all__ = ["FORMATS", "MIN_RECORDINGS", "Paired", "comparisons", "figures", "holm", "paired", "render", "to_csv",
           "to_html", "to_json", "to_markdown", "to_questions_csv", "write_reports", "too_few", "recipe_key",
           "recipe_labels"]
FORMATS = ("html", "md", "json", "csv")


def figures(rows: Sequence[dict]) -> list[RecipeSummary]:
    """Corpus figures per recipe version (:func:`workbench.aggregate.summarize` of the rows)."""
    return summarize(rows)


def table_rows(figs: Sequence[RecipeSummary]) -> tuple[list[str], list[list[str]]]:
    """The recipes-as-rows table of the reports (:func:`workbench.aggregate.report_columns`)."""
    return report_columns(figs)


def did_not_run(summaries: Sequence[RecipeSummary]) -> list[dict]:
    """Per recipe version, the recordings it did not process (unavailable, load failed, bad input): recipe, count,
    of (recordings it was asked to run on), reasons — from the aggregation's ``not_run`` counts. These rows enter
    no corpus figure, interval or test."""
    return [{"recipe": s.shown, "count": s.not_run, "of": s.not_run + s.recordings,
             "reasons": [x for x in s.not_run_reasons if x]} for s in summaries if s.not_run]


def _analysed(rows: Sequence[RunResult | dict],
              analysis) -> tuple[list[RecipeSummary], list[Paired], Verdict, list[dict], QuestionFigures | None]:
    """Corpus figures of the recipe versions that ran, paired comparisons (bootstraps included), the verdict,
    what did not run and the questions' figures (None when no row carries questions): computed once per report,
    shared by every format written together."""
    if analysis is not None:
        return analysis
    results = as_results(rows)  # read once
    summaries = summarize(results)
    return ([s for s in summaries if s.ran], comparisons(results, summaries), verdict(results, summaries),
            did_not_run(summaries), question_figures(results))


def to_json(rows: Sequence[dict], run_id: str, analysis=None) -> str:
    """Strict JSON: non-finite numbers (rows written before results.jsonl was strict held Infinity) become null.
    The figures are indented, the result rows one per line (Python's indenting encoder is pure Python: 1,000 rows
    indented cost more than all the statistics)."""
    figs, pairs, found, skipped, asked = _analysed(rows, analysis)
    questions = {"questions": asked.to_json()} if asked is not None else {}  # only when questions were asked
    head = {"run_id": run_id, "verdict": found.lines, "recipes": [f.to_json() for f in figs],
            "paired": [asdict(p) for p in pairs], "did_not_run": skipped, **questions}
    try:  # the rows are nearly always finite already: walk them (finite) only when the strict encoder refuses
        return _json_document(head, rows)
    except ValueError:
        return _json_document(finite(head), finite(list(rows)))


def _json_document(head: dict, rows: Sequence[dict]) -> str:
    def dump(value, indent=None):
        return json.dumps(value, indent=indent, ensure_ascii=False, allow_nan=False, default=str)

    text = dump({**head, "results": []}, indent=2)  # ends with '"results": []\n}'
    body = ",\n".join("    " + dump(r) for r in rows)
    return text[:-len("[]\n}")] + ("[\n" + body + "\n  ]\n}" if body else "[]\n}")


CSV_COLUMNS = ["run_id", "recipe", "recipe_hash", "recording", "path", "duration_s", "error", "wer", "cer", "substitutions",
               "deletions", "insertions", "reference_words", "rtfx", "cost_usd_per_audio_hour", "peak_rss_mb", "der",
               "cpwer", "nonspeech_words_per_hour", "stock_phrases", "text"]


def to_csv(rows: Sequence[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for r in as_results(rows):
        s = r.scores if r.did_run else None  # a recipe that did not run has no figures
        w = s.words if s else None
        h = s.hallucination if s else None
        cells = [r.run_id, r.recipe, r.recipe_hash, r.recording.id, r.recording.path, r.recording.duration_s,
                 _error_cell(r), w.rate if w else None, s.chars.rate if s and s.chars else None,
                 *((w.substitutions, w.deletions, w.insertions, w.reference_length) if w else (None,) * 4),
                 r.rtfx, r.cost_usd_per_audio_hour, r.peak_rss_mb,
                 next((d.rate for d in s.der if d.collar == 0.5), None) if s else None,
                 s.cpwer.words.rate if s and s.cpwer else None, h.words_per_hour_nonspeech if h else None,
                 ";".join(h.stock_phrases) if h else "", r.text]
        writer.writerow([_csv_safe(c) for c in cells])
    return buf.getvalue()


def _error_cell(r: RunResult) -> str:
    return ("did not run: " if not r.did_run else "") + (r.error or "")


def _not_run_lines(skipped: Sequence[dict]) -> list[str]:
    """The "did not run" lines of a report (:func:`did_not_run`): recipe, how many recordings, why."""
    return [f"{d['recipe']}: did not run on {d['count']} of {d['of']} recordings: {'; '.join(d['reasons'])}"
            for d in skipped]


CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may read as a formula (OWASP)


def _csv_safe(value):
    """No string cell (model output, recipe names, file names, error text) may become a spreadsheet formula:
    one starting with a formula character gets a leading apostrophe. Numbers stay numbers."""
    return "'" + value if isinstance(value, str) and value.startswith(CSV_FORMULA_STARTS) else value


def to_markdown(rows: Sequence[RunResult | dict], run_id: str, analysis=None) -> str:
    results = as_results(rows)  # read once
    figs, pairs, found, skipped, asked = _analysed(results, analysis)
    header, body = table_rows(figs)
    lines = [f"# Report {run_id}", "", "## Verdict", "", *(f"- {_md(x)}" for x in found.lines), "",
             f"{len({r.recording.path for r in results})} recordings, {len(figs)} recipes.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in body]
    if pairs:
        lines += ["", "## Paired comparisons (WER, over the recordings both scored)", "",
                  "| recipes | recordings | WER difference | 95% CI | p | p (Holm) |", "|---|---|---|---|---|---|"]
        for p in pairs:
            lines.append(f"| {_md(p.a)} − {_md(p.b)} | {p.recordings} | {pct(p.wer_difference)} | "
                         f"{pct_interval(p.ci, p.note)} | {p_value(p.p_value, p.note)} | {p_value(p.p_holm, p.note)} |")
    if skipped := _not_run_lines(skipped):
        lines += ["", "## Did not run (in no figure above)", ""] + [f"- {_md(x)}" for x in skipped]
    lines += ["", STATISTICS_NOTE + " — means not measured (no reference, or every run failed)."]
    if asked is not None:
        lines += ["", *questions_markdown(asked, _md)]
    return "\n".join(lines) + "\n"


STATISTICS_NOTE = (
    f"WER 95% CIs: percentile bootstrap over recordings ({BOOTSTRAP_SAMPLES:,} resamples, seeded). Paired comparisons: "
    "95% CI of the WER difference from a paired bootstrap, two-sided p from a paired permutation test (exact up to "
    f"{EXACT_UP_TO} recordings, {PERMUTATIONS:,} random swaps beyond), the same p Holm-adjusted over all the pairs "
    "in p (Holm). Recipes named name@hash are different versions of one recipe. Intervals and p-values need at "
    f"least {MIN_RECORDINGS} recordings scored (fewer: \"too few recordings\").")


def diff_html(reference: str, hypothesis: str) -> str:
    """The hypothesis against the reference, word by word (Whisper-normalised): substitutions, deletions and
    insertions marked."""
    import jiwer

    from workbench.metrics import normalize

    ref, hyp = _normalized_reference(reference), normalize(hypothesis)
    if not ref or not hyp:
        return html.escape(hyp) or "<em>(empty)</em>"
    out = jiwer.process_words(ref, hyp)
    r, h = out.references[0], out.hypotheses[0]
    parts = []
    for chunk in out.alignments[0]:
        if chunk.type == "equal":
            parts.append(html.escape(" ".join(h[chunk.hyp_start_idx:chunk.hyp_end_idx])))
        elif chunk.type == "substitute":
            parts.append(f'<span class="sub" title="{html.escape(" ".join(r[chunk.ref_start_idx:chunk.ref_end_idx]))}">'
                         f'{html.escape(" ".join(h[chunk.hyp_start_idx:chunk.hyp_end_idx]))}</span>')
        elif chunk.type == "delete":
            parts.append(f'<del>{html.escape(" ".join(r[chunk.ref_start_idx:chunk.ref_end_idx]))}</del>')
        else:
            parts.append(f'<ins>{html.escape(" ".join(h[chunk.hyp_start_idx:chunk.hyp_end_idx]))}</ins>')
    return " ".join(parts)


@lru_cache(maxsize=16)
def _normalized_reference(text: str) -> str:
    """A reference normalised once for all the recipes shown against it (the normaliser costs ~1 ms a text)."""
    from workbench.metrics import normalize

    return normalize(text)


def reference_allowed(path: str | Path, allowed: Sequence[str | Path]) -> bool:
    """Whether ``path`` (symlinks resolved) is one of ``allowed`` or inside one of them (files or folders)."""
    try:
        target = Path(path).resolve()
        return any(target == (root := Path(a).resolve()) or target.is_relative_to(root) for a in allowed)
    except (OSError, RuntimeError, ValueError):
        return False


def _reference_text(path: str | None, allowed: Sequence[str | Path]) -> tuple[str | None, str | None]:
    """(the reference's text, or None; a note saying why it is not shown, or None). A reference is read only
    from the run folder or a path the user allowed (``allowed``): the rows name it, and a crafted results.jsonl
    must not make a report embed any file on disk."""
    if not path:
        return None, None
    if not reference_allowed(path, allowed):
        return None, (f"Reference {path} not shown: it is outside the run folder (allow it with "
                      "`workbench report … --reference FILE-OR-FOLDER`).")
    try:
        from workbench.references import load_reference

        ref = load_reference(path)
        return (ref.text if ref.has_text else None), None
    except Exception:  # noqa: BLE001 - a moved or deleted reference just means no diff view
        return None, f"Reference {path} could not be read; no diff view."


CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right;vertical-align:top}
td:first-child,th:first-child{text-align:left}.chart{display:block;margin:1em 0}
.sub{background:#fde2a7}del{background:#f6c1c1}ins{background:#c8efc8;text-decoration:none}
.tx td{text-align:left;max-width:520px}"""


def _flagged_windows(results: Sequence[RunResult]) -> list[str]:
    """One line per audio-LLM window with a coverage flag (details.windows[].flag)."""
    labels = recipe_labels(results)
    return [f"{labels[recipe_key(r)]} on {r.recording.id} {w.get('start', 0):.1f}–{w.get('end', 0):.1f} s: {w['flag']}"
            for r in results for w in r.details.get("windows") or () if w.get("flag")]


def to_html(rows: Sequence[RunResult | dict], run_id: str, analysis=None, references: Sequence[str | Path] = ()) -> str:
    """``references``: the folders and files reference texts may be read from (the run folder, paths the user
    gave); a reference elsewhere gets a note instead of a diff view."""
    e = html.escape
    results = as_results(rows)  # read once
    labels = recipe_labels(results)
    figs, pairs, found, skipped, asked = _analysed(results, analysis)
    header, body = table_rows(figs)
    charts = [f"<figure class=chart>{to_svg(spec)}</figure>" for spec in chart_specs(figs)]
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Report {e(run_id)}</title>",
             "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
             f"<style>{CSS}</style></head><body><h1>Report {e(run_id)}</h1>",
             "<h2>Verdict</h2><ul id=verdict>" + "".join(f"<li>{e(x)}</li>" for x in found.lines) + "</ul>",
             "<table id=figures><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"]
    parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body]
    parts.append(f"</table><p>{e(STATISTICS_NOTE)} — means not measured.</p>")
    if pairs:
        parts.append("<h2>Paired comparisons</h2><table id=paired><tr><th>recipes</th><th>recordings</th><th>WER difference</th>"
                     "<th>95% CI</th><th>p</th><th>p (Holm)</th></tr>")
        parts += [f"<tr><td>{e(p.a)} − {e(p.b)}</td><td>{p.recordings}</td><td>{pct(p.wer_difference)}</td>"
                  f"<td>{e(pct_interval(p.ci, p.note))}</td><td>{e(p_value(p.p_value, p.note))}</td><td>{e(p_value(p.p_holm, p.note))}</td></tr>"
                  for p in pairs]
        parts.append("</table>")
    if skipped := _not_run_lines(skipped):
        parts.append("<h2>Did not run</h2><p>In no figure on this page.</p><ul id=did-not-run>"
                     + "".join(f"<li>{e(x)}</li>" for x in skipped) + "</ul>")
    if flagged := _flagged_windows(results):
        parts.append("<h2>Coverage flags</h2><p>Windows whose output was cut short at the output cap, empty, or far "
                     "shorter than their speech (their words are missing from the figures above).</p><ul id=coverage>"
                     + "".join(f"<li>{e(x)}</li>" for x in flagged) + "</ul>")
    if asked is not None:
        parts.append(_questions_html(asked))
        if (spec := accuracy_spec(asked)) is not None:
            charts.append(f"<figure class=chart>{to_svg(spec)}</figure>")
    parts.append("<h2>Charts</h2>" + "".join(charts))
    parts.append("<h2>Per recording</h2><table id=recordings><tr><th>recording</th><th>recipe</th><th>WER</th><th>RTFx</th>"
                 "<th>error</th></tr>")
    for r in results:
        wer = r.scores.words.rate if r.scores and r.scores.words else None
        parts.append(f"<tr><td>{e(r.recording.id)}</td><td>{e(labels[recipe_key(r)])}</td>"
                     f"<td>{pct(wer) if r.did_run else 'did not run'}</td>"
                     f"<td>{num(r.rtfx, '.1f')}</td><td>{e(_error_cell(r))}</td></tr>")
    parts.append("</table><h2>Transcripts</h2>")
    by_recording: dict[str, list[RunResult]] = {}
    for r in results:
        if r.did_run:  # a recipe that did not run has no transcript to show
            by_recording.setdefault(r.recording.path, []).append(r)
    for path, rs in by_recording.items():
        reference, note = _reference_text(rs[0].scores.reference if rs[0].scores else None, references)
        parts.append(f"<h3>{e(rs[0].recording.id)}</h3>" + (f"<p class=note>{e(note)}</p>" if note else "")
                     + "<table class=tx><tr>"
                     + ("<th>reference</th>" if reference is not None else "")
                     + "".join(f"<th>{e(labels[recipe_key(r)])}</th>" for r in rs) + "</tr><tr>"
                     + (f"<td>{e(reference)}</td>" if reference is not None else ""))
        for r in rs:
            text = r.text
            parts.append(f"<td>{diff_html(reference, text) if reference is not None else e(text)}</td>")
        parts.append("</tr></table>")
    parts.append("<p>Marked against the reference after Whisper normalisation: <span class=sub>substituted</span> "
                 "(hover: the reference word), <del>deleted</del>, <ins>inserted</ins>.</p></body></html>")
    return "".join(parts)


def _html_table(table_id: str, header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    e = html.escape
    return (f"<table id={table_id}><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body) + "</table>")


def _questions_html(f: QuestionFigures) -> str:
    """The Questions section: accuracy per category per recipe, the paired comparisons, cost per correct answer,
    and every answer (model output: escaped)."""
    e = html.escape
    parts = ["<h2>Questions</h2>", _html_table("question-accuracy", ACCURACY_HEADER, accuracy_rows(f))]
    if f.paired:
        parts += ["<h3>Paired comparisons (accuracy, the same questions)</h3>",
                  _html_table("question-paired", PAIRED_HEADER, paired_rows(f))]
    parts += ["<h3>Cost per correct answer</h3>", _html_table("question-cost", COST_HEADER, cost_rows(f)),
              "<h3>Answers</h3><table id=question-answers class=tx><tr>"
              + "".join(f"<th>{e(h)}</th>" for h in ("recording", "question", "category", "kind", "prompt", *f.recipes))
              + "</tr>"]
    for q in f.questions:
        cells = [e(c) for c in (q.recording, q.id, q.category, q.kind, q.prompt)]
        cells += [f"{e(t.answer) if t.answer else '<em>(no answer)</em>'}<br><small>{e(mark(t))}</small>" if t
                  else "<em>not asked</em>" for t in q.answers]
        parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append(f"</table><p>{e(questions_note())}</p>")
    return "".join(parts)


QUESTION_CSV_COLUMNS = ["run_id", "recipe", "recipe_hash", "recording", "path", "question", "category", "kind", "prompt",
                        "answer", "parsed", "correct", "score", "error_s", "judge", "latency_s", "input_tokens",
                        "output_tokens", "error", "cut_short"]


def to_questions_csv(rows: Sequence[RunResult | dict]) -> str:
    """One line per question answered (recipe × recording × question), every string cell guarded against
    formulas (answers are model output); rows that did not run have none."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(QUESTION_CSV_COLUMNS)
    results = as_results(rows)
    labels = recipe_labels(results)
    for r in results:
        if not r.did_run:
            continue
        for t in r.tasks:
            parsed = json.dumps(list(t.parsed) if isinstance(t.parsed, tuple) else t.parsed, ensure_ascii=False) \
                if t.parsed is not None else None
            cells = [r.run_id, labels[recipe_key(r)], r.recipe_hash, r.recording.id, r.recording.path, t.id, t.category,
                     t.kind, t.prompt, t.answer, parsed, t.correct, t.score, t.error_s,
                     t.judge.by if t.judge else None, t.latency_s, t.usage.input_tokens if t.usage else None,
                     t.usage.output_tokens if t.usage else None, t.error, t.cut_short]
            writer.writerow([_csv_safe(c) for c in cells])
    return buf.getvalue()


def render(rows: Sequence[dict], run_id: str, fmt: str, analysis=None, references: Sequence[str | Path] = ()) -> str:
    """One report format as text (``analysis``: corpus figures already computed for these rows, if any;
    ``references``: where the HTML report may read reference texts from, see :func:`to_html`)."""
    if fmt == "csv":
        return to_csv(rows)  # CSV needs no corpus figures
    if fmt == "html":
        return to_html(rows, run_id, analysis, references)
    return {"md": to_markdown, "json": to_json}[fmt](rows, run_id, analysis)


def write_reports(rows: Sequence[dict], run_id: str, out_dir: Path, formats: Sequence[str], *,
                  run_dir: Path | None = None, references: Sequence[str | Path] = ()) -> list[Path]:
    """Write ``report.<fmt>`` files to ``out_dir`` (with CSV, ``report.questions.csv`` too when the rows carry
    questions: one line per answer). Reference texts (the HTML diff view) are read only from
    ``run_dir`` (the folder the results belong to; ``out_dir`` when not given) and ``references`` (files or
    folders the user named)."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        from workbench.errors import BadInputError

        raise BadInputError(f"unknown report format {', '.join(unknown)}; known: {', '.join(FORMATS)}")
    from workbench.files import write_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    results = as_results(rows)  # read once for every format (the JSON report embeds the rows as given)
    analysis = _analysed(results, None) if set(formats) - {"csv"} else None  # computed once for every format
    paths = []
    for fmt in formats:
        path = out_dir / f"report.{fmt}"
        # a reader never sees half a report
        write_atomic(path, render(rows if fmt == "json" else results, run_id, fmt, analysis,
                                  (run_dir or out_dir, *references)))
        paths.append(path)
        if fmt == "csv" and has_tasks(rows):  # the answers, one line each, beside the results' CSV
            questions = out_dir / "report.questions.csv"
            write_atomic(questions, to_questions_csv(rows))
            paths.append(questions)
    return paths
