"""Cost per audio hour from a user-editable price table (every row names its source and date)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
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


@dataclass(frozen=True)
class HardwarePrice:
    id: str
    usd_per_hour: float
    source: str
    date: str
    description: str = ""


@dataclass(frozen=True)
class PriceTable:
    hardware: dict[str, HardwarePrice]
    default_hardware: str
    path: str

    def pick(self, hardware_id: str | None) -> HardwarePrice:
        key = hardware_id or self.default_hardware
        if key not in self.hardware:
            raise BadInputError(f"unknown hardware {key!r} in {self.path}; known: {', '.join(self.hardware)}")
        return self.hardware[key]


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
        rows[key] = HardwarePrice(key, parsed.usd_per_hour, parsed.source, parsed.date, parsed.description)
        if parsed.default:
            if default is not None:
                raise BadInputError(f"{path}: rows {default!r} and {key!r} are both marked default = true; mark one")
            default = key
    if not rows:
        raise BadInputError(f"{path}: no [hardware.\"ID\"] rows")
    return PriceTable(rows, default or next(iter(rows)), str(path))


def usd_per_audio_hour(price: HardwarePrice, rtfx: float | None) -> float | None:
    """Self-hosted cost: $/hour of the machine divided by how many audio hours it processes per hour."""
    if not rtfx or rtfx <= 0:
        return None
    return price.usd_per_hour / rtfx
