"""The audio-LLM arm on real checkpoints and real servers (issue 14): output budgets that follow the window,
cut-short and truncated windows flagged in results.jsonl, the terminal table, summary.md and the HTML report,
request-size windows and compressed audio, 413 as one clear line, the summary as a chat call, no system message
where a model refuses one, Qwen2-Audio base vs Instruct prompts, answer wrappers stripped (raw output kept).

The servers are ``tests/fake_llm_server.py`` processes on 127.0.0.1, scripted to behave like real ones:
``audio-first-30s`` (vLLM serving Qwen2-Audio: 200, but only the first 30 s heard), ``audio-length``
(``finish_reason: "length"``), ``--max-bytes`` (413 above a payload size).
"""

from __future__ import annotations

import base64
import io
import json
import wave
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import fake_llm_server
from conftest import MEETING_WAV
from server_helpers import SECRET
from test_openai_audio import (  # noqa: F401  (fixtures)
    RATE,
    api_key,
    backend,
    body_of,
    fake_server,
    recipes_dir,
    tone,
    write_recipe,
)
from workbench.audio_llm.backends import (
    OpenAIAudio,
    OpenAIAudioOptions,
    Reply,
    TransformersAudio,
    TransformersAudioOptions,
)
from workbench.audio_llm.families.qwen2_audio import BASE_AUDIO, Qwen2AudioRunner, prompt_format
from workbench.audio_llm.prompts import DEFAULT_SYSTEM, strip_wrappers, wrapper_patterns
from workbench.errors import BackendUnavailable

# --------------------------------------------------------------------------------------------------
# Output budget per window
# --------------------------------------------------------------------------------------------------


def test_output_budget_follows_the_windows_length():
    o = OpenAIAudioOptions()
    assert o.output_budget(30) == 8 * 30 + 128
    assert o.output_budget(600) == 8 * 600 + 128  # a 600 s window is no longer capped at 1,024 tokens
    assert OpenAIAudioOptions(output_tokens_per_s=4, output_tokens_margin=0).output_budget(100.2) == 401
    assert OpenAIAudioOptions(max_new_tokens=77).output_budget(600) == 77  # a fixed budget, when the recipe sets one


def test_the_request_asks_for_the_windows_budget(fake_server, api_key):
    server = fake_server("audio")
    b = backend(server.base_url)
    try:
        reply = b.generate(tone(2.5), DEFAULT_SYSTEM, "Transcribe.")
        assert json.loads(body_of(server.last()))["max_tokens"] == 20 + 128
        b.generate(tone(60.0), DEFAULT_SYSTEM, "Transcribe.")
        assert json.loads(body_of(server.last()))["max_tokens"] == 480 + 128
    finally:
        b.unload()
    assert reply.max_new_tokens == 148 and reply.finish_reason == "stop" and not reply.cut_at_cap


def test_a_reply_at_the_servers_length_limit_is_cut_short(fake_server, api_key):
    server = fake_server("audio-length")
    b = backend(server.base_url)
    try:
        reply = b.generate(tone(2.0), DEFAULT_SYSTEM, "Transcribe.")
    finally:
        b.unload()
    assert reply.finish_reason == "length" and reply.cut_at_cap


def test_transformers_generation_that_fills_its_budget_is_cut_short():
    """generate_reply counts the new tokens: all of the budget used and no end token → "length"."""
    import torch

    from workbench.audio_llm.families.base import generate_reply

    class Inputs(dict):
        def to(self, device):
            return self

    class Model:
        device, dtype = "cpu", torch.float32

        def __init__(self, new_tokens):
            self.new_tokens = new_tokens
            self.generation_config = type("G", (), {"eos_token_id": [7, 9]})()

        def generate(self, input_ids, max_new_tokens, **kw):
            return torch.cat([input_ids, torch.tensor([self.new_tokens[:max_new_tokens]])], dim=1)

    class Processor:
        def batch_decode(self, ids, **kw):
            return [" ".join(str(int(i)) for i in ids[0])]

    inputs = Inputs(input_ids=torch.tensor([[1, 2, 3]]))
    cut = generate_reply(Model([4, 5, 6, 8]), Processor(), inputs, max_new_tokens=4, temperature=0, family="t")
    assert (cut.finish_reason, cut.output_tokens, cut.max_new_tokens) == ("length", 4, 4)
    ended = generate_reply(Model([4, 5, 6, 9]), Processor(), inputs, max_new_tokens=4, temperature=0, family="t")
    assert ended.finish_reason == "stop"  # its last token ends generation: complete, though at the budget
    short = generate_reply(Model([4, 9]), Processor(), inputs, max_new_tokens=4, temperature=0, family="t")
    assert short.finish_reason == "stop" and short.output_tokens == 2


# --------------------------------------------------------------------------------------------------
# Request size and audio format
# --------------------------------------------------------------------------------------------------


def test_window_length_follows_max_request_mb_and_the_format():
    chat_wav = OpenAIAudioOptions(max_audio_s=600)
    assert chat_wav.request_limit_s() == 344  # 15 MB of base64 WAV (42.7 kB/s), 2 % kept for the rest
    assert OpenAIAudio(chat_wav).max_audio_s() == 344  # below the recipe's 600 s
    assert OpenAIAudio(OpenAIAudioOptions(max_audio_s=120)).max_audio_s() == 120
    assert OpenAIAudioOptions(max_request_mb=20, audio_format="mp3").request_limit_s() == 1750  # 64 kbit/s
    assert OpenAIAudioOptions(endpoint="transcriptions").request_limit_s() == 459  # a file upload: no base64


@pytest.mark.parametrize("model, limit", [
    ("Qwen/Qwen2-Audio-7B-Instruct", 30),  # what vLLM serving it hears of a call
    ("Qwen/Qwen2.5-Omni-7B", 300),
    ("gpt-4o-audio-preview", 344),  # no family: the request size decides
])
def test_a_served_models_family_limit_applies_when_the_recipe_sets_none(model, limit):
    assert OpenAIAudio(OpenAIAudioOptions(model=model)).max_audio_s() == limit
    assert OpenAIAudio(OpenAIAudioOptions(model=model, max_audio_s=20)).max_audio_s() == 20


def decode(data: bytes) -> np.ndarray:
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        assert stream.rate == RATE and stream.channels == 1
        return np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(stream)])


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_compressed_audio_is_sent_in_the_named_format(fake_server, api_key, fmt):
    server = fake_server("audio")
    samples = tone(3.0)
    b = backend(server.base_url, audio_format=fmt)
    try:
        b.generate(samples, DEFAULT_SYSTEM, "Transcribe.")
    finally:
        b.unload()
    body = json.loads(body_of(server.last()))
    [audio] = [p for p in body["messages"][-1]["content"] if p["type"] == "input_audio"]
    assert audio["input_audio"]["format"] == fmt
    data = base64.b64decode(audio["input_audio"]["data"])
    assert len(data) < len(samples) * 2  # smaller than the 16-bit PCM
    decoded = decode(data)
    if fmt == "flac":  # lossless: the same 16-bit samples
        assert np.array_equal(decoded.astype(np.int64), (samples * 32767).astype("<i2").astype(np.int64))
    else:  # the encoder's padding aside, the same length
        assert abs(len(decoded) - len(samples)) < 0.1 * RATE


def test_flac_to_openais_chat_endpoint_is_unavailable_with_the_fix(api_key):
    with pytest.raises(BackendUnavailable) as err:
        OpenAIAudio.check(OpenAIAudioOptions(audio_format="flac"))
    assert "flac" in err.value.reason and 'audio_format = "mp3"' in err.value.fix


# --------------------------------------------------------------------------------------------------
# System message, summary call, Qwen2-Audio prompt formats, answer wrappers
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model, system_message, sent", [
    ("mistralai/Voxtral-Mini-3B-2507", None, False),  # Voxtral refuses a system message next to audio
    ("gpt-4o-audio-preview", None, True),
    ("mistralai/Voxtral-Mini-3B-2507", True, True),
    ("gpt-4o-audio-preview", False, False),
])
def test_system_message_only_where_the_model_accepts_one(model, system_message, sent):
    b = OpenAIAudio(OpenAIAudioOptions(model=model, system_message=system_message))
    messages = b.request(tone(0.5), "SYSTEM TEXT", "PROMPT TEXT")["messages"]
    [text] = [p["text"] for p in messages[-1]["content"] if p["type"] == "text"]
    if sent:
        assert messages[0] == {"role": "system", "content": "SYSTEM TEXT"} and text == "PROMPT TEXT"
    else:
        assert [m["role"] for m in messages] == ["user"] and text == "SYSTEM TEXT\n\nPROMPT TEXT"


def test_the_summary_of_a_transcriptions_recipe_is_a_chat_call(fake_server, api_key):
    server = fake_server("audio")
    b = backend(server.base_url, endpoint="transcriptions", model="whisper-1", summary_prompt="Summarise.",
                summary_model="gpt-4o-audio-preview")
    try:
        b.generate(tone(2.0), DEFAULT_SYSTEM, "Transcribe.")
        summary = b.generate(tone(2.0), DEFAULT_SYSTEM, "Summarise.", max_new_tokens=64, summary=True)
    finally:
        b.unload()
    first, second = server.requests()
    assert first["path"] == "/v1/audio/transcriptions"
    assert second["path"] == "/v1/chat/completions"
    body = json.loads(body_of(second))
    assert body["model"] == "gpt-4o-audio-preview" and body["max_tokens"] == 64
    assert summary.max_new_tokens == 64


def test_a_transcriptions_recipe_with_a_summary_needs_a_chat_model():
    with pytest.raises(ValueError, match="summary_model"):
        OpenAIAudioOptions(endpoint="transcriptions", summary_prompt="Summarise.")


def test_a_transformers_summary_is_never_a_transcription_request():
    """Voxtral's runner sends a transcription request for task "transcript": the summary call says "summary"."""
    calls = []

    class Runner:
        def generate(self, samples, **kw):
            calls.append(kw)
            return Reply("text", 1, 1, "stop", kw["max_new_tokens"])

    b = TransformersAudio(TransformersAudioOptions(model="x", task="transcript"))
    b._runner = Runner()
    b.generate(tone(1.0), "s", "p")
    b.generate(tone(1.0), "s", "Summarise.", max_new_tokens=50, summary=True)
    assert [c["task"] for c in calls] == ["transcript", "summary"]
    assert [c["max_new_tokens"] for c in calls] == [8 + 128, 50]


class _Processor:
    def __init__(self, chat_template=None):
        self.chat_template = chat_template
        self.tokenizer = type("T", (), {"chat_template": None})()

    def apply_chat_template(self, conversation, **kw):
        return "CHAT:" + json.dumps(conversation)


@pytest.mark.parametrize("location, template, expected", [
    ("Qwen/Qwen2-Audio-7B-Instruct", None, "chat"),
    ("/models/qwen2-audio-7b-instruct", "{{ x }}", "chat"),
    ("Qwen/Qwen2-Audio-7B", "{{ x }}", "base"),  # the pretrained checkpoint, even if a template is present
    ("/models/Qwen2-Audio-7B/", None, "base"),
    ("/models/my-finetune", "{{ x }}", "chat"),
    ("/models/my-pretrain", None, "base"),
])
def test_qwen2_audio_prompt_format_from_the_checkpoint(location, template, expected):
    assert prompt_format(location, _Processor(template)) == expected


def test_qwen2_audio_base_prompt_is_the_audio_markers_and_the_task_prompt():
    base = Qwen2AudioRunner(None, _Processor(), "base")
    assert base.text(system="SYSTEM", prompt="Transcribe the audio.") == BASE_AUDIO + "Transcribe the audio."
    chat = Qwen2AudioRunner(None, _Processor("{{ x }}"), "chat")
    assert chat.text(system="SYSTEM", prompt="P").startswith("CHAT:") and "SYSTEM" in chat.text(system="SYSTEM", prompt="P")


def test_prompt_format_in_a_recipe_for_another_family_is_bad_input(monkeypatch):
    from workbench.audio_llm import families
    from workbench.errors import BadInputError

    class Fam:
        name = "voxtral"

        @staticmethod
        def check():
            pass

        @staticmethod
        def load(location, *, device, dtype):
            return object()

    monkeypatch.setattr(families, "family_for", lambda options: Fam)
    b = TransformersAudio(TransformersAudioOptions(model="x", prompt_format="base", device="cpu", dtype="float32"))
    with pytest.raises(BadInputError, match="prompt_format"):
        b.load()


@pytest.mark.parametrize("raw, stripped", [
    ("The speech said was: 'so we meet on Tuesday'", "so we meet on Tuesday"),
    ("The original content of this audio is: 'I think we should go.'", "I think we should go."),
    ('The transcription is: "good morning".', "good morning"),
    ("Sure! Here is the transcript:\n\nSpeaker 1: hi\n\nSpeaker 2: hello", "Speaker 1: hi\n\nSpeaker 2: hello"),
    ("Speaker 1: the speech is: fine", "Speaker 1: the speech is: fine"),  # a transcript, left alone
    ("Speaker: hello", "Speaker: hello"),
    ("plain words", "plain words"),
])
def test_answer_wrappers_are_stripped(raw, stripped):
    assert strip_wrappers(raw, wrapper_patterns()) == stripped


def test_wrapper_patterns_need_a_body_group():
    with pytest.raises(ValueError, match="body"):
        OpenAIAudioOptions(wrapper_patterns=["The speech: (.*)"])
    assert strip_wrappers("Said: 'x y'", wrapper_patterns(["said: (?P<body>.*)"])) == "x y"


# --------------------------------------------------------------------------------------------------
# The three server behaviours, caught in results.jsonl, the terminal table, summary.md and report.html
# --------------------------------------------------------------------------------------------------


def compare_and_report(tmp_path: Path, recipes: str, audio: Path):
    from workbench.cli import app

    result = CliRunner().invoke(app, ["compare", str(audio), "--recipes", recipes, "--out", str(tmp_path / "reports")])
    [run_dir] = (tmp_path / "reports").iterdir()
    rows = {r["recipe"]: r for r in map(json.loads, (run_dir / "results.jsonl").read_text().splitlines())}
    report = CliRunner().invoke(app, ["report", str(run_dir / "results.jsonl"), "--format", "html", "--out",
                                      str(tmp_path / "html")])
    assert report.exit_code == 0, report.output
    return result, rows, (run_dir / "summary.md").read_text(), (tmp_path / "html" / "report.html").read_text()


def table_cell(output: str, label: str) -> str:
    [line] = [ln for ln in output.splitlines() if label in ln]
    return line


@pytest.fixture(scope="module")
def long_meeting(tmp_path_factory) -> Path:
    """The meeting three times over (~290 s): one window for a server that takes 300 s per call."""
    with wave.open(str(MEETING_WAV), "rb") as f:
        params, frames = f.getparams(), f.readframes(f.getnframes())
    path = tmp_path_factory.mktemp("audio") / "long-meeting.wav"
    with wave.open(str(path), "wb") as f:
        f.setparams(params)
        f.writeframes(frames * 3)
    return path


def test_a_server_that_hears_only_the_first_30_s_is_flagged(fake_server, api_key, recipes_dir, tmp_path, long_meeting):
    server = fake_server("audio-first-30s")
    write_recipe(recipes_dir, "vllm-qwen", server.base_url, max_audio_s=300)

    result, rows, summary, report = compare_and_report(tmp_path, "vllm-qwen", long_meeting)

    assert result.exit_code == 0, result.output
    r = rows["vllm-qwen"]
    assert r["error"] is None
    [window] = r["details"]["windows"]
    assert server.count() == 1
    assert window["words"] == 2 + fake_llm_server.WORDS_PER_S * fake_llm_server.HEARD_S  # "Speaker 1:" + 75 words
    assert window["flag"].startswith("short output") and window["speech_s"] > 150
    assert window["finish_reason"] == "stop"  # the server said nothing was wrong
    assert r["details"]["coverage_flags"] == 1
    assert table_cell(result.output, "coverage flags").rstrip(" │|").endswith("1")  # the terminal table
    assert "| coverage flags (windows with missing output) | 1 |" in summary
    assert "## Coverage flags" in summary and "short output" in summary
    assert "<h2>Coverage flags</h2>" in report and "short output" in report


def test_replies_that_stop_at_the_length_limit_are_flagged(fake_server, api_key, recipes_dir, tmp_path):
    server = fake_server("audio-length")
    write_recipe(recipes_dir, "cut", server.base_url)  # max_audio_s = 30: 4 windows of the 96 s meeting

    result, rows, summary, report = compare_and_report(tmp_path, "cut", MEETING_WAV)

    assert result.exit_code == 0, result.output
    r = rows["cut"]
    windows = r["details"]["windows"]
    assert len(windows) == 4 and r["details"]["coverage_flags"] == 4
    sent = [json.loads(body_of(q))["max_tokens"] for q in server.requests()]
    for w, max_tokens in zip(windows, sent):
        assert w["finish_reason"] == "length" and w["flag"].startswith("cut short")
        assert w["max_new_tokens"] == max_tokens == int(np.ceil(8 * (w["end"] - w["start"]))) + 128
        assert w["output_tokens"] == max_tokens
    assert table_cell(result.output, "coverage flags").rstrip(" │|").endswith("4")
    assert "| coverage flags (windows with missing output) | 4 |" in summary and "cut short" in summary
    assert report.count("cut short: the output stopped at the cap") == 4


def test_413_is_one_line_naming_the_limit_and_the_setting(fake_server, api_key, recipes_dir, tmp_path):
    server = fake_server("audio", "--max-bytes", "1000000")  # the server takes 1 MB; the recipe allows 2 MB
    write_recipe(recipes_dir, "big", server.base_url, max_audio_s=600, max_request_mb=2)

    result, rows, summary, report = compare_and_report(tmp_path, "big", MEETING_WAV)

    assert server.count() == 1  # permanent: not retried
    r = rows["big"]
    error = r["error"]
    assert error and "413" in error and "max_request_mb = 2" in error and "audio_format" in error
    assert "\n" not in error and "Traceback" not in error and SECRET not in error
    assert r["error_kind"] == "failed"
    assert "big failed" in result.output and "max_request_mb" in result.output  # the terminal
    assert "## Errors" in summary and "max\\_request\\_mb = 2" in summary  # Markdown-escaped
    assert "max_request_mb = 2" in report
