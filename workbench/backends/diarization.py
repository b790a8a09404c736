"""Speaker diarization: who spoke when.

``resemblyzer`` (offline default): the pretrained GE2E speaker encoder shipped in the resemblyzer wheel.
Speech regions (from the VAD stage, refined with fine-grained silero settings so the pauses between turns
are kept) are cut into 1.5 s windows every 0.25 s, embedded, centred and
L2-normalised, then clustered (agglomerative, cosine distance, average linkage) into the given number of
speakers — or an estimated number (eigengap of the affinity matrix), which is flagged as an estimate
because it is unreliable on short recordings. Past ``max_cluster_windows`` windows (2000 = 500 s of speech),
an evenly spread sample of that many is clustered and every other window takes the speaker of the nearest
cluster centroid (cosine), so memory and time grow linearly with the recording instead of with its square.
``pyannote``: pyannote.audio's speaker-diarization pipeline from a local folder or a hub id (with a token).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass

import numpy as np
from typing import Literal

from pydantic import Field

from workbench.audio import SAMPLE_RATE
from workbench.backends.base import Backend, BackendOptions
from workbench.datamodel import Span, Turn
from workbench.errors import BackendUnavailable, BadInputError
from workbench.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Diarization:
    turns: tuple[Turn, ...]
    speaker_count: int
    estimated: bool


class DiarizationBackend(Backend):
    def diarize(self, samples: np.ndarray, speech: tuple[Span, ...] | None, num_speakers: int | None) -> Diarization | None:
        """Turns over the recording; ``None`` when the backend does no diarization."""
        raise NotImplementedError


DIARIZATION_BACKENDS: Registry[DiarizationBackend] = Registry("diarization backend")


@DIARIZATION_BACKENDS.register("none")
class NoDiarization(DiarizationBackend):
    def diarize(self, samples, speech, num_speakers) -> None:
        return None


def _check_count(num_speakers: int | None, min_speakers: int, max_speakers: int) -> None:
    if num_speakers is not None and num_speakers < 1:
        raise BadInputError(f"speaker count must be at least 1 (got {num_speakers})")
    if min_speakers > max_speakers:
        raise BadInputError(f"min_speakers ({min_speakers}) is above max_speakers ({max_speakers})")


class ResemblyzerOptions(BackendOptions):
    num_speakers: int | None = Field(None, ge=1, description="None = estimate (flagged as an estimate)")
    min_speakers: int = Field(1, ge=1)
    max_speakers: int = Field(8, ge=1)
    window_s: float = Field(1.5, gt=0.2, le=10)
    hop_s: float = Field(0.25, gt=0.05, le=5)
    speech: Literal["refine", "vad-stage"] = Field(
        "refine", description="refine: re-detect speech with fine-grained silero settings inside the VAD stage's "
        "regions (pauses between turns matter for diarization); vad-stage: use the VAD stage's regions as they are")
    max_cluster_windows: int = Field(2000, ge=50, description="windows clustered at most (an even sample); the "
                                     "others take the nearest centroid's speaker (bounded memory on long recordings)")
    device: str = "cpu"


@DIARIZATION_BACKENDS.register("resemblyzer")
class ResemblyzerDiarization(DiarizationBackend):
    Options = ResemblyzerOptions
    requires = (("resemblyzer", "resemblyzer"), ("torch", "torch"), ("scipy", "scipy"), ("librosa", "librosa"),
                ("faster_whisper", "faster-whisper"))

    def __init__(self, options: ResemblyzerOptions):
        super().__init__(options)
        self._encoder = None

    def load(self) -> None:
        with warnings.catch_warnings():  # webrtcvad imports the deprecated pkg_resources
            warnings.simplefilter("ignore")
            try:
                from resemblyzer import VoiceEncoder
            except ImportError as exc:
                raise BackendUnavailable(f"resemblyzer does not import: {exc}", 'pip install resemblyzer "setuptools<81"') from exc
        self._encoder = VoiceEncoder(device=self.options.device, verbose=False)

    def unload(self) -> None:
        self._encoder = None

    def describe(self) -> dict:
        return {**super().describe(), "model": "resemblyzer GE2E speaker encoder (pretrained.pt shipped in the wheel)"}

    def diarize(self, samples, speech, num_speakers):
        o = self.options
        k = o.num_speakers if num_speakers is None else num_speakers  # 0 is an error, not "estimate"
        _check_count(k, o.min_speakers, o.max_speakers)
        regions = list(speech) if speech is not None else [Span(0.0, len(samples) / SAMPLE_RATE)]
        if o.speech == "refine" and regions:
            regions = _intersect(regions, _fine_speech(samples))
        regions = [r for r in regions if r.duration > 0.05]
        if not regions:
            return Diarization((), 0, False)
        if self._encoder is None:
            self.load()
        windows = _windows(regions, o.window_s, o.hop_s)
        embeddings = self._embed(samples, windows)
        mean = embeddings.mean(axis=0, keepdims=True)
        picked = _even_sample(len(embeddings), o.max_cluster_windows)
        clustered = embeddings if picked is None else embeddings[picked]
        if k is not None:
            estimated = False
            if k > len(windows):
                log.warning("asked for %d speakers but only %d windows of speech: using %d", k, len(windows), len(windows))
                k = len(windows)
        else:
            estimated = True
            k = _estimate_speakers(clustered, o.min_speakers, min(o.max_speakers, len(windows)), mean)
        labels = _cluster(clustered, k, mean)
        if picked is not None:
            labels = _assign_nearest(embeddings, picked, labels, mean)
        turns = _turns(regions, windows, labels, o.hop_s)
        return Diarization(turns, len({t.speaker for t in turns}), estimated)

    def _embed(self, samples: np.ndarray, windows: list[Span]) -> np.ndarray:
        import torch
        from resemblyzer.audio import normalize_volume, wav_to_mel_spectrogram
        from resemblyzer.hparams import audio_norm_target_dBFS

        n_frames = int(round(self.options.window_s * 100))  # mel frames are 10 ms
        out = []
        with torch.inference_mode():
            for i in range(0, len(windows), 128):  # mels a batch at a time: memory does not grow with the recording
                batch = []
                for w in windows[i : i + 128]:
                    a, b = int(w.start * SAMPLE_RATE), int(w.end * SAMPLE_RATE)
                    chunk = normalize_volume(samples[a:b], audio_norm_target_dBFS, increase_only=True)
                    mel = wav_to_mel_spectrogram(chunk)
                    if len(mel) < n_frames:  # a short region: pad by repeating (keeps the voice's statistics)
                        mel = np.resize(mel, (n_frames, mel.shape[1])) if len(mel) else np.zeros((n_frames, mel.shape[1]), np.float32)
                    batch.append(mel[:n_frames])
                mels = torch.from_numpy(np.stack(batch)).to(self._encoder.device)
                out.append(self._encoder(mels).cpu().numpy())  # L2-normalised GE2E embeddings
        return np.concatenate(out)


def _fine_speech(samples: np.ndarray) -> list[Span]:
    """Silero VAD (faster-whisper's ONNX copy) with silero's own fine defaults: short pauses kept apart.

    Gating Whisper wants long, padded regions; diarization wants the pauses between turns. On the pyannote
    sample this took DER from 21.8% to 15.3% (no collar) and 6.4% to 2.9% (±0.25 s collar)."""
    from faster_whisper.vad import VadOptions

    from workbench.backends.vad import speech_timestamps

    chunks = speech_timestamps(samples, VadOptions(min_silence_duration_ms=100, speech_pad_ms=30, min_speech_duration_ms=250))
    return [Span(c["start"] / SAMPLE_RATE, c["end"] / SAMPLE_RATE) for c in chunks]


def _intersect(a: list[Span], b: list[Span]) -> list[Span]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        start, end = max(a[i].start, b[j].start), min(a[i].end, b[j].end)
        if end > start:
            out.append(Span(start, end))
        if a[i].end < b[j].end:
            i += 1
        else:
            j += 1
    return out


def _windows(regions: list[Span], window: float, hop: float) -> list[Span]:
    out = []
    for r in regions:
        if r.duration <= window:
            out.append(r)
            continue
        t = r.start
        while t + window < r.end:
            out.append(Span(t, t + window))
            t += hop
        out.append(Span(r.end - window, r.end))
    return out


def _normalised(embeddings: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """Centred (on ``mean``, default their own mean) and L2-normalised."""
    if mean is None:
        mean = embeddings.mean(axis=0, keepdims=True)
    x = embeddings - mean if len(embeddings) > 1 else embeddings
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-9)


def _even_sample(n: int, limit: int) -> np.ndarray | None:
    """Indices of ``limit`` windows spread evenly over ``n`` (None when all ``n`` fit)."""
    if n <= limit:
        return None
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int))


def _assign_nearest(embeddings: np.ndarray, picked: np.ndarray, picked_labels: np.ndarray,
                    mean: np.ndarray | None = None) -> np.ndarray:
    """Labels for every window: the clustered ones keep theirs, the others take the nearest centroid's (cosine)."""
    x = _normalised(embeddings, mean)
    ids = np.unique(picked_labels)
    centroids = np.stack([x[picked][picked_labels == i].mean(axis=0) for i in ids])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)
    labels = np.empty(len(embeddings), dtype=int)
    for i in range(0, len(x), 4096):  # n × k, a block at a time
        labels[i : i + 4096] = ids[np.argmax(x[i : i + 4096] @ centroids.T, axis=1)]
    labels[picked] = picked_labels
    return labels


def _cluster(embeddings: np.ndarray, k: int, mean: np.ndarray | None = None) -> np.ndarray:
    if k <= 1 or len(embeddings) <= 1:
        return np.zeros(len(embeddings), dtype=int)
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(_normalised(embeddings, mean), method="average", metric="cosine")
    return fcluster(tree, t=k, criterion="maxclust") - 1


def _estimate_speakers(embeddings: np.ndarray, lo: int, hi: int, mean: np.ndarray | None = None) -> int:
    """Eigengap heuristic on the cosine affinity of the centred embeddings."""
    if hi <= 1 or len(embeddings) < 3:
        return max(1, min(lo, hi))
    x = _normalised(embeddings, mean)
    affinity = np.clip(x @ x.T, 0, None)
    laplacian = np.diag(affinity.sum(axis=1)) - affinity
    d = np.diag(1 / np.sqrt(np.maximum(affinity.sum(axis=1), 1e-9)))
    eig = np.sort(np.linalg.eigvalsh(d @ laplacian @ d))
    gaps = np.diff(eig[: hi + 1])
    k = int(np.argmax(gaps[lo - 1 : hi])) + lo
    return max(lo, min(hi, k))


def _turns(regions: list[Span], windows: list[Span], labels: np.ndarray, hop: float) -> tuple[Turn, ...]:
    """Give each hop-sized step of speech the label of the window centred nearest to it (the first of two equally
    near); merge runs. The windows' centres are in time order, so the nearest is found by bisection: linear in the
    recording, not quadratic."""
    centres = np.array([(w.start + w.end) / 2 for w in windows])
    if np.any(np.diff(centres) < 0):  # not produced by _windows; keep the exhaustive search
        order = np.argsort(centres, kind="stable")
    else:
        order = None
    ordered = centres if order is None else centres[order]
    turns: list[Turn] = []
    for r in regions:
        edges = np.append(np.arange(r.start, r.end, hop), r.end)
        mids = (edges[:-1] + edges[1:]) / 2
        j = np.searchsorted(ordered, mids, side="left")
        left, right = np.clip(j - 1, 0, len(ordered) - 1), np.clip(j, 0, len(ordered) - 1)
        nearest = np.where(np.abs(ordered[left] - mids) <= np.abs(ordered[right] - mids), left, right)
        step_labels = labels[nearest if order is None else order[nearest]]
        for a, b, lab in zip(edges[:-1], edges[1:], step_labels):
            label = f"SPEAKER_{int(lab):02d}"
            if turns and turns[-1].speaker == label and abs(turns[-1].end - a) < 1e-6:
                turns[-1] = Turn(turns[-1].start, round(float(b), 3), label)
            else:
                turns.append(Turn(round(float(a), 3), round(float(b), 3), label))
    return tuple(turns)


class PyannoteOptions(BackendOptions):
    model: str = Field("pyannote/speaker-diarization-community-1", description="hub id or local folder with config.yaml")
    token_env: str = Field("HF_TOKEN", description="environment variable holding the hub token (never stored)")
    num_speakers: int | None = Field(None, ge=1)
    min_speakers: int | None = Field(None, ge=1)
    max_speakers: int | None = Field(None, ge=1)
    device: str = "auto"


@DIARIZATION_BACKENDS.register("pyannote")
class PyannoteDiarization(DiarizationBackend):
    Options = PyannoteOptions
    requires = (("pyannote.audio", "pyannote.audio"), ("torch", "torch"))

    @classmethod
    def check(cls, options: PyannoteOptions) -> None:
        import importlib.util

        if importlib.util.find_spec("pyannote") is None or importlib.util.find_spec("pyannote.audio") is None:
            raise BackendUnavailable(
                "pyannote.audio is not installed (an optional extra: its install is heavy)",
                'pip install -e ".[pyannote]" (needs a torch/torchaudio pair that match, e.g. torch 2.9.1 + torchaudio 2.9)',
            )
        folder = os.path.expanduser(options.model)
        if os.path.isdir(folder):
            if not os.path.isfile(os.path.join(folder, "config.yaml")):
                raise BackendUnavailable(f"{folder} has no config.yaml", "point model at a pyannote pipeline folder (config.yaml, segmentation/, embedding/, plda/)")
        elif os.environ.get("HF_HUB_OFFLINE") and not os.environ.get(options.token_env):
            raise BackendUnavailable(
                f"pyannote pipeline {options.model!r} needs the hub (gated: accept its terms and set {options.token_env})",
                "or download it where the hub is reachable and set model to the local folder",
            )

    @classmethod
    def downloads(cls, options: PyannoteOptions) -> str | None:
        from workbench.model_sources import download_note, hub_cached

        if os.path.isdir(os.path.expanduser(options.model)) or hub_cached(options.model):
            return None
        return download_note(options.model)

    def __init__(self, options: PyannoteOptions):
        super().__init__(options)
        self._pipeline = None

    def load(self) -> None:
        os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
        import torch
        from pyannote.audio import Pipeline

        token = os.environ.get(self.options.token_env) or None
        try:
            pipeline = Pipeline.from_pretrained(os.path.expanduser(self.options.model), token=token)
        except TypeError:  # pyannote.audio 3.x
            pipeline = Pipeline.from_pretrained(os.path.expanduser(self.options.model), use_auth_token=token)
        if pipeline is None:
            raise BackendUnavailable(f"could not load pyannote pipeline {self.options.model!r}", f"check the id / folder and {self.options.token_env}")
        device = self.options.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        pipeline.to(torch.device(device))
        self._pipeline = pipeline

    def unload(self) -> None:
        self._pipeline = None

    def diarize(self, samples, speech, num_speakers):
        import torch

        o = self.options
        kwargs = {}
        count = o.num_speakers if num_speakers is None else num_speakers
        _check_count(count, 1, 1)  # 0 is an error, not "estimate"
        if count:
            kwargs["num_speakers"] = count
        else:
            kwargs.update({k: v for k, v in (("min_speakers", o.min_speakers), ("max_speakers", o.max_speakers)) if v})
        waveform = torch.from_numpy(np.ascontiguousarray(samples))[None, :]
        output = self._pipeline({"waveform": waveform, "sample_rate": SAMPLE_RATE}, **kwargs)
        annotation = getattr(output, "speaker_diarization", output)  # 4.x returns an object, 3.x an Annotation
        turns = tuple(
            Turn(round(seg.start, 3), round(seg.end, 3), str(label))
            for seg, _, label in annotation.itertracks(yield_label=True)
        )
        return Diarization(turns, len({t.speaker for t in turns}), "num_speakers" not in kwargs)
