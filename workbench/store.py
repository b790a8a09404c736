"""A SQLite store of results: every results.jsonl row, queryable across runs (stdlib ``sqlite3`` only).

One file (default ``reports/workbench.sqlite``) holds:

* ``runs``       — run_id (primary key), created_at, command, hardware (JSON), tags (JSON list), and for a
  batch its ``source`` (the resolved folder or manifest path, which ``batch --resume`` matches exactly);
* ``recordings`` — one row per (path, duration_s): recording_id, path, duration_s, sample_rate, channels, codec;
* ``results``    — one row per run × recording × recipe_hash (unique: the latest result for that key; a resumed
  batch never duplicates, and a retried recipe replaces its earlier row),
  with the columns a query filters on (recipe, pipeline, error, error_stage, rtfx, cost, peak RSS, created_at)
  and ``row``: the full ``RunResult.to_json()`` dict as JSON, stored as it is (model output included —
  escaping is the renderer's job, never the store's);
* ``judgements`` — the judge's verdicts on keypoints/open answers (:mod:`workbench.tasks.judge`), keyed by a
  hash of (judge identity, prompt version, judge settings, question, points or rubric, answer text): score,
  correct, parsed, note, the judge and when; re-reporting reads them instead of calling the judge again;
* ``votes``      — one row per blind human judgement (the dashboard's Judge panel): two recipes' answers to one
  question on one recording of one run, shown as "Answer A" / "Answer B" with the names hidden; the two results'
  keys (recipe name and hash; ``first`` is the smaller key), which of them was shown as A, the vote (``A``, ``B``
  or ``tie``), the voter (optional free text) and created_at;
* ``metrics``    — one row per numeric figure in ``row["metrics"]``, flattened to dotted names
  (``wer``, ``asr.wer``, ``der.0.der``, ``cpwer.cpwer``, ``hallucination.words_per_hour_nonspeech``).
  A figure that could not be measured (``null``) is stored as NULL, never as 0. Text fields (normalizer,
  reference paths, examples) and booleans are not metrics and are left out; they stay in ``row``.

The schema version is ``PRAGMA user_version``; a file written by a newer workbench is refused, an older one is
upgraded in place (1 → 2: ``runs.source``; 2 → 3: the ``judgements`` table or the ``votes`` table — two
branches each called their table schema 3; 3 → 4: whichever of the two a version 3 file lacks).

Concurrency: several processes (batch workers) may add to one file at once. The file is in WAL mode,
every connection waits up to ``BUSY_TIMEOUT_S`` for a lock, and each ``add`` is one short
``BEGIN IMMEDIATE`` transaction. Open one ``ResultStore`` per process (never share one across a fork).
``synchronous = NORMAL``: a crash of the process loses nothing committed; a power cut may lose the
last few commits, never the file.

Every value goes through ``?`` parameters; SQL text is only ever built from fixed fragments.
"""

from __future__ import annotations

import json
import logging
import math
import shlex
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from workbench.errors import BadInputError, StoreError

log = logging.getLogger(__name__)

STORE_SCHEMA_VERSION = 4
DEFAULT_PATH = Path("reports") / "workbench.sqlite"
BUSY_TIMEOUT_S = 60.0
#: what to do when the store cannot be written (the end of every StoreError message)
STORE_HELP = ("close any other program using it (or free disk space), then run again; a batch's finished "
              "results are kept in its results.jsonl, and `workbench batch --resume` adds them")

# Error kinds (workbench.result) a resume tries again: the recipe never ran (a missing package, model or API
# key; models that failed to load; a recording that could not be decoded: result.DID_NOT_RUN), or a request
# failed in a way retrying may fix ("transient": timeout, 429, 5xx). After the user fixes the cause, a resume
# runs it again and the new result replaces the old row. A row that ran and failed ("failed") is a result.
RETRY_TRANSIENT = "transient"

# metrics that hold text when present: a null there is "no text", not an unmeasured figure
_TEXT_METRICS = frozenset({
    "normalizer", "reference", "reference_format", "speaker_reference", "hallucination.repeat_example",
})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL,
    command     TEXT,
    hardware    TEXT NOT NULL DEFAULT '{}',
    tags        TEXT NOT NULL DEFAULT '[]',
    source      TEXT
);
CREATE TABLE IF NOT EXISTS recordings (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    recording_id TEXT NOT NULL,
    path         TEXT NOT NULL,
    duration_s   REAL NOT NULL,
    sample_rate  INTEGER,
    channels     INTEGER,
    codec        TEXT,
    UNIQUE (path, duration_s)
);
CREATE TABLE IF NOT EXISTS results (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id                  TEXT NOT NULL REFERENCES runs(run_id),
    recording               INTEGER NOT NULL REFERENCES recordings(id),
    recipe                  TEXT NOT NULL,
    recipe_hash             TEXT NOT NULL,
    pipeline                TEXT,
    error                   TEXT,
    error_stage             TEXT,
    rtfx                    REAL,
    cost_usd_per_audio_hour REAL,
    peak_rss_mb             REAL,
    created_at              TEXT,
    row                     TEXT NOT NULL,
    UNIQUE (run_id, recording, recipe_hash)
);
CREATE INDEX IF NOT EXISTS results_recipe ON results(recipe);
CREATE TABLE IF NOT EXISTS metrics (
    result  INTEGER NOT NULL REFERENCES results(id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    value   REAL,
    PRIMARY KEY (result, name)
);
CREATE INDEX IF NOT EXISTS metrics_name ON metrics(name);
CREATE TABLE IF NOT EXISTS judgements (
    key         TEXT PRIMARY KEY,
    judge       TEXT NOT NULL,
    version     TEXT,
    kind        TEXT,
    score       REAL,
    correct     INTEGER,
    parsed      TEXT,
    note        TEXT,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS votes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT NOT NULL REFERENCES runs(run_id),
    recording_id    TEXT NOT NULL,
    recording_path  TEXT NOT NULL,
    question_id     TEXT NOT NULL,
    first_recipe    TEXT NOT NULL,
    first_hash      TEXT NOT NULL,
    second_recipe   TEXT NOT NULL,
    second_hash     TEXT NOT NULL,
    shown_a         TEXT NOT NULL CHECK (shown_a IN ('first', 'second')),
    vote            TEXT NOT NULL CHECK (vote IN ('A', 'B', 'tie')),
    voter           TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS votes_run ON votes(run_id, question_id);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def flatten_metrics(metrics: dict | None) -> list[tuple[str, float | None]]:
    """``row["metrics"]`` as (dotted name, value) pairs: numbers as floats, unmeasured figures as None.
    Lists are indexed (``der.0.der``); text and booleans are skipped."""
    out: list[tuple[str, float | None]] = []

    def walk(name: str, value) -> None:
        if isinstance(value, bool) or isinstance(value, str):
            return
        if value is None:
            if name and name not in _TEXT_METRICS:
                out.append((name, None))
        elif isinstance(value, (int, float)):
            out.append((name, float(value)))  # NaN goes in as NULL: SQLite has no NaN
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{name}.{key}" if name else str(key), item)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(f"{name}.{i}", item)

    walk("", metrics or {})
    return out


def _later(a: str | None, b: str | None) -> bool:
    """Whether timestamp ``a`` is strictly later than ``b`` (False when either is missing or unreadable)."""
    try:
        return datetime.fromisoformat(a) > datetime.fromisoformat(b)
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class JsonlRows:
    """What ``read_jsonl`` found: (line number, parsed JSON) per non-blank line, and the number of a torn last
    line that was skipped (None when the file ended cleanly)."""

    rows: list[tuple[int, object]]
    torn_line: int | None = None


VOTES = ("A", "B", "tie")


@dataclass(frozen=True)
class Vote:
    """One blind judgement: which of two recipes' answers to a question on a recording was better. ``first`` and
    ``second`` are the two results' keys (recipe name, recipe hash), ``first`` the smaller; ``shown_a`` says which
    of them the voter saw as "Answer A" ("first" or "second"); ``vote`` is "A", "B" or "tie"."""

    run_id: str
    recording_id: str
    recording_path: str
    question_id: str
    first: tuple[str, str]
    second: tuple[str, str]
    shown_a: str
    vote: str
    voter: str | None = None
    created_at: str = ""

    @classmethod
    def cast(cls, run_id: str, recording_id: str, recording_path: str, question_id: str, a: tuple[str, str],
             b: tuple[str, str], vote: str, voter: str | None = None) -> Vote:
        """A vote as the voter saw it: ``a`` the key shown as "Answer A", ``b`` the one shown as "Answer B"."""
        a, b = tuple(a), tuple(b)
        first, second = sorted((a, b))
        return cls(run_id, recording_id, recording_path, question_id, first, second,
                   "first" if a == first else "second", vote, voter or None)

    @property
    def a(self) -> tuple[str, str]:
        return self.first if self.shown_a == "first" else self.second

    @property
    def b(self) -> tuple[str, str]:
        return self.second if self.shown_a == "first" else self.first

    @property
    def winner(self) -> tuple[str, str] | None:
        """The key voted better; None for a tie."""
        return {"A": self.a, "B": self.b}.get(self.vote)

    @property
    def loser(self) -> tuple[str, str] | None:
        return {"A": self.b, "B": self.a}.get(self.vote)

    @property
    def pair(self) -> tuple:
        """What the vote was about, whichever way round it was shown: (run, recording path, question, first, second)."""
        return self.run_id, self.recording_path, self.question_id, self.first, self.second

    def check(self) -> None:
        """BadInputError (one line naming the field) when the vote cannot be stored."""
        for name in ("run_id", "recording_id", "recording_path", "question_id"):
            if not isinstance(getattr(self, name), str) or (name != "recording_id" and not getattr(self, name)):
                raise BadInputError(f"vote: {name!r} is missing or not a string")
        for name in ("first", "second"):
            key = getattr(self, name)
            if (not isinstance(key, tuple) or len(key) != 2 or not all(isinstance(k, str) for k in key)
                    or not key[0]):
                raise BadInputError(f"vote: {name!r} must be a (recipe name, recipe hash) pair")
        if self.first == self.second:
            raise BadInputError("vote: the two answers come from the same recipe version")
        if self.first > self.second:
            raise BadInputError("vote: 'first' must be the smaller key (use Vote.cast)")
        if self.shown_a not in ("first", "second"):
            raise BadInputError(f"vote: shown_a must be 'first' or 'second', not {self.shown_a!r}")
        if self.vote not in VOTES:
            raise BadInputError(f"vote: the vote must be one of {', '.join(VOTES)}, not {self.vote!r}")
        if self.voter is not None and not isinstance(self.voter, str):
            raise BadInputError("vote: 'voter' must be text")


def read_jsonl(path: str | Path) -> JsonlRows:
    """The lines of a results.jsonl file, parsed. A line that is not valid JSON (or not UTF-8) raises
    BadInputError naming ``file:line`` — except the last line when the file does not end with a newline: that
    is a write cut short (a killed process, a full disk), and it is skipped and reported in ``torn_line``.
    Blank lines are ignored."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read results file ({exc.strerror or exc})") from None
    lines = data.splitlines()
    unterminated = bool(data) and not data.endswith((b"\n", b"\r"))
    rows: list[tuple[int, object]] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            rows.append((number, json.loads(raw.decode("utf-8"))))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if unterminated and number == len(lines):
                return JsonlRows(rows, number)
            if isinstance(exc, UnicodeDecodeError):
                raise BadInputError(f"{path}:{number}: not UTF-8 text") from None
            raise BadInputError(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    return JsonlRows(rows)


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


class _Row:
    """A result row, checked, with the columns the store indexes pulled out."""

    __slots__ = ("row", "json", "run_id", "recipe", "recipe_hash", "recording", "metrics")

    def __init__(self, row) -> None:
        if not isinstance(row, dict):
            raise BadInputError(f"a result row must be a JSON object, not {type(row).__name__}")
        for key in ("run_id", "recipe", "recipe_hash"):
            if not isinstance(row.get(key), str) or not row[key]:
                raise BadInputError(f"result row: {key!r} is missing or not a non-empty string")
        recording = row.get("recording")
        if not isinstance(recording, dict):
            raise BadInputError("result row: 'recording' is missing or not an object")
        if not isinstance(recording.get("path"), str):
            raise BadInputError("result row: 'recording.path' is missing or not a string")
        if _number(recording.get("duration_s")) is None:
            raise BadInputError("result row: 'recording.duration_s' is missing or not a number")
        if row.get("metrics") is not None and not isinstance(row["metrics"], dict):
            raise BadInputError("result row: 'metrics' is not an object")
        try:
            self.json = json.dumps(row, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise BadInputError(f"result row cannot be stored as JSON: {exc}") from None
        self.row = row
        self.run_id, self.recipe, self.recipe_hash = row["run_id"], row["recipe"], row["recipe_hash"]
        self.recording = recording
        self.metrics = flatten_metrics(row.get("metrics"))


class ResultStore:
    """The results store at ``path`` (created, with its parent folders, if missing). Use as a context
    manager or call ``close()``. One instance per process."""

    def __init__(self, path: str | Path = DEFAULT_PATH, *, timeout_s: float = BUSY_TIMEOUT_S):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(str(path), timeout=timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the results store ({exc}); {STORE_HELP}") from None
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._wal(timeout_s)
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._create()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            if isinstance(exc, sqlite3.OperationalError):  # locked, unreadable folder, disk full, read-only
                raise StoreError(f"{self.path}: cannot open the results store ({exc}); {STORE_HELP}") from None
            raise BadInputError(f"{self.path}: not a workbench results store ({exc})") from None
        except BaseException:
            self._conn.close()
            raise

    # --- setup ------------------------------------------------------------------------------------

    def _wal(self, timeout_s: float) -> None:
        # switching to WAL needs a moment alone with a fresh file; other openers may hold it briefly
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL").fetchone()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _create(self) -> None:
        with self._tx():
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > STORE_SCHEMA_VERSION:
                raise BadInputError(f"{self.path}: results store schema {version} is newer than this workbench "
                                    f"reads ({STORE_SCHEMA_VERSION}); upgrade the workbench")
            if version < STORE_SCHEMA_VERSION:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                # the tables a version added (votes, judgements) came with CREATE ... IF NOT EXISTS above
                if version == 1:  # written before runs had a source
                    self._conn.execute("ALTER TABLE runs ADD COLUMN source TEXT")
                self._conn.execute(f"PRAGMA user_version = {STORE_SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; the write lock is taken up front so two writers never deadlock.
        On any failure (the body's, or a COMMIT that failed) it is rolled back if one is still open — SQLite may
        already have rolled it back itself (a full disk, an I/O error), and a second ROLLBACK would hide why."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                try:
                    self._conn.execute("ROLLBACK")
                except sqlite3.Error:  # the original error says more
                    log.warning("%s: rollback failed", self.path, exc_info=True)
            raise

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- writing ----------------------------------------------------------------------------------

    def add_run(self, run_id: str, command: str | Sequence[str] | None = None, hardware: dict | None = None,
                tags: Iterable[str] = (), source: str | None = None) -> None:
        """Record a run (or update the command, hardware and tags of one already recorded; its
        created_at stays, and so does its source when none is given). ``command`` may be an argv list; it is
        stored shell-quoted. ``source``: what a batch ran over (its resolved path), for ``batch --resume``."""
        if not isinstance(run_id, str) or not run_id:
            raise BadInputError("run id must be a non-empty string")
        if command is not None and not isinstance(command, str):
            command = shlex.join(str(c) for c in command)
        tags = list(dict.fromkeys(str(t) for t in tags))
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (run_id, created_at, command, hardware, tags, source) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET command = excluded.command, hardware = excluded.hardware, "
                "tags = excluded.tags, source = COALESCE(excluded.source, runs.source)",
                (run_id, _now(), command, json.dumps(hardware or {}, ensure_ascii=False), json.dumps(tags), source),
            )

    def add(self, row: dict) -> int:
        """Store one results.jsonl row; returns its id. The store keeps the latest result per (run_id, recording,
        recipe_hash): adding the identical row again changes nothing (idempotent), while a different row for the
        same key (a retried recipe) replaces the stored one and its metrics, keeping its id — unless the stored
        row is newer (a later ``created_at``), which stays. A run not yet recorded with ``add_run`` is recorded
        from the row (its created_at and hardware, no command)."""
        checked = _Row(row)
        with self._tx():
            return self._add(checked)[0]

    def add_many(self, rows: Iterable[dict]) -> list[int]:
        """``add`` for several rows in one transaction: all are stored, or (on a bad row) none."""
        checked = [_Row(r) for r in rows]
        with self._tx():
            return [self._add(c)[0] for c in checked]

    def import_jsonl(self, path: str | Path, *, parsed: JsonlRows | None = None) -> int:
        """Add every row of a results.jsonl file in one transaction (as ``add``: the latest result per key);
        returns how many were new or replaced a stored row. A line that is not a valid result row raises
        BadInputError naming ``file:line``, and nothing from the file is added — except a torn last line (a
        write cut short: no newline at the end and not valid JSON), which is skipped with a warning. To learn
        about it, read the file with ``read_jsonl`` first and pass what it returned as ``parsed``."""
        if parsed is None:
            parsed = read_jsonl(path)
            if parsed.torn_line:
                log.warning("%s:%d: skipped a torn last line (a write cut short)", path, parsed.torn_line)
        checked = []
        for number, row in parsed.rows:
            try:
                checked.append(_Row(row))
            except BadInputError as exc:
                raise BadInputError(f"{path}:{number}: {exc}") from None
        with self._tx():
            return sum(self._add(c)[1] for c in checked)

    def add_vote(self, vote: Vote) -> int:
        """Store one blind judgement (its created_at is now when not given); returns its id. The run must be in
        the store. Every vote is kept: the same pair voted twice counts twice."""
        vote.check()
        try:
            with self._tx() as db:
                cur = db.execute(
                    "INSERT INTO votes (run_id, recording_id, recording_path, question_id, first_recipe, first_hash, "
                    "second_recipe, second_hash, shown_a, vote, voter, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (vote.run_id, vote.recording_id, vote.recording_path, vote.question_id, *vote.first,
                     *vote.second, vote.shown_a, vote.vote, vote.voter, vote.created_at or _now()))
        except sqlite3.IntegrityError:
            raise BadInputError(f"vote: run {vote.run_id!r} is not in the store") from None
        return cur.lastrowid

    def _add(self, r: _Row) -> tuple[int, bool]:
        """(result id, whether anything changed)."""
        db = self._conn
        row, rec = r.row, r.recording
        db.execute(
            "INSERT INTO runs (run_id, created_at, command, hardware, tags) VALUES (?, ?, NULL, ?, '[]') "
            "ON CONFLICT (run_id) DO NOTHING",
            (r.run_id, row.get("created_at") or _now(), json.dumps(row.get("hardware") or {}, ensure_ascii=False)),
        )
        duration = float(rec["duration_s"])
        db.execute(
            "INSERT INTO recordings (recording_id, path, duration_s, sample_rate, channels, codec) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (path, duration_s) DO NOTHING",
            (str(rec.get("id") or ""), rec["path"], duration, rec.get("sample_rate"), rec.get("channels"),
             rec.get("codec")),
        )
        (recording,) = db.execute("SELECT id FROM recordings WHERE path = ? AND duration_s = ?",
                                  (rec["path"], duration)).fetchone()
        columns = (r.recipe, row.get("pipeline"), row.get("error"), row.get("error_stage"), _number(row.get("rtfx")),
                   _number(row.get("cost_usd_per_audio_hour")), _number(row.get("peak_rss_mb")),
                   row.get("created_at"), r.json)
        existing = db.execute("SELECT id, row, created_at FROM results WHERE run_id = ? AND recording = ? "
                              "AND recipe_hash = ?", (r.run_id, recording, r.recipe_hash)).fetchone()
        if existing:
            result_id, stored, stored_at = existing
            if stored == r.json or _later(stored_at, row.get("created_at")):
                return result_id, False
            db.execute(
                "UPDATE results SET recipe = ?, pipeline = ?, error = ?, error_stage = ?, rtfx = ?, "
                "cost_usd_per_audio_hour = ?, peak_rss_mb = ?, created_at = ?, row = ? WHERE id = ?",
                (*columns, result_id),
            )
            db.execute("DELETE FROM metrics WHERE result = ?", (result_id,))
        else:
            cur = db.execute(
                "INSERT INTO results (run_id, recording, recipe_hash, recipe, pipeline, error, error_stage, rtfx, "
                "cost_usd_per_audio_hour, peak_rss_mb, created_at, row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (r.run_id, recording, r.recipe_hash, *columns),
            )
            result_id = cur.lastrowid
        db.executemany("INSERT INTO metrics (result, name, value) VALUES (?, ?, ?)",
                       [(result_id, name, value) for name, value in r.metrics])
        return result_id, True

    # --- reading ----------------------------------------------------------------------------------

    def done(self, run_id: str) -> set[tuple[str, str]]:
        """(recording path, recipe_hash) pairs of ``run_id`` that a resume should skip: every stored row,
        failed ones included, except those of an error kind a resume retries — the recipe did not run (not
        available, models not loaded, recording not decoded) or a request failed transiently — which a resume
        tries again."""
        from workbench.result import DID_NOT_RUN, error_kind_of

        retry = DID_NOT_RUN | {RETRY_TRANSIENT}
        rows = self._conn.execute(
            "SELECT rec.path, r.recipe_hash, r.error, r.error_stage, json_extract(r.row, '$.error_kind') "
            "FROM results r JOIN recordings rec ON rec.id = r.recording WHERE r.run_id = ?",
            (run_id,),
        )
        return {(path, recipe_hash) for path, recipe_hash, error, stage, kind in rows
                if error_kind_of({"error": error, "error_stage": stage, "error_kind": kind}) not in retry}

    def rows(self, run_id: str | None = None, recipe: str | None = None, tag: str | None = None) -> list[dict]:
        """The stored rows (as ``to_json()`` wrote them), in the order they were added, optionally only
        those of one run, one recipe, and/or runs carrying one tag."""
        where, params = [], []
        if run_id is not None:
            where.append("r.run_id = ?")
            params.append(run_id)
        if recipe is not None:
            where.append("r.recipe = ?")
            params.append(recipe)
        sql = "SELECT r.row, u.tags FROM results r JOIN runs u ON u.run_id = r.run_id" + (
            " WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.id"
        out = []
        for text, run_tags in self._conn.execute(sql, params):
            row = json.loads(text)
            # a tag matches the run's tags or the row's own (a manifest tags each recording)
            if tag is None or tag in json.loads(run_tags or "[]") or tag in (row.get("tags") or []):
                out.append(row)
        return out

    def runs(self) -> list[dict]:
        """Every run, in the order recorded: run_id, created_at, command, hardware, tags, source (None but for
        batches), and counts of results and failed results."""
        rows = self._conn.execute(
            "SELECT u.run_id, u.created_at, u.command, u.hardware, u.tags, u.source, COUNT(r.id), "
            "COUNT(r.error) FROM runs u LEFT JOIN results r ON r.run_id = u.run_id "
            "GROUP BY u.run_id ORDER BY u.rowid"
        )
        return [
            {"run_id": run_id, "created_at": created_at, "command": command, "hardware": json.loads(hardware),
             "tags": json.loads(tags), "source": source, "results": results, "failed": failed}
            for run_id, created_at, command, hardware, tags, source, results, failed in rows
        ]

    # --- judgements (workbench.tasks.judge's cache) -------------------------------------------------

    def get_judgement(self, key: str) -> dict | None:
        """The judgement stored under ``key`` (score, correct, parsed, note, by, version, kind), or None."""
        found = self._conn.execute("SELECT score, correct, parsed, note, judge, version, kind FROM judgements "
                                   "WHERE key = ?", (key,)).fetchone()
        if found is None:
            return None
        score, correct, parsed, note, judge, version, kind = found
        return {"score": score, "correct": None if correct is None else bool(correct),
                "parsed": json.loads(parsed) if parsed is not None else None, "note": note, "by": judge,
                "version": version, "kind": kind}

    def put_judgement(self, key: str, judgement: dict) -> None:
        """Store a judgement under ``key`` (replacing one stored there): ``by`` (the judge) is required; score,
        correct, parsed, note, version, kind as :meth:`get_judgement` returns them."""
        if not isinstance(judgement.get("by"), str) or not judgement["by"]:
            raise BadInputError("a judgement needs 'by' (the judge's identity)")
        correct = judgement.get("correct")
        parsed = judgement.get("parsed")
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO judgements (key, judge, version, kind, score, correct, parsed, note, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, judgement["by"], judgement.get("version"), judgement.get("kind"), _number(judgement.get("score")),
                 None if correct is None else int(bool(correct)),
                 None if parsed is None else json.dumps(parsed, ensure_ascii=False), judgement.get("note"), _now()))

    def metric_table(self, run_id: str) -> list[tuple[str, str, float | None]]:
        """(recipe, metric name, value) for every result of ``run_id``, results in the order added and
        each result's metrics in row order; value None where the figure was not measured."""
        return list(self._conn.execute(
            "SELECT r.recipe, m.name, m.value FROM metrics m JOIN results r ON r.id = m.result "
            "WHERE r.run_id = ? ORDER BY r.id, m.rowid",
            (run_id,),
        ))

    def votes(self, run_id: str | None = None) -> list[Vote]:
        """The stored votes in the order cast, optionally only those of one run."""
        sql = ("SELECT run_id, recording_id, recording_path, question_id, first_recipe, first_hash, second_recipe, "
               "second_hash, shown_a, vote, voter, created_at FROM votes")
        rows = self._conn.execute(sql + (" WHERE run_id = ?" if run_id is not None else "") + " ORDER BY id",
                                  (run_id,) if run_id is not None else ())
        return [Vote(run, rec_id, rec_path, question, (fr, fh), (sr, sh), shown, vote, voter, created)
                for run, rec_id, rec_path, question, fr, fh, sr, sh, shown, vote, voter, created in rows]
