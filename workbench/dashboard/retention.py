"""How long the dashboard keeps uploaded recordings and references: each run keeps its uploads under
``<out>/<run-id>/input/``; those older than the retention period are deleted (the run's results, summary and
store rows stay). No Streamlit here: ``workbench dashboard`` prunes on start and each comparison prunes again."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)

INPUT = "input"
DAY_S = 24 * 3600


def _newest_mtime(folder: Path) -> float:
    times = [folder.stat().st_mtime]
    times += [p.stat().st_mtime for p in folder.rglob("*") if not p.is_symlink()]
    return max(times)


def prune_uploads(out: Path, keep_days: int, *, now: float | None = None) -> list[Path]:
    """Delete the ``input/`` folders of dashboard runs under ``out`` whose newest file is older than
    ``keep_days`` days; returns what was deleted. ``keep_days`` 0 (or less) keeps everything."""
    if keep_days <= 0 or not out.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - keep_days * DAY_S
    deleted = []
    for run in sorted(out.iterdir()):
        folder = run / INPUT
        if run.is_symlink() or folder.is_symlink() or not folder.is_dir():
            continue
        try:
            if _newest_mtime(folder) < cutoff:
                shutil.rmtree(folder)
                deleted.append(folder)
        except OSError as exc:  # a file vanished or is not ours to delete: keep going, say so in the log
            log.warning("could not delete old uploads %s: %s", folder, exc)
    if deleted:
        log.info("deleted the uploads of %d run(s) older than %d day(s) under %s", len(deleted), keep_days, out)
    return deleted
