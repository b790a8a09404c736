"""Speech recognition backends. ``faster-whisper``: Whisper on CTranslate2, sequential or batched.

When the VAD stage found speech regions and ``vad_gating`` is on, only speech is transcribed, the way
faster-whisper's own ``vad_filter`` does it (speech chunks concatenated, timestamps mapped back), so
the result equals calling faster-whisper directly with the same VAD settings.
"""

from __future__ import annotations

import logging
import queue
import threading
import types
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
from pydantic import Field

from workbench.audio import SAMPLE_RATE
from workbench.backends.base import Backend, BackendOptions
from workbench.datamodel import Segment, Span, Transcript, Word
from workbench.errors import BackendUnavailable
from workbench.execution import cpu_threads, release_freed_memory
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
    batch_size: int = Field(0, ge=0, description="0 = sequential decoding; N > 0 = BatchedInferencePipeline, N clips "
                            "decoding at once (on CPU split over two model replicas, see replicas())")


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
        self._replicas = 1

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

        self._replicas = replicas(self._device, self._threads, self.options.batch_size)
        self._model = WhisperModel(
            self._source.location,
            device=self._device,
            compute_type=self._compute_type,
            cpu_threads=self._threads // self._replicas,
            num_workers=self._replicas,
            local_files_only=hub_offline(),
        )
        self._model.model = _SamplingWatch(self._model.model)
        if hasattr(self._model, "feature_extractor"):
            self._model.feature_extractor = _Features(self._model.feature_extractor)
        self._batched = [_batched_pipeline(BatchedInferencePipeline, self._model)
                         for _ in range(self._replicas)] if self.options.batch_size else None

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
        """As faster-whisper's own ``vad_filter`` path: the speech regions decoded as one signal, timestamps mapped
        back. Past :data:`LAZY_FEATURES_MIN_S` the signal is neither concatenated nor turned into features at once:
        the regions are read in place and features computed a window at a time (:class:`_LazyMel`), so memory
        does not grow with the recording."""
        from faster_whisper.transcribe import restore_speech_timestamps

        chunks = None if speech is None else [
            {"start": int(s.start * SAMPLE_RATE), "end": int(s.end * SAMPLE_RATE)} for s in speech]
        source = _Joined(samples, None if chunks is None else [(c["start"], c["end"]) for c in chunks])
        features = getattr(self._model, "feature_extractor", None)
        if isinstance(features, _Features) and source.length > LAZY_FEATURES_MIN_S * SAMPLE_RATE:
            audio = features.lazy(source)
        else:
            audio = samples if chunks is None else source.read(0, source.length)
        segments, info = self._model.transcribe(audio, vad_filter=False, **self._kwargs())
        if chunks is None:
            return segments, info
        return restore_speech_timestamps(segments, chunks, SAMPLE_RATE), info

    def _transcribe_batched(self, samples: np.ndarray, speech: tuple[Span, ...] | None):
        """Batched decoding of the speech regions, none of it lost: faster-whisper's batched pipeline reads only the
        first 30 s of each clip it is given (``pad_or_trim`` to 3000 feature frames), so the speech is first cut
        into clips of at most 30 s (:func:`plan_clips`: long regions split at their quietest point, short ones
        merged), the way WhisperX's ``merge_chunks`` prepares its batches. As in the sequential path, only the
        speech is decoded (regions read in place) and timestamps, words included, are mapped back.

        The pipeline computes (and stacks) the features of every clip it is handed before it decodes, so the clips
        go to it a group at a time (:func:`group_size`: whole batches), each group's speech copied only while it
        decodes: memory does not grow with the recording. With several model replicas (:func:`replicas`) each
        group is one batch and the groups decode concurrently, one per replica; words are timed in clip order
        whatever the order the groups finish in (:class:`_WordTiming`), so the transcript is the one a single
        call gives."""
        from faster_whisper.transcribe import restore_speech_timestamps

        regions = [(0, len(samples))] if speech is None else [
            (int(s.start * SAMPLE_RATE), int(s.end * SAMPLE_RATE)) for s in speech]
        joined = _Joined(samples, regions)
        clips = plan_clips(joined, [b - a for a, b in regions])
        pipelines = self._batched
        batch = max(1, self.options.batch_size // len(pipelines))  # per call; batch_size clips decode at once
        if len(pipelines) == 1:
            size = group_size(batch)
            groups = [clips[i : i + size] for i in range(0, len(clips), size)]
        else:
            groups = balanced_groups(clips, batch, len(pipelines))
        kwargs = self._kwargs()
        timing = _WordTiming()
        free: queue.SimpleQueue = queue.SimpleQueue()
        for pipeline in pipelines:
            free.put(pipeline)

        def decode(k: int, language: str | None):
            """Group ``k`` decoded (segments in the group's time, and faster-whisper's info) by a free replica."""
            group = groups[k]
            lo = group[0][0]
            # faster-whisper turns clip times back into samples with int(t * rate): the half sample keeps them exact
            stamps = [{"start": (a - lo + 0.5) / SAMPLE_RATE, "end": (b - lo + 0.5) / SAMPLE_RATE} for a, b in group]
            pipeline = free.get()
            try:
                pipeline.timing = _CallTiming(timing, k, lo / SAMPLE_RATE)
                decoded, info = pipeline.transcribe(joined.read(lo, group[-1][1]), vad_filter=False,
                                                    batch_size=batch, clip_timestamps=stamps,
                                                    **{**kwargs, "language": language})
                return list(decoded), info  # decoding happens here, lazily
            finally:
                timing.done(k)  # a group that failed does not hold up the words of the next
                free.put(pipeline)

        pool = ThreadPoolExecutor(len(pipelines), thread_name_prefix="whisper-batch")
        pending: deque = deque()
        language = kwargs["language"]
        try:
            pending.append(pool.submit(decode, 0, language))
            if language is None:  # detected on the first group's first 30 s, as one call would, for the rest
                language = pending[0].result()[1].language
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
        info = types.SimpleNamespace(language=language)  # all the caller reads of faster-whisper's info
        window = 2 * len(pipelines)  # groups in flight: each holds its clips' speech and features

        def segments():
            submitted, since_trim = 1, 0
            try:
                for k in range(len(groups)):
                    while submitted < len(groups) and submitted < k + window:
                        pending.append(pool.submit(decode, submitted, language))
                        submitted += 1
                    decoded, _ = pending.popleft().result()
                    since_trim += len(groups[k])
                    if since_trim >= GROUP_CLIPS:  # the speech and features of the groups decoded since
                        # (not after every small group: trimming holds the heap's lock while replicas decode)
                        release_freed_memory()
                        since_trim = 0
                    shift = groups[k][0][0] / SAMPLE_RATE
                    for seg in decoded:
                        yield _shifted(seg, shift)
            finally:
                pool.shutdown(cancel_futures=True)

        if speech is None:
            return segments(), info
        return restore_speech_timestamps(segments(), [{"start": a, "end": b} for a, b in regions], SAMPLE_RATE), info

    def describe(self) -> dict:
        info = super().describe()
        if self._source is not None:
            info.update(model_source=self._source.provenance, model_location=self._source.location)
        if self._device:
            info.update(device=self._device, compute_type=self._compute_type, threads=self._threads)
            if self._replicas > 1:
                info.update(replicas=self._replicas, threads_per_replica=self._threads // self._replicas)
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


#: Clips handed to the batched pipeline per call: it computes and stacks every clip's features before decoding
#: (about 2 MB per clip, twice), so this bounds the batched path's memory at any recording length.
GROUP_CLIPS = 16


def group_size(batch_size: int) -> int:
    """Clips per call to the batched pipeline: whole batches, about :data:`GROUP_CLIPS` clips."""
    return batch_size * max(1, GROUP_CLIPS // batch_size)


def replicas(device: str, threads: int, batch_size: int) -> int:
    """Model replicas the batched path decodes with: two on a CPU with at least two threads and a batch of two or
    more clips, each replica with half the threads and half the batch; otherwise one.

    Why: on CPU, beam search over a small batch multiplies small matrices that do not keep two threads busy, and
    the encoder of one batch waits for nothing from another. Two single-thread replicas decoding batches of 2
    concurrently beat one two-thread replica decoding batches of 4 (same clips, same words; 2-core AMD machine,
    paired in one process: 1.15–1.25× on dense speech and the meeting sample, see the README's "ASR path"). GPUs
    keep one replica; more than two on machines with more cores were not measured."""
    return 2 if device == "cpu" and threads >= 2 and batch_size >= 2 else 1


class _WordTiming:
    """Hands the end of the last timed speech from one group of clips to the next, in clip order.

    faster-whisper times each batch's words after the end of the speech before it (``last_speech_timestamp``: the
    first word after a long pause is kept short). Groups decoded concurrently still take it in order: a group's
    words wait for the group before it (its decoding does not), so the words come out as one call times them."""

    def __init__(self):
        self._turn = threading.Condition()
        self._next = 0  # the group whose words may be timed now
        self.end = 0.0  # the end of the last timed speech, in the joined speech's time

    def wait(self, k: int) -> None:
        with self._turn:
            self._turn.wait_for(lambda: self._next >= k)

    def done(self, k: int) -> None:
        with self._turn:
            self._next = max(self._next, k + 1)
            self._turn.notify_all()


class _CallTiming:
    """One call's place in the word timing: its group ``index`` and its time ``offset`` in the joined speech."""

    def __init__(self, timing: _WordTiming, index: int, offset: float):
        self.timing, self.index, self.offset = timing, index, offset


class _OrderedWords:
    """Stands in for the ``WhisperModel`` a batched pipeline decodes with: its ``add_word_timestamps`` aligns the
    words at once (CTranslate2's ``align``, the costly part, concurrently with other groups), then times them in
    clip order (:class:`_WordTiming`), from the end of the speech the group before timed; everything else is the
    model's own."""

    def __init__(self, model, pipeline):
        self._model, self._pipeline = model, pipeline

    def add_word_timestamps(self, segments, tokenizer, encoder_output, num_frames, prepend, append, _last):
        call = self._pipeline.timing
        aligned = None
        if segments:  # the text tokens faster-whisper aligns (WhisperModel.add_word_timestamps)
            tokens = [[t for sub in seg for t in sub["tokens"] if t < tokenizer.eot] for seg in segments]
            aligned = (tokens, self._model.find_alignment(tokenizer, tokens, encoder_output, num_frames))
        call.timing.wait(call.index)
        end = type(self._model).add_word_timestamps(_Aligned(self._model, aligned), segments, tokenizer,
                                                    encoder_output, num_frames, prepend, append,
                                                    call.timing.end - call.offset)
        if end is not None:
            call.timing.end = end + call.offset
        return end

    def __getattr__(self, name):
        return getattr(self._model, name)


class _Aligned:
    """The model, whose ``find_alignment`` returns the alignment already computed for the same text tokens."""

    def __init__(self, model, aligned):
        self._model, self._aligned = model, aligned

    def find_alignment(self, tokenizer, text_tokens, encoder_output, num_frames, *args, **kwargs):
        if self._aligned is not None and self._aligned[0] == text_tokens:
            return self._aligned[1]
        return self._model.find_alignment(tokenizer, text_tokens, encoder_output, num_frames, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._model, name)


def balanced_groups(clips: list, batch: int, replicas: int) -> list[list]:
    """Consecutive groups of at most ``batch`` clips, as many as a multiple of ``replicas`` (while there are clips
    enough) and of sizes that differ by at most one, larger first: the last round keeps every replica busy (six
    clips on two replicas with batches of 2: 2, 2, 1, 1 rather than 2, 2, 2, the last alone on one core)."""
    count = -(-len(clips) // batch)
    count = min(count + (-count) % replicas, len(clips))
    if not count:
        return []
    small, extra = divmod(len(clips), count)
    groups, start = [], 0
    for i in range(count):
        end = start + small + (i < extra)
        groups.append(clips[start:end])
        start = end
    return groups


def _batched_pipeline(base, model):
    """faster-whisper's ``BatchedInferencePipeline`` whose words are timed in clip order across calls and threads
    (:class:`_OrderedWords`; ``timing`` is set before each call)."""
    pipeline = base(model)
    pipeline.timing = _CallTiming(_WordTiming(), 0, 0.0)
    pipeline.model = _OrderedWords(model, pipeline)
    return pipeline


def _shifted(seg, seconds: float):
    """A faster-whisper segment (words included) moved ``seconds`` later."""
    if not seconds:
        return seg
    import dataclasses

    words = None if seg.words is None else [
        dataclasses.replace(w, start=w.start + seconds, end=w.end + seconds) for w in seg.words]
    return dataclasses.replace(seg, start=seg.start + seconds, end=seg.end + seconds, words=words)


def _quietest(audio: np.ndarray, lo: int, hi: int) -> int:
    """The sample in (lo, hi] at the centre of the quietest window there (10 ms grid)."""
    half, hop = int(PAUSE_WINDOW_S * SAMPLE_RATE) // 2, SAMPLE_RATE // 100
    a, b = max(lo - half, 0), min(hi + half, len(audio))
    power = np.concatenate(([0.0], np.cumsum(np.square(audio[a:b], dtype=np.float64))))
    centres = np.arange(hi, lo, -hop)  # latest first: among equally quiet points, the longest clip
    left, right = np.clip(centres - half - a, 0, b - a), np.clip(centres + half - a, 0, b - a)
    energy = (power[right] - power[left]) / np.maximum(right - left, 1)
    return int(centres[int(np.argmin(energy))])


#: Past this many seconds of (gated) audio, the sequential path computes Whisper's log-mel features a block at a
#: time (:class:`_LazyMel`) instead of for the whole recording at once (whose STFT takes ~2 GB per hour of audio;
#: ~170 MB at this bound). Below it the path is faster-whisper's own, bit for bit: the block-wise mel product rounds
#: the last bit differently (BLAS), which can change a word (the meeting sample: 19.0 % vs 19.5 % WER).
LAZY_FEATURES_MIN_S = 300.0
_BLOCK_FRAMES = 3000  # features computed (and cached) 30 s at a time


class _Joined:
    """Speech regions of ``samples`` read as one signal (what faster-whisper's ``collect_chunks`` would concatenate)
    without copying them: ``read(a, b)`` returns samples ``a:b`` of the concatenation as float32."""

    def __init__(self, samples: np.ndarray, chunks: list[tuple[int, int]] | None = None):
        self.samples = samples
        chunks = chunks if chunks is not None else [(0, len(samples))]
        self.starts = np.array([a for a, _ in chunks], dtype=np.int64)
        lengths = np.array([b - a for a, b in chunks], dtype=np.int64)
        self.offsets = np.concatenate(([0], np.cumsum(lengths)))
        self.length = int(self.offsets[-1])

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: slice) -> np.ndarray:
        """``joined[a:b]``, as :meth:`read` (what :func:`plan_clips` reads)."""
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("joined speech supports contiguous slices only")
        a, b, _ = key.indices(self.length)
        return self.read(a, b)

    def read(self, a: int, b: int | None) -> np.ndarray:
        a, b = max(a, 0), self.length if b is None else min(b, self.length)
        if b <= a:
            return np.zeros(0, np.float32)
        first = int(np.searchsorted(self.offsets, a, side="right")) - 1
        last = int(np.searchsorted(self.offsets, b, side="left"))
        parts = []
        for i in range(first, last):
            lo, hi = max(a, self.offsets[i]), min(b, self.offsets[i + 1])
            if hi > lo:
                s = self.starts[i] - self.offsets[i]
                parts.append(self.samples[s + lo : s + hi])
        out = np.concatenate(parts) if len(parts) != 1 else parts[0]
        return np.asarray(out, dtype=np.float32)


class _LazyMel:
    """Whisper's log-mel features of a long signal, computed a block of frames at a time when sliced.

    Equal (up to float rounding in the mel product) to ``FeatureExtractor.__call__(signal)`` (faster-whisper 1.x):
    the same 160-sample end padding, reflect padding of ``n_fft // 2`` on both sides, STFT, mel filter bank and
    log10; its one global step — the floor at the recording's maximum minus 8 — takes the maximum from a first
    pass over the blocks. faster-whisper's decoding loop reads features only through ``shape`` and slices
    ``[:, a:b]`` / ``[..., a:b]``, which is all this supports."""

    ndim = 2

    def __init__(self, extractor, source: _Joined, padding: int = 160, block: int = _BLOCK_FRAMES):
        self._fe, self._src, self._block = extractor, source, block
        self._hop, self._n_fft = extractor.hop_length, extractor.n_fft
        self._ext = source.length + padding  # the signal with its end padding
        frames = 1 + self._ext // self._hop  # STFT frames of the reflect-padded signal; the last one is dropped
        self.shape = (extractor.mel_filters.shape[0], frames - 1)
        self._window = np.hanning(self._n_fft + 1)[:-1].astype("float32")
        self._cache: dict[int, np.ndarray] = {}
        peak = max(float(self._mel(i * block, min((i + 1) * block, self.shape[1])).max())
                   for i in range(self._nblocks()))
        self._floor = np.log10(np.clip(np.float32(peak), a_min=1e-10, a_max=None)) - 8.0

    def _nblocks(self) -> int:
        return -(-self.shape[1] // self._block)

    def _mel(self, a: int, b: int) -> np.ndarray:
        """Mel power of frames ``a:b``."""
        half = self._n_fft // 2
        idx = np.arange(a * self._hop, (b - 1) * self._hop + self._n_fft, dtype=np.int64) - half
        idx = np.abs(idx)  # reflect at the start
        over = idx >= self._ext
        idx[over] = 2 * (self._ext - 1) - idx[over]  # reflect at the end
        lo, hi = int(idx.min()), int(idx.max()) + 1
        base = np.zeros(hi - lo, np.float32)
        got = self._src.read(lo, hi)
        base[: len(got)] = got  # past the signal: the zero end padding
        stft = self._fe.stft(base[idx - lo], self._n_fft, self._hop, window=self._window, center=False,
                             return_complex=True).astype("complex64")
        return self._fe.mel_filters @ (np.abs(stft) ** 2)

    def _block_features(self, i: int) -> np.ndarray:
        if i not in self._cache:
            a, b = i * self._block, min((i + 1) * self._block, self.shape[1])
            log_spec = np.log10(np.clip(self._mel(a, b), a_min=1e-10, a_max=None))
            log_spec = np.maximum(log_spec, self._floor)
            if len(self._cache) >= 2:  # decoding moves forward: keep the current block and the next
                self._cache.pop(min(self._cache))
            self._cache[i] = (log_spec + 4.0) / 4.0
        return self._cache[i]

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple) or len(key) != 2 or not isinstance(key[1], slice) or (
                key[0] is not Ellipsis and key[0] != slice(None)):
            raise TypeError(f"lazy features support [:, a:b] and [..., a:b] only, not {key!r}")
        a, b, step = key[1].indices(self.shape[1])
        if step != 1:
            raise TypeError("lazy features support contiguous slices only")
        if b <= a:
            return np.zeros((self.shape[0], 0), np.float32)
        parts = []
        for i in range(a // self._block, (b - 1) // self._block + 1):
            block = self._block_features(i)
            lo = max(a - i * self._block, 0)
            parts.append(block[:, lo : min(b - i * self._block, block.shape[1])])
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0].copy()


class _Features:
    """Stands in for ``WhisperModel.feature_extractor``: features of a signal handed over with :meth:`lazy` are a
    :class:`_LazyMel`; every other call (the batched pipeline's ≤ 30 s clips, language detection) is the
    extractor's own."""

    def __init__(self, extractor):
        self._fe = extractor
        self._pending: tuple[np.ndarray, _Joined] | None = None

    def lazy(self, source: _Joined) -> np.ndarray:
        """A stand-in waveform (of the signal's length, no memory) to pass to ``transcribe``."""
        stand_in = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape=(source.length,), strides=(0,),
                                                   writeable=False)
        self._pending = (stand_in, source)
        return stand_in

    def __call__(self, waveform, padding=160, chunk_length=None):
        if self._pending is not None and waveform is self._pending[0]:
            source = self._pending[1]
            self._pending = None
            if chunk_length is not None:  # as FeatureExtractor.__call__ does
                self._fe.n_samples = chunk_length * self._fe.sampling_rate
                self._fe.nb_max_frames = self._fe.n_samples // self._fe.hop_length
            return _LazyMel(self._fe, source, padding)
        return self._fe(waveform, padding=padding, chunk_length=chunk_length)

    def __getattr__(self, name):
        return getattr(self._fe, name)


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
