"""Voice activity detection: which parts of a recording hold speech.

``silero`` runs Silero VAD v6 in one of two real implementations:
``runtime = "onnx"`` (default) — the ONNX model shipped inside faster-whisper, scored in batches; the
same regions as faster-whisper's own ``vad_filter`` (its model, batches and post-processing), so a gated cascade
transcribes exactly what faster-whisper would, but each batch is read from the recording in place
(:func:`speech_timestamps`): faster-whisper pads a copy of the whole recording and frames a second one. ``runtime = "torch"`` — the silero-vad package's TorchScript model, streamed
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
            from faster_whisper.vad import VadOptions

            chunks = speech_timestamps(
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


#: silero's window and the left context each window carries (faster-whisper's ``SileroVADModel``)
_WINDOW, _CONTEXT = 512, 64
#: windows scored per ONNX call (32 s of audio). faster-whisper scores 10,000 at once; the recurrent state is carried
#: from batch to batch, so the probabilities are the same (tested), and the model's activations take ~20 MB instead
#: of ~150 MB
_ENCODER_BATCH = 1000


def speech_probabilities(samples: np.ndarray) -> np.ndarray:
    """Silero's speech probability of every 512-sample window, as faster-whisper's ``get_speech_timestamps``
    computes them (``SileroVADModel`` on the zero-padded audio: same windows, same left context, the recurrent
    state carried from batch to batch), but without copying the recording: each batch is built from the samples in
    place, so memory stays ~20 MB however long the recording."""
    from faster_whisper.vad import get_vad_model

    session = get_vad_model().session
    n = len(samples) // _WINDOW + 1  # faster-whisper pads to a multiple of 512, a whole window when it is one
    h = np.zeros((1, 1, 128), dtype="float32")
    c = np.zeros((1, 1, 128), dtype="float32")
    out = np.empty(n, dtype=np.float32)
    for i in range(0, n, _ENCODER_BATCH):
        rows = min(_ENCODER_BATCH, n - i)
        lo = i * _WINDOW - _CONTEXT  # the first row's context is the previous window's tail (zeros at the start)
        flat = np.zeros(rows * _WINDOW + _CONTEXT, dtype=np.float32)
        got = samples[max(lo, 0) : i * _WINDOW + rows * _WINDOW]
        flat[max(-lo, 0) : max(-lo, 0) + len(got)] = got
        batch = np.lib.stride_tricks.as_strided(
            flat, (rows, _WINDOW + _CONTEXT), (flat.strides[0] * _WINDOW, flat.strides[0]), writeable=False)
        output, h, c = session.run(None, {"input": np.ascontiguousarray(batch), "h": h, "c": c})
        out[i : i + rows] = np.asarray(output).reshape(-1)
    return out


def speech_timestamps(samples: np.ndarray, vad_options, sampling_rate: int = SAMPLE_RATE) -> list[dict]:
    """faster-whisper's ``get_speech_timestamps`` (1.x, silero ONNX) with the same result, in bounded memory:
    the probabilities come from :func:`speech_probabilities`; the rest — hysteresis, minimum silence and speech,
    maximum speech split at the last pause, padding — is faster-whisper's code (vad.py, MIT licence, itself
    adapted from silero-vad), unchanged."""
    o = vad_options
    threshold, neg_threshold = o.threshold, o.neg_threshold
    window_size_samples = _WINDOW
    min_speech_samples = sampling_rate * o.min_speech_duration_ms / 1000
    speech_pad_samples = sampling_rate * o.speech_pad_ms / 1000
    max_speech_samples = sampling_rate * o.max_speech_duration_s - window_size_samples - 2 * speech_pad_samples
    min_silence_samples = sampling_rate * o.min_silence_duration_ms / 1000
    min_silence_samples_at_max_speech = sampling_rate * 98 / 1000
    audio_length_samples = len(samples)
    speech_probs = speech_probabilities(samples)

    triggered = False
    speeches: list[dict] = []
    current_speech: dict = {}
    if neg_threshold is None:
        neg_threshold = max(threshold - 0.15, 0.01)
    temp_end = 0  # a potential segment end (some silence tolerated)
    prev_end = next_start = 0  # potential segment limits, for when the maximum segment size is reached

    for i, speech_prob in enumerate(speech_probs):
        if (speech_prob >= threshold) and temp_end:
            temp_end = 0
            if next_start < prev_end:
                next_start = window_size_samples * i
        if (speech_prob >= threshold) and not triggered:
            triggered = True
            current_speech["start"] = window_size_samples * i
            continue
        if triggered and (window_size_samples * i) - current_speech["start"] > max_speech_samples:
            if prev_end:
                current_speech["end"] = prev_end
                speeches.append(current_speech)
                current_speech = {}
                if next_start < prev_end:  # reached silence before (< neg_threshold), still not speech
                    triggered = False
                else:
                    current_speech["start"] = next_start
                prev_end = next_start = temp_end = 0
            else:
                current_speech["end"] = window_size_samples * i
                speeches.append(current_speech)
                current_speech = {}
                prev_end = next_start = temp_end = 0
                triggered = False
                continue
        if (speech_prob < neg_threshold) and triggered:
            if not temp_end:
                temp_end = window_size_samples * i
            if (window_size_samples * i) - temp_end > min_silence_samples_at_max_speech:  # not a very short pause
                prev_end = temp_end
            if (window_size_samples * i) - temp_end < min_silence_samples:
                continue
            current_speech["end"] = temp_end
            if (current_speech["end"] - current_speech["start"]) > min_speech_samples:
                speeches.append(current_speech)
            current_speech = {}
            prev_end = next_start = temp_end = 0
            triggered = False
            continue

    if current_speech and (audio_length_samples - current_speech["start"]) > min_speech_samples:
        current_speech["end"] = audio_length_samples
        speeches.append(current_speech)

    for i, speech in enumerate(speeches):
        if i == 0:
            speech["start"] = int(max(0, speech["start"] - speech_pad_samples))
        if i != len(speeches) - 1:
            silence_duration = speeches[i + 1]["start"] - speech["end"]
            if silence_duration < 2 * speech_pad_samples:
                speech["end"] += int(silence_duration // 2)
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - silence_duration // 2))
            else:
                speech["end"] = int(min(audio_length_samples, speech["end"] + speech_pad_samples))
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - speech_pad_samples))
        else:
            speech["end"] = int(min(audio_length_samples, speech["end"] + speech_pad_samples))

    return speeches
