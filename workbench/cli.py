"""The ``workbench`` command: a thin face over the library (typer + rich live here, nowhere else)."""

from __future__ import annotations

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
SpeakersOpt = Annotated[Optional[int], typer.Option("--speakers", help="number of speakers for diarization (default: the recipe's, else estimated)")]


def _compare(recipe_names: list[str], audio: Path, references: list[Path] | None, out_dir: Path, hardware: str | None,
             prices: Path | None, normalizer: str, max_duration: float, speakers: int | None = None) -> None:
    from workbench import runner
    from workbench.cost import load_prices
    from workbench.metrics import get_normalizer
    from workbench.recipes import load_recipe
    from workbench.summary import markdown, summarize, table

    try:
        get_normalizer(normalizer)
        recipes = [load_recipe(name) for name in recipe_names]
        price_table = load_prices(prices)
        price = price_table.pick(hardware)
        for recipe in recipes:
            if runner.api_price_id(recipe):
                price_table.pick_api(runner.api_price_id(recipe))
        item = runner.load_item(str(audio), [str(r) for r in references or []], max_duration_s=max_duration,
                                num_speakers=speakers)
    except WorkbenchError as exc:
        _fail(exc)
        return
    run_id = runner.new_run_id()
    writer = runner.ResultWriter(out_dir / run_id)
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    interrupted = False
    try:
        with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as progress:
            runner.run_recipes(recipes, [item], writer=writer, run_id=run_id, price=price, normalizer=normalizer,
                               hook=ProgressHook(progress), api_prices=price_table.api)
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
    verbose: VerboseOpt = 0,
) -> None:
    """Run one recipe on one recording."""
    _setup_logging(verbose)
    _compare([recipe], audio, reference, out_dir, hardware, prices, normalizer, max_duration, speakers)


@app.command()
def compare(
    audio: Annotated[Path, typer.Argument(help="audio or video file (anything FFmpeg decodes)")],
    reference: ReferenceOpt = None,
    recipes: Annotated[Optional[str], typer.Option("--recipes", help="comma-separated recipe names (default: all)")] = None,
    out_dir: OutOpt = Path("reports"),
    hardware: HardwareOpt = None,
    prices: PricesOpt = None,
    normalizer: NormOpt = "whisper-english",
    max_duration: MaxDurOpt = 4 * 3600,
    speakers: SpeakersOpt = None,
    verbose: VerboseOpt = 0,
) -> None:
    """Run several recipes on one recording and print them side by side."""
    from workbench.recipes import available_recipe_files

    _setup_logging(verbose)
    names = [n.strip() for n in recipes.split(",") if n.strip()] if recipes else list(available_recipe_files())
    if not names:
        _fail(BadInputError("no recipes found: pass --recipes or add .toml files to ./pipelines"))
    _compare(names, audio, reference, out_dir, hardware, prices, normalizer, max_duration, speakers)


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


def main() -> None:
    try:
        app()
    except WorkbenchError as exc:  # anything a command did not catch itself
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT if isinstance(exc, BadInputError) else EXIT_FAILED)
