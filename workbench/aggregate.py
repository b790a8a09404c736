"""The one aggregation of results into corpus figures, the statistics over them, the one metric table, and the
verdict — what the terminal, summary.md, the HTML/MD/JSON/CSV reports and the dashboard all render.

Input: results as :class:`~workbench.result.RunResult` objects, or results.jsonl / store rows (read through
:meth:`RunResult.from_json`). Corpus figures add up over recordings (WER = Σerrors / Σreference words; RTFx =
Σaudio / Σprocessing seconds; cost = the audio-weighted mean of each result's $/audio hour) and are computed per
recipe *version*: results are grouped by (recipe name, recipe hash), so a recipe edited between runs is never
averaged with its old self; a name with several hashes among the results is shown as ``name@1a2b3c4``. Results
that did not run (:data:`~workbench.result.DID_NOT_RUN`: unavailable, load failed, bad input) enter no figure,
interval or test: they are counted in ``not_run`` with their reasons. A recipe that ran and failed on a recording
scores it as all deletions. A figure that could not be measured is ``None`` (shown "—"), never 0.

Statistics (scipy.stats, seeded, so the same results always give the same figures), only with at least
:data:`MIN_RECORDINGS` scored recordings — below that the interval and the p-value are ``None`` with a reason
("too few recordings (n=2)"): a percentile bootstrap over two or three recordings only re-shuffles them, and an
exact paired test on five cannot reach p < 0.05 two-sided (2/2⁵ = 0.0625).

- the corpus-WER interval: ``scipy.stats.bootstrap`` over recordings (ratio of sums, 95% percentile);
- a paired comparison of two recipes on the recordings both measured: the interval of the difference of their
  corpus figures (paired ``scipy.stats.bootstrap``) and a two-sided p-value from a paired permutation test
  (``scipy.stats.permutation_test``, ``permutation_type="samples"``: each recording's two results swapped or
  not; exact, enumerating every swap, up to 13 recordings), Holm-adjusted over the pairs compared together.
  Every corpus figure here is a ratio of sums over recordings (WER: errors / words; speed: processing s /
  audio s; cost: $ / audio h; hallucination: non-speech words / non-speech hours), so one test serves them all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from workbench.formatting import MISSING, number, pct, pct_interval
from workbench.metrics import ErrorCounts
from workbench.metrics.diarization import CpWer, DerCounts
from workbench.result import RunResult

BOOTSTRAP_SAMPLES = 1000
EXACT_UP_TO = 13  # the paired test enumerates all 2ⁿ swaps up to this many recordings (8,192)
PERMUTATIONS = 1999  # random swaps beyond that (p-values resolve to 1/2,000: enough next to 0.05, and fast)
SEED = 0
MIN_RECORDINGS = 6  # the fewest scored recordings with an interval or a p-value (see the module docstring)
ALPHA = 0.05  # the verdict calls a difference significant when its Holm-adjusted p is below this
DID_NOT_RUN_CELL = "did not run"


# --- input ----------------------------------------------------------------------------------------


def as_results(results: Sequence[RunResult | dict]) -> list[RunResult]:
    """Objects, whatever came in: results.jsonl / store rows go through :meth:`RunResult.from_json`."""
    return [r if isinstance(r, RunResult) else RunResult.from_json(r) for r in results]


def recipe_key(r: RunResult | dict) -> tuple[str, str]:
    """What corpus figures group by: one recipe version (name, hash)."""
    if isinstance(r, RunResult):
        return r.recipe, r.recipe_hash or ""
    return r["recipe"], r.get("recipe_hash") or ""


def recipe_labels(results: Sequence[RunResult | dict]) -> dict[tuple[str, str], str]:
    """(name, hash) → what a table calls it: the name, or ``name@1a2b3c4`` when the results hold several hashes
    of that name (a recipe edited between runs)."""
    keys = list(dict.fromkeys(recipe_key(r) for r in results))
    versions: dict[str, int] = {}
    for name, _ in keys:
        versions[name] = versions.get(name, 0) + 1
    return {(name, h): f"{name}@{h[:7]}" if versions[name] > 1 else name for name, h in keys}


# --- statistics -----------------------------------------------------------------------------------


def too_few(n: int, unit: str = "recordings") -> str | None:
    """The reason there is no interval or p-value over ``n`` recordings (or other ``unit``s: questions), or None
    when there can be one."""
    return f"too few {unit} (n={n})" if n < MIN_RECORDINGS else None


def _ratio(pairs: Sequence[tuple[float, float]]) -> float | None:
    total = sum(n for _, n in pairs)
    return sum(e for e, _ in pairs) / total if total else None


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


def ratio_interval(pairs: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """The 95% percentile bootstrap interval (seeded) of Σnumerator / Σdenominator over the ``pairs`` (one per
    recording, or per question: (1 or 0, 1) gives an accuracy); None below :data:`MIN_RECORDINGS` pairs."""
    return _bootstrap(list(pairs))


def _bootstrap(pairs: list[tuple[float, float]]) -> tuple[float, float] | None:
    if too_few(len(pairs)):
        return None
    errors, lengths = np.array([e for e, _ in pairs]), np.array([n for _, n in pairs])
    return _bootstrap_ci(_corpus_rate(errors, lengths), len(pairs))


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


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value of two paired right/wrong records (questions answered by two recipes): the
    binomial test (p = ½) of the discordant pairs — ``only_a`` right only for a, ``only_b`` right only for b —
    by ``scipy.stats.binomtest`` (statsmodels, whose ``mcnemar(exact=True)`` is the same test, is not a
    dependency); 1.0 when there is no discordant pair."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    return float(min(1.0, _scipy_stats().binomtest(only_a, n, 0.5, alternative="two-sided").pvalue))


def _permutation_p(errors: np.ndarray, lengths: np.ndarray, n: int) -> float:
    """Two-sided p-value of the paired permutation test of the corpus-rate difference. ``errors``/``lengths``
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


@dataclass(frozen=True)
class Paired:
    a: str  # recipe labels (see recipe_labels)
    b: str
    recordings: int
    wer_difference: float | None  # a − b (of the figure compared: WER unless said otherwise)
    ci: tuple[float, float] | None
    p_value: float | None  # two-sided, paired permutation test
    p_holm: float | None = None  # p_value Holm-adjusted over the pairs compared together
    note: str | None = None  # why there is no interval / p-value ("too few recordings (n=2)")


def _paired_test(a: str, b: str, per_a: dict[str, tuple[float, float]], per_b: dict[str, tuple[float, float]]) -> Paired:
    """Recipe a against b on the recordings both measured: each recording's (numerator, denominator) of a
    ratio-of-sums figure. The difference a − b, its paired bootstrap interval, the paired permutation p."""
    shared = [(per_a[k], per_b[k]) for k in per_a if k in per_b]
    if not shared:
        return Paired(a, b, 0, None, None, None)
    wa, wb = _ratio([x for x, _ in shared]), _ratio([y for _, y in shared])
    observed = None if wa is None or wb is None else wa - wb
    n = len(shared)
    if too_few(n) or observed is None:
        return Paired(a, b, n, observed, None, None, None, too_few(n))
    errors = np.array([x[0] for x, _ in shared] + [y[0] for _, y in shared], dtype=float)
    lengths = np.array([x[1] for x, _ in shared] + [y[1] for _, y in shared], dtype=float)
    rate = _corpus_rate(errors, lengths)
    # a paired resample: the same recordings for both recipes (b's results sit n places after a's)
    ci = _bootstrap_ci(lambda idx, axis=-1: rate(idx, axis) - rate(idx + n, axis), n)
    p = _permutation_p(errors, lengths, n)
    return Paired(a, b, n, observed, ci, p, p)


# --- per-recording measures (the numerator and denominator of each corpus figure) ----------------------


def _wer_measure(r: RunResult) -> tuple[float, float] | None:
    w = r.scores.words if r.scores else None
    return None if w is None else (w.errors, w.reference_length)


def _time_measure(r: RunResult) -> tuple[float, float] | None:
    """processing seconds per audio second (1 / RTFx): lower is faster."""
    return (r.processing_s, r.recording.duration_s) if r.ok and r.processing_s and r.recording.duration_s else None


def _cost_measure(r: RunResult) -> tuple[float, float] | None:
    c = r.cost_usd_per_audio_hour if r.ok else None
    return None if c is None or not r.recording.duration_s else (c * r.recording.duration_s, r.recording.duration_s)


def _nonspeech_measure(r: RunResult) -> tuple[float, float] | None:
    h = r.scores.hallucination if r.ok and r.scores else None
    if h is None or h.nonspeech_words is None or not h.nonspeech_s:
        return None
    return h.nonspeech_words, h.nonspeech_s / 3600


def _per_recording(results: Sequence[RunResult], labels, measure) -> dict[str, dict[str, tuple[float, float]]]:
    """label → recording path → the measure, over the results that ran."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for r in results:
        if r.did_run and (m := measure(r)) is not None:
            out.setdefault(labels[recipe_key(r)], {})[r.recording.path] = m
    return out


def paired(results: Sequence[RunResult | dict], a: str, b: str) -> Paired:
    """Recipe ``a`` against ``b`` (labels, see :func:`recipe_labels`) on the recordings both scored: the corpus
    WER difference a − b, its paired bootstrap interval and the paired permutation test's p-value (``p_holm``
    equals it: a family of one; :func:`comparisons` adjusts over all the pairs)."""
    results = as_results(results)
    per = _per_recording(results, recipe_labels(results), _wer_measure)
    return _paired_test(a, b, per.get(a, {}), per.get(b, {}))


def comparisons(results: Sequence[RunResult | dict], summaries: Sequence[RecipeSummary]) -> list[Paired]:
    """Every pair of the recipe versions that ran, WER compared, p-values Holm-adjusted over the pairs."""
    results = as_results(results)
    per = _per_recording(results, recipe_labels(results), _wer_measure)
    names = [s.shown for s in summaries if s.ran]
    pairs = [_paired_test(a, b, per.get(a, {}), per.get(b, {})) for i, a in enumerate(names) for b in names[i + 1:]]
    return [replace(p, p_holm=h) for p, h in zip(pairs, holm([p.p_value for p in pairs]))]


# --- the corpus figures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipeSummary:
    """One recipe version's corpus figures over a selection of results."""

    recipe: str
    recipe_hash: str
    recordings: int  # recordings it processed (successfully or not)
    failed: int
    words: ErrorCounts | None
    chars: ErrorCounts | None
    asr_words: ErrorCounts | None
    drift: ErrorCounts | None
    der: dict[float, DerCounts]
    cpwer: CpWer | None
    speakers_estimated: bool | None
    audio_s: float
    processing_s: float | None
    load_s: float | None
    stage_s: dict[str, float]
    cpu_s: float | None
    peak_rss_mb: float | None
    cost_usd_per_audio_hour: float | None
    errors: tuple[str, ...]
    calls: int | None = None
    coverage_flags: int | None = None
    formatter_chunks_cut: int | None = None
    nonspeech_words: int | None = None
    nonspeech_s: float | None = None
    stock_phrases: dict[str, int] = field(default_factory=dict)  # phrase → results it was found in
    repeat_excess: int | None = None
    not_run: int = 0  # recordings the recipe did not process (unavailable, load failed, bad input): in no figure
    not_run_reasons: tuple[str, ...] = ()
    label: str = ""  # the name, or name@short-hash when the results hold several versions of the recipe
    wer_ci: tuple[float, float] | None = None  # 95% bootstrap interval of the corpus WER over recordings
    wer_ci_note: str | None = None  # why there is no interval ("too few recordings (n=2)")
    load_reused: bool = False  # a model load was skipped: the models were still loaded from an earlier run
    any_ok: bool = False  # at least one recording finished

    @property
    def ran(self) -> bool:
        return self.recordings > 0

    @property
    def shown(self) -> str:
        return self.label or self.recipe

    @property
    def wer(self) -> float | None:
        return self.words.rate if self.words else None

    def der_rate(self, collar: float) -> float | None:
        return self.der[collar].rate if collar in self.der else None

    @property
    def cpwer_rate(self) -> float | None:
        return self.cpwer.words.rate if self.cpwer else None

    @property
    def nonspeech_words_per_hour(self) -> float | None:
        if self.nonspeech_words is None or not self.nonspeech_s:
            return None
        return self.nonspeech_words / (self.nonspeech_s / 3600)

    @property
    def rtfx(self) -> float | None:
        if not self.processing_s:
            return None
        return self.audio_s / self.processing_s

    def to_json(self) -> dict:
        """The JSON report's figures of one recipe version (plain values, ``null`` where not measured)."""
        return {
            "recipe": self.recipe, "recipe_hash": self.recipe_hash, "label": self.shown,
            "recordings": self.recordings, "failed": self.failed, "not_run": self.not_run,
            "wer": self.wer, "wer_ci": list(self.wer_ci) if self.wer_ci else None, "wer_ci_note": self.wer_ci_note,
            "errors": self.words.errors if self.words else None,
            "reference_words": self.words.reference_length if self.words else None,
            "cer": self.chars.rate if self.chars else None,
            "asr_wer": self.asr_words.rate if self.asr_words else None,
            "formatting_drift": self.drift.rate if self.drift else None,
            "rtfx": self.rtfx, "processing_s": self.processing_s, "cost_usd_per_audio_hour": self.cost_usd_per_audio_hour,
            "stage_s": dict(self.stage_s), "der": self.der_rate(0.5), "der_no_collar": self.der_rate(0.0),
            "cpwer": self.cpwer_rate, "nonspeech_words_per_hour": self.nonspeech_words_per_hour,
            "stock_phrases": dict(self.stock_phrases), "repeat_excess": self.repeat_excess,
            "peak_rss_mb": self.peak_rss_mb, "calls": self.calls,
        }


def _total(values):
    values = [v for v in values if v is not None]
    return sum(values[1:], values[0]) if values else None


def summarize(results: Sequence[RunResult | dict], *, intervals: bool = True) -> list[RecipeSummary]:
    """One summary per recipe version (name, hash), in order of first appearance (see the module docstring);
    ``intervals``: compute the corpus-WER bootstrap interval (scipy; off for a quick terminal table)."""
    results = as_results(results)
    labels = recipe_labels(results)
    by_recipe: dict[tuple[str, str], list[RunResult]] = {}
    for r in results:
        by_recipe.setdefault(recipe_key(r), []).append(r)
    out = []
    for (recipe, recipe_hash), every in by_recipe.items():
        rs = [r for r in every if r.did_run]
        skipped = [r for r in every if not r.did_run]
        ok = [r for r in rs if r.ok]
        scored_words = [r.scores.words for r in rs if r.scores and r.scores.words is not None]
        scored_chars = [r.scores.chars for r in rs if r.scores and r.scores.chars is not None]
        der: dict[float, DerCounts] = {}
        for r in rs:
            for d in (r.scores.der if r.scores else ()):
                # summed from the seconds (a row's written rate is per recording)
                der[d.collar] = (der[d.collar] if d.collar in der else DerCounts(d.collar, d.skip_overlap)) + d
        halluc = [r.scores.hallucination for r in ok if r.scores and r.scores.hallucination]
        timed_h = [h for h in halluc if h.nonspeech_words is not None]
        all_timed = bool(timed_h) and len(timed_h) == len(halluc)
        estimated = [r.transcript.speaker_count_estimated for r in rs
                     if r.transcript and r.transcript.speaker_count_estimated is not None]
        stage_s: dict[str, float] = {}
        for r in ok:
            for t in r.timings:
                if t.stage != "load":
                    stage_s[t.stage] = stage_s.get(t.stage, 0.0) + t.wall_s
        processing = sum(r.processing_s or 0.0 for r in ok) if ok else None
        phrases: dict[str, int] = {}
        for h in halluc:
            for p in h.stock_phrases:
                phrases[p] = phrases.get(p, 0) + 1
        wer_pairs = [m for m in (_wer_measure(r) for r in rs) if m is not None]
        loads = [r.load_s for r in rs if r.load_s is not None]
        out.append(RecipeSummary(
            recipe=recipe, recipe_hash=recipe_hash, label=labels[(recipe, recipe_hash)],
            recordings=len(rs), failed=len(rs) - len(ok),
            words=sum(scored_words, ErrorCounts()) if scored_words else None,
            chars=sum(scored_chars, ErrorCounts()) if scored_chars else None,
            asr_words=_total([r.scores.asr_words for r in rs if r.scores]),
            drift=_total([r.scores.drift for r in rs if r.scores]),
            der=der,
            cpwer=_total([r.scores.cpwer for r in rs if r.scores]),
            speakers_estimated=any(estimated) if estimated else None,
            audio_s=sum(r.recording.duration_s for r in ok),
            processing_s=processing,
            load_s=max(loads) if loads else None,
            stage_s=stage_s,
            cpu_s=sum(r.cpu_s or 0.0 for r in ok) if ok else None,
            peak_rss_mb=max((r.peak_rss_mb for r in rs if r.peak_rss_mb is not None), default=None),
            cost_usd_per_audio_hour=_cost(ok),
            errors=tuple(dict.fromkeys(r.error for r in rs if r.error)),
            calls=sum(r.usage.calls for r in ok) if ok and all(r.usage.calls is not None for r in ok) else None,
            coverage_flags=sum(r.details.get("coverage_flags", 0) for r in ok)
            if any("coverage_flags" in r.details for r in ok) else None,
            formatter_chunks_cut=sum(r.details.get("formatter_chunks_cut", 0) for r in ok)
            if any("formatter_chunks_cut" in r.details for r in ok) else None,
            nonspeech_words=sum(h.nonspeech_words for h in timed_h) if all_timed else None,
            nonspeech_s=sum(h.nonspeech_s for h in timed_h) if all_timed else None,
            stock_phrases=phrases,
            repeat_excess=sum(h.repetition.excess for h in halluc)
            if halluc and all(h.repetition.excess is not None for h in halluc) else None,
            not_run=len(skipped),
            not_run_reasons=tuple(dict.fromkeys(r.error or "" for r in skipped)),
            wer_ci=_bootstrap(wer_pairs) if intervals else None,
            wer_ci_note=too_few(len(wer_pairs)) if wer_pairs else None,
            load_reused=any((t.detail or {}).get("reused") for r in rs for t in r.timings if t.stage == "load"),
            any_ok=bool(ok),
        ))
    return out


def _cost(ok: list[RunResult]) -> float | None:
    """The audio-weighted mean of each finished result's $/audio hour (for a self-hosted recipe that is the
    hardware $/hour ÷ the corpus RTFx); None when any of them is unknown."""
    costed = [(r.cost_usd_per_audio_hour, r.recording.duration_s) for r in ok]
    audio = sum(d for _, d in costed)
    if not costed or not audio or any(c is None for c, _ in costed):
        return None
    return sum(c * d for c, d in costed) / audio


# --- the one metric table -------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One row of the metric table: ``label``; ``get`` the figure of a summary (None: not measured); ``fmt``
    how it is written; ``better`` "min" / "max" / None (which value is marked best); ``short`` its column header
    in the reports' recipes-as-rows table (None: not there); ``cell`` overrides how a cell is written."""

    label: str
    get: Callable[[RecipeSummary], float | None]
    fmt: Callable[[float | None], str]
    better: str | None = None
    short: str | None = None
    cell: Callable[[RecipeSummary], str] | None = None
    every: bool = False  # ``cell`` writes the recipes that did not run too (otherwise: "did not run")


def _ci_cell(s: RecipeSummary) -> str:
    return pct_interval(s.wer_ci, s.wer_ci_note)


def _load_cell(s: RecipeSummary) -> str:
    text = number(".2f")(s.load_s)
    return text + (" (reused)" if s.load_reused and text != MISSING else "")


METRICS: tuple[Metric, ...] = (
    Metric("WER", lambda s: s.wer, pct, "min", short="WER"),
    Metric("WER 95% CI (bootstrap over recordings)", lambda s: None, pct, None, short="WER 95% CI", cell=_ci_cell),
    Metric("CER", lambda s: s.chars.rate if s.chars else None, pct, "min"),
    Metric("ASR-stage WER", lambda s: s.asr_words.rate if s.asr_words else None, pct, "min"),
    Metric("formatting drift (WER ASR → formatted)", lambda s: s.drift.rate if s.drift else None, pct, "min"),
    Metric("cpWER", lambda s: s.cpwer_rate, pct, "min", short="cpWER"),
    Metric("DER (no collar, overlap scored)", lambda s: s.der_rate(0.0), pct, "min"),
    Metric("DER (±0.25 s collar, overlap scored)", lambda s: s.der_rate(0.5), pct, "min", short="DER (±0.25 s)"),
    Metric("substitutions", lambda s: s.words.substitutions if s.words else None, number("d")),
    Metric("deletions", lambda s: s.words.deletions if s.words else None, number("d")),
    Metric("insertions", lambda s: s.words.insertions if s.words else None, number("d")),
    Metric("reference words", lambda s: s.words.reference_length if s.words else None, number("d")),
    Metric("RTFx (audio s / processing s)", lambda s: s.rtfx, number(".1f"), "max", short="RTFx"),
    Metric("processing s (load excluded)", lambda s: s.processing_s, number(".2f"), "min"),
    # the stages' latency rows go here (see metric_rows)
    Metric("model load s", lambda s: s.load_s, number(".2f"), "min", cell=_load_cell),
    Metric("CPU s", lambda s: s.cpu_s, number(".2f"), "min"),
    Metric("peak RSS MB", lambda s: s.peak_rss_mb, number(".0f"), "min"),
    Metric("cost $/audio hour", lambda s: s.cost_usd_per_audio_hour, number(".4f"), "min", short="cost $/audio h"),
    Metric("words in reference non-speech (per hour of it)", lambda s: s.nonspeech_words_per_hour, number(".1f"), "min",
           short="non-speech words/h"),
    Metric("repeated n-grams beyond the reference", lambda s: s.repeat_excess, number("d"), "min"),
    Metric("model calls", lambda s: s.calls, number("d")),
    Metric("coverage flags (windows with missing output)", lambda s: s.coverage_flags, number("d"), "min"),
    Metric("formatter chunks cut at the token cap", lambda s: s.formatter_chunks_cut, number("d"), "min"),
    Metric("stock hallucination phrases", lambda s: None, str,
           cell=lambda s: (", ".join(sorted(s.stock_phrases)) or "none") if s.any_ok else MISSING),
    Metric("speaker count", lambda s: None, str,
           cell=lambda s: MISSING if s.speakers_estimated is None else "estimated" if s.speakers_estimated else "given"),
    Metric("failed recordings", lambda s: None, str, cell=lambda s: f"{s.failed}/{s.recordings}" if s.ran else MISSING,
           every=True),
)
STAGE_AFTER = "processing s (load excluded)"  # the per-stage latency rows follow this row


@dataclass(frozen=True)
class MetricRow:
    label: str
    cells: tuple[str, ...]
    best: tuple[bool, ...]  # the best value of the row (only where lower/higher is better and 2+ are measured)


def _metrics(summaries: Sequence[RecipeSummary]) -> list[Metric]:
    stages = list(dict.fromkeys(st for s in summaries if s.ran for st in s.stage_s))
    out: list[Metric] = []
    for m in METRICS:
        if m.label == "WER 95% CI (bootstrap over recordings)" and not any(
                s.wer_ci or s.recordings > 1 for s in summaries if s.ran):
            continue  # one recording each: no interval to speak of
        out.append(m)
        if m.label == STAGE_AFTER:
            out += [Metric(f"latency: {st} s", lambda s, st=st: s.stage_s.get(st), number(".2f")) for st in stages]
    if any(s.not_run for s in summaries):
        out.append(Metric("did not run (recordings, in no figure)", lambda s: None, str, cell=lambda s: str(s.not_run),
                          every=True))
    return out


def metric_rows(summaries: Sequence[RecipeSummary]) -> list[MetricRow]:
    """The metric table (metrics × recipe versions) every face renders: formatted cells, "did not run" for a
    recipe with no result that ran, the best measured value of each row marked (where 2+ are measured)."""
    rows = []
    for m in _metrics(summaries):
        if m.every:
            rows.append(MetricRow(m.label, tuple(m.cell(s) for s in summaries), (False,) * len(summaries)))
            continue
        values = [m.get(s) if s.ran else None for s in summaries]
        cells = tuple((m.cell(s) if m.cell else m.fmt(v)) if s.ran else DID_NOT_RUN_CELL for v, s in zip(values, summaries))
        present = [v for v in values if v is not None]
        target = (min(present) if m.better == "min" else max(present)) if m.better and len(present) > 1 else None
        rows.append(MetricRow(m.label, cells, tuple(target is not None and v == target for v in values)))
    return rows


def report_columns(summaries: Sequence[RecipeSummary]) -> tuple[list[str], list[list[str]]]:
    """The reports' recipes-as-rows table: the metrics that have a ``short`` header, one row per version that ran."""
    metrics = [m for m in METRICS if m.short]
    header = ["recipe", "recordings", "failed", *(m.short for m in metrics)]
    body = [[s.shown, str(s.recordings), str(s.failed), *((m.cell(s) if m.cell else m.fmt(m.get(s))) for m in metrics)]
            for s in summaries if s.ran]
    return header, body


# --- the verdict ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    name: str  # accuracy, speed, cost, hallucination
    best: str | None  # the recipe version that is best on it (None: not measured, or only one measured)
    sentence: str
    test: Paired | None = None  # best against the runner-up (of the measure below), p Holm-adjusted over the axes


@dataclass(frozen=True)
class Verdict:
    axes: tuple[Axis, ...]
    not_run: tuple[str, ...] = ()  # recipe versions with no result that ran

    @property
    def lines(self) -> list[str]:
        out = [a.sentence for a in self.axes]
        if self.not_run:
            out.append("Did not run (in no verdict): " + ", ".join(self.not_run) + ".")
        return out


# axis, figure getter, better, per-recording measure (numerator, denominator: lower is better), phrase, fmt
_AXES = (
    ("accuracy", lambda s: s.wer, "min", _wer_measure, "is most accurate", lambda v: f"WER {100 * v:.1f}%"),
    ("speed", lambda s: s.rtfx, "max", _time_measure, "is fastest", lambda v: f"RTFx {v:.1f}"),
    ("cost", lambda s: s.cost_usd_per_audio_hour, "min", _cost_measure, "is cheapest", lambda v: f"${v:.4f}/audio h"),
    ("hallucination", lambda s: s.nonspeech_words_per_hour, "min", _nonspeech_measure,
     "invents the fewest words where the reference has no speech", lambda v: f"{v:.1f} words/h of non-speech"),
)


def _by_how_much(axis: str, best: float, other: float) -> str:
    if axis == "accuracy":
        return f"{100 * (other - best):.1f} points lower"
    if axis == "speed":
        return f"{best / other:.1f}× faster" if other else "faster"
    if other == 0:
        return "lower"
    return f"{100 * (other - best) / other:.0f}% lower"


def _significance(test: Paired | None) -> str:
    if test is None or test.recordings == 0:
        return "no recording measured for both, so no test"
    if test.p_value is None:  # too few recordings, or nothing measured on the ones both have
        return f"n={test.recordings} recordings: too few to tell" if test.note else "no paired test possible"
    p = test.p_holm if test.p_holm is not None else test.p_value
    shown = "< 0.001" if p < 0.001 else f"{p:.3f}"
    word = "significant" if p < ALPHA else "not significant"
    return f"{word} on n={test.recordings} recordings (paired permutation test, p = {shown}, Holm over the axes)"


def verdict(results: Sequence[RunResult | dict], summaries: Sequence[RecipeSummary] | None = None) -> Verdict:
    """For each axis (accuracy: WER; speed: RTFx; cost: $/audio hour; hallucination: words in the reference's
    non-speech per hour, or stock phrases where no reference marks non-speech) which recipe version is best, by
    how much over the runner-up, and whether the difference is significant on these recordings (the paired
    permutation test of best against runner-up, Holm-adjusted over the axes; too few recordings say so)."""
    results = as_results(results)
    summaries = summarize(results, intervals=False) if summaries is None else summaries
    labels = recipe_labels(results)
    ran = [s for s in summaries if s.ran]
    found: list[tuple[str, str | None, str, str | None, Paired | None]] = []  # axis, best, sentence head, tail, test
    for axis, get, better, measure, phrase, fmt in _AXES:
        measured = [(s, get(s)) for s in ran if get(s) is not None]
        if axis == "hallucination" and not measured:
            found.append(_stock_phrases(ran))
            continue
        if not measured:
            why = {"accuracy": "no reference text", "speed": "no processing time measured",
                   "cost": "no price: give --hardware, or a recipe's API price"}.get(axis, "")
            found.append((axis, None, f"{axis.capitalize()}: not measured ({why}).", None, None))
            continue
        ordered = sorted(measured, key=lambda x: x[1], reverse=better == "max")
        (best, bv) = ordered[0]
        if len(ordered) == 1:
            found.append((axis, best.shown, f"{axis.capitalize()}: only {best.shown} measured ({fmt(bv)}).", None, None))
            continue
        (second, sv) = ordered[1]
        if bv == sv:
            head = f"{axis.capitalize()}: {best.shown} and {second.shown} tie ({fmt(bv)})"
        else:
            head = (f"{axis.capitalize()}: {best.shown} {phrase}: {fmt(bv)} against {fmt(sv)} for {second.shown} "
                    f"({_by_how_much(axis, bv, sv)})")
        per = _per_recording(results, labels, measure)
        test = _paired_test(best.shown, second.shown, per.get(best.shown, {}), per.get(second.shown, {}))
        found.append((axis, best.shown, head, "", test))
    adjusted = holm([t.p_value if t is not None else None for *_, t in found])
    axes = []
    for (axis, best, head, tail, test), p in zip(found, adjusted):
        if tail is None:  # a sentence of its own
            axes.append(Axis(axis, best, head))
            continue
        test = replace(test, p_holm=p)
        axes.append(Axis(axis, best, f"{head}; {_significance(test)}.", test))
    return Verdict(tuple(axes), tuple(s.shown for s in summaries if not s.ran))


def _stock_phrases(ran: Sequence[RecipeSummary]):
    """The hallucination axis where no reference marks non-speech: the stock phrases each recipe produced."""
    looked = [s for s in ran if s.any_ok]
    if not looked:
        return "hallucination", None, "Hallucination: not measured (no recipe finished a recording).", None, None
    clean = [s.shown for s in looked if not s.stock_phrases]
    found = [f"{s.shown} ({', '.join(sorted(s.stock_phrases))})" for s in looked if s.stock_phrases]
    if not found:
        text = "no recipe produced a stock hallucination phrase"
    elif not clean:
        text = "every recipe produced stock phrases: " + "; ".join(found)
    else:
        text = f"{', '.join(clean)} produced no stock hallucination phrase; " + "; ".join(found) + " did"
    return ("hallucination", clean[0] if len(clean) == 1 and found else None,
            f"Hallucination (no non-speech marked in a reference, stock phrases only): {text}.", None, None)


def verdict_lines(results: Sequence[RunResult | dict], summaries: Sequence[RecipeSummary] | None = None) -> list[str]:
    """The verdict's sentences (escape them for the medium they go to: they hold recipe names)."""
    return verdict(results, summaries).lines
