"""Audio-LLM backends: one call with audio and a prompt returns text.

``transformers``: a local folder or hub id, dispatched to the model family's documented processor and prompt
format (see :mod:`workbench.audio_llm.families`). ``openai-compatible``: chat completions with an
``input_audio`` content part (base64 WAV) — what vLLM, OpenAI's audio models and Gemini's OpenAI-compatible
endpoint accept — or the ``/audio/transcriptions`` endpoint.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

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


class AudioLLMOptions(BackendOptions):
    task: Literal["transcript", "formatted"] = Field("formatted", description="what the prompt asks for")
    system_prompt: str = DEFAULT_SYSTEM
    prompt: str | None = Field(None, description="the user prompt; default: the task's template")
    summary_prompt: str = Field("", description='a second call per window for a summary; "" = none')
    max_new_tokens: int = Field(1024, ge=1)
    temperature: float = Field(0.0, ge=0, description="0 = deterministic (greedy) decoding")
    max_audio_s: float | None = Field(None, gt=0, description="per-call audio limit; default: the model family's")
    price: str | None = Field(None, description="API price-table row for cost (usage × price)")

    @property
    def user_prompt(self) -> str:
        return self.prompt or DEFAULT_PROMPTS[self.task]


class AudioLLMBackend(Backend):
    def max_audio_s(self) -> float:
        """How many seconds of audio one call accepts."""
        raise NotImplementedError

    def generate(self, samples: np.ndarray, system: str, prompt: str) -> Reply:
        raise NotImplementedError


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

    @classmethod
    def remote(cls, options: OpenAIAudioOptions) -> str | None:
        from workbench.backends.base import remote_server

        where = remote_server(options.base_url, options.base_url_env)
        return f"sends audio to {where}" if where else None

    def max_audio_s(self) -> float:
        o: OpenAIAudioOptions = self.options  # type: ignore[assignment]
        return o.max_audio_s or o.default_max_audio_s

    def load(self) -> None:
        from workbench.llm_client import make_client

        self._client = make_client(self.server)

    def unload(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None

    def request(self, samples: np.ndarray, system: str, prompt: str) -> dict:
        """The chat-completions request body (what is sent, minus the model and sampling settings)."""
        audio = base64.b64encode(wav_bytes(samples)).decode("ascii")
        return {
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": [
                    {"type": "text", "text": prompt},
                    {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
                ]},
            ]
        }

    def generate(self, samples: np.ndarray, system: str, prompt: str) -> Reply:
        from workbench.llm_client import chat, transcribe

        if self._client is None:
            self.load()
        o: OpenAIAudioOptions = self.options  # type: ignore[assignment]
        if o.endpoint == "transcriptions":
            reply = transcribe(self._client, self.server, wav_bytes(samples), prompt=prompt if o.prompt else None,
                               language=o.language)
        else:
            reply = chat(self._client, self.server, self.request(samples, system, prompt)["messages"],
                         max_tokens=o.max_new_tokens, temperature=o.temperature)
        return Reply(reply.text, reply.input_tokens, reply.output_tokens)

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

    def unload(self) -> None:
        self._runner = None

    def generate(self, samples: np.ndarray, system: str, prompt: str) -> Reply:
        if self._runner is None:
            self.load()
        o: TransformersAudioOptions = self.options  # type: ignore[assignment]
        return self._runner.generate(samples, system=system, prompt=prompt, task=o.task, language=o.language,
                                     max_new_tokens=o.max_new_tokens, temperature=o.temperature)

    def describe(self) -> dict:
        from workbench.audio_llm.families import family_for

        info = super().describe()
        try:
            info["family"] = family_for(self.options).name
        except Exception:  # noqa: BLE001 - describing must not fail
            pass
        return info
