"""Batch runs: inputs from folders and manifests, results in the store as they finish, and --resume."""

from __future__ import annotations

import json
import os
import sqlite3
import weakref
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agreement import assert_runs_agree
from conftest import PYANNOTE_WAV, write_wav
from workbench.audio import load_audio
from workbench.batch import StoreWriter, discover, run_batch
from workbench.cli import app
from workbench.errors import BadInputError
from workbench.recipes import load_recipe
from workbench.store import ResultStore


def test_discover_a_folder_pairs_references_by_stem(tmp_path):
    write_wav(tmp_path / "a.wav", np.zeros(16000, np.float32))
    write_wav(tmp_path / "b.wav", np.zeros(16000, np.float32))
    (tmp_path / "a.stm").write_text("a 1 S 0.0 0.5 hi\n")
    (tmp_path / "a.rttm").write_text("SPEAKER a 1 0.0 0.5 <NA> <NA> S <NA> <NA>\n")
    (tmp_path / "notes.txt").write_text("not a recording")
    entries = discover(tmp_path)
    assert [e.audio.rsplit("/", 1)[1] for e in entries] == ["a.wav", "b.wav"]
    assert sorted(r.rsplit(".", 1)[1] for r in entries[0].references) == ["rttm", "stm"]
    assert entries[1].references == ()


def test_discover_manifests(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps({"audio": "x.wav", "reference": ["x.stm"], "speakers": 2, "tags": ["call"]}) + "\n\n")
    [e] = discover(tmp_path / "m.jsonl")
    assert e.audio == str(tmp_path / "x.wav") and e.references == (str(tmp_path / "x.stm"),)
    assert e.num_speakers == 2 and e.tags == ("call",)
    (tmp_path / "m.csv").write_text("audio,reference,speakers,tags\nsub/y.wav,y.stm;y.rttm,,a;b\n")
    [e] = discover(tmp_path / "m.csv")
    assert e.audio == str(tmp_path / "sub" / "y.wav") and len(e.references) == 2 and e.num_speakers is None
    assert e.tags == ("a", "b")


@pytest.mark.parametrize("text,where", [('{"audio": "x.wav"}\n{oops\n', "m.jsonl:2"), ('{"reference": "x.stm"}\n', "m.jsonl:1"),
                                        ('{"audio": "x.wav", "speakers": "two"}\n', "m.jsonl:1")])
def test_malformed_manifest_names_file_and_line(tmp_path, text, where):
    (tmp_path / "m.jsonl").write_text(text)
    with pytest.raises(BadInputError, match=where.replace(".", r"\.")):
        discover(tmp_path / "m.jsonl")


def test_missing_or_empty_input(tmp_path):
    with pytest.raises(BadInputError, match="not found"):
        discover(tmp_path / "nothing")
    with pytest.raises(BadInputError, match="no audio files"):
        discover(tmp_path)


@pytest.fixture
def corpus(tmp_path):
    """Three 6 s slices of the real pyannote call (with empty-text references: scored as no speech) and one
    corrupt file."""
    samples = load_audio(PYANNOTE_WAV).samples
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i, start in enumerate((7, 14, 21)):
        write_wav(folder / f"clip{i}.wav", samples[start * 16000 : (start + 6) * 16000])
    (folder / "broken.wav").write_bytes(b"RIFF....not really a wav")
    return folder


def rows_by_key(store: ResultStore, run_id: str) -> dict:
    return {(r["recording"]["path"], r["recipe_hash"]): r for r in store.rows(run_id=run_id)}


def uninterrupted(recipes, entries, folder: Path, run_id: str) -> dict:
    """The reference run: one process, start to end, into its own store (``folder``.sqlite) — rows by key."""
    with ResultStore(folder.with_suffix(".sqlite")) as store:
        run_batch(recipes, entries, writer=StoreWriter(folder, store), run_id=run_id)
        return rows_by_key(store, run_id)


@pytest.mark.integration
def test_interrupted_batch_resumes_to_the_same_results(corpus, tmp_path):
    recipes = [load_recipe("cascade-fast")]
    entries = discover(corpus)

    full = uninterrupted(recipes, entries, tmp_path / "full", "full")
    assert len(full) == 4
    broken = [r for r in full.values() if r["error"]]
    assert len(broken) == 1 and broken[0]["error_stage"] == "decode" and "broken.wav" in broken[0]["error"]

    finished = []

    def stop_after_two(step, artifact=None, *, total=None, completed=None):
        if step.endswith("/asr") and artifact is not None:
            finished.append(step)
            if len(finished) == 3:  # the third clip (the warm-up runs on its own clock, not this hook)
                raise KeyboardInterrupt

    with ResultStore(tmp_path / "resumed.sqlite") as store:
        writer = StoreWriter(tmp_path / "resumed", store)
        with pytest.raises(KeyboardInterrupt):
            run_batch(recipes, entries, writer=writer, run_id="r", hook=stop_after_two)
        partial = rows_by_key(store, "r")
        assert 0 < len(partial) < 4  # something finished before the interruption, and it was kept
        run_batch(recipes, entries, writer=StoreWriter(tmp_path / "resumed", store), run_id="r", resume=True)
        resumed = rows_by_key(store, "r")
    assert resumed.keys() == full.keys()  # nothing lost, nothing duplicated
    for key, row in full.items():
        assert resumed[key]["transcript"]["text"] == row["transcript"]["text"]
        assert resumed[key]["error"] == row["error"]
    lines = (tmp_path / "resumed" / "results.jsonl").read_text().splitlines()
    # the resumed run appended only what was missing, and the undecodable recording again (a recording that
    # did not decode is retried on resume; its new row replaced the old one in the store)
    assert len(lines) == 5
    assert {(json.loads(line)["recording"]["path"], json.loads(line)["recipe_hash"]) for line in lines} == full.keys()


@pytest.mark.integration
def test_batch_cli_writes_store_and_resumes(corpus, tmp_path):
    args = ["batch", str(corpus), "--recipes", "cascade-fast", "--out", str(tmp_path / "out"),
            "--store", str(tmp_path / "s.sqlite"), "--run-id", "cli"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "4 results in run cli" in first.output
    again = CliRunner().invoke(app, args + ["--resume"])
    assert again.exit_code == 0 and "4 results in run cli" in again.output  # nothing re-run or duplicated
    with ResultStore(tmp_path / "s.sqlite") as store:
        assert len(store.rows(run_id="cli")) == 4


@pytest.mark.integration
def test_parallel_workers_give_the_same_results_as_one(corpus, tmp_path):
    from workbench.batch import run_batch_parallel

    recipes = [load_recipe("cascade-fast")]
    entries = discover(corpus)
    one = uninterrupted(recipes, entries, tmp_path / "one", "one")
    added = run_batch_parallel(recipes, entries, workers=2, out_dir=tmp_path / "two", store_path=tmp_path / "two.sqlite",
                               run_id="two")
    assert added == 4
    with ResultStore(tmp_path / "two.sqlite") as store:
        two = rows_by_key(store, "two")
    # other processes, other thread counts (each worker gets half the cores): within the stated tolerance
    assert_runs_agree(one, two, "2 workers vs one process")
    threads = max(1, (os.cpu_count() or 1) // 2)
    for row in two.values():
        assert {k: row["execution"][k] for k in ("executor", "workers", "threads", "contended")} == {
            "executor": "processes", "workers": 2, "threads": threads, "contended": True}
        if not row["error"]:
            assert row["components"]["asr"]["threads"] == threads  # the worker's share, not every core
    lines = (tmp_path / "two" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4  # exported from the store: every result once


@pytest.mark.integration
def test_ray_executor_writes_the_same_results_as_the_local_one(corpus, tmp_path):
    pytest.importorskip("ray")
    from workbench.batch import run_batch_ray

    recipes = [load_recipe("cascade-fast")]
    entries = discover(corpus)
    local = uninterrupted(recipes, entries, tmp_path / "local", "run")
    added = run_batch_ray(recipes, entries, workers=2, out_dir=tmp_path / "ray", store_path=tmp_path / "ray.sqlite", run_id="run")
    assert added == 4
    with ResultStore(tmp_path / "ray.sqlite") as store:
        on_ray = rows_by_key(store, "run")
    # Ray tasks run CTranslate2 on one thread (num_cpus=1), the local run on every core: within the tolerance
    assert_runs_agree(local, on_ray, "Ray vs local")
    for row in on_ray.values():
        assert (row["execution"]["executor"], row["execution"]["threads"]) == ("ray", 1)
        if not row["error"]:
            assert row["components"]["asr"]["threads"] == 1
    assert len((tmp_path / "ray" / "results.jsonl").read_text().splitlines()) == 4


@pytest.mark.integration
def test_batch_killed_midway_and_resumed_equals_an_uninterrupted_run(tmp_path):
    """The bundled samples plus a generated folder of 20 clips; the batch process is SIGKILLed after a few
    results, then resumed: the same results as an uninterrupted run, nothing duplicated, nothing lost."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time

    from conftest import MEETING_STM, MEETING_WAV, PYANNOTE_STM

    folder = tmp_path / "corpus"
    folder.mkdir()
    for src in (PYANNOTE_WAV, PYANNOTE_STM, MEETING_WAV, MEETING_STM):
        shutil.copy(src, folder / src.name)
    speech = load_audio(PYANNOTE_WAV).samples
    rng = np.random.default_rng(7)
    for i in range(20):  # 3 s clips: slices of the call, with some silence and noise among them
        if i % 5 == 0:
            clip = np.zeros(3 * 16000, np.float32)
        elif i % 5 == 1:
            clip = (rng.standard_normal(3 * 16000) * 0.003).astype(np.float32)
        else:
            start = 7 * 16000 + i * 8000
            clip = speech[start : start + 3 * 16000]
        write_wav(folder / f"clip{i:02d}.wav", clip)
    recipes = [load_recipe("cascade-fast")]
    entries = discover(folder)
    assert len(entries) == 22

    full = uninterrupted(recipes, entries, tmp_path / "full", "k")
    assert len(full) == 22 and not any(r["error"] for r in full.values())

    store_path = tmp_path / "killed.sqlite"
    cmd = [sys.executable, "-m", "workbench", "batch", str(folder), "--recipes", "cascade-fast", "--run-id", "k",
           "--store", str(store_path), "--out", str(tmp_path / "out")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if store_path.exists():
                with ResultStore(store_path) as store:
                    if len(store.rows(run_id="k")) >= 5:
                        break
            time.sleep(0.2)
        assert proc.poll() is None, "the batch finished before it could be killed"
        proc.send_signal(signal.SIGKILL)  # no chance to clean up: a crash
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    with ResultStore(store_path) as store:
        partial = rows_by_key(store, "k")
    assert 5 <= len(partial) < 22

    resumed_proc = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed_proc.returncode == 0, resumed_proc.stderr[-2000:]
    with ResultStore(store_path) as store:
        resumed = rows_by_key(store, "k")
        assert len(store.rows(run_id="k")) == 22  # nothing duplicated
    assert resumed.keys() == full.keys()  # nothing lost
    assert_runs_agree(full, resumed, "killed and resumed (other processes) vs uninterrupted")
    for key, row in partial.items():  # what finished before the kill was kept as it was
        assert resumed[key]["created_at"] == row["created_at"]
    lines = (tmp_path / "out" / "k" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 22 and all(json.loads(line)["run_id"] == "k" for line in lines)


def test_manifest_tags_reach_the_store(tmp_path):
    from workbench.result import RunResult
    from workbench.datamodel import Recording

    (tmp_path / "m.jsonl").write_text(json.dumps({"audio": "x.wav", "tags": ["call", "noisy"]}) + "\n"
                                      + json.dumps({"audio": "y.wav"}) + "\n")
    entries = discover(tmp_path / "m.jsonl")
    with ResultStore(tmp_path / "s.sqlite") as store:
        writer = StoreWriter(tmp_path / "out", store)
        writer.tags.update({e.audio: e.tags for e in entries if e.tags})
        for e in entries:
            writer.write(RunResult(run_id="t", recipe="r", recipe_hash="h", pipeline="cascade",
                                   recording=Recording("x", e.audio, 1.0, 16000, 1), transcript=None, error="x"))
        assert [r["recording"]["path"] for r in store.rows(tag="noisy")] == [entries[0].audio]
        assert len(store.rows(run_id="t")) == 2


# --- wiring with the FAKE pipeline (no model): resume, one decoded recording at a time, one writer -------------

from fake_pipeline import BEHAVIOUR, EVENTS, FAKE  # noqa: E402

from workbench import runner  # noqa: E402
from workbench.recipes import Availability, Recipe  # noqa: E402


def fake_recipe(name: str, **behaviour) -> Recipe:
    from fake_pipeline import FakeModelOptions

    from workbench.recipes import StageSpec

    BEHAVIOUR[name] = behaviour
    model = StageSpec("model", "fake", FakeModelOptions(label=name))  # a hash of its own, as a real recipe has
    return Recipe(name, FAKE, stages=(model,), description="fake", path=f"/fake/{name}.toml")


@pytest.fixture
def clips(tmp_path):
    """Three 1 s recordings, each with a one-word reference ("hello") beside it."""
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(3):
        write_wav(folder / f"clip{i}.wav", np.zeros(16000, np.float32))
        (folder / f"clip{i}.txt").write_text("hello\n")
    return folder


class Transient(Exception):
    """What a model server's 429 / 5xx / timeout looks like to the runner (LLMRequestError.transient)."""

    transient = True


def runs_of(name: str) -> int:
    return sum(1 for e in EVENTS if e[0] == "run" and e[1] == name)


def test_resume_retries_what_did_not_run_and_transient_failures_and_keeps_the_latest(fake, clips, tmp_path, monkeypatch):
    steady = fake_recipe("steady", text="hello")
    flaky = fake_recipe("flaky", text="hello", run={1: Transient("429 too many requests")})
    keyed = fake_recipe("needs-key", text="hello")
    key_missing = [True]
    monkeypatch.setattr(runner, "check_recipe", lambda r: Availability(False, "no API key", "export THE_API_KEY")
                        if r.name == "needs-key" and key_missing[0] else Availability(True))
    entries = discover(clips)
    with ResultStore(tmp_path / "s.sqlite") as store:
        run_batch([steady, flaky, keyed], entries, writer=StoreWriter(tmp_path / "out", store), run_id="r")
        before = rows_by_key(store, "r")
        kinds = sorted(r["error_kind"] or "ok" for r in before.values())
        assert kinds == ["ok"] * 5 + ["transient"] + ["unavailable"] * 3

        key_missing[0] = False  # the user exports the key; the server is no longer busy
        BEHAVIOUR["flaky"]["run"] = {}
        EVENTS.clear()
        run_batch([steady, flaky, keyed], entries, writer=StoreWriter(tmp_path / "out", store), run_id="r", resume=True)
        after = rows_by_key(store, "r")
        assert len(store.rows(run_id="r")) == 9  # replaced, not duplicated
        assert not any(r["error"] for r in after.values())
        assert (runs_of("steady"), runs_of("flaky"), runs_of("needs-key")) == (0, 1, 3)  # only what was not done
        for key, row in before.items():
            if not row["error"]:
                assert after[key] == row  # what was done is kept as it was
        # the metrics are the new rows' (a perfect transcript), none left over from the failed ones
        assert {value for _, name, value in store.metric_table("r") if name == "wer"} == {0.0}
        assert sum(1 for _, name, _ in store.metric_table("r") if name == "wer") == 9


def test_each_recording_is_decoded_when_needed_and_released_after(fake, clips, tmp_path, monkeypatch):
    """One decoded recording in memory at a time: decoded for each recipe that needs it, released before the
    next is decoded; the models still load once per recipe."""
    live: weakref.WeakSet = weakref.WeakSet()
    alive_at_decode: list[int] = []
    real = runner.load_item

    def counting(*args, **kwargs):
        alive_at_decode.append(len(live))
        item = real(*args, **kwargs)
        live.add(item)
        return item

    monkeypatch.setattr(runner, "load_item", counting)
    monkeypatch.setattr("workbench.batch.load_item", counting, raising=False)  # where the batch used to decode
    recipes = [fake_recipe("a", text="hello"), fake_recipe("b", text="hi")]
    with ResultStore(tmp_path / "s.sqlite") as store:
        results = run_batch(recipes, discover(clips), writer=StoreWriter(tmp_path / "out", store), run_id="m")
    assert len(results) == 6 and not any(r.error for r in results)
    assert alive_at_decode and max(alive_at_decode) == 0
    assert [e for e in EVENTS if e[0] == "load"] == [("load", "a"), ("load", "b")]


def test_an_undecodable_recording_fails_for_each_recipe_and_the_batch_goes_on(fake, clips, tmp_path):
    (clips / "broken.wav").write_bytes(b"RIFF....not really a wav")
    recipes = [fake_recipe("a", text="hello"), fake_recipe("b", text="hello")]
    with ResultStore(tmp_path / "s.sqlite") as store:
        run_batch(recipes, discover(clips), writer=StoreWriter(tmp_path / "out", store), run_id="d")
        rows = store.rows(run_id="d")
    broken = [r for r in rows if r["error"]]
    assert len(rows) == 8 and sorted(r["recipe"] for r in broken) == ["a", "b"]
    assert {(r["error_stage"], r["error_kind"]) for r in broken} == {("decode", "bad-input")}


@pytest.mark.parametrize("name,text,lines", [
    ("m.jsonl", '{"audio": "x.wav"}\n{"audio": "y.wav"}\n{"audio": "./x.wav", "tags": ["again"]}\n', "lines 1 and 3"),
    ("m.csv", "audio,speakers\nsub/../x.wav,1\ny.wav,\nx.wav,2\n", "lines 2 and 4"),
])
def test_a_recording_listed_twice_in_a_manifest_is_refused(tmp_path, name, text, lines):
    (tmp_path / name).write_text(text)
    with pytest.raises(BadInputError, match=f"{name}:\\d: .*x.wav is listed twice \\({lines}\\)"):
        discover(tmp_path / name)


# --- the store fails: the result stays in results.jsonl, one clear error ------------------------------------


def a_result(path: str = "/data/a.wav", run_id: str = "s"):
    from workbench.datamodel import Recording
    from workbench.result import RunResult

    return RunResult(run_id=run_id, recipe="r", recipe_hash="h", pipeline="cascade",
                     recording=Recording("a", path, 1.0, 16000, 1), transcript=None, error="x", error_kind="failed",
                     created_at="2026-11-22T02:54:53+00:00")


def test_a_locked_store_keeps_the_result_in_results_jsonl_and_fails_with_one_line(tmp_path):
    from workbench.batch import export_jsonl
    from workbench.errors import StoreError

    path = tmp_path / "s.sqlite"
    with ResultStore(path, timeout_s=0.05) as store:
        writer = StoreWriter(tmp_path / "out", store, attempts=2, backoff_s=0.01)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another program holds the store
        try:
            with pytest.raises(StoreError) as failure:
                writer.write(a_result())
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    message = str(failure.value)
    assert "\n" not in message and str(path) in message and "2 tries" in message
    assert "--resume --run-id s" in message and str(writer.path) in message
    [line] = writer.path.read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["recording"]["path"] == "/data/a.wav"
    # once the store is free, the rewrite of results.jsonl adds what only the file held (and keeps it)
    export_jsonl(path, "s", tmp_path / "out")
    with ResultStore(path) as store:
        assert [r["recording"]["path"] for r in store.rows(run_id="s")] == ["/data/a.wav"]
    assert len(writer.path.read_text(encoding="utf-8").splitlines()) == 1


def test_a_full_store_keeps_the_result_in_results_jsonl_and_the_connection_usable(tmp_path):
    from workbench.errors import StoreError

    with ResultStore(tmp_path / "s.sqlite") as store:
        writer = StoreWriter(tmp_path / "out", store, attempts=2, backoff_s=0.0)
        writer.write(a_result("/data/a.wav"))
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full
        big = a_result("/data/" + "b" * 20000 + ".wav")
        with pytest.raises(StoreError, match="full"):
            writer.write(big)
        assert not store._conn.in_transaction
        with pytest.raises(StoreError):  # once failed, every further result still goes to the file
            writer.write(a_result("/data/c.wav"))
        assert len(writer.path.read_text(encoding="utf-8").splitlines()) == 3
        store._conn.execute("PRAGMA max_page_count = 1073741823")  # space again: the same connection works
        assert store.import_jsonl(writer.path) == 2
        assert len(store.rows(run_id="s")) == 3


def test_rewriting_results_jsonl_never_leaves_it_half_written(tmp_path, monkeypatch):
    from workbench.batch import export_jsonl

    with ResultStore(tmp_path / "s.sqlite") as store:
        StoreWriter(tmp_path / "out", store).write(a_result())
    before = (tmp_path / "out" / "results.jsonl").read_bytes()
    # the rewrite fails part way (here: text that cannot be encoded; a kill or a full disk alike)
    monkeypatch.setattr(ResultStore, "rows", lambda self, **kw: [{"text": "fine"}, {"text": "\ud800"}])
    with pytest.raises(UnicodeEncodeError):
        export_jsonl(tmp_path / "s.sqlite", "s", tmp_path / "out")
    assert (tmp_path / "out" / "results.jsonl").read_bytes() == before
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["results.jsonl"]  # no temporary file left behind


# --- one writer: local workers and Ray tasks send rows back; only the driver writes -----------------------


class FakeRay:
    """Just enough of Ray's API, run in this process: what each task was given, and the environment at init."""

    def __init__(self, interrupt_at: int | None = None):
        self.initialized = False
        self.init_env: dict = {}
        self.task_args: list[tuple] = []
        self.gets = 0
        self.interrupt_at = interrupt_at

    def is_initialized(self):
        return self.initialized

    def init(self, **kwargs):
        import os

        self.initialized = True
        self.init_env = {k: v for k, v in os.environ.items() if k.startswith("RAY_")}

    def shutdown(self):
        self.initialized = False

    def remote(self, fn):
        fake = self

        class Remote:
            def options(self, **kwargs):
                return self

            def remote(self, *args):
                fake.task_args.append(args)
                return lambda: fn(*args)

        return Remote()

    def wait(self, refs, num_returns=1):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        self.gets += 1
        if self.gets == self.interrupt_at:
            raise KeyboardInterrupt
        return ref()


def test_ray_tasks_return_rows_and_only_the_driver_writes(fake, clips, tmp_path, monkeypatch):
    import sys

    from workbench.batch import run_batch_ray

    ray = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", ray)
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)
    monkeypatch.chdir(tmp_path)
    recipes = [fake_recipe("a", text="hello")]
    entries = discover(clips)
    added = run_batch_ray(recipes, entries, workers=2, out_dir=Path("out"), store_path=Path("rel.sqlite"), run_id="ray")
    assert added == 3
    assert ray.init_env.get("RAY_USAGE_STATS_ENABLED") == "0"  # no usage statistics sent unless asked
    assert "RAY_USAGE_STATS_ENABLED" not in __import__("os").environ
    given = repr(ray.task_args)
    assert "rel.sqlite" not in given and "out" not in [str(a) for args in ray.task_args for a in args]
    with ResultStore(tmp_path / "rel.sqlite") as store:
        assert len(store.rows(run_id="ray")) == 3
    assert len((tmp_path / "out" / "results.jsonl").read_text().splitlines()) == 3


def test_an_interrupted_ray_batch_keeps_the_finished_tasks(fake, clips, tmp_path, monkeypatch):
    import sys

    from workbench.batch import run_batch_ray

    monkeypatch.setitem(sys.modules, "ray", FakeRay(interrupt_at=2))
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "1")  # the user asked for them: left as it is
    with pytest.raises(KeyboardInterrupt):
        run_batch_ray([fake_recipe("a", text="hello")], discover(clips), workers=2, out_dir=tmp_path / "out",
                      store_path=tmp_path / "s.sqlite", run_id="ray")
    assert sys.modules["ray"].init_env["RAY_USAGE_STATS_ENABLED"] == "1"
    with ResultStore(tmp_path / "s.sqlite") as store:
        assert len(store.rows(run_id="ray")) == 2  # the first task's share (clips 0 and 2)
    assert len((tmp_path / "out" / "results.jsonl").read_text().splitlines()) == 2


def test_local_workers_return_rows_and_only_the_driver_writes(fake, clips, tmp_path, monkeypatch):
    """The process pool is swapped for threads here (the fake pipeline lives in this process); what is checked
    is the wiring: tasks get no store path, the driver writes every row once, resume skips what is done."""
    import concurrent.futures

    from workbench.batch import run_batch_parallel

    submitted: list[tuple] = []

    class Threads(concurrent.futures.ThreadPoolExecutor):
        def __init__(self, workers, mp_context=None, initializer=None, initargs=()):
            super().__init__(workers)  # no initializer: the worker's thread limits would apply to this process

        def submit(self, fn, *args):
            submitted.append(args)
            return super().submit(fn, *args)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Threads)
    recipes = [fake_recipe("a", text="hello"), fake_recipe("b", text="hello")]
    entries = discover(clips)
    added = run_batch_parallel(recipes, entries, workers=2, out_dir=tmp_path / "out", store_path=tmp_path / "s.sqlite",
                               run_id="p")
    assert added == 6 and len(submitted) == 4
    assert "s.sqlite" not in repr(submitted)
    with ResultStore(tmp_path / "s.sqlite") as store:
        assert len(store.rows(run_id="p")) == 6
    assert len((tmp_path / "out" / "results.jsonl").read_text().splitlines()) == 6
    submitted.clear()
    assert run_batch_parallel(recipes, entries, workers=2, out_dir=tmp_path / "out",
                              store_path=tmp_path / "s.sqlite", run_id="p", resume=True) == 0
    assert submitted == []


# --- the CLI: run ids that name folders, --resume by exact source ------------------------------------------


def fake_recipe_file(tmp_path: Path, name: str = "fake-batch") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\npipeline = "test-fake"\ndescription = "wiring fake"\n'
                    f'[model]\nbackend = "fake"\nlabel = "{name}"\n')
    BEHAVIOUR[name] = {"text": "hello"}
    return path


@pytest.mark.parametrize("run_id", ["../x", "/tmp/abs-run", "a/b", ".", "..", "a b", ""])
def test_batch_refuses_a_run_id_that_is_not_a_plain_name(fake, clips, tmp_path, run_id):
    out, store = tmp_path / "reports", tmp_path / "s.sqlite"
    result = CliRunner().invoke(app, ["batch", str(clips), "--recipes", str(fake_recipe_file(tmp_path)),
                                      "--run-id", run_id, "--out", str(out), "--store", str(store)])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "run id" in result.output and "Traceback" not in result.output
    assert not out.exists() and not store.exists() and not (tmp_path / "x").exists()


def test_report_refuses_a_run_id_that_is_not_a_plain_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with ResultStore(tmp_path / "s.sqlite") as store:
        row = json.loads(json.dumps(a_result(run_id="../escape").to_json()))
        store.add(row)
    result = CliRunner().invoke(app, ["report", "../escape", "--store", str(tmp_path / "s.sqlite"), "--format", "md"])
    assert result.exit_code == 2, result.output
    assert "run id" in result.output
    assert not (tmp_path / "escape").exists() and not (tmp_path / "reports").exists()


def test_resume_without_a_run_id_matches_the_source_exactly(fake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for folder in ("data/a", "data/ab"):
        Path(folder).mkdir(parents=True)
        write_wav(Path(folder) / "clip.wav", np.zeros(16000, np.float32))
    recipe = str(fake_recipe_file(tmp_path))
    args = ["--recipes", recipe, "--store", "s.sqlite", "--out", "reports"]
    first = CliRunner().invoke(app, ["batch", "data/ab", *args, "--run-id", "ab-run"])
    assert first.exit_code == 0, first.output
    wrong = CliRunner().invoke(app, ["batch", "data/a", *args, "--resume"])
    assert wrong.exit_code == 2, wrong.output
    assert "no earlier batch over" in wrong.output
    right = CliRunner().invoke(app, ["batch", str(tmp_path / "data" / "ab"), *args, "--resume"])  # the same folder
    assert right.exit_code == 0 and "1 results in run ab-run" in right.output, right.output


def test_resume_adds_what_only_results_jsonl_held(fake, clips, tmp_path):
    """A store write that failed (or a kill between the two writes) left a result in results.jsonl only:
    --resume adds it to the store instead of running it again."""
    recipe = str(fake_recipe_file(tmp_path))
    args = ["batch", str(clips), "--recipes", recipe, "--store", str(tmp_path / "s.sqlite"),
            "--out", str(tmp_path / "reports"), "--run-id", "j"]
    assert CliRunner().invoke(app, args).exit_code == 0
    with ResultStore(tmp_path / "s.sqlite") as store:
        store._conn.execute("DELETE FROM results WHERE id = (SELECT MAX(id) FROM results)")
    EVENTS.clear()
    again = CliRunner().invoke(app, args + ["--resume"])
    assert again.exit_code == 0, again.output
    assert "added 1 result(s)" in again.output and "3 results in run j" in again.output
    assert not [e for e in EVENTS if e[0] == "run"]  # nothing ran again


def test_batch_cli_stops_with_one_line_when_the_store_cannot_be_written(fake, clips, tmp_path, monkeypatch):
    import time

    def full(self, row):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ResultStore, "add", full)
    monkeypatch.setattr(time, "sleep", lambda s: None)  # the pauses between tries
    out = tmp_path / "reports"
    result = CliRunner().invoke(app, ["batch", str(clips), "--recipes", str(fake_recipe_file(tmp_path)),
                                      "--store", str(tmp_path / "s.sqlite"), "--out", str(out), "--run-id", "f"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)  # no exception escaped
    message = result.output.replace("\n", "")
    assert "s.sqlite" in message and "database or disk is full" in message and "--resume --run-id f" in message
    [line] = (out / "f" / "results.jsonl").read_text(encoding="utf-8").splitlines()  # the first result, kept
    assert json.loads(line)["run_id"] == "f"


def test_a_batch_killed_in_the_middle_of_an_append_resumes_with_a_whole_file(fake, clips, tmp_path):
    """A kill while appending leaves half a line, no newline; the resumed batch appends after it: the file is
    rewritten whole first, so the next row does not run into the torn one."""
    args = ["batch", str(clips), "--recipes", str(fake_recipe_file(tmp_path)), "--store", str(tmp_path / "s.sqlite"),
            "--out", str(tmp_path / "reports"), "--run-id", "k"]
    assert CliRunner().invoke(app, args).exit_code == 0
    path = tmp_path / "reports" / "k" / "results.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:2]) + "\n" + lines[2][:60], encoding="utf-8")  # the kill, mid-append...
    with ResultStore(tmp_path / "s.sqlite") as store:  # ...before the store write
        store._conn.execute("DELETE FROM results WHERE id = (SELECT MAX(id) FROM results)")
    again = CliRunner().invoke(app, args + ["--resume"])
    assert again.exit_code == 0, again.output
    assert "torn" in again.output and "3 results in run k" in again.output
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3 and len({r["recording"]["path"] for r in rows}) == 3
