"""Voice activity detection: which parts of a recording hold speech.

``silero`` runs Silero VAD v6 in one of two real implementations:
``runtime = "onnx"`` (default) — the ONNX model shipped inside faster-whisper, scored in batches; the
same code path as faster-whisper's own ``vad_filter``, so a gated cascade transcribes exactly what
faster-whisper would. ``runtime = "torch"`` — the silero-vad package's TorchScript model, streamed
window by window as its authors ship it (about 4× slower here).
Default thresholds are faster-whisper's ``VadOptions`` defaults: the field's default for gating Whisper.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from pydantic import Field

from workbench.audio import SAMPLE_RATE
from workbench.backends.base import Backend, BackendOptions
from workbench.datamodel import Span
from workbench.registry import Registry

log = logging.getLogger(__name__)


class VadBackend(Backend):
    def detect(self, samples: np.ndarray) -> tuple[Span, ...] | None:
        """Speech regions in seconds, or ``None`` for "no gating: treat everything as speech"."""
        raise NotImplementedError


VAD_BACKENDS: Registry[VadBackend] = Registry("vad backend")


@VAD_BACKENDS.register("none")
class NoVad(VadBackend):
    """No VAD: the whole recording goes to ASR (the naive baseline)."""

    def detect(self, samples: np.ndarray) -> None:
        return None


class SileroOptions(BackendOptions):
    runtime: Literal["onnx", "torch"] = "onnx"
    threshold: float = Field(0.5, gt=0, lt=1)
    neg_threshold: float | None = Field(None, gt=0, lt=1)
    min_speech_duration_ms: int = Field(0, ge=0)
    max_speech_duration_s: float | None = Field(None, gt=0, description="None = no limit")
    min_silence_duration_ms: int = Field(2000, ge=0)
    speech_pad_ms: int = Field(400, ge=0)


@VAD_BACKENDS.register("silero")
class SileroVad(VadBackend):
    Options = SileroOptions

    def __init__(self, options: SileroOptions):
        super().__init__(options)
        self._model = None

    @classmethod
    def requirements(cls, options: SileroOptions) -> tuple[tuple[str, str], ...]:
        if options.runtime == "onnx":
            return (("faster_whisper", "faster-whisper"), ("onnxruntime", "onnxruntime"))
        return (("silero_vad", "silero-vad"), ("torch", "torch"))

    def load(self) -> None:
        if self.options.runtime == "onnx":
            from faster_whisper.vad import get_vad_model

            self._model = get_vad_model()
        else:
            from silero_vad import load_silero_vad

            self._model = load_silero_vad(onnx=False)

    def unload(self) -> None:
        self._model = None

    def detect(self, samples: np.ndarray) -> tuple[Span, ...]:
        o = self.options
        if self.options.runtime == "onnx":
            from faster_whisper.vad import VadOptions, get_speech_timestamps

            chunks = get_speech_timestamps(
                samples,
                VadOptions(
                    threshold=o.threshold,
                    neg_threshold=o.neg_threshold,
                    min_speech_duration_ms=o.min_speech_duration_ms,
                    max_speech_duration_s=o.max_speech_duration_s or float("inf"),
                    min_silence_duration_ms=o.min_silence_duration_ms,
                    speech_pad_ms=o.speech_pad_ms,
                ),
            )
        else:
            import torch
            from silero_vad import get_speech_timestamps

            if self._model is None:
                self.load()
            chunks = get_speech_timestamps(
                torch.from_numpy(np.ascontiguousarray(samples)),
                self._model,
                threshold=o.threshold,
                neg_threshold=o.neg_threshold,
                sampling_rate=SAMPLE_RATE,
                min_speech_duration_ms=o.min_speech_duration_ms,
                max_speech_duration_s=o.max_speech_duration_s or float("inf"),
                min_silence_duration_ms=o.min_silence_duration_ms,
                speech_pad_ms=o.speech_pad_ms,
            )
        return tuple(Span(c["start"] / SAMPLE_RATE, c["end"] / SAMPLE_RATE) for c in chunks)

    def describe(self) -> dict:
        return {**super().describe(), "model": "silero-vad v6"}
