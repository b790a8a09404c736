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

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Compare a speech cascade with audio-LLM calls on your recordings.")
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
RecipesOpt = Annotated[Optional[str], typer.Option("--recipes", help="comma-separated recipe names (default: all)")]
SpeakersOpt = Annotated[Optional[int], typer.Option("--speakers", help="number of speakers for diarization (default: the recipe's, else estimated)")]


def _setup(recipe_names: list[str], hardware: str | None, prices: Path | None, normalizer: str,
           phrases: Path | None = None) -> dict:
    """Validate everything the run needs before any model loads; returns run_recipes keyword arguments."""
    from workbench.runner import distinct_recipes, prepare

    setup = prepare(recipe_names, hardware=hardware, prices=prices, normalizer=normalizer, phrases=phrases)
    setup["recipes"], same = distinct_recipes(setup["recipes"])
    for name, original in same:
        console.print(f"[yellow]{escape(name)} is the same recipe as {escape(original)} (same stages and settings): "
                      "it runs once[/]", soft_wrap=True)
    return setup


def _recipe_names(recipes: str | None) -> list[str]:
    from workbench.recipes import available_recipe_files

    names = [n.strip() for n in recipes.split(",") if n.strip()] if recipes else list(available_recipe_files())
    if not names:
        _fail(BadInputError("no recipes found: pass --recipes or add .toml files to ./pipelines"))
    return names


def _progress():
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    return Progress(*columns, console=console, transient=False, disable=not console.is_terminal)


def _compare(recipe_names: list[str], audio: Path, references: list[Path] | None, out_dir: Path, hardware: str | None,
             prices: Path | None, normalizer: str, max_duration: float, speakers: int | None = None,
             phrases: Path | None = None) -> None:
    from workbench import runner
    from workbench.summary import markdown, summarize, table

    try:
        setup = _setup(recipe_names, hardware, prices, normalizer, phrases)
        item = runner.load_item(str(audio), [str(r) for r in references or []], max_duration_s=max_duration,
                                num_speakers=speakers)
    except WorkbenchError as exc:
        _fail(exc)
        return
    recipes = setup.pop("recipes")
    run_id = runner.new_run_id()
    writer = runner.ResultWriter(out_dir / run_id)
    interrupted = False
    try:
        with _progress() as progress:
            runner.run_recipes(recipes, [item], writer=writer, run_id=run_id, hook=ProgressHook(progress), **setup)
    except KeyboardInterrupt:
        interrupted = True
        console.print("[yellow]interrupted: results finished so far are kept[/]")
    results = writer.results
    if results:
        (writer.out_dir / "summary.md").write_text(markdown(results, title=f"Comparison {run_id}"), encoding="utf-8")
        ran = [r for r in results if r.error_stage != "check"]  # unavailable recipes are listed below instead
        headers, body = table(summarize(ran), mark_best=lambda c: f"[bold green]{c}[/]")
        grid = Table(title=f"{escape(item.audio.recording.id)} ({item.audio.recording.duration_s:.1f} s)")
        for h in headers:
            grid.add_column(escape(h), justify="left" if h == "metric" else "right")
        for row in body:
            grid.add_row(escape(row[0]), *row[1:])
        out.print(grid)
        for r in results:
            if r.error and r.error_stage == "check":
                out.print(f"[yellow]{escape(r.recipe)} did not run:[/] {escape(r.error)}", soft_wrap=True)
            elif r.error:
                out.print(f"[red]{escape(r.recipe)} failed:[/] {escape(r.error)}", soft_wrap=True)
        out.print(f"results: {writer.path}\nsummary: {writer.out_dir / 'summary.md'}")
    if interrupted:
        raise typer.Exit(130)
    if results and all(r.error for r in results):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def run(
    recipe: Annotated[str, typer.Argument(help="recipe name (see `workbench recipes`) or path to a .toml")],
    audio: Annotated[Path, typer.Argument(help="audio or video file (anything FFmpeg decodes)")],
    reference: ReferenceOpt = None,
    out_dir: OutOpt = Path("reports"),
    hardware: HardwareOpt = None,
    prices: PricesOpt = None,
    normalizer: NormOpt = "whisper-english",
    max_duration: MaxDurOpt = 4 * 3600,
    speakers: SpeakersOpt = None,
    phrases: PhrasesOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Run one recipe on one recording."""
    _setup_logging(verbose)
    _compare([recipe], audio, reference, out_dir, hardware, prices, normalizer, max_duration, speakers, phrases)


@app.command()
def compare(
    audio: Annotated[Path, typer.Argument(help="audio or video file (anything FFmpeg decodes)")],
    reference: ReferenceOpt = None,
    recipes: RecipesOpt = None,
    out_dir: OutOpt = Path("reports"),
    hardware: HardwareOpt = None,
    prices: PricesOpt = None,
    normalizer: NormOpt = "whisper-english",
    max_duration: MaxDurOpt = 4 * 3600,
    speakers: SpeakersOpt = None,
    phrases: PhrasesOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Run several recipes on one recording and print them side by side."""
    _setup_logging(verbose)
    _compare(_recipe_names(recipes), audio, reference, out_dir, hardware, prices, normalizer, max_duration, speakers,
             phrases)


@app.command()
def probe(
    recipes: RecipesOpt = None,
    nonspeech: Annotated[Optional[Path], typer.Option("--nonspeech", help="a folder of real non-speech recordings to add")] = None,
    generated: Annotated[bool, typer.Option("--generated/--no-generated", help="the generated clips (silence, noise, hum, clicks)")] = True,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="run each clip N times and report the spread")] = 1,
    out_dir: OutOpt = Path("reports"),
    hardware: HardwareOpt = None,
    prices: PricesOpt = None,
    phrases: PhrasesOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Run recipes on clips with no speech (hallucination probes) and report what they invent."""
    from workbench import runner
    from workbench.hallucination.probes import folder_probes, generated_probes
    from workbench.hallucination.suite import probe_markdown, run_probes, summarize_probes

    _setup_logging(verbose)
    try:
        setup = _setup(_recipe_names(recipes), hardware, prices, "whisper-english", phrases)
        clips = (generated_probes() if generated else []) + (folder_probes(nonspeech) if nonspeech else [])
        if not clips:
            raise BadInputError("no probe clips: keep the generated ones or pass --nonspeech DIR")
    except WorkbenchError as exc:
        _fail(exc)
        return
    run_id = runner.new_run_id()
    writer = runner.ResultWriter(out_dir / run_id)
    recipe_list = setup.pop("recipes")
    try:
        with _progress() as progress:
            run_probes(recipe_list, clips, writer=writer, run_id=run_id, repeats=repeats, hook=ProgressHook(progress), **setup)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: results finished so far are kept[/]")
    if not writer.results:
        raise typer.Exit(EXIT_FAILED)
    (writer.out_dir / "summary.md").write_text(probe_markdown(writer.results, f"Hallucination probes {run_id}"), encoding="utf-8")
    grid = Table(title=f"{len(clips)} clips with no speech ({sum(len(c.samples) for c in clips) / 16000 / 60:.1f} min) × {repeats}")
    for col in ("recipe", "clips with output", "words / min", "stock phrases", "repeats agree"):
        grid.add_column(col)
    for s in summarize_probes(writer.results):
        share = "—" if s.share_with_output is None else f"{s.clips_with_output}/{s.clips}"
        wpm = "—" if s.words_per_minute is None else f"{s.words_per_minute:.1f}"
        grid.add_row(escape(s.recipe), share, wpm, escape(", ".join(sorted(s.stock_phrases)) or "none"),
                     "yes" if s.repeatable else "no")
    out.print(grid)
    out.print(f"results: {writer.path}\nsummary: {writer.out_dir / 'summary.md'}")


@app.command("pad-delta")
def pad_delta(
    audio: Annotated[Path, typer.Argument(help="audio or video file")],
    reference: ReferenceOpt = None,
    recipes: RecipesOpt = None,
    pad: Annotated[str, typer.Option("--pad", help="silence to splice in: SECONDS@start|end|middle|TIME, comma-separated")] = "30@start,30@end",
    out_dir: OutOpt = Path("reports"),
    hardware: HardwareOpt = None,
    prices: PricesOpt = None,
    normalizer: NormOpt = "whisper-english",
    phrases: PhrasesOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Insertions with silence spliced into a recording, minus insertions without (for untimed models)."""
    from workbench import runner
    from workbench.hallucination.padding import parse_pads
    from workbench.hallucination.suite import padding_delta, padding_markdown

    _setup_logging(verbose)
    try:
        setup = _setup(_recipe_names(recipes), hardware, prices, normalizer, phrases)
        pads = parse_pads(pad)
        if not reference:
            raise BadInputError("pad-delta needs a reference with words (--reference)")
        item = runner.load_item(str(audio), [str(r) for r in reference])
        if item.text_reference is None:
            raise BadInputError("pad-delta needs a reference with words (.stm, .srt, .vtt, .txt or .json)")
    except WorkbenchError as exc:
        _fail(exc)
        return
    run_id = runner.new_run_id()
    writer = runner.ResultWriter(out_dir / run_id)
    recipe_list = setup.pop("recipes")
    try:
        with _progress() as progress:
            rows = padding_delta(recipe_list, item, pads, writer=writer, run_id=run_id, hook=ProgressHook(progress), **setup)
    except WorkbenchError as exc:
        _fail(exc)
        return
    (writer.out_dir / "summary.md").write_text(padding_markdown(rows, f"Padding delta {run_id}"), encoding="utf-8")
    grid = Table(title=f"{escape(item.audio.recording.id)} padded with {escape(pad)}")
    for col in ("recipe", "insertions without", "with padding", "delta", "stock phrases (padded)"):
        grid.add_column(col)
    for r in rows:
        grid.add_row(escape(r["recipe"]), *("—" if r[k] is None else str(r[k]) for k in ("insertions_original", "insertions_padded", "delta")),
                     escape(", ".join(r["stock_phrases"]) or "none"))
    out.print(grid)
    out.print(f"results: {writer.path}\nsummary: {writer.out_dir / 'summary.md'}")


@app.command()
def batch(
    source: Annotated[Path, typer.Argument(help="a folder of recordings (references beside them by stem) or a .jsonl / .csv manifest")],
    recipes: RecipesOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue a run: skip (recording, recipe) pairs already done")] = False,
    run_id: Annotated[Optional[str], typer.Option("--run-id", help="name the run (with --resume: the run to continue; default the latest)")] = None,
    store_path: Annotated[Path, typer.Option("--store", help="SQLite results store")] = Path("reports") / "workbench.sqlite",
    workers: Annotated[int, typer.Option("--workers", min=1, help="worker processes (each loads the models once)")] = 1,
    executor: Annotated[str, typer.Option("--executor", help="local or ray")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="join a running Ray cluster (default: start a local one)")] = None,
    gpus_per_task: Annotated[float, typer.Option("--gpus-per-task", min=0, help="Ray: GPUs each task asks for")] = 0.0,
    out_dir: OutOpt = Path("reports"),
    hardware: HardwareOpt = None,
    prices: PricesOpt = None,
    normalizer: NormOpt = "whisper-english",
    phrases: PhrasesOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Run recipes over a folder or manifest; results go to results.jsonl and the store as they finish."""
    from workbench import environment, runner
    from workbench.batch import (StoreWriter, discover, export_jsonl, run_batch, run_batch_parallel, run_batch_ray,
                                 same_source)
    from workbench.store import ResultStore
    from workbench.summary import markdown

    _setup_logging(verbose)
    try:
        if run_id is not None:
            runner.check_run_id(run_id)
        if executor not in ("local", "ray"):
            raise BadInputError(f"unknown executor {executor!r}; known: local, ray")
        setup = _setup(_recipe_names(recipes), hardware, prices, normalizer, phrases)
        entries = discover(source)
        resolved = str(source.resolve())
        store = ResultStore(store_path)
        if resume and run_id is None:
            previous = [r["run_id"] for r in store.runs() if same_source(r, source)]
            if not previous:
                store.close()
                raise BadInputError(f"--resume: no earlier batch over {resolved} in {store_path}; drop --resume to start "
                                    "one, or name the run with --run-id")
            run_id = runner.check_run_id(previous[-1])
    except WorkbenchError as exc:
        _fail(exc)
        return
    run_id = run_id or runner.new_run_id()
    writer = StoreWriter(out_dir / run_id, store)
    recipe_list = setup.pop("recipes")
    interrupted = False
    try:
        store.add_run(run_id, ["workbench", "batch", str(source)], environment.hardware(), source=resolved)
        if writer.path.is_file():
            # an earlier batch of this run left results.jsonl: add what it holds and the store lacks (a store
            # write that failed, a kill between the two writes), and rewrite it whole before appending to it
            # (a line torn by a kill would otherwise run into the next one; the store logs that it skipped it)
            if recovered := export_jsonl(store_path, run_id, writer.out_dir):
                console.print(f"added {recovered} result(s) from {escape(str(writer.path))} that the store lacked")
        with _progress() as progress:
            if executor == "ray":
                task = progress.add_task(f"batch on Ray ({workers} CPUs)", total=None)
                run_batch_ray(recipe_list, entries, workers=workers, out_dir=writer.out_dir, store_path=store_path,
                              run_id=run_id, resume=resume, address=ray_address, gpus_per_task=gpus_per_task,
                              progress=lambda done, total: progress.update(task, completed=done, total=total), **setup)
            elif workers > 1:
                task = progress.add_task(f"batch on {workers} workers", total=None)
                run_batch_parallel(recipe_list, entries, workers=workers, out_dir=writer.out_dir, store_path=store_path,
                                   run_id=run_id, resume=resume,
                                   progress=lambda done, total: progress.update(task, completed=done, total=total), **setup)
            else:
                run_batch(recipe_list, entries, writer=writer, run_id=run_id, resume=resume, hook=ProgressHook(progress),
                          **setup)
    except KeyboardInterrupt:
        interrupted = True
        console.print(f"[yellow]interrupted: finished results are kept; continue with --resume --run-id {run_id}[/]")
    except WorkbenchError as exc:
        store.close()
        _fail(exc)
    try:
        # the store is the record: results.jsonl is rewritten from it (rows only the file held are added to the
        # store first), so a crash between the two writes never leaves the file short, duplicated or broken
        export_jsonl(store_path, run_id, writer.out_dir)
        rows = store.rows(run_id=run_id)
    except WorkbenchError as exc:
        store.close()
        _fail(exc)
    out.print(f"{len(rows)} results in run {run_id} ({len(entries)} recordings × {len(recipe_list)} recipes)")
    if writer.results:
        (writer.out_dir / "summary.md").write_text(markdown(writer.results, title=f"Batch {run_id}"), encoding="utf-8")
    out.print(f"results: {writer.path}\nstore: {store_path}\nreport: workbench report {run_id} --store {store_path}")
    store.close()
    if interrupted:
        raise typer.Exit(130)


@app.command()
def report(
    run: Annotated[str, typer.Argument(help="a run id in the store, or a results.jsonl file")],
    formats: Annotated[str, typer.Option("--format", help="comma-separated: html, md, json, csv")] = "html,md,json,csv",
    store_path: Annotated[Path, typer.Option("--store", help="SQLite results store")] = Path("reports") / "workbench.sqlite",
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="where to write (default: reports/<run-id>/)")] = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Write a run's report: self-contained HTML with charts, Markdown, JSON and CSV (same numbers)."""
    from workbench.report import write_reports
    from workbench.runner import check_run_id
    from workbench.store import ResultStore, read_jsonl

    _setup_logging(verbose)
    try:
        path = Path(run)
        if path.suffix == ".jsonl" and path.is_file():
            found = read_jsonl(path)
            if found.torn_line:
                console.print(f"[yellow]{escape(str(path))}:{found.torn_line}: skipped a torn last line (a write cut "
                              "short); the report leaves that result out[/]", soft_wrap=True)
            with ResultStore(":memory:") as store:
                store.import_jsonl(path, parsed=found)
                rows = store.rows()
            run_id = rows[0]["run_id"] if rows else path.parent.name
            target = out_dir or path.parent
        else:
            if out_dir is None:
                check_run_id(run)  # it names the folder the report goes to
            if not store_path.is_file():
                raise BadInputError(f"no results store at {store_path}: pass --store, or a results.jsonl path")
            with ResultStore(store_path) as store:
                rows = store.rows(run_id=run)
            run_id, target = run, out_dir or Path("reports") / run
        if not rows:
            raise BadInputError(f"run {run!r} has no results (see the run ids in {store_path})")
        written = write_reports(rows, run_id, target, [f.strip() for f in formats.split(",") if f.strip()])
    except WorkbenchError as exc:
        _fail(exc)
        return
    for p in written:
        out.print(str(p))


@app.command("recipes")
def list_recipes(verbose: VerboseOpt = 0) -> None:
    """List recipes: what each runs, whether it can run here, and if not, why and how to make it run."""
    from workbench.recipes import available_recipe_files, check_recipe, load_recipe_file

    _setup_logging(verbose)
    grid = Table(show_lines=True)
    for col in ("recipe", "stages", "available here", "why not / how to make it run"):
        grid.add_column(col)
    broken = False
    for name, path in available_recipe_files().items():
        try:
            recipe = load_recipe_file(path)
        except WorkbenchError as exc:
            broken = True
            grid.add_row(escape(name), "", "[red]invalid[/]", escape(str(exc)))
            continue
        stages = "\n".join(f"{s.stage}: {s.backend}" + (f" ({getattr(s.options, 'model')})" if hasattr(s.options, "model") else "")
                           for s in recipe.stages if s.backend != "none")
        status = check_recipe(recipe)
        grid.add_row(escape(name) + "\n" + escape(recipe.description), escape(stages),
                     "[green]yes[/]" if status.ok else "[red]no[/]",
                     "" if status.ok else escape(f"{status.reason}\n→ {status.fix}" if status.fix else status.reason))
    out.print(grid)
    if broken:
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command()
def dashboard(
    host: Annotated[str, typer.Option("--host", help="address to listen on (127.0.0.1: this machine only)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on")] = 8501,
    store: Annotated[Path, typer.Option("--store", help="SQLite result store (shared with `workbench batch`)")] = Path("reports") / "workbench.sqlite",
    out_dir: Annotated[Path, typer.Option("--out", help="where each dashboard run keeps its uploads and results")] = Path("reports") / "dashboard",
    max_upload_mb: Annotated[int, typer.Option("--max-upload-mb", help="largest upload accepted, MB")] = 1024,
    max_duration: MaxDurOpt = 4 * 3600,
    hardware: HardwareOpt = None,
    pool_size: Annotated[int, typer.Option("--keep-loaded", help="recipes whose models stay loaded between runs")] = 4,
    verbose: VerboseOpt = 0,
) -> None:
    """Start the dashboard (Streamlit) in the browser: compare recipes on an upload, browse runs, export reports."""
    import subprocess

    from workbench.dashboard import command

    _setup_logging(verbose)
    try:
        if not 0 < port < 65536:
            raise BadInputError(f"--port must be 1–65535 (got {port})")
        if max_upload_mb < 1 or pool_size < 1:
            raise BadInputError("--max-upload-mb and --keep-loaded must be at least 1")
        if importlib.util.find_spec("streamlit") is None:
            raise BadInputError("the dashboard needs streamlit: pip install streamlit")
        if hardware:
            from workbench.cost import load_prices

            load_prices().pick(hardware)
    except WorkbenchError as exc:
        _fail(exc)
        return
    env = {**os.environ, "WORKBENCH_STORE": str(store.resolve()), "WORKBENCH_OUT": str(out_dir.resolve()),
           "WORKBENCH_MAX_UPLOAD_MB": str(max_upload_mb), "WORKBENCH_MAX_DURATION_S": str(max_duration),
           "WORKBENCH_POOL_SIZE": str(pool_size), "WORKBENCH_HARDWARE": hardware or ""}
    console.print(f"dashboard: http://{host}:{port}  (store {store}, runs in {out_dir}; Ctrl+C stops it)")
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
