"""Cost per audio hour from a user-editable price table (every row names its source and date)."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workbench.errors import BadInputError

DEFAULT_PRICES = Path(__file__).parent / "data" / "prices.toml"


class _HardwareRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    usd_per_hour: float = Field(ge=0)
    source: str = Field(min_length=1)
    date: str = Field(min_length=1)
    default: bool = False
    # what machine the row is, for picking the row of the machine a run is on (no --hardware):
    vcpus: int | None = Field(None, ge=1, description="CPU count of the machine")
    gpu: str | None = Field(None, min_length=1, description="GPU model, matched case-insensitively in the detected GPU name")
    gpus: int = Field(1, ge=1, description="how many of that GPU")


@dataclass(frozen=True)
class HardwarePrice:
    id: str
    usd_per_hour: float
    source: str
    date: str
    description: str = ""
    vcpus: int | None = None
    gpu: str | None = None
    gpus: int = 1
    #: False when no row matches the machine the run is on and this (the default) row prices it anyway
    matched: bool = True
    note: str = ""  # says so: "priced as ROW: no price row matches this machine (…)"

    def matches(self, machine: dict) -> bool:
        """Whether this row describes ``machine`` (:func:`workbench.environment.hardware`): the same GPU model
        and count, or — for a row without a GPU, on a machine without one — the same CPU count."""
        names = [n.lower() for n in machine.get("gpu_models") or []]
        if self.gpu:  # a whole word of the name: "L4" is not "L40S"
            word = re.compile(rf"(?<![\w-]){re.escape(self.gpu.lower())}(?![\w-])")
            return sum(bool(word.search(n)) for n in names) == self.gpus
        return not names and not machine.get("gpu") and self.vcpus is not None and self.vcpus == machine.get("cpu_count")


class _ApiRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    usd_per_audio_minute: float | None = Field(None, ge=0)
    usd_per_1m_input_tokens: float | None = Field(None, ge=0)
    usd_per_1m_output_tokens: float | None = Field(None, ge=0)
    source: str = Field(min_length=1)
    date: str = Field(min_length=1)


@dataclass(frozen=True)
class ApiPrice:
    id: str
    source: str
    date: str
    usd_per_audio_minute: float | None = None
    usd_per_1m_input_tokens: float | None = None
    usd_per_1m_output_tokens: float | None = None
    description: str = ""

    def usd_per_audio_hour(self, audio_s: float, input_tokens: int | None, output_tokens: int | None) -> float | None:
        """Cost of the usage, scaled to one hour of audio; None when the usage needed is unknown."""
        if audio_s <= 0:
            return None
        if self.usd_per_audio_minute is not None:
            return self.usd_per_audio_minute * 60
        if input_tokens is None or output_tokens is None:
            return None
        usd = (input_tokens * (self.usd_per_1m_input_tokens or 0) + output_tokens * (self.usd_per_1m_output_tokens or 0)) / 1e6
        return usd * 3600 / audio_s


@dataclass(frozen=True)
class PriceTable:
    hardware: dict[str, HardwarePrice]
    default_hardware: str
    path: str
    api: dict[str, ApiPrice] = field(default_factory=dict)

    def pick_api(self, price_id: str) -> ApiPrice:
        if price_id not in self.api:
            raise BadInputError(f"unknown API price {price_id!r} in {self.path}; known: {', '.join(self.api) or '(none)'}")
        return self.api[price_id]

    def pick(self, hardware_id: str | None) -> HardwarePrice:
        key = hardware_id or self.default_hardware
        if key not in self.hardware:
            raise BadInputError(f"unknown hardware {key!r} in {self.path}; known: {', '.join(self.hardware)}")
        return self.hardware[key]

    def for_machine(self, machine: dict) -> HardwarePrice:
        """The row matching ``machine`` (GPU model and count, else CPU count); when none does, the default row
        with ``matched`` False and a note saying the cost is for that row, not this machine."""
        for row in self.hardware.values():
            if row.matches(machine):
                return row
        row = self.hardware[self.default_hardware]
        gpus = machine.get("gpu_models") or machine.get("gpu") or []
        here = f"{machine.get('cpu_count') or '?'} CPUs, GPU: {', '.join(gpus) or 'none'}"
        return replace(row, matched=False, note=f"priced as {row.id}: no price row matches this machine ({here}); "
                                                "pass --hardware ROW or add a row to the price table")


def load_prices(path: str | os.PathLike | None = None) -> PriceTable:
    path = Path(path or os.environ.get("WORKBENCH_PRICES") or DEFAULT_PRICES)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise BadInputError(f"price table {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"{path}: not valid TOML: {exc}") from None
    rows: dict[str, HardwarePrice] = {}
    default = None
    for key, row in (data.get("hardware") or {}).items():
        try:
            parsed = _HardwareRow.model_validate(row)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise BadInputError(f"{path}: [hardware.{key!r}] {field}: {err['msg']} (every row needs usd_per_hour, source and date)") from None
        rows[key] = HardwarePrice(key, parsed.usd_per_hour, parsed.source, parsed.date, parsed.description,
                                  parsed.vcpus, parsed.gpu, parsed.gpus)
        if parsed.default:
            if default is not None:
                raise BadInputError(f"{path}: rows {default!r} and {key!r} are both marked default = true; mark one")
            default = key
    if not rows:
        raise BadInputError(f"{path}: no [hardware.\"ID\"] rows")
    api: dict[str, ApiPrice] = {}
    for key, row in (data.get("api") or {}).items():
        try:
            parsed_api = _ApiRow.model_validate(row)
        except ValidationError as exc:
            err = exc.errors()[0]
            field_name = ".".join(str(p) for p in err["loc"])
            raise BadInputError(f"{path}: [api.{key!r}] {field_name}: {err['msg']} (every row needs a price, source and date)") from None
        if parsed_api.usd_per_audio_minute is None and parsed_api.usd_per_1m_input_tokens is None:
            raise BadInputError(f"{path}: [api.{key!r}] needs usd_per_audio_minute or usd_per_1m_input_tokens")
        api[key] = ApiPrice(key, parsed_api.source, parsed_api.date, parsed_api.usd_per_audio_minute,
                            parsed_api.usd_per_1m_input_tokens, parsed_api.usd_per_1m_output_tokens, parsed_api.description)
    return PriceTable(rows, default or next(iter(rows)), str(path), api)


def usd_per_audio_hour(price: HardwarePrice, rtfx: float | None) -> float | None:
    """Self-hosted cost: $/hour of the machine divided by how many audio hours it processes per hour."""
    if not rtfx or rtfx <= 0:
        return None
    return price.usd_per_hour / rtfx
