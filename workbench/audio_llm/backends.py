"""Audio-LLM backends: one call with audio and a prompt returns text.

``transformers``: a local folder or hub id, dispatched to the model family's documented processor and prompt
format (see :mod:`workbench.audio_llm.families`). ``openai-compatible``: chat completions with an
``input_audio`` content part (base64 WAV, FLAC or MP3) — what vLLM, OpenAI's audio models and Gemini's
OpenAI-compatible endpoint accept — or the ``/audio/transcriptions`` endpoint.

Limits every call respects (see the README, "The audio-LLM arm"):

- the output budget of a call follows its window's length (``output_tokens_per_s`` × seconds +
  ``output_tokens_margin``) unless ``max_new_tokens`` fixes it; a reply that stopped at the budget is reported
  (``finish_reason == "length"``) and becomes a coverage flag;
- an OpenAI-compatible request carries at most ``max_request_mb`` of (encoded) audio: the window length follows
  from it and from ``audio_format``.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import os
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from workbench.audio import SAMPLE_RATE
from workbench.audio_llm.prompts import DEFAULT_PROMPTS, DEFAULT_SYSTEM
from workbench.backends.base import Backend, BackendOptions
from workbench.errors import BackendUnavailable
from workbench.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    #: why generation stopped: "length" = at the output budget (the text may be cut short), "stop" = the model
    #: ended it; None = not reported
    finish_reason: str | None = None
    #: the output budget the call was given
    max_new_tokens: int | None = None

    @property
    def cut_at_cap(self) -> bool:
        return self.finish_reason == "length"


class AudioLLMOptions(BackendOptions):
    task: Literal["transcript", "formatted"] = Field("formatted", description="what the prompt asks for")
    system_prompt: str = DEFAULT_SYSTEM
    prompt: str | None = Field(None, description="the user prompt; default: the task's template")
    summary_prompt: str = Field("", description='a second call per window for a summary (always a chat call); "" = none')
    max_new_tokens: int | None = Field(
        None, ge=1, description="a fixed output budget per call; default: from the window's length "
                                "(output_tokens_per_s × seconds + output_tokens_margin)")
    output_tokens_per_s: float = Field(
        8.0, gt=0, description="output budget per second of audio (fast speech is ~3 words/s, ~4-5 tokens/s in "
                               "English; more in other languages and with speaker labels)")
    output_tokens_margin: int = Field(128, ge=0, description="output budget added to every call")
    summary_max_new_tokens: int = Field(512, ge=1, description="output budget of a summary call")
    temperature: float = Field(0.0, ge=0, description="0 = deterministic (greedy) decoding")
    max_audio_s: float | None = Field(None, gt=0, description="per-call audio limit; default: the model family's")
    long_audio: Literal["combine", "refuse"] = Field(
        "combine", description="questions about a recording longer than max_audio_s: ask each window, then one "
                               "text-only combining call (combine); or each question gets an error (refuse)")
    strip_wrappers: bool = Field(True, description='remove answer wrappers ("The speech said was: \'…\'") from '
                                                   "transcripts; the raw output stays in details.windows")
    wrapper_patterns: list[str] | None = Field(
        None, description="regular expressions (full match, a (?P<body>…) group) for strip_wrappers; default: "
                          "workbench/data/answer_wrappers.toml")
    price: str | None = Field(None, description="API price-table row for cost (usage × price)")

    @property
    def user_prompt(self) -> str:
        return self.prompt or DEFAULT_PROMPTS[self.task]

    def output_budget(self, seconds: float) -> int:
        """The output budget (new tokens) of a call on ``seconds`` of audio."""
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        return int(math.ceil(self.output_tokens_per_s * seconds)) + self.output_tokens_margin

    @field_validator("wrapper_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str] | None) -> list[str] | None:
        import re

        for pattern in patterns or ():
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"wrapper pattern {pattern!r} is not a regular expression: {exc}") from None
            if "body" not in compiled.groupindex:
                raise ValueError(f"wrapper pattern {pattern!r} has no (?P<body>...) group")
        return patterns


class AudioLLMBackend(Backend):
    def max_audio_s(self) -> float:
        """How many seconds of audio one call accepts."""
        raise NotImplementedError

    def generate(self, samples: np.ndarray, system: str, prompt: str, *, max_new_tokens: int | None = None,
                 summary: bool = False) -> Reply:
        """One call. ``max_new_tokens``: the output budget (default: from the audio's length). ``summary``: a
        summary call — always a chat call, never a transcription request."""
        raise NotImplementedError

    def generate_text(self, system: str, prompt: str, *, max_new_tokens: int) -> Reply:
        """One text-only call to the same model (no audio): combining the answers of a long recording's windows."""
        raise NotImplementedError

    def budget(self, samples: np.ndarray, max_new_tokens: int | None) -> int:
        return max_new_tokens if max_new_tokens is not None else self.options.output_budget(len(samples) / SAMPLE_RATE)


AUDIO_LLM_BACKENDS: Registry[AudioLLMBackend] = Registry("audio-LLM backend")


def wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM WAV in memory."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())
    return buf.getvalue()


#: bytes per second of audio each format sends (16 kHz mono): WAV is 16-bit PCM; FLAC is counted as WAV (it is
#: lossless, never much larger, often ~half); MP3 at MP3_BITRATE (with a little framing overhead)
MP3_BITRATE = 64000
AUDIO_BYTES_PER_S = {"wav": 2 * SAMPLE_RATE, "flac": 2 * SAMPLE_RATE, "mp3": MP3_BITRATE / 8 * 1.05}
AUDIO_MIME = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg"}


def encode_audio(samples: np.ndarray, fmt: str, rate: int = SAMPLE_RATE) -> bytes:
    """``samples`` as a WAV, FLAC or MP3 file in memory (FLAC and MP3 encoded with PyAV)."""
    if fmt == "wav":
        return wav_bytes(samples, rate)
    import av

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").reshape(1, -1)
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as container:
        stream = container.add_stream("flac" if fmt == "flac" else "libmp3lame", rate=rate, layout="mono")
        if fmt == "mp3":
            stream.bit_rate = MP3_BITRATE
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def family_audio_limit(model: str) -> float | None:
    """The per-call audio limit of the transformers family whose hub ids ``model`` looks like, if any."""
    from workbench.audio_llm.families import FAMILIES

    name = model.lower()
    for family in map(FAMILIES.get, FAMILIES.names()):
        if any(pattern in name for pattern in family.id_patterns):
            return family.max_audio_s
    return None


#: model names (lower case) whose servers refuse a system message next to audio: Voxtral's Tekken tokenizers
#: before v13 (the released checkpoints, as vLLM serves them) reject it
NO_SYSTEM_MESSAGE = ("voxtral",)


class OpenAIAudioOptions(AudioLLMOptions):
    base_url: str = Field("https://api.openai.com/v1", description="the server's /v1 URL (vLLM: http://HOST:8000/v1)")
    model: str = Field("gpt-4o-audio-preview", description="model name the server knows")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the key (never stored); *_API_KEY or *_TOKEN")
    base_url_env: str | None = Field(None, description="environment variable that overrides base_url, if set; *_URL")
    endpoint: Literal["chat", "transcriptions"] = "chat"
    language: str | None = Field(None, description="transcriptions endpoint: ISO language hint")
    timeout_s: float = Field(300.0, gt=0)
    max_retries: int = Field(3, ge=0)
    default_max_audio_s: float = Field(1500.0, gt=0, description="used when max_audio_s is not set")
    max_request_mb: float = Field(
        15.0, gt=0, description="most audio one request carries, in MB (10^6 bytes) as sent (base64 for chat); the "
                                "window length follows from it. Gemini's inline limit is ~20 MB, OpenAI's upload "
                                "limit 25 MiB; a proxy in front of vLLM may allow less")
    audio_format: Literal["wav", "flac", "mp3"] = Field(
        "wav", description="how the audio is sent: wav (16-bit PCM), flac (lossless, smaller), mp3 (64 kbit/s, "
                           "lossy, 4x longer windows); OpenAI's chat input_audio accepts wav and mp3 only")
    system_message: bool | None = Field(
        None, description="send system_prompt as a system message; false: it opens the user prompt instead; "
                          "default: by model (not for Voxtral, which rejects a system message next to audio)")
    summary_model: str | None = Field(
        None, description="chat model for summary_prompt (default: model); needed with endpoint = transcriptions")

    @field_validator("api_key_env")
    @classmethod
    def _key_like(cls, name: str) -> str:
        from workbench.llm_client import check_key_env

        return check_key_env(name)

    @field_validator("base_url_env")
    @classmethod
    def _url_like(cls, name: str | None) -> str | None:
        from workbench.llm_client import check_url_env

        return check_url_env(name)

    @model_validator(mode="after")
    def _summary_needs_a_chat_model(self):
        if self.summary_prompt and self.endpoint == "transcriptions" and not self.summary_model:
            raise ValueError('summary_prompt with endpoint = "transcriptions" needs summary_model = a chat model on '
                             'the same server (the transcriptions endpoint only transcribes; e.g. summary_model = '
                             '"gpt-4o-audio-preview")')
        return self

    @property
    def sends_system_message(self) -> bool:
        if self.system_message is not None:
            return self.system_message
        return not any(name in self.model.lower() for name in NO_SYSTEM_MESSAGE)

    def request_limit_s(self) -> float:
        """Seconds of audio that fit in ``max_request_mb`` in ``audio_format`` (chat: base64, 4/3 larger), less
        2 % for the prompt and the JSON around it."""
        per_s = AUDIO_BYTES_PER_S[self.audio_format] * (4 / 3 if self.endpoint == "chat" else 1)
        return math.floor(self.max_request_mb * 1e6 * 0.98 / per_s)


@AUDIO_LLM_BACKENDS.register("openai-compatible")
class OpenAIAudio(AudioLLMBackend):
    Options = OpenAIAudioOptions
    api = True
    requires = (("openai", "openai"),)

    def __init__(self, options: OpenAIAudioOptions):
        super().__init__(options)
        self._client = None

    @property
    def server(self):
        from workbench.llm_client import ServerConfig

        o: OpenAIAudioOptions = self.options  # type: ignore[assignment]
        base_url = (os.environ.get(o.base_url_env) if o.base_url_env else None) or o.base_url
        return ServerConfig(base_url, o.model, o.api_key_env, o.timeout_s, o.max_retries)

    @classmethod
    def check(cls, options: OpenAIAudioOptions) -> None:
        super().check(options)
        if options.base_url_env and not os.environ.get(options.base_url_env) and "api.openai.com" not in options.base_url:
            raise BackendUnavailable(f"${options.base_url_env} is not set (the server's /v1 URL)",
                                     f"export {options.base_url_env}=http://HOST:PORT/v1")
        needs_key = "api.openai.com" in options.base_url or "googleapis.com" in options.base_url
        if needs_key and not os.environ.get(options.api_key_env) and not (options.base_url_env and os.environ.get(options.base_url_env)):
            raise BackendUnavailable(f"no API key: ${options.api_key_env} is not set",
                                     f"export {options.api_key_env}=... (the key is read at run time, never stored)")
        base_url = (os.environ.get(options.base_url_env) if options.base_url_env else None) or options.base_url
        if options.endpoint == "chat" and options.audio_format == "flac" and "api.openai.com" in base_url:
            raise BackendUnavailable("OpenAI's chat input_audio accepts wav and mp3, not flac",
                                     'set audio_format = "mp3" (or "wav") in the recipe')

    @classmethod
    def remote(cls, options: OpenAIAudioOptions) -> str | None:
        from workbench.backends.base import remote_server

        where = remote_server(options.base_url, options.base_url_env)
        return f"sends audio to {where}" if where else None

    def max_audio_s(self) -> float:
        """The recipe's per-call limit — else the limit of the model family the served model's name belongs to
        (vLLM serving Qwen2-Audio hears only the first 30 s of a call, and answers 200), else the default — and
        never more than fits in ``max_request_mb``."""
        o: OpenAIAudioOptions = self.options  # type: ignore[assignment]
        return min(o.max_audio_s or family_audio_limit(o.model) or o.default_max_audio_s, o.request_limit_s())

    def load(self) -> None:
        from workbench.llm_client import make_client

        self._client = make_client(self.server)

    def unload(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None

    def request(self, samples: np.ndarray, system: str, prompt: str, audio: bytes | None = None) -> dict:
        """The chat-completions request body (what is sent, minus the model and sampling settings). The system
        prompt is a system message, or opens the user prompt where the model refuses system messages."""
        o: OpenAIAudioOptions = self.options  # type: ignore[assignment]
        data = base64.b64encode(audio if audio is not None else encode_audio(samples, o.audio_format)).decode("ascii")
        text = prompt if (o.sends_system_message or not system) else f"{system}\n\n{prompt}"
        messages = [{"role": "user", "content": [
            {"type": "text", "text": text},
            {"type": "input_audio", "input_audio": {"data": data, "format": o.audio_format}},
        ]}]
        if o.sends_system_message and system:
            messages.insert(0, {"role": "system", "content": system})
        return {"messages": messages}

    def _too_large(self, exc, audio: bytes, seconds: float):
        """A 413 from the server, as a line naming the request's size, the limit applied and the settings."""
        from workbench.llm_client import LLMRequestError

        o: OpenAIAudioOptions = self.options  # type: ignore[assignment]
        sent = len(audio) * (4 / 3 if o.endpoint == "chat" else 1) / 1e6
        return LLMRequestError(
            f"{self.server.shown_url}: the server refused a request as too large (413): it carried {sent:.1f} MB of "
            f"{o.audio_format} audio ({seconds:.0f} s), within this recipe's max_request_mb = {o.max_request_mb:g}; "
            f"the server allows less: lower max_request_mb in the recipe (or max_audio_s), or send compressed audio "
            f'(audio_format = "mp3"{"" if "api.openai.com" in self.server.base_url else " or flac"}). '
            f"Server said: {str(exc).rsplit(': ', 1)[-1][:200]}", transient=False)

    def generate(self, samples: np.ndarray, system: str, prompt: str, *, max_new_tokens: int | None = None,
                 summary: bool = False) -> Reply:
        from workbench.llm_client import LLMRequestError, ServerConfig, chat, transcribe

        if self._client is None:
            self.load()
        o: OpenAIAudioOptions = self.options  # type: ignore[assignment]
        budget = self.budget(samples, max_new_tokens)
        audio = encode_audio(samples, o.audio_format)
        server = self.server
        try:
            if o.endpoint == "transcriptions" and not summary:
                reply = transcribe(self._client, server, audio, prompt=prompt if o.prompt else None,
                                   language=o.language, filename=f"audio.{o.audio_format}",
                                   content_type=AUDIO_MIME[o.audio_format])
            else:
                if summary and o.summary_model:
                    server = ServerConfig(server.base_url, o.summary_model, server.api_key_env, server.timeout_s,
                                          server.max_retries)
                reply = chat(self._client, server, self.request(samples, system, prompt, audio)["messages"],
                             max_tokens=budget, temperature=o.temperature)
        except LLMRequestError as exc:
            if getattr(exc, "status", None) == 413:
                raise self._too_large(exc, audio, len(samples) / SAMPLE_RATE) from None
            raise
        return Reply(reply.text, reply.input_tokens, reply.output_tokens, reply.finish_reason,
                     budget if (o.endpoint == "chat" or summary) else None)

    def generate_text(self, system: str, prompt: str, *, max_new_tokens: int) -> Reply:
        """A chat call without an audio part (with endpoint = transcriptions: to ``summary_model``)."""
        from workbench.llm_client import ServerConfig, chat

        if self._client is None:
            self.load()
        o: OpenAIAudioOptions = self.options  # type: ignore[assignment]
        server = self.server
        if o.endpoint == "transcriptions" and o.summary_model:
            server = ServerConfig(server.base_url, o.summary_model, server.api_key_env, server.timeout_s,
                                  server.max_retries)
        text = prompt if (o.sends_system_message or not system) else f"{system}\n\n{prompt}"
        messages = [{"role": "user", "content": text}]
        if o.sends_system_message and system:
            messages.insert(0, {"role": "system", "content": system})
        reply = chat(self._client, server, messages, max_tokens=max_new_tokens, temperature=o.temperature)
        return Reply(reply.text, reply.input_tokens, reply.output_tokens, reply.finish_reason, max_new_tokens)

    def describe(self) -> dict:
        info = super().describe()
        info["base_url"] = self.server.shown_url
        return info


class TransformersAudioOptions(AudioLLMOptions):
    model: str = Field(..., description="hub id or local folder")
    family: str = Field("auto", description="auto = from the model's config (model_type)")
    device: str = Field("auto", description="auto = CUDA when present, else CPU")
    dtype: str = Field("auto", description="auto = bfloat16 on CUDA, float32 on CPU")
    language: str | None = Field(None, description="Voxtral transcription requests: language code")
    prompt_format: Literal["auto", "chat", "base"] = Field(
        "auto", description="Qwen2-Audio: chat = the Instruct chat template, base = the pretrained (base) "
                            "checkpoint's plain prompt; auto = from the checkpoint (name, chat template)")


@AUDIO_LLM_BACKENDS.register("transformers")
class TransformersAudio(AudioLLMBackend):
    Options = TransformersAudioOptions
    requires = (("transformers", "transformers"), ("torch", "torch"))

    def __init__(self, options: TransformersAudioOptions):
        super().__init__(options)
        self._runner = None

    @classmethod
    def check(cls, options: TransformersAudioOptions) -> None:
        super().check(options)
        from workbench.audio_llm.families import family_for

        folder = Path(options.model).expanduser()
        if folder.is_dir():
            if not (folder / "config.json").is_file():
                raise BackendUnavailable(f"{folder} has no config.json", "point model at a transformers model folder")
        else:
            from workbench.model_sources import hub_cached, hub_download_blocked

            if not hub_cached(options.model) and (blocked := hub_download_blocked()):
                raise BackendUnavailable(
                    f"audio-LLM weights {options.model!r} are not here (no local folder, not in the hub cache; "
                    f"{blocked})",
                    f"download them where the hub is reachable (huggingface-cli download {options.model} --local-dir DIR) "
                    "and set model to DIR, or run where the hub is reachable (without HF_HUB_OFFLINE)",
                )
        family_for(options).check()

    @classmethod
    def downloads(cls, options: TransformersAudioOptions) -> str | None:
        from workbench.model_sources import download_note, hub_cached

        if Path(options.model).expanduser().is_dir() or hub_cached(options.model):
            return None
        return download_note(options.model)

    def max_audio_s(self) -> float:
        """The family's limit, or a smaller one from the recipe (a larger one would be cut silently: the
        Qwen2-Audio processor, for one, truncates every input to 30 s)."""
        from workbench.audio_llm.families import family_for

        limit = family_for(self.options).max_audio_s
        requested = self.options.max_audio_s
        if requested and requested > limit:
            log.warning("max_audio_s %.0f is above the %s family's %.0f s per call: using %.0f s",
                        requested, family_for(self.options).name, limit, limit)
        return min(requested or limit, limit)

    def load(self) -> None:
        import torch

        from workbench.audio_llm.families import family_for

        o: TransformersAudioOptions = self.options  # type: ignore[assignment]
        device = o.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = o.dtype
        if dtype == "auto":
            dtype = "bfloat16" if device == "cuda" else "float32"
        family = family_for(o)
        family.check()
        self._runner = family.load(os.path.expanduser(o.model), device=device, dtype=getattr(torch, dtype))
        if o.prompt_format != "auto":
            if not hasattr(self._runner, "prompt_format"):
                from workbench.errors import BadInputError

                raise BadInputError(f"prompt_format = {o.prompt_format!r} applies to the qwen2-audio family only "
                                    f"(this model is {family.name}): remove it from the recipe")
            self._runner.prompt_format = o.prompt_format

    def unload(self) -> None:
        self._runner = None

    def generate(self, samples: np.ndarray, system: str, prompt: str, *, max_new_tokens: int | None = None,
                 summary: bool = False) -> Reply:
        if self._runner is None:
            self.load()
        o: TransformersAudioOptions = self.options  # type: ignore[assignment]
        budget = self.budget(samples, max_new_tokens)
        # a summary is a chat call: task "summary" is never a transcription request (Voxtral)
        reply = self._runner.generate(samples, system=system, prompt=prompt, task="summary" if summary else o.task,
                                      language=o.language, max_new_tokens=budget, temperature=o.temperature)
        return Reply(reply.text, reply.input_tokens, reply.output_tokens, getattr(reply, "finish_reason", None), budget)

    def generate_text(self, system: str, prompt: str, *, max_new_tokens: int) -> Reply:
        """A text-only call: the family's own ``generate_text`` where it has one, else the processor's chat
        template without an audio part (:func:`workbench.audio_llm.families.base.text_reply`)."""
        from workbench.audio_llm.families.base import text_reply

        if self._runner is None:
            self.load()
        o: TransformersAudioOptions = self.options  # type: ignore[assignment]
        own = getattr(self._runner, "generate_text", None)
        if own is not None:
            return own(system=system, prompt=prompt, max_new_tokens=max_new_tokens, temperature=o.temperature)
        return text_reply(self._runner.model, self._runner.processor, system=system, prompt=prompt,
                          max_new_tokens=max_new_tokens, temperature=o.temperature)

    def describe(self) -> dict:
        from workbench.audio_llm.families import family_for

        info = super().describe()
        try:
            info["family"] = family_for(self.options).name
        except Exception:  # noqa: BLE001 - describing must not fail
            pass
        return info
