"""Compose ``samples/meeting/`` — a ~96 s recording with exact references — from the pyannote sample.

The pyannote.audio sample (``samples/pyannote/sample.wav``, a 30 s two-speaker telephone call, with
``sample.stm`` and ``sample.rttm``) is too short and too clean to show what pipelines do on long
stretches of silence and noise. This script cuts it into three blocks of real speech and splices
them together with inserted non-speech: digital silence, white and pink noise at several levels
and mains hum. Every reference time is known exactly, so the result can be scored for WER, cpWER,
DER and for words hallucinated inside the inserted non-speech.

Where the cuts are, and why
---------------------------
A block's reference is exact only if no STM segment (which carries words that cannot be split)
and no RTTM turn (who spoke when, overlaps included) crosses a cut. The sample's first 6.4 s hold
no speech (a faint line tone) and are left out. Between 6.4 s and 30 s there are only two points
where *both* references are silent:

* 7.35 s — Diane's "Hello?" ends at 7.16 (STM) / 7.12 (RTTM); Sheila starts at 7.634 / 7.55;
* 21.63 s — Diane ends at 21.475 (STM) / 21.49 (RTTM); Sheila starts at 21.935 / 21.78.

Everywhere else a turn or an overlap is in progress (e.g. the RTTM has Diane's 18.05–21.49 turn
overlapping Sheila's 18.15–18.59). Hence the blocks:

* A = [6.40, 7.35]   Diane: "Hello?"
* B = [7.35, 21.63]  the STM segments from 7.634 to 21.475
* C = [21.63, 30.00] the STM segments from 21.935 to the end

The script checks this itself: it stops if a segment or turn crosses a cut.

Composition (see ``LAYOUT``)
----------------------------
2 s digital silence, B, 5 s pink noise at -45 dBFS, C, 8 s digital silence, A, 4 s white noise
at -60 dBFS, B, 6 s mains hum (50 Hz + 100/150 Hz harmonics) at -40 dBFS, C, 4 s pink noise at
-30 dBFS, A, B, 3 s white noise at -50 dBFS, 3 s digital silence: 96.48 s. (A then B is the
original audio from 6.4 s to 21.63 s, rejoined.)

* Levels are RMS in dBFS with full scale = 1.0 (int16 32768): ``20 * log10(rms)``.
* Noise comes from ``np.random.default_rng(20261122)``, drawn in layout order. Pink noise is white
  Gaussian noise shaped in the frequency domain by 1/sqrt(f) (power ~ 1/f) from 20 Hz up to
  Nyquist, with nothing below 20 Hz so that inaudible drift does not carry the level.
* Each speech block and each noise region gets a 10 ms raised-cosine fade-in and fade-out, so
  there are no clicks at the joins. Digital silence is exactly zero. Speech samples outside the
  fades are bit-identical to the source.
* All times are handled as integer milliseconds (every cut and region length is a whole number of
  10 ms, i.e. of 160 samples), so the references are exact and written with 3 decimals.

Outputs (in ``--out``): ``meeting.wav`` (16 kHz mono 16-bit PCM), ``meeting.stm``
(``meeting 1 SPEAKER start end text``, speakers Diane/Sheila and text verbatim), ``meeting.rttm``
(turns clipped to their block; pyannote's ``speaker90``/``speaker91`` are renamed Diane/Sheila so
that both references name speakers alike) and ``meeting.json``
(``{"segments": [{start, end, speaker, text}], "nonspeech": [{start, end}]}``, the nonspeech being
the inserted silence and noise regions).

The output is deterministic: running the script twice gives byte-identical files. ``--check``
composes into a temporary folder and exits 1 if the files differ from those in ``--out``.

Usage::

    python scripts/compose_long_sample.py [--source DIR] [--out DIR] [--check]

Only numpy and the standard library are needed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import wave
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO_ROOT / "samples" / "pyannote"
DEFAULT_OUT = REPO_ROOT / "samples" / "meeting"

SAMPLE_RATE = 16_000
SAMPLES_PER_MS = SAMPLE_RATE // 1000
SEED = 20261122
FADE_MS = 10
PINK_LOW_HZ = 20.0
# Relative amplitudes of the mains hum's 50 Hz fundamental and its 100 / 150 Hz harmonics.
HUM_PARTIALS = ((50.0, 1.0), (100.0, 0.5), (150.0, 0.35))

RECORDING_ID = "meeting"
OUTPUT_FILES = ("meeting.wav", "meeting.stm", "meeting.rttm", "meeting.json")

# Source blocks in milliseconds of sample.wav; the cuts at 7350 and 21630 are the only points
# after 6.4 s where both the STM and the RTTM are silent (see the module docstring).
BLOCKS_MS: dict[str, tuple[int, int]] = {
    "A": (6_400, 7_350),
    "B": (7_350, 21_630),
    "C": (21_630, 30_000),
}
# pyannote's RTTM labels, matched to the STM's names by their times.
RTTM_SPEAKERS = {"speaker90": "Diane", "speaker91": "Sheila"}


@dataclass(frozen=True)
class Piece:
    """One stretch of the composed recording: a speech block or inserted non-speech."""

    kind: str  # "speech", "silence", "white", "pink" or "hum"
    duration_ms: int = 0  # for non-speech; a speech block's length comes from BLOCKS_MS
    dbfs: float | None = None  # RMS level of noise and hum
    block: str = ""  # for speech

    def length_ms(self) -> int:
        if self.kind == "speech":
            start, end = BLOCKS_MS[self.block]
            return end - start
        return self.duration_ms

    def describe(self) -> str:
        if self.kind == "speech":
            start, end = BLOCKS_MS[self.block]
            return f"speech block {self.block} (sample {_fmt(start)}–{_fmt(end)} s)"
        if self.kind == "silence":
            return "digital silence (exact zeros)"
        name = {"white": "white noise", "pink": "pink noise", "hum": "mains hum 50+100+150 Hz"}
        return f"{name[self.kind]}, {self.dbfs:g} dBFS RMS"


LAYOUT: tuple[Piece, ...] = (
    Piece("silence", 2_000),
    Piece("speech", block="B"),
    Piece("pink", 5_000, -45.0),
    Piece("speech", block="C"),
    Piece("silence", 8_000),
    Piece("speech", block="A"),
    Piece("white", 4_000, -60.0),
    Piece("speech", block="B"),
    Piece("hum", 6_000, -40.0),
    Piece("speech", block="C"),
    Piece("pink", 4_000, -30.0),
    Piece("speech", block="A"),
    Piece("speech", block="B"),
    Piece("white", 3_000, -50.0),
    Piece("silence", 3_000),
)


@dataclass(frozen=True)
class StmSegment:
    speaker: str
    start_ms: int
    end_ms: int
    text: str


@dataclass(frozen=True)
class Turn:
    speaker: str
    start_ms: int
    end_ms: int


# --------------------------------------------------------------------------- reading the source


def _to_ms(value: str) -> int:
    ms = Decimal(value) * 1000
    if ms != ms.to_integral_value():
        raise ValueError(f"time {value!r} is finer than a millisecond")
    return int(ms)


def _fmt(ms: int) -> str:
    """Milliseconds as seconds with exactly 3 decimals (no float rounding involved)."""
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    return f"{sign}{ms // 1000}.{ms % 1000:03d}"


def read_stm(path: Path) -> list[StmSegment]:
    segments = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith(";;"):
            continue
        _file, _channel, speaker, start, end, text = line.split(maxsplit=5)
        segments.append(StmSegment(speaker, _to_ms(start), _to_ms(end), text.strip()))
    return segments


def read_rttm(path: Path) -> list[Turn]:
    turns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        start, duration = _to_ms(fields[3]), _to_ms(fields[4])
        turns.append(Turn(RTTM_SPEAKERS.get(fields[7], fields[7]), start, start + duration))
    return turns


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, SAMPLE_RATE):
            raise SystemExit(f"{path}: expected 16 kHz mono 16-bit PCM, got {w.getparams()}")
        data = w.readframes(w.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0


def check_cut_points(segments: list[StmSegment], turns: list[Turn], duration_ms: int) -> None:
    """Stop unless every STM segment lies inside one block and no RTTM turn crosses a cut."""
    first = min(start for start, _ in BLOCKS_MS.values())
    last = max(end for _, end in BLOCKS_MS.values())
    if last > duration_ms:
        raise SystemExit(f"source audio is {_fmt(duration_ms)} s, blocks need {_fmt(last)} s")
    cuts = sorted({t for bounds in BLOCKS_MS.values() for t in bounds})
    problems = []
    for seg in segments:
        if not any(a <= seg.start_ms and seg.end_ms <= b for a, b in BLOCKS_MS.values()):
            problems.append(f"STM segment {seg} is not inside one block")
    for turn in turns:
        crossed = [c for c in cuts if turn.start_ms < c < turn.end_ms]
        if crossed or turn.end_ms <= first or turn.start_ms >= last:
            problems.append(f"RTTM turn {turn} crosses a cut or lies outside the blocks")
    if problems:
        raise SystemExit("cut points are not clean:\n  " + "\n  ".join(problems))


# --------------------------------------------------------------------------- making the audio


def _fade(x: np.ndarray) -> np.ndarray:
    """10 ms raised-cosine fade-in and fade-out (the first and last samples become 0)."""
    n = FADE_MS * SAMPLES_PER_MS
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
    y = x.copy()
    y[:n] *= ramp
    y[-n:] *= ramp[::-1]
    return y


def _at_level(x: np.ndarray, dbfs: float) -> np.ndarray:
    return x * (10.0 ** (dbfs / 20.0) / np.sqrt(np.mean(x**2)))


def white_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal(n)


def pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White noise shaped by 1/sqrt(f) in the frequency domain (power ~ 1/f), 20 Hz to Nyquist."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, d=1.0 / SAMPLE_RATE)
    gain = np.zeros_like(freqs)
    band = freqs >= PINK_LOW_HZ
    gain[band] = 1.0 / np.sqrt(freqs[band])
    return np.fft.irfft(spectrum * gain, n=n)


def mains_hum(n: int) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    return sum(amp * np.sin(2.0 * np.pi * freq * t) for freq, amp in HUM_PARTIALS)


def render(piece: Piece, source: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = piece.length_ms() * SAMPLES_PER_MS
    if piece.kind == "silence":
        return np.zeros(n)
    if piece.kind == "speech":
        start, end = BLOCKS_MS[piece.block]
        return _fade(source[start * SAMPLES_PER_MS : end * SAMPLES_PER_MS])
    if piece.kind == "white":
        raw = white_noise(rng, n)
    elif piece.kind == "pink":
        raw = pink_noise(rng, n)
    elif piece.kind == "hum":
        raw = mains_hum(n)
    else:
        raise ValueError(f"unknown piece kind {piece.kind!r}")
    assert piece.dbfs is not None
    return _fade(_at_level(raw, piece.dbfs))


def write_wav(path: Path, x: np.ndarray) -> None:
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())


# --------------------------------------------------------------------------- composing


def compose(source_dir: Path, out_dir: Path) -> list[tuple[int, int, Piece]]:
    """Write the four output files into ``out_dir``; return the layout with output times (ms)."""
    audio = read_wav(source_dir / "sample.wav")
    segments = read_stm(source_dir / "sample.stm")
    turns = read_rttm(source_dir / "sample.rttm")
    check_cut_points(segments, turns, len(audio) * 1000 // SAMPLE_RATE)

    rng = np.random.default_rng(SEED)
    chunks: list[np.ndarray] = []
    placed: list[tuple[int, int, Piece]] = []
    out_segments: list[StmSegment] = []
    out_turns: list[Turn] = []
    nonspeech: list[tuple[int, int]] = []
    position = 0
    for piece in LAYOUT:
        start, end = position, position + piece.length_ms()
        chunks.append(render(piece, audio, rng))
        placed.append((start, end, piece))
        if piece.kind == "speech":
            a, b = BLOCKS_MS[piece.block]
            shift = start - a
            for seg in segments:
                if a <= seg.start_ms and seg.end_ms <= b:
                    out_segments.append(
                        StmSegment(seg.speaker, seg.start_ms + shift, seg.end_ms + shift, seg.text)
                    )
            for turn in turns:
                lo, hi = max(turn.start_ms, a), min(turn.end_ms, b)
                if lo < hi:
                    out_turns.append(Turn(turn.speaker, lo + shift, hi + shift))
        else:
            nonspeech.append((start, end))
        position = end

    out_segments.sort(key=lambda s: (s.start_ms, s.end_ms, s.speaker, s.text))
    out_turns.sort(key=lambda t: (t.start_ms, t.end_ms, t.speaker))

    out_dir.mkdir(parents=True, exist_ok=True)
    write_wav(out_dir / "meeting.wav", np.concatenate(chunks))
    stm = "".join(
        f"{RECORDING_ID} 1 {s.speaker} {_fmt(s.start_ms)} {_fmt(s.end_ms)} {s.text}\n"
        for s in out_segments
    )
    rttm = "".join(
        f"SPEAKER {RECORDING_ID} 1 {_fmt(t.start_ms)} {_fmt(t.end_ms - t.start_ms)}"
        f" <NA> <NA> {t.speaker} <NA> <NA>\n"
        for t in out_turns
    )
    doc = {
        "segments": [
            {"start": s.start_ms / 1000, "end": s.end_ms / 1000, "speaker": s.speaker, "text": s.text}
            for s in out_segments
        ],
        "nonspeech": [{"start": a / 1000, "end": b / 1000} for a, b in nonspeech],
    }
    _write_text(out_dir / "meeting.stm", stm)
    _write_text(out_dir / "meeting.rttm", rttm)
    _write_text(out_dir / "meeting.json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return placed


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def layout_table(placed: list[tuple[int, int, Piece]]) -> str:
    rows = ["| start (s) | end (s) | content |", "|---:|---:|---|"]
    rows += [f"| {_fmt(a)} | {_fmt(b)} | {p.describe()} |" for a, b, p in placed]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help="folder with sample.wav, sample.stm, sample.rttm (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder for meeting.{wav,stm,rttm,json} (default: %(default)s)")
    parser.add_argument("--check", action="store_true",
                        help="compose into a temporary folder; exit 1 if --out's files differ")
    args = parser.parse_args(argv)

    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            compose(args.source, Path(tmp))
            differ = [
                name for name in OUTPUT_FILES
                if not (args.out / name).is_file()
                or (args.out / name).read_bytes() != (Path(tmp) / name).read_bytes()
            ]
        if differ:
            print(f"{args.out}: out of date or missing: {', '.join(differ)}; "
                  f"run scripts/compose_long_sample.py", file=sys.stderr)
            return 1
        print(f"{args.out}: up to date")
        return 0

    placed = compose(args.source, args.out)
    total = placed[-1][1]
    print(f"wrote {', '.join(OUTPUT_FILES)} to {args.out} ({_fmt(total)} s)")
    print(layout_table(placed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
