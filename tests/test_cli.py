"""The CLI's bad-input paths: one clear line naming the file and the problem, exit code 2, no traceback.

Every case here fails before any model is loaded, so these tests are fast.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from conftest import PYANNOTE_STM, PYANNOTE_WAV, write_wav
from workbench.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_clean_failure(result, *phrases, code=2):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert "error:" in result.output
    for phrase in phrases:
        assert phrase in result.output, result.output


@pytest.fixture
def out(tmp_path):
    return tmp_path / "reports"


def test_missing_audio(tmp_path, out):
    assert_clean_failure(invoke("compare", tmp_path / "nope.wav", "--out", out), "nope.wav", "not found")
    assert not out.exists()  # nothing half-written


def test_empty_audio(tmp_path, out):
    (tmp_path / "empty.wav").write_bytes(b"")
    assert_clean_failure(invoke("run", "cascade-fast", tmp_path / "empty.wav", "--out", out), "empty.wav", "empty")


def test_non_audio(tmp_path, out):
    (tmp_path / "notes.mp3").write_text("this is not audio\n" * 50)
    assert_clean_failure(invoke("compare", tmp_path / "notes.mp3", "--out", out), "notes.mp3")


def test_too_short_audio(tmp_path, out):
    path = write_wav(tmp_path / "blip.wav", __import__("numpy").zeros(400, dtype="float32"))
    assert_clean_failure(invoke("compare", path, "--out", out), "blip.wav", "short")


def test_too_long_audio(out):
    assert_clean_failure(invoke("compare", PYANNOTE_WAV, "--max-duration", 10, "--out", out), "sample.wav", "limit")


def test_malformed_reference_names_file_and_line(tmp_path, out):
    bad = tmp_path / "bad.stm"
    bad.write_text("sample 1 A 0.0 1.0 hello\nsample 1 B 2.0 oops world\n")
    assert_clean_failure(invoke("compare", PYANNOTE_WAV, "--reference", bad, "--out", out), "bad.stm:2")


def test_unknown_reference_format(tmp_path, out):
    ref = tmp_path / "ref.docx"
    ref.write_text("x")
    assert_clean_failure(invoke("compare", PYANNOTE_WAV, "-r", ref, "--out", out), "ref.docx", ".stm")


def test_unknown_recipe_lists_known(out):
    assert_clean_failure(invoke("compare", PYANNOTE_WAV, "--recipes", "nope", "--out", out), "nope", "cascade-fast")


def test_unknown_hardware_lists_rows(out):
    assert_clean_failure(invoke("compare", PYANNOTE_WAV, "--hardware", "abacus", "--out", out), "abacus", "aws-c7i.large")


def test_unknown_normalizer(out):
    assert_clean_failure(invoke("compare", PYANNOTE_WAV, "--normalizer", "shout", "--out", out), "shout", "whisper-english")


def test_invalid_recipe_file(tmp_path, out):
    recipe = tmp_path / "mine.toml"
    recipe.write_text('pipeline = "cascade"\n[asr]\nbackend = "faster-whisper"\nbeam = 3\n')
    assert_clean_failure(invoke("run", recipe, PYANNOTE_WAV, "--out", out), "mine.toml", "beam_size")


def test_recipes_lists_availability(tmp_path, monkeypatch):
    extra = tmp_path / "recipes"
    extra.mkdir()
    (extra / "big.toml").write_text('pipeline = "cascade"\n[asr]\nbackend = "faster-whisper"\nmodel = "large-v3"\n')
    monkeypatch.setenv("WORKBENCH_RECIPES", str(extra))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COLUMNS", "200")
    result = invoke("recipes")
    assert result.exit_code == 0, result.output
    for name in ("cascade", "cascade-fast", "whisper-raw", "big"):
        assert name in result.output
    assert "large-v3" in result.output and "download" in result.output
    assert result.output.count("yes") >= 3


def test_reference_files_exist_for_docs():
    assert PYANNOTE_STM.exists()


@pytest.mark.parametrize("args, message", [
    (["--port", "0"], "--port must be 1–65535"),
    (["--max-upload-mb", "0"], "must be at least 1"),
    (["--hardware", "no-such-machine"], "no-such-machine"),
])
def test_dashboard_refuses_bad_settings_before_starting(args, message):
    result = runner.invoke(app, ["dashboard", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_dashboard_command_is_headless_local_and_hides_tracebacks():
    from workbench.dashboard import APP, command

    argv = command("127.0.0.1", 8765, 200)
    assert argv[1:4] == ["-m", "streamlit", "run"] and argv[4] == str(APP)
    options = dict(zip(argv[5::2], argv[6::2]))
    assert options["--server.address"] == "127.0.0.1" and options["--server.port"] == "8765"
    assert options["--server.maxUploadSize"] == "200" and options["--client.showErrorDetails"] == "none"
    assert options["--browser.gatherUsageStats"] == "false" and options["--server.headless"] == "true"


def test_the_same_recipe_under_two_names_runs_once(tmp_path, monkeypatch):
    from workbench.recipes import available_recipe_files

    copy = tmp_path / "recipes"
    copy.mkdir()
    (copy / "raw-copy.toml").write_text(available_recipe_files()["whisper-raw"].read_text())
    monkeypatch.setenv("WORKBENCH_RECIPES", str(copy))
    from workbench.session import prepare

    prepared = prepare(["whisper-raw", "raw-copy", "cascade-fast"])
    assert [r.name for r in prepared.recipes] == ["whisper-raw", "cascade-fast"]


def test_the_terminal_metric_table_shows_markup_in_cells_as_text():
    from rich.console import Console

    from workbench.cli import BEST, metric_grid

    grid = metric_grid(["metric", "[red]a[/]"], [["WER [b]x[/b]", BEST + "1.0 [i]"], ["note", "[link=http://x]y[/link]"]],
                       title="rec [bold]1[/]")
    console = Console(record=True, width=120)
    console.print(grid)
    text = console.export_text()
    for literal in ("[red]a[/]", "WER [b]x[/b]", "1.0 [i]", "[link=http://x]y[/link]", "rec [bold]1[/]"):
        assert literal in text
