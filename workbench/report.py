"""Reports of a run: Markdown, JSON, CSV and a self-contained HTML page (inline CSS and SVG charts, no
scripts, no network) — all from the same corpus figures.

Corpus figures add up over recordings (WER = Σerrors / Σreference words; RTFx = Σaudio / Σprocessing) and are
computed per recipe *version*: results are grouped by (recipe name, recipe hash), so a recipe edited between
runs is never averaged with its old self; a name with several hashes in the rows is shown as ``name@1a2b3c4``.

Statistics (scipy.stats, seeded, so the same rows always give the same figures), only with at least
:data:`MIN_RECORDINGS` scored recordings — below that the interval and the p-value are ``None`` with a reason
("too few recordings (n=2)"): a percentile bootstrap over two or three recordings only re-shuffles them, and an
exact paired test on five cannot reach p < 0.05 two-sided (2/2⁵ = 0.0625).

- the corpus-WER interval: ``scipy.stats.bootstrap`` over recordings (ratio of sums, 95% percentile);
- a paired comparison of two recipes on the recordings both scored: the interval of their corpus-WER difference
  (paired ``scipy.stats.bootstrap``) and a two-sided p-value from a paired permutation test
  (``scipy.stats.permutation_test``, ``permutation_type="samples"``: each recording's two results swapped or
  not; exact, enumerating every swap, up to 13 recordings), Holm-adjusted over all the pairs of one report.

Model output is untrusted: every text is escaped, every CSV cell guarded against formulas, and reference files
named inside the rows are read only from the run folder or paths the user allowed.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from workbench.jsonsafe import finite
from workbench.result import did_run

BOOTSTRAP_SAMPLES = 1000
EXACT_UP_TO = 13  # the paired test enumerates all 2ⁿ swaps up to this many recordings (8,192)
PERMUTATIONS = 1999  # random swaps beyond that (p-values resolve to 1/2,000: enough next to 0.05, and fast)
SEED = 0
MIN_RECORDINGS = 6  # the fewest scored recordings with an interval or a p-value (see the module docstring)
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
    label: str = ""  # the name, or name@short-hash when the rows hold several versions of the recipe
    wer_ci_note: str | None = None  # why there is no interval ("too few recordings (n=2)")


@dataclass(frozen=True)
class Paired:
    a: str  # recipe labels (see RecipeFigures.label)
    b: str
    recordings: int
    wer_difference: float | None  # a − b
    ci: tuple[float, float] | None
    p_value: float | None  # two-sided, paired permutation test
    p_holm: float | None = None  # p_value Holm-adjusted over the pairs compared together
    note: str | None = None  # why there is no interval / p-value ("too few recordings (n=2)")


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


def too_few(n: int) -> str | None:
    """The reason there is no interval or p-value over ``n`` recordings, or None when there can be one."""
    return f"too few recordings (n={n})" if n < MIN_RECORDINGS else None


def _corpus_rate(errors: np.ndarray, lengths: np.ndarray):
    """Σerrors/Σlengths of recording indices over an axis, NaN where a resample has no reference words
    (vectorized, as scipy.stats calls it)."""
    def statistic(idx, axis=-1):
        total = lengths[idx].sum(axis=axis)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, errors[idx].sum(axis=axis) / np.where(total > 0, total, 1), np.nan)
    return statistic


def _scipy_stats():
    """scipy.stats, imported on first use. Its import pulls in numpy.f2py, whose crackfortran sets
    ``re._MAXCACHE = 50`` for the whole process (numpy gh-31104, fixed upstream by numpy PR 31105, not in the
    numpy installed here): the Whisper normaliser's patterns then recompile on every call and the HTML diff
    view of 1,000 results takes 4× longer. This puts the standard library's cache size (512) back."""
    import re

    from scipy import stats

    re._MAXCACHE = max(getattr(re, "_MAXCACHE", 512), 512)
    return stats


def _seeded(function) -> dict:
    """The seed argument of a scipy.stats resampling function: ``rng`` since scipy 1.15, ``random_state`` before."""
    import inspect

    name = "rng" if "rng" in inspect.signature(function).parameters else "random_state"
    return {name: np.random.default_rng(SEED)}


def _interval(result) -> tuple[float, float] | None:
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return (low, high) if math.isfinite(low) and math.isfinite(high) else None


def _bootstrap_ci(statistic, n: int) -> tuple[float, float] | None:
    """95% percentile bootstrap of ``statistic`` (of recording indices) over ``n`` recordings (seeded)."""
    stats = _scipy_stats()
    result = stats.bootstrap((np.arange(n),), statistic, n_resamples=BOOTSTRAP_SAMPLES, vectorized=True,
                             method="percentile", confidence_level=0.95, **_seeded(stats.bootstrap))
    return _interval(result)


def _bootstrap(pairs: list[tuple[int, int]]) -> tuple[float, float] | None:
    if too_few(len(pairs)):
        return None
    errors, lengths = np.array([e for e, _ in pairs]), np.array([n for _, n in pairs])
    return _bootstrap_ci(_corpus_rate(errors, lengths), len(pairs))


def recipe_key(row: dict) -> tuple[str, str]:
    """What corpus figures group by: one recipe version (name, hash)."""
    return row["recipe"], row.get("recipe_hash") or ""


def recipe_labels(rows: Sequence[dict]) -> dict[tuple[str, str], str]:
    """(name, hash) → what a report calls it: the name, or ``name@1a2b3c4`` when the rows hold several hashes
    of that name (a recipe edited between runs)."""
    keys = list(dict.fromkeys(recipe_key(r) for r in rows))
    versions: dict[str, int] = {}
    for name, _ in keys:
        versions[name] = versions.get(name, 0) + 1
    return {(name, h): f"{name}@{h[:7]}" if versions[name] > 1 else name for name, h in keys}


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values (None stays None and is not counted as a test). scipy has no Holm
    (``scipy.stats.false_discovery_control`` is Benjamini–Hochberg/Yekutieli: it bounds the false discovery
    rate, not the chance of any false positive) and statsmodels is not a dependency, so it is these lines."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    out: list[float | None] = [None] * len(p_values)
    running, m = 0.0, len(tested)
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def _permutation_p(errors: np.ndarray, lengths: np.ndarray, n: int) -> float:
    """Two-sided p-value of the paired permutation test of the corpus-WER difference. ``errors``/``lengths``
    hold recipe a's recordings at 0…n-1 and recipe b's at n…2n-1; a permutation swaps a recording's two
    results: all 2ⁿ of them up to EXACT_UP_TO recordings (scipy enumerates them when asked for as many), else
    PERMUTATIONS random ones."""
    stats = _scipy_stats()
    rate = _corpus_rate(errors, lengths)
    result = stats.permutation_test((np.arange(n), np.arange(n, 2 * n)),
                                    lambda x, y, axis=-1: rate(x, axis) - rate(y, axis),
                                    permutation_type="samples", vectorized=True,
                                    n_resamples=2 ** n if n <= EXACT_UP_TO else PERMUTATIONS,
                                    alternative="two-sided", **_seeded(stats.permutation_test))
    return float(min(1.0, result.pvalue))


def figures(rows: Sequence[dict]) -> list[RecipeFigures]:
    """Corpus figures per recipe version (name, hash), in order of first appearance."""
    labels = recipe_labels(rows)
    by_recipe: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        by_recipe.setdefault(recipe_key(r), []).append(r)
    out = []
    for (recipe, recipe_hash), rs in by_recipe.items():
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
            recipe=recipe, recipe_hash=recipe_hash, recordings=len(rs), failed=len(rs) - len(ok),
            wer=_ratio(pairs), wer_ci=_bootstrap(pairs),
            errors=sum(e for e, _ in pairs) if pairs else None, reference_words=sum(n for _, n in pairs) if pairs else None,
            rtfx=audio / processing if processing else None, cost_usd_per_audio_hour=cost, stage_s=stage_s,
            der=der_rate(rs, 0.5),
            cpwer=counts_rate(rs, "cpwer"),
            nonspeech_words_per_hour=(sum(h["nonspeech_words"] for h in timed) / (ns_s / 3600)) if timed and ns_s else None,
            stock_phrases=phrases, label=labels[(recipe, recipe_hash)],
            wer_ci_note=too_few(len(pairs)) if pairs else None,
        ))
    return out


def paired(rows: Sequence[dict], a: str, b: str) -> Paired:
    """Recipe ``a`` against ``b`` (labels, see :func:`recipe_labels`) on the recordings both scored: the corpus
    WER difference a − b, its paired bootstrap interval and the paired permutation test's p-value (``p_holm``
    equals it: a family of one; :func:`comparisons` adjusts over all the pairs)."""
    labels = recipe_labels(rows)
    per: dict[str, dict[str, tuple[int, int]]] = {}
    for r in rows:
        counts = _wer_counts(r)
        if counts is not None:
            per.setdefault(r["recording"]["path"], {})[labels[recipe_key(r)]] = counts
    shared = [(v[a], v[b]) for v in per.values() if a in v and b in v]
    if not shared:
        return Paired(a, b, 0, None, None, None)

    wa, wb = _ratio([x for x, _ in shared]), _ratio([y for _, y in shared])
    observed = None if wa is None or wb is None else wa - wb
    n = len(shared)
    if too_few(n) or observed is None:
        return Paired(a, b, n, observed, None, None, None, too_few(n))
    errors = np.array([x[0] for x, _ in shared] + [y[0] for _, y in shared])
    lengths = np.array([x[1] for x, _ in shared] + [y[1] for _, y in shared])
    rate = _corpus_rate(errors, lengths)
    # a paired resample: the same recordings for both recipes (b's results sit n places after a's)
    ci = _bootstrap_ci(lambda idx, axis=-1: rate(idx, axis) - rate(idx + n, axis), n)
    p = _permutation_p(errors, lengths, n)
    return Paired(a, b, n, observed, ci, p, p)


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def num(x: float | None, fmt: str = ".2f") -> str:
    return "—" if x is None else format(x, fmt)


def _p(x: float | None, note: str | None = None) -> str:
    """A p-value to three places, or why there is none ("too few recordings (n=2)"), or —."""
    return (note or "—") if x is None else "< 0.001" if x < 0.001 else f"{x:.3f}"


def pct_interval(ci, note: str | None = None) -> str:
    """An interval, or why there is none ("too few recordings (n=2)"), or — (not measured)."""
    return (note or "—") if ci is None else f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f}%"


def table_rows(figs: Sequence[RecipeFigures]) -> tuple[list[str], list[list[str]]]:
    header = ["recipe", "recordings", "failed", "WER", "WER 95% CI", "RTFx", "cost $/audio h", "DER (±0.25 s)", "cpWER",
              "non-speech words/h"]
    body = [[f.label or f.recipe, str(f.recordings), str(f.failed), pct(f.wer), pct_interval(f.wer_ci, f.wer_ci_note),
             num(f.rtfx, ".1f"),
             num(f.cost_usd_per_audio_hour, ".4f"), pct(f.der), pct(f.cpwer), num(f.nonspeech_words_per_hour, ".1f")]
            for f in figs]
    return header, body


def comparisons(rows: Sequence[dict], figs: Sequence[RecipeFigures]) -> list[Paired]:
    """Every pair of recipe versions, p-values Holm-adjusted over the pairs that have one."""
    names = [f.label or f.recipe for f in figs]
    pairs = [paired(rows, a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    return [replace(p, p_holm=h) for p, h in zip(pairs, holm([p.p_value for p in pairs]))]


def did_not_run(rows: Sequence[dict]) -> list[dict]:
    """Per recipe, the recordings it did not process (unavailable, load failed, bad input): recipe, count, of
    (recordings it was asked to run on), reasons. These rows enter no corpus figure, interval or test."""
    out: dict[str, dict] = {}
    for r in rows:
        entry = out.setdefault(r["recipe"], {"recipe": r["recipe"], "count": 0, "of": 0, "reasons": []})
        entry["of"] += 1
        if not did_run(r):
            entry["count"] += 1
            if r.get("error") and r["error"] not in entry["reasons"]:
                entry["reasons"].append(r["error"])
    return [e for e in out.values() if e["count"]]


def _analysed(rows: Sequence[dict], analysis) -> tuple[list[RecipeFigures], list[Paired]]:
    """Corpus figures and paired comparisons (bootstraps included) over the rows that ran: computed once per
    report, shared by every format written together."""
    if analysis is not None:
        return analysis
    rows = [r for r in rows if did_run(r)]
    figs = figures(rows)
    return figs, comparisons(rows, figs)


def to_json(rows: Sequence[dict], run_id: str, analysis=None) -> str:
    """Strict JSON: non-finite numbers (rows written before results.jsonl was strict held Infinity) become null."""
    figs, pairs = _analysed(rows, analysis)
    return json.dumps(finite({"run_id": run_id, "recipes": [asdict(f) for f in figs],
                              "paired": [asdict(p) for p in pairs], "did_not_run": did_not_run(rows),
                              "results": list(rows)}),
                      indent=2, ensure_ascii=False, allow_nan=False, default=str)


CSV_COLUMNS = ["run_id", "recipe", "recipe_hash", "recording", "path", "duration_s", "error", "wer", "cer", "substitutions",
               "deletions", "insertions", "reference_words", "rtfx", "cost_usd_per_audio_hour", "peak_rss_mb", "der",
               "cpwer", "nonspeech_words_per_hour", "stock_phrases", "text"]


def to_csv(rows: Sequence[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        m = (r.get("metrics") or {}) if did_run(r) else {}  # a recipe that did not run has no figures
        der = next((d["der"] for d in (m.get("der") or []) if d.get("collar_s") == 0.5), None)
        h = m.get("hallucination") or {}
        cells = [r.get("run_id"), r["recipe"], r["recipe_hash"], r["recording"]["id"], r["recording"]["path"],
                 r["recording"]["duration_s"], _error_cell(r), m.get("wer"), m.get("cer"), m.get("substitutions"),
                 m.get("deletions"), m.get("insertions"), m.get("reference_words"), r.get("rtfx"),
                 r.get("cost_usd_per_audio_hour"), r.get("peak_rss_mb"), der, (m.get("cpwer") or {}).get("cpwer"),
                 h.get("words_per_hour_nonspeech"), ";".join(h.get("stock_phrases") or []),
                 (r.get("transcript") or {}).get("text", "")]
        writer.writerow([_csv_safe(c) for c in cells])
    return buf.getvalue()


def _error_cell(row: dict) -> str:
    return ("did not run: " if not did_run(row) else "") + (row.get("error") or "")


def _not_run_lines(rows: Sequence[dict]) -> list[str]:
    """The "did not run" lines of a report: recipe, how many recordings, why."""
    return [f"{d['recipe']}: did not run on {d['count']} of {d['of']} recordings: {'; '.join(d['reasons'])}"
            for d in did_not_run(rows)]


CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may read as a formula (OWASP)


def _csv_safe(value):
    """No string cell (model output, recipe names, file names, error text) may become a spreadsheet formula:
    one starting with a formula character gets a leading apostrophe. Numbers stay numbers."""
    return "'" + value if isinstance(value, str) and value.startswith(CSV_FORMULA_STARTS) else value


def to_markdown(rows: Sequence[dict], run_id: str, analysis=None) -> str:
    from workbench.summary import _md

    figs, pairs = _analysed(rows, analysis)
    header, body = table_rows(figs)
    lines = [f"# Report {run_id}", "", f"{len({r['recording']['path'] for r in rows})} recordings, {len(figs)} recipes.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in body]
    if pairs:
        lines += ["", "## Paired comparisons (WER, over the recordings both scored)", "",
                  "| recipes | recordings | WER difference | 95% CI | p | p (Holm) |", "|---|---|---|---|---|---|"]
        for p in pairs:
            lines.append(f"| {_md(p.a)} − {_md(p.b)} | {p.recordings} | {pct(p.wer_difference)} | "
                         f"{pct_interval(p.ci, p.note)} | {_p(p.p_value, p.note)} | {_p(p.p_holm, p.note)} |")
    if skipped := _not_run_lines(rows):
        lines += ["", "## Did not run (in no figure above)", ""] + [f"- {_md(x)}" for x in skipped]
    lines += ["", STATISTICS_NOTE + " — means not measured (no reference, or every run failed)."]
    return "\n".join(lines) + "\n"


STATISTICS_NOTE = (
    f"WER 95% CIs: percentile bootstrap over recordings ({BOOTSTRAP_SAMPLES:,} resamples, seeded). Paired comparisons: "
    "95% CI of the WER difference from a paired bootstrap, two-sided p from a paired permutation test (exact up to "
    f"{EXACT_UP_TO} recordings, {PERMUTATIONS:,} random swaps beyond), the same p Holm-adjusted over all the pairs "
    "in p (Holm). Recipes named name@hash are different versions of one recipe. Intervals and p-values need at "
    f"least {MIN_RECORDINGS} recordings scored (fewer: \"too few recordings\").")


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
td:first-child,th:first-child{text-align:left}.chart{display:block;margin:1em 0}.chart text{font:12px sans-serif}
.chart .t{font-weight:bold}.chart .m{fill:#999;font-style:italic}.chart .b{fill:#4a78b5}
.sub{background:#fde2a7}del{background:#f6c1c1}ins{background:#c8efc8;text-decoration:none}
.tx td{text-align:left;max-width:520px}"""


def _flagged_windows(rows: Sequence[dict]) -> list[str]:
    """One line per audio-LLM window with a coverage flag (details.windows[].flag)."""
    labels = recipe_labels(rows)
    return [f"{labels[recipe_key(r)]} on {r['recording']['id']} {w.get('start', 0):.1f}–{w.get('end', 0):.1f} s: {w['flag']}"
            for r in rows for w in ((r.get("details") or {}).get("windows") or []) if w.get("flag")]


def to_html(rows: Sequence[dict], run_id: str, analysis=None, references: Sequence[str | Path] = ()) -> str:
    """``references``: the folders and files reference texts may be read from (the run folder, paths the user
    gave); a reference elsewhere gets a note instead of a diff view."""
    e = html.escape
    labels = recipe_labels(rows)
    figs, pairs = _analysed(rows, analysis)
    header, body = table_rows(figs)
    charts = [
        _bars("WER (lower is better)", [(f.label or f.recipe, f.wer) for f in figs], lambda v: f"{100 * v:.1f}%"),
        _bars("RTFx: audio seconds per processing second (higher is faster)", [(f.label or f.recipe, f.rtfx) for f in figs], lambda v: f"{v:.1f}"),
        _bars("Cost per audio hour ($)", [(f.label or f.recipe, f.cost_usd_per_audio_hour) for f in figs], lambda v: f"${v:.4f}"),
        _bars("Words in reference non-speech per hour of it", [(f.label or f.recipe, f.nonspeech_words_per_hour) for f in figs], lambda v: f"{v:.1f}"),
    ]
    stages = sorted({s for f in figs for s in f.stage_s})
    for stage in stages:
        charts.append(_bars(f"Latency: {stage} (seconds, all recordings)", [(f.label or f.recipe, f.stage_s.get(stage)) for f in figs],
                            lambda v: f"{v:.2f} s"))
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Report {e(run_id)}</title>",
             "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
             f"<style>{CSS}</style></head><body><h1>Report {e(run_id)}</h1>",
             "<table id=figures><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"]
    parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body]
    parts.append(f"</table><p>{e(STATISTICS_NOTE)} — means not measured.</p>")
    if pairs:
        parts.append("<h2>Paired comparisons</h2><table id=paired><tr><th>recipes</th><th>recordings</th><th>WER difference</th>"
                     "<th>95% CI</th><th>p</th><th>p (Holm)</th></tr>")
        parts += [f"<tr><td>{e(p.a)} − {e(p.b)}</td><td>{p.recordings}</td><td>{pct(p.wer_difference)}</td>"
                  f"<td>{e(pct_interval(p.ci, p.note))}</td><td>{e(_p(p.p_value, p.note))}</td><td>{e(_p(p.p_holm, p.note))}</td></tr>"
                  for p in pairs]
        parts.append("</table>")
    if skipped := _not_run_lines(rows):
        parts.append("<h2>Did not run</h2><p>In no figure on this page.</p><ul id=did-not-run>"
                     + "".join(f"<li>{e(x)}</li>" for x in skipped) + "</ul>")
    if flagged := _flagged_windows(rows):
        parts.append("<h2>Coverage flags</h2><p>Windows whose output was cut short at the output cap, empty, or far "
                     "shorter than their speech (their words are missing from the figures above).</p><ul id=coverage>"
                     + "".join(f"<li>{e(x)}</li>" for x in flagged) + "</ul>")
    parts.append("<h2>Charts</h2>" + "".join(charts))
    parts.append("<h2>Per recording</h2><table id=recordings><tr><th>recording</th><th>recipe</th><th>WER</th><th>RTFx</th>"
                 "<th>error</th></tr>")
    for r in rows:
        m = r.get("metrics") or {}
        parts.append(f"<tr><td>{e(r['recording']['id'])}</td><td>{e(labels[recipe_key(r)])}</td>"
                     f"<td>{pct(m.get('wer')) if did_run(r) else 'did not run'}</td>"
                     f"<td>{num(r.get('rtfx'), '.1f')}</td><td>{e(_error_cell(r))}</td></tr>")
    parts.append("</table><h2>Transcripts</h2>")
    by_recording: dict[str, list[dict]] = {}
    for r in rows:
        if did_run(r):  # a recipe that did not run has no transcript to show
            by_recording.setdefault(r["recording"]["path"], []).append(r)
    for path, rs in by_recording.items():
        reference, note = _reference_text((rs[0].get("metrics") or {}).get("reference"), references)
        parts.append(f"<h3>{e(rs[0]['recording']['id'])}</h3>" + (f"<p class=note>{e(note)}</p>" if note else "")
                     + "<table class=tx><tr>"
                     + ("<th>reference</th>" if reference is not None else "")
                     + "".join(f"<th>{e(labels[recipe_key(r)])}</th>" for r in rs) + "</tr><tr>"
                     + (f"<td>{e(reference)}</td>" if reference is not None else ""))
        for r in rs:
            text = (r.get("transcript") or {}).get("text", "")
            parts.append(f"<td>{diff_html(reference, text) if reference is not None else e(text)}</td>")
        parts.append("</tr></table>")
    parts.append("<p>Marked against the reference after Whisper normalisation: <span class=sub>substituted</span> "
                 "(hover: the reference word), <del>deleted</del>, <ins>inserted</ins>.</p></body></html>")
    return "".join(parts)


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
    """Write ``report.<fmt>`` files to ``out_dir``. Reference texts (the HTML diff view) are read only from
    ``run_dir`` (the folder the results belong to; ``out_dir`` when not given) and ``references`` (files or
    folders the user named)."""
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
        # a reader never sees half a report
        write_atomic(path, render(rows, run_id, fmt, analysis, (run_dir or out_dir, *references)))
        paths.append(path)
    return paths
