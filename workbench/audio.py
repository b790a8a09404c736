"""Decode any audio (or the audio of any video) FFmpeg can read to 16 kHz mono float32.

PyAV bundles FFmpeg, so nothing has to be installed on the system; it is imported lazily so
that importing this module stays cheap. Every problem with the input is raised as one
:class:`~workbench.errors.AudioError` whose message names the file and says what is wrong;
no PyAV traceback escapes.

Downmixing: channels are resampled to 16 kHz as they are and then averaged (the plain mean).
We do not ask FFmpeg for ``layout="mono"``: with a float output format swresample does not
normalise its downmix matrix, so stereo comes out as 0.707·(L+R) (up to 1.41× full scale) and
5.1 louder still.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.datamodel import Recording
from workbench.errors import AudioError

logger = logging.getLogger(__name__)

#: The one sample rate inside the workbench: every decoded recording, probe and model input is 16 kHz mono.
SAMPLE_RATE = 16000
#: File suffixes taken as audio when a folder is scanned (batch sources, probe folders); anything FFmpeg decodes.
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".webm", ".mp4", ".mkv"})
#: Recordings longer than this are refused by default (--max-duration, WORKBENCH_MAX_DURATION_S).
MAX_DURATION_S = 4 * 3600

#: Source samples gathered (in an AudioFifo) before each resampler call, as faster-whisper does.
_CHUNK_SAMPLES = 500_000
#: Decoded audio shorter than this fraction of the declared duration, and ...
_TRUNCATED_FRACTION = 0.9
#: ... more than this many seconds short of it, is reported as truncated.
_TRUNCATED_MIN_GAP_S = 0.5
#: Packets that fail to decode are skipped (FFmpeg resyncs) up to this many; more is "corrupt".
_MAX_BAD_PACKETS = 5
#: Declared durations may be estimates (e.g. MP3 without a Xing header): refuse before decoding
#: only when the declared duration is over the limit by more than this fraction.
_DECLARED_LIMIT_SLACK = 0.02


@dataclass(frozen=True, eq=False)
class Audio:
    """Decoded audio: ``samples`` is 16 kHz mono float32 in [-1, 1]; ``recording`` describes the file."""

    recording: Recording
    samples: np.ndarray

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def load_audio(
    path: str | os.PathLike,
    *,
    max_duration_s: float | None = MAX_DURATION_S,
    min_duration_s: float = 0.1,
    recording_id: str | None = None,
) -> Audio:
    """Decode the first audio stream of ``path`` to 16 kHz mono float32.

    ``max_duration_s=None`` means no limit. ``recording_id`` defaults to the file stem.
    The returned :class:`Recording` carries the original stream's sample rate, channel count and
    codec, and the decoded duration. Raises :class:`AudioError` for anything unusable.
    """
    av = _import_av(path)
    _check_file(path)
    try:
        with _open(av, path) as container:
            stream = _audio_stream(path, container)
            declared = _declared_duration(av, container, stream)
            if (
                declared is not None
                and max_duration_s is not None
                and declared > max_duration_s * (1 + _DECLARED_LIMIT_SLACK)
            ):
                raise AudioError(
                    path,
                    f"too long: the file declares {_fmt_s(declared)} of audio, over the limit of "
                    f"{_fmt_s(max_duration_s)}; split the file into shorter parts or raise the limit "
                    "(max_duration_s)",
                )
            header = _wav_header_duration(path) if _is_wav(container) else None
            expected = max(d for d in (declared, header, 0.0) if d is not None)
            # The original stream's parameters, read before decoding (a decoder may update them
            # when they change mid-stream; the first ones describe the file).
            codec = _codec_name(stream)
            src_rate, src_channels = _stream_rate(stream), _stream_channels(stream)
            samples, src_s, rate, channels, tail_problem = _decode(
                av, path, container, stream, max_duration_s, expected
            )
            src_rate, src_channels = src_rate or rate, src_channels or channels
    except (av.error.FFmpegError, OSError) as e:
        # Anything not mapped more precisely on the way (the file vanished, a read failed, ...).
        raise AudioError(path, f"could not be read as audio: {_ffmpeg_reason(e)}") from None
    finally:
        # PyAV's resampler (filter graph) is only freed by the collector (faster-whisper #390).
        gc.collect()

    duration = len(samples) / SAMPLE_RATE
    for what, value in (("the stream declares", declared), ("the WAV header declares", header)):
        if (
            value is not None
            and duration < _TRUNCATED_FRACTION * value
            and value - duration > _TRUNCATED_MIN_GAP_S
        ):
            raise AudioError(
                path,
                f"truncated or damaged: {what} {_fmt_s(value)} but only {_fmt_s(duration)} could be "
                "decoded; the file is probably incomplete (an interrupted download, copy or recording) "
                "or corrupt",
            )
    if len(samples) == 0 and not src_rate:
        # FFmpeg guessed a format from the file name alone (e.g. text named .flac or .ac3) and
        # found neither stream parameters nor a decodable packet.
        raise AudioError(path, _not_media(f"no valid {codec or 'audio'} data found"))
    if tail_problem:
        raise AudioError(path, tail_problem)
    if len(samples) == 0:
        raise AudioError(
            path, "contains no audio samples (the audio stream is empty: a header with no sound after it)"
        )
    if duration < min_duration_s:
        raise AudioError(
            path,
            f"too short: {_fmt_s(duration)} of audio, the minimum is {_fmt_s(min_duration_s)} "
            "(min_duration_s)",
        )
    logger.debug(
        "decoded %s: %s %d Hz %d ch, %.3f s (source %.3f s) -> %d samples at %d Hz",
        path, codec, src_rate, src_channels, duration, src_s, len(samples), SAMPLE_RATE,
    )
    recording = Recording(
        id=recording_id if recording_id is not None else Path(path).stem,
        path=os.fspath(path),
        duration_s=duration,
        sample_rate=int(src_rate),
        channels=int(src_channels),
        codec=codec,
    )
    return Audio(recording=recording, samples=samples)


def probe_audio(path: str | os.PathLike, *, recording_id: str | None = None) -> Recording:
    """Describe ``path`` without decoding it: the duration is the declared one (may be approximate).

    When neither the stream nor the container declares a duration, the packets' timestamps are
    read (demuxed, not decoded) to find it.
    """
    av = _import_av(path)
    _check_file(path)
    try:
        with _open(av, path) as container:
            stream = _audio_stream(path, container)
            duration = _declared_duration(av, container, stream)
            if duration is None:
                duration = _duration_from_packets(container, stream)
            recording = Recording(
                id=recording_id if recording_id is not None else Path(path).stem,
                path=os.fspath(path),
                duration_s=float(duration),
                sample_rate=_stream_rate(stream),
                channels=_stream_channels(stream),
                codec=_codec_name(stream),
            )
    except (av.error.FFmpegError, OSError) as e:
        raise AudioError(path, f"could not be read as audio: {_ffmpeg_reason(e)}") from None
    if recording.duration_s <= 0 and not recording.sample_rate:
        raise AudioError(path, _not_media(f"no valid {recording.codec or 'audio'} data found"))
    if recording.duration_s <= 0:
        raise AudioError(path, "contains no audio samples (the audio stream is empty)")
    return recording


# --------------------------------------------------------------------------------------------
# opening


def _import_av(path):
    try:
        import av
    except ImportError as e:  # pragma: no cover - av is a hard dependency
        raise AudioError(path, f"cannot decode audio: PyAV is not installed ({e}); pip install av") from None
    return av


def _check_file(path) -> None:
    p = Path(path)
    try:
        if not p.exists():
            raise AudioError(path, "file not found; check the path")
        if p.is_dir():
            raise AudioError(path, "is a directory, not an audio file; give the path of a file inside it")
        if not p.is_file():
            raise AudioError(path, "is not a regular file (a device, pipe or socket?); give an audio file")
        if p.stat().st_size == 0:
            raise AudioError(path, "file is empty (0 bytes); it holds no audio")
        with open(p, "rb"):
            pass
    except PermissionError:
        raise AudioError(path, "permission denied: this file cannot be read") from None
    except OSError as e:
        raise AudioError(path, f"cannot be read: {e.strerror or e}") from None


def _open(av, path):
    try:
        return av.open(os.fspath(path), mode="r", metadata_errors="ignore")
    except (av.error.InvalidDataError, av.error.EOFError) as e:
        raise AudioError(path, _not_media(_ffmpeg_reason(e))) from None
    except av.error.DemuxerNotFoundError:
        raise AudioError(path, "not a media format FFmpeg knows (no demuxer for it)") from None
    except av.error.FFmpegError as e:
        raise AudioError(path, f"FFmpeg cannot open it: {_ffmpeg_reason(e)}") from None
    except OSError as e:
        raise AudioError(path, f"cannot be read: {e.strerror or e}") from None


def _audio_stream(path, container):
    if not container.streams.audio:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise AudioError(
            path,
            f"has no audio stream (streams found: {', '.join(kinds)}); there is nothing to transcribe",
        )
    return container.streams.audio[0]


# --------------------------------------------------------------------------------------------
# decoding


def _decode(av, path, container, stream, max_duration_s, expected_s):
    """Decode ``stream``.

    Returns (16 kHz mono float32 samples, source seconds, source rate, source channels, problem),
    where problem says the end of the file could not be decoded (None when all went well).
    """
    capacity = int(min(expected_s, max_duration_s or math.inf, MAX_DURATION_S) * SAMPLE_RATE * 1.02) + SAMPLE_RATE
    out = _Samples(capacity)
    resampler = fifo = key = None
    src_s = 0.0  # seconds of source audio decoded so far
    first_rate = first_channels = 0
    bad: list[tuple[float, str]] = []  # (time, reason) of packets that failed to decode
    good_after_bad = False
    nonfinite = False

    def resample(frame) -> None:
        nonlocal nonfinite
        for rf in resampler.resample(frame):
            planes = rf.to_ndarray()  # fltp: (channels, n) float32
            mono = planes[0] if planes.shape[0] == 1 else planes.mean(axis=0, dtype=np.float32)
            if not np.isfinite(mono).all():
                nonfinite = True
            out.append(mono)

    def drain() -> None:
        if fifo is not None and fifo.samples:
            resample(fifo.read())
        if resampler is not None:
            resample(None)  # flush

    packets = iter(container.demux(stream))
    try:
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.EOFError:
                break
            except av.error.FFmpegError as e:
                raise AudioError(
                    path, f"truncated or corrupt after {_fmt_s(src_s)}: {_ffmpeg_reason(e)}"
                ) from None
            try:
                frames = packet.decode()
            except av.error.EOFError:
                continue
            except av.error.DecoderNotFoundError:
                raise AudioError(
                    path, f"no decoder for its audio codec ({_codec_name(stream)}) in this FFmpeg build"
                ) from None
            except av.error.FFmpegError as e:
                bad.append((src_s, _ffmpeg_reason(e)))
                good_after_bad = False
                if len(bad) > _MAX_BAD_PACKETS:
                    raise AudioError(
                        path,
                        f"truncated or corrupt after {_fmt_s(bad[0][0])}: {len(bad)} packets could not "
                        f"be decoded ({bad[0][1]})",
                    ) from None
                continue
            for frame in frames:
                if not frame.samples:
                    continue
                k = (frame.format.name, frame.layout.name, len(frame.layout.channels), frame.sample_rate)
                if k != key:
                    if key is not None:
                        logger.debug("%s: audio parameters changed mid-stream %s -> %s", path, key, k)
                    drain()
                    resampler = av.AudioResampler(format="fltp", rate=SAMPLE_RATE)  # keeps the layout
                    fifo = av.AudioFifo()
                    key = k
                    if not first_rate:
                        first_rate, first_channels = frame.sample_rate, len(frame.layout.channels)
                good_after_bad = True
                frame.pts = None  # the fifo checks timestamps for continuity; we do not care about gaps
                fifo.write(frame)
                src_s += frame.samples / frame.sample_rate
                if fifo.samples >= _CHUNK_SAMPLES:
                    resample(fifo.read())
                if max_duration_s is not None and src_s > max_duration_s:
                    raise AudioError(
                        path,
                        f"too long: over the limit of {_fmt_s(max_duration_s)} (decoding stopped at "
                        f"{_fmt_s(src_s)}); split the file into shorter parts or raise the limit "
                        "(max_duration_s)",
                    )
        drain()
    finally:
        del resampler, fifo
    # A packet that failed with nothing decodable after it: the end of the file is damaged.
    tail_problem = None
    if bad and not good_after_bad:
        tail_problem = f"truncated or corrupt after {_fmt_s(bad[-1][0])}: {bad[-1][1]}"
    if bad and not tail_problem:
        logger.warning(
            "%s: skipped %d undecodable packet(s), first at %.2f s (%s)", path, len(bad), bad[0][0], bad[0][1]
        )
    if nonfinite:
        raise AudioError(path, "contains invalid samples (NaN or infinity); the file is corrupt")
    samples = out.result()
    peak = max(float(samples.max()), -float(samples.min())) if len(samples) else 0.0  # no temporary
    if peak > 1.0:
        (logger.warning if peak > 1.01 else logger.debug)(
            "%s: peak %.3f is above full scale; clipping to [-1, 1]", path, peak
        )
        np.clip(samples, -1.0, 1.0, out=samples)
    return samples, src_s, first_rate, first_channels, tail_problem


class _Samples:
    """A growable float32 buffer (pre-sized from the declared duration, so usually never copied)."""

    def __init__(self, capacity: int):
        self.buf = np.empty(max(int(capacity), SAMPLE_RATE), dtype=np.float32)
        self.n = 0

    def append(self, a: np.ndarray) -> None:
        end = self.n + a.size
        if end > self.buf.size:
            grown = np.empty(max(end, int(self.buf.size * 1.5)), dtype=np.float32)
            grown[: self.n] = self.buf[: self.n]
            self.buf = grown
        self.buf[self.n : end] = a
        self.n = end

    def result(self) -> np.ndarray:
        buf, self.buf = self.buf, np.empty(0, dtype=np.float32)
        if buf.size == self.n:
            return buf
        try:
            buf.resize(self.n)  # shrinks in place when nothing else refers to it
            return buf
        except ValueError:
            return buf[: self.n].copy()


# --------------------------------------------------------------------------------------------
# metadata


def _declared_duration(av, container, stream) -> float | None:
    """The audio duration the file declares, or None. Container-level durations are used only
    when the container holds no video (a video track may be longer than the audio)."""
    value = None
    if stream.duration is not None and stream.time_base is not None:
        value = float(stream.duration * stream.time_base)
    elif container.duration is not None and not container.streams.video:
        value = container.duration / av.time_base
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    return value


def _duration_from_packets(container, stream) -> float:
    end = 0.0
    tb = stream.time_base
    for packet in container.demux(stream):
        if packet.pts is None or tb is None:
            continue
        end = max(end, float((packet.pts + (packet.duration or 0)) * tb))
    start = float(stream.start_time * tb) if stream.start_time is not None and tb is not None else 0.0
    return max(0.0, end - max(0.0, start))


def _is_wav(container) -> bool:
    return "wav" in (container.format.name or "").split(",")


def _wav_header_duration(path) -> float | None:
    """Seconds of audio the RIFF/WAVE header's data chunk declares, or None when unknown.

    FFmpeg clamps a WAV's duration to the bytes actually present, so a truncated WAV looks
    complete to it; the header still says how much there should have been. Streaming writers put
    0 or 0xFFFFFFFF there ("unknown"); those are ignored.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            byte_rate = None
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    body = f.read(size + (size & 1))
                    if len(body) >= 12:
                        byte_rate = struct.unpack("<I", body[8:12])[0]
                elif cid == b"data":
                    if not byte_rate or size in (0, 0xFFFFFFFF):
                        return None
                    return size / byte_rate
                else:
                    f.seek(size + (size & 1), os.SEEK_CUR)
    except OSError:
        return None


def _codec_name(stream) -> str:
    try:
        codec = stream.codec_context.codec
        return getattr(codec, "canonical_name", None) or codec.name
    except Exception:  # noqa: BLE001 - metadata only; never fail on it
        return ""


def _stream_rate(stream) -> int:
    try:
        return int(stream.codec_context.sample_rate or 0)
    except Exception:  # noqa: BLE001
        return 0


def _stream_channels(stream) -> int:
    try:
        return int(stream.codec_context.channels or 0)
    except Exception:  # noqa: BLE001
        return 0


# --------------------------------------------------------------------------------------------
# messages


def _ffmpeg_reason(e: BaseException) -> str:
    reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return str(reason).rstrip(".")


def _not_media(detail: str) -> str:
    return (
        "not an audio or video file FFmpeg can read, or the file is corrupt or truncated "
        f"(FFmpeg: {detail[:1].lower() + detail[1:]})"
    )


def _fmt_s(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f} s"
    whole = int(round(seconds))
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    return f"{seconds:.0f} s ({h}:{m:02d}:{s:02d})"
