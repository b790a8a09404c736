"""Run recipes over recordings: decode once, load each recipe's models once, score, write as you go.

A failing recipe records its error (its output scored as all deletions) and the others still run;
each result is appended to ``results.jsonl`` the moment it exists, so nothing finished is lost.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path

from workbench import environment
from workbench.audio import SAMPLE_RATE, Audio, load_audio
from workbench.cost import ApiPrice, HardwarePrice
from workbench.datamodel import Recording, Reference, StageTiming, Transcript
from workbench.errors import BackendUnavailable, WorkbenchError
from workbench.execution import Execution, apply_torch_threads, bound_heap_growth, limit_threads
from workbench.hooks import Hook, null_hook
from workbench.measure import StageClock, peak_rss_mb, reset_peak_rss
from workbench.datamodel import Usage
from workbench.pipelines import StageFailed, Traits, build_pipeline, pipeline_traits
from workbench.recipes import Availability, Recipe, check_recipe
from workbench.references import load_reference
from workbench.result import DID_NOT_RUN, RunResult
from workbench.scoring import Scores, score as score_output
from workbench.writers import RESULTS_FILE, MemoryWriter, ResultWriter, Writer, finite  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    """One recording with its reference(s), decoded and parsed."""

    audio: Audio
    references: tuple[Reference, ...] = ()
    num_speakers: int | None = None

    @property
    def text_reference(self) -> Reference | None:
        return next((r for r in self.references if r.has_text), None)


def load_item(audio_path: str, reference_paths: Sequence[str] = (), *, max_duration_s: float | None = None,
              num_speakers: int | None = None) -> Item:
    """Decode and parse up front, so bad input fails before any model is loaded."""
    kwargs = {} if max_duration_s is None else {"max_duration_s": max_duration_s}
    audio = load_audio(audio_path, **kwargs)
    if num_speakers is not None and num_speakers < 1:
        from workbench.errors import BadInputError

        raise BadInputError(f"speaker count must be at least 1 (got {num_speakers})")
    return Item(audio, tuple(load_reference(p) for p in reference_paths), num_speakers)


@dataclass(frozen=True)
class PendingItem:
    """A recording to decode only when a recipe reaches it, and to release right after (batches: one decoded
    recording in memory at a time). ``run_recipes`` takes these beside ``Item``s; one that cannot be decoded is
    recorded as a failed result (error_kind "bad-input") for that recipe and the others go on."""

    audio_path: str
    reference_paths: tuple[str, ...] = ()
    num_speakers: int | None = None

    def load(self) -> Item:
        return load_item(self.audio_path, self.reference_paths, num_speakers=self.num_speakers)


def _decoded(items, undecodable) -> Iterator[Item]:
    """The items in order, each ``PendingItem`` decoded when reached and not kept here after it is handed on;
    one that cannot be decoded goes to ``undecodable(pending, error)`` and is skipped."""
    for source in items:
        if isinstance(source, PendingItem):
            try:
                item = source.load()
            except WorkbenchError as exc:
                undecodable(source, exc)
                continue
        else:
            item = source
        yield item
        del item  # released before the next one is decoded


def _first_then(box: list, rest: Iterator[Item]) -> Iterator[Item]:
    """What ``box`` holds (taken out of it), then ``rest``."""
    while box:
        yield box.pop()
    yield from rest


RUN_ID_CHARACTERS = re.compile(r"[A-Za-z0-9._-]{1,128}")


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is safe as a folder name under the reports folder (letters, digits, ``.``, ``_``, ``-``;
    not ``.`` or ``..``; at most 128 characters), else BadInputError."""
    if not RUN_ID_CHARACTERS.fullmatch(run_id or "") or run_id in (".", ".."):
        from workbench.errors import BadInputError

        raise BadInputError(f"run id {run_id!r} is not allowed: use only letters, digits, '.', '_' and '-' "
                            "(at most 128; not '.' or '..') — it names the run's folder under the reports folder")
    return run_id


def distinct_recipes(recipes: Sequence[Recipe]) -> tuple[list[Recipe], list[tuple[str, str]]]:
    """Recipes with the same content (hash) under two names would produce the same result twice, and the store
    keeps one result per recipe hash: keep the first of each; returns (kept, [(dropped name, kept name)])."""
    first: dict[str, str] = {}
    kept, same = [], []
    for recipe in recipes:
        if recipe.hash in first:
            same.append((recipe.name, first[recipe.hash]))
        else:
            first[recipe.hash] = recipe.name
            kept.append(recipe)
    return kept, same


def seed_everything(seed: int = 0) -> None:
    """Seed what can be seeded, so the same recipe on the same audio gives the same numbers where the
    backend allows (CTranslate2's sampling at temperature fallback, torch, numpy). Imports nothing new."""
    import random
    import sys

    random.seed(seed)
    np = sys.modules.get("numpy")
    if np is not None:
        np.random.seed(seed)
    if (ct2 := sys.modules.get("ctranslate2")) is not None:
        ct2.set_random_seed(seed)
    if (torch := sys.modules.get("torch")) is not None:
        torch.manual_seed(seed)


def fresh_random_state(pipeline) -> dict | None:
    """Make the pipeline's next run start from the seeded random state, whatever ran on it before.

    Seeding is not enough for every backend: CTranslate2 draws its samples (faster-whisper's temperature
    fallback) from a per-thread generator seeded once, when a model's worker thread first samples, so a model
    that has sampled continues its random stream on the next recording (see ``FasterWhisper.fresh_random_state``).
    Backends that need it rebuild what holds the state. Returns ``{"stages": [...], "s": seconds}`` when something
    was rebuilt (what the result records), None when nothing needed it."""
    reset = getattr(pipeline, "fresh_random_state", None)
    if reset is None:
        return None
    start = time.perf_counter()
    stages = reset()
    if not stages:
        return None
    return {"stages": list(stages), "s": round(time.perf_counter() - start, 3)}


WARMUP_S = 2.0


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def score(item: Item, transcript: Transcript | None, normalizer: str, diarizes: bool | None = None,
          failed: bool = False, formats: bool | None = None, phrases=None) -> Scores | None:
    """Score against the item's references; a failed run's final output scores as empty (all deletions)."""
    return score_output(item.references, transcript, item.audio.duration_s, normalizer, diarizes=diarizes,
                        formats=formats, failed=failed or transcript is None, phrases=phrases)


def _prefixed(hook: Hook, prefix: str) -> Hook:
    def prefixed(step_name, artifact=None, *, total=None, completed=None):
        hook(f"{prefix}/{step_name}", artifact, total=total, completed=completed)

    return prefixed


@dataclass(frozen=True)
class _Loaded:
    pipeline: object
    load: StageTiming  # how long the load (and warm-up) took when it happened


class PipelinePool:
    """Loaded pipelines kept between runs (the dashboard holds one for its whole life), keyed by recipe name and
    hash: a second run of an unchanged recipe reuses the loaded models; an edited recipe loads anew.

    At most ``capacity`` pipelines stay loaded; the least recently used one not in use is unloaded first.
    One lease of a recipe at a time (a lock each, held while it loads and runs), so concurrent sessions load a
    recipe once and never share a model call. ``loads`` counts real loads (what a test checks to see that
    models were not loaded again)."""

    def __init__(self, capacity: int = 4):
        self.capacity = max(1, capacity)
        self.loads = 0
        self._loaded: OrderedDict[str, _Loaded] = OrderedDict()
        self._lock = threading.Lock()  # guards _loaded, _in_use and loads
        self._in_use: dict[str, threading.Lock] = {}

    @staticmethod
    def key(recipe: Recipe) -> str:
        return f"{recipe.name}@{recipe.hash}"

    def __contains__(self, recipe: Recipe) -> bool:
        return self.key(recipe) in self._loaded

    def __len__(self) -> int:
        return len(self._loaded)

    @contextmanager
    def lease(self, recipe: Recipe, load) -> Iterator[tuple[object, StageTiming, bool]]:
        """(pipeline, load timing, reused) for ``recipe``; ``load()`` → (pipeline, timing) builds it when it is
        not held (and raises as it would without a pool: nothing is kept after a failed load)."""
        key = self.key(recipe)
        with self._lock:
            in_use = self._in_use.setdefault(key, threading.Lock())
        try:
            with in_use:
                with self._lock:
                    entry = self._loaded.get(key)
                    if entry is not None:
                        self._loaded.move_to_end(key)
                reused = entry is not None
                if entry is None:
                    entry = _Loaded(*load())
                    with self._lock:
                        self.loads += 1
                        self._loaded[key] = entry
                        self._evict()
                yield entry.pipeline, entry.load, reused
        finally:
            with self._lock:
                self._evict()  # what stayed over capacity while in use goes now

    def _evict(self) -> None:
        """Unload least recently used pipelines not in use (their lock free) down to capacity; call under _lock."""
        while len(self._loaded) > self.capacity:
            idle = next((k for k in self._loaded if not self._in_use[k].locked()), None)
            if idle is None:
                return
            _unload(self._loaded.pop(idle).pipeline)

    def clear(self) -> None:
        with self._lock:
            for k in [k for k in self._loaded if not self._in_use[k].locked()]:
                _unload(self._loaded.pop(k).pipeline)


def _unload(pipeline) -> None:
    try:
        pipeline.unload()
    except Exception:  # noqa: BLE001 - unloading is best effort
        log.warning("unloading a pipeline failed", exc_info=True)


def run_recipes(
    recipes: Sequence[Recipe],
    items: Sequence[Item | PendingItem],
    *,
    writer: Writer,
    run_id: str,
    price: HardwarePrice | None = None,
    normalizer: str = "whisper-english",
    hook: Hook = null_hook,
    api_prices: dict[str, ApiPrice] | None = None,
    phrases=None,
    pool: PipelinePool | None = None,
    execution: Execution | None = None,
    questions=None,
) -> list[RunResult]:
    """Every recipe on every item; models load once per recipe and are released before the next — or, with a
    ``pool``, kept loaded for the next call. A ``PendingItem`` is decoded when its recipe reaches it and released
    after (so once per recipe); one that cannot be decoded is recorded as a failed result for that recipe.
    ``api_prices`` maps price-table ids to API prices, for recipes whose backend names one (``price = …``).
    ``execution`` says how this call runs (recorded in every result; default: in this process, alone, every core);
    when it names a thread count, this process's models get that many CPU threads. ``questions`` (a
    ``tasks.QuestionSet``): after each recording is transcribed (once), every recipe answers the questions that
    apply to it (``RunResult.tasks``; see :meth:`RecipeRun.ask`)."""
    # the cores of the machine this runs on (a Ray task's host may not be the driver's)
    execution = replace(execution or Execution(), cpu_count=os.cpu_count())
    bound_heap_growth()  # before the models load and start their threads
    if execution.threads:
        limit_threads(execution.threads)
    context = RunContext(writer, run_id, price, normalizer, hook, api_prices or {}, phrases, pool, execution, questions)
    results: list[RunResult] = []
    for recipe in recipes:
        results.extend(RecipeRun(recipe, context).run(items))
    return results


def api_price_id(recipe: Recipe) -> str | None:
    return next((getattr(s.options, "price") for s in recipe.stages if getattr(s.options, "price", None)), None)


def hardware_price_for(recipe: Recipe, availability, price: HardwarePrice | None,
                       api_price: ApiPrice | None) -> HardwarePrice | None:
    """The hardware price a result carries: none when a stage's server is elsewhere and no API price covers it
    (a remote model's cost is its API price — this machine's hourly price says nothing about it — and a remote
    formatter without a price makes the cost unknown, not the local stages' alone)."""
    remote = pipeline_traits(recipe).remote or bool(availability.remote)
    return None if remote and api_price is None else price


def api_price_stage(recipe: Recipe) -> str | None:
    """The stage whose calls the API price covers (``model`` of an audio-LLM recipe, a cascade's ``formatter``)."""
    return next((s.stage for s in recipe.stages if getattr(s.options, "price", None)), None)


@dataclass(frozen=True)
class RunContext:
    """What every recipe of one ``run_recipes`` call shares."""

    writer: Writer
    run_id: str
    price: HardwarePrice | None
    normalizer: str
    hook: Hook
    api_prices: dict[str, ApiPrice]
    phrases: object
    pool: PipelinePool | None
    execution: Execution
    questions: object = None  # a tasks.QuestionSet, or None: no questions asked


class RecipeRun:
    """One recipe over the recordings of a run: ``check`` whether it can run here, ``load`` its models once (or
    lease them from the pool), ``run_item`` per recording, ``fail_all`` when it cannot run. Each result is written
    the moment it exists."""

    def __init__(self, recipe: Recipe, context: RunContext):
        self.recipe = recipe
        self.context = context
        self.hook = _prefixed(context.hook, recipe.name)
        self.traits: Traits = pipeline_traits(recipe)
        self.api_price = context.api_prices.get(api_price_id(recipe) or "")
        self.price = context.price
        self.results: list[RunResult] = []
        self.load_clock = StageClock(self.hook)  # one load at most: a reused pipeline leaves it empty

    # --- the steps ------------------------------------------------------------------------------------------

    def run(self, items: Sequence[Item | PendingItem]) -> list[RunResult]:
        # decoded one at a time as the loops below reach them (PendingItem), each released before the next;
        # the first is decoded before the load (the warm-up runs on it) and held in ``first`` until it runs
        recordings = _decoded(items, self._undecodable)
        first: list[Item] = []
        availability = self.check()
        if not availability.ok:
            message = f"unavailable: {availability.reason}" + (f". To make it available: {availability.fix}" if availability.fix else "")
            log.info("%s: %s", self.recipe.name, message)
            return self.fail_all(recordings, message, "check", "unavailable")
        reset_peak_rss()
        first.extend(islice(recordings, 1))
        if not first:  # nothing could be decoded: no model to load
            return self.results
        with ExitStack() as held:
            try:
                pipeline, timed, reused = self.load(held, first)
            except BackendUnavailable as exc:
                return self.fail_all(_first_then(first, recordings), f"unavailable: {exc}", "load", "unavailable",
                                     self.load_clock.timings)
            except Exception as exc:  # noqa: BLE001 - a failing recipe must not stop the others
                log.exception("%s: model load failed", self.recipe.name)
                return self.fail_all(_first_then(first, recordings), f"load failed: {type(exc).__name__}: {exc}", "load",
                                     "load-failed", self.load_clock.timings)
            if reused:
                self.hook("load", StageTiming("load", 0.0, 0.0, {"reused": True}))
            loaded = _Run(pipeline, environment.versions(pipeline.versions()), pipeline.describe(),
                          # a reused pipeline reports the load it was made with (the models were not loaded again)
                          StageTiming("load", timed.wall_s, timed.cpu_s,
                                      {**timed.detail, "shared_by_recordings": len(items), **({"reused": True} if reused else {})}))
            for item in _first_then(first, recordings):
                result = self.run_item(loaded, item)
                del item  # released before the next recording is decoded
                self._emit(result)
        return self.results

    def check(self) -> Availability:
        """Whether the recipe can run here; sets the hardware price its results carry (none for a remote model
        that no API price covers)."""
        availability = check_recipe(self.recipe)
        self.price = hardware_price_for(self.recipe, availability, self.context.price, self.api_price)
        return availability

    def load(self, held: ExitStack, first: list[Item]) -> tuple[object, StageTiming, bool]:
        """(pipeline, load timing, reused): built, loaded and warmed up on the first recording — or leased from
        the pool — and released when ``held`` closes. Raises what the load raises (nothing stays loaded then)."""
        pool = self.context.pool
        if pool is None:
            pipeline, timed = self._load(first)
            held.callback(_unload, pipeline)
            return pipeline, timed, False
        return held.enter_context(pool.lease(self.recipe, lambda: self._load(first)))

    def run_item(self, loaded: _Run, item: Item) -> RunResult:
        """The recipe on one recording: a result scored against its references, or the failure recorded (with
        what the stages before the failing one produced)."""
        clock = StageClock(self.hook)
        fresh = None
        try:
            # same recipe, same audio → same output, whether the models are fresh or ran before (a reused pool
            # entry, an earlier recording). Outside the stage clock: its seconds are in no stage timing,
            # processing time, RTFx or cost; the row records them in its load detail (reseed_before_recording).
            fresh = fresh_random_state(loaded.pipeline)
            seed_everything()
            output = loaded.pipeline.run(item.audio.samples, clock, num_speakers=item.num_speakers)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001
            stage = clock.current or "run"
            item_load = _with_reseed(loaded.load, fresh)
            partial = exc.partial if isinstance(exc, StageFailed) else None
            cause = exc.cause if isinstance(exc, StageFailed) else exc
            if not isinstance(cause, WorkbenchError):
                log.error("%s failed on %s", self.recipe.name, item.audio.recording.id, exc_info=cause)
            r = self._result(item, transcript=partial.transcript if partial else None,
                             usage=partial.usage if partial else Usage(), error=f"{type(cause).__name__}: {cause}",
                             error_stage=stage, error_kind="transient" if getattr(cause, "transient", False) else "failed",
                             timings=(item_load, *clock.timings), versions=loaded.versions, components=loaded.components,
                             peak_rss_mb=peak_rss_mb(),
                             tasks=self.unanswered(item, f"the recipe failed on this recording ({stage}): {type(cause).__name__}: {cause}"))
            del cause, partial  # their tracebacks hold the recording's samples
            return r
        item_load = _with_reseed(loaded.load, fresh)
        peak = peak_rss_mb()  # of the transcription: answering runs after, outside every stage figure
        tasks, asked = self.ask(loaded.pipeline, item, output)
        details = {**output.details, "answering": asked} if asked else output.details
        return self._result(item, transcript=output.transcript, usage=output.usage, timings=(item_load, *clock.timings),
                            scores=self._score(item, output.transcript), details=details, versions=loaded.versions,
                            components=loaded.components, peak_rss_mb=peak, tasks=tasks)

    def ask(self, pipeline, item: Item, output) -> tuple[tuple, dict | None]:
        """Every question of the run that applies to this recording, answered by the recipe from the output it
        just produced (the transcript is computed once, whatever the number of questions): (task results, what
        ``details["answering"]`` records: questions, transcriptions, answer calls, answering seconds, and the
        answer model's load seconds when it loaded for this recording). Outside the stage clock: answering changes
        no transcription figure (processing time, RTFx, cost). A failing answer is that question's error (wrong
        and counted); the others go on."""
        from workbench.pipelines.answering import AnswerRefused
        from workbench.tasks.answers import task_result

        questions = self.context.questions
        asked = questions.questions_for(item.audio.recording.id) if questions is not None else ()
        if not asked:
            return (), None
        record: dict = {"questions": len(asked), "transcriptions": 1, "answer_calls": 0, "answer_s": 0.0, "load_s": None}
        loader = getattr(pipeline, "load_answering", None)
        if loader is None or not hasattr(pipeline, "answer"):
            return self.unanswered(item, f"the {self.recipe.pipeline} pipeline does not answer questions"), record
        start = time.perf_counter()
        try:
            if loader():
                record["load_s"] = round(time.perf_counter() - start, 3)
        except Exception as exc:  # noqa: BLE001 - the transcription result stands; its questions are errors
            log.warning("%s: the answer model did not load: %s", self.recipe.name, exc)
            return self.unanswered(item, f"the answer model did not load: {type(exc).__name__}: {exc}"), record
        tasks = []
        for i, question in enumerate(asked):
            self.hook("answer", None, total=len(asked), completed=i)
            start = time.perf_counter()
            try:
                answer = pipeline.answer(item.audio.samples, output, question)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - one failing answer must not stop the others
                latency = round(time.perf_counter() - start, 3)
                log.info("%s: question %s: %s", self.recipe.name, question.id, exc)
                refused = isinstance(exc, AnswerRefused)
                tasks.append(task_result(question, "", latency_s=latency, error=str(exc) if refused else
                                         f"{type(exc).__name__}: {exc}", strategy=exc.strategy if refused else None))
                record["answer_s"] += latency
                continue
            latency = round(time.perf_counter() - start, 3)
            record["answer_calls"] += answer.calls
            record["answer_s"] += latency
            tasks.append(task_result(question, answer.text, latency_s=latency,
                                     usage=Usage(answer.audio_s, answer.calls, answer.input_tokens, answer.output_tokens),
                                     strategy=answer.strategy, windows=answer.windows, cut_short=answer.cut_short))
        self.hook("answer", None, total=len(asked), completed=len(asked))
        record["answer_s"] = round(record["answer_s"], 3)
        return tuple(tasks), record

    def unanswered(self, item: Item, why: str) -> tuple:
        """The run's questions for this recording, each an error (wrong and counted): the recipe gave no answer."""
        from workbench.tasks.answers import task_result

        questions = self.context.questions
        if questions is None:
            return ()
        return tuple(task_result(q, "", error=why) for q in questions.questions_for(item.audio.recording.id))

    def fail_all(self, items: Iterator[Item], message: str, stage: str, kind: str, timings=()) -> list[RunResult]:
        """The same failure recorded for every recording (the recipe did not run, or its models did not load)."""
        for item in items:
            self._emit(self._result(item, transcript=None, error=message, error_stage=stage, error_kind=kind,
                                    timings=tuple(timings), versions=environment.versions()))
            del item
        return self.results

    # --- helpers ----------------------------------------------------------------------------------------------

    def _load(self, first: list[Item]) -> tuple[object, StageTiming]:
        pipeline = build_pipeline(self.recipe)
        try:
            with self.load_clock.stage("load") as detail:
                pipeline.load()
                apply_torch_threads()  # torch may have been imported by the load: give it this process's share
                seed_everything()
                detail["warmup_s"] = self._warm_up(pipeline, first[0] if first else None)
                # the warm-up may have sampled: the first recording starts from the seed (counted in load's time)
                if detail["warmup_s"] is not None and (fresh := fresh_random_state(pipeline)) is not None:
                    detail["reseed_after_warm_up"] = fresh
        except BaseException:
            _unload(pipeline)
            raise
        [timed] = self.load_clock.timings
        return pipeline, timed

    def _warm_up(self, pipeline, first: Item | None) -> float | None:
        """Run the pipeline once on the first seconds of the first recording, as part of ``load``, so one-time
        costs (JIT compilation, first-call allocations) are not charged to the first recording's stages.
        Skipped when a stage calls an API (a warm-up call would be billed); returns its seconds, or None when
        skipped."""
        if first is None or not getattr(pipeline, "warm_up", False) or self.traits.calls_api:
            return None
        samples = first.audio.samples[: int(WARMUP_S * SAMPLE_RATE)]
        start = time.perf_counter()
        try:
            pipeline.run(samples, StageClock())
        except Exception as exc:  # noqa: BLE001 - the real run will report any real problem
            log.info("%s: warm-up failed (%s); the first run pays the one-time costs", self.recipe.name, exc)
        return round(time.perf_counter() - start, 3)

    def _score(self, item: Item, transcript: Transcript | None, failed: bool = False) -> Scores | None:
        return score(item, transcript, self.context.normalizer, self.traits.diarizes, failed=failed,
                     formats=self.traits.formats, phrases=self.context.phrases)

    def _result(self, item: Item, **kw) -> RunResult:
        recipe, context = self.recipe, self.context
        base = dict(
            api_price=self.api_price,
            api_stage=api_price_stage(recipe) if self.api_price else None,
            run_id=context.run_id,
            recipe=recipe.name,
            recipe_hash=recipe.hash,
            recipe_path=recipe.path,
            pipeline=recipe.pipeline,
            recording=item.audio.recording,
            price=self.price,
            hardware=environment.hardware(),
            created_at=_now(),
            execution=context.execution,
        )
        base.update(kw)
        if kw.get("error") is not None and kw.get("error_kind") not in DID_NOT_RUN:
            # it ran and failed on this recording: its output scores as all deletions (a recipe that did not run
            # has no scores at all: no figure of it is measured)
            base["scores"] = self._score(item, kw.get("transcript"), failed=True)
        return RunResult(**base)

    def _undecodable(self, source: PendingItem, exc: WorkbenchError) -> None:
        recipe = self.recipe
        self._emit(RunResult(run_id=self.context.run_id, recipe=recipe.name, recipe_hash=recipe.hash,
                             recipe_path=recipe.path, pipeline=recipe.pipeline,
                             recording=Recording(Path(source.audio_path).stem, source.audio_path, 0.0, 0, 0),
                             transcript=None, error=f"{type(exc).__name__}: {exc}", error_stage="decode",
                             error_kind="bad-input", hardware=environment.hardware(), created_at=_now(),
                             execution=self.context.execution))

    def _emit(self, result: RunResult) -> None:
        self.context.writer.write(result)
        self.results.append(result)


@dataclass(frozen=True)
class _Run:
    """A loaded pipeline as every recording's result records it."""

    pipeline: object
    versions: dict
    components: dict
    load: StageTiming  # the load timing each result carries


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _with_reseed(load: StageTiming, fresh: dict | None) -> StageTiming:
    return load if fresh is None else StageTiming(load.stage, load.wall_s, load.cpu_s,
                                                  {**load.detail, "reseed_before_recording": fresh})
