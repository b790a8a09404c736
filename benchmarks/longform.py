"""Long-form: RTFx, peak memory per stage, WER and DER of cascade recipes on an N-minute recording.

Composes a recording of the requested length from the bundled real speech (``samples/meeting`` — two voices,
with its own silences and noises — and ``samples/pyannote``), with real and synthetic non-speech between the
blocks (the speechbrain noise clips in ``/work/shared/data/nonspeech`` when present, digital silence, low white
noise), writes it as a 16 kHz 16-bit WAV with a matching STM (words, speakers) and RTTM (who spoke when), and runs
each chosen recipe on it in a fresh process, so each recipe's peak RSS is its own. ``--dense`` leaves the pauses
out: speech blocks back to back (the pyannote call's speech only, cut where both its references are silent).

Prints, per recipe: RTFx (processing, load excluded), wall and peak RSS per stage (``stage_details``'s
``peak_rss_mb``), the recipe's peak RSS, WER and DER (±0.25 s collar). Not a timed test: figures, printed.

    .venv/bin/python benchmarks/longform.py --minutes 15 [--dense] [--recipes cascade-plain,cascade-fast]
        [--keep DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MEETING = ROOT / "samples" / "meeting" / "meeting"
PYANNOTE = ROOT / "samples" / "pyannote" / "sample"
NOISES = Path("/work/shared/data/nonspeech")
SR = 16000
#: the pyannote call's speech, cut where its STM and RTTM are both silent (see samples/meeting/README.md)
DENSE_CUT = (6.40, 30.0)


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == SR and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def _read_stm(path: Path) -> list[tuple[str, float, float, str]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith(";;"):
            parts = line.split(maxsplit=5)
            rows.append((parts[2], float(parts[3]), float(parts[4]), parts[5] if len(parts) > 5 else ""))
    return rows


def _read_rttm(path: Path, names: dict[str, str] | None = None) -> list[tuple[str, float, float]]:
    rows = []
    for line in path.read_text().splitlines():
        p = line.split()
        if p and p[0] == "SPEAKER":
            rows.append(((names or {}).get(p[7], p[7]), float(p[3]), float(p[3]) + float(p[4])))
    return rows


class _Block:
    def __init__(self, audio: np.ndarray, stm, rttm):
        self.audio, self.stm, self.rttm = audio, stm, rttm


def _blocks(dense: bool) -> list[_Block]:
    pyannote_names = {"speaker90": "Diane", "speaker91": "Sheila"}
    a, b = DENSE_CUT
    full = _read_wav(PYANNOTE.with_suffix(".wav"))
    call = _Block(full[int(a * SR):int(b * SR)],
                  [(s, t0 - a, t1 - a, x) for s, t0, t1, x in _read_stm(PYANNOTE.with_suffix(".stm")) if t0 >= a],
                  [(s, max(t0, a) - a, min(t1, b) - a) for s, t0, t1 in
                   _read_rttm(PYANNOTE.with_suffix(".rttm"), pyannote_names) if t1 > a])
    if dense:
        return [call]
    meeting = _Block(_read_wav(MEETING.with_suffix(".wav")), _read_stm(MEETING.with_suffix(".stm")),
                     _read_rttm(MEETING.with_suffix(".rttm")))
    return [meeting, call]


def _gaps(rng: np.random.Generator) -> list[np.ndarray]:
    """Non-speech between blocks: real noise clips (when present), silence, low white noise."""
    out = []
    for p in sorted(NOISES.glob("noise*.wav")) if NOISES.is_dir() else []:
        try:
            clip = _read_wav(p)
        except (AssertionError, wave.Error):
            continue
        out.append((clip[: 6 * SR].astype(np.float32) * 0.5).astype(np.int16))
    out.append(np.zeros(3 * SR, np.int16))
    out.append((rng.normal(0, 150, 4 * SR)).clip(-32768, 32767).astype(np.int16))
    return out


def compose(path: Path, minutes: float, dense: bool, seed: int = 20261201) -> float:
    """Write ``path`` (.wav) with ``path``.stm and .rttm beside it; returns the duration in seconds."""
    rng = np.random.default_rng(seed)
    blocks, gaps = _blocks(dense), _gaps(rng)
    target = int(minutes * 60 * SR)
    stm, rttm = [], []
    rec = path.stem
    n = 0
    i = 0
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(SR)
        while n < target:
            block = blocks[i % len(blocks)]
            t = n / SR
            gain = float(rng.uniform(0.6, 1.0))  # level varies from block to block, as across a long call
            w.writeframes((block.audio.astype(np.float32) * gain).astype(np.int16).tobytes())
            stm += [(s, t + a, t + b, x) for s, a, b, x in block.stm]
            rttm += [(s, t + a, t + b) for s, a, b in block.rttm]
            n += len(block.audio)
            i += 1
            if not dense and n < target:
                gap = gaps[int(rng.integers(len(gaps)))]
                w.writeframes(gap.tobytes())
                n += len(gap)
    path.with_suffix(".stm").write_text(
        "".join(f"{rec} 1 {s} {a:.3f} {b:.3f} {x}\n" for s, a, b, x in stm))
    path.with_suffix(".rttm").write_text(
        "".join(f"SPEAKER {rec} 1 {a:.3f} {b - a:.3f} <NA> <NA> {s} <NA> <NA>\n" for s, a, b in rttm))
    return n / SR


def child(recipe: str, wav: str) -> None:
    """Run one recipe on the recording in this (fresh) process; print its results.jsonl row as JSON."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
    from workbench import runner
    from workbench.recipes import load_recipe

    audio = Path(wav)
    item = runner.load_item(str(audio), [str(audio.with_suffix(".stm")), str(audio.with_suffix(".rttm"))],
                            max_duration_s=5 * 3600)
    with tempfile.TemporaryDirectory() as tmp:
        writer = runner.ResultWriter(Path(tmp) / runner.new_run_id())
        [result] = runner.run_recipes([load_recipe(recipe)], [item], writer=writer, run_id="longform")
        row = result.to_json()
    row["transcript"] = None  # not needed by the parent
    print("LONGFORM-ROW " + json.dumps(row))


def run_recipe(recipe: str, wav: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, __file__, "--child", recipe, str(wav)], capture_output=True, text=True,
                          env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("LONGFORM-ROW "):
            return json.loads(line[len("LONGFORM-ROW "):])
    return {"recipe": recipe, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}


def _fmt(v, spec=".1f", unit=""):
    return "—" if v is None else f"{v:{spec}}{unit}"


def report(row: dict, duration: float) -> str:
    if row.get("error"):
        return f"{row['recipe']}: failed: {row['error']}"
    m = row.get("metrics") or {}
    der = next((d["der"] for d in m.get("der") or () if d.get("collar_s") == 0.5), None)
    wer = (m.get("asr") or {}).get("wer", m.get("wer"))
    lines = [f"{row['recipe']}: RTFx {_fmt(row.get('rtfx'))} (processing {_fmt(row.get('processing_s'))} s, "
             f"load excluded), peak RSS {_fmt(row.get('peak_rss_mb'), '.0f', ' MiB')}, ASR WER "
             f"{_fmt(None if wer is None else 100 * wer, '.1f', ' %')}, DER (±0.25 s) "
             f"{_fmt(None if der is None else 100 * der, '.1f', ' %')}"]
    details, timings = row.get("stage_details") or {}, row.get("timings") or {}
    for stage, wall in timings.items():
        d = details.get(stage) or {}
        extra = ", ".join(f"{k} {v}" for k, v in d.items() if k != "peak_rss_mb" and not isinstance(v, (dict, list)))
        lines.append(f"  {stage:<12} {wall:8.1f} s  peak {_fmt(d.get('peak_rss_mb'), '.0f', ' MiB'):>10}"
                     + (f"  ({extra})" if extra else ""))
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--dense", action="store_true", help="speech back to back, no pauses between blocks")
    parser.add_argument("--recipes", default="cascade-plain", help="comma-separated recipe names or files")
    parser.add_argument("--keep", type=Path, default=None, help="write the recording and references here")
    parser.add_argument("--json", type=Path, default=None, help="append each recipe's figures as a JSON line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        wav = folder / f"longform-{args.minutes:g}min{'-dense' if args.dense else ''}.wav"
        duration = compose(wav, args.minutes, args.dense)
        print(f"recording: {duration / 60:.1f} min, {'dense (no pauses)' if args.dense else 'with pauses and noises'}"
              f" — {wav.name} (+ .stm, .rttm)", flush=True)
        for recipe in args.recipes.split(","):
            row = run_recipe(recipe.strip(), wav)
            print(report(row, duration), flush=True)
            if args.json:
                keep = {k: row.get(k) for k in ("recipe", "rtfx", "processing_s", "peak_rss_mb", "timings", "cpu_timings",
                                                "stage_details", "metrics", "error")}
                with args.json.open("a") as f:
                    f.write(json.dumps({"minutes": args.minutes, "dense": args.dense, **keep}) + "\n")


if __name__ == "__main__":
    main()
