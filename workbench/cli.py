"""The ``workbench`` command: a thin face over the library (typer + rich live here, nowhere else)."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from workbench.errors import BadInputError, WorkbenchError

# pretty_exceptions_show_locals off: a traceback must not print local variables (a copy of the environment, keys)
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False, help="Compare a speech cascade with audio-LLM calls on your recordings.")
console = Console(stderr=True)
out = Console()
log = logging.getLogger("workbench")

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


class ProgressHook:
    """Renders the library's hook calls as rich progress bars, one per recipe/stage."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def __call__(self, step_name, artifact=None, *, total=None, completed=None):
        task = self.tasks.get(step_name)
        if task is None:
            task = self.tasks[step_name] = self.progress.add_task(escape(step_name), total=total or 1)
        if total:
            self.progress.update(task, total=total)
        if artifact is not None:  # the stage finished: its StageTiming
            self.progress.update(task, completed=total or 1, description=escape(f"{step_name} {artifact.wall_s:.2f} s"))
            self.tasks.pop(step_name, None)
        elif completed is not None:
            self.progress.update(task, completed=completed)


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=console, show_path=False)], force=True)
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")


def _fail(exc: Exception) -> None:
    code = EXIT_BAD_INPUT if isinstance(exc, BadInputError) else EXIT_FAILED
    console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(code)


VerboseOpt = Annotated[int, typer.Option("--verbose", "-v", count=True, help="-v info, -vv debug logging")]
ReferenceOpt = Annotated[
    Optional[list[Path]],
    typer.Option("--reference", "-r", help="reference: .stm .rttm .srt .vtt .txt .json (repeatable)"),
]
OutOpt = Annotated[Path, typer.Option("--out", help="reports folder; each run writes <out>/<run-id>/")]
HardwareOpt = Annotated[Optional[str], typer.Option("--hardware", help="price-table row for cost per audio hour")]
PricesOpt = Annotated[Optional[Path], typer.Option("--prices", help="price table TOML (default: the shipped one)")]
NormOpt = Annotated[str, typer.Option("--normalizer", help="text normaliser for WER: whisper-english, whisper-basic, none")]
MaxDurOpt = Annotated[float, typer.Option("--max-duration", help="longest recording accepted, seconds")]
PhrasesOpt = Annotated[Optional[Path], typer.Option("--phrases", help="extra stock hallucination phrases (TOML [[phrase]] rows)")]
RecipesOpt = Annotated[Optional[str], typer.Option(
    "--recipes", help="comma-separated recipe names (default: those that run here without a server or a download)")]
SpeakersOpt = Annotated[Optional[int], typer.Option("--speakers", help="number of speakers for diarization (default: the recipe's, else estimated)")]
TasksOpt = Annotated[Optional[Path], typer.Option(
    "--tasks", help="a question set (TOML, see pipelines/tasks/): every recipe answers its questions about the recording")]
JudgeOpt = Annotated[Optional[Path], typer.Option(
    "--judge", help="a judge file (see pipelines/judges/): keypoints/open answers are judged as they are written; "
                    "judgements are cached in the store")]
RunArg = Annotated[str, typer.Argument(help="a run id in the store, or a results.jsonl file")]
StoreOpt = Annotated[Path, typer.Option("--store", envvar="WORKBENCH_STORE", show_envvar=True,
                                        help="SQLite results store (every command adds its runs to it)")]
DEFAULT_STORE = Path("reports") / "workbench.sqlite"


def _settings(hardware: str | None, prices: Path | None, normalizer: str = "whisper-english",
              phrases: Path | None = None, max_duration: float | None = None, speakers: int | None = None,
              tasks: Path | None = None, question: str | None = None, judge: Path | None = None):
    from workbench.session import RunSettings

    if judge is not None and tasks is None and question is None:
        raise BadInputError("--judge judges the answers to questions: pass --tasks FILE too")
    return RunSettings(hardware=hardware, prices=prices, normalizer=normalizer, phrases=phrases,
                       max_duration_s=max_duration, speakers=speakers, tasks=tasks, question=question, judge=judge)


def _start_run(out_dir: Path, recipe_names: list[str], settings, store_path: Path, command: list, **kw):
    """The run session of every command (settings checked before any model loads; raises WorkbenchError);
    says which recipes run once because they are the same as another."""
    from workbench.session import start_run

    return start_run(out_dir, recipe_names, settings, store=store_path, command=["workbench", *map(str, command)], **kw)


def _say_same(run) -> None:
    for name, original in run.prepared.same:
        console.print(f"[yellow]{escape(name)} is the same recipe as {escape(original)} (same stages and settings): "
                      "it runs once[/]", soft_wrap=True)
    judge = run.prepared.judge
    if judge is not None and judge.remote:
        console.print(f"[yellow]the judge ({escape(judge.by)}) is sent the questions and answers: {escape(judge.remote)}[/]",
                      soft_wrap=True)


def _recipe_names(recipes: str | None) -> list[str]:
    """The named recipes, or the ones that run here without a server or a download (saying which were left out)."""
    from workbench.recipes import default_recipes, left_out_line

    if recipes:
        names = [n.strip() for n in recipes.split(",") if n.strip()]
    else:
        names, left_out = default_recipes()
        if left_out:
            console.print(escape(left_out_line(left_out)), soft_wrap=True, style="yellow")
    if not names:
        _fail(BadInputError("no recipes to run: pass --recipes NAME,… (see `workbench recipes`) or add .toml files "
                            "to ./pipelines"))
    return names


def _progress():
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    return Progress(*columns, console=console, transient=False, disable=not console.is_terminal)


BEST = "\x00"  # marks the best cell of a row (no figure or note holds it)


def metric_grid(headers: list[str], body: list[list[str]], title: str) -> Table:
    """The metric table for the terminal: every cell escaped (names, figures and notes alike: none is read as
    markup), the best cell of a row (marked with ``BEST``) in bold green."""
    grid = Table(title=escape(title))
    for h in headers:
        grid.add_column(escape(h), justify="left" if h == "metric" else "right")
    for row in body:
        grid.add_row(*(f"[bold green]{escape(c[1:])}[/]" if c.startswith(BEST) else escape(c) for c in row))
    return grid


def _run_on(run, item) -> bool:
    """The run's recipes on one recording, with progress; True when interrupted (the results so far are kept)."""
    from workbench import runner

    try:
        with _progress() as progress:
            run.call(runner.run_recipes, [item], hook=ProgressHook(progress))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: results finished so far are kept[/]")
        return True
    return False


def _print_failures(results, run) -> None:
    """Which recipes did not run or failed (and why), then where the run's files are."""
    for r in results:
        if r.error and not r.did_run:
            out.print(f"[yellow]{escape(r.recipe)} did not run:[/] {escape(r.error)}", soft_wrap=True)
        elif r.error:
            out.print(f"[red]{escape(r.recipe)} failed:[/] {escape(r.error)}", soft_wrap=True)
    out.print(escape(run.paths()), soft_wrap=True)


def _exit(results, interrupted: bool) -> None:
    if interrupted:
        raise typer.Exit(130)
    if results and all(r.error for r in results):
        raise typer.Exit(EXIT_FAILED)


def _compare(recipe_names: list[str], audio: Path, references: list[Path] | None, out_dir: Path, hardware: str | None,
             prices: Path | None, normalizer: str, max_duration: float, speakers: int | None = None,
             phrases: Path | None = None, store_path: Path = DEFAULT_STORE, tasks: Path | None = None,
             judge: Path | None = None) -> None:
    from workbench.summary import markdown, summarize, table, verdict_lines

    try:
        settings = _settings(hardware, prices, normalizer, phrases, max_duration, speakers, tasks, judge=judge)
    except WorkbenchError as exc:
        _fail(exc)
        return
    interrupted = False
    try:
        with _start_run(out_dir, recipe_names, settings, store_path, ["compare", audio, "--recipes", ",".join(recipe_names)]) as run:
            _say_same(run)
            item = run.load_item(audio, references or [])
            interrupted = _run_on(run, item)
            results = run.results
            if results:
                run.write_summary(markdown(results, title=f"Comparison {run.run_id}"))
    except WorkbenchError as exc:
        _fail(exc)
        return
    if results:
        ran = [r for r in results if r.did_run]  # those that did not run are listed below instead, in no figure
        # every cell escaped (figures and notes alike: none is read as markup); the best one marked after
        grid = metric_grid(*table(summarize(ran), mark_best=lambda c: BEST + c),
                           title=f"{item.audio.recording.id} ({item.audio.recording.duration_s:.1f} s)")
        out.print("\n".join(escape(line) for line in verdict_lines(results)), soft_wrap=True)  # the verdict first
        out.print(grid)
        _print_question_tables(ran)
        if (price := next((r.price for r in ran if r.price), None)) is not None and price.note:
            out.print(f"[yellow]cost: {escape(price.note)}[/]", soft_wrap=True)
        _print_failures(results, run)
    _exit(results, interrupted)


def _print_question_tables(results) -> None:
    """The Questions figures (accuracy per category per recipe, paired comparisons, cost per correct answer) when
    the results carry questions; nothing otherwise."""
    from workbench.summary import question_tables

    for title, headers, body in question_tables(results):
        grid = Table(title=escape(title))
        for i, h in enumerate(headers):
            grid.add_column(escape(h), justify="left" if i == 0 else "right")
        for row in body:
            grid.add_row(*(escape(c) for c in row))
        out.print(grid)


@app.command(help="Same as `workbench compare AUDIO --recipes RECIPE` (an alias kept for existing scripts).")
def run(
    recipe: Annotated[str, typer.Argument(help="recipe name (see `workbench recipes`) or path to a .toml")],
    audio: Annotated[Path, typer.Argument(help="audio or video file (anything FFmpeg decodes)")],
    reference: ReferenceOpt = None,
    out_dir: OutOpt = Path("reports"),
    store_path: StoreOpt = DEFAULT_STORE,
    hardware: HardwareOpt = None,
    prices: PricesOpt = None,
    normalizer: NormOpt = "whisper-english",
    max_duration: MaxDurOpt = 4 * 3600,
    speakers: SpeakersOpt = None,
    phrases: PhrasesOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    _setup_logging(verbose)
    _compare([recipe], audio, reference, out_dir, hardware, prices, normalizer, max_duration, speakers, phrases,
             store_path)


@app.command()
def compare(
    audio: Annotated[Path, typer.Argument(help="audio or video file (anything FFmpeg decodes)")],
    reference: ReferenceOpt = None,
    recipes: RecipesOpt = None,
    out_dir: OutOpt = Path("reports"),
    store_path: StoreOpt = DEFAULT_STORE,
    hardware: HardwareOpt = None,
    prices: PricesOpt = None,
    normalizer: NormOpt = "whisper-english",
    max_duration: MaxDurOpt = 4 * 3600,
    speakers: SpeakersOpt = None,
    phrases: PhrasesOpt = None,
    tasks: TasksOpt = None,
    judge: JudgeOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Run recipes on one recording and print them side by side (one recipe: --recipes NAME)."""
    _setup_logging(verbose)
    _compare(_recipe_names(recipes), audio, reference, out_dir, hardware, prices, normalizer, max_duration, speakers,
             phrases, store_path, tasks, judge)


def _mark(t) -> str:
    """A task's verdict as a table cell: correct, wrong (with why), or not judged."""
    if t.correct is True:
        return "[green]correct[/]"
    if t.correct is False:
        why = t.error or (t.judge.note if t.judge else None)
        return "[red]wrong[/]" + (f" ({escape(why)})" if why else "")
    return "[dim]not judged[/]"


def _print_answers(results) -> None:
    """Each question, then every recipe's answer to it (model output escaped) and whether it is correct."""
    answered = [r for r in results if r.tasks]
    questions: dict[tuple[str, str], object] = {}
    for r in answered:
        for t in r.tasks:
            questions.setdefault((r.recording.id, t.id), t)
    recordings = {r.recording.id for r in answered}
    for (recording, qid), q in questions.items():
        where = f"{escape(recording)} · " if len(recordings) > 1 else ""
        out.print(f"\n[bold]{where}{escape(qid)}[/] [dim]({escape(q.category)}, {escape(q.kind)})[/] {escape(q.prompt)}",
                  soft_wrap=True)
        if q.key and q.key.get("answer") is not None:
            out.print(f"  [dim]expected: {escape(str(q.key['answer']))}[/]", soft_wrap=True)
        for r in answered:
            if r.recording.id != recording:
                continue
            for t in r.tasks:
                if t.id == qid:
                    answer = " ".join((t.answer or "").split()) or "—"
                    how = f" [dim]{escape(f'[{t.strategy}, {t.windows} parts]')}[/]" if t.strategy == "combine" else ""
                    if t.cut_short:
                        how += " [yellow](cut short: an answering call stopped at its token cap)[/]"
                    out.print(f"  [cyan]{escape(r.recipe)}[/]: {escape(answer)}  → {_mark(t)}{how}", soft_wrap=True)


@app.command()
def ask(
    audio: Annotated[Path, typer.Argument(help="audio or video file (anything FFmpeg decodes)")],
    question: Annotated[Optional[str], typer.Argument(help="a free question every recipe answers (kind open)")] = None,
    tasks: TasksOpt = None,
    judge: JudgeOpt = None,
    reference: ReferenceOpt = None,
    recipes: RecipesOpt = None,
    out_dir: OutOpt = Path("reports"),
    store_path: StoreOpt = DEFAULT_STORE,
    hardware: HardwareOpt = None,
    prices: PricesOpt = None,
    normalizer: NormOpt = "whisper-english",
    max_duration: MaxDurOpt = 4 * 3600,
    speakers: SpeakersOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Ask every recipe questions about a recording (--tasks FILE, or one free question): each recipe transcribes
    it once, then answers; prints every answer side by side, whether it is correct, and accuracy per category."""
    from workbench.summary import markdown

    _setup_logging(verbose)
    names = _recipe_names(recipes)
    interrupted = False
    try:
        if tasks is None and question is None:
            raise BadInputError("nothing to ask: pass --tasks FILE (a question set) or a question in quotes")
        settings = _settings(hardware, prices, normalizer, None, max_duration, speakers, tasks, question, judge)
        command = ["ask", audio, *([question] if question else []), *(["--tasks", tasks] if tasks else []),
                   "--recipes", ",".join(names)]
        with _start_run(out_dir, names, settings, store_path, command, tags=["ask"]) as run:
            _say_same(run)
            item = run.load_item(audio, reference or [])
            questions = run.prepared.questions
            if not questions.questions_for(item.audio.recording.id):
                raise BadInputError(f"no question of {questions.path or 'the question set'} applies to recording "
                                    f"{item.audio.recording.id!r} (their `recordings` name others)")
            interrupted = _run_on(run, item)
            results = run.results
            if results:
                run.write_summary(markdown(results, title=f"Questions {run.run_id}"))
    except WorkbenchError as exc:
        _fail(exc)
        return
    if results:
        _print_answers(results)
        _print_question_tables([r for r in results if r.did_run])
        _print_failures(results, run)
    _exit(results, interrupted)


@app.command()
def probe(
    recipes: RecipesOpt = None,
    nonspeech: Annotated[Optional[Path], typer.Option("--nonspeech", help="a folder of real non-speech recordings to add")] = None,
    generated: Annotated[bool, typer.Option("--generated/--no-generated", help="the generated clips (silence, noise, hum, clicks)")] = True,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="run each clip N times and report the spread")] = 1,
    questions: Annotated[bool, typer.Option("--questions/--no-questions", help="also ask every clip \"What does the "
                                            "speaker say?\" and \"Describe what you hear.\" (an answer claiming "
                                            "speech counts)")] = True,
    out_dir: OutOpt = Path("reports"),
    store_path: StoreOpt = DEFAULT_STORE,
    hardware: HardwareOpt = None,
    prices: PricesOpt = None,
    phrases: PhrasesOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Run recipes on clips with no speech (hallucination probes) and report what they invent."""
    from workbench.hallucination.probes import folder_probes, generated_probes
    from workbench.hallucination.suite import probe_markdown, run_probes, summarize_probes
    from workbench.hallucination.understanding import PROBE_QUESTIONS

    _setup_logging(verbose)
    names = _recipe_names(recipes)
    try:
        with _start_run(out_dir, names, _settings(hardware, prices, phrases=phrases), store_path,
                        ["probe", "--recipes", ",".join(names)], tags=["probe"]) as run:
            _say_same(run)
            clips = (generated_probes() if generated else []) + (folder_probes(nonspeech) if nonspeech else [])
            if not clips:
                raise BadInputError("no probe clips: keep the generated ones or pass --nonspeech DIR")
            try:
                with _progress() as progress:
                    run.call(run_probes, clips, repeats=repeats, hook=ProgressHook(progress),
                             **({"questions": PROBE_QUESTIONS} if questions else {}))
            except KeyboardInterrupt:
                console.print("[yellow]interrupted: results finished so far are kept[/]")
            if run.results:
                run.write_summary(probe_markdown(run.results, f"Hallucination probes {run.run_id}"))
    except WorkbenchError as exc:
        _fail(exc)
        return
    if not run.results:
        raise typer.Exit(EXIT_FAILED)
    grid = Table(title=f"{len(clips)} clips with no speech ({sum(c.audio().duration_s for c in clips) / 60:.1f} min) × {repeats}")
    for col in ("recipe", "clips with output", "words / min", "stock phrases", "repeats agree",
                *(("answers claiming speech",) if questions else ())):
        grid.add_column(col)
    for s in summarize_probes(run.results):
        share = ("did not run" if s.not_run else "—") if s.share_with_output is None else f"{s.clips_with_output}/{s.clips}"
        wpm = "—" if s.words_per_minute is None else f"{s.words_per_minute:.1f}"
        claimed = "—" if s.share_claiming_speech is None else f"{s.answers_claiming_speech}/{s.answers}"
        grid.add_row(escape(s.recipe), share, wpm, escape(", ".join(sorted(s.stock_phrases)) or "none"),
                     "yes" if s.repeatable else "no", *((claimed,) if questions else ()))
    out.print(grid)
    out.print(escape(run.paths()), soft_wrap=True)


@app.command("pad-delta")
def pad_delta(
    audio: Annotated[Path, typer.Argument(help="audio or video file")],
    reference: ReferenceOpt = None,
    recipes: RecipesOpt = None,
    pad: Annotated[str, typer.Option("--pad", help="silence to splice in: SECONDS@start|end|middle|TIME, comma-separated")] = "30@start,30@end",
    out_dir: OutOpt = Path("reports"),
    store_path: StoreOpt = DEFAULT_STORE,
    hardware: HardwareOpt = None,
    prices: PricesOpt = None,
    normalizer: NormOpt = "whisper-english",
    phrases: PhrasesOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Insertions with silence spliced into a recording, minus insertions without (for untimed models)."""
    from workbench.hallucination.padding import parse_pads
    from workbench.hallucination.suite import padding_delta, padding_markdown

    _setup_logging(verbose)
    names = _recipe_names(recipes)
    try:
        with _start_run(out_dir, names, _settings(hardware, prices, normalizer, phrases), store_path,
                        ["pad-delta", audio, "--recipes", ",".join(names), "--pad", pad], tags=["pad-delta"]) as run:
            _say_same(run)
            pads = parse_pads(pad)
            if not reference:
                raise BadInputError("pad-delta needs a reference with words (--reference)")
            item = run.load_item(audio, reference)
            if item.text_reference is None:
                raise BadInputError("pad-delta needs a reference with words (.stm, .srt, .vtt, .txt or .json)")
            with _progress() as progress:
                rows = run.call(padding_delta, item, pads, hook=ProgressHook(progress))
            run.write_summary(padding_markdown(rows, f"Padding delta {run.run_id}"))
    except WorkbenchError as exc:
        _fail(exc)
        return
    grid = Table(title=f"{escape(item.audio.recording.id)} padded with {escape(pad)}")
    for col in ("recipe", "insertions without", "with padding", "delta", "stock phrases (padded)"):
        grid.add_column(col)
    for r in rows:
        grid.add_row(escape(r["recipe"]), *("—" if r[k] is None else str(r[k]) for k in ("insertions_original", "insertions_padded", "delta")),
                     escape(", ".join(r["stock_phrases"]) or "none"))
    out.print(grid)
    out.print(escape(run.paths()), soft_wrap=True)


@app.command()
def batch(
    source: Annotated[Path, typer.Argument(help="a folder of recordings (references beside them by stem) or a .jsonl / .csv manifest")],
    recipes: RecipesOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue a run: skip (recording, recipe) pairs already done")] = False,
    run_id: Annotated[Optional[str], typer.Option("--run-id", help="name the run (with --resume: the run to continue; default the latest)")] = None,
    store_path: StoreOpt = DEFAULT_STORE,
    workers: Annotated[int, typer.Option("--workers", min=1, help="worker processes (each loads the models once)")] = 1,
    executor: Annotated[str, typer.Option("--executor", help="local or ray")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="join a running Ray cluster (default: start a local one)")] = None,
    gpus_per_task: Annotated[float, typer.Option("--gpus-per-task", min=0, help="Ray: GPUs each task asks for")] = 0.0,
    out_dir: OutOpt = Path("reports"),
    hardware: HardwareOpt = None,
    prices: PricesOpt = None,
    normalizer: NormOpt = "whisper-english",
    phrases: PhrasesOpt = None,
    tasks: TasksOpt = None,
    judge: JudgeOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Run recipes over a folder or manifest; results go to results.jsonl and the store as they finish."""
    from workbench import runner
    from workbench.batch import discover, export_jsonl, run_batch, run_batch_parallel, run_batch_ray, same_source
    from workbench.summary import markdown

    _setup_logging(verbose)
    names = _recipe_names(recipes)
    resolved = str(source.resolve())
    interrupted = False
    try:
        if run_id is not None:
            runner.check_run_id(run_id)
        if executor not in ("local", "ray"):
            raise BadInputError(f"unknown executor {executor!r}; known: local, ray")
        with _start_run(out_dir, names, _settings(hardware, prices, normalizer, phrases, tasks=tasks, judge=judge), store_path,
                        ["batch", source, *(["--tasks", tasks] if tasks else [])], run_id=run_id, source=resolved) as run:
            _say_same(run)
            entries = discover(source)
            if resume and run_id is None:
                previous = [r["run_id"] for r in run.store.runs() if same_source(r, source)]
                if not previous:
                    raise BadInputError(f"--resume: no earlier batch over {resolved} in {store_path}; drop --resume to "
                                        "start one, or name the run with --run-id")
                run.continue_run(previous[-1])
            writer = run.writer  # the run is recorded in the store
            if writer.path.is_file():
                # an earlier batch of this run left results.jsonl: add what it holds and the store lacks (a store
                # write that failed, a kill between the two writes), and rewrite it whole before appending to it
                # (a line torn by a kill would otherwise run into the next one; the store logs that it skipped it)
                if recovered := export_jsonl(store_path, run.run_id, run.folder):
                    console.print(f"added {recovered} result(s) from {escape(str(writer.path))} that the store lacked")
            try:
                with _progress() as progress:
                    if executor == "ray" or workers > 1:
                        where = f"Ray ({workers} CPUs)" if executor == "ray" else f"{workers} workers"
                        task = progress.add_task(f"batch on {where}", total=None)
                        spread, extra = ((run_batch_ray, {"address": ray_address, "gpus_per_task": gpus_per_task})
                                         if executor == "ray" else (run_batch_parallel, {}))
                        spread(run.recipes, entries, workers=workers, out_dir=run.folder, store_path=store_path,
                               run_id=run.run_id, resume=resume,
                               progress=lambda done, total: progress.update(task, completed=done, total=total),
                               **extra, **run.prepared.runner_options())
                    else:
                        run.call(run_batch, entries, resume=resume, hook=ProgressHook(progress))
            except KeyboardInterrupt:
                interrupted = True
                console.print(f"[yellow]interrupted: finished results are kept; continue with --resume --run-id "
                              f"{run.run_id}[/]")
            # the store is the record: results.jsonl is rewritten from it (rows only the file held are added to the
            # store first), so a crash between the two writes never leaves the file short, duplicated or broken
            export_jsonl(store_path, run.run_id, run.folder)
            rows = run.store.rows(run_id=run.run_id)
            out.print(f"{len(rows)} results in run {run.run_id} ({len(entries)} recordings × {len(run.recipes)} recipes)")
            if run.results:
                run.write_summary(markdown(run.results, title=f"Batch {run.run_id}"))
            out.print(escape(f"{run.paths()}\nreport: workbench report {run.run_id} --store {store_path}"), soft_wrap=True)
    except WorkbenchError as exc:
        _fail(exc)
    if interrupted:
        raise typer.Exit(130)


def _run_rows(run: str, store_path: Path, *, check_id: bool = True) -> tuple[list[dict], str, Path]:
    """A run's rows, its id and its folder, from RUN: a results.jsonl path, or a run id in the store (``check_id``:
    the id will name a folder, so it must be a plain name). A torn last line of a results file is skipped, with a
    line saying so. Raises WorkbenchError."""
    from workbench.runner import check_run_id
    from workbench.store import ResultStore, read_jsonl

    path = Path(run)
    if path.suffix == ".jsonl" and path.is_file():
        found = read_jsonl(path)
        if found.torn_line:
            console.print(f"[yellow]{escape(str(path))}:{found.torn_line}: skipped a torn last line (a write cut "
                          "short); that result is left out[/]", soft_wrap=True)
        with ResultStore(":memory:") as store:
            store.import_jsonl(path, parsed=found)
            rows = store.rows()
        run_id, run_dir = (rows[0]["run_id"] if rows else path.parent.name), path.parent
    else:
        if check_id:
            check_run_id(run)
        if not store_path.is_file():
            raise BadInputError(f"no results store at {store_path}: pass --store, or a results.jsonl path")
        with ResultStore(store_path) as store:
            rows = store.rows(run_id=run)
        run_id, run_dir = run, store_path.parent / run  # where `batch` keeps the run's files (the store's folder by default)
    if not rows:
        raise BadInputError(f"run {run!r} has no results (see the run ids in {store_path})")
    return rows, run_id, run_dir


def _judged(rows: list[dict], judge_file: Path, store_path: Path) -> list[dict]:
    """``rows`` with their keypoints/open answers judged by the judge in ``judge_file`` (cached in the store)."""
    from workbench.judging import load_judge
    from workbench.store import ResultStore
    from workbench.tasks.judge import judge_rows, judged_counts

    with load_judge(judge_file) as judge, ResultStore(store_path) as store:
        if judge.remote:
            console.print(f"[yellow]the judge sends the questions and answers to {escape(judge.remote)}[/]", soft_wrap=True)
        rows = judge_rows(rows, judge, store)
        judged, not_judged = judged_counts(rows)
        console.print(escape(f"judge {judge.by}: {judged} answer(s) judged, {not_judged} not judged; {judge.calls} "
                             "call(s) to the judge, the rest from the cache"), soft_wrap=True)
    return rows


@app.command()
def report(
    run: RunArg,
    formats: Annotated[str, typer.Option("--format", help="comma-separated: html, md, json, csv")] = "html,md,json,csv",
    store_path: StoreOpt = DEFAULT_STORE,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="where to write (default: reports/<run-id>/)")] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="list the files written as JSON lines (run_id, format, path)")] = False,
    references: Annotated[Optional[list[Path]], typer.Option(
        "--reference", "-r", help="a reference file or folder the HTML report may read for its diff view, besides the "
                                  "run folder (repeatable)")] = None,
    judge_file: Annotated[Optional[Path], typer.Option(
        "--judge", help="a judge file (see pipelines/judges/): judge the keypoints/open answers not judged yet; "
                        "judgements are cached in the store")] = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Write a run's report: self-contained HTML with charts, Markdown, JSON and CSV (same numbers).

    Reference texts are read only from the run folder and the --reference paths (the results name them, and a
    report must not embed a file it was not given)."""
    from workbench.report import write_reports

    _setup_logging(verbose)
    try:
        rows, run_id, run_dir = _run_rows(run, store_path, check_id=out_dir is None)
        if judge_file is not None:
            rows = _judged(rows, judge_file, store_path)
        target = out_dir or (run_dir if Path(run).suffix == ".jsonl" else Path("reports") / run)
        written = write_reports(rows, run_id, target, [f.strip() for f in formats.split(",") if f.strip()],
                                run_dir=run_dir, references=references or ())
    except WorkbenchError as exc:
        _fail(exc)
        return
    for p in written:
        if json_lines:
            import json

            sys.stdout.write(json.dumps({"run_id": run_id, "format": p.suffix.lstrip("."), "path": str(p)}) + "\n")
        else:
            out.print(str(p), soft_wrap=True)


JsonOpt = Annotated[bool, typer.Option("--json", help="one JSON object per line instead of a table (for scripts)")]


@app.command()
def export(
    run: RunArg,
    formats: Annotated[str, typer.Option("--format", help="comma-separated: seglst, ctm, rttm, srt, vtt")] = "seglst,ctm,rttm,srt,vtt",
    store_path: StoreOpt = DEFAULT_STORE,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="where to write (default: reports/<run-id>/export/)")] = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Write each result as SegLST, CTM, RTTM, SRT and WebVTT (for meeteval, pyannote.metrics, subtitle tools)."""
    from workbench.exports import export_rows, parse_formats

    _setup_logging(verbose)
    try:
        chosen = parse_formats(formats)
        rows, _, run_dir = _run_rows(run, store_path, check_id=out_dir is None)
        target = out_dir or (run_dir if Path(run).suffix == ".jsonl" else Path("reports") / run) / "export"
        exported = export_rows(rows, target, chosen)
    except WorkbenchError as exc:
        _fail(exc)
        return
    for e in exported:
        for line in e.skipped:
            out.print(f"[yellow]{escape(e.recording)} × {escape(e.recipe)}:[/] {escape(line)}", soft_wrap=True)
        for p in e.written:
            out.print(escape(str(p)), soft_wrap=True)
    files = sum(len(e.written) for e in exported)
    out.print(f"{files} file(s) from {sum(bool(e.written) for e in exported)} of {len(exported)} results in {escape(str(target))}")


@app.command("recipes")
def list_recipes(json_lines: JsonOpt = False, verbose: VerboseOpt = 0) -> None:
    """List recipes: what each runs, whether it can run here, and if not, why and how to make it run."""
    import json

    from workbench.recipes import recipe_listing

    _setup_logging(verbose)
    rows = recipe_listing()
    if json_lines:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        raise typer.Exit(EXIT_BAD_INPUT if any(r.get("error") for r in rows) else 0)

    def stages(row: dict) -> list[str]:
        return [f"{stage}: {s['backend']}" + (f" ({s['model']})" if s.get("model") else "") for stage, s in row["stages"].items()]

    def status(row: dict) -> tuple[str, str]:
        if row.get("error"):
            return "[red]invalid[/]", escape(row["error"])
        notes = [escape(f"{row['reason']}\n→ {row['fix']}" if row["fix"] else row["reason"])] if not row["available"] else []
        notes += [f"[yellow]{escape(row[k])}[/] (run only when named)" for k in ("remote", "downloads") if row[k]]
        return "[green]yes[/]" if row["available"] else "[red]no[/]", "\n".join(notes)

    longest = max((len(r["name"]) for r in rows), default=0)
    if out.is_terminal and out.width >= longest + 40:
        grid = Table(show_lines=True)
        grid.add_column("recipe", no_wrap=True, min_width=longest)  # names are never cut: they are typed back
        for col in ("stages", "available here", "why not / how to make it run"):
            grid.add_column(col, overflow="fold")
        for row in rows:
            grid.add_row(escape(row["name"]) + "\n" + escape(row["description"]),
                         escape("\n".join(stages(row))) + f"\n[dim]from {escape(row['path'])}[/]",
                         *status(row))
        out.print(grid)
    else:  # piped, or too narrow for a table: one block per recipe, nothing cut
        for row in rows:
            ok, notes = status(row)
            out.print(f"[bold]{escape(row['name'])}[/]  available here: {ok}", soft_wrap=True)
            for line in ([escape(row["description"])] if row["description"] else []) + [escape(x) for x in stages(row)]:
                out.print(f"  {line}", soft_wrap=True)
            for line in notes.splitlines():
                out.print(f"  {line}", soft_wrap=True)
            out.print(f"  from {escape(row['path'])}", soft_wrap=True)
    if any(r.get("error") for r in rows):
        raise typer.Exit(EXIT_BAD_INPUT)


models_app = typer.Typer(no_args_is_help=False, help="The model catalogue: audio-LLMs, their limits and memory, "
                                                        "how each runs with this tool.")
app.add_typer(models_app, name="models")
CatalogueOpt = Annotated[Optional[Path], typer.Option(
    "--catalogue", help="your own catalogue rows (TOML), added to the shipped ones (also $WORKBENCH_MODELS)")]


@models_app.callback(invoke_without_command=True)
def models(
    ctx: typer.Context,
    json_lines: JsonOpt = False,
    fits: Annotated[Optional[float], typer.Option("--fits", help="only models whose weights fit in this many GB of accelerator memory")] = None,
    precision: Annotated[str, typer.Option("--precision", help="weights precision for --fits and the table: bf16, int8, int4")] = "bf16",
    runs: Annotated[Optional[str], typer.Option("--runs", help="here (a recipe for it is available on this machine), transformers, server, api")] = None,
    catalogue: CatalogueOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """List the model catalogue (parameters, licence, audio per call, audio tokens/s, weight memory, how it runs,
    the source and date of each fact). `workbench models new-recipe MODEL` writes a recipe for one."""
    import json

    from workbench.catalogue import here, load_catalogue, recipes_here, select, table_rows

    if ctx.invoked_subcommand:
        return
    _setup_logging(verbose)
    try:
        rows = load_catalogue(catalogue).rows
        available = recipes_here()
        kept = select(rows, fits_gb=fits, precision=precision, runs=runs, available=available)
    except WorkbenchError as exc:
        _fail(exc)
        return
    if json_lines:
        for row in kept:
            sys.stdout.write(json.dumps(row.to_dict() | {"ways": list(row.ways), "recipes_here": here(row, available)},
                                        ensure_ascii=False) + "\n")
        return
    shown = table_rows(kept, precision, available)
    columns = ["model", "params (B)", "licence", "audio / call (s)", "audio tokens / s", f"{precision} GB", "runs",
               "hub id / API model"]
    longest = max((len(r["id"]) for r in shown), default=0)
    if out.is_terminal and out.width >= longest + 100:
        grid = Table(show_lines=True, caption="— not confirmed; ≈ computed from the parameter count (weights only); "
                                              "sources: --json")
        grid.add_column("id", no_wrap=True, min_width=longest)  # ids are typed back (new-recipe): never cut
        for col in columns:
            grid.add_column(col, overflow="fold")
        for row in shown:
            grid.add_row(*(escape(row[c]) for c in ["id", *columns]))
        out.print(grid)
    else:  # piped, or too narrow for a table: one block per model, nothing cut
        for row in shown:
            out.print(f"[bold]{escape(row['id'])}[/]  {escape(row['model'])}", soft_wrap=True)
            for col in columns[1:]:
                out.print(f"  {escape(col)}: {escape(row[col])}", soft_wrap=True)
            if row["notes"]:
                out.print(f"  notes: {escape(row['notes'])}", soft_wrap=True)
    unknown = 0 if fits is None else sum(  # of those the other filters keep
        r.memory_gb(precision) is None for r in select(rows, precision=precision, runs=runs, available=available))
    out.print(f"{len(kept)} of {len(rows)} models" + (f" ({unknown} without a known {precision} memory figure left out)"
                                                       if unknown else ""), soft_wrap=True)


@models_app.command("new-recipe")
def models_new_recipe(
    model: Annotated[str, typer.Argument(help="catalogue id (or hub id / API model name), see `workbench models`")],
    out_path: Annotated[Optional[Path], typer.Option("--out", help="recipe file to write (default: pipelines/audio-llm-ID.toml)")] = None,
    via: Annotated[Optional[str], typer.Option("--via", help="transformers, server or api (default: how the table says it runs)")] = None,
    catalogue: CatalogueOpt = None,
    prices: PricesOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Write an audio-LLM recipe for a catalogue model (checked by loading it first; never overwrites)."""
    from workbench.catalogue import default_recipe_name, load_catalogue, write_recipe

    _setup_logging(verbose)
    try:
        row = load_catalogue(catalogue).get(model)
        written = write_recipe(row, out_path or Path("pipelines") / f"{default_recipe_name(row)}.toml", via=via,
                               prices_path=prices)
    except WorkbenchError as exc:
        _fail(exc)
        return
    out.print(f"wrote {escape(str(written))}: run it with --recipes {escape(written.stem)}", soft_wrap=True)


@app.command()
def dashboard(
    host: Annotated[str, typer.Option("--host", help="address to listen on (127.0.0.1: this machine only)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on")] = 8501,
    store: Annotated[Path, typer.Option("--store", envvar="WORKBENCH_STORE", show_envvar=True,
                                        help="SQLite result store (shared with every command)")] = DEFAULT_STORE,
    out_dir: Annotated[Path, typer.Option("--out", help="where each dashboard run keeps its uploads and results")] = Path("reports") / "dashboard",
    max_upload_mb: Annotated[int, typer.Option("--max-upload-mb", help="largest upload accepted, MB")] = 1024,
    max_duration: MaxDurOpt = 4 * 3600,
    hardware: HardwareOpt = None,
    pool_size: Annotated[int, typer.Option("--keep-loaded", help="recipes whose models stay loaded between runs")] = 4,
    token: Annotated[Optional[str], typer.Option("--token", envvar="WORKBENCH_DASHBOARD_TOKEN", show_envvar=True,
                                                 help="access token (default when not on 127.0.0.1: a new random one, printed)")] = None,
    max_reference_mb: Annotated[float, typer.Option("--max-reference-mb", help="largest reference upload accepted, MB")] = 5.0,
    keep_uploads_days: Annotated[int, typer.Option("--keep-uploads-days", help="delete runs' uploaded files after this many days (results stay); 0 keeps them")] = 30,
    verbose: VerboseOpt = 0,
) -> None:
    """Start the dashboard (Streamlit) in the browser: compare recipes on an upload, browse runs, export reports.

    Listening beyond this machine (--host 0.0.0.0) needs a token: open the printed address (it carries ?token=)."""
    import secrets
    import subprocess

    from workbench.dashboard import command
    from workbench.dashboard.retention import prune_uploads
    from workbench.dashboard.settings import TOKEN_ENV
    from workbench.llm_client import is_loopback

    _setup_logging(verbose)
    try:
        if not 0 < port < 65536:
            raise BadInputError(f"--port must be 1–65535 (got {port})")
        if max_upload_mb < 1 or pool_size < 1:
            raise BadInputError("--max-upload-mb and --keep-loaded must be at least 1")
        if not max_reference_mb > 0 or keep_uploads_days < 0:
            raise BadInputError("--max-reference-mb must be above 0 and --keep-uploads-days at least 0")
        if token is not None and len(token) < 16:
            raise BadInputError("--token (or $WORKBENCH_DASHBOARD_TOKEN) must be at least 16 characters")
        if importlib.util.find_spec("streamlit") is None:
            raise BadInputError("the dashboard needs streamlit: pip install streamlit")
        if hardware:
            from workbench.cost import load_prices

            load_prices().pick(hardware)
    except WorkbenchError as exc:
        _fail(exc)
        return
    if token is None and not is_loopback(host):  # reachable from other machines: never without a token
        token = secrets.token_urlsafe(24)
    deleted = prune_uploads(out_dir, keep_uploads_days)
    env = {**os.environ, "WORKBENCH_STORE": str(store.resolve()), "WORKBENCH_OUT": str(out_dir.resolve()),
           "WORKBENCH_MAX_UPLOAD_MB": str(max_upload_mb), "WORKBENCH_MAX_DURATION_S": str(max_duration),
           "WORKBENCH_POOL_SIZE": str(pool_size), "WORKBENCH_HARDWARE": hardware or "",
           "WORKBENCH_MAX_REFERENCE_MB": str(max_reference_mb), "WORKBENCH_KEEP_UPLOADS_DAYS": str(keep_uploads_days),
           TOKEN_ENV: token or ""}
    address = f"http://{host}:{port}" + (f"/?token={token}" if token else "")
    console.print(f"dashboard: {escape(address)}  (store {store}, runs in {out_dir}; Ctrl+C stops it)", soft_wrap=True)
    if token:
        console.print(f"access token: {escape(token)}  (anyone with it can run recipes, with the API keys set here)",
                      soft_wrap=True)
    if deleted:
        console.print(f"deleted the uploads of {len(deleted)} run(s) older than {keep_uploads_days} day(s) (results kept)")
    argv = command(host, port, max_upload_mb)
    if os.name == "posix":  # become the server: signals (Ctrl+C, SIGTERM) reach it directly, no orphan left behind
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(argv[0], argv, env)
    try:
        code = subprocess.call(argv, env=env)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


def main() -> None:
    try:
        app()
    except WorkbenchError as exc:  # anything a command did not catch itself
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT if isinstance(exc, BadInputError) else EXIT_FAILED)
