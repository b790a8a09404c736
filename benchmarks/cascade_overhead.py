"""How much time does the workbench add on top of faster-whisper itself?

Builds a 10-minute recording (the bundled pyannote sample × 20), then times, alternately in one process:
  A. the workbench running the ``cascade`` recipe (decode → silero VAD → faster-whisper → scoring →
     results.jsonl), through the same library call ``workbench compare`` makes;
  B. faster-whisper called directly with the same model and settings (decode_audio, WhisperModel,
     transcribe with vad_filter=True and the same VAD options, segments consumed).
Both include model load. Prints each pair's ratio A/B, the median ratio, and the load-excluded ratio,
and checks both produced the same words.

    .venv/bin/python benchmarks/cascade_overhead.py [--repeats 3] [--copies 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "pyannote" / "sample.wav"


def make_long_recording(path: Path, copies: int) -> float:
    with wave.open(str(SAMPLE), "rb") as src:
        params, frames = src.getparams(), src.readframes(src.getnframes())
    with wave.open(str(path), "wb") as dst:
        dst.setparams(params)
        for _ in range(copies):
            dst.writeframes(frames)
    return copies * params.nframes / params.framerate


def run_workbench(audio: Path, out_dir: Path) -> tuple[float, float, str]:
    from workbench import runner
    from workbench.recipes import load_recipe

    t0 = time.perf_counter()
    recipe = load_recipe("cascade")
    item = runner.load_item(str(audio))
    writer = runner.ResultWriter(out_dir / runner.new_run_id())
    [result] = runner.run_recipes([recipe], [item], writer=writer, run_id="bench")
    wall = time.perf_counter() - t0
    if result.error:
        sys.exit(f"workbench run failed: {result.error}")
    decode_and_stages = wall - (result.load_s or 0.0)
    return wall, decode_and_stages, result.transcript.text


def run_direct(audio: Path) -> tuple[float, float, str]:
    from faster_whisper import WhisperModel
    from faster_whisper.audio import decode_audio
    from faster_whisper.vad import VadOptions

    from workbench.model_sources import resolve_whisper

    t0 = time.perf_counter()
    model = WhisperModel(resolve_whisper("base").location, device="cpu", compute_type="int8", cpu_threads=os.cpu_count() or 1)
    t_load = time.perf_counter() - t0
    samples = decode_audio(str(audio))
    segments, _ = model.transcribe(samples, language="en", beam_size=5, word_timestamps=True, vad_filter=True,
                                   vad_parameters=VadOptions())
    text = " ".join(s.text.strip() for s in segments)
    wall = time.perf_counter() - t0
    return wall, wall - t_load, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--copies", type=int, default=20, help="copies of the 30 s sample (20 = 10 minutes)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "long.wav"
        duration = make_long_recording(audio, args.copies)
        print(f"recording: {duration / 60:.1f} min; recipe: cascade (silero VAD → faster-whisper base, int8, beam 5, word timestamps)")
        run_direct(audio)  # warm-up: page cache, model files, joined base model
        ratios, ratios_no_load, rows = [], [], []
        for i in range(args.repeats):
            wb_wall, wb_noload, wb_text = run_workbench(audio, Path(tmp) / "reports")
            fw_wall, fw_noload, fw_text = run_direct(audio)
            if wb_text.split() != fw_text.split():
                print("warning: the two runs produced different words; the comparison is not like for like")
            ratios.append(wb_wall / fw_wall)
            ratios_no_load.append(wb_noload / fw_noload)
            rows.append((wb_wall, fw_wall))
            print(f"pair {i + 1}: workbench {wb_wall:.2f} s, faster-whisper {fw_wall:.2f} s, ratio {ratios[-1]:.4f} "
                  f"(load excluded {ratios_no_load[-1]:.4f}); RTFx {duration / wb_wall:.1f} vs {duration / fw_wall:.1f}")
        med = statistics.median(ratios)
        print(f"median ratio workbench / faster-whisper: {med:.4f} (overhead {100 * (med - 1):+.1f}%), "
              f"load excluded: {statistics.median(ratios_no_load):.4f}; min–max {min(ratios):.4f}–{max(ratios):.4f}")
        print(f"median wall: workbench {statistics.median(r[0] for r in rows):.2f} s, "
              f"faster-whisper {statistics.median(r[1] for r in rows):.2f} s; target: overhead under 5%")


if __name__ == "__main__":
    main()
