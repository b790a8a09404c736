"""The model catalogue: one row per audio-LLM in the field, open and closed, with the facts a deployment is
planned from (parameters, licence, per-call audio limit, audio tokens per second, weight memory) and how each
runs with this tool. Every fact names its source and the date it was read; a fact that could not be confirmed
is absent (shown as "—"), never guessed.

The rows live in ``workbench/data/models.toml``; users add or replace rows with their own file
(``--catalogue FILE`` or ``WORKBENCH_MODELS``, several joined with the path separator). A row with the id of a
shipped row replaces it whole. Rows are validated with pydantic at load: a malformed row is one error naming the
file, the row id and the field.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workbench.errors import BadInputError

log = logging.getLogger(__name__)

DEFAULT_CATALOGUE = Path(__file__).parent / "data" / "models.toml"
CATALOGUE_ENV = "WORKBENCH_MODELS"

PRECISIONS: dict[str, float] = {"bf16": 2.0, "int8": 1.0, "int4": 0.5}  # bytes per weight
RUNS = ("transformers", "server", "api", "not runnable yet")
RUNS_FILTERS = ("here", "transformers", "server", "api")
#: the facts of a row that must each name a source and a date when present
FACTS = ("parameters_b", "licence", "max_audio_s", "audio_tokens_per_s", "memory_bf16_gb", "memory_int8_gb",
         "memory_int4_gb")
COMPUTED = "computed"


class _Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, description="where the fact was read: the model card, the provider's docs")
    date: str = Field(min_length=1, description="the date it was read (YYYY-MM-DD)")
    note: str = ""


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    family: str = Field(min_length=1, description="the model family (Qwen2-Audio, Voxtral, Gemini …)")
    open_weights: bool
    runs: Literal["transformers", "server", "api", "not runnable yet"]
    server: bool = Field(False, description="an OpenAI-compatible server (vLLM) serves it too; needs sources.server")
    transformers_family: str | None = Field(None, description="runs = transformers: the family name in this tool")
    hub_id: str | None = None
    api_model: str | None = Field(None, description="the model name an API or server knows")
    base_url: str | None = Field(None, description="runs = api/server: the OpenAI-compatible /v1 URL")
    api_key_env: str | None = None
    endpoint: Literal["chat", "transcriptions"] = "chat"
    price: str | None = Field(None, description="an [api.\"ID\"] row of the price table")
    parameters_b: float | None = Field(None, gt=0)
    licence: str | None = Field(None, min_length=1)
    max_audio_s: float | None = Field(None, gt=0)
    audio_tokens_per_s: float | None = Field(None, gt=0)
    memory_bf16_gb: float | None = Field(None, gt=0)
    memory_int8_gb: float | None = Field(None, gt=0)
    memory_int4_gb: float | None = Field(None, gt=0)
    notes: str = ""
    sources: dict[str, _Source] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> "_Row":
        for fact in FACTS:
            if getattr(self, fact) is not None and fact not in self.sources:
                raise ValueError(f"{fact} has no entry in sources (every fact names its url and date)")
        for name in self.sources:
            if name not in FACTS and name not in ("runs", "server", "hub_id", "api_model"):
                raise ValueError(f"sources.{name} is not a fact of the row; facts: {', '.join(FACTS)}")
        if self.server and "server" not in self.sources:
            raise ValueError("server = true has no entry in sources (the server's supported-models page)")
        if self.server and not self.hub_id:
            raise ValueError("server = true needs hub_id (the model the server loads)")
        if self.runs == "transformers" and not self.hub_id:
            raise ValueError("runs = transformers needs hub_id")
        if self.runs == "server" and not (self.hub_id or self.api_model):
            raise ValueError("runs = server needs hub_id (the model the server loads)")
        if self.runs == "api" and not (self.api_model and self.base_url):
            raise ValueError("runs = api needs api_model and base_url")
        return self


@dataclass(frozen=True)
class Source:
    url: str
    date: str
    note: str = ""


@dataclass(frozen=True)
class ModelRow:
    """One catalogue row. Memory at each precision is the documented figure when a source gives one, else
    computed from the parameter count (weights only), with ``sources[memory_*].url == "computed"``."""

    id: str
    name: str
    family: str
    open_weights: bool
    runs: str  # how it runs with this tool now: transformers, server, api or "not runnable yet"
    path: str  # the catalogue file the row came from
    server: bool = False  # an OpenAI-compatible server such as vLLM serves it (besides ``runs``)
    transformers_family: str | None = None
    hub_id: str | None = None
    api_model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    endpoint: str = "chat"
    price: str | None = None
    parameters_b: float | None = None
    licence: str | None = None
    max_audio_s: float | None = None
    audio_tokens_per_s: float | None = None
    memory_bf16_gb: float | None = None
    memory_int8_gb: float | None = None
    memory_int4_gb: float | None = None
    notes: str = ""
    sources: dict[str, Source] = field(default_factory=dict)

    @property
    def ways(self) -> tuple[str, ...]:
        """Every way it runs with this tool: ``runs`` first, then "server" where a server serves it too."""
        ways = () if self.runs == "not runnable yet" else (self.runs,)
        return ways + (("server",) if self.server and "server" not in ways else ())

    def memory_gb(self, precision: str) -> float | None:
        return getattr(self, f"memory_{precision}_gb")

    def computed(self, fact: str) -> bool:
        return (s := self.sources.get(fact)) is not None and s.url == COMPUTED

    def to_dict(self) -> dict:
        """Plain data (the JSON of ``workbench models --json``): every field, missing facts as null."""
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "sources"}
        data["sources"] = {k: {"url": s.url, "date": s.date, **({"note": s.note} if s.note else {})}
                           for k, s in self.sources.items()}
        return data


@dataclass(frozen=True)
class Catalogue:
    rows: tuple[ModelRow, ...]
    paths: tuple[str, ...]

    def get(self, model: str) -> ModelRow:
        """A row by id (case-insensitive), or by its hub id / API model name."""
        wanted = model.strip().lower()
        for row in self.rows:
            if wanted in {row.id.lower(), (row.hub_id or "").lower(), (row.api_model or "").lower()}:
                return row
        raise BadInputError(f"unknown model {model!r}; known: {', '.join(r.id for r in self.rows)} "
                            "(see `workbench models`)")


def catalogue_paths(extra: str | os.PathLike | None = None) -> list[Path]:
    """The shipped catalogue, then the files in $WORKBENCH_MODELS (path-separator separated), then ``extra``."""
    paths = [DEFAULT_CATALOGUE]
    paths += [Path(p) for p in os.environ.get(CATALOGUE_ENV, "").split(os.pathsep) if p]
    if extra:
        paths.append(Path(extra))
    return paths


def _computed_memory(row: _Row, date: str) -> dict:
    """Weights-only memory from the parameter count where no source documents it."""
    filled: dict = {}
    if row.parameters_b is None:
        return filled
    for precision, per_weight in PRECISIONS.items():
        key = f"memory_{precision}_gb"
        if getattr(row, key) is None:
            filled[key] = round(row.parameters_b * per_weight, 1)
            filled.setdefault("sources", {})[key] = Source(
                COMPUTED, date, f"{row.parameters_b:g} B parameters × {per_weight:g} byte(s), weights only")
    return filled


def _family_missing(name: str | None) -> str:
    """Why this tool cannot run a transformers family ("" when it can)."""
    if not name:
        return ""
    from workbench.audio_llm.families import FAMILIES

    if name not in FAMILIES:
        return f"this tool has no {name} family yet"
    if not FAMILIES.get(name).supported:
        return f"the {name} family is not supported by this tool yet"
    return ""


def _read(path: Path) -> list[ModelRow]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise BadInputError(f"model catalogue {path} not found") from None
    except OSError as exc:
        raise BadInputError(f"model catalogue {path}: cannot read it: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"model catalogue {path}: not valid TOML: {exc}") from None
    unknown = [k for k in data if k != "model"]
    if unknown:
        raise BadInputError(f"model catalogue {path}: unknown table(s) {', '.join(map(repr, unknown))}; rows are "
                            '[model."ID"] tables')
    models = data.get("model") or {}
    if not isinstance(models, dict) or not models:
        raise BadInputError(f'model catalogue {path}: no [model."ID"] rows')
    rows = []
    for model_id, table in models.items():
        if not isinstance(table, dict):
            raise BadInputError(f"model catalogue {path}: model {model_id!r}: must be a table")
        try:
            parsed = _Row.model_validate(table)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(row)"
            msg = err["msg"].removeprefix("Value error, ")
            got = f" (got {err['input']!r})" if err["type"] != "missing" and where != "(row)" else ""
            raise BadInputError(f"model catalogue {path}: model {model_id!r}: field {where}: {msg}{got}") from None
        sources = {k: Source(s.url, s.date, s.note) for k, s in parsed.sources.items()}
        read_dates = sorted({s.date for s in sources.values()})
        extra = _computed_memory(parsed, read_dates[-1] if read_dates else "")
        sources.update(extra.pop("sources", {}))
        values = parsed.model_dump(exclude={"sources"})
        values.update(extra)
        if parsed.runs == "transformers" and (why := _family_missing(parsed.transformers_family)):
            # not through transformers here: through a server where one serves it, else not at all (yet)
            values["runs"] = "server" if parsed.server else "not runnable yet"
            values["notes"] = "; ".join(n for n in (why, parsed.notes) if n)
        rows.append(ModelRow(id=model_id, path=str(path), sources=sources, **values))
    return rows


def load_catalogue(extra: str | os.PathLike | None = None) -> Catalogue:
    """The shipped rows, with user files' rows added (a row with a shipped id replaces it). Raises BadInputError."""
    by_id: dict[str, ModelRow] = {}
    paths = catalogue_paths(extra)
    for path in paths:
        for row in _read(path):
            by_id[row.id] = row
    return Catalogue(tuple(by_id.values()), tuple(str(p) for p in paths))


# --- what runs here -------------------------------------------------------------------------------------------

def _recipe_model(recipe) -> str | None:
    if recipe.pipeline != "audio-llm":
        return None
    try:
        return getattr(recipe.stage("model").options, "model", None)
    except KeyError:
        return None


def recipes_here() -> dict[str, list[str]]:
    """Model name (lower case) → the audio-LLM recipes found (shipped or in ./pipelines, $WORKBENCH_RECIPES) that
    name it and are available on this machine (:func:`workbench.recipes.check_recipe`)."""
    from workbench.errors import RecipeError
    from workbench.recipes import available_recipe_files, check_recipe, load_recipe_file

    found: dict[str, list[str]] = {}
    for name, path in available_recipe_files().items():
        try:
            recipe = load_recipe_file(path)
            model = _recipe_model(recipe)
            if model and check_recipe(recipe).ok:
                found.setdefault(model.lower(), []).append(name)
        except RecipeError as exc:
            log.debug("recipe %s skipped: %s", path, exc)
    return found


def here(row: ModelRow, available: dict[str, list[str]]) -> list[str]:
    """The available recipes that run this row's model."""
    names = {n.lower() for n in (row.hub_id, row.api_model) if n}
    return sorted({r for n in names for r in available.get(n, [])})


def select(rows, *, fits_gb: float | None = None, precision: str = "bf16", runs: str | None = None,
           available: dict[str, list[str]] | None = None) -> list[ModelRow]:
    """The rows whose weights at ``precision`` fit in ``fits_gb`` of accelerator memory (rows without a known
    figure — the API models — are left out by a ``fits_gb`` filter) and that run the way ``runs`` says
    ("here": a recipe for it is available on this machine)."""
    if precision not in PRECISIONS:
        raise BadInputError(f"unknown precision {precision!r}; one of {', '.join(PRECISIONS)}")
    if runs is not None and runs not in RUNS_FILTERS:
        raise BadInputError(f"unknown --runs {runs!r}; one of {', '.join(RUNS_FILTERS)}")
    if fits_gb is not None and not fits_gb > 0:
        raise BadInputError(f"--fits must be a memory size in GB above 0 (got {fits_gb:g})")
    if runs == "here" and available is None:
        available = recipes_here()
    kept = []
    for row in rows:
        if fits_gb is not None and ((gb := row.memory_gb(precision)) is None or gb > fits_gb):
            continue
        if runs == "here" and not here(row, available or {}):
            continue
        if runs not in (None, "here") and runs not in row.ways:
            continue
        kept.append(row)
    return kept


# --- new-recipe -----------------------------------------------------------------------------------------------

def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a TOML basic string (\" \\ \n \uXXXX escapes)


def recipe_text(row: ModelRow, name: str, *, via: str | None = None,
                prices_path: str | os.PathLike | None = None) -> str:
    """An audio-LLM recipe for ``row``: the transformers backend with its hub id, or an OpenAI-compatible call
    (a local server such as vLLM, or the provider's API) with ``price`` where the price table has the row.
    ``via`` picks one of ``row.ways`` (default: the first)."""
    if not row.ways:
        raise BadInputError(f"{row.id} does not run with this tool yet" + (f": {row.notes}" if row.notes else "")
                            + " (see `workbench models`)")
    via = via or row.ways[0]
    if via not in row.ways:
        raise BadInputError(f"{row.id} does not run via {via}; it runs via {', '.join(row.ways)}")
    lines = [f"# {row.name}: written by `workbench models new-recipe {row.id}` from the model catalogue"]
    model: dict = {}
    if via == "transformers":
        lines.append(f"# Weights: huggingface-cli download {row.hub_id} --local-dir DIR (then set model = DIR)")
        model.update(backend="transformers", model=row.hub_id)
        if row.transformers_family:
            model["family"] = row.transformers_family
    else:
        if via == "server":
            lines.append(f"# Serve it first, e.g. vllm serve {row.hub_id or row.api_model} (an OpenAI-compatible server)")
            model.update(backend="openai-compatible",
                         base_url=row.base_url if row.runs == "server" and row.base_url else "http://127.0.0.1:8000/v1",
                         model=row.hub_id or row.api_model)
        else:
            model.update(backend="openai-compatible", base_url=row.base_url, model=row.api_model)
        if row.api_key_env:
            model["api_key_env"] = row.api_key_env
        if row.endpoint != "chat":
            model["endpoint"] = row.endpoint
        if row.max_audio_s:  # a comment, not a setting: one request that long may exceed the request size limits
            lines.append(f"# the provider documents up to {row.max_audio_s:g} s of audio per call "
                         f"({row.sources['max_audio_s'].url}); set max_audio_s to send longer windows")
        if row.price:
            from workbench.cost import load_prices

            if row.price in load_prices(prices_path).api:
                model["price"] = row.price
            else:
                lines.append(f"# no price row {row.price!r} in the price table: cost is not computed")
    model["task"] = "formatted" if row.endpoint == "chat" else "transcript"
    lines += [f"name = {_toml_value(name)}", f"description = {_toml_value(f'{row.name} ({via}), from the model catalogue')}",
              'pipeline = "audio-llm"', "", "[model]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in model.items()]
    return "\n".join(lines) + "\n"


def write_recipe(row: ModelRow, out: str | os.PathLike, *, via: str | None = None,
                 prices_path: str | os.PathLike | None = None) -> Path:
    """Write the recipe for ``row`` to ``out`` after checking that it loads as a recipe; never overwrites."""
    from workbench.recipes import RECIPE_SUFFIX, load_recipe_file

    out = Path(out)
    if out.suffix != RECIPE_SUFFIX:
        raise BadInputError(f"{out}: a recipe file ends in {RECIPE_SUFFIX}")
    if out.exists():
        raise BadInputError(f"{out} already exists: not overwritten (pass --out to write elsewhere)")
    text = recipe_text(row, out.stem, via=via, prices_path=prices_path)
    with tempfile.TemporaryDirectory() as tmp:  # load it as a recipe before writing it where it will be found
        trial = Path(tmp) / out.name
        trial.write_text(text, encoding="utf-8")
        load_recipe_file(trial)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(out, "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise BadInputError(f"{out} already exists: not overwritten (pass --out to write elsewhere)") from None
    return out


def default_recipe_name(row: ModelRow) -> str:
    return f"audio-llm-{row.id}"


def cell(value, unit: str = "") -> str:
    """A fact for a table: "—" when missing, numbers without trailing zeros."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}{unit}"
    return f"{value}{unit}"


def table_rows(rows, precision: str = "bf16", available: dict[str, list[str]] | None = None) -> list[dict]:
    """The catalogue as a table (shared by the command and the dashboard): one dict of display strings per
    row; a computed memory figure starts with "≈"."""
    shown = []
    for row in rows:
        memory = {}
        for p in PRECISIONS:
            value = row.memory_gb(p)
            memory[p] = "—" if value is None else ("≈" if row.computed(f"memory_{p}_gb") else "") + f"{value:g}"
        runs = row.runs + (f" ({row.transformers_family})" if row.runs == "transformers" else "")
        if row.server and row.runs != "server":
            runs += "; server (vLLM)"
        if available is not None and (recipes := here(row, available)):
            runs += " — here: " + ", ".join(recipes)
        shown.append({
            "id": row.id, "model": row.name, "family": row.family, "open": "yes" if row.open_weights else "no",
            "params (B)": cell(row.parameters_b), "licence": cell(row.licence),
            "audio / call (s)": cell(row.max_audio_s), "audio tokens / s": cell(row.audio_tokens_per_s),
            "bf16 GB": memory["bf16"], "int8 GB": memory["int8"], "int4 GB": memory["int4"],
            "runs": runs, "hub id / API model": row.hub_id or row.api_model or "—",
            "notes": row.notes,
            "sources": "; ".join(f"{k}: {s.url} ({s.date})" for k, s in row.sources.items() if s.url != COMPUTED),
        })
    return shown
