"""Stage backends. Importing this package registers the built-in ones (their heavy imports stay lazy)."""

from workbench.backends import asr, diarization, formatter, vad  # noqa: F401  (registration side effects)
from workbench.backends.asr import ASR_BACKENDS
from workbench.backends.base import Backend, BackendOptions
from workbench.backends.diarization import DIARIZATION_BACKENDS
from workbench.backends.formatter import FORMATTER_BACKENDS
from workbench.backends.vad import VAD_BACKENDS

__all__ = ["ASR_BACKENDS", "DIARIZATION_BACKENDS", "FORMATTER_BACKENDS", "VAD_BACKENDS", "Backend", "BackendOptions"]
