"""Side-by-side comparison of recipes, aggregated over recordings, for the terminal and Markdown.

Corpus figures add up: WER = Σerrors / Σreference words; RTFx = Σaudio seconds / Σprocessing seconds. They are
per recipe version (name, hash): a name with several hashes among the results shows as ``name@1a2b3c4``.
A figure that could not be measured is shown as "—", never as 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from workbench.cost import usd_per_audio_hour
from workbench.metrics import ErrorCounts
from workbench.metrics.diarization import CpWer, DerCounts
from workbench.result import RunResult

MISSING = "—"
DID_NOT_RUN_CELL = "did not run"


@dataclass(frozen=True)
class RecipeSummary:
    recipe: str
    recipe_hash: str
    recordings: int
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
    stock_phrases: tuple[str, ...] = ()
    repeat_excess: int | None = None
    not_run: int = 0  # recordings the recipe did not process (unavailable, load failed, bad input): in no figure
    not_run_reasons: tuple[str, ...] = ()
    label: str = ""  # the name, or name@short-hash when the results hold several versions of the recipe

    @property
    def ran(self) -> bool:
        return self.recordings > 0

    @property
    def shown(self) -> str:
        return self.label or self.recipe

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


def summarize(results: Sequence[RunResult]) -> list[RecipeSummary]:
    """One summary per recipe version (name, hash), in order of first appearance; results that did not run
    (:data:`~workbench.result.DID_NOT_RUN`) enter no figure: they are counted in ``not_run`` with their reasons.
    A recipe that ran and failed on a recording scores it as all deletions."""
    by_recipe: dict[tuple[str, str], list[RunResult]] = {}
    for r in results:
        by_recipe.setdefault((r.recipe, r.recipe_hash), []).append(r)
    versions: dict[str, int] = {}
    for name, _ in by_recipe:
        versions[name] = versions.get(name, 0) + 1
    out = []
    for (recipe, recipe_hash), every in by_recipe.items():
        rs = [r for r in every if r.did_run]
        skipped = [r for r in every if not r.did_run]
        ok = [r for r in rs if r.ok]
        scored_words = [r.scores.words for r in rs if r.scores and r.scores.words is not None]
        scored_chars = [r.scores.chars for r in rs if r.scores and r.scores.chars is not None]
        def total(values):
            values = [v for v in values if v is not None]
            return sum(values[1:], values[0]) if values else None

        der: dict[float, DerCounts] = {}
        for r in rs:
            for d in (r.scores.der if r.scores else ()):
                der[d.collar] = der[d.collar] + d if d.collar in der else d
        halluc = [r.scores.hallucination for r in ok if r.scores and r.scores.hallucination]
        timed_h = [h for h in halluc if h.nonspeech_words is not None]
        estimated = [r.transcript.speaker_count_estimated for r in rs if r.transcript and r.transcript.speaker_count_estimated is not None]
        stage_s: dict[str, float] = {}
        for r in ok:
            for t in r.timings:
                if t.stage != "load":
                    stage_s[t.stage] = stage_s.get(t.stage, 0.0) + t.wall_s
        processing = sum(r.processing_s for r in ok) if ok else None
        audio = sum(r.recording.duration_s for r in ok)
        rtfx = audio / processing if processing else None
        price = next((r.price for r in rs if r.price), None)
        out.append(
            RecipeSummary(
                recipe=recipe,
                recipe_hash=recipe_hash,
                label=f"{recipe}@{recipe_hash[:7]}" if versions[recipe] > 1 else recipe,
                recordings=len(rs),
                failed=len(rs) - len(ok),
                words=sum(scored_words, ErrorCounts()) if scored_words else None,
                chars=sum(scored_chars, ErrorCounts()) if scored_chars else None,
                asr_words=total([r.scores.asr_words for r in rs if r.scores]),
                drift=total([r.scores.drift for r in rs if r.scores]),
                der=der,
                cpwer=total([r.scores.cpwer for r in rs if r.scores]),
                speakers_estimated=any(estimated) if estimated else None,
                audio_s=audio,
                processing_s=processing,
                load_s=next((r.load_s for r in rs if r.load_s is not None), None),
                stage_s=stage_s,
                cpu_s=sum(r.cpu_s for r in ok) if ok else None,
                peak_rss_mb=max((r.peak_rss_mb for r in rs if r.peak_rss_mb is not None), default=None),
                cost_usd_per_audio_hour=_cost(ok, price, rtfx),
                errors=tuple(dict.fromkeys(r.error for r in rs if r.error)),
                calls=sum(r.usage.calls for r in ok) if ok else None,
                coverage_flags=sum(r.details.get("coverage_flags", 0) for r in ok)
                if any("coverage_flags" in r.details for r in ok) else None,
                formatter_chunks_cut=sum(r.details.get("formatter_chunks_cut", 0) for r in ok)
                if any("formatter_chunks_cut" in r.details for r in ok) else None,
                nonspeech_words=sum(h.nonspeech_words for h in timed_h) if timed_h and len(timed_h) == len(halluc) else None,
                nonspeech_s=sum(h.nonspeech_s for h in timed_h) if timed_h and len(timed_h) == len(halluc) else None,
                stock_phrases=tuple(dict.fromkeys(p for h in halluc for p in h.stock_phrases)),
                repeat_excess=sum(h.repetition.excess for h in halluc) if halluc else None,
                not_run=len(skipped),
                not_run_reasons=tuple(dict.fromkeys(r.error or "" for r in skipped)),
            )
        )
    return out


def _cost(ok: list[RunResult], price, rtfx: float | None) -> float | None:
    """API recipes: audio-weighted mean of each result's cost; self-hosted: $/hour ÷ corpus RTFx."""
    if any(r.api_price for r in ok):
        costed = [(r.cost_usd_per_audio_hour, r.recording.duration_s) for r in ok]
        if not costed or any(c is None for c, _ in costed):
            return None
        return sum(c * d for c, d in costed) / sum(d for _, d in costed)
    return usd_per_audio_hour(price, rtfx) if price else None


def _pct(x: float | None) -> str:
    return MISSING if x is None else f"{100 * x:.1f}%"


def _num(fmt: str) -> Callable[[float | None], str]:
    return lambda x: MISSING if x is None else format(x, fmt)


# (label, value getter, formatter, which is better: "min" / "max" / None)
ROWS: list[tuple[str, Callable[[RecipeSummary], float | None], Callable[[float | None], str], str | None]] = [
    ("WER", lambda s: s.words.rate if s.words else None, _pct, "min"),
    ("CER", lambda s: s.chars.rate if s.chars else None, _pct, "min"),
    ("ASR-stage WER", lambda s: s.asr_words.rate if s.asr_words else None, _pct, "min"),
    ("formatting drift (WER ASR → formatted)", lambda s: s.drift.rate if s.drift else None, _pct, "min"),
    ("cpWER", lambda s: s.cpwer.words.rate if s.cpwer else None, _pct, "min"),
    ("DER (no collar, overlap scored)", lambda s: s.der[0.0].rate if 0.0 in s.der else None, _pct, "min"),
    ("DER (±0.25 s collar, overlap scored)", lambda s: s.der[0.5].rate if 0.5 in s.der else None, _pct, "min"),
    ("substitutions", lambda s: s.words.substitutions if s.words else None, _num("d"), None),
    ("deletions", lambda s: s.words.deletions if s.words else None, _num("d"), None),
    ("insertions", lambda s: s.words.insertions if s.words else None, _num("d"), None),
    ("reference words", lambda s: s.words.reference_length if s.words else None, _num("d"), None),
    ("RTFx (audio s / processing s)", lambda s: s.rtfx, _num(".1f"), "max"),
    ("processing s (load excluded)", lambda s: s.processing_s, _num(".2f"), "min"),
    ("model load s", lambda s: s.load_s, _num(".2f"), "min"),
    ("CPU s", lambda s: s.cpu_s, _num(".2f"), "min"),
    ("peak RSS MB", lambda s: s.peak_rss_mb, _num(".0f"), "min"),
    ("cost $/audio hour", lambda s: s.cost_usd_per_audio_hour, _num(".4f"), "min"),
    ("words in reference non-speech (per hour of it)", lambda s: s.nonspeech_words_per_hour, _num(".1f"), "min"),
    ("repeated n-grams beyond the reference", lambda s: s.repeat_excess, _num("d"), "min"),
    ("model calls", lambda s: s.calls, _num("d"), None),
    ("coverage flags (windows with missing output)", lambda s: s.coverage_flags, _num("d"), "min"),
    ("formatter chunks cut at the token cap", lambda s: s.formatter_chunks_cut, _num("d"), "min"),
]


def table(summaries: Sequence[RecipeSummary], *, mark_best: Callable[[str], str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Rows of metrics × columns of recipes. ``mark_best`` wraps the best cell of rows that have one."""
    stages = list(dict.fromkeys(st for s in summaries for st in s.stage_s))
    rows = list(ROWS)
    for st in stages:
        rows.append((f"  {st} s", lambda s, st=st: s.stage_s.get(st), _num(".2f"), None))
    headers = ["metric", *(s.shown for s in summaries)]
    body = []
    for label, get, fmt, better in rows:
        values = [get(s) if s.ran else None for s in summaries]
        cells = [fmt(v) if s.ran else DID_NOT_RUN_CELL for v, s in zip(values, summaries)]
        present = [v for v in values if v is not None]
        if mark_best and better and len(present) > 1:
            best = min(present) if better == "min" else max(present)
            cells = [mark_best(c) if v == best else c for c, v in zip(cells, values)]
        body.append([label, *cells])
    body.append(["stock hallucination phrases", *(", ".join(s.stock_phrases) or "none" for s in summaries)])
    body.append(["speaker count", *("—" if s.speakers_estimated is None else "estimated" if s.speakers_estimated else "given"
                                     for s in summaries)])
    body.append(["failed recordings", *(f"{s.failed}/{s.recordings}" for s in summaries)])
    if any(s.not_run for s in summaries):
        body.append(["did not run (recordings, in no figure)", *(str(s.not_run) for s in summaries)])
    return headers, body


def markdown(results: Sequence[RunResult], *, title: str = "Comparison") -> str:
    """The Markdown summary written beside results.jsonl."""
    summaries = summarize(results)
    headers, body = table(summaries, mark_best=lambda c: f"**{c}**")
    lines = [f"# {title}", ""]
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


def _md(text: str, keep_bold: bool = False) -> str:
    """Escape untrusted text (model output, file names) for Markdown tables: no HTML, no table breaks."""
    text = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("\n", " ").replace("`", "'")
    if not keep_bold:
        text = text.replace("*", "\\*").replace("_", "\\_").replace("[", "\\[")
    return text
