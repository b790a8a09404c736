"""How a run was executed, and how many CPU threads its models may use.

Every result records an :class:`Execution`: the executor (``in-process``, ``processes`` for ``batch --workers N``,
``ray``), how many workers ran at once, the CPU threads each worker's models were given, and the machine's core
count. Workers share the cores, so each gets ``max(1, cores // workers)`` threads (:func:`split_threads`) rather
than every core; figures measured while several workers ran at once (RTFx, CPU seconds, cost) are measured under
contention, and ``contended`` says so.

:func:`limit_threads` applies a worker's share to this process: CTranslate2 (faster-whisper's ``cpu_threads`` when
the recipe leaves it at 0 — a recipe's explicit ``cpu_threads`` wins), torch (``torch.set_num_threads``) and, for
libraries that read it when they start, ``OMP_NUM_THREADS``. Without a limit (a run in the user's own process)
nothing is changed: models get every core, as before.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass, field

EXECUTORS = ("in-process", "processes", "ray")
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

_limit: int | None = None  # this process's thread budget; None = every core


@dataclass(frozen=True)
class Execution:
    executor: str = "in-process"
    workers: int = 1
    #: CPU threads each worker's models were given; None = every core (no limit was set)
    threads: int | None = None
    cpu_count: int | None = field(default_factory=os.cpu_count)

    @property
    def model_threads(self) -> int:
        return self.threads or self.cpu_count or 1

    @property
    def contended(self) -> bool:
        """Several workers ran at once on the machine's cores: timings and cost are measured under contention."""
        return self.workers > 1

    def to_json(self) -> dict:
        return {"executor": self.executor, "workers": self.workers, "threads": self.model_threads,
                "cpu_count": self.cpu_count, "contended": self.contended}

    @classmethod
    def from_json(cls, row: dict) -> "Execution":
        """The inverse of :meth:`to_json` (``contended`` is derived from ``workers``)."""
        return cls(row.get("executor", "in-process"), row.get("workers", 1), row.get("threads"), row.get("cpu_count"))


def split_threads(workers: int, cpu_count: int | None = None) -> int:
    """Each of ``workers`` workers' share of the cores: ``max(1, cores // workers)``."""
    cores = cpu_count or os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def limit_threads(threads: int | None) -> None:
    """Give this process's models ``threads`` CPU threads (None: no limit, every core). Also the initializer of
    spawned worker processes, so ``OMP_NUM_THREADS`` is set before any numeric library starts its pool."""
    global _limit
    _limit = threads
    if threads is None:
        return
    for variable in _THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    apply_torch_threads()


def apply_torch_threads() -> None:
    """torch's intra-op pool to the budget, when one is set and torch is loaded (imports nothing)."""
    torch = sys.modules.get("torch")
    if _limit is not None and torch is not None and torch.get_num_threads() != _limit:
        torch.set_num_threads(_limit)


def cpu_threads() -> int:
    """The CPU threads a model may use in this process: the budget, or every core."""
    return _limit or os.cpu_count() or 1


def thread_limit() -> int | None:
    return _limit


def release_freed_memory() -> bool:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``); True when it could.

    Freed NumPy buffers of a few MB stay in the process (glibc raises its mmap threshold after the first ones), so a
    stage that allocates and frees such buffers chunk after chunk grows its resident memory; trimming between chunks
    keeps it at one chunk's worth. A no-op where the C library is not glibc."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


#: glibc malloc settings :func:`bound_heap_growth` applies (``mallopt``'s M_ARENA_MAX and M_MMAP_THRESHOLD)
MALLOC_ARENAS = 2
MALLOC_MMAP_THRESHOLD = 8 * 2**20
_M_ARENA_MAX, _M_MMAP_THRESHOLD = -8, -3  # glibc's malloc.h


@functools.cache
def bound_heap_growth() -> bool:
    """Keep glibc's heap from holding on to freed model buffers; True when applied (once per process).

    By default glibc gives each thread that allocates its own arena (up to 8 per core), each keeping its own freed
    memory, and raises its mmap threshold to the size of each large buffer freed (up to 32 MB), after which buffers
    below that size come from the heap and stay resident when freed. Decoding threads (CTranslate2, onnxruntime,
    torch) allocate and free such buffers at every step. Here: at most :data:`MALLOC_ARENAS` arenas and a fixed
    :data:`MALLOC_MMAP_THRESHOLD` (buffers above it are mapped and unmapped, i.e. returned when freed). On 15
    minutes of dense speech ``cascade-plain`` peaked at 1,141 MiB instead of 1,279 at the same speed (README, "Long
    recordings"); a threshold of 1 MB saved more but decoded 36 % slower. What the user set through
    ``MALLOC_ARENA_MAX`` / ``MALLOC_MMAP_THRESHOLD_`` (glibc's own variables) is left alone; a no-op off glibc."""
    libc = _libc()
    if libc is None:
        return False
    done = False
    for variable, option, value in (("MALLOC_ARENA_MAX", _M_ARENA_MAX, MALLOC_ARENAS),
                                    ("MALLOC_MMAP_THRESHOLD_", _M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)):
        if variable not in os.environ:
            done = bool(libc.mallopt(option, value)) or done
    return done


@functools.cache
def _libc():
    """The C library when it is glibc (has ``malloc_trim``), else None (looked up once: ``find_library`` runs
    ``ldconfig``)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
        return libc
    except (OSError, AttributeError):
        return None
