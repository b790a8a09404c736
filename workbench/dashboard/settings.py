"""Dashboard settings, read from the environment that ``workbench dashboard`` sets (defaults otherwise)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from workbench.audio import MAX_DURATION_S
from workbench.store import DEFAULT_PATH


TOKEN_ENV = "WORKBENCH_DASHBOARD_TOKEN"


@dataclass(frozen=True)
class Settings:
    store: Path  # the SQLite result store (shared with `workbench batch`)
    out: Path  # where each dashboard run keeps its uploads, results.jsonl and summary
    max_upload_mb: int
    max_duration_s: float
    hardware: str | None  # price-table row for cost per audio hour
    pool_size: int  # pipelines kept loaded between runs
    token: str | None = None  # required to use the app (set when it listens beyond this machine)
    max_reference_mb: float = 5.0  # largest reference upload accepted
    keep_uploads_days: int = 30  # uploads of runs older than this are deleted (results stay); 0 keeps them


def settings() -> Settings:
    env = os.environ
    return Settings(
        store=Path(env.get("WORKBENCH_STORE", str(DEFAULT_PATH))),
        out=Path(env.get("WORKBENCH_OUT", str(Path("reports") / "dashboard"))),
        max_upload_mb=int(env.get("WORKBENCH_MAX_UPLOAD_MB", "1024")),
        max_duration_s=float(env.get("WORKBENCH_MAX_DURATION_S", str(MAX_DURATION_S))),
        hardware=env.get("WORKBENCH_HARDWARE") or None,
        pool_size=int(env.get("WORKBENCH_POOL_SIZE", "4")),
        token=env.get(TOKEN_ENV) or None,
        max_reference_mb=float(env.get("WORKBENCH_MAX_REFERENCE_MB", "5")),
        keep_uploads_days=int(env.get("WORKBENCH_KEEP_UPLOADS_DAYS", "30")),
    )
