"""Sharing the dashboard: a token when it listens beyond this machine, one run at a time across sessions (with
the place in the queue), a size cap on reference uploads, and a retention period for uploads."""

from __future__ import annotations

import os
import threading
import time

import pytest
from streamlit.testing.v1 import AppTest
from test_dashboard_app import env, run, stored, text, upload  # noqa: F401 - env is a fixture
from typer.testing import CliRunner

from workbench.dashboard import APP
from workbench.dashboard.retention import DAY_S, prune_uploads
from workbench.dashboard.settings import TOKEN_ENV

TOKEN = "a-long-test-token-0123456789"


def started(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def shows_the_app(at: AppTest) -> bool:
    return bool(at.get("file_uploader")) and bool(at.get("multiselect"))


# --- token ------------------------------------------------------------------------------------------------


def test_a_shared_dashboard_shows_nothing_but_the_token_field_until_the_token_is_typed(env, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    at = started(AppTest.from_file(str(APP), default_timeout=60))
    assert not shows_the_app(at) and not at.get("button")
    field = at.text_input(key="wb_token")
    field.input("wrong-token-0123456789").run()
    assert not shows_the_app(at) and "not right" in at.error[0].value
    at.text_input(key="wb_token").input(TOKEN).run()
    assert not at.exception, at.exception
    assert shows_the_app(at)
    at.run()  # asked once per session: later reruns need nothing more
    assert shows_the_app(at)


def test_a_shared_dashboard_accepts_the_token_in_the_address_and_removes_it_from_there(env, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["token"] = TOKEN
    started(at)
    assert shows_the_app(at)
    assert "token" not in at.query_params


def test_a_wrong_token_in_the_address_shows_nothing(env, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["token"] = TOKEN[:-1]
    started(at)
    assert not shows_the_app(at) and at.error


def test_on_this_machine_only_no_token_is_asked(env, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    at = started(AppTest.from_file(str(APP), default_timeout=60))
    assert shows_the_app(at) and not at.get("text_input")


# --- reference size cap -----------------------------------------------------------------------------------


def test_a_reference_over_the_size_cap_is_refused_and_nothing_runs(env, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MAX_REFERENCE_MB", "1")
    big = env / "big.txt"
    big.write_text("word " * 300_000)  # 1.5 MB
    at = started(AppTest.from_file(str(APP), default_timeout=60))
    assert "up to 1 MB" in at.file_uploader(key="reference").label
    upload(at, reference=big)
    run(at, ["fake-exact"])
    [error] = [text(e.value) for e in at.error]
    assert error.startswith("Nothing was run") and "big.txt" in error and "1.5 MB" in error and "--max-reference-mb" in error
    assert stored(env) == [] and not (env / "out").exists()


# --- one run at a time --------------------------------------------------------------------------------------


def test_the_run_queue_runs_one_at_a_time_and_tells_each_waiter_its_place():
    from workbench.dashboard.resources import RunQueue

    queue = RunQueue()
    places: dict[str, list[int]] = {"b": [], "c": []}
    queued = {"b": threading.Event(), "c": threading.Event()}
    order: list[str] = []
    c_moved_up = threading.Event()

    def session(name: str) -> None:
        def on_wait(ahead: int) -> None:
            places[name].append(ahead)
            queued[name].set()
            if name == "c" and ahead == 1:
                c_moved_up.set()

        with queue.turn(on_wait, poll_s=0.05):
            order.append(name)
            if name == "b":  # b runs until c has seen that it is next
                assert c_moved_up.wait(30)

    with queue.turn():  # session a runs
        b = threading.Thread(target=session, args=("b",))
        b.start()
        assert queued["b"].wait(30)
        c = threading.Thread(target=session, args=("c",))
        c.start()
        assert queued["c"].wait(30)
        assert len(queue) == 3 and order == []
        assert places["b"][0] == 1 and places["c"][0] == 2
    b.join(30)
    c.join(30)
    assert order == ["b", "c"] and len(queue) == 0
    assert c_moved_up.is_set()  # c moved up when a finished, while b ran


def test_a_waiter_that_goes_away_leaves_the_queue():
    from workbench.dashboard.resources import RunQueue

    class Gone(Exception):
        pass

    queue = RunQueue()

    def leave(ahead: int) -> None:
        raise Gone  # Streamlit stops a session's script like this (rerun, closed tab)

    with queue.turn():
        with pytest.raises(Gone):
            with queue.turn(leave):
                pass
        assert len(queue) == 1
    assert len(queue) == 0


# --- retention ----------------------------------------------------------------------------------------------


def make_run(out, name: str, age_days: float, now: float):
    folder = out / name
    (folder / "input").mkdir(parents=True)
    for f in (folder / "input" / "talk.wav", folder / "input" / "talk.stm", folder / "results.jsonl"):
        f.write_text("x")
        os.utime(f, (now - age_days * DAY_S, now - age_days * DAY_S))
    os.utime(folder / "input", (now - age_days * DAY_S, now - age_days * DAY_S))
    return folder


def test_uploads_older_than_the_retention_period_are_deleted_and_results_stay(tmp_path):
    now = time.time()
    old, recent = make_run(tmp_path, "run-old", 31, now), make_run(tmp_path, "run-recent", 29, now)
    (tmp_path / "stray.txt").write_text("not a run")
    deleted = prune_uploads(tmp_path, 30, now=now)
    assert deleted == [old / "input"]
    assert not (old / "input").exists() and (old / "results.jsonl").is_file()
    assert (recent / "input" / "talk.wav").is_file()
    assert (tmp_path / "stray.txt").is_file()


def test_retention_zero_keeps_every_upload(tmp_path):
    now = time.time()
    old = make_run(tmp_path, "run-old", 400, now)
    assert prune_uploads(tmp_path, 0, now=now) == [] and (old / "input" / "talk.wav").is_file()


# --- the command ----------------------------------------------------------------------------------------------


@pytest.fixture
def no_exec(monkeypatch):
    """``workbench dashboard`` becomes the Streamlit server (os.execve): record what it would run instead."""
    calls = []

    def execve(path, argv, env):
        calls.append((argv, env))
        raise SystemExit(0)

    monkeypatch.setattr(os, "execve", execve)
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    return calls


def test_listening_beyond_this_machine_prints_a_new_token_and_requires_it(no_exec, tmp_path):
    from workbench.cli import app

    result = CliRunner().invoke(app, ["dashboard", "--host", "0.0.0.0", "--out", str(tmp_path / "out"),
                                      "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 0, result.output
    [(argv, env)] = no_exec
    token = env[TOKEN_ENV]
    assert len(token) >= 16 and f"access token: {token}" in result.output and f"?token={token}" in result.output
    # another start: another token
    CliRunner().invoke(app, ["dashboard", "--host", "0.0.0.0", "--out", str(tmp_path / "out")])
    assert no_exec[1][1][TOKEN_ENV] != token


def test_on_loopback_no_token_unless_given(no_exec, tmp_path):
    from workbench.cli import app

    result = CliRunner().invoke(app, ["dashboard", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert no_exec[0][1][TOKEN_ENV] == "" and "access token" not in result.output and "?token=" not in result.output
    CliRunner().invoke(app, ["dashboard", "--host", "0.0.0.0", "--token", TOKEN, "--out", str(tmp_path / "out")])
    assert no_exec[1][1][TOKEN_ENV] == TOKEN


def test_a_short_token_is_bad_input(no_exec, tmp_path):
    from workbench.cli import app

    result = CliRunner().invoke(app, ["dashboard", "--host", "0.0.0.0", "--token", "short"])
    assert result.exit_code == 2 and "16 characters" in result.output and not no_exec


def test_the_command_deletes_old_uploads_on_start_and_passes_the_caps(no_exec, tmp_path):
    from workbench.cli import app

    now = time.time()
    old = make_run(tmp_path / "out", "run-old", 10, now)
    result = CliRunner().invoke(app, ["dashboard", "--out", str(tmp_path / "out"), "--keep-uploads-days", "7",
                                      "--max-reference-mb", "2"])
    assert result.exit_code == 0, result.output
    assert not (old / "input").exists() and (old / "results.jsonl").is_file()
    env = no_exec[0][1]
    assert env["WORKBENCH_KEEP_UPLOADS_DAYS"] == "7" and float(env["WORKBENCH_MAX_REFERENCE_MB"]) == 2
