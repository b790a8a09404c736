"""Batch comparisons over a folder or a manifest, written to results.jsonl and the SQLite store as each
result finishes, so an interrupted batch loses nothing finished and ``resume`` skips what is done. One process
writes: with local workers or on Ray, the tasks send their rows back to the driver.

Inputs:
- a folder: every audio file in it (not recursive), with references beside it by file stem
  (``talk.wav`` + ``talk.stm`` / ``talk.rttm`` / ``talk.srt`` …);
- a manifest, JSONL or CSV, one recording per row: ``audio``, ``reference`` (one path, or several separated
  by ``;`` in CSV / a list in JSONL), ``speakers`` (optional count), ``tags`` (optional; ``;``-separated in CSV).
  Relative paths are relative to the manifest's folder. A recording listed twice is refused (naming both lines).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import BadInputError, StoreError
from workbench.files import write_atomic
from workbench.execution import Execution, limit_threads, split_threads
from workbench.audio import AUDIO_SUFFIXES
from workbench.recipes import Recipe
from workbench.references import REFERENCE_FORMATS
from workbench.result import RunResult
from workbench.runner import PendingItem, run_recipes
from workbench.store import ResultStore
from workbench.writers import RESULTS_FILE, RowCollector, StoreWriter, plain_row  # noqa: F401  (StoreWriter, plain_row: re-exported)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchEntry:
    audio: str
    references: tuple[str, ...] = ()
    num_speakers: int | None = None
    tags: tuple[str, ...] = ()


def discover(source: str | Path) -> list[BatchEntry]:
    source = Path(source)
    if source.is_dir():
        entries = []
        for audio in sorted(p for p in source.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES):
            refs = tuple(str(audio.with_suffix(ext).resolve()) for ext in REFERENCE_FORMATS if audio.with_suffix(ext).is_file())
            entries.append(BatchEntry(str(audio.resolve()), refs))
        if not entries:
            raise BadInputError(f"{source}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})")
        return entries
    if not source.is_file():
        raise BadInputError(f"batch input {source} not found: give a folder of recordings or a .jsonl / .csv manifest")
    if source.suffix.lower() == ".jsonl":
        rows = []
        for n, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append((n, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise BadInputError(f"{source}:{n}: not JSON ({exc.msg})") from None
    elif source.suffix.lower() == ".csv":
        with open(source, newline="", encoding="utf-8") as f:
            rows = [(n, row) for n, row in enumerate(csv.DictReader(f), 2)]
    else:
        raise BadInputError(f"{source}: a manifest must be .jsonl or .csv")
    entries = [_entry(source, n, row) for n, row in rows]
    first_line: dict[str, int] = {}
    for (n, _), entry in zip(rows, entries):
        if entry.audio in first_line:
            raise BadInputError(f"{source}:{n}: {entry.audio} is listed twice (lines {first_line[entry.audio]} and {n}); "
                                "list each recording once")
        first_line[entry.audio] = n
    return entries


def _entry(manifest: Path, line: int, row) -> BatchEntry:
    if not isinstance(row, dict) or not row.get("audio"):
        raise BadInputError(f"{manifest}:{line}: each row needs an 'audio' path")

    def split(value) -> list[str]:
        if value is None or value == "":
            return []
        return [str(v) for v in value] if isinstance(value, list) else [v.strip() for v in str(value).split(";") if v.strip()]

    def resolve(path: str) -> str:
        p = Path(path).expanduser()
        return str((p if p.is_absolute() else manifest.parent / p).resolve())

    speakers = row.get("speakers")
    try:
        speakers = int(speakers) if speakers not in (None, "") else None
    except (TypeError, ValueError):
        raise BadInputError(f"{manifest}:{line}: speakers must be a whole number (got {speakers!r})") from None
    return BatchEntry(resolve(row["audio"]), tuple(resolve(r) for r in split(row.get("reference"))), speakers,
                      tuple(split(row.get("tags"))))


def same_source(run: dict, source: str | Path) -> bool:
    """Whether a stored run (``ResultStore.runs()``) was a batch over exactly ``source`` (a folder or manifest):
    its recorded source is the same resolved path. Runs recorded before sources were kept are matched by their
    command's source argument, exactly as it was typed."""
    if run.get("source") is not None:
        return run["source"] == str(Path(source).resolve())
    try:
        argv = shlex.split(run.get("command") or "")
    except ValueError:
        return False
    return argv[:2] == ["workbench", "batch"] and argv[2:3] == [str(source)]


Work = list[tuple[Recipe, list[BatchEntry]]]


def _todo(recipes, entries: list[BatchEntry], done: set[tuple[str, str]]) -> Work:
    """(recipe, its entries not done yet) for every recipe with something left to do."""
    work = []
    for recipe in recipes:
        todo = [e for e in entries if (e.audio, recipe.hash) not in done]
        if todo:
            work.append((recipe, todo))
    return work


def _run(work: Work, *, writer, run_id: str, **kwargs) -> list[RunResult]:
    """Each recipe on its entries: its models load once; each recording is decoded when the recipe reaches it
    and released after (one decoded recording in memory at a time — so once per recipe that needs it)."""
    results: list[RunResult] = []
    for recipe, todo in work:
        pending = [PendingItem(e.audio, e.references, e.num_speakers) for e in todo]
        results += run_recipes([recipe], pending, writer=writer, run_id=run_id, **kwargs)
    return results


def run_batch(recipes, entries: list[BatchEntry], *, writer: StoreWriter, run_id: str, resume: bool = False,
              **kwargs) -> list[RunResult]:
    """Every recipe on every entry not already done in this run (with ``resume``: see ``ResultStore.done`` —
    recipes that did not run and transient failures are tried again, and their new result replaces the old).
    A recording that cannot be decoded is recorded as a failed result for each recipe and the batch goes on."""
    done = writer.store.done(run_id) if resume else set()
    writer.tags.update({e.audio: e.tags for e in entries if e.tags})
    return _run(_todo(recipes, entries, done), writer=writer, run_id=run_id, **kwargs)


def _worker(recipe, entries: list[BatchEntry], run_id: str, kwargs: dict) -> list[dict]:
    """One worker process (or Ray task): this recipe's models load once, its share of the recordings runs; the
    result rows go back to the driver, which writes them."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    writer = RowCollector()
    _run([(recipe, entries)], writer=writer, run_id=run_id, **kwargs)
    return writer.rows


def _tasks(work: Work, workers: int) -> list[tuple]:
    """(recipe, share of its recordings to do) per task: each recipe's recordings split into ``workers`` shares."""
    return [(recipe, todo[i::workers]) for recipe, todo in work for i in range(workers) if todo[i::workers]]


def _gather(finished: Iterator[Callable[[], list[dict]]], total: int, writer: StoreWriter, progress) -> int:
    """The driver's side: as each task finishes, its rows go to results.jsonl and the store (this process is the
    only writer). A task that failed, or a store that cannot be written, does not stop the others' rows from
    being kept; the first such error is raised once every task is in. Returns the rows written."""
    added = 0
    failure: BaseException | None = None
    for done, rows in enumerate(finished, 1):
        try:
            rows = rows()
        except Exception as exc:  # noqa: BLE001 - a failed task: the others' results still count
            log.error("a batch task failed: %s", exc)
            failure = failure or exc
            rows = []
        for row in rows:
            try:
                writer.write_json(row)
            except StoreError as exc:  # the row is in results.jsonl
                failure = failure or exc
            added += 1
        if progress is not None:
            progress(done, total)
    if failure is not None:
        raise failure
    return added


def _driver_writer(out_dir: Path, store: ResultStore, entries: list[BatchEntry]) -> StoreWriter:
    writer = StoreWriter(Path(out_dir), store)
    writer.tags.update({e.audio: e.tags for e in entries if e.tags})
    return writer


def run_batch_parallel(recipes, entries: list[BatchEntry], *, workers: int, out_dir: Path, store_path: Path, run_id: str,
                       resume: bool = False, progress=None, **kwargs) -> int:
    """The batch over ``workers`` local processes: each recipe's recordings still to do are split into
    ``workers`` shares; each share is one task (models loaded once per task). Workers send their rows back;
    this process appends them to results.jsonl and adds them to the store as each task finishes. Returns the
    results written."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # the workers share the cores: each gets its share of threads (set before any library starts its pool)
    threads = split_threads(workers)
    kwargs = {**kwargs, "execution": Execution("processes", workers, threads)}
    context = multiprocessing.get_context("spawn")  # no fork after torch/CTranslate2 threads started
    with ResultStore(store_path) as store:
        writer = _driver_writer(out_dir, store, entries)
        tasks = _tasks(_todo(recipes, entries, store.done(run_id) if resume else set()), workers)
        with ProcessPoolExecutor(workers, mp_context=context, initializer=limit_threads, initargs=(threads,)) as pool:
            futures = [pool.submit(_worker, recipe, share, run_id, kwargs) for recipe, share in tasks]
            return _gather((f.result for f in as_completed(futures)), len(futures), writer, progress)


def export_jsonl(store_path: Path, run_id: str, out_dir: Path) -> int:
    """Rewrite results.jsonl of a run from the store: every result once (the latest per recording and recipe),
    written to a temporary file and renamed over the old one. Rows the old file holds and the store lacks (a
    store write that failed, a kill between the two writes) are added to the store first, so none is dropped;
    a torn last line (a write cut short) is skipped. Returns how many rows the file added to the store."""
    path = Path(out_dir) / RESULTS_FILE
    with ResultStore(store_path) as store:
        added = store.import_jsonl(path) if path.is_file() else 0
        rows = store.rows(run_id=run_id)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_atomic(path, "".join(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n" for row in rows))
    return added


RAY_USAGE_STATS = "RAY_USAGE_STATS_ENABLED"


@contextmanager
def _ray_usage_stats_off() -> Iterator[None]:
    """Ray sends usage statistics over the internet by default. A Ray instance started from here does not, unless
    the user asked for them (RAY_USAGE_STATS_ENABLED set in the environment, e.g. to 1)."""
    if RAY_USAGE_STATS in os.environ:
        yield
        return
    os.environ[RAY_USAGE_STATS] = "0"
    try:
        yield
    finally:
        os.environ.pop(RAY_USAGE_STATS, None)


def run_batch_ray(recipes, entries: list[BatchEntry], *, workers: int, out_dir: Path, store_path: Path, run_id: str,
                  resume: bool = False, address: str | None = None, gpus_per_task: float = 0.0, progress=None,
                  **kwargs) -> int:
    """The same batch on Ray: one task per recipe × share of the recordings still to do (models load once per
    task), each asking for one CPU and ``gpus_per_task`` GPUs. ``address`` joins a running cluster; without it a
    local Ray instance with ``workers`` CPUs starts (usage statistics off unless RAY_USAGE_STATS_ENABLED is set).
    Tasks return their rows; only this process (the driver) writes results.jsonl and the store, as each task
    finishes — an interrupted batch keeps every finished task. The same results as the local executor."""
    try:
        import ray
    except ImportError:
        raise BadInputError('the Ray executor needs Ray: pip install "ray>=2.9" (or -e ".[ray]")') from None
    with ResultStore(store_path) as store, _ray_usage_stats_off():
        writer = _driver_writer(out_dir, store, entries)
        tasks = _tasks(_todo(recipes, entries, store.done(run_id) if resume else set()), workers)
        if not tasks:
            return 0
        started = False
        if not ray.is_initialized():
            ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
            started = True
        try:
            remote = ray.remote(_worker)
            cpus_per_task = 1
            task_kwargs = {**kwargs, "execution": Execution("ray", workers, cpus_per_task)}  # threads = its num_cpus
            pending = [remote.options(num_cpus=cpus_per_task, num_gpus=gpus_per_task).remote(recipe, share, run_id,
                                                                                           task_kwargs)
                       for recipe, share in tasks]

            def finished() -> Iterator[Callable[[], list[dict]]]:
                waiting = pending
                while waiting:
                    ready, waiting = ray.wait(waiting, num_returns=1)
                    yield lambda ref=ready[0]: ray.get(ref)

            return _gather(finished(), len(pending), writer, progress)
        finally:
            if started:
                ray.shutdown()
