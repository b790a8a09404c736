"""One run, the same for every face: settings checked before any model loads, a run id, the run's folder, one
writer to results.jsonl and the results store, the progress hook, summary.md and the paths to print.

    settings = RunSettings(hardware="aws-c7i.xlarge", max_duration_s=3600)
    with start_run(Path("reports"), ["cascade-fast", "whisper-raw"], settings) as run:
        item = run.load_item("talk.wav", ["talk.stm"])
        results = run.call(run_recipes, [item])
        run.write_summary(markdown(results, title=f"Comparison {run.run_id}"))
        print(run.paths())

``start_run`` raises WorkbenchError (one line) when a recipe, the price table, the normaliser or the phrase list
is wrong, before anything is written. The run is recorded in the store, and its folder made, only when its first
result is about to be written — so a recording that cannot be decoded leaves no empty run behind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workbench import environment
from workbench.cost import ApiPrice, HardwarePrice
from workbench.hooks import Hook, null_hook
from workbench.recipes import Recipe
from workbench.result import RunResult
from workbench.runner import Item, api_price_id, check_run_id, distinct_recipes, load_item, new_run_id
from workbench.store import ResultStore
from workbench.writers import StoreWriter

DEFAULT_STORE = Path("reports") / "workbench.sqlite"
SUMMARY_FILE = "summary.md"


@dataclass(frozen=True)
class RunSettings:
    """What a run is asked for, besides its recipes and recordings (every face's options, in one place)."""

    hardware: str | None = None  # price-table row (None: the row of this machine, else the default row)
    prices: Path | None = None  # price table TOML (None: the shipped one)
    normalizer: str = "whisper-english"
    phrases: Path | None = None  # extra stock hallucination phrases
    max_duration_s: float | None = None  # longest recording accepted (None: the library's default)
    speakers: int | None = None  # speaker count for diarization (None: the recipe's, else estimated)
    tasks: Path | None = None  # a question set (TOML) every recipe answers about each recording
    question: str | None = None  # one free question (kind open), asked besides (or instead of) ``tasks``
    judge: Path | None = None  # a judge file (pipelines/judges/): keypoints/open answers judged as they are written


@dataclass(frozen=True)
class Prepared:
    """The settings checked and loaded: the recipes (one of each content), prices, normaliser, phrases."""

    recipes: tuple[Recipe, ...]
    price: HardwarePrice
    normalizer: str
    api_prices: Mapping[str, ApiPrice] = field(default_factory=dict)
    phrases: object = None
    #: (name, the recipe it is the same as): recipes with the same content as an earlier one run once
    same: tuple[tuple[str, str], ...] = ()
    #: the questions every recipe answers (a tasks.QuestionSet), or None
    questions: object = None
    #: the judge of keypoints/open answers (a judging.ModelJudge; its model loads on its first call), or None
    judge: object = None

    def runner_options(self) -> dict:
        """The keyword arguments ``run_recipes`` (and what wraps it) takes from the settings."""
        options = {"price": self.price, "normalizer": self.normalizer, "api_prices": dict(self.api_prices),
                   "phrases": self.phrases}
        if self.questions is not None:
            options["questions"] = self.questions
        return options


def prepare(recipe_names: Sequence[str], settings: RunSettings = RunSettings()) -> Prepared:
    """Validate everything a run needs before any model loads (recipes, price rows, normaliser, phrase list, the
    question set). Raises WorkbenchError."""
    from workbench.cost import load_prices
    from workbench.hallucination.measures import load_phrases
    from workbench.metrics import get_normalizer
    from workbench.recipes import load_recipe

    get_normalizer(settings.normalizer)
    questions = question_set(settings.tasks, settings.question)
    recipes, same = distinct_recipes([load_recipe(name) for name in recipe_names])
    price_table = load_prices(settings.prices)
    # no hardware named: the row of the machine this runs on, else the default row marked as such (price.note)
    price = price_table.pick(settings.hardware) if settings.hardware else price_table.for_machine(environment.hardware())
    for recipe in recipes:
        if api_price_id(recipe):
            price_table.pick_api(api_price_id(recipe))
    judge = None
    if settings.judge is not None:
        from workbench.judging import load_judge

        judge = load_judge(settings.judge)  # checked here, before any model loads (it loads none itself)
    return Prepared(tuple(recipes), price, settings.normalizer, price_table.api,
                    load_phrases(settings.phrases) if settings.phrases else None, tuple(same), questions, judge)


#: the id and category of the free question of ``workbench ask AUDIO "question"``
FREE_QUESTION_ID = "question"


def question_set(tasks: Path | None, question: str | None):
    """The question set a run asks: the file's (validated: one line naming file, question, field), plus the free
    question as one ``open`` question; None when neither is given."""
    from dataclasses import replace

    from workbench.errors import BadInputError
    from workbench.tasks import Question, QuestionSet, load_question_set

    found = load_question_set(tasks) if tasks is not None else None
    if question is None:
        return found
    if not question.strip():
        raise BadInputError("the question is empty: ask something, or pass --tasks FILE")
    free = Question(FREE_QUESTION_ID, "open", "open", question.strip())
    if found is None:
        return QuestionSet("ask", (free,))
    if any(q.id == FREE_QUESTION_ID for q in found.questions):
        raise BadInputError(f"{found.path}: question {FREE_QUESTION_ID!r}: field 'id': taken by the free question; "
                            "rename it in the file")
    return replace(found, questions=(*found.questions, free))


class RunSession:
    """One run: its id and folder (``<out>/<run-id>/``), its writer (results.jsonl, then the store), its hook."""

    def __init__(self, out: Path, prepared: Prepared, settings: RunSettings, *, store: Path, run_id: str,
                 command: Sequence[str], tags: Sequence[str] = (), source: str | None = None, hook: Hook = null_hook):
        self.out = Path(out)
        self.prepared = prepared
        self.settings = settings
        self.store_path = Path(store)
        self.run_id = check_run_id(run_id)
        self.command = list(command)
        self.tags = list(tags)
        self.source = source
        self.hook = hook
        self.summary_path: Path | None = None
        self._store: ResultStore | None = None
        self._writer: StoreWriter | None = None

    @property
    def recipes(self) -> list[Recipe]:
        return list(self.prepared.recipes)

    @property
    def folder(self) -> Path:
        return self.out / self.run_id

    def continue_run(self, run_id: str) -> None:
        """Name the run another id (``batch --resume``: the run to continue); only before anything is written."""
        if self._writer is not None:
            raise RuntimeError("the run has started: its id is fixed")
        self.run_id = check_run_id(run_id)

    @property
    def store(self) -> ResultStore:
        """The results store, opened on first use (and closed when the run ends)."""
        if self._store is None:
            self._store = ResultStore(self.store_path)
        return self._store

    @property
    def writer(self) -> StoreWriter:
        """The run's writer; the first use records the run in the store and makes its folder."""
        if self._writer is None:
            self.store.add_run(self.run_id, self.command, environment.hardware(), tags=self.tags, source=self.source)
            self._writer = StoreWriter(self.folder, self.store)
            if self.prepared.judge is not None:  # judgements cached in the store
                self._writer.judge_with(self.prepared.judge, self.store)
        return self._writer

    @property
    def results(self) -> list[RunResult]:
        """The results written in this session so far."""
        return self._writer.results if self._writer is not None else []

    def load_item(self, audio: str | Path, references: Sequence[str | Path] = ()) -> Item:
        """Decode a recording and parse its references with the run's settings (longest duration, speakers)."""
        return load_item(str(audio), [str(r) for r in references], max_duration_s=self.settings.max_duration_s,
                         num_speakers=self.settings.speakers)

    def call(self, run: Callable, *args, hook: Hook | None = None, **kwargs):
        """``run(recipes, *args, writer=…, run_id=…, hook=…, price=…, normalizer=…, …)``: ``run_recipes``, or
        what wraps it (probes, padding delta, a batch), with this run's recipes, writer and settings."""
        return run(self.recipes, *args, writer=self.writer, run_id=self.run_id, hook=hook or self.hook,
                   **self.prepared.runner_options(), **kwargs)

    def write_summary(self, text: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.summary_path = self.folder / SUMMARY_FILE
        self.summary_path.write_text(text, encoding="utf-8")
        return self.summary_path

    def paths(self) -> str:
        """What to print at the end: where the results, the summary and the store are."""
        lines = [f"results: {self.folder / 'results.jsonl'}"]
        if self.summary_path is not None:
            lines.append(f"summary: {self.summary_path}")
        lines.append(f"store: {self.store_path}")
        return "\n".join(lines)

    def close(self) -> None:
        if self.prepared.judge is not None:
            self.prepared.judge.close()
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> RunSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_run(out: Path, recipes: Sequence[str], settings: RunSettings = RunSettings(), *,
              store: Path = DEFAULT_STORE, run_id: str | None = None, command: Sequence[str] = ("workbench",),
              tags: Sequence[str] = (), source: str | None = None, hook: Hook = null_hook) -> RunSession:
    """A run of ``recipes`` (names or paths) writing under ``out`` and to ``store`` — use it as ``with start_run(…)
    as run:`` (the store is closed when the block ends). Raises WorkbenchError before anything is written when
    the recipes or settings are wrong."""
    return RunSession(out, prepare(recipes, settings), settings, store=store, run_id=run_id or new_run_id(),
                      command=command, tags=tags, source=source, hook=hook)
