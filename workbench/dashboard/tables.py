"""What the dashboard shows, computed from results (:class:`~workbench.result.RunResult` objects; results.jsonl /
store rows are read through ``RunResult.from_json``): the metrics table with the best value of each row marked, chart data, timeline lanes, the waveform
envelope. No Streamlit here, so all of it is unit-tested; every text that reaches HTML is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.aggregate import MetricRow, RecipeSummary, as_results, metric_rows, summarize, verdict_lines
from workbench.charts import chart_records, stage_records
from workbench.formatting import MISSING
from workbench.result import RunResult

DID_NOT_RUN = "did not run"
NO_SPEAKER = "(no speaker)"
__all__ = ["MetricRow", "MetricsTable", "metrics_table", "table_html", "verdict_html", "chart_records",
           "stage_records", "timeline", "envelope", "final_text", "MISSING"]


@dataclass(frozen=True)
class MetricsTable:
    recipes: tuple[str, ...]
    rows: tuple[MetricRow, ...]

    def row(self, label: str) -> MetricRow:
        return next(r for r in self.rows if r.label == label)


def metrics_table(rows: Sequence[RunResult | dict], figs: Sequence[RecipeSummary] | None = None) -> MetricsTable:
    """Metrics × recipes over all ``rows`` — the one metric table (:func:`workbench.aggregate.metric_rows`)
    of the one aggregation (``figs``: :func:`workbench.aggregate.summarize` of every row, when already computed).
    Rows that did not run (unavailable, load failed, bad input) enter no figure: a recipe with none that ran
    shows "did not run" in every cell, and a "did not run" row counts them."""
    summaries = summarize(rows) if figs is None else figs
    return MetricsTable(tuple(s.shown for s in summaries), tuple(metric_rows(summaries)))


def verdict_html(rows: Sequence[RunResult | dict], figs: Sequence[RecipeSummary] | None = None) -> str:
    """The verdict (one sentence per axis) as an escaped HTML list."""
    lines = verdict_lines(rows, figs)
    return '<ul class="wb-verdict" data-testid="wb-verdict">' + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>"


def table_html(table: MetricsTable) -> str:
    """The metrics table as escaped HTML, best cells in ``<td class="best"><strong>``."""
    e = html.escape
    head = "<tr><th>metric</th>" + "".join(f"<th>{e(n)}</th>" for n in table.recipes) + "</tr>"
    body = []
    for row in table.rows:
        cells = "".join(f'<td class="best"><strong>{e(c)}</strong></td>' if b else f"<td>{e(c)}</td>"
                        for c, b in zip(row.cells, row.best))
        body.append(f"<tr><th scope=row>{e(row.label)}</th>{cells}</tr>")
    return f'<table class="wb-metrics" data-testid="wb-metrics">{head}{"".join(body)}</table>'


def timeline(results: Sequence[RunResult | dict], reference=None) -> list[dict]:
    """Lanes of timed segments: the reference's (when timed) and each recipe's, with speaker and text.
    Speaker turns stand in when a recipe's segments carry no speaker."""
    out = []
    if reference is not None and reference.timed:
        for s in reference.segments:
            if s.start is not None and s.end is not None:
                out.append({"lane": "reference", "start": s.start, "end": s.end, "speaker": s.speaker or NO_SPEAKER, "text": s.text})
    results = as_results(results)
    one_recording = len({r.recording.path for r in results}) == 1
    for r in results:
        lane = r.recipe if one_recording else f"{r.recipe} · {r.recording.id}"
        segments = [s for s in (r.transcript.segments if r.transcript else ()) if s.start is not None]
        turns = r.transcript.turns if r.transcript else ()
        if segments and not any(s.speaker for s in segments) and turns:
            for t in turns:
                out.append({"lane": lane, "start": t.start, "end": t.end, "speaker": t.speaker, "text": ""})
            continue
        for s in segments:
            out.append({"lane": lane, "start": s.start, "end": s.end, "speaker": s.speaker or NO_SPEAKER, "text": s.text})
    return out


def envelope(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, points: int = 1200) -> list[dict]:
    """Min/max per time bucket: enough to draw a waveform of any length with ``points`` marks."""
    n = len(samples)
    if not n:
        return []
    per = max(1, int(np.ceil(n / points)))
    pad = (-n) % per
    x = np.pad(samples.astype(np.float32), (0, pad)).reshape(-1, per)
    lo, hi = x.min(axis=1), x.max(axis=1)
    return [{"t": round(i * per / sample_rate, 3), "lo": float(a), "hi": float(b)} for i, (a, b) in enumerate(zip(lo, hi))]


def final_text(result: RunResult | dict) -> str:
    """The text WER scored: the formatted output (its segments' speaker labels removed) when there is one, else
    the transcript's text."""
    from workbench.scoring import strip_speaker_labels

    (r,) = as_results([result])
    t = r.transcript
    if t is not None and t.formatted is not None:
        speakers = tuple(sorted({s.speaker for s in t.segments if s.speaker}))
        return strip_speaker_labels(t.formatted, speakers)
    return r.text
