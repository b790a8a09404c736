"""workbench.audio: decoding many formats to 16 kHz mono float32, and one clear error per bad input.

All inputs are generated in tmp_path with PyAV's bundled encoders or the ``wave`` module.
"""

from __future__ import annotations

import fractions
import wave
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from workbench.audio import SAMPLE_RATE, Audio, load_audio, probe_audio  # noqa: E402
from workbench.errors import AudioError  # noqa: E402

SAMPLE_WAV = Path(__file__).resolve().parent.parent / "samples" / "pyannote" / "sample.wav"

# Each channel gets its own tones (all below 4 kHz, so they survive any rate here unchanged).
_TONES = [
    ((220.0, 0.20), (1250.0, 0.10)),
    ((330.0, 0.15), (2100.0, 0.10)),
    ((440.0, 0.10), (900.0, 0.05)),
    ((550.0, 0.10), (3100.0, 0.05)),
    ((660.0, 0.08), (1700.0, 0.05)),
    ((60.0, 0.10), (120.0, 0.05)),
]


def tones(rate: int, seconds: float, channels: int) -> np.ndarray:
    """(channels, n) float32, a different pair of tones per channel."""
    t = np.arange(int(round(rate * seconds))) / rate
    return np.stack(
        [sum(a * np.sin(2 * np.pi * f * t + c) for f, a in _TONES[c]) for c in range(channels)]
    ).astype(np.float32)


def expected_mono(seconds: float, channels: int) -> np.ndarray:
    """What the decoder should give for ``tones(..., channels)``: the channels' mean at 16 kHz."""
    return tones(SAMPLE_RATE, seconds, channels).mean(axis=0)


def write_wav(path: Path, x: np.ndarray, rate: int) -> Path:
    """16-bit PCM WAV with the ``wave`` module; ``x`` is (channels, n) in [-1, 1]."""
    pcm = np.clip(np.round(x.T * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


_LAYOUTS = {1: "mono", 2: "stereo", 4: "quad", 6: "5.1"}


def encode(
    path: Path,
    x: np.ndarray | None,
    rate: int,
    codec: str | None,
    *,
    fmt: str | None = None,
    video: str | None = None,
    video_frames: int = 10,
) -> Path:
    """Write ``x`` ((channels, n) float) with PyAV: audio ``codec`` and optionally a ``video`` track."""
    with av.open(str(path), "w", format=fmt) as out:
        vstream = None
        if video:
            vstream = out.add_stream(video, rate=10)
            vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        if codec is not None and x is not None:
            layout = _LAYOUTS[x.shape[0]]
            astream = out.add_stream(codec, rate=rate, layout=layout)
            if codec == "vorbis":  # FFmpeg's native Vorbis encoder is "experimental"
                astream.codec_context.options = {"strict": "experimental"}
            for i in range(0, x.shape[1], 1024):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(x[:, i : i + 1024], dtype=np.float32), format="fltp", layout=layout
                )
                frame.sample_rate, frame.pts, frame.time_base = rate, i, fractions.Fraction(1, rate)
                for packet in astream.encode(frame):
                    out.mux(packet)
            for packet in astream.encode(None):
                out.mux(packet)
        if vstream is not None:
            for k in range(video_frames):
                img = np.full((48, 64, 3), (k * 25) % 256, dtype=np.uint8)
                vframe = av.VideoFrame.from_ndarray(img, format="rgb24")
                vframe.pts = k
                for packet in vstream.encode(vframe):
                    out.mux(packet)
            for packet in vstream.encode(None):
                out.mux(packet)
    return path


def need(*codecs: str) -> None:
    missing = [c for c in codecs if c not in av.codecs_available]
    if missing:
        pytest.skip(f"PyAV's bundled FFmpeg has no {', '.join(missing)} encoder here")


def best_correlation(got: np.ndarray, want: np.ndarray, max_lag: int = 800) -> float:
    """Largest normalised correlation over lags up to ``max_lag`` samples (codec delays)."""
    n = min(len(got), len(want)) - 2 * max_lag
    w = want[max_lag : max_lag + n]
    best = -1.0
    for lag in range(0, 2 * max_lag + 1, 1):
        g = got[lag : lag + n]
        c = float(np.dot(g, w) / (np.linalg.norm(g) * np.linalg.norm(w) + 1e-12))
        best = max(best, c)
    return best


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def assert_decoded(audio: Audio, *, seconds: float, rate: int, channels: int, tol_s: float = 0.05) -> None:
    assert isinstance(audio, Audio)
    s = audio.samples
    assert s.dtype == np.float32 and s.ndim == 1
    assert np.isfinite(s).all() and np.abs(s).max() <= 1.0
    assert abs(audio.duration_s - seconds) <= tol_s, audio.duration_s
    rec = audio.recording
    assert rec.sample_rate == rate and rec.channels == channels
    assert rec.duration_s == pytest.approx(audio.duration_s)
    assert rec.codec


# -------------------------------------------------------------------------------------------
# formats


def test_wav_16k_mono_speech_is_exact(tmp_path):
    with wave.open(str(SAMPLE_WAV)) as w:
        w.setpos(7 * 16000)
        pcm = np.frombuffer(w.readframes(2 * 16000), dtype="<i2")
    path = tmp_path / "speech.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    audio = load_audio(path)
    assert_decoded(audio, seconds=2.0, rate=16000, channels=1, tol_s=0.0)
    np.testing.assert_allclose(audio.samples, pcm / 32768.0, atol=1e-6)
    rec = audio.recording
    assert rec.id == "speech" and rec.path == str(path) and rec.codec == "pcm_s16le"


def test_real_sample_wav(tmp_path):
    audio = load_audio(SAMPLE_WAV, recording_id="pyannote")
    assert audio.recording.id == "pyannote"
    assert_decoded(audio, seconds=30.0, rate=16000, channels=1, tol_s=0.0)


def _case(tmp_path, name, rate, channels, codec, **kw):
    x = tones(rate, 2.0, channels)
    path = tmp_path / name
    if codec == "wave":
        write_wav(path, x, rate)
    else:
        need(*[c for c in (codec, kw.get("video")) if c])
        encode(path, x, rate, codec, **kw)
    return path


# (file name, source rate, channels, encoder, extra encode args, lossless?)
FORMATS = [
    ("s16_8k_stereo.wav", 8000, 2, "wave", {}, True),
    ("f32_44k_5.1.wav", 44100, 6, "pcm_f32le", {}, True),
    ("f32_44k_quad.wav", 44100, 4, "pcm_f32le", {}, True),
    ("flac_48k_stereo.flac", 48000, 2, "flac", {}, True),
    ("mp3_22k_mono.mp3", 22050, 1, "libmp3lame", {}, False),
    ("vorbis_32k_stereo.ogg", 32000, 2, "vorbis", {}, False),
    ("opus_48k_stereo.ogg", 48000, 2, "libopus", {"fmt": "ogg"}, False),
    ("opus_48k_stereo.opus", 48000, 2, "libopus", {}, False),
    ("aac_44k_stereo.m4a", 44100, 2, "aac", {}, False),
    ("mpeg4_aac_44k_stereo.mp4", 44100, 2, "aac", {"video": "mpeg4"}, False),
    ("h264_aac_48k_stereo.mp4", 48000, 2, "aac", {"video": "libx264"}, False),
    ("vp8_opus_48k_stereo.webm", 48000, 2, "libopus", {"video": "libvpx"}, False),
    ("vp9_opus_48k_mono.webm", 48000, 1, "libopus", {"video": "libvpx-vp9"}, False),
    ("h264_flac_48k_stereo.mkv", 48000, 2, "flac", {"video": "libx264"}, True),
]


@pytest.mark.parametrize(
    "name,rate,channels,codec,kw,lossless", FORMATS, ids=[f[0] for f in FORMATS]
)
def test_formats_decode_to_16k_mono(tmp_path, name, rate, channels, codec, kw, lossless):
    path = _case(tmp_path, name, rate, channels, codec, **kw)
    audio = load_audio(path)
    assert_decoded(audio, seconds=2.0, rate=rate, channels=channels, tol_s=0.05 if lossless else 0.08)
    want = expected_mono(2.0, channels)
    got = audio.samples
    if lossless:
        n = min(len(got), len(want))
        corr = float(np.corrcoef(got[:n], want[:n])[0, 1])
        assert corr > 0.999, corr
        # Away from the edges (resampler filter), the samples match the mean of the channels.
        assert np.abs(got[800 : n - 800] - want[800 : n - 800]).max() < 0.01
    else:
        # FFmpeg's native ("experimental") Vorbis encoder mangles the right channel's tones a bit
        # (checked by decoding at 32 kHz directly); that is the encoder, not load_audio.
        assert best_correlation(got, want) > (0.85 if codec == "vorbis" else 0.95)
        assert rms(got[1600:-1600]) == pytest.approx(rms(want[1600:-1600]), rel=0.2)


def test_stereo_is_downmixed_to_the_mean(tmp_path):
    """Left and right differ; the result is (L+R)/2: not the left channel only, and not FFmpeg's
    float downmix 0.707*(L+R)."""
    x = tones(16000, 1.0, 2)
    x[1] = 0.0  # right silent
    path = write_wav(tmp_path / "left_only.wav", x, 16000)
    got = load_audio(path).samples
    q = 1 / 32768
    np.testing.assert_allclose(got, x[0] / 2, atol=2 * q)

    x = tones(16000, 1.0, 2)  # different tones on each side
    path = write_wav(tmp_path / "both.wav", x, 16000)
    got = load_audio(path).samples
    np.testing.assert_allclose(got, x.mean(axis=0), atol=2 * q)
    assert np.corrcoef(got, x[0])[0, 1] < 0.95  # not just the left channel


def test_full_scale_stereo_stays_in_range(tmp_path):
    t = np.arange(16000) / 16000
    x = np.stack([np.sin(2 * np.pi * 300 * t)] * 2) * 0.999
    got = load_audio(write_wav(tmp_path / "loud.wav", x, 16000)).samples
    assert np.abs(got).max() <= 1.0
    assert np.abs(got).max() > 0.99


def test_probe_reads_metadata(tmp_path):
    path = _case(tmp_path, "p.flac", 48000, 2, "flac")
    rec = probe_audio(path)
    assert (rec.id, rec.sample_rate, rec.channels, rec.codec) == ("p", 48000, 2, "flac")
    assert rec.duration_s == pytest.approx(2.0, abs=0.05)


def test_probe_falls_back_to_packet_times(tmp_path):
    # Matroska with video: the audio stream declares no duration of its own.
    path = _case(tmp_path, "p.mkv", 48000, 2, "flac", video="libx264")
    rec = probe_audio(path, recording_id="x")
    assert rec.id == "x" and rec.channels == 2 and rec.sample_rate == 48000
    assert rec.duration_s == pytest.approx(2.0, abs=0.1)


# -------------------------------------------------------------------------------------------
# bad input


def raises(path, phrase: str, **kw) -> str:
    with pytest.raises(AudioError) as info:
        load_audio(path, **kw)
    msg = str(info.value)
    assert str(path) in msg and Path(path).name in msg
    assert phrase in msg, msg
    assert "\n" not in msg and "Traceback" not in msg
    assert info.value.__cause__ is None or isinstance(info.value.__cause__, AudioError)
    return msg


def test_missing_file(tmp_path):
    raises(tmp_path / "nope.wav", "file not found")


def test_directory(tmp_path):
    raises(tmp_path, "is a directory")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    raises(path, "empty (0 bytes)")


def test_text_file_named_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 50)
    raises(path, "not an audio or video file")


def test_random_bytes_named_mp3(tmp_path):
    path = tmp_path / "noise.mp3"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 8000, dtype=np.uint8).tobytes())
    raises(path, "not an audio or video file")


def test_wav_header_only(tmp_path):
    path = write_wav(tmp_path / "header.wav", np.zeros((1, 0)), 16000)
    raises(path, "no audio samples")


def test_wav_truncated_in_the_data(tmp_path):
    full = write_wav(tmp_path / "full.wav", tones(16000, 3.0, 1), 16000).read_bytes()
    path = tmp_path / "cut.wav"
    path.write_bytes(full[: len(full) // 2])  # header still declares 3 s
    msg = raises(path, "truncated")
    assert "3.00 s" in msg and "1.50 s" in msg


def test_mp3_truncated(tmp_path):
    need("libmp3lame")
    full = encode(tmp_path / "full.mp3", tones(16000, 3.0, 1), 16000, "libmp3lame").read_bytes()
    path = tmp_path / "cut.mp3"
    path.write_bytes(full[: len(full) // 2])
    raises(path, "truncated")


def test_flac_truncated(tmp_path):
    full = encode(tmp_path / "full.flac", tones(16000, 3.0, 1), 16000, "flac").read_bytes()
    path = tmp_path / "cut.flac"
    path.write_bytes(full[: len(full) // 2])
    raises(path, "truncated")


def test_too_short(tmp_path):
    path = write_wav(tmp_path / "blip.wav", tones(16000, 0.05, 1), 16000)
    msg = raises(path, "too short")
    assert "0.05 s" in msg and "0.10 s" in msg
    assert load_audio(path, min_duration_s=0.01).duration_s == pytest.approx(0.05)


def test_too_long_from_declared_duration(tmp_path):
    path = write_wav(tmp_path / "long.wav", tones(16000, 3.0, 1), 16000)
    msg = raises(path, "too long", max_duration_s=1.0)
    assert "3.00 s" in msg and "1.00 s" in msg and "split" in msg and "max_duration_s" in msg
    assert load_audio(path, max_duration_s=None).duration_s == pytest.approx(3.0)


def test_too_long_stops_decoding(tmp_path):
    # No declared audio duration (Matroska with video): the limit is enforced while decoding.
    need("libx264")
    path = encode(tmp_path / "long.mkv", tones(48000, 3.0, 2), 48000, "flac", video="libx264")
    msg = raises(path, "too long", max_duration_s=1.0)
    assert "decoding stopped" in msg and "1.00 s" in msg


def test_video_without_audio(tmp_path):
    need("mpeg4")
    path = encode(tmp_path / "silent_film.mp4", None, 16000, None, video="mpeg4")
    raises(path, "no audio stream")
    with pytest.raises(AudioError, match="no audio stream"):
        probe_audio(path)


def test_nan_samples(tmp_path):
    x = tones(16000, 1.0, 1)
    x[0, 8000] = np.nan
    path = encode(tmp_path / "nan.wav", x, 16000, "pcm_f32le")
    raises(path, "NaN")


def test_probe_errors(tmp_path):
    with pytest.raises(AudioError, match="file not found"):
        probe_audio(tmp_path / "nope.flac")
    bad = tmp_path / "bad.flac"
    bad.write_text("nope")
    with pytest.raises(AudioError, match="not an audio or video file"):
        probe_audio(bad)


@pytest.mark.parametrize("suffix", [".flac", ".ac3", ".aac", ".ogg", ".m4a"])
def test_text_with_other_audio_suffixes(tmp_path, suffix):
    # FFmpeg falls back on the file name for some of these (.flac, .ac3 open as an empty stream).
    path = tmp_path / f"notes{suffix}"
    path.write_text("this is not audio at all, just some text\n")
    raises(path, "not an audio or video file")
