"""Probe clips with no speech in them: generated deterministically, plus real non-speech recordings.

Generated: digital silence (5, 15, 30 s); white and pink noise at −60, −45 and −30 dBFS RMS; 50 Hz mains hum
with harmonics at −40 dBFS; clicks (1 ms impulses every 0.5 s). Any words a model writes on these are
invented. The same seed always gives the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench.audio import AUDIO_SUFFIXES, SAMPLE_RATE, Audio, load_audio
from workbench.datamodel import Recording, Reference
from workbench.errors import BadInputError

SEED = 20261122
NO_SPEECH = Reference(segments=(), timed=False, has_text=True, source="(no speech)", format="none")


@dataclass(frozen=True)
class Probe:
    id: str
    kind: str
    level_dbfs: float | None
    samples: np.ndarray = field(compare=False, repr=False)
    source: str = "generated"

    def audio(self) -> Audio:
        recording = Recording(self.id, f"probe:{self.id}" if self.source == "generated" else self.source,
                              round(len(self.samples) / SAMPLE_RATE, 3), SAMPLE_RATE, 1, "generated" if self.source == "generated" else "")
        return Audio(recording, self.samples)


def _at_level(x: np.ndarray, dbfs: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return (x * (10 ** (dbfs / 20) / rms)).astype(np.float32)


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    scale = np.zeros_like(freqs)
    scale[freqs >= 20] = 1 / np.sqrt(freqs[freqs >= 20])  # 1/f power; nothing below 20 Hz
    return np.fft.irfft(spectrum * scale, n)


def generated_probes(seed: int = SEED) -> list[Probe]:
    rng = np.random.default_rng(seed)
    probes = [Probe(f"silence-{s}s", "digital-silence", None, np.zeros(s * SAMPLE_RATE, np.float32)) for s in (5, 15, 30)]
    n = 10 * SAMPLE_RATE
    for level in (-60, -45, -30):
        probes.append(Probe(f"white-noise{level}dBFS", "white-noise", level, _at_level(rng.standard_normal(n), level)))
    for level in (-60, -45, -30):
        probes.append(Probe(f"pink-noise{level}dBFS", "pink-noise", level, _at_level(_pink(rng, n), level)))
    t = np.arange(n) / SAMPLE_RATE
    hum = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((50, 100, 150, 200), 1))
    probes.append(Probe("hum-50Hz-40dBFS", "hum", -40, _at_level(hum, -40)))
    clicks = np.zeros(n, np.float32)
    clicks[:: SAMPLE_RATE // 2] = 0.5
    for i in range(1, 16):  # 1 ms decaying impulse
        clicks[i:: SAMPLE_RATE // 2] = 0.5 * np.exp(-i / 4)
    probes.append(Probe("clicks-2Hz", "clicks", None, clicks))
    return probes


def folder_probes(folder: str | Path) -> list[Probe]:
    """Every audio file in ``folder`` (not recursive), as real non-speech probes."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInputError(f"non-speech folder {folder} not found (or not a folder)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise BadInputError(f"{folder}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})")
    probes = []
    for path in files:
        audio = load_audio(path)
        probes.append(Probe(f"real-{path.stem}", "real", None, audio.samples, str(path)))
    return probes
