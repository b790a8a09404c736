"""Speech recognition backends. ``faster-whisper``: Whisper on CTranslate2, sequential or batched.

When the VAD stage found speech regions and ``vad_gating`` is on, only speech is transcribed, the way
faster-whisper's own ``vad_filter`` does it (speech chunks concatenated, timestamps mapped back), so
the result equals calling faster-whisper directly with the same VAD settings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import numpy as np
from pydantic import Field

from workbench.audio import SAMPLE_RATE
from workbench.backends.base import Backend, BackendOptions
from workbench.datamodel import Segment, Span, Transcript, Word
from workbench.errors import BackendUnavailable
from workbench.execution import cpu_threads
from workbench.model_sources import ModelSource, hub_offline, resolve_whisper
from workbench.registry import Registry

log = logging.getLogger(__name__)

Progress = Callable[[float], None]


class AsrBackend(Backend):
    def transcribe(self, samples: np.ndarray, speech: tuple[Span, ...] | None, progress: Progress | None = None) -> Transcript:
        raise NotImplementedError


ASR_BACKENDS: Registry[AsrBackend] = Registry("asr backend")

DEFAULT_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class FasterWhisperOptions(BackendOptions):
    model: str = Field("base", description="tiny.en / base (bundled), a size or hub id (large-v3, distil-large-v3), or a local folder")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = Field("auto", description="auto = int8 on CPU, float16 on CUDA; or any CTranslate2 type")
    cpu_threads: int = Field(0, ge=0, description="0 = all cores (with batch --workers N / Ray: this worker's share)")
    beam_size: int = Field(5, ge=1)
    language: str | None = None
    task: Literal["transcribe", "translate"] = "transcribe"
    word_timestamps: bool = False
    temperature: float | tuple[float, ...] = DEFAULT_TEMPERATURES
    condition_on_previous_text: bool = True
    initial_prompt: str | None = None
    no_speech_threshold: float | None = 0.6
    log_prob_threshold: float | None = -1.0
    compression_ratio_threshold: float | None = 2.4
    repetition_penalty: float = Field(1.0, gt=0)
    no_repeat_ngram_size: int = Field(0, ge=0)
    hallucination_silence_threshold: float | None = None
    vad_gating: bool = Field(True, description="transcribe only the VAD stage's speech regions")
    batch_size: int = Field(0, ge=0, description="0 = sequential decoding; N > 0 = BatchedInferencePipeline with batch N")


@ASR_BACKENDS.register("faster-whisper")
class FasterWhisper(AsrBackend):
    Options = FasterWhisperOptions
    requires = (("faster_whisper", "faster-whisper"), ("ctranslate2", "ctranslate2"))

    def __init__(self, options: FasterWhisperOptions):
        super().__init__(options)
        self._model = None
        self._batched = None
        self._source: ModelSource | None = None
        self._device = self._compute_type = None
        self._threads: int | None = None

    @classmethod
    def check(cls, options: FasterWhisperOptions) -> None:
        super().check(options)
        resolve_whisper(options.model, build=False)

    @classmethod
    def downloads(cls, options: FasterWhisperOptions) -> str | None:
        try:
            return resolve_whisper(options.model, build=False).download or None
        except BackendUnavailable:
            return None

    def _resolve_device(self) -> tuple[str, str]:
        device = self.options.device
        if device == "auto":
            import ctranslate2

            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        compute = self.options.compute_type
        if compute == "auto":
            compute = "float16" if device == "cuda" else "int8"
        return device, compute

    def load(self) -> None:
        self._source = resolve_whisper(self.options.model)
        self._device, self._compute_type = self._resolve_device()
        # a recipe's explicit cpu_threads wins; 0 = every core, or this worker's share of them
        self._threads = self.options.cpu_threads or cpu_threads()
        try:
            self._build()
        except Exception as exc:  # noqa: BLE001 - turn any load failure into one actionable line
            raise BackendUnavailable(
                f"could not load Whisper model {self.options.model!r} from {self._source.provenance}: {exc}",
                "check the model name or folder; a hub model needs network access or a pre-downloaded folder",
            ) from exc

    def _build(self) -> None:
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        self._model = WhisperModel(
            self._source.location,
            device=self._device,
            compute_type=self._compute_type,
            cpu_threads=self._threads,
            local_files_only=hub_offline(),
        )
        self._model.model = _SamplingWatch(self._model.model)
        self._batched = BatchedInferencePipeline(self._model) if self.options.batch_size else None

    def unload(self) -> None:
        self._model = self._batched = None

    def fresh_random_state(self) -> bool:
        """Rebuild the CTranslate2 model if a decode since it was built sampled; True when it did.

        Why: faster-whisper's temperature fallback samples (``generate(..., sampling_topk=0,
        sampling_temperature=t)``), and CTranslate2 draws those samples from ``static thread_local std::mt19937
        generator(get_random_seed())`` (src/random.cc): one generator per thread, seeded once, the first time that
        thread samples. Decoding runs in the model's own worker thread, which lives as long as the model, so
        ``ctranslate2.set_random_seed`` before a recording does not rewind it: a model that has sampled (on an
        earlier recording, or in the warm-up) would continue the random stream, and the same recording could give
        a different transcript the second time. A new model has new worker threads, whose generators are seeded
        from the seed set before the next decode (the runner seeds before every recording).

        Only after a decode that sampled (rare: greedy and beam search draw nothing), so the usual cost is none.
        The old model is released first (memory does not double); the caller times the rebuild and keeps it out
        of the stage timings."""
        if self._model is None or not isinstance(self._model.model, _SamplingWatch) or not self._model.model.sampled:
            return False
        self._model = self._batched = None
        self._build()
        return True

    def _kwargs(self) -> dict:
        o = self.options
        return dict(
            beam_size=o.beam_size,
            language=o.language,
            task=o.task,
            word_timestamps=o.word_timestamps,
            temperature=list(o.temperature) if isinstance(o.temperature, tuple) else o.temperature,
            condition_on_previous_text=o.condition_on_previous_text,
            initial_prompt=o.initial_prompt,
            no_speech_threshold=o.no_speech_threshold,
            log_prob_threshold=o.log_prob_threshold,
            compression_ratio_threshold=o.compression_ratio_threshold,
            repetition_penalty=o.repetition_penalty,
            no_repeat_ngram_size=o.no_repeat_ngram_size,
            hallucination_silence_threshold=o.hallucination_silence_threshold,
        )

    def transcribe(self, samples: np.ndarray, speech: tuple[Span, ...] | None, progress: Progress | None = None) -> Transcript:
        if self._model is None:
            self.load()
        gate = speech is not None and self.options.vad_gating
        if gate and not speech:
            log.info("VAD found no speech: nothing to transcribe")
            return Transcript((), self.options.language)
        if self._batched is not None:
            segments, info = self._transcribe_batched(samples, speech if gate else None)
        else:
            segments, info = self._transcribe_sequential(samples, speech if gate else None)
        out = []
        for seg in segments:  # decoding happens here, lazily
            out.append(_segment(seg))
            if progress is not None:
                progress(seg.end)
        return Transcript(tuple(out), info.language)

    def _transcribe_sequential(self, samples: np.ndarray, speech: tuple[Span, ...] | None):
        if speech is None:
            return self._model.transcribe(samples, vad_filter=False, **self._kwargs())
        from faster_whisper.transcribe import restore_speech_timestamps
        from faster_whisper.vad import collect_chunks

        chunks = [{"start": int(s.start * SAMPLE_RATE), "end": int(s.end * SAMPLE_RATE)} for s in speech]
        audio_chunks, _ = collect_chunks(samples, chunks)
        segments, info = self._model.transcribe(np.concatenate(audio_chunks), vad_filter=False, **self._kwargs())
        return restore_speech_timestamps(segments, chunks, SAMPLE_RATE), info

    def _transcribe_batched(self, samples: np.ndarray, speech: tuple[Span, ...] | None):
        """Batched decoding of the speech regions, none of it lost: faster-whisper's batched pipeline reads only the
        first 30 s of each clip it is given (``pad_or_trim`` to 3000 feature frames), so the speech is first cut
        into clips of at most 30 s (:func:`plan_clips`: long regions split at their quietest point, short ones
        merged), the way WhisperX's ``merge_chunks`` prepares its batches. As in the sequential path, only the
        speech is decoded (regions concatenated) and timestamps, words included, are mapped back."""
        from faster_whisper.transcribe import restore_speech_timestamps
        from faster_whisper.vad import collect_chunks

        if speech is None:  # no VAD: the whole recording is one region, cut at pauses into ≤ 30 s clips
            chunks = [{"start": 0, "end": len(samples)}]
            joined = samples
        else:
            chunks = [{"start": int(s.start * SAMPLE_RATE), "end": int(s.end * SAMPLE_RATE)} for s in speech]
            audio_chunks, _ = collect_chunks(samples, chunks)
            joined = np.concatenate(audio_chunks)
        clips = plan_clips(joined, [len(a) for a in ([joined] if speech is None else audio_chunks)])
        segments, info = self._batched.transcribe(
            joined, vad_filter=False, batch_size=self.options.batch_size,
            clip_timestamps=[{"start": a / SAMPLE_RATE, "end": b / SAMPLE_RATE} for a, b in clips], **self._kwargs(),
        )
        if speech is None:
            return segments, info
        return restore_speech_timestamps(segments, chunks, SAMPLE_RATE), info

    def describe(self) -> dict:
        info = super().describe()
        if self._source is not None:
            info.update(model_source=self._source.provenance, model_location=self._source.location)
        if self._device:
            info.update(device=self._device, compute_type=self._compute_type, threads=self._threads)
        return info


MAX_CLIP_S = 30.0  # Whisper's window: the batched pipeline reads no more of a clip
PAUSE_WINDOW_S = 0.2  # a split lands in the middle of the quietest window of this length


def plan_clips(audio: np.ndarray, region_lengths: list[int], max_samples: int = int(MAX_CLIP_S * SAMPLE_RATE)
               ) -> list[tuple[int, int]]:
    """Clips of at most ``max_samples`` that tile ``audio`` exactly (no sample lost, none twice), ``audio`` being
    consecutive speech regions of the given lengths. A region longer than a clip is split at its quietest
    ``PAUSE_WINDOW_S`` window (mean power) in the last two thirds of each clip-length stretch, i.e. at a pause when
    it has one; consecutive pieces are then merged greedily while they fit in one clip (WhisperX's
    ``merge_chunks``: new clip when adding the next piece would exceed the limit). Returns (start, end) sample
    offsets into ``audio``."""
    pieces: list[tuple[int, int]] = []
    start = 0
    for length in region_lengths:
        end = start + length
        cut = start
        while end - cut > max_samples:
            nxt = _quietest(audio, cut + max_samples // 3, cut + max_samples)
            pieces.append((cut, nxt))
            cut = nxt
        if end > cut:
            pieces.append((cut, end))
        start = end
    clips: list[tuple[int, int]] = []
    for a, b in pieces:
        if clips and b - clips[-1][0] <= max_samples:
            clips[-1] = (clips[-1][0], b)
        else:
            clips.append((a, b))
    return clips


def _quietest(audio: np.ndarray, lo: int, hi: int) -> int:
    """The sample in (lo, hi] at the centre of the quietest window there (10 ms grid)."""
    half, hop = int(PAUSE_WINDOW_S * SAMPLE_RATE) // 2, SAMPLE_RATE // 100
    a, b = max(lo - half, 0), min(hi + half, len(audio))
    power = np.concatenate(([0.0], np.cumsum(np.square(audio[a:b], dtype=np.float64))))
    centres = np.arange(hi, lo, -hop)  # latest first: among equally quiet points, the longest clip
    left, right = np.clip(centres - half - a, 0, b - a), np.clip(centres + half - a, 0, b - a)
    energy = (power[right] - power[left]) / np.maximum(right - left, 1)
    return int(centres[int(np.argmin(energy))])


class _SamplingWatch:
    """Stands in for ``WhisperModel.model`` (the CTranslate2 Whisper model) and notes whether a ``generate``
    call sampled: CTranslate2 samples when ``sampling_topk`` is not 1 (its default; 0 = the whole distribution,
    what faster-whisper's temperature fallback passes); with top-k 1 the temperature changes nothing (argmax).
    Everything else is the model's own."""

    def __init__(self, model):
        self._ct2 = model
        self.sampled = False

    def generate(self, *args, **kwargs):
        if kwargs.get("sampling_topk", 1) != 1:
            self.sampled = True
        return self._ct2.generate(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._ct2, name)


def _segment(seg) -> Segment:
    words = tuple(
        Word(round(w.start, 3), round(w.end, 3), w.word.strip(), round(w.probability, 4)) for w in (seg.words or ())
    )
    return Segment(round(seg.start, 3), round(seg.end, 3), seg.text.strip(), None, words)
