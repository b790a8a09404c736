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


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark for this process (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process in MiB since the last reset; None where unknown."""
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

        Consume generators inside the block: faster-whisper decodes lazily while you iterate.
        """
        detail: dict = {}
        self.current = name
        self.hook(name, None, total=total, completed=0)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        try:
            yield detail
            self.current = None
        finally:
            timing = StageTiming(name, time.perf_counter() - wall0, time.process_time() - cpu0, detail)
            self.timings.append(timing)
            log.debug("stage %s: %.3f s wall, %.3f s cpu", name, timing.wall_s, timing.cpu_s)
            self.hook(name, timing, total=total, completed=total)
