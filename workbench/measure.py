"""Stage timing: wall time, process CPU time, and peak resident memory."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from workbench.datamodel import StageTiming
from workbench.hooks import Hook, null_hook

log = logging.getLogger(__name__)


#: the peak folded in before a stage reset the kernel's mark (so the recipe-level figure still covers it)
_carried_mb = 0.0


def _clear_refs() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark for this process (Linux); False where that is not possible."""
    global _carried_mb
    _carried_mb = 0.0
    return _clear_refs()


def _high_water_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    except (ImportError, OSError):
        return None


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process in MiB since the last :func:`reset_peak_rss`; None where unknown.
    (The per-stage marks :class:`StageClock` takes do not shorten it.)"""
    now = _high_water_mb()
    return None if now is None else max(now, _carried_mb)


def _start_stage_peak() -> bool:
    """Fold the peak so far into the carried figure, then reset the kernel's mark: the next reading is this
    stage's own peak. False where the mark cannot be reset (then a stage's own peak is unknown)."""
    global _carried_mb
    now = _high_water_mb()
    if now is not None:
        _carried_mb = max(_carried_mb, now)
    return _clear_refs()


@dataclass
class StageClock:
    """Collects the timings of one run's stages, in order."""

    hook: Hook = null_hook
    timings: list[StageTiming] = field(default_factory=list)
    #: the stage in progress, and after a failure the stage that failed
    current: str | None = None

    @contextmanager
    def stage(self, name: str, total: float | None = None) -> Iterator[dict]:
        """Time a stage; the yielded dict collects details stored with the timing.

        Consume generators inside the block: faster-whisper decodes lazily while you iterate. The detail gets
        ``peak_rss_mb``: the process's peak resident memory during this stage (None where it cannot be measured
        per stage).
        """
        detail: dict = {}
        self.current = name
        self.hook(name, None, total=total, completed=0)
        per_stage = _start_stage_peak()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        try:
            yield detail
            self.current = None
        finally:
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            peak = _high_water_mb() if per_stage else None
            detail["peak_rss_mb"] = None if peak is None else round(peak, 1)
            timing = StageTiming(name, wall, cpu, detail)
            self.timings.append(timing)
            log.debug("stage %s: %.3f s wall, %.3f s cpu", name, timing.wall_s, timing.cpu_s)
            self.hook(name, timing, total=total, completed=total)
