"""What the dashboard shows, computed from result rows (``RunResult.to_json()`` dicts, fresh or from the
store): the metrics table with the best value of each row marked, chart data, timeline lanes, the waveform
envelope. No Streamlit here, so all of it is unit-tested; every text that reaches HTML is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.report import (RecipeFigures, counts_rate, der_rate, figures, num, pct, pct_interval, recipe_key,
                              recipe_labels)
from workbench.result import did_run

MISSING = "—"
DID_NOT_RUN = "did not run"
NO_SPEAKER = "(no speaker)"


@dataclass(frozen=True)
class MetricRow:
    label: str
    cells: tuple[str, ...]
    best: tuple[bool, ...]  # the best value of the row (only where lower/higher is better and 2+ are measured)


@dataclass(frozen=True)
class MetricsTable:
    recipes: tuple[str, ...]
    rows: tuple[MetricRow, ...]

    def row(self, label: str) -> MetricRow:
        return next(r for r in self.rows if r.label == label)


def _fmt(spec: str) -> Callable[[float | None], str]:
    return lambda x: num(x, spec)


def _by_recipe(rows: Sequence[dict], labels: dict[tuple[str, str], str] | None = None) -> dict[str, list[dict]]:
    """Rows per recipe version, keyed by its label (the name, or name@short-hash when a name has several)."""
    labels = recipe_labels(rows) if labels is None else labels
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(labels[recipe_key(r)], []).append(r)
    return out


def _sum(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) if values else None


def _load(rows: Sequence[dict]) -> tuple[float | None, bool]:
    loads = [(r.get("timings") or {}).get("load") for r in rows]
    reused = any(((r.get("stage_details") or {}).get("load") or {}).get("reused") for r in rows)
    return (max((v for v in loads if v is not None), default=None), reused)


def _windows_flagged(rows: Sequence[dict]) -> int | None:
    windows = [w for r in rows for w in (r.get("details") or {}).get("windows", [])]
    return sum(1 for w in windows if w.get("flag")) if windows else None


def metrics_table(rows: Sequence[dict], figs: Sequence[RecipeFigures] | None = None) -> MetricsTable:
    """Metrics × recipes over all ``rows`` (corpus figures: rates are Σerrors/Σwords, RTFx is Σaudio/Σprocessing;
    ``figs``: :func:`figures` of the rows that ran when already computed). A figure not measured is ``—``, never 0.
    Rows that did not run (unavailable, load failed, bad input) enter no figure: a recipe with none that ran
    shows "did not run" in every cell, and a "did not run" row counts them."""
    labels = recipe_labels(rows)  # over every row, so a version that did not run keeps its own column
    names = tuple(_by_recipe(rows, labels))
    skipped = {n: sum(1 for r in rows if labels[recipe_key(r)] == n and not did_run(r)) for n in names}
    rows = [r for r in rows if did_run(r)]
    groups = {n: [] for n in names} | _by_recipe(rows, labels)
    figs = {labels[(f.recipe, f.recipe_hash)]: f for f in (figures(rows) if figs is None else figs)}
    ran = {n: n in figs and bool(groups[n]) for n in names}
    names_ran = [n for n in names if ran[n]]
    stages = list(dict.fromkeys(s for n in names_ran for s in figs[n].stage_s))
    halluc = {n: [(r.get("metrics") or {}).get("hallucination") or {} for r in groups[n] if not r.get("error")] for n in names}
    ok = {n: [r for r in groups[n] if not r.get("error")] for n in names}
    loads = {n: _load(groups[n]) for n in names}

    # (label, value per recipe, formatter, "min" | "max" | None)
    spec: list[tuple[str, Callable[[str], float | None], Callable, str | None]] = [
        ("WER", lambda n: figs[n].wer, pct, "min"),
        ("ASR-stage WER", lambda n: counts_rate(groups[n], "asr"), pct, "min"),
        ("formatting drift (ASR → formatted)", lambda n: counts_rate(groups[n], "formatting_drift"), pct, "min"),
        ("cpWER", lambda n: figs[n].cpwer, pct, "min"),
        ("DER (no collar)", lambda n: der_rate(groups[n], 0.0), pct, "min"),
        ("DER (±0.25 s collar)", lambda n: figs[n].der, pct, "min"),
        ("RTFx (audio s / processing s)", lambda n: figs[n].rtfx, _fmt(".1f"), "max"),
        ("processing s (load excluded)", lambda n: _sum(r.get("processing_s") for r in ok[n]), _fmt(".2f"), "min"),
    ]
    spec += [(f"latency: {s} s", lambda n, s=s: figs[n].stage_s.get(s), _fmt(".2f"), "min") for s in stages]
    spec += [
        ("model load s", lambda n: loads[n][0], _fmt(".2f"), None),
        ("cost $/audio hour", lambda n: figs[n].cost_usd_per_audio_hour, _fmt(".4f"), "min"),
        ("words in reference non-speech per hour", lambda n: figs[n].nonspeech_words_per_hour, _fmt(".1f"), "min"),
        ("repeated n-grams beyond the reference",
         lambda n: _sum(h.get("repeated_ngrams_beyond_reference") for h in halluc[n]), _fmt(".0f"), "min"),
        ("peak RSS MB", lambda n: max((r.get("peak_rss_mb") for r in ok[n] if r.get("peak_rss_mb") is not None), default=None),
         _fmt(".0f"), "min"),
        ("model calls", lambda n: _sum((r.get("usage") or {}).get("calls") for r in ok[n]), _fmt(".0f"), None),
        ("windows flagged (missing output)", lambda n: _windows_flagged(groups[n]), _fmt(".0f"), "min"),
    ]
    out: list[MetricRow] = []
    for label, get, fmt, better in spec:
        values = [get(n) if ran[n] else None for n in names]
        present = [v for v in values if v is not None]
        target = (min(present) if better == "min" else max(present)) if better and len(present) > 1 else None
        cells = [fmt(v) if ran[n] else DID_NOT_RUN for v, n in zip(values, names)]
        if label == "model load s":
            cells = [c + (" (reused)" if loads[n][1] and c != MISSING else "") for c, n in zip(cells, names)]
        out.append(MetricRow(label, tuple(cells), tuple(target is not None and v == target for v in values)))
    if any(figs[n].wer_ci or len(groups[n]) > 1 for n in names_ran):  # several recordings: how sure is the corpus WER?
        out.insert(1, MetricRow("WER 95% CI (bootstrap over recordings)",
                                tuple(pct_interval(figs[n].wer_ci, figs[n].wer_ci_note) if ran[n] else DID_NOT_RUN
                                      for n in names),
                                (False,) * len(names)))
    phrases = [(", ".join(sorted(figs[n].stock_phrases)) or "none" if ok[n] else MISSING) if ran[n] else DID_NOT_RUN
               for n in names]
    out.append(MetricRow("stock hallucination phrases", tuple(phrases), (False,) * len(names)))
    out.append(MetricRow("failed", tuple(f"{figs[n].failed}/{figs[n].recordings}" if ran[n] else "—" for n in names),
                         (False,) * len(names)))
    if any(skipped.values()):
        out.append(MetricRow("did not run (recordings, in no figure)", tuple(str(skipped[n]) for n in names),
                             (False,) * len(names)))
    return MetricsTable(names, tuple(out))


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


def chart_records(figs: Sequence[RecipeFigures]) -> list[dict]:
    """Long-form records (recipe, metric, value) for the comparison charts; value None where not measured."""
    out = []
    for f in figs:
        for metric, value in (("WER % (lower is better)", None if f.wer is None else 100 * f.wer),
                              ("RTFx (higher is faster)", f.rtfx),
                              ("cost $/audio hour (lower is better)", f.cost_usd_per_audio_hour),
                              ("words in non-speech per hour (lower is better)", f.nonspeech_words_per_hour)):
            out.append({"recipe": f.label or f.recipe, "metric": metric, "value": value})
    return out


def stage_records(figs: Sequence[RecipeFigures]) -> list[dict]:
    """(recipe, stage, seconds) for the stacked latency chart, stages in pipeline order."""
    return [{"recipe": f.label or f.recipe, "stage": stage, "seconds": s} for f in figs for stage, s in f.stage_s.items()]


def timeline(rows: Sequence[dict], reference=None) -> list[dict]:
    """Lanes of timed segments: the reference's (when timed) and each recipe's, with speaker and text.
    Speaker turns stand in when a recipe's segments carry no speaker."""
    out = []
    if reference is not None and reference.timed:
        for s in reference.segments:
            if s.start is not None and s.end is not None:
                out.append({"lane": "reference", "start": s.start, "end": s.end, "speaker": s.speaker or NO_SPEAKER, "text": s.text})
    one_recording = len({r["recording"]["path"] for r in rows}) == 1
    for r in rows:
        lane = r["recipe"] if one_recording else f"{r['recipe']} · {r['recording']['id']}"
        segments = [s for s in (r.get("transcript") or {}).get("segments") or [] if s.get("start") is not None]
        turns = (r.get("speakers") or {}).get("turns") or []
        if segments and not any(s.get("speaker") for s in segments) and turns:
            for start, end, speaker in turns:
                out.append({"lane": lane, "start": start, "end": end, "speaker": speaker, "text": ""})
            continue
        for s in segments:
            out.append({"lane": lane, "start": s["start"], "end": s["end"], "speaker": s.get("speaker") or NO_SPEAKER,
                        "text": s.get("text") or ""})
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


def final_text(row: dict) -> str:
    """The text WER scored: the formatted output (speaker labels removed) when there is one, else the transcript."""
    from workbench.scoring import strip_speaker_labels

    t = row.get("transcript") or {}
    if t.get("formatted") is not None:
        speakers = tuple(sorted({s.get("speaker") for s in t.get("segments") or [] if s.get("speaker")}))
        return strip_speaker_labels(t["formatted"], speakers)
    return t.get("text") or ""
