"""The judge model behind :mod:`workbench.tasks.judge`: a judge file (TOML, configured like a formatter) → a
:class:`ModelJudge` that asks one of the formatter backends (``llama-cpp``, ``openai-compatible``,
``transformers``) and says who it is.

A judge file holds ``backend`` and that backend's options (validated by its pydantic ``Options``, unknown keys
are errors that list the valid ones), plus two optional keys read from the environment::

    backend = "openai-compatible"
    model = "gpt-4o-mini"
    base_url = "http://127.0.0.1:8080/v1"   # used when $JUDGE_BASE_URL is not set
    base_url_env = "JUDGE_BASE_URL"          # optional: a *_URL variable that overrides base_url
    model_env = "JUDGE_MODEL"                # optional: a variable that overrides model
    api_key_env = "JUDGE_API_KEY"            # the key is read from here, never stored
    max_tokens = 256
    temperature = 0.0

The identity stored with every judgement is ``<backend>:<model>@<host or path>``: the server's URL without
credentials (``llm_client.redact_url``) or the model file's path — never a key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tomllib
from pathlib import Path

from pydantic import ValidationError

from workbench.errors import BadInputError
from workbench.tasks.judge import JUDGE_MAX_TOKENS

log = logging.getLogger(__name__)

JUDGE_BACKENDS = ("llama-cpp", "openai-compatible", "transformers")
_ENV_KEYS = ("base_url_env", "model_env")
#: options that do not change a judge's replies (prompts of the formatting stage, transport), left out of its settings
_NOT_SETTINGS = frozenset({"system_prompt", "user_prompt", "summary_prompt", "summary_max_tokens", "chunk_tokens",
                           "max_output_ratio", "api_key_env", "timeout_s", "max_retries", "price", "threads",
                           "base_url", "model", "device"})


class ModelJudge:
    """A judge backed by a formatter backend: ``by`` (identity), ``settings`` (digest of the options that change
    its replies), ``remote`` (where it sends questions and answers, None for this machine), ``calls`` (model calls
    made). The model loads on the first call; use as a context manager (or ``close()``) to release it."""

    def __init__(self, backend, by: str, settings: str, remote: str | None = None, source: Path | None = None):
        self.backend = backend
        self.by = by
        self.settings = settings
        self.remote = remote
        self.source = source
        self.calls = 0

    def complete(self, system: str, user: str, max_tokens: int = JUDGE_MAX_TOKENS) -> str:
        from workbench.backends.formatter import Completion

        self.calls += 1
        reply = Completion(*self.backend.complete(system, user, self.backend.options.max_tokens or max_tokens))
        return reply.text

    def close(self) -> None:
        self.backend.unload()

    def __enter__(self) -> ModelJudge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _problems(exc: ValidationError, fields: list[str]) -> str:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(options)"
        if err["type"] == "extra_forbidden":
            out.append(f"unknown option {loc!r}; valid options: {', '.join(fields)}")
        else:
            out.append(f"option {loc!r}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(out)


def judge_identity(backend: str, options) -> str:
    """``<backend>:<model>@<host or path>`` (no credentials)."""
    from workbench.backends.formatter import resolve_gguf
    from workbench.llm_client import redact_url

    model = options.model
    if backend == "openai-compatible":
        where = redact_url(options.base_url).split("://", 1)[-1].rstrip("/")
    elif model == "smollm2" or model.endswith(".gguf") or (backend == "llama-cpp" and ":" not in model):
        where = resolve_gguf(model)
    else:
        where = str(Path(model).expanduser().resolve()) if Path(model).expanduser().is_dir() else "hub"
    return f"{backend}:{model}@{where}"


def judge_settings(options) -> str:
    """A digest of the options that change a judge's replies (temperature, seed, token cap, penalties …)."""
    kept = {k: v for k, v in options.model_dump(mode="json").items() if k not in _NOT_SETTINGS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:12]


def parse_judge(data: dict, where: str) -> ModelJudge:
    """A judge from a judge file's table (``where`` names it in errors). Raises BadInputError for a bad table and
    BackendUnavailable when the backend cannot run here. Loads nothing."""
    from workbench.backends.base import remote_server
    from workbench.backends.formatter import FORMATTER_BACKENDS
    from workbench.llm_client import check_url_env

    table = dict(data)
    name = table.pop("backend", None)
    if name not in JUDGE_BACKENDS:
        raise BadInputError(f"{where}: backend must be one of {', '.join(JUDGE_BACKENDS)} (got {name!r})")
    backend_cls = FORMATTER_BACKENDS.get(name)
    env = {k: table.pop(k) for k in _ENV_KEYS if k in table}
    for key, value in env.items():
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", value):
            raise BadInputError(f"{where}: {key} must name an environment variable (got {value!r})")
    if "base_url_env" in env:
        if name != "openai-compatible":
            raise BadInputError(f"{where}: base_url_env is for backend = \"openai-compatible\" only")
        try:
            check_url_env(env["base_url_env"])
        except ValueError as exc:
            raise BadInputError(f"{where}: base_url_env: {exc}") from None
        if os.environ.get(env["base_url_env"]):
            table["base_url"] = os.environ[env["base_url_env"]]
    if "model_env" in env and os.environ.get(env["model_env"]):
        table["model"] = os.environ[env["model_env"]]
    try:
        options = backend_cls.Options.model_validate(table)
    except ValidationError as exc:
        fields = sorted([*backend_cls.Options.model_fields, *_ENV_KEYS, "backend"])
        raise BadInputError(f"{where}: {_problems(exc, fields)}") from None
    backend_cls.check(options)
    remote = remote_server(options.base_url) if name == "openai-compatible" else None
    return ModelJudge(backend_cls(options), judge_identity(name, options), judge_settings(options), remote)


def load_judge(path: str | os.PathLike) -> ModelJudge:
    """The judge a judge file describes (see the module docstring). Raises BadInputError naming the file for a
    missing or malformed file, BackendUnavailable when its backend cannot run here. Loads no model."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise BadInputError(f"judge file {path} not found (see pipelines/judges/ for examples)") from None
    except IsADirectoryError:
        raise BadInputError(f"judge file {path} is a folder, not a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"{path}: not valid TOML: {exc}") from None
    judge = parse_judge(data, str(path))
    judge.source = path.resolve()
    return judge
