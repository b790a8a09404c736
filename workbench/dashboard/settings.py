"""Dashboard settings, read from the environment that ``workbench dashboard`` sets (defaults otherwise)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from workbench.store import DEFAULT_PATH


@dataclass(frozen=True)
class Settings:
    store: Path  # the SQLite result store (shared with `workbench batch`)
    out: Path  # where each dashboard run keeps its uploads, results.jsonl and summary
    max_upload_mb: int
    max_duration_s: float
    hardware: str | None  # price-table row for cost per audio hour
    pool_size: int  # pipelines kept loaded between runs


def settings() -> Settings:
    env = os.environ
    return Settings(
        store=Path(env.get("WORKBENCH_STORE", str(DEFAULT_PATH))),
        out=Path(env.get("WORKBENCH_OUT", str(Path("reports") / "dashboard"))),
        max_upload_mb=int(env.get("WORKBENCH_MAX_UPLOAD_MB", "1024")),
        max_duration_s=float(env.get("WORKBENCH_MAX_DURATION_S", str(4 * 3600))),
        hardware=env.get("WORKBENCH_HARDWARE") or None,
        pool_size=int(env.get("WORKBENCH_POOL_SIZE", "4")),
    )
