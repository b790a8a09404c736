"""The run session every face uses, the runner as a small object, the pipeline traits and the writers' protocol.

The pipeline here is the wiring FAKE (tests/fake_pipeline.py): these tests check what is written where, not any
model. Audio is generated (a quiet 1 s tone) and references are one-word STM files."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fake_pipeline import BEHAVIOUR, FAKE, FakePipeline, register
from typer.testing import CliRunner

from workbench.cli import app
from workbench.cost import ApiPrice, HardwarePrice
from workbench.errors import BadInputError
from workbench.pipelines import Traits, pipeline_traits
from workbench.recipes import Recipe, load_recipe, parse_recipe
from workbench.runner import RecipeRun, RunContext, load_item, run_recipes
from workbench.session import RunSettings, start_run
from workbench.writers import MemoryWriter, ResultWriter, RowCollector, StoreWriter, Writer

ROOT = Path(__file__).resolve().parent.parent
WORKBENCH = ROOT / "workbench"


@pytest.fixture
def fake(monkeypatch):
    register(monkeypatch)  # clears the fake's state; monkeypatch takes the fake away after the test


@pytest.fixture
def clip(tmp_path) -> Path:
    path = tmp_path / "clip.wav"
    t = np.arange(16000) / 16000
    sf.write(path, (0.1 * np.sin(2 * np.pi * 220 * t)).astype("float32"), 16000)
    path.with_suffix(".stm").write_text("clip 1 A 0.0 1.0 hello\n")
    return path


def recipe_file(tmp_path: Path, name: str = "fake-session", text: str = "hello") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\npipeline = "{FAKE}"\ndescription = "wiring fake"\n'
                    f'[model]\nbackend = "fake"\nlabel = "{name}"\n')
    BEHAVIOUR[name] = {"text": text}
    return path


def stored(store: Path) -> tuple[list[str], list[tuple]]:
    with sqlite3.connect(store) as db:
        runs = [r[0] for r in db.execute("SELECT run_id FROM runs")]
        results = list(db.execute("SELECT run_id, recipe FROM results"))
    return runs, results


# --- every face writes the same store -------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["compare", "run"])
def test_compare_and_run_add_the_run_to_the_store(fake, clip, tmp_path, command):
    out, store = tmp_path / "reports", tmp_path / "s.sqlite"
    recipe = recipe_file(tmp_path)
    args = (["compare", str(clip), "--recipes", str(recipe)] if command == "compare" else ["run", str(recipe), str(clip)])
    result = CliRunner().invoke(app, [*args, "-r", str(clip.with_suffix(".stm")), "--out", str(out), "--store", str(store)])
    assert result.exit_code == 0, result.output
    runs, results = stored(store)
    assert len(runs) == 1 and results == [(runs[0], "fake-session")]
    assert (out / runs[0] / "results.jsonl").is_file() and (out / runs[0] / "summary.md").is_file()
    assert f"store: {store}" in result.output.replace("\n", "")


def test_compare_stores_by_default_in_reports_workbench_sqlite(fake, clip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORKBENCH_STORE")
    result = CliRunner().invoke(app, ["compare", str(clip), "--recipes", str(recipe_file(tmp_path))])
    assert result.exit_code == 0, result.output
    runs, results = stored(tmp_path / "reports" / "workbench.sqlite")
    assert len(runs) == 1 and len(results) == 1


def test_the_store_can_be_named_once_in_the_environment(fake, clip, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "env.sqlite"))
    result = CliRunner().invoke(app, ["compare", str(clip), "--recipes", str(recipe_file(tmp_path)), "--out",
                                      str(tmp_path / "reports")])
    assert result.exit_code == 0, result.output
    assert len(stored(tmp_path / "env.sqlite")[1]) == 1


def test_probe_adds_the_run_to_the_store(fake, tmp_path):
    store = tmp_path / "s.sqlite"
    result = CliRunner().invoke(app, ["probe", "--recipes", str(recipe_file(tmp_path, text="")), "--out",
                                      str(tmp_path / "reports"), "--store", str(store)])
    assert result.exit_code == 0, result.output
    runs, results = stored(store)
    assert len(runs) == 1 and results and {r for _, r in results} == {"fake-session"}


def test_a_recording_that_cannot_be_decoded_leaves_no_run_in_the_store(fake, tmp_path):
    store = tmp_path / "s.sqlite"
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    result = CliRunner().invoke(app, ["compare", str(bad), "--recipes", str(recipe_file(tmp_path)), "--out",
                                      str(tmp_path / "reports"), "--store", str(store)])
    assert result.exit_code == 2, result.output
    assert not store.exists() or stored(store) == ([], [])
    assert not (tmp_path / "reports").exists()


def test_start_run_checks_the_settings_before_writing_anything(fake, tmp_path):
    with pytest.raises(BadInputError):
        start_run(tmp_path / "reports", [str(recipe_file(tmp_path))], RunSettings(normalizer="shout"),
                  store=tmp_path / "s.sqlite")
    assert not (tmp_path / "s.sqlite").exists() and not (tmp_path / "reports").exists()


def test_a_session_runs_records_and_says_where(fake, clip, tmp_path):
    store = tmp_path / "s.sqlite"
    with start_run(tmp_path / "reports", [str(recipe_file(tmp_path))], RunSettings(speakers=2), store=store,
                   run_id="my-run", command=["workbench", "test"], tags=["t"]) as run:
        item = run.load_item(clip, [clip.with_suffix(".stm")])
        assert item.num_speakers == 2
        [result] = run.call(run_recipes, [item])
        run.write_summary("# done\n")
        assert run.results == [result] and result.run_id == "my-run" and result.price is not None
        assert run.paths().splitlines() == [f"results: {run.folder / 'results.jsonl'}",
                                            f"summary: {run.folder / 'summary.md'}", f"store: {store}"]
    assert stored(store) == (["my-run"], [("my-run", "fake-session")])


# --- the runner as an object; the pipeline says what it is ----------------------------------------------------

def string_constants(path: Path) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_the_runner_tests_no_backend_or_stage_name():
    assert not {"openai-compatible", "diarization", "formatter", "model", "none"} & string_constants(WORKBENCH / "runner.py")


def test_pipelines_say_whether_they_are_remote_call_an_api_diarize_or_format():
    assert pipeline_traits(load_recipe("whisper-raw")) == Traits()
    assert not pipeline_traits(load_recipe("cascade-fast")).diarizes and pipeline_traits(load_recipe("cascade")).diarizes
    assert pipeline_traits(load_recipe("audio-llm-openai")) == Traits(remote=True, calls_api=True)
    formatted = parse_recipe({"pipeline": "cascade", "asr": {"backend": "faster-whisper", "model": "tiny.en"},
                              "formatter": {"backend": "openai-compatible", "base_url": "http://127.0.0.1:1/v1"}}, name="c")
    assert pipeline_traits(formatted) == Traits(remote=False, calls_api=True, diarizes=False, formats=True)


def context(writer, **kw) -> RunContext:
    from workbench.execution import Execution
    from workbench.hooks import null_hook

    base = dict(writer=writer, run_id="r", price=HardwarePrice("hw", 1.0, "test", "2026-01-01"), normalizer="whisper-english",
                hook=null_hook, api_prices={}, phrases=None, pool=None, execution=Execution())
    base.update(kw)
    return RunContext(**base)


def fake_recipe(name: str, **behaviour) -> Recipe:
    BEHAVIOUR[name] = behaviour
    return Recipe(name, FAKE, stages=(), description="fake", path=f"/fake/{name}.toml")


def test_a_pipeline_that_says_it_is_remote_gets_no_hardware_price_and_no_warm_up(fake, clip, monkeypatch):
    monkeypatch.setattr(FakePipeline, "warm_up", True, raising=False)
    item = load_item(str(clip), [str(clip.with_suffix(".stm"))])
    [local] = RecipeRun(fake_recipe("local", text="hello"), context(MemoryWriter())).run([item])
    assert local.price is not None and local.timings[0].detail["warmup_s"] is not None
    monkeypatch.setattr(FakePipeline, "traits", classmethod(lambda cls, recipe: Traits(remote=True, calls_api=True)),
                        raising=False)
    [remote] = RecipeRun(fake_recipe("remote", text="hello"), context(MemoryWriter())).run([item])
    assert remote.price is None and remote.timings[0].detail["warmup_s"] is None
    api = ApiPrice("api", "test", "2026-01-01", usd_per_audio_minute=0.01)
    monkeypatch.setattr("workbench.runner.api_price_id", lambda recipe: "api")
    [priced] = RecipeRun(fake_recipe("priced", text="hello"), context(MemoryWriter(), api_prices={"api": api})).run([item])
    assert priced.price is not None and priced.api_price == api


def test_a_pipeline_that_says_it_diarizes_is_scored_on_speakers(fake, clip, monkeypatch):
    item = load_item(str(clip), [str(clip.with_suffix(".stm"))])
    [plain] = run_recipes([fake_recipe("plain", text="hello")], [item], writer=MemoryWriter(), run_id="r")
    monkeypatch.setattr(FakePipeline, "traits", classmethod(lambda cls, recipe: Traits(diarizes=True)), raising=False)
    [diarized] = run_recipes([fake_recipe("diarized", text="hello")], [item], writer=MemoryWriter(), run_id="r")
    assert plain.scores.der == () and diarized.scores.der != ()


def test_fail_all_records_a_recipe_that_did_not_run_without_scores(fake, clip):
    item = load_item(str(clip), [str(clip.with_suffix(".stm"))])
    writer = MemoryWriter()
    run = RecipeRun(fake_recipe("x", text="hello"), context(writer))
    [r] = run.fail_all(iter([item]), "unavailable: test", "check", "unavailable")
    assert writer.results == [r] and r.error_kind == "unavailable" and r.scores is None and not r.did_run


def test_a_load_that_fails_is_recorded_for_every_recording(fake, clip):
    item = load_item(str(clip), [str(clip.with_suffix(".stm"))])
    results = RecipeRun(fake_recipe("y", load=RuntimeError("broken")), context(MemoryWriter())).run([item, item])
    assert [r.error_kind for r in results] == ["load-failed", "load-failed"]


# --- writers --------------------------------------------------------------------------------------------------

def test_every_writer_follows_the_protocol(tmp_path):
    from workbench.store import ResultStore

    with ResultStore(tmp_path / "s.sqlite") as store:
        writers = [ResultWriter(tmp_path / "a"), MemoryWriter(), StoreWriter(tmp_path / "b", store), RowCollector()]
        for writer in writers:
            assert isinstance(writer, Writer), type(writer).__name__


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_the_dashboard_takes_no_writer_or_settings_from_the_batch_or_the_runner_internals():
    for path in (WORKBENCH / "dashboard").glob("*.py"):
        assert "workbench.batch" not in imports_of(path), path.name
