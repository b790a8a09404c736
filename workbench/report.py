"""Reports of a run: Markdown, JSON, CSV and a self-contained HTML page (inline CSS and SVG charts, no
scripts, no network) — all from the same corpus figures.

Corpus figures add up over recordings (WER = Σerrors / Σreference words; RTFx = Σaudio / Σprocessing).
Confidence intervals come from a bootstrap over recordings (resampling recordings with replacement, seeded),
and a paired bootstrap compares two recipes on the same recordings: the interval of their WER difference and
how often the resampled difference has the other sign. Model output is untrusted: every text is escaped.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

BOOTSTRAP_SAMPLES = 1000
SEED = 0
FORMATS = ("html", "md", "json", "csv")


@dataclass(frozen=True)
class RecipeFigures:
    recipe: str
    recipe_hash: str
    recordings: int
    failed: int
    wer: float | None
    wer_ci: tuple[float, float] | None
    errors: int | None
    reference_words: int | None
    rtfx: float | None
    cost_usd_per_audio_hour: float | None
    stage_s: dict
    der: float | None
    cpwer: float | None
    nonspeech_words_per_hour: float | None
    stock_phrases: dict


@dataclass(frozen=True)
class Paired:
    a: str
    b: str
    recordings: int
    wer_difference: float | None  # a − b
    ci: tuple[float, float] | None
    p_value: float | None  # two-sided, from the paired bootstrap


def _wer_counts(row: dict) -> tuple[int, int] | None:
    m = row.get("metrics") or {}
    if m.get("reference_words") is None:
        return None
    return (m["substitutions"] or 0) + (m["deletions"] or 0) + (m["insertions"] or 0), m["reference_words"]


def _ratio(pairs: Sequence[tuple[int, int]]) -> float | None:
    total = sum(n for _, n in pairs)
    return sum(e for e, _ in pairs) / total if total else None


def counts_rate(rows: Sequence[dict], key: str) -> float | None:
    """Corpus rate Σ(S+D+I)/ΣN of the error counts stored under ``metrics[key]`` (``cpwer``, ``asr``,
    ``formatting_drift``); None when no row has them."""
    counts = [c for c in ((r.get("metrics") or {}).get(key) for r in rows) if c and c.get("reference_words") is not None]
    return _ratio([(c["substitutions"] + c["deletions"] + c["insertions"], c["reference_words"]) for c in counts])


def der_rate(rows: Sequence[dict], collar: float) -> float | None:
    """Corpus DER at one collar: Σ(false alarm + missed + confusion) / Σ total speech over the rows."""
    ders = [d for r in rows for d in ((r.get("metrics") or {}).get("der") or []) if d.get("collar_s") == collar]
    total = sum(d["total_s"] for d in ders)
    return sum(d["false_alarm_s"] + d["missed_s"] + d["confusion_s"] for d in ders) / total if total else None


def _resamples(n: int) -> np.ndarray:
    """BOOTSTRAP_SAMPLES × n indices drawn with replacement (seeded: the same data gives the same CIs)."""
    return np.random.default_rng(SEED).integers(0, n, size=(BOOTSTRAP_SAMPLES, n))


def _ratios(errors: np.ndarray, lengths: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Corpus WER of every resample (NaN where a resample has no reference words)."""
    total = lengths[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, errors[idx].sum(axis=1) / np.maximum(total, 1), np.nan)


def _interval(stats: np.ndarray) -> tuple[float, float] | None:
    stats = stats[~np.isnan(stats)]
    if not len(stats):
        return None
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def _bootstrap(pairs: list[tuple[int, int]]) -> tuple[float, float] | None:
    if len(pairs) < 2:
        return None
    errors, lengths = np.array([e for e, _ in pairs]), np.array([n for _, n in pairs])
    return _interval(_ratios(errors, lengths, _resamples(len(pairs))))


def figures(rows: Sequence[dict]) -> list[RecipeFigures]:
    by_recipe: dict[str, list[dict]] = {}
    for r in rows:
        by_recipe.setdefault(r["recipe"], []).append(r)
    out = []
    for recipe, rs in by_recipe.items():
        ok = [r for r in rs if not r.get("error")]
        pairs = [p for p in (_wer_counts(r) for r in rs) if p is not None]
        audio = sum(r["recording"]["duration_s"] for r in ok)
        processing = sum(r.get("processing_s") or 0 for r in ok)
        stage_s: dict[str, float] = {}
        for r in ok:
            for stage, s in (r.get("timings") or {}).items():
                if stage != "load":
                    stage_s[stage] = stage_s.get(stage, 0.0) + s
        costs = [(r.get("cost_usd_per_audio_hour"), r["recording"]["duration_s"]) for r in ok]
        cost = sum(c * d for c, d in costs) / audio if ok and audio and all(c is not None for c, _ in costs) else None
        hall = [(r.get("metrics") or {}).get("hallucination") or {} for r in ok]
        timed = [h for h in hall if h.get("nonspeech_words") is not None]
        ns_s = sum(h.get("nonspeech_s") or 0 for h in timed)
        phrases: dict[str, int] = {}
        for h in hall:
            for p in h.get("stock_phrases") or []:
                phrases[p] = phrases.get(p, 0) + 1
        out.append(RecipeFigures(
            recipe=recipe, recipe_hash=rs[0]["recipe_hash"], recordings=len(rs), failed=len(rs) - len(ok),
            wer=_ratio(pairs), wer_ci=_bootstrap(pairs),
            errors=sum(e for e, _ in pairs) if pairs else None, reference_words=sum(n for _, n in pairs) if pairs else None,
            rtfx=audio / processing if processing else None, cost_usd_per_audio_hour=cost, stage_s=stage_s,
            der=der_rate(rs, 0.5),
            cpwer=counts_rate(rs, "cpwer"),
            nonspeech_words_per_hour=(sum(h["nonspeech_words"] for h in timed) / (ns_s / 3600)) if timed and ns_s else None,
            stock_phrases=phrases,
        ))
    return out


def paired(rows: Sequence[dict], a: str, b: str) -> Paired:
    """Paired bootstrap of the corpus WER difference a − b over the recordings both scored."""
    per = {}
    for r in rows:
        counts = _wer_counts(r)
        if counts is not None:
            per.setdefault(r["recording"]["path"], {})[r["recipe"]] = counts
    shared = [(v[a], v[b]) for v in per.values() if a in v and b in v]
    if not shared:
        return Paired(a, b, 0, None, None, None)

    wa, wb = _ratio([x for x, _ in shared]), _ratio([y for _, y in shared])
    observed = None if wa is None or wb is None else wa - wb
    if len(shared) < 2 or observed is None:
        return Paired(a, b, len(shared), observed, None, None)
    ea, na = np.array([x[0] for x, _ in shared]), np.array([x[1] for x, _ in shared])
    eb, nb = np.array([y[0] for _, y in shared]), np.array([y[1] for _, y in shared])
    idx = _resamples(len(shared))  # the same recordings for both recipes: a paired resample
    stats = _ratios(ea, na, idx) - _ratios(eb, nb, idx)
    stats = stats[~np.isnan(stats)]
    other_side = int(np.sum(stats <= 0) if observed > 0 else np.sum(stats >= 0))
    p = min(1.0, 2 * other_side / len(stats)) if len(stats) else None
    return Paired(a, b, len(shared), observed, _interval(stats), p)


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def num(x: float | None, fmt: str = ".2f") -> str:
    return "—" if x is None else format(x, fmt)


def _p(x: float | None) -> str:
    """A bootstrap p-value: 0 of 1,000 resamples means below 1/1,000, not zero."""
    return "—" if x is None else "< 0.001" if x < 1 / BOOTSTRAP_SAMPLES else f"{x:.3f}"


def pct_interval(ci) -> str:
    return "—" if ci is None else f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f}%"


def table_rows(figs: Sequence[RecipeFigures]) -> tuple[list[str], list[list[str]]]:
    header = ["recipe", "recordings", "failed", "WER", "WER 95% CI", "RTFx", "cost $/audio h", "DER (±0.25 s)", "cpWER",
              "non-speech words/h"]
    body = [[f.recipe, str(f.recordings), str(f.failed), pct(f.wer), pct_interval(f.wer_ci), num(f.rtfx, ".1f"),
             num(f.cost_usd_per_audio_hour, ".4f"), pct(f.der), pct(f.cpwer), num(f.nonspeech_words_per_hour, ".1f")]
            for f in figs]
    return header, body


def comparisons(rows: Sequence[dict], figs: Sequence[RecipeFigures]) -> list[Paired]:
    names = [f.recipe for f in figs]
    return [paired(rows, a, b) for i, a in enumerate(names) for b in names[i + 1:]]


def _analysed(rows: Sequence[dict], analysis) -> tuple[list[RecipeFigures], list[Paired]]:
    """Corpus figures and paired comparisons (bootstraps included): computed once per report, shared by
    every format written together."""
    if analysis is not None:
        return analysis
    figs = figures(rows)
    return figs, comparisons(rows, figs)


def to_json(rows: Sequence[dict], run_id: str, analysis=None) -> str:
    """Strict JSON: non-finite numbers (rows written before results.jsonl was strict held Infinity) become null."""
    from workbench.runner import finite

    figs, pairs = _analysed(rows, analysis)
    return json.dumps(finite({"run_id": run_id, "recipes": [asdict(f) for f in figs],
                              "paired": [asdict(p) for p in pairs], "results": list(rows)}),
                      indent=2, ensure_ascii=False, allow_nan=False, default=str)


CSV_COLUMNS = ["run_id", "recipe", "recipe_hash", "recording", "path", "duration_s", "error", "wer", "cer", "substitutions",
               "deletions", "insertions", "reference_words", "rtfx", "cost_usd_per_audio_hour", "peak_rss_mb", "der",
               "cpwer", "nonspeech_words_per_hour", "stock_phrases", "text"]


def to_csv(rows: Sequence[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        m = r.get("metrics") or {}
        der = next((d["der"] for d in (m.get("der") or []) if d.get("collar_s") == 0.5), None)
        h = m.get("hallucination") or {}
        writer.writerow([r.get("run_id"), r["recipe"], r["recipe_hash"], r["recording"]["id"], r["recording"]["path"],
                         r["recording"]["duration_s"], r.get("error") or "", m.get("wer"), m.get("cer"), m.get("substitutions"),
                         m.get("deletions"), m.get("insertions"), m.get("reference_words"), r.get("rtfx"),
                         r.get("cost_usd_per_audio_hour"), r.get("peak_rss_mb"), der, (m.get("cpwer") or {}).get("cpwer"),
                         h.get("words_per_hour_nonspeech"), ";".join(h.get("stock_phrases") or []),
                         _csv_safe((r.get("transcript") or {}).get("text", ""))])
    return buf.getvalue()


def _csv_safe(text: str) -> str:
    """Model output must not become a spreadsheet formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def to_markdown(rows: Sequence[dict], run_id: str, analysis=None) -> str:
    from workbench.summary import _md

    figs, pairs = _analysed(rows, analysis)
    header, body = table_rows(figs)
    lines = [f"# Report {run_id}", "", f"{len({r['recording']['path'] for r in rows})} recordings, {len(figs)} recipes.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in body]
    if pairs:
        lines += ["", "## Paired comparisons (WER, bootstrap over recordings)", "",
                  "| recipes | recordings | WER difference | 95% CI | p |", "|---|---|---|---|---|"]
        for p in pairs:
            lines.append(f"| {_md(p.a)} − {_md(p.b)} | {p.recordings} | {pct(p.wer_difference)} | {pct_interval(p.ci)} | "
                         f"{_p(p.p_value)} |")
    lines += ["", "WER CIs: 95% percentile bootstrap over recordings (1,000 resamples, seeded). "
              "— means not measured (no reference, or every run failed)."]
    return "\n".join(lines) + "\n"


def _bars(title: str, values: list[tuple[str, float | None]], fmt) -> str:
    """A horizontal bar chart as inline SVG (missing values are labelled, not drawn as 0)."""
    width, bar_h, label_w = 560, 22, 170
    present = [v for _, v in values if v is not None and math.isfinite(v)]
    top = max(present) if present else 1.0
    height = 30 + bar_h * len(values)
    parts = [f'<svg class="chart" role="img" aria-label="{html.escape(title)}" width="{width}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg"><text x="0" y="16" class="t">{html.escape(title)}</text>']
    for i, (name, v) in enumerate(values):
        y = 26 + i * bar_h
        parts.append(f'<text x="0" y="{y + 15}">{html.escape(name)}</text>')
        if v is None or not math.isfinite(v):
            parts.append(f'<text x="{label_w}" y="{y + 15}" class="m">not measured</text>')
            continue
        w = max(1.0, (width - label_w - 90) * (v / top if top else 0))
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 8}" class="b"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{html.escape(fmt(v))}</text>')
    return "".join(parts) + "</svg>"


def diff_html(reference: str, hypothesis: str) -> str:
    """The hypothesis against the reference, word by word (Whisper-normalised): substitutions, deletions and
    insertions marked."""
    import jiwer

    from workbench.metrics import normalize

    ref, hyp = normalize(reference), normalize(hypothesis)
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


def _reference_text(path: str | None) -> str | None:
    if not path:
        return None
    try:
        from workbench.references import load_reference

        ref = load_reference(path)
        return ref.text if ref.has_text else None
    except Exception:  # noqa: BLE001 - a moved or deleted reference just means no diff view
        return None


CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right;vertical-align:top}
td:first-child,th:first-child{text-align:left}.chart{display:block;margin:1em 0}.chart text{font:12px sans-serif}
.chart .t{font-weight:bold}.chart .m{fill:#999;font-style:italic}.chart .b{fill:#4a78b5}
.sub{background:#fde2a7}del{background:#f6c1c1}ins{background:#c8efc8;text-decoration:none}
.tx td{text-align:left;max-width:520px}"""


def to_html(rows: Sequence[dict], run_id: str, analysis=None) -> str:
    e = html.escape
    figs, pairs = _analysed(rows, analysis)
    header, body = table_rows(figs)
    charts = [
        _bars("WER (lower is better)", [(f.recipe, f.wer) for f in figs], lambda v: f"{100 * v:.1f}%"),
        _bars("RTFx: audio seconds per processing second (higher is faster)", [(f.recipe, f.rtfx) for f in figs], lambda v: f"{v:.1f}"),
        _bars("Cost per audio hour ($)", [(f.recipe, f.cost_usd_per_audio_hour) for f in figs], lambda v: f"${v:.4f}"),
        _bars("Words in reference non-speech per hour of it", [(f.recipe, f.nonspeech_words_per_hour) for f in figs], lambda v: f"{v:.1f}"),
    ]
    stages = sorted({s for f in figs for s in f.stage_s})
    for stage in stages:
        charts.append(_bars(f"Latency: {stage} (seconds, all recordings)", [(f.recipe, f.stage_s.get(stage)) for f in figs],
                            lambda v: f"{v:.2f} s"))
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Report {e(run_id)}</title>",
             "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
             f"<style>{CSS}</style></head><body><h1>Report {e(run_id)}</h1>",
             "<table id=figures><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"]
    parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body]
    parts.append("</table><p>WER CIs: 95% bootstrap over recordings. — means not measured.</p>")
    if pairs:
        parts.append("<h2>Paired comparisons</h2><table id=paired><tr><th>recipes</th><th>recordings</th><th>WER difference</th>"
                     "<th>95% CI</th><th>p</th></tr>")
        parts += [f"<tr><td>{e(p.a)} − {e(p.b)}</td><td>{p.recordings}</td><td>{pct(p.wer_difference)}</td><td>{pct_interval(p.ci)}</td>"
                  f"<td>{_p(p.p_value)}</td></tr>" for p in pairs]
        parts.append("</table>")
    parts.append("<h2>Charts</h2>" + "".join(charts))
    parts.append("<h2>Per recording</h2><table id=recordings><tr><th>recording</th><th>recipe</th><th>WER</th><th>RTFx</th>"
                 "<th>error</th></tr>")
    for r in rows:
        m = r.get("metrics") or {}
        parts.append(f"<tr><td>{e(r['recording']['id'])}</td><td>{e(r['recipe'])}</td><td>{pct(m.get('wer'))}</td>"
                     f"<td>{num(r.get('rtfx'), '.1f')}</td><td>{e(r.get('error') or '')}</td></tr>")
    parts.append("</table><h2>Transcripts</h2>")
    by_recording: dict[str, list[dict]] = {}
    for r in rows:
        by_recording.setdefault(r["recording"]["path"], []).append(r)
    for path, rs in by_recording.items():
        reference = _reference_text((rs[0].get("metrics") or {}).get("reference"))
        parts.append(f"<h3>{e(rs[0]['recording']['id'])}</h3><table class=tx><tr>"
                     + ("<th>reference</th>" if reference is not None else "")
                     + "".join(f"<th>{e(r['recipe'])}</th>" for r in rs) + "</tr><tr>"
                     + (f"<td>{e(reference)}</td>" if reference is not None else ""))
        for r in rs:
            text = (r.get("transcript") or {}).get("text", "")
            parts.append(f"<td>{diff_html(reference, text) if reference is not None else e(text)}</td>")
        parts.append("</tr></table>")
    parts.append("<p>Marked against the reference after Whisper normalisation: <span class=sub>substituted</span> "
                 "(hover: the reference word), <del>deleted</del>, <ins>inserted</ins>.</p></body></html>")
    return "".join(parts)


def render(rows: Sequence[dict], run_id: str, fmt: str, analysis=None) -> str:
    """One report format as text (``analysis``: corpus figures already computed for these rows, if any)."""
    if fmt == "csv":
        return to_csv(rows)  # CSV needs no corpus figures
    return {"html": to_html, "md": to_markdown, "json": to_json}[fmt](rows, run_id, analysis)


def write_reports(rows: Sequence[dict], run_id: str, out_dir: Path, formats: Sequence[str]) -> list[Path]:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        from workbench.errors import BadInputError

        raise BadInputError(f"unknown report format {', '.join(unknown)}; known: {', '.join(FORMATS)}")
    from workbench.files import write_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    analysis = _analysed(rows, None) if set(formats) - {"csv"} else None  # computed once for every format
    paths = []
    for fmt in formats:
        path = out_dir / f"report.{fmt}"
        write_atomic(path, render(rows, run_id, fmt, analysis))  # a reader never sees half a report
        paths.append(path)
    return paths
