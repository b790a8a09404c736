"""The SQLite results store: schema, round trip, idempotence, metrics, JSONL import, resume, concurrency."""

from __future__ import annotations

import copy
import json
import multiprocessing
import sqlite3
import time

import pytest

from workbench.cost import HardwarePrice
from workbench.datamodel import Recording, Segment, StageTiming, Transcript, Word
from workbench.errors import BadInputError
from workbench.metrics import ErrorCounts, char_errors, word_errors
from workbench.metrics.diarization import CpWer, DerCounts
from workbench.result import RunResult, Scores
from workbench.store import STORE_SCHEMA_VERSION, ResultStore, Vote, flatten_metrics

PRICE = HardwarePrice("test-box", 0.36, "a test", "2026-01-01", "a box")
REFERENCE = "the cat sat on the mat"


def make_result(recipe="cascade", path="a.wav", *, run_id="run-1", text="the cat sat on a mat", error=None,
                error_stage=None, duration_s=10.0, scored=True) -> RunResult:
    transcript = None if error else Transcript(
        (Segment(0.0, 3.0, text, "S1", (Word(0.0, 0.4, "the", 0.9),)),), "en")
    hyp = "" if error else text
    scores = Scores(
        word_errors(REFERENCE, hyp), char_errors(REFERENCE, hyp), "whisper-english", "ref.stm", "stm",
        asr_words=word_errors(REFERENCE, hyp),
        der=(DerCounts(0.0, False, 10.0, 0.5, 0.5, 1.0), DerCounts(0.5, False, 8.0, 0.0, 0.2, 0.2)),
        cpwer=CpWer(ErrorCounts(1, 0, 0, 5, 6), 0, 1),
        speaker_reference="ref.stm",
    ) if scored else None
    return RunResult(
        run_id=run_id, recipe=recipe, recipe_hash=f"hash-{recipe}", pipeline="cascade",
        recording=Recording(path.rsplit("/", 1)[-1].split(".")[0], path, duration_s, 16000, 1, "pcm_s16le"),
        transcript=transcript,
        timings=(StageTiming("load", 1.0, 1.0), StageTiming("asr", 2.0, 1.5)),
        scores=scores, error=error, error_stage=error_stage or ("asr" if error else None), peak_rss_mb=512.3,
        price=PRICE, versions={"jiwer": "4.0.0"},
        hardware={"cpu": "test cpu", "cpu_count": 2, "memory_gb": 4.0, "gpu": []},
        created_at="2026-11-22T02:54:53+00:00",
    )


def make_row(*args, **kwargs) -> dict:
    """A results.jsonl row as the runner writes it (and as it reads back from the file)."""
    return json.loads(json.dumps(make_result(*args, **kwargs).to_json(), ensure_ascii=False))


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "deep" / "er" / "workbench.sqlite") as s:
        yield s


# --- schema -------------------------------------------------------------------------------------


def test_schema_created_with_version_wal_and_foreign_keys(tmp_path):
    path = tmp_path / "reports" / "workbench.sqlite"
    with ResultStore(path) as s:
        assert s.schema_version == STORE_SCHEMA_VERSION
    assert path.exists()
    db = sqlite3.connect(path)
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "recordings", "results", "metrics"} <= tables
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == STORE_SCHEMA_VERSION
    columns = {name for (_, name, *_) in db.execute("PRAGMA table_info(results)")}
    assert {"run_id", "recording", "recipe", "recipe_hash", "pipeline", "error", "error_stage", "rtfx",
            "cost_usd_per_audio_hour", "peak_rss_mb", "created_at", "row"} <= columns
    db.close()
    # reopening an existing store keeps what is there
    with ResultStore(path) as s:
        s.add(make_row())
    with ResultStore(path) as s:
        assert len(s.rows()) == 1


def test_foreign_keys_enforced(store):
    with pytest.raises(sqlite3.IntegrityError):
        store._conn.execute("INSERT INTO metrics (result, name, value) VALUES (999, 'wer', 0.1)")


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "w.sqlite"
    ResultStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {STORE_SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(BadInputError, match="newer"):
        ResultStore(path)


def test_not_a_database_is_bad_input(tmp_path):
    path = tmp_path / "w.sqlite"
    path.write_bytes(b"this is not sqlite at all, just some text that is long enough" * 20)
    with pytest.raises(BadInputError, match="w.sqlite"):
        ResultStore(path)


# --- add / rows -----------------------------------------------------------------------------------


def test_add_rows_round_trip_equals_input(store):
    rows = [make_row("cascade", "a.wav"), make_row("whisper-raw", "a.wav", error="boom"),
            make_row("cascade", "b.wav", text='<script>alert("x")</script> ; DROP TABLE results; -- ü')]
    rows[0]["components"] = {"vad": {"max_speech_duration_s": float("inf")}}  # what silero's options hold
    ids = [store.add(r) for r in rows]
    assert len(set(ids)) == 3
    assert store.rows() == rows
    # stored as the runner wrote it: model text unescaped
    assert store.rows()[2]["transcript"]["text"].startswith('<script>alert("x")')


def test_add_is_idempotent(store):
    row = make_row()
    first = store.add(row)
    changed = copy.deepcopy(row)
    changed["metrics"]["wer"] = 0.99
    changed["transcript"]["text"] = "different"
    assert store.add(changed) == first
    assert store.add(row) == first
    assert store.rows() == [row]
    assert ("cascade", "wer", row["metrics"]["wer"]) in store.metric_table("run-1")
    # the same recipe on another recording, or in another run, is a new result
    assert store.add(make_row(path="b.wav")) != first
    assert store.add(make_row(run_id="run-2")) != first
    assert len(store.rows()) == 3


def test_same_path_other_duration_is_another_recording(store):
    store.add(make_row(duration_s=10.0))
    store.add(make_row(duration_s=12.5))
    count = store._conn.execute("SELECT COUNT(*) FROM recordings").fetchone()[0]
    assert count == 2


@pytest.mark.parametrize("bad, problem", [
    ({"recipe": "x", "recipe_hash": "h", "recording": {"path": "a", "duration_s": 1}}, "run_id"),
    ({"run_id": "r", "recipe": "x", "recording": {"path": "a", "duration_s": 1}}, "recipe_hash"),
    ({"run_id": "r", "recipe": "x", "recipe_hash": "h"}, "recording"),
    ({"run_id": "r", "recipe": "x", "recipe_hash": "h", "recording": {"path": "a"}}, "duration_s"),
    ([1, 2], "object"),
])
def test_bad_rows_are_bad_input(store, bad, problem):
    with pytest.raises(BadInputError, match=problem):
        store.add(bad)
    assert store.rows() == []


def test_add_creates_run_from_row_and_add_run_updates_it(store):
    store.add(make_row())
    [run] = store.runs()
    assert run["run_id"] == "run-1" and run["command"] is None and run["tags"] == []
    assert run["hardware"]["cpu"] == "test cpu"
    assert run["created_at"] == "2026-11-22T02:54:53+00:00"
    store.add_run("run-1", ["workbench", "compare", "a b.wav"], {"cpu": "x"}, tags=["nightly", "cpu", "nightly"])
    [run] = store.runs()
    assert run["command"] == "workbench compare 'a b.wav'"
    assert run["tags"] == ["nightly", "cpu"]
    assert run["hardware"] == {"cpu": "x"}
    assert run["created_at"] == "2026-11-22T02:54:53+00:00"
    assert run["results"] == 1 and run["failed"] == 0


def test_runs_in_order_with_counts(store):
    store.add_run("b-run", "workbench compare x", {}, tags=["t"])
    store.add_run("a-run", "workbench compare y", {})
    store.add(make_row(run_id="a-run"))
    store.add(make_row("whisper-raw", run_id="a-run", error="boom"))
    assert [(r["run_id"], r["results"], r["failed"]) for r in store.runs()] == [("b-run", 0, 0), ("a-run", 2, 1)]


# --- metrics --------------------------------------------------------------------------------------


def test_metrics_flattened_with_dotted_names_and_nulls_kept(store):
    row = make_row()
    row["metrics"]["hallucination"] = {"nonspeech_words": 0, "nonspeech_s": None, "words_per_hour_nonspeech": None,
                                       "nonspeech_examples": ["thanks for watching"], "stock_phrases": [],
                                       "repeat_example": None}
    store.add(row)
    table = {name: value for recipe, name, value in store.metric_table("run-1")}
    m = row["metrics"]
    assert table["wer"] == pytest.approx(m["wer"])
    assert table["asr.wer"] == pytest.approx(m["asr"]["wer"])
    assert table["der.0.der"] == pytest.approx(0.2)
    assert table["der.1.der"] == pytest.approx(0.05)
    assert table["der.1.collar_s"] == 0.5
    assert table["cpwer.cpwer"] == pytest.approx(1 / 6)
    assert table["cpwer.falarm_speakers"] == 1.0
    assert table["hallucination.nonspeech_words"] == 0.0
    # unmeasured: NULL, not 0, and not missing
    assert "hallucination.words_per_hour_nonspeech" in table and table["hallucination.words_per_hour_nonspeech"] is None
    assert "formatting_drift" in table and table["formatting_drift"] is None
    raw = store._conn.execute("SELECT value IS NULL, typeof(value) FROM metrics WHERE name = ?",
                              ("hallucination.nonspeech_s",)).fetchone()
    assert raw == (1, "null")
    # text and booleans are not metrics
    for name in ("normalizer", "reference", "der.0.collar", "der.0.skip_overlap", "hallucination.repeat_example",
                 "hallucination.nonspeech_examples.0"):
        assert name not in table
    assert {recipe for recipe, _, _ in store.metric_table("run-1")} == {"cascade"}


def test_failed_row_metrics_are_null_not_zero(store):
    store.add(make_row(error="boom", scored=False))
    table = dict((name, value) for _, name, value in store.metric_table("run-1"))
    assert table["wer"] is None and table["cer"] is None and table["der"] is None
    assert store._conn.execute("SELECT rtfx, cost_usd_per_audio_hour FROM results").fetchone() == (None, None)


def test_flatten_metrics_unit():
    flat = flatten_metrics({"a": 1, "b": None, "c": {"d": [1.5, {"e": True}]}, "normalizer": None, "s": "x",
                            "n": float("nan")})
    assert flat[:3] == [("a", 1.0), ("b", None), ("c.d.0", 1.5)]
    assert [name for name, _ in flat] == ["a", "b", "c.d.0", "n"]
    assert flatten_metrics(None) == []


# --- import_jsonl ---------------------------------------------------------------------------------


def write_jsonl(path, rows, extra_lines=()):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return path


def test_import_jsonl_of_runner_output(store, tmp_path):
    from workbench.runner import ResultWriter

    writer = ResultWriter(tmp_path / "run-1")
    results = [make_result("cascade", "a.wav"), make_result("cascade", "b.wav"),
               make_result("whisper-raw", "a.wav", error="unavailable: no key", error_stage="check")]
    for r in results:
        writer.write(r)
    assert store.import_jsonl(writer.path) == 3
    assert store.rows() == [json.loads(line) for line in writer.path.read_text(encoding="utf-8").splitlines()]
    # importing again adds nothing
    assert store.import_jsonl(writer.path) == 0
    assert len(store.rows()) == 3


def test_malformed_jsonl_names_file_and_line_and_adds_nothing(store, tmp_path):
    path = write_jsonl(tmp_path / "results.jsonl", [make_row("a"), make_row("b")], ['{"run_id": "run-1", "reci'])
    with pytest.raises(BadInputError) as info:
        store.import_jsonl(path)
    assert f"{path}:3" in str(info.value)
    assert store.rows() == [] and store.runs() == []


def test_jsonl_row_missing_keys_names_line(store, tmp_path):
    path = write_jsonl(tmp_path / "results.jsonl", [make_row("a")], ["", '{"run_id": "run-1"}'])
    with pytest.raises(BadInputError) as info:
        store.import_jsonl(path)
    assert f"{path}:3" in str(info.value) and "recipe" in str(info.value)
    assert store.rows() == []


def test_jsonl_not_utf8_or_missing(store, tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_bytes(json.dumps(make_row()).encode() + b"\n\xff\xfe\n")
    with pytest.raises(BadInputError, match=":2: not UTF-8"):
        store.import_jsonl(path)
    with pytest.raises(BadInputError, match="nothing-here.jsonl"):
        store.import_jsonl(tmp_path / "nothing-here.jsonl")
    assert store.rows() == []


# --- done (resume) --------------------------------------------------------------------------------


def test_done_counts_what_ran_but_not_what_did_not_run_or_failed_transiently(store):
    """Resume retries recipes that never ran (not available, models not loaded, recording not decoded) and
    transient failures (429, 5xx, timeouts); a recipe that ran and failed is a result (it is done)."""
    def failed(recipe, path, error, stage, kind=None):
        row = make_row(recipe, path, error=error, error_stage=stage)
        if kind is None:
            del row["error_kind"]  # a row written before error_kind existed: derived from the stage
        else:
            row["error_kind"] = kind
        return row

    store.add(make_row("cascade", "a.wav"))
    store.add(failed("cascade", "b.wav", "RuntimeError: out of memory", "asr", "failed"))
    store.add(failed("cascade", "c.wav", "load failed: x", "load", "load-failed"))
    store.add(failed("api", "a.wav", "unavailable: no key", "check", "unavailable"))
    store.add(failed("api", "b.wav", "LLMRequestError: 429 too many requests", "model", "transient"))
    store.add(failed("api", "c.wav", "AudioError: c.wav: not audio", "decode", "bad-input"))
    store.add(failed("old", "a.wav", "unavailable: no key", "check"))
    store.add(failed("old", "b.wav", "load failed: x", "load"))
    store.add(failed("old", "c.wav", "ValueError: boom", "asr"))
    store.add(make_row("cascade", "z.wav", run_id="other-run"))
    assert store.done("run-1") == {("a.wav", "hash-cascade"), ("b.wav", "hash-cascade"), ("c.wav", "hash-old")}
    assert store.done("no-such-run") == set()


def test_a_newer_row_for_the_same_key_replaces_the_old_one_and_its_metrics(store, tmp_path):
    """A retried recipe's new result replaces its earlier row (metrics too), keeping the id; the identical row
    again changes nothing; an older row never replaces a newer one."""
    old = make_row("cascade", "a.wav", error="unavailable: no key", error_stage="check")
    new = make_row("cascade", "a.wav")
    new["created_at"] = "2026-11-23T08:00:00+00:00"  # the resume, a day later
    first = store.add(old)
    assert store.add(new) == first
    assert store.rows() == [new]
    assert store._conn.execute("SELECT error, error_stage, created_at FROM results").fetchall() == [
        (None, None, new["created_at"])]
    metrics = [(name, value) for _, name, value in store.metric_table("run-1")]
    assert ("wer", pytest.approx(new["metrics"]["wer"])) in metrics
    assert len(metrics) == len(flatten_metrics(new["metrics"]))  # the old row's metrics are gone
    assert store.add(new) == first and store.add(old) == first  # idempotent; the older row does not come back
    assert store.rows() == [new]
    assert len(store.metric_table("run-1")) == len(metrics)
    # a results.jsonl holding both (appended in order) imports as the newer one
    fresh = ResultStore(tmp_path / "fresh.sqlite")
    assert fresh.import_jsonl(write_jsonl(tmp_path / "results.jsonl", [old, new])) == 2
    assert fresh.rows() == [new]
    assert fresh.import_jsonl(tmp_path / "results.jsonl") == 0
    fresh.close()


def test_a_rollback_that_sqlite_already_did_does_not_hide_the_error(store):
    """SQLite rolls a transaction back by itself on some errors (a full disk, I/O); a second ROLLBACK must not
    replace the real error with "cannot rollback - no transaction is active"."""
    with pytest.raises(ValueError, match="the real error"):
        with store._tx() as db:
            db.execute("ROLLBACK")  # as SQLite does on SQLITE_FULL
            raise ValueError("the real error")
    assert not store._conn.in_transaction
    store.add(make_row())  # the connection is still usable
    assert len(store.rows()) == 1


def test_a_failed_commit_leaves_no_transaction_open(store, tmp_path):
    """A COMMIT that fails (here: a deferred foreign key still broken) is rolled back, and the next write works."""
    with pytest.raises(sqlite3.IntegrityError):
        with store._tx() as db:
            db.execute("PRAGMA defer_foreign_keys = ON")
            db.execute("INSERT INTO metrics (result, name, value) VALUES (999, 'wer', 0.1)")
    assert not store._conn.in_transaction
    store.add(make_row())
    assert len(store.rows()) == 1


def test_a_locked_store_is_one_clear_error_on_open(tmp_path):
    from workbench.errors import StoreError

    path = tmp_path / "w.sqlite"
    ResultStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="w.sqlite.*locked.*close any other program"):
            ResultStore(path, timeout_s=0.1)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# --- run sources (batch --resume) -----------------------------------------------------------------


def test_add_run_keeps_the_source(store):
    store.add_run("b", "workbench batch data/ab", {}, source="/data/ab")
    store.add_run("b", "workbench batch data/ab", {"cpu": "x"})  # updated without a source: it stays
    store.add(make_row(run_id="c"))
    assert [(r["run_id"], r["source"]) for r in store.runs()] == [("b", "/data/ab"), ("c", None)]


def test_a_version_1_store_is_upgraded_in_place(tmp_path):
    path = tmp_path / "v1.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE runs (run_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, command TEXT,
                           hardware TEXT NOT NULL DEFAULT '{}', tags TEXT NOT NULL DEFAULT '[]');
        INSERT INTO runs VALUES ('old', '2026-01-01T00:00:00+00:00', 'workbench batch data', '{}', '[]');
        PRAGMA user_version = 1;
    """)
    db.close()
    with ResultStore(path) as s:
        assert s.schema_version == STORE_SCHEMA_VERSION
        assert [(r["run_id"], r["command"], r["source"]) for r in s.runs()] == [("old", "workbench batch data", None)]
        s.add_run("new", "workbench batch x", {}, source="/x")
        assert s.runs()[1]["source"] == "/x"


def test_a_version_2_store_is_upgraded_in_place_and_takes_votes(tmp_path):
    path = tmp_path / "v2.sqlite"
    with ResultStore(path) as s:
        s.add(make_row())
    db = sqlite3.connect(path)  # as a workbench before the votes table left it
    db.executescript("DROP INDEX votes_run; DROP TABLE votes; PRAGMA user_version = 2;")
    db.close()
    with ResultStore(path) as s:
        assert s.schema_version == STORE_SCHEMA_VERSION == 4
        assert s.rows() == [make_row()] and s.votes() == []
        s.add_vote(Vote.cast("run-1", "a", "a.wav", "dog", ("whisper", "h1"), ("cascade", "h2"), "A"))
        [vote] = s.votes()
        assert vote.winner == ("whisper", "h1") and vote.loser == ("cascade", "h2")


# --- votes --------------------------------------------------------------------------------------


def test_votes_round_trip_with_the_order_shown(store):
    store.add(make_row())
    store.add(make_row(run_id="run-2"))
    cast = [Vote.cast("run-1", "a", "a.wav", "dog", ("whisper", "h1"), ("cascade", "h2"), "A", voter="ann"),
            Vote.cast("run-1", "a", "a.wav", "dog", ("cascade", "h2"), ("whisper", "h1"), "B"),
            Vote.cast("run-2", "a", "a.wav", "count", ("cascade", "h2"), ("whisper", "h1"), "tie", voter="")]
    ids = [store.add_vote(v) for v in cast]
    assert ids == sorted(ids)
    back = store.votes()
    assert [(v.first, v.second, v.shown_a, v.vote, v.voter) for v in back] == [
        (("cascade", "h2"), ("whisper", "h1"), "second", "A", "ann"),
        (("cascade", "h2"), ("whisper", "h1"), "first", "B", None),
        (("cascade", "h2"), ("whisper", "h1"), "first", "tie", None)]
    assert [v.winner for v in back] == [("whisper", "h1"), ("whisper", "h1"), None]
    assert [v.a for v in back] == [("whisper", "h1"), ("cascade", "h2"), ("cascade", "h2")]
    assert all(v.created_at for v in back) and back[0].pair == back[1].pair != back[2].pair
    assert [v.question_id for v in store.votes("run-2")] == ["count"]
    assert [(v.run_id, v.recording_id, v.recording_path) for v in store.votes("run-1")] == [("run-1", "a", "a.wav")] * 2


@pytest.mark.parametrize("vote, problem", [
    (Vote.cast("run-1", "a", "a.wav", "dog", ("x", "1"), ("y", "2"), "C"), "the vote must be one of A, B, tie"),
    (Vote.cast("run-1", "a", "a.wav", "dog", ("x", "1"), ("x", "1"), "A"), "the same recipe version"),
    (Vote.cast("run-1", "a", "a.wav", "", ("x", "1"), ("y", "2"), "A"), "'question_id'"),
    (Vote.cast("nope", "a", "a.wav", "dog", ("x", "1"), ("y", "2"), "A"), "run 'nope' is not in the store"),
])
def test_a_bad_vote_is_one_clear_error_and_nothing_is_stored(store, vote, problem):
    store.add(make_row())
    with pytest.raises(BadInputError, match=problem):
        store.add_vote(vote)
    assert store.votes() == []


# --- torn results.jsonl ---------------------------------------------------------------------------


def test_a_torn_last_line_is_skipped_and_reported(store, tmp_path, caplog):
    from workbench.store import read_jsonl

    path = tmp_path / "results.jsonl"
    write_jsonl(path, [make_row("a"), make_row("b")])
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(make_row("c"))[:40])  # a kill in the middle of an append
    assert read_jsonl(path).torn_line == 3
    with caplog.at_level("WARNING", logger="workbench.store"):
        assert store.import_jsonl(path) == 2
    assert f"{path}:3" in caplog.text and "torn" in caplog.text
    assert [r["recipe"] for r in store.rows()] == ["a", "b"]
    # a last line that is complete JSON but lost its newline is a row like any other
    path.write_text(json.dumps(make_row("d")), encoding="utf-8")
    assert read_jsonl(path).torn_line is None and store.import_jsonl(path) == 1


def test_a_bad_line_before_the_last_is_still_an_error(store, tmp_path):
    path = write_jsonl(tmp_path / "results.jsonl", [make_row("a")], ['{"run_id": "run-1", "reci'])
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(make_row("b"))[:40])  # torn at the end as well: the middle one is still wrong
    with pytest.raises(BadInputError, match=f"{path.name}:2: not valid JSON"):
        store.import_jsonl(path)
    assert store.rows() == []


# --- filters --------------------------------------------------------------------------------------


def test_rows_filter_by_run_recipe_and_tag(store):
    store.add_run("r1", "c1", {}, tags=["nightly", "gpu"])
    store.add_run("r2", "c2", {}, tags=["adhoc"])
    a = make_row("cascade", "a.wav", run_id="r1")
    b = make_row("whisper-raw", "a.wav", run_id="r1")
    c = make_row("cascade", "a.wav", run_id="r2")
    d = make_row("cascade", "b.wav", run_id="r3")  # a run with no tags
    for r in (a, b, c, d):
        store.add(r)
    assert store.rows(recipe="cascade") == [a, c, d]
    assert store.rows(run_id="r1") == [a, b]
    assert store.rows(tag="nightly") == [a, b]
    assert store.rows(tag="adhoc", recipe="cascade") == [c]
    assert store.rows(tag="nightly", recipe="cascade", run_id="r1") == [a]
    assert store.rows(tag="nope") == []
    assert store.rows(recipe="x' OR '1'='1") == []
    assert store.rows(tag="%") == []


# --- concurrency ----------------------------------------------------------------------------------

SHARED = 5


def _worker(path: str, worker: int, start, errors) -> None:
    try:
        base = make_row()
        start.wait(timeout=30)
        with ResultStore(path) as store:  # every worker opens (and may create) the file itself
            for k in range(50):
                row = copy.deepcopy(base)
                row["recipe"], row["recipe_hash"] = f"w{worker}-r{k}", f"h{worker}-{k}"
                store.add(row)
                if k < SHARED:  # every worker also adds the same few rows
                    shared = copy.deepcopy(base)
                    shared["recipe"], shared["recipe_hash"] = f"shared-{k}", f"shared-{k}"
                    store.add(shared)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        errors.put(f"worker {worker}: {type(exc).__name__}: {exc}")
        raise


def test_four_processes_add_at_once(tmp_path):
    path = str(tmp_path / "concurrent" / "workbench.sqlite")
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    start, errors = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(path, i, start, errors)) for i in range(4)]
    began = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert not problems, problems
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with ResultStore(path) as store:
        rows = store.rows()
        keys = [(r["run_id"], r["recording"]["path"], r["recipe_hash"]) for r in rows]
        assert len(rows) == 4 * 50 + SHARED
        assert len(set(keys)) == len(keys)
        assert sum(r["recipe"].startswith("shared-") for r in rows) == SHARED
        assert store._conn.execute("SELECT COUNT(*) FROM recordings").fetchone()[0] == 1
        assert len(store.runs()) == 1
    assert time.perf_counter() - began < 30


@pytest.mark.parametrize("lacking", ["votes", "judgements"])
def test_a_version_3_store_with_one_of_the_two_new_tables_gains_the_other(tmp_path, lacking):
    """Two branches each called their new table (votes, judgements) schema 3: a file of either is upgraded to 4."""
    path = tmp_path / "v3.sqlite"
    with ResultStore(path) as s:
        s.add(make_row())
    db = sqlite3.connect(path)
    db.executescript(f"DROP TABLE {lacking}; PRAGMA user_version = 3;")
    db.close()
    with ResultStore(path) as s:
        assert s.schema_version == 4 and s.rows() == [make_row()]
        assert s.votes() == [] and s.get_judgement("k") is None
