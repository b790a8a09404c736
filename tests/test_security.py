"""Secrets stay where they belong: which variables a recipe may send as a key, over what transport, and that no
credential (from the key variable or inside ``base_url``) reaches results, summaries, reports, error text or a
traceback. The compare runs use the scripted peer (tests/fake_llm_server.py) on 127.0.0.1: fast, no models."""

from __future__ import annotations

import json
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest
import fake_llm_server
from conftest import MEETING_STM, MEETING_WAV
from server_helpers import SECRET, assert_no_secret, error_texts, free_port, stop
from typer.testing import CliRunner

from workbench.errors import RecipeError
from workbench.llm_client import LLMRequestError, ServerConfig, make_client, redact, redact_url
from workbench.recipes import load_recipe_file

URL_PASSWORD = "urlPASSWORD-24680"
URL_QUERY_KEY = "queryKEY-13579"


@pytest.fixture
def fake_server():
    procs: list[subprocess.Popen] = []

    def start(mode: str) -> int:
        proc = subprocess.Popen([sys.executable, fake_llm_server.__file__, "--port", "0", "--mode", mode],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        line = proc.stdout.readline() if ready else ""
        assert line.startswith("listening on "), line
        return int(line.split()[-1])

    yield start
    for proc in procs:
        stop(proc)
        proc.stdout.close()
        proc.stderr.close()


def audio_recipe(folder: Path, name: str, **options) -> Path:
    folder.mkdir(exist_ok=True)
    options = {"backend": "openai-compatible", "model": "fake-audio", "max_audio_s": 30, "timeout_s": 10,
               "max_retries": 0, **options}
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items())
    path = folder / f"{name}.toml"
    path.write_text(f'name = "{name}"\npipeline = "audio-llm"\n[model]\n{lines}')
    return path


def formatter_recipe(folder: Path, name: str, **options) -> Path:
    folder.mkdir(exist_ok=True)
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in {"backend": "openai-compatible", **options}.items())
    path = folder / f"{name}.toml"
    path.write_text(f'pipeline = "cascade"\n[vad]\nbackend = "silero"\n[asr]\nbackend = "faster-whisper"\n'
                    f'model = "tiny.en"\n[formatter]\n{lines}')
    return path


# --- which variables a recipe may name -------------------------------------------------------------------


@pytest.mark.parametrize("write", [audio_recipe, formatter_recipe])
@pytest.mark.parametrize("variable", ["AWS_SECRET_ACCESS_KEY", "HOME", "DATABASE_PASSWORD", "GITHUB_TOKEN_FILE"])
def test_a_recipe_naming_a_non_key_variable_is_refused_with_the_file_and_the_rule(tmp_path, write, variable):
    path = write(tmp_path, "steal", api_key_env=variable)
    with pytest.raises(RecipeError) as err:
        load_recipe_file(path)
    message = str(err.value)
    assert str(path) in message and variable in message
    assert "*_API_KEY or *_TOKEN" in message and "\n" not in message


@pytest.mark.parametrize("variable", ["OPENAI_API_KEY", "HF_TOKEN", "GEMINI_API_KEY", "MY_SERVER_TOKEN"])
def test_key_like_variables_are_accepted(tmp_path, variable):
    assert load_recipe_file(audio_recipe(tmp_path, "ok", api_key_env=variable)).stages


def test_base_url_env_must_name_a_url_variable(tmp_path):
    """Its value becomes base_url, which results store: it must not be a secret's variable."""
    path = audio_recipe(tmp_path, "steal-url", base_url_env="AWS_SECRET_ACCESS_KEY")
    with pytest.raises(RecipeError, match=r"\*_URL"):
        load_recipe_file(path)
    assert load_recipe_file(audio_recipe(tmp_path, "ok", base_url_env="MY_VLLM_URL")).stages


def test_every_shipped_recipe_still_loads():
    shipped = Path(__file__).resolve().parents[1] / "pipelines"
    for path in sorted(shipped.glob("*.toml")):
        load_recipe_file(path)


def test_a_recipe_records_the_resolved_file_it_came_from(tmp_path, monkeypatch):
    audio_recipe(tmp_path / "mine", "here", base_url="http://127.0.0.1:1/v1")
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe_file(Path("mine") / "here.toml")
    assert recipe.path == str((tmp_path / "mine" / "here.toml").resolve())


# --- transport ---------------------------------------------------------------------------------------------


def test_a_key_is_not_sent_over_plain_http_to_another_machine(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with pytest.raises(LLMRequestError) as err:
        make_client(ServerConfig("http://10.1.2.3:8000/v1", "m"))
    message = str(err.value)
    assert "plain http" in message and "https://" in message and "$OPENAI_API_KEY" in message
    assert "\n" not in message
    assert_no_secret(*error_texts(err.value))


def test_a_key_inside_the_url_is_not_sent_over_plain_http_either(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMRequestError, match="plain http") as err:
        make_client(ServerConfig(f"http://bob:{URL_PASSWORD}@vllm.internal:8000/v1", "m"))
    assert URL_PASSWORD not in str(err.value)


@pytest.mark.parametrize("url,key", [
    ("http://127.0.0.1:8000/v1", SECRET),  # loopback: the key does not leave the machine
    ("http://localhost:11434/v1", SECRET),
    ("http://[::1]:8000/v1", SECRET),
    ("https://api.example.com/v1", SECRET),  # encrypted
    ("http://vllm.internal:8000/v1", ""),  # no key sent (set but empty counts as not set)
    ("http://vllm.internal:8000/v1", None),
])
def test_allowed_transports(monkeypatch, url, key):
    if key is None:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    else:
        monkeypatch.setenv("OPENAI_API_KEY", key)
    make_client(ServerConfig(url, "m")).close()


# --- credentials inside base_url ---------------------------------------------------------------------------


@pytest.mark.parametrize("url,shown", [
    (f"https://bob:{URL_PASSWORD}@api.example.com/v1", "https://***@api.example.com/v1"),
    (f"http://{URL_PASSWORD}@127.0.0.1:8000/v1", "http://***@127.0.0.1:8000/v1"),
    (f"https://api.example.com/v1?key={URL_QUERY_KEY}", "https://api.example.com/v1?key=***"),
    (f"https://h/v1?api-version=2024-02-01&api_key={URL_QUERY_KEY}", "https://h/v1?api-version=2024-02-01&api_key=***"),
    (f"https://h/v1?token={URL_QUERY_KEY}&x=1", "https://h/v1?token=***&x=1"),
    (f"https://h/v1#{URL_QUERY_KEY}", "https://h/v1"),
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
])
def test_redact_url_strips_credentials(url, shown):
    assert redact_url(url) == shown


def test_redact_removes_url_credentials_from_any_text(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    url = f"https://bob:{URL_PASSWORD}@h.example/v1?key={URL_QUERY_KEY}"
    text = redact(f"GET {url}/chat failed; user bob pass {URL_PASSWORD} key {URL_QUERY_KEY} bearer {SECRET}",
                  ServerConfig(url, "m"))
    for secret in (URL_PASSWORD, URL_QUERY_KEY, SECRET):
        assert secret not in text


def assert_nothing_secret(*texts: str) -> None:
    assert_no_secret(*texts)
    for text in texts:
        assert URL_PASSWORD not in text and URL_QUERY_KEY not in text, text[:2000]


def test_no_credential_reaches_results_summary_reports_or_errors(fake_server, tmp_path, monkeypatch):
    """A working recipe with a password in its URL, one whose URL carries a key in the query (its server is down:
    an error message naming the URL), and one refused for plain http to another host: nothing secret
    anywhere, the refused recipe fails with the one line and the others still run."""
    from workbench.cli import app

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    port = fake_server("audio")
    recipes = tmp_path / "recipes"
    monkeypatch.setenv("WORKBENCH_RECIPES", str(recipes))
    audio_recipe(recipes, "oa-userinfo", base_url=f"http://bob:{URL_PASSWORD}@127.0.0.1:{port}/v1")
    audio_recipe(recipes, "oa-query", base_url=f"http://127.0.0.1:{free_port()}/v1?api_key={URL_QUERY_KEY}")
    audio_recipe(recipes, "oa-remote-http", base_url="http://192.0.2.10:8000/v1")  # TEST-NET: never contacted

    result = CliRunner().invoke(app, ["compare", str(MEETING_WAV), "-r", str(MEETING_STM), "--recipes",
                                      "oa-userinfo,oa-query,oa-remote-http", "--out", str(tmp_path / "reports")])
    assert result.exit_code == 0, result.output
    [run_dir] = (tmp_path / "reports").iterdir()
    raw = (run_dir / "results.jsonl").read_text()
    rows = {r["recipe"]: r for r in map(json.loads, raw.splitlines())}
    assert rows["oa-userinfo"]["error"] is None, rows["oa-userinfo"]["error"]
    assert rows["oa-userinfo"]["components"]["model"]["base_url"] == f"http://***@127.0.0.1:{port}/v1"
    assert rows["oa-userinfo"]["recipe_path"] == str((recipes / "oa-userinfo.toml").resolve())
    assert rows["oa-query"]["error"] and "api_key=***" in rows["oa-query"]["error"]
    refused = rows["oa-remote-http"]["error"]
    assert refused and "plain http" in refused and "https://" in refused
    summary = (run_dir / "summary.md").read_text()
    assert str((recipes / "oa-userinfo.toml").resolve()) in re.sub(r"\\(.)", r"\1", summary)  # provenance: where each recipe came from

    reports = tmp_path / "report-files"
    report = CliRunner().invoke(app, ["report", str(run_dir / "results.jsonl"), "--out", str(reports)])
    assert report.exit_code == 0, report.output
    written = [p.read_text(errors="replace") for p in reports.iterdir() if p.is_file()]
    assert written
    assert_nothing_secret(raw, summary, result.output, report.output, *written)


# --- tracebacks ---------------------------------------------------------------------------------------------


def crash_output(*, force_show_locals: bool = False) -> str:
    """What a user sees when ``workbench recipes`` hits an unexpected error in a function holding a secret
    (Typer's pretty traceback, as in a terminal)."""
    import os

    code = (
        "import sys, workbench.recipes as r, workbench.cli as cli\n"
        "def broken():\n"
        f"    local_secret = {SECRET!r}\n"
        "    raise RuntimeError('unexpected')\n"
        "r.available_recipe_files = broken\n"
        + ("cli.app.pretty_exceptions_show_locals = True\n" if force_show_locals else "")
        + "sys.argv = ['workbench', 'recipes']\n"
        "cli.main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "_TYPER_STANDARD_TRACEBACK"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**env, "COLUMNS": "200", "NO_COLOR": "1"})
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "RuntimeError" in output and "unexpected" in output, output
    return output


def test_an_unexpected_error_does_not_print_local_variables():
    assert SECRET in crash_output(force_show_locals=True)  # the check works: a locals dump would show it
    assert_no_secret(crash_output())


def test_recipes_listing_shows_where_each_recipe_was_loaded_from(tmp_path, monkeypatch):
    from rich.console import Console

    import workbench.cli as cli

    recipes = tmp_path / "r"
    audio_recipe(recipes, "here", base_url="http://127.0.0.1:1/v1")
    monkeypatch.setenv("WORKBENCH_RECIPES", str(recipes))
    monkeypatch.setattr(cli, "out", Console(width=1000))
    result = CliRunner().invoke(cli.app, ["recipes"])
    assert str((recipes / "here.toml").resolve()) in result.output
