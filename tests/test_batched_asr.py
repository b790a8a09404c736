"""Batched ASR loses nothing: faster-whisper's BatchedInferencePipeline reads only the first 30 s of each clip,
so speech is cut into clips of at most 30 s (split at pauses, merged up to 30 s) before batching.

The integration test composes 70.8 s of continuous real speech (the pyannote sample's speech, 6.4–30 s, three
times without gaps; its STM shifted) and checks batched decoding scores no more than 1 WER point worse than sequential (measured on the
2-core machine: sequential 13.8 %, batched 11.9 %; ASR 63 s vs 51 s under load)."""

from __future__ import annotations

import types
import wave
from pathlib import Path

import numpy as np
import pytest

from conftest import MEASURED, PYANNOTE_STM, PYANNOTE_WAV
from workbench.backends.asr import FasterWhisper, FasterWhisperOptions, plan_clips
from workbench.datamodel import Span

SR = 16000
MAX = 30 * SR


def speechlike(seconds: float, pauses: tuple[float, ...] = (), seed: int = 0) -> np.ndarray:
    """Noise bursts standing in for speech, with 0.5 s of near-silence centred at each pause (seconds)."""
    audio = np.random.default_rng(seed).normal(0, 0.1, int(seconds * SR)).astype(np.float32)
    for p in pauses:
        audio[int((p - 0.25) * SR):int((p + 0.25) * SR)] *= 0.001
    return audio


def check_tiling(clips, total):
    assert clips[0][0] == 0 and clips[-1][1] == total
    for (a, b), (c, _) in zip(clips, clips[1:]):
        assert b == c  # contiguous: no speech lost, none decoded twice
    assert all(0 < b - a <= MAX for a, b in clips)


def test_long_region_is_split_at_its_pauses_into_clips_of_at_most_30_s():
    audio = speechlike(75.0, pauses=(12.0, 27.0, 41.0, 58.0))
    clips = plan_clips(audio, [len(audio)])
    check_tiling(clips, len(audio))
    for _, end in clips[:-1]:  # every cut falls inside one of the pauses
        assert any(abs(end / SR - p) <= 0.25 for p in (12.0, 27.0, 41.0, 58.0)), end / SR


def test_a_region_without_pauses_is_still_cut_under_30_s():
    audio = speechlike(95.0, seed=1)
    check_tiling(plan_clips(audio, [len(audio)]), len(audio))


def test_short_regions_are_merged_up_to_30_s_and_long_ones_split():
    lengths = [int(s * SR) for s in (4.0, 7.5, 12.0, 45.0, 2.0, 29.9, 31.0, 0.5)]
    audio = speechlike(sum(lengths) / SR, seed=2)
    clips = plan_clips(audio, lengths)
    check_tiling(clips, len(audio))
    assert clips[0] == (0, lengths[0] + lengths[1] + lengths[2])  # 23.5 s: three regions in one clip
    assert len(clips) < len(lengths) + 3


class FakeBatched:
    """Stands in for BatchedInferencePipeline: records what it is handed, returns one timed word per clip."""

    def __init__(self):
        self.calls = []

    def transcribe(self, audio, *, clip_timestamps, **kwargs):
        from faster_whisper.transcribe import Segment, Word

        self.calls.append((audio, clip_timestamps, kwargs))
        def heard(c):  # what the clip starts with: the same clip gives the same text, whichever call it is in
            return f"{float(audio[int(c['start'] * SR)]):.7f}"

        segments = [Segment(i, 0, c["start"], c["end"], heard(c), [], 0.0, 1.0, 0.0,
                            [Word(c["start"] + 0.1, c["start"] + 0.3, heard(c), 0.9)], 0.0)
                    for i, c in enumerate(clip_timestamps)]
        return iter(segments), types.SimpleNamespace(language="en")


def test_no_clip_handed_to_the_batched_pipeline_exceeds_30_s_and_all_speech_is_covered():
    audio = speechlike(160.0, pauses=(50.0, 70.0, 95.0), seed=3)
    speech = (Span(1.0, 3.0), Span(5.0, 80.0), Span(82.0, 83.5), Span(90.0, 150.0))
    backend = FasterWhisper(FasterWhisperOptions(batch_size=4, word_timestamps=True))
    backend._model, backend._batched = object(), [FakeBatched()]
    transcript = backend.transcribe(audio, speech)
    [(joined, clips, kwargs)] = backend._batched[0].calls
    assert kwargs["vad_filter"] is False and kwargs["batch_size"] == 4
    speech_samples = sum(int(s.end * SR) - int(s.start * SR) for s in speech)
    assert len(joined) == speech_samples
    bounds = [(int(c["start"] * SR), int(c["end"] * SR)) for c in clips]  # as faster-whisper reads them
    check_tiling(bounds, speech_samples)
    # timestamps (words included) come back in the recording's time, inside the speech regions
    for seg in transcript.segments:
        assert any(s.start <= w.start and w.end <= s.end for w in seg.words for s in speech)
        assert seg.start == seg.words[0].start


def test_without_vad_the_whole_recording_is_cut_into_clips_of_at_most_30_s():
    audio = speechlike(70.0, pauses=(25.0, 48.0), seed=4)
    backend = FasterWhisper(FasterWhisperOptions(batch_size=2, vad_gating=False))
    backend._model, backend._batched = object(), [FakeBatched()]
    backend.transcribe(audio, None)
    [(joined, clips, _)] = backend._batched[0].calls
    check_tiling([(int(c["start"] * SR), int(c["end"] * SR)) for c in clips], len(audio))


def test_long_speech_goes_to_the_batched_pipeline_a_group_of_whole_batches_at_a_time(monkeypatch):
    """The pipeline computes every clip's features before decoding: handed the speech of hours at once, its memory
    grows with the recording. Groups of whole batches give the same clips, batches and timestamps as one call."""
    from workbench.backends import asr

    audio = speechlike(400.0, pauses=tuple(range(20, 400, 23)), seed=5)
    speech = (Span(1.0, 120.0), Span(121.0, 250.0), Span(255.0, 399.0))

    def run(group_clips):
        monkeypatch.setattr(asr, "GROUP_CLIPS", group_clips)
        backend = FasterWhisper(FasterWhisperOptions(batch_size=2, word_timestamps=True, language="en"))
        backend._model, backend._batched = object(), [FakeBatched()]
        return backend.transcribe(audio, speech), backend._batched[0].calls

    whole, [(joined, all_clips, _)] = run(64)
    grouped, calls = run(5)  # → 4 clips (two batches of 2) per call
    assert len(calls) == -(-len(all_clips) // 4) > 1
    assert [len(c[1]) for c in calls[:-1]] == [4] * (len(calls) - 1)
    assert sum(len(c[0]) for c in calls) == len(joined)  # each sample of speech handed over once
    assert all(len(c[0]) <= 4 * MAX for c in calls)
    assert all(kw["language"] == "en" for _, _, kw in calls)
    assert grouped == whole  # same segments, same times (words included), in the recording's time


def test_two_replicas_on_a_cpu_with_two_threads_and_a_batch_of_two_or_more():
    from workbench.backends.asr import replicas

    assert replicas("cpu", 2, 4) == 2 and replicas("cpu", 8, 2) == 2
    assert replicas("cpu", 1, 4) == 1  # one thread (e.g. a batch worker's share of the cores)
    assert replicas("cpu", 2, 1) == 1 and replicas("cpu", 2, 0) == 1
    assert replicas("cuda", 8, 8) == 1


def test_with_two_replicas_each_call_gets_one_batch_and_every_clip_is_decoded_once():
    audio = speechlike(200.0, pauses=tuple(range(20, 200, 23)), seed=6)
    backend = FasterWhisper(FasterWhisperOptions(batch_size=4, word_timestamps=True, language="en", vad_gating=False))
    fakes = [FakeBatched(), FakeBatched()]
    backend._model, backend._batched = object(), fakes
    transcript = backend.transcribe(audio, None)
    calls = [c for fake in fakes for c in fake.calls]
    assert all(kw["batch_size"] == 2 and len(clips) <= 2 for _, clips, kw in calls)  # half the batch each
    assert sum(len(joined) for joined, _, _ in calls) == len(audio)
    starts = [seg.start for seg in transcript.segments]
    assert starts == sorted(starts) and len(starts) == sum(len(clips) for _, clips, _ in calls)  # in clip order


def test_the_last_round_of_groups_keeps_both_replicas_busy():
    from workbench.backends.asr import balanced_groups

    clips = list(range(6))
    assert balanced_groups(clips, 2, 2) == [[0, 1], [2, 3], [4], [5]]  # not 2, 2, 2 (the last alone)
    assert balanced_groups(list(range(7)), 2, 2) == [[0, 1], [2, 3], [4, 5], [6]]
    assert balanced_groups(list(range(8)), 2, 2) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert balanced_groups([0], 2, 2) == [[0]] and balanced_groups([], 2, 2) == []
    for n in range(1, 40):
        groups = balanced_groups(list(range(n)), 3, 2)
        assert sum(groups, []) == list(range(n)) and all(0 < len(g) <= 3 for g in groups)
        assert len(groups) % 2 == 0 or len(groups) == n


def test_a_group_that_fails_fails_the_transcription_and_holds_nothing_up():
    audio = speechlike(200.0, pauses=tuple(range(20, 200, 23)), seed=6)
    backend = FasterWhisper(FasterWhisperOptions(batch_size=4, language="en", vad_gating=False))

    class Failing(FakeBatched):
        def transcribe(self, audio, **kwargs):
            if len(self.calls) == 1:
                raise RuntimeError("decoder failed")
            return super().transcribe(audio, **kwargs)

    backend._model, backend._batched = object(), [Failing(), Failing()]
    with pytest.raises(RuntimeError, match="decoder failed"):
        backend.transcribe(audio, None)


def test_words_are_timed_in_clip_order_whichever_group_finishes_first():
    """The group after waits for the one before (its alignment does not) and starts from the end of its speech."""
    import threading

    from workbench.backends.asr import _CallTiming, _OrderedWords, _WordTiming

    class Model:
        def __init__(self):
            self.timed, self.aligned = [], []

        def find_alignment(self, tokenizer, tokens, encoder_output, num_frames):
            self.aligned.append(tokens)
            return [f"aligned {tokens}"]

        def add_word_timestamps(self, segments, tokenizer, encoder_output, num_frames, prepend, append, last):
            tokens = [[t for sub in seg for t in sub["tokens"] if t < tokenizer.eot] for seg in segments]
            [alignment] = self.find_alignment(tokenizer, tokens, encoder_output, num_frames)
            self.timed.append((alignment, last))
            return segments[-1][-1]["end"]

    model, timing = Model(), _WordTiming()
    tokenizer = types.SimpleNamespace(eot=100)
    later = types.SimpleNamespace(timing=_CallTiming(timing, 1, 30.0))
    first = types.SimpleNamespace(timing=_CallTiming(timing, 0, 0.0))
    segments = [[{"tokens": [1, 2, 100], "end": 25.0}]]
    done = threading.Event()
    thread = threading.Thread(target=lambda: (_OrderedWords(model, later).add_word_timestamps(
        [[{"tokens": [3, 100], "end": 4.0}]], tokenizer, None, [3000], "", "", 0.0), done.set()))
    thread.start()
    assert not done.wait(0.3)  # aligned, but its words wait for the group before
    assert model.aligned == [[[3]]] and model.timed == []
    _OrderedWords(model, first).add_word_timestamps(segments, tokenizer, None, [3000], "", "", 0.0)
    timing.done(0)
    thread.join(10)
    assert done.is_set()
    # each timed with its own alignment (not aligned twice), the later from the end of the speech before (25 s,
    # which is -5 s in its own time)
    assert model.timed == [("aligned [[1, 2]]", 0.0), ("aligned [[3]]", -5.0)]
    assert model.aligned == [[[3]], [[1, 2]]]
    assert timing.end == 34.0


# --- on real speech -------------------------------------------------------------------------------------------

SPEECH_FROM_S = 6.4  # the sample's first 6.4 s are a line tone, no speech
COPIES = 3


@pytest.fixture(scope="module")
def continuous_speech(tmp_path_factory):
    """70.8 s of continuous real speech (silero finds one region) and its exact STM."""
    tmp = tmp_path_factory.mktemp("continuous")
    with wave.open(str(PYANNOTE_WAV), "rb") as src:
        params, frames = src.getparams(), src.readframes(src.getnframes())
    start = int(SPEECH_FROM_S * params.framerate) * params.sampwidth
    speech = frames[start:]
    span = len(speech) / params.sampwidth / params.framerate
    wav = tmp / "continuous.wav"
    with wave.open(str(wav), "wb") as dst:
        dst.setparams(params)
        dst.writeframes(speech * COPIES)
    lines = []
    for k in range(COPIES):
        for line in PYANNOTE_STM.read_text().splitlines():
            rec, ch, spk, s, e, text = line.split(maxsplit=5)
            shift = k * span - SPEECH_FROM_S
            lines.append(f"continuous {ch} {spk} {float(s) + shift:.3f} {float(e) + shift:.3f} {text}")
    stm = tmp / "continuous.stm"
    stm.write_text("\n".join(lines) + "\n")
    return wav, stm


@pytest.mark.integration
def test_batched_is_no_more_than_one_wer_point_worse_than_sequential_on_continuous_speech(continuous_speech, tmp_path):
    from workbench import runner
    from workbench.recipes import parse_recipe

    wav, stm = continuous_speech
    asr = {"backend": "faster-whisper", "model": "base", "language": "en", "beam_size": 5, "word_timestamps": True}
    recipes = [parse_recipe({"pipeline": "cascade", "vad": {"backend": "silero"}, "asr": {**asr, **extra}}, name=name)
               for name, extra in (("sequential", {}), ("batched", {"batch_size": 8}))]
    item = runner.load_item(str(wav), [str(stm)])
    seq, bat = runner.run_recipes(recipes, [item], writer=runner.MemoryWriter(), run_id="t")
    assert seq.error is None and bat.error is None
    wer_s, wer_b = seq.scores.words.rate, bat.scores.words.rate
    asr_s, asr_b = (next(t.wall_s for t in r.timings if t.stage == "asr") for r in (seq, bat))
    MEASURED.append(f"continuous 70.8 s speech: WER sequential {wer_s:.3f}, batched {wer_b:.3f}; "
                    f"asr s sequential {asr_s:.2f}, batched {asr_b:.2f}")
    assert max(w.end for seg in bat.transcript.segments for w in seg.words) > 60.0  # the last 40 s were decoded
    assert wer_b <= wer_s + 0.01  # batched loses nothing: at most 1 WER point worse (measured: 1.9 points better)


@pytest.mark.integration
def test_decoding_the_clips_a_group_at_a_time_gives_what_one_call_gives(continuous_speech, monkeypatch):
    """The real batched pipeline, clips handed over one batch per call (their words timed with the end of the speech
    carried from the call before) against all at once: the same words at the same times (same process, threads)."""
    from workbench.audio import load_audio
    from workbench.backends import asr
    from workbench.backends.vad import SileroOptions, SileroVad

    wav, _ = continuous_speech
    samples = load_audio(str(wav)).samples
    vad = SileroVad(SileroOptions())
    vad.load()
    speech = vad.detect(samples)
    backend = FasterWhisper(FasterWhisperOptions(model="tiny.en", language="en", word_timestamps=True, batch_size=1))
    backend.load()
    whole = backend.transcribe(samples, speech)
    monkeypatch.setattr(asr, "GROUP_CLIPS", 1)
    calls = []
    real = backend._batched[0].transcribe
    monkeypatch.setattr(backend._batched[0], "transcribe", lambda audio, **kw: calls.append(len(audio)) or real(audio, **kw))
    grouped = backend.transcribe(samples, speech)
    assert len(calls) >= 3  # 70.8 s of speech: at least three clips, one call each
    assert [s.text for s in grouped.segments] == [s.text for s in whole.segments]
    words = [(w.text, w.start, w.end) for s in grouped.segments for w in s.words]
    assert [w[0] for w in words] == [w.text for s in whole.segments for w in s.words]
    for (_, a, b), w in zip(words, (w for s in whole.segments for w in s.words)):
        assert abs(a - w.start) <= 0.002 and abs(b - w.end) <= 0.002


@pytest.mark.integration
def test_two_replicas_decoding_concurrently_give_what_one_call_gives(continuous_speech, monkeypatch):
    """Two single-thread replicas decoding one clip each at a time, concurrently, against one single-thread replica
    decoding every clip in one call (batches of one on both sides: the same computation per clip): the same words
    at the same times — each group's words are timed after the speech of the group before, whichever ends first."""
    import threading

    from workbench.audio import load_audio
    from workbench.backends.vad import SileroOptions, SileroVad

    wav, _ = continuous_speech
    samples = load_audio(str(wav)).samples
    vad = SileroVad(SileroOptions())
    vad.load()
    speech = vad.detect(samples)
    options = dict(model="tiny.en", language="en", word_timestamps=True)
    one = FasterWhisper(FasterWhisperOptions(**options, batch_size=1, cpu_threads=1))
    one.load()
    assert len(one._batched) == 1
    whole = one.transcribe(samples, speech)
    two = FasterWhisper(FasterWhisperOptions(**options, batch_size=2, cpu_threads=2))
    two.load()
    assert len(two._batched) == 2 and two.describe()["replicas"] == 2 and two.describe()["threads_per_replica"] == 1
    threads = []
    for pipeline in two._batched:
        real = pipeline.transcribe
        monkeypatch.setattr(pipeline, "transcribe", lambda audio, real=real, **kw: threads.append(
            threading.current_thread().name) or real(audio, **kw))
    concurrent = two.transcribe(samples, speech)
    assert len(threads) >= 3 and len(set(threads)) == 2  # one clip per call, on two threads
    assert [s.text for s in concurrent.segments] == [s.text for s in whole.segments]
    got = [(w.text, w.start, w.end) for s in concurrent.segments for w in s.words]
    want = [(w.text, w.start, w.end) for s in whole.segments for w in s.words]
    assert [w[0] for w in got] == [w[0] for w in want]
    for (_, a, b), (_, c, d) in zip(got, want):
        assert abs(a - c) <= 0.002 and abs(b - d) <= 0.002
