"""Long recordings in bounded memory (issue 15, item 2): the cascade's stages read the recording in place, a window
or a batch at a time, and give what the whole-recording computations gave.

- Whisper's log-mel features a block at a time (``_LazyMel``) against faster-whisper's ``FeatureExtractor`` on the
  whole signal; the speech regions read in place (``_Joined``) against their concatenation.
- Silero's probabilities batch by batch from the samples in place against faster-whisper's ``SileroVADModel`` on
  the padded copy, and the speech regions against ``get_speech_timestamps``, for the VAD stage's settings and the
  diarization's fine ones.
- Turns from windows by bisection against the exhaustive nearest-window search.
- Sequential transcription with window-at-a-time features gives the words of the whole-signal path
  (integration: a real Whisper model; within the tolerance of tests/agreement.py).

Memory itself is measured by ``benchmarks/longform.py`` (a benchmark, not a test)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import PYANNOTE_WAV
from workbench.audio import SAMPLE_RATE, load_audio
from workbench.backends.asr import _Features, _Joined, _LazyMel
from workbench.backends.diarization import _turns, _windows
from workbench.backends.vad import speech_probabilities, speech_timestamps
from workbench.datamodel import Span

MEETING_WAV = PYANNOTE_WAV.parent.parent / "meeting" / "meeting.wav"


@pytest.fixture(scope="module")
def meeting() -> np.ndarray:
    return load_audio(MEETING_WAV).samples


@pytest.fixture(scope="module")
def extractor():
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor()


@pytest.mark.parametrize("seconds", [29.99, 7.0 + 37 / SAMPLE_RATE, 0.06])
def test_features_a_block_at_a_time_equal_the_whole_signals(meeting, extractor, seconds):
    signal = meeting[: int(seconds * SAMPLE_RATE)]
    full = extractor(signal)
    lazy = _LazyMel(extractor, _Joined(signal), block=700)  # blocks of 7 s: several, and a short last one
    assert lazy.shape == full.shape
    np.testing.assert_allclose(lazy[:, 0 : full.shape[1]], full, rtol=0, atol=1e-5)
    for a, b in ((0, 3), (650, 1430), (1399, 1401), (full.shape[1] - 5, full.shape[1] + 50)):
        np.testing.assert_allclose(lazy[..., a:b], full[..., a:b], rtol=0, atol=1e-5)


def test_features_of_speech_regions_read_in_place(meeting, extractor):
    regions = [(100, 50_000), (60_000, 200_000), (300_000, 400_000), (400_000, 400_512)]
    joined = _Joined(meeting, regions)
    concatenated = np.concatenate([meeting[a:b] for a, b in regions])
    assert joined.length == len(concatenated)
    assert np.array_equal(joined.read(0, joined.length), concatenated)
    assert np.array_equal(joined.read(49_800, 150_000), concatenated[49_800:150_000])  # across a region boundary
    assert np.array_equal(joined.read(-5, 10), concatenated[:10])
    assert joined.read(joined.length, joined.length + 9).size == 0
    np.testing.assert_allclose(_LazyMel(extractor, joined, block=500)[:, :], extractor(concatenated), rtol=0, atol=1e-5)


def test_lazy_features_only_for_the_signal_handed_over(meeting, extractor):
    features = _Features(extractor)
    short = meeting[:SAMPLE_RATE]
    np.testing.assert_array_equal(features(short), extractor(short))  # the batched pipeline's clips: its own
    stand_in = features.lazy(_Joined(meeting))
    assert stand_in.shape == meeting.shape and stand_in.strides == (0,)  # no memory
    assert isinstance(features(stand_in), _LazyMel)
    assert features.time_per_frame == extractor.time_per_frame
    with pytest.raises(TypeError):
        _LazyMel(extractor, _Joined(short))[0]


def test_speech_probabilities_in_place_equal_faster_whispers(meeting, monkeypatch):
    from faster_whisper.vad import get_vad_model

    import workbench.backends.vad as vad

    model = get_vad_model()
    for n in (len(meeting), 512 * 100, 512 * 100 + 7):
        signal = meeting[:n]
        # many batches (the recurrent state carried between them); faster-whisper scores 10,000 windows at once
        monkeypatch.setattr(vad, "_ENCODER_BATCH", 37 if n < len(meeting) else 1000)
        expected = model(np.pad(signal, (0, 512 - len(signal) % 512))).reshape(-1)
        assert np.array_equal(speech_probabilities(signal), expected)


@pytest.mark.parametrize("options", [
    {},  # the VAD stage's (faster-whisper's defaults)
    {"min_silence_duration_ms": 100, "speech_pad_ms": 30, "min_speech_duration_ms": 250},  # the diarization's
    {"max_speech_duration_s": 5, "threshold": 0.6},
])
def test_speech_regions_equal_faster_whispers(meeting, options):
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    assert speech_timestamps(meeting, VadOptions(**options)) == get_speech_timestamps(meeting, VadOptions(**options))


def _turns_exhaustive(regions, windows, labels, hop):
    """The nearest-window search as it was: every step against every window (quadratic)."""
    centres = np.array([(w.start + w.end) / 2 for w in windows])
    out = []
    for r in regions:
        edges = np.append(np.arange(r.start, r.end, hop), r.end)
        for a, b in zip(edges[:-1], edges[1:]):
            label = f"SPEAKER_{int(labels[np.argmin(np.abs(centres - (a + b) / 2))]):02d}"
            if out and out[-1][2] == label and abs(out[-1][1] - a) < 1e-6:
                out[-1] = (out[-1][0], round(float(b), 3), label)
            else:
                out.append((round(float(a), 3), round(float(b), 3), label))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_turns_by_bisection_equal_the_exhaustive_search(seed):
    rng = np.random.default_rng(seed)
    t, regions = 0.0, []
    for _ in range(60):
        t += float(rng.uniform(0.05, 3.0))
        length = float(rng.choice([0.1, 0.7, 1.5, rng.uniform(1.5, 20.0)]))
        regions.append(Span(round(t, 3), round(t + length, 3)))
        t += length
    windows = _windows(regions, 1.5, 0.25)
    labels = rng.integers(0, 3, len(windows))
    got = [(x.start, x.end, x.speaker) for x in _turns(regions, windows, labels, 0.25)]
    assert got == _turns_exhaustive(regions, windows, labels, 0.25)


@pytest.mark.integration
def test_window_at_a_time_features_give_the_same_words(monkeypatch):
    """The meeting sample (62 s of speech after VAD) through the sequential path twice: features for the whole
    signal, then a block at a time; the same WER against its reference within the tolerance of tests/agreement.py,
    and the two transcripts within its 10-point bound of each other."""
    import workbench.backends.asr as asr
    from conftest import MEASURED, MEETING_STM
    from workbench.backends.asr import FasterWhisper, FasterWhisperOptions
    from workbench.backends.vad import SileroOptions, SileroVad
    from workbench.metrics import word_errors
    from workbench.references import load_reference

    samples = load_audio(MEETING_WAV).samples
    speech = SileroVad(SileroOptions()).detect(samples)
    backend = FasterWhisper(FasterWhisperOptions(model="base", language="en", word_timestamps=True))
    made = []
    original = _LazyMel.__init__

    def spy(self, *args, **kwargs):
        made.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(_LazyMel, "__init__", spy)
    monkeypatch.setattr(asr, "LAZY_FEATURES_MIN_S", float("inf"))
    whole = backend.transcribe(samples, speech)
    assert not made
    monkeypatch.setattr(asr, "LAZY_FEATURES_MIN_S", 0.0)
    lazy = backend.transcribe(samples, speech)
    assert made, "the long-recording path was not taken"
    reference = load_reference(str(MEETING_STM)).text
    wer_whole, wer_lazy = word_errors(reference, whole.text).rate, word_errors(reference, lazy.text).rate
    MEASURED.append(f"meeting WER, features whole {wer_whole:.4f}, a block at a time {wer_lazy:.4f}; "
                    f"same words: {whole.text == lazy.text}")
    assert abs(wer_whole - wer_lazy) <= 0.01 + 1e-12, (whole.text, lazy.text)
    assert word_errors(whole.text, lazy.text).rate <= 0.10
