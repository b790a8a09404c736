"""Run recipes on the probe suite, or on a recording with silence spliced in, and summarise.

Probe results are ordinary results (one per clip × recipe × repeat in results.jsonl; the reference is
"no speech"), so every other measure applies too. The summary per recipe: share of clips with any output,
words per minute of non-speech, the strings produced, stock phrases by name, whether repeats agreed — and, when
the clips were asked about (:data:`workbench.hallucination.understanding.PROBE_QUESTIONS`), how many answers
claimed speech where there is none.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from workbench.audio import SAMPLE_RATE, Audio
from workbench.hallucination.padding import Pad, pad_recording
from workbench.hallucination.probes import NO_SPEECH, Probe
from workbench.hallucination.understanding import claims_speech
from workbench.metrics import normalize
from workbench.result import RunResult
from workbench.formatting import md as _md
from workbench.runner import Item, run_recipes
from workbench.writers import MemoryWriter, ResultWriter


def run_probes(recipes, probes: Sequence[Probe], *, writer: ResultWriter, run_id: str, repeats: int = 1, **kwargs) -> list[RunResult]:
    items = [Item(p.audio(), (NO_SPEECH,)) for p in probes]
    results = []
    for recipe in recipes:  # models load once per recipe, not once per repeat
        results += run_recipes([recipe], items * repeats, writer=writer, run_id=run_id, **kwargs)
    return results


@dataclass(frozen=True)
class ProbeSummary:
    recipe: str
    clips: int
    clips_with_output: int
    words: int
    minutes: float
    outputs: dict[str, tuple[str, ...]]  # clip → distinct outputs over repeats
    stock_phrases: dict[str, int]
    failed: int
    repeatable: bool
    words_per_minute_spread: tuple[float, float] | None  # min, max over repeats (None with one repeat)
    not_run: int = 0  # results that did not run (unavailable, load failed): counted in no figure
    not_run_reasons: tuple[str, ...] = ()
    #: the probe questions answered (an answer that never came is not counted) and those that claimed speech
    answers: int = 0
    answers_claiming_speech: int = 0
    claim_examples: tuple[str, ...] = ()  # a few of those answers, as written

    @property
    def share_claiming_speech(self) -> float | None:
        return self.answers_claiming_speech / self.answers if self.answers else None

    @property
    def share_with_output(self) -> float | None:
        return self.clips_with_output / self.clips if self.clips else None

    @property
    def words_per_minute(self) -> float | None:
        return self.words / self.minutes if self.minutes else None


def summarize_probes(results: Sequence[RunResult]) -> list[ProbeSummary]:
    by_recipe: dict[str, list[RunResult]] = {}
    for r in results:
        by_recipe.setdefault(r.recipe, []).append(r)
    out = []
    for recipe, rs in by_recipe.items():
        ok = [r for r in rs if r.ok]
        texts: dict[str, list[str]] = {}
        for r in ok:
            texts.setdefault(r.recording.id, []).append(r.transcript.text if r.transcript else "")
        repeats = max((len(v) for v in texts.values()), default=0)
        minutes_once = sum({r.recording.id: r.recording.duration_s for r in ok}.values()) / 60
        per_repeat_wpm = [
            sum(len(normalize(v[i]).split()) for v in texts.values() if i < len(v)) / minutes_once for i in range(repeats)
        ] if minutes_once else []
        phrases = Counter(p for r in ok if r.scores and r.scores.hallucination for p in r.scores.hallucination.stock_phrases)
        clips = {r.recording.id: r for r in rs if r.did_run}  # a clip it did not run on is not a clip without output
        skipped = [r for r in rs if not r.did_run]
        with_output = sum(1 for clip, v in texts.items() if any(normalize(t) for t in v))
        claims = [(t, claims_speech(t)) for r in rs if r.did_run for t in r.tasks]
        counted = [(t, c) for t, c in claims if c is not None]
        out.append(ProbeSummary(
            recipe=recipe,
            clips=len(clips),
            clips_with_output=with_output,
            words=sum(len(normalize(t).split()) for v in texts.values() for t in v),
            minutes=sum(r.recording.duration_s for r in ok) / 60,
            outputs={clip: tuple(dict.fromkeys(v)) for clip, v in texts.items()},
            stock_phrases=dict(phrases),
            failed=len(rs) - len(ok) - len(skipped),
            repeatable=all(len(set(v)) == 1 for v in texts.values()),
            words_per_minute_spread=(min(per_repeat_wpm), max(per_repeat_wpm)) if repeats > 1 and per_repeat_wpm else None,
            not_run=len(skipped),
            not_run_reasons=tuple(dict.fromkeys(r.error or "" for r in skipped)),
            answers=len(counted),
            answers_claiming_speech=sum(1 for _, c in counted if c),
            claim_examples=tuple(dict.fromkeys(t.answer.strip() for t, c in counted if c))[:3],
        ))
    return out


def probe_markdown(results: Sequence[RunResult], title: str) -> str:
    summaries = summarize_probes(results)
    lines = [f"# {title}", "", "Clips with no speech in them: any word is invented.", "",
             "| recipe | clips with output | words / min of non-speech | stock phrases | repeats agree | failed |",
             "|---|---|---|---|---|---|"]
    for s in summaries:
        share = ("did not run" if s.not_run else "—") if s.share_with_output is None else \
            f"{s.clips_with_output}/{s.clips} ({100 * s.share_with_output:.0f}%)"
        wpm = "—" if s.words_per_minute is None else f"{s.words_per_minute:.1f}"
        if s.words_per_minute_spread:
            wpm += f" (range {s.words_per_minute_spread[0]:.1f}–{s.words_per_minute_spread[1]:.1f})"
        phrases = ", ".join(f"{_md(k)} ×{v}" for k, v in sorted(s.stock_phrases.items())) or "none"
        lines.append(f"| {_md(s.recipe)} | {share} | {wpm} | {phrases} | {'yes' if s.repeatable else 'no'} | {s.failed} |")
    if any(s.answers for s in summaries):
        lines += ["", "## Asked about the clips", "",
                  "Each clip was asked “What does the speaker say?” and “Describe what you hear.”: an answer that "
                  "claims speech (reports words, someone speaking) invents it.", "",
                  "| recipe | answers claiming speech | for example |", "|---|---|---|"]
        for s in summaries:
            share = "—" if s.share_claiming_speech is None else \
                f"{s.answers_claiming_speech}/{s.answers} ({100 * s.share_claiming_speech:.0f}%)"
            examples = " / ".join(f"“{_md(' '.join(e.split())[:120])}”" for e in s.claim_examples) or "—"
            lines.append(f"| {_md(s.recipe)} | {share} | {examples} |")
    lines += ["", "## What each recipe wrote", ""]
    for s in summaries:
        lines.append(f"### {_md(s.recipe)}")
        lines.append("")
        lines += [f"- did not run ({s.not_run} results, in no figure): {_md(e)}" for e in s.not_run_reasons]
        for clip, outs in s.outputs.items():
            shown = " / ".join(f"“{_md(o)}”" for o in outs if o) or "*(nothing)*"
            lines.append(f"- `{_md(clip)}`: {shown}")
        lines.append("")
    return "\n".join(lines) + "\n"


def padding_delta(recipes, item: Item, pads: list[Pad], *, writer: ResultWriter, run_id: str, **kwargs) -> list[dict]:
    """Each recipe on the original and on the padded recording; the padded result's
    ``metrics.hallucination.padding`` holds insertions with padding minus insertions without."""
    samples, reference, points = pad_recording(item.audio.samples, item.text_reference or item.references[0], pads)
    others = tuple(pad_recording(item.audio.samples, r, pads)[1] for r in item.references if r is not (item.text_reference or item.references[0]))
    recording = replace(item.audio.recording, id=f"{item.audio.recording.id}+pad", duration_s=round(len(samples) / SAMPLE_RATE, 3))
    padded = Item(Audio(recording, samples), (reference, *others), item.num_speakers)
    memory = MemoryWriter()
    route = _Route(writer, memory, recording.id)
    rows = []
    for recipe in recipes:  # one model load for both: originals written at once, padded ones completed below
        original, with_pad = run_recipes([recipe], [item, padded], writer=route, run_id=run_id, **kwargs)
        row = with_pad.to_json()
        before, after = _insertions(original), _insertions(with_pad)
        padding = {"pads": [str(p) for p in pads], "inserted_at_s": points, "insertions_original": before,
                   "insertions_padded": after, "delta": None if before is None or after is None else after - before}
        if row["metrics"].get("hallucination") is not None:
            row["metrics"]["hallucination"]["padding"] = padding
        else:
            row["metrics"]["hallucination"] = {"padding": padding}
        writer.write_json(row)
        h = with_pad.scores.hallucination if with_pad.scores else None
        rows.append({"recipe": recipe.name, **padding, "padded_text": with_pad.text,
                     "stock_phrases": list(h.stock_phrases) if h else []})
    return rows


@dataclass
class _Route:
    """Results for the padded recording go to ``held``, every other result to ``writer``."""

    writer: ResultWriter
    held: MemoryWriter
    padded_id: str

    def write(self, result: RunResult) -> None:
        (self.held if result.recording.id == self.padded_id else self.writer).write(result)


def _insertions(result: RunResult) -> int | None:
    if not result.ok or not result.scores or result.scores.words is None:
        return None
    return result.scores.words.insertions


def padding_markdown(rows: list[dict], title: str) -> str:
    lines = [f"# {title}", "", f"Pads: {', '.join(rows[0]['pads']) if rows else '—'} (digital silence).", "",
             "| recipe | insertions without pad | with pad | delta | stock phrases (padded) |", "|---|---|---|---|---|"]
    for r in rows:
        cells = ["—" if r[k] is None else str(r[k]) for k in ("insertions_original", "insertions_padded", "delta")]
        lines.append(f"| {_md(r['recipe'])} | " + " | ".join(cells) + f" | {_md(', '.join(r['stock_phrases'])) or 'none'} |")
    return "\n".join(lines) + "\n"

