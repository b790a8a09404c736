"""Batch runs: inputs from folders and manifests, results in the store as they finish, and --resume."""

from __future__ import annotations

import json
import os
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
    assert len(lines) == 4  # the resumed run appended only what was missing


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
