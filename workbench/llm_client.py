"""A chat-completions client for any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp's server …).

Built on the ``openai`` package: transient failures (refused or dropped connections, timeouts, 408/409/429,
5xx) are retried with exponential backoff by the client itself; permanent ones (other 4xx) are reported at
once with the server's own message. Every failure becomes one :class:`LLMRequestError` line that names the
server and what to do. The API key is read from the environment variable the recipe names and never stored,
logged or echoed.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)


class LLMRequestError(WorkbenchError):
    """A request to a model server failed; ``transient`` says whether retrying later may help; ``status`` is
    the HTTP status the server answered, when it answered."""

    def __init__(self, message: str, *, transient: bool, status: int | None = None):
        self.transient = transient
        self.status = status
        super().__init__(message)


KEY_ENV_RULE = "the variable holding a key must be named *_API_KEY or *_TOKEN (e.g. OPENAI_API_KEY, HF_TOKEN)"
URL_ENV_RULE = "the variable holding a server URL must be named *_URL (e.g. OPENAI_BASE_URL)"
_KEY_ENV = re.compile(r"[A-Za-z][A-Za-z0-9_]*_(API_KEY|TOKEN)")
_URL_ENV = re.compile(r"[A-Za-z][A-Za-z0-9_]*_URL")
# query parameters whose values are credentials (api_key=, key=, token=, access_token=, sig=, password= …)
_SECRET_PARAM = re.compile(r"key|token|secret|pass|pwd|sig|auth|cred|session", re.IGNORECASE)
REDACTED = "***"


def check_key_env(name: str) -> str:
    """``name`` if it may name a key variable (a recipe cannot turn e.g. AWS_SECRET_ACCESS_KEY into a Bearer token)."""
    if not _KEY_ENV.fullmatch(name):
        raise ValueError(f"{name!r} is not allowed: {KEY_ENV_RULE}")
    return name


def check_url_env(name: str | None) -> str | None:
    """``name`` if it may name a URL variable (the URL is stored in results, so it must not be a secret's)."""
    if name is not None and not _URL_ENV.fullmatch(name):
        raise ValueError(f"{name!r} is not allowed: {URL_ENV_RULE}")
    return name


def redact_url(url: str) -> str:
    """``url`` without the credentials it may carry: ``user:pass@`` and the values of key/token-like query
    parameters become ``***``; the fragment is dropped. What results, reports and messages show of a URL."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return REDACTED  # not a URL we can take apart: show nothing of it
    netloc = parts.netloc
    if "@" in netloc:
        host_part = f"[{host}]" if ":" in host else host
        netloc = f"{REDACTED}@{host_part}" + (f":{port}" if port is not None else "")
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if _SECRET_PARAM.search(k) and v else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def url_secrets(url: str) -> list[str]:
    """The credential pieces inside ``url`` (user, password, secret query values), longest first."""
    try:
        parts = urlsplit(url)
        found = [parts.username or "", parts.password or "", parts.fragment]
        found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if _SECRET_PARAM.search(k)]
    except ValueError:
        found = []
    if "@" in url:  # the raw userinfo as written (percent-encoded)
        found.append(url.split("://", 1)[-1].rsplit("@", 1)[0])
    return sorted({s for s in found if s}, key=len, reverse=True)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ChatReply:
    text: str
    input_tokens: int | None
    output_tokens: int | None
    finish_reason: str | None = None


@dataclass(frozen=True)
class ServerConfig:
    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 120.0
    max_retries: int = 3

    def api_key(self) -> str:
        # Local servers accept any key; the openai client insists on one being set.
        return os.environ.get(self.api_key_env) or "no-key"

    @property
    def shown_url(self) -> str:
        """The base URL as results and messages show it (credentials removed)."""
        return redact_url(self.base_url)

    def check_transport(self) -> None:
        """Refuse to send a key (from the variable or inside the URL) over plain http to another machine."""
        parts = urlsplit(self.base_url)
        sends_key = bool(os.environ.get(self.api_key_env)) or bool(url_secrets(self.base_url))
        if sends_key and parts.scheme.lower() == "http" and not is_loopback(parts.hostname):
            raise LLMRequestError(
                f"{self.shown_url}: refusing to send the key in ${self.api_key_env} (or in the URL) over plain http to "
                "another machine; use https:// (or unset the variable for a server that needs no key)", transient=False)


def make_client(config: ServerConfig):
    import openai

    config.check_transport()
    return openai.OpenAI(
        base_url=config.base_url, api_key=config.api_key(), timeout=config.timeout_s, max_retries=config.max_retries
    )


def _server_message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message") or err)
        return str(err)
    response = getattr(exc, "response", None)
    text = getattr(response, "text", "") if response is not None else ""
    return text or str(exc)


def redact(text: str, config: ServerConfig) -> str:
    """Remove the API key and any credentials inside the base URL from text that might echo them."""
    text = text.replace(config.base_url, config.shown_url)
    key = os.environ.get(config.api_key_env)
    for secret in ([key] if key else []) + url_secrets(config.base_url):
        if len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


@contextmanager
def mapped_errors(config: ServerConfig):
    """Turn any failure of a request to ``config``'s server into one :class:`LLMRequestError`."""
    import openai

    where = f"{config.shown_url} (model {config.model!r})"
    retries = f"after {config.max_retries} retr{'y' if config.max_retries == 1 else 'ies'}"
    try:
        yield
    except openai.APITimeoutError:
        raise LLMRequestError(
            f"{where}: no reply within {config.timeout_s:g} s ({retries}); the server is too slow or stuck — "
            "raise timeout_s in the recipe or use a smaller model", transient=True) from None
    except openai.APIConnectionError as exc:
        raise LLMRequestError(
            f"{where}: cannot connect ({retries}): {redact(str(exc.__cause__ or exc), config)}; "
            "is the server running and is base_url right?", transient=True) from None
    except openai.AuthenticationError as exc:
        raise LLMRequestError(
            f"{where}: authentication failed (401): {redact(_server_message(exc), config)[:500]}; "
            f"set a valid key in ${config.api_key_env}", transient=False) from None
    except openai.APIStatusError as exc:
        transient = exc.status_code in (408, 409, 429) or exc.status_code >= 500
        message = redact(_server_message(exc), config)[:500]
        suffix = f" ({retries})" if transient else ""
        raise LLMRequestError(f"{where}: the server answered {exc.status_code}{suffix}: {message}", transient=transient,
                              status=exc.status_code) from None
    except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError) as exc:
        raise LLMRequestError(f"{where}: malformed response (not the expected JSON): {redact(str(exc), config)[:300]}",
                              transient=False) from None


def _malformed(config: ServerConfig, what: str, response) -> LLMRequestError:
    return LLMRequestError(
        f"{config.shown_url} (model {config.model!r}): malformed response ({what}): {redact(str(response), config)[:300]}",
        transient=False)


def chat(client, config: ServerConfig, messages: list[dict], **params) -> ChatReply:
    """One chat completion; raises :class:`LLMRequestError` with an actionable message on failure."""
    with mapped_errors(config):
        response = client.chat.completions.create(model=config.model, messages=messages, **params)
    try:
        choice = response.choices[0]
        text = choice.message.content or ""
    except (AttributeError, IndexError, TypeError):
        raise _malformed(config, "no choices[0].message.content", response) from None
    usage = getattr(response, "usage", None)
    return ChatReply(
        text=text,
        input_tokens=getattr(usage, "prompt_tokens", None),
        output_tokens=getattr(usage, "completion_tokens", None),
        finish_reason=getattr(choice, "finish_reason", None),
    )


def transcribe(client, config: ServerConfig, wav: bytes, *, prompt: str | None = None, language: str | None = None,
               filename: str = "audio.wav", content_type: str = "audio/wav") -> ChatReply:
    """One request to the ``/audio/transcriptions`` endpoint (an audio file upload; WAV unless named otherwise)."""
    kwargs = {k: v for k, v in (("prompt", prompt), ("language", language)) if v}
    with mapped_errors(config):
        response = client.audio.transcriptions.create(model=config.model, file=(filename, wav, content_type),
                                                      response_format="json", **kwargs)
    text = getattr(response, "text", None)
    if not isinstance(text, str):
        raise _malformed(config, "no text", response)
    usage = getattr(response, "usage", None)
    return ChatReply(text, getattr(usage, "input_tokens", None), getattr(usage, "output_tokens", None))
