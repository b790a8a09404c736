"""Where results go as each one finishes: one protocol, four writers.

- :class:`ResultWriter` appends each result to ``<out>/results.jsonl``;
- :class:`StoreWriter` does that, then adds it to the SQLite results store (every face's runs);
- :class:`MemoryWriter` keeps results in memory only (results completed before they are written);
- :class:`RowCollector` keeps plain JSON rows for a batch's driver process (a worker writes no file).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from workbench.jsonsafe import finite  # noqa: F401  (re-exported)
from workbench.errors import StoreError
from workbench.result import RunResult

if TYPE_CHECKING:
    from workbench.store import ResultStore

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"


@runtime_checkable
class Writer(Protocol):
    """What the runner writes each result to, the moment it exists: ``write`` takes a result, ``write_json`` a
    row as results.jsonl holds it (a result rewritten before it is kept, a row a worker sent back)."""

    def write(self, result: RunResult) -> None: ...

    def write_json(self, row: dict) -> None: ...


def plain_row(row: dict) -> dict:
    """A result row as plain JSON values (what results.jsonl holds, and what a worker sends to the driver)."""
    return json.loads(json.dumps(finite(row), default=str, allow_nan=False))


@dataclass
class ResultWriter:
    """Appends each result to ``<out_dir>/results.jsonl`` as soon as it exists."""

    out_dir: Path
    results: list[RunResult] = field(default_factory=list)
    #: judges the keypoints/open answers of each result before it is written (see :meth:`judge_with`)
    judge: object = None
    judge_cache: object = None

    def __post_init__(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / RESULTS_FILE

    def judge_with(self, judge, cache=None) -> None:
        """Judge every result's keypoints/open answers with ``judge`` (a :class:`workbench.judging.ModelJudge`,
        judgements from and into ``cache``) before it is written, so the rows on disk hold the judgements."""
        self.judge, self.judge_cache = judge, cache

    def write(self, result: RunResult) -> None:
        if self.judge is not None and result.tasks:
            from dataclasses import replace

            from workbench.tasks.judge import judge_tasks

            result = replace(result, tasks=judge_tasks(result.tasks, self.judge, self.judge_cache))
        self.write_json(result.to_json())  # (already judged: no second call to the judge)
        self.results.append(result)

    def write_json(self, row: dict) -> None:
        self._append(self._judged(row))

    def _judged(self, row: dict) -> dict:
        """``row`` with its keypoints/open answers judged, when this writer has a judge."""
        if self.judge is None or not row.get("tasks"):
            return row
        from workbench.tasks.judge import judge_rows

        [row] = judge_rows([row], self.judge, self.judge_cache)
        return row

    def _append(self, row: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(finite(row), ensure_ascii=False, allow_nan=False) + "\n")
            f.flush()


@dataclass
class MemoryWriter:
    """Keeps results in memory only (for results that are completed before they are written)."""

    results: list[RunResult] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)

    def write(self, result: RunResult) -> None:
        self.results.append(result)

    def write_json(self, row: dict) -> None:
        self.rows.append(row)


class StoreWriter(ResultWriter):
    """Appends each result to results.jsonl, then adds it to the store, as soon as it exists. results.jsonl comes
    first: when the store cannot be written (locked by another program past its busy timeout, a full disk) the
    result is already on disk. The store write is tried ``attempts`` times, pausing ``backoff_s``, then twice
    that, …; then a StoreError (one line: the store, the file holding the result, what to do) stops the batch.
    After that every further result still goes to results.jsonl and raises the same error (the store is not
    tried again). ``workbench batch --resume`` adds what the file holds and the store lacks."""

    def __init__(self, out_dir: Path, store: ResultStore, *, attempts: int = 3, backoff_s: float = 1.0):
        super().__init__(out_dir)
        self.store = store
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.failure: StoreError | None = None
        self.tags: dict[str, tuple[str, ...]] = {}  # recording path → the manifest's tags for it

    def write_json(self, row: dict) -> None:
        row = self._judged(plain_row(row))
        row["tags"] = list(self.tags.get((row.get("recording") or {}).get("path"), ()))
        self._append(row)
        if self.failure is not None:
            raise self.failure
        for attempt in range(1, self.attempts + 1):
            try:
                self.store.add(row)
                return
            except sqlite3.Error as exc:  # locked, full, read-only, I/O
                problem = f"{type(exc).__name__}: {exc}"
                if attempt < self.attempts:
                    pause = self.backoff_s * 2 ** (attempt - 1)
                    log.warning("%s: could not add a result (%s); trying again in %.1f s", self.store.path, problem, pause)
                    time.sleep(pause)
        run_id = row.get("run_id", "")
        self.failure = StoreError(
            f"{self.store.path}: could not add a result to the results store ({problem}; {self.attempts} tries). "
            f"It is kept in {self.path}. Close any other program using the store (or free disk space), then run "
            f"the same `workbench batch` with --resume --run-id {run_id} to add it and go on")
        raise self.failure


class RowCollector:
    """A worker's writer: keeps each result as a plain JSON row for the driver, which alone writes results.jsonl
    and the store (a worker gets no path to either: on Ray it may run on another host)."""

    def __init__(self):
        self.rows: list[dict] = []

    def write(self, result: RunResult) -> None:
        self.rows.append(plain_row(result.to_json()))

    def write_json(self, row: dict) -> None:
        self.rows.append(plain_row(row))
