"""One recording × one recipe: what came out, how well, how fast, at what cost, and what produced it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from workbench.cost import ApiPrice, HardwarePrice, usd_per_audio_hour
from workbench.datamodel import Recording, StageTiming, Transcript, Usage
from workbench.execution import Execution
from workbench.metrics import ErrorCounts
from workbench.scoring import Scores
from workbench.tasks.answers import TaskResult

SCHEMA_VERSION = 1
__all__ = ["RunResult", "Scores", "SCHEMA_VERSION", "ERROR_KINDS", "DID_NOT_RUN", "error_kind_of", "did_run"]

#: What went wrong, when something did (``error_kind`` in results.jsonl):
#: ``unavailable`` — the recipe cannot run here (missing package, model or key): it did not run;
#: ``load-failed`` — its models failed to load: it did not run;
#: ``bad-input`` — the recording could not be decoded;
#: ``transient`` — it ran, and a request failed in a way retrying may fix (timeout, 429, 5xx, refused connection);
#: ``failed`` — it ran and failed on this recording (its output scores as all deletions).
ERROR_KINDS = ("unavailable", "load-failed", "bad-input", "transient", "failed")
#: kinds where the recipe never processed the recording: shown as "did not run", kept out of corpus figures
DID_NOT_RUN = frozenset({"unavailable", "load-failed", "bad-input"})


def error_kind_of(row: dict) -> str | None:
    """The ``error_kind`` of a results.jsonl row; derived from ``error_stage`` for rows written before it existed."""
    if not row.get("error"):
        return None
    kind = row.get("error_kind")
    if kind in ERROR_KINDS:
        return kind
    stage, error = row.get("error_stage"), str(row.get("error"))
    if stage == "check" or error.startswith("unavailable:"):
        return "unavailable"
    if stage == "load":
        return "load-failed"
    if stage == "decode":
        return "bad-input"
    return "failed"


def did_run(row: dict) -> bool:
    """Whether the recipe processed the recording (successfully or not) — False for "did not run" rows."""
    return error_kind_of(row) not in DID_NOT_RUN


def hallucination_json(h) -> dict:
    return {
        "nonspeech_words": h.nonspeech_words,
        "nonspeech_s": None if h.nonspeech_s is None else round(h.nonspeech_s, 3),
        "words_per_hour_nonspeech": None if h.words_per_hour_nonspeech is None else round(h.words_per_hour_nonspeech, 2),
        "nonspeech_examples": list(h.nonspeech_examples),
        "nonspeech_collar_s": 0.25,
        "stock_phrases": list(h.stock_phrases),
        "repeated_ngrams_beyond_reference": h.repetition.excess,
        "longest_repeat_run": h.repetition.longest_run,
        "repeat_example": h.repetition.example or None,
    }


def counts_json(counts: ErrorCounts | None) -> dict | None:
    if counts is None:
        return None
    return {"wer": counts.rate, "substitutions": counts.substitutions, "deletions": counts.deletions,
            "insertions": counts.insertions, "reference_words": counts.reference_length}


@dataclass(frozen=True)
class RunResult:
    run_id: str
    recipe: str
    recipe_hash: str
    pipeline: str
    recording: Recording
    transcript: Transcript | None
    timings: tuple[StageTiming, ...] = ()
    usage: Usage = field(default_factory=Usage)
    scores: Scores | None = None
    error: str | None = None
    error_stage: str | None = None
    error_kind: str | None = None  # one of ERROR_KINDS when error is set
    peak_rss_mb: float | None = None
    price: HardwarePrice | None = None
    api_price: ApiPrice | None = None
    api_stage: str | None = None  # the stage whose calls api_price covers; other stages run on ``price``'s hardware
    components: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    hardware: dict = field(default_factory=dict)
    recipe_path: str = ""
    created_at: str = ""
    #: how it ran: executor, workers at once, CPU threads the models were given, cores
    execution: Execution = field(default_factory=Execution)
    #: the questions asked of this recording and how each was answered and scored (``tasks`` in results.jsonl;
    #: empty when the run asked none)
    tasks: tuple[TaskResult, ...] = ()
    #: the derived figures as a results.jsonl row holds them (processing_s, cpu_s, rtfx, cost_usd_per_audio_hour, cost),
    #: set by :meth:`from_json` only: a result read back reports exactly the figures that were written (rounded,
    #: priced with the table of its day), not figures recomputed from rounded timings
    written: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def kind(self) -> str | None:
        """``error_kind``, derived from the stage for results made without one."""
        return error_kind_of({"error": self.error, "error_kind": self.error_kind, "error_stage": self.error_stage})

    @property
    def did_run(self) -> bool:
        return self.kind not in DID_NOT_RUN

    @property
    def text(self) -> str:
        """The transcript's text ("" when there is none) — as the row held it, for a row read back."""
        return self.written.get("text", self.transcript.text if self.transcript else "")

    @property
    def load_s(self) -> float | None:
        return next((t.wall_s for t in self.timings if t.stage == "load"), None)

    @property
    def processing_s(self) -> float | None:
        """Wall seconds of the pipeline's stages, model load excluded; None for a failed run."""
        if "processing_s" in self.written:
            return self.written["processing_s"]
        if not self.ok:
            return None
        return sum(t.wall_s for t in self.timings if t.stage != "load")

    @property
    def cpu_s(self) -> float | None:
        if "cpu_s" in self.written:
            return self.written["cpu_s"]
        if not self.ok:
            return None
        return sum(t.cpu_s or 0.0 for t in self.timings if t.stage != "load")

    @property
    def rtfx(self) -> float | None:
        """Audio seconds per processing second (higher is faster); None when not measurable."""
        if "rtfx" in self.written:
            return self.written["rtfx"]
        processing = self.processing_s
        if not processing or processing <= 0:
            return None
        return self.recording.duration_s / processing

    @property
    def hybrid(self) -> bool:
        """Local stages on priced hardware plus one stage's API calls (a cascade with a remote formatter)."""
        return self.api_price is not None and self.price is not None and self.api_stage not in (None, "model")

    @property
    def api_cost_usd_per_audio_hour(self) -> float | None:
        if not self.ok or self.api_price is None:
            return None
        return self.api_price.usd_per_audio_hour(self.usage.audio_s, self.usage.input_tokens, self.usage.output_tokens)

    @property
    def hardware_cost_usd_per_audio_hour(self) -> float | None:
        """Hardware $/hour ÷ RTFx — of the local stages only when another stage's calls are priced by an API."""
        if not self.ok or self.price is None:
            return None
        if not self.hybrid:
            return usd_per_audio_hour(self.price, self.rtfx)
        local_s = sum(t.wall_s for t in self.timings if t.stage not in ("load", self.api_stage))
        return usd_per_audio_hour(self.price, self.recording.duration_s / local_s if local_s > 0 else None)

    @property
    def cost_usd_per_audio_hour(self) -> float | None:
        """API recipes: usage × the API price; self-hosted: hardware $/hour ÷ RTFx; a cascade with a priced remote
        formatter: both (local stages ÷ their RTFx + the formatter's usage × price). None if unmeasurable."""
        if "cost_usd_per_audio_hour" in self.written:
            return self.written["cost_usd_per_audio_hour"]
        if not self.ok:
            return None
        if self.hybrid:
            parts = (self.hardware_cost_usd_per_audio_hour, self.api_cost_usd_per_audio_hour)
            return None if None in parts else sum(parts)
        if self.api_price is not None:
            return self.api_cost_usd_per_audio_hour
        return self.hardware_cost_usd_per_audio_hour

    def to_json(self) -> dict:
        """The results.jsonl form: every figure present, ``null`` where it could not be measured."""
        s = self.scores
        words = s.words if s else None
        chars = s.chars if s else None
        transcript = self.transcript or Transcript()
        return {
            "schema": SCHEMA_VERSION,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "recipe": self.recipe,
            "recipe_hash": self.recipe_hash,
            "recipe_path": self.recipe_path,
            "pipeline": self.pipeline,
            "recording": asdict(self.recording),
            "transcript": {
                "text": transcript.text,
                "language": transcript.language,
                "segments": [
                    {
                        "start": s.start,
                        "end": s.end,
                        "speaker": s.speaker,
                        "text": s.text,
                        "words": [[w.start, w.end, w.text, w.probability] for w in s.words],
                    }
                    for s in transcript.segments
                ],
                "formatted": transcript.formatted,
                "summary": transcript.summary,
            },
            "metrics": {
                "wer": words.rate if words else None,
                "cer": chars.rate if chars else None,
                "substitutions": words.substitutions if words else None,
                "deletions": words.deletions if words else None,
                "insertions": words.insertions if words else None,
                "hits": words.hits if words else None,
                "reference_words": words.reference_length if words else None,
                "char_errors": chars.errors if chars else None,
                "reference_chars": chars.reference_length if chars else None,
                "normalizer": self.scores.normalizer if self.scores else None,
                "reference": self.scores.reference if self.scores else None,
                "reference_format": self.scores.reference_format if self.scores else None,
                "asr": counts_json(s.asr_words) if s else None,
                "formatting_drift": counts_json(s.drift) if s else None,
                "der": [
                    {"der": d.rate, "collar_s": d.collar, "collar": f"±{d.collar / 2:g} s around reference boundaries",
                     "skip_overlap": d.skip_overlap, "total_s": round(d.total, 3), "false_alarm_s": round(d.false_alarm, 3),
                     "missed_s": round(d.missed, 3), "confusion_s": round(d.confusion, 3)}
                    for d in s.der
                ] if s and s.der else None,
                "cpwer": None if not s or s.cpwer is None else {
                    **counts_json(s.cpwer.words), "cpwer": s.cpwer.words.rate,
                    "missed_speakers": s.cpwer.missed_speakers, "falarm_speakers": s.cpwer.falarm_speakers},
                "speaker_reference": s.speaker_reference if s else None,
                "hallucination": hallucination_json(s.hallucination) if s and s.hallucination else None,
            },
            "speakers": {
                "count": len(transcript.speakers),
                "estimated": transcript.speaker_count_estimated,
                "turns": [[t.start, t.end, t.speaker] for t in transcript.turns],
            } if transcript.speaker_count_estimated is not None else None,
            "timings": {t.stage: round(t.wall_s, 4) for t in self.timings},
            "cpu_timings": {t.stage: None if t.cpu_s is None else round(t.cpu_s, 4) for t in self.timings},
            "stage_details": {t.stage: t.detail for t in self.timings if t.detail},
            "processing_s": _round(self.processing_s),
            "cpu_s": _round(self.cpu_s),
            "rtfx": _round(self.rtfx),
            "peak_rss_mb": _round(self.peak_rss_mb, 1),
            "usage": asdict(self.usage),
            "cost_usd_per_audio_hour": _round(self.cost_usd_per_audio_hour, 6),
            "cost": self.cost_json(),
            "error": self.error,
            "error_stage": self.error_stage,
            "error_kind": self.kind,
            "components": self.components,
            "details": self.details,
            "versions": self.versions,
            "hardware": self.hardware,
            "execution": self.execution.to_json(),
            "tasks": [t.to_json() for t in self.tasks],
        }

    @classmethod
    def from_json(cls, row: dict) -> RunResult:
        """The inverse of :meth:`to_json`, for every row shape results.jsonl and the store hold: fields a row
        written by an older version lacks take their defaults (``error_kind`` is derived from the stage, a
        missing ``execution`` is the default one). The derived figures (processing_s, cpu_s, rtfx, cost) are
        those written in the row (see ``written``). Lossy only where the row is: character errors come back as
        one count (``ErrorCounts.substitutions``; the rate and the error count are the same), ``hits`` of the
        stage/drift/cpWER counts as 0 (not written)."""
        from workbench.datamodel import Segment, Turn, Word

        t = row.get("transcript") or {}
        speakers = row.get("speakers")
        segments = tuple(Segment(s.get("start"), s.get("end"), s.get("text") or "", s.get("speaker"),
                                 tuple(Word(*w) for w in s.get("words") or ()))
                         for s in t.get("segments") or ())
        if not segments and t.get("text"):  # a hand-written row with a text and no segments: one untimed segment
            segments = (Segment(None, None, t["text"]),)
        transcript = Transcript(
            segments=segments,
            language=t.get("language"), formatted=t.get("formatted"), summary=t.get("summary"),
            turns=tuple(Turn(*x) for x in (speakers or {}).get("turns") or ()),
            speaker_count_estimated=None if speakers is None else speakers.get("estimated"),
        ) if row.get("transcript") is not None else None
        cpu, details = row.get("cpu_timings") or {}, row.get("stage_details") or {}
        timings = tuple(StageTiming(stage, wall, cpu.get(stage), details.get(stage) or {})
                        for stage, wall in (row.get("timings") or {}).items())
        price, api_price, api_stage = _prices_from_json(row.get("cost"))
        rec = dict(row["recording"])
        recording = Recording(rec["id"], rec["path"], rec["duration_s"], rec.get("sample_rate", 0), rec.get("channels", 0),
                              rec.get("codec", ""))
        # a row without usage (hand-written, or older) did not count its calls: None, not 0
        usage = Usage(**{k: v for k, v in row["usage"].items() if k in Usage.__dataclass_fields__}) if row.get(
            "usage") else Usage(audio_s=0.0, calls=None)
        written = {k: row[k] for k in ("processing_s", "cpu_s", "rtfx", "cost_usd_per_audio_hour", "cost") if k in row}
        if transcript is not None and t.get("text") is not None and t["text"] != transcript.text:
            written["text"] = t["text"]  # a hand-written row whose text is not its segments' (see ``text``)
        metrics = row.get("metrics")
        return cls(
            run_id=row.get("run_id") or "", recipe=row["recipe"], recipe_hash=row.get("recipe_hash") or "",
            pipeline=row.get("pipeline") or "", recording=recording, transcript=transcript, timings=timings,
            usage=usage, scores=Scores.from_json(metrics) if metrics is not None else None,
            error=row.get("error"), error_stage=row.get("error_stage"), error_kind=error_kind_of(row),
            peak_rss_mb=row.get("peak_rss_mb"), price=price, api_price=api_price, api_stage=api_stage,
            components=row.get("components") or {}, details=row.get("details") or {},
            versions=row.get("versions") or {}, hardware=row.get("hardware") or {},
            recipe_path=row.get("recipe_path") or "", created_at=row.get("created_at") or "",
            execution=Execution.from_json(row["execution"]) if row.get("execution") else Execution(),
            tasks=tuple(TaskResult.from_json(t) for t in row.get("tasks") or ()),
            written=written,
        )

    def cost_json(self) -> dict | None:
        """How the cost was priced: the API row, the hardware row (and whether it matches this machine), or both
        (``cost`` in results.jsonl) — as the row held it, for a result read back."""
        if "cost" in self.written:
            return self.written["cost"]
        api = None if self.api_price is None else {
            "api": self.api_price.id, "usd_per_audio_minute": self.api_price.usd_per_audio_minute,
            "usd_per_1m_input_tokens": self.api_price.usd_per_1m_input_tokens,
            "usd_per_1m_output_tokens": self.api_price.usd_per_1m_output_tokens,
            "source": self.api_price.source, "date": self.api_price.date, "method": "API: usage × price",
        }
        hardware = None if self.price is None else {
            "hardware": self.price.id, "usd_per_hour": self.price.usd_per_hour, "source": self.price.source,
            "date": self.price.date, "method": "self-hosted: hardware $/hour ÷ RTFx", "matched": self.price.matched,
            **({"note": self.price.note} if self.price.note else {}),
        }
        if self.hybrid:
            return {
                "method": f"self-hosted stages: hardware $/hour ÷ RTFx of the stages other than {self.api_stage}; "
                          f"{self.api_stage}: API usage × price; cost = the sum",
                "hardware": {**hardware, "usd_per_audio_hour": _round(self.hardware_cost_usd_per_audio_hour, 6)},
                "api": {**api, "stage": self.api_stage, "usd_per_audio_hour": _round(self.api_cost_usd_per_audio_hour, 6)},
            }
        return api if api is not None else hardware


def _prices_from_json(cost: dict | None) -> tuple[HardwarePrice | None, ApiPrice | None, str | None]:
    """(hardware price, API price, the stage the API prices) from a row's ``cost`` (see ``RunResult.cost_json``)."""
    if not cost:
        return None, None, None
    hybrid = isinstance(cost.get("hardware"), dict)
    hw = cost["hardware"] if hybrid else cost if "hardware" in cost else None
    api = cost["api"] if hybrid else cost if "api" in cost else None
    price = None if hw is None else HardwarePrice(hw["hardware"], hw["usd_per_hour"], hw.get("source", ""),
                                                   hw.get("date", ""), matched=hw.get("matched", True),
                                                   note=hw.get("note", ""))
    api_price = None if api is None else ApiPrice(api["api"], api.get("source", ""), api.get("date", ""),
                                                  api.get("usd_per_audio_minute"), api.get("usd_per_1m_input_tokens"),
                                                  api.get("usd_per_1m_output_tokens"))
    return price, api_price, (api or {}).get("stage") if hybrid else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)
