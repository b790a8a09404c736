"""Batch comparisons over a folder or a manifest, written to results.jsonl and the SQLite store as each
result finishes, so an interrupted batch loses nothing finished and ``resume`` skips what is done.

Inputs:
- a folder: every audio file in it (not recursive), with references beside it by file stem
  (``talk.wav`` + ``talk.stm`` / ``talk.rttm`` / ``talk.srt`` …);
- a manifest, JSONL or CSV, one recording per row: ``audio``, ``reference`` (one path, or several separated
  by ``;`` in CSV / a list in JSONL), ``speakers`` (optional count), ``tags`` (optional; ``;``-separated in CSV).
  Relative paths are relative to the manifest's folder.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from workbench.datamodel import Recording
from workbench.errors import BadInputError, WorkbenchError
from workbench.execution import Execution, limit_threads, split_threads
from workbench.hallucination.probes import AUDIO_SUFFIXES
from workbench.references import REFERENCE_FORMATS
from workbench.result import RunResult
from workbench.runner import Item, ResultWriter, finite, load_item, run_recipes
from workbench.store import ResultStore

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
    return [_entry(source, n, row) for n, row in rows]


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


class StoreWriter(ResultWriter):
    """Adds each result to the store, and appends it to results.jsonl, as soon as it exists. Parallel workers
    write to the store only (``jsonl=False``); the parent exports results.jsonl from the store."""

    def __init__(self, out_dir: Path, store: ResultStore, *, jsonl: bool = True):
        super().__init__(out_dir)
        self.store = store
        self.jsonl = jsonl
        self.tags: dict[str, tuple[str, ...]] = {}  # recording path → the manifest's tags for it

    def write_json(self, row: dict) -> None:
        row = json.loads(json.dumps(finite(row), default=str, allow_nan=False))
        row["tags"] = list(self.tags.get((row.get("recording") or {}).get("path"), ()))
        self.store.add(row)
        if self.jsonl:
            super().write_json(row)


def run_batch(recipes, entries: list[BatchEntry], *, writer: StoreWriter, run_id: str, resume: bool = False,
              **kwargs) -> list[RunResult]:
    """Every recipe on every entry not already done in this run. Recordings are decoded once; a recording
    that cannot be decoded is recorded as a failed result for each recipe and the batch goes on."""
    done = writer.store.done(run_id) if resume else set()
    writer.tags.update({e.audio: e.tags for e in entries if e.tags})
    items: dict[str, Item | WorkbenchError] = {}
    results: list[RunResult] = []
    for recipe in recipes:
        todo = [e for e in entries if (e.audio, recipe.hash) not in done]
        if not todo:
            continue
        runnable = []
        for entry in todo:
            if entry.audio not in items:
                try:
                    items[entry.audio] = load_item(entry.audio, entry.references, num_speakers=entry.num_speakers)
                except WorkbenchError as exc:
                    items[entry.audio] = exc
            item = items[entry.audio]
            if isinstance(item, WorkbenchError):
                failed = RunResult(run_id=run_id, recipe=recipe.name, recipe_hash=recipe.hash, pipeline=recipe.pipeline,
                                   recording=Recording(Path(entry.audio).stem, entry.audio, 0.0, 0, 0),
                                   transcript=None, error=f"{type(item).__name__}: {item}", error_stage="decode",
                                   error_kind="bad-input", execution=kwargs.get("execution") or Execution())
                writer.write(failed)
                results.append(failed)
            else:
                runnable.append(item)
        if runnable:
            results += run_recipes([recipe], runnable, writer=writer, run_id=run_id, **kwargs)
    return results


def _worker(recipe, entries: list[BatchEntry], out_dir: str, store_path: str, run_id: str, resume: bool, kwargs: dict) -> int:
    """One worker process: this recipe's models load once, its share of the recordings runs, results go to
    the store as they finish."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with ResultStore(store_path) as store:
        writer = StoreWriter(Path(out_dir), store, jsonl=False)
        return len(run_batch([recipe], entries, writer=writer, run_id=run_id, resume=resume, **kwargs))


def _tasks(recipes, entries: list[BatchEntry], workers: int) -> list[tuple]:
    """(recipe, share of the recordings) per task: each recipe's recordings split into ``workers`` shares."""
    shares = [entries[i::workers] for i in range(workers)]
    return [(recipe, share) for recipe in recipes for share in shares if share]


def run_batch_parallel(recipes, entries: list[BatchEntry], *, workers: int, out_dir: Path, store_path: Path, run_id: str,
                       resume: bool = False, progress=None, **kwargs) -> int:
    """The batch over ``workers`` local processes: each recipe's recordings are split into ``workers`` shares;
    each share is one task (models loaded once per task). Results land in the store as they finish; when all
    tasks are done (or some failed), results.jsonl is written from the store. Returns the results added."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    tasks = _tasks(recipes, entries, workers)
    added = 0
    # the workers share the cores: each gets its share of threads (set before any library starts its pool)
    threads = split_threads(workers)
    kwargs = {**kwargs, "execution": Execution("processes", workers, threads)}
    context = multiprocessing.get_context("spawn")  # no fork after torch/CTranslate2 threads started
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=limit_threads, initargs=(threads,)) as pool:
            futures = [pool.submit(_worker, recipe, share, str(out_dir), str(store_path), run_id, resume, kwargs)
                       for recipe, share in tasks]
            for done, future in enumerate(as_completed(futures), 1):
                added += future.result()
                if progress is not None:
                    progress(done, len(futures))
    finally:
        export_jsonl(store_path, run_id, out_dir)
    return added


def export_jsonl(store_path: Path, run_id: str, out_dir: Path) -> None:
    """results.jsonl of a run, from the store (every finished result once)."""
    with ResultStore(store_path) as store:
        rows = store.rows(run_id=run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "results.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")


def run_batch_ray(recipes, entries: list[BatchEntry], *, workers: int, out_dir: Path, store_path: Path, run_id: str,
                  resume: bool = False, address: str | None = None, gpus_per_task: float = 0.0, progress=None,
                  **kwargs) -> int:
    """The same batch on Ray: one task per recipe × share of the recordings (models load once per task), each
    asking for one CPU and ``gpus_per_task`` GPUs. ``address`` joins a running cluster (its workers must reach
    ``store_path``: put it on a shared filesystem); without it a local Ray instance with ``workers`` CPUs starts.
    Results land in the same store and results.jsonl as with the local executor."""
    try:
        import ray
    except ImportError:
        raise BadInputError('the Ray executor needs Ray: pip install "ray>=2.9" (or -e ".[ray]")') from None
    started = False
    if not ray.is_initialized():
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
        started = True
    remote = ray.remote(_worker)
    added = 0
    cpus_per_task = 1
    kwargs = {**kwargs, "execution": Execution("ray", workers, cpus_per_task)}  # a task's threads = its num_cpus
    try:
        pending = [remote.options(num_cpus=cpus_per_task, num_gpus=gpus_per_task).remote(
                       recipe, share, str(out_dir), str(store_path), run_id, resume, kwargs)
                   for recipe, share in _tasks(recipes, entries, workers)]
        total = len(pending)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            added += ray.get(ready[0])
            if progress is not None:
                progress(total - len(pending), total)
    finally:
        export_jsonl(store_path, run_id, out_dir)
        if started:
            ray.shutdown()
    return added
