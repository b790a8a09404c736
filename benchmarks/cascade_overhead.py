"""How much time does the workbench add on top of faster-whisper itself, doing the same work?

Both sides run one VAD+ASR recipe defined here (``RECIPE``: silero VAD → faster-whisper, same model, compute
type, threads, beam, language, word timestamps, VAD settings); no shipped recipe is loaded, so what the shipped
recipes add later (diarization, LLM formatting) cannot leak into the comparison. Before any timing the script
checks that the two sides' effective settings are equal (the workbench backend's decode arguments against
faster-whisper's ``transcribe`` defaults overlaid with the direct call's arguments; the VAD backend's options
against ``VadOptions``; model folder, device, compute type, threads) and stops if they are not.

Then it times, alternately in one process:
  A. the workbench running ``RECIPE`` (decode → silero VAD → faster-whisper → scoring → results.jsonl), through
     the same library call ``workbench compare`` makes (its load includes the runner's 2 s warm-up);
  B. faster-whisper called directly (decode_audio, WhisperModel, transcribe with vad_filter=True, segments
     consumed).
Both include model load; the side that goes first alternates from pair to pair. Prints what each side ran, each
pair's ratio A/B, the median ratio and the load-excluded ratio, and checks both produced the same words (when not,
how many words apart). Past ``LAZY_FEATURES_MIN_S`` of speech the workbench by default computes Whisper's features
a window at a time (bounded memory), equal to faster-whisper's up to float rounding — enough to change words in
sequential decoding, and with them the decoding work — so in this process it computes them as faster-whisper does
(the threshold set to infinity, checked with the other settings); that step's own cost is timed apart and printed
last.

    .venv/bin/python benchmarks/cascade_overhead.py [--repeats 3] [--minutes 10 | --copies 20] [--threads N]
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import os
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "pyannote" / "sample.wav"

MODEL = "base"


def recipe_table(threads: int) -> dict:
    """The one recipe both sides run: VAD+ASR only."""
    return {
        "name": "overhead-vad-asr",
        "description": "benchmark: silero VAD → faster-whisper (no diarization, no formatting)",
        "pipeline": "cascade",
        "vad": {"backend": "silero"},
        "asr": {"backend": "faster-whisper", "model": MODEL, "device": "cpu", "compute_type": "int8",
                "cpu_threads": threads, "language": "en", "beam_size": 5, "word_timestamps": True},
    }


# what the direct side passes; everything else is faster-whisper's own default
DIRECT_TRANSCRIBE = {"language": "en", "beam_size": 5, "word_timestamps": True, "vad_filter": True}


def make_long_recording(path: Path, copies: int) -> float:
    with wave.open(str(SAMPLE), "rb") as src:
        params, frames = src.getparams(), src.readframes(src.getnframes())
    with wave.open(str(path), "wb") as dst:
        dst.setparams(params)
        for _ in range(copies):
            dst.writeframes(frames)
    return copies * params.nframes / params.framerate


def workbench_settings(recipe) -> dict:
    """The effective settings the workbench will run with, read from its own backends."""
    from workbench.backends import asr
    from workbench.backends.asr import FasterWhisper
    from workbench.model_sources import resolve_whisper

    asr_options, vad = recipe.stage("asr").options, recipe.stage("vad")
    if vad.backend != "silero" or vad.options.runtime != "onnx":
        sys.exit("benchmark recipe must use silero VAD on onnx (faster-whisper's own VAD)")
    backend = FasterWhisper(asr_options)
    vad_o = vad.options
    return {
        "model": resolve_whisper(asr_options.model).location,
        "device": asr_options.device,
        "compute_type": asr_options.compute_type,
        "cpu_threads": asr_options.cpu_threads,
        "features": ("clips (batched)" if asr_options.batch_size else
                     "whole signal" if asr.LAZY_FEATURES_MIN_S == math.inf else "windowed"),
        "transcribe": {**backend._kwargs(), "vad_filter": True},
        "vad": {"threshold": vad_o.threshold, "neg_threshold": vad_o.neg_threshold,
                "min_speech_duration_ms": vad_o.min_speech_duration_ms,
                "max_speech_duration_s": vad_o.max_speech_duration_s or float("inf"),
                "min_silence_duration_ms": vad_o.min_silence_duration_ms, "speech_pad_ms": vad_o.speech_pad_ms},
    }


def direct_settings(threads: int) -> dict:
    """The effective settings of the direct call: its arguments over faster-whisper's defaults."""
    from faster_whisper import WhisperModel
    from faster_whisper.vad import VadOptions

    from workbench.model_sources import resolve_whisper

    defaults = {name: p.default for name, p in inspect.signature(WhisperModel.transcribe).parameters.items()
                if p.default is not inspect.Parameter.empty}
    return {
        "model": resolve_whisper(MODEL).location,
        "device": "cpu",
        "compute_type": "int8",
        "cpu_threads": threads,
        "features": "whole signal",
        "transcribe": {**defaults, **DIRECT_TRANSCRIBE},
        "vad": dataclasses.asdict(VadOptions()),
    }


def assert_equal_work(wb: dict, direct: dict) -> None:
    problems = [f"{k}: workbench {wb[k]!r} vs direct {direct[k]!r}"
                for k in ("model", "device", "compute_type", "cpu_threads", "features") if wb[k] != direct[k]]
    for group in ("transcribe", "vad"):
        for key, value in wb[group].items():
            if key not in direct[group]:
                problems.append(f"{group}.{key}: the direct call has no such setting")
            elif _norm(direct[group][key]) != _norm(value):
                problems.append(f"{group}.{key}: workbench {value!r} vs direct {direct[group][key]!r}")
    if problems:
        sys.exit("the two sides would not do the same work:\n  " + "\n  ".join(problems))


def _norm(value):
    return list(value) if isinstance(value, tuple) else value


def run_workbench(recipe, audio: Path, out_dir: Path) -> tuple[float, float, str]:
    from workbench import runner

    t0 = time.perf_counter()
    item = runner.load_item(str(audio))
    writer = runner.ResultWriter(out_dir / runner.new_run_id())
    [result] = runner.run_recipes([recipe], [item], writer=writer, run_id="bench")
    wall = time.perf_counter() - t0
    if result.error:
        sys.exit(f"workbench run failed: {result.error}")
    return wall, wall - (result.load_s or 0.0), result.transcript.text


def run_direct(settings: dict, audio: Path) -> tuple[float, float, str]:
    from faster_whisper import WhisperModel
    from faster_whisper.audio import decode_audio
    from faster_whisper.vad import VadOptions

    t0 = time.perf_counter()
    model = WhisperModel(settings["model"], device=settings["device"], compute_type=settings["compute_type"],
                         cpu_threads=settings["cpu_threads"])
    t_load = time.perf_counter() - t0
    samples = decode_audio(str(audio))
    segments, _ = model.transcribe(samples, vad_parameters=VadOptions(), **DIRECT_TRANSCRIBE)
    text = " ".join(s.text.strip() for s in segments)
    wall = time.perf_counter() - t0
    return wall, wall - t_load, text


def word_difference(reference: str, other: str) -> str:
    """How far two transcripts of the same audio are apart: the workbench's WER of one against the other (Whisper
    English normalisation, jiwer's alignment), so case and punctuation do not count."""
    from workbench.metrics import word_errors

    counts = word_errors(reference, other)
    return (f"{counts.reference_length} words from faster-whisper, {counts.errors} word edits apart after Whisper "
            f"normalisation = {100 * (counts.rate or 0.0):.2f} %")


def window_features_cost(audio: Path, repeats: int) -> tuple[float, float]:
    """Median seconds to compute the whole recording's Whisper features at once (faster-whisper) and a window at a
    time (the workbench's default past ``LAZY_FEATURES_MIN_S`` of speech): what the comparison leaves out, on the
    whole recording (an upper bound for its speech)."""
    from faster_whisper.audio import decode_audio
    from faster_whisper.feature_extractor import FeatureExtractor

    from workbench.backends.asr import _BLOCK_FRAMES, _Joined, _LazyMel

    samples, extractor = decode_audio(str(audio)), FeatureExtractor()
    whole, windowed = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        extractor(samples)
        whole.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        mel = _LazyMel(extractor, _Joined(samples))
        for a in range(0, mel.shape[1], _BLOCK_FRAMES):  # as decoding reads them: forward, a window at a time
            mel[:, a : a + _BLOCK_FRAMES]
        windowed.append(time.perf_counter() - t0)
    return statistics.median(whole), statistics.median(windowed)


def describe(settings: dict) -> str:
    t = settings["transcribe"]
    return (f"model {Path(settings['model']).name} ({settings['device']}, {settings['compute_type']}, "
            f"{settings['cpu_threads']} threads), features of the {settings['features']}, language {t['language']}, "
            f"beam {t['beam_size']}, "
            f"word_timestamps {t['word_timestamps']}, temperature {_norm(t['temperature'])}, "
            f"VAD threshold {settings['vad']['threshold']}, min silence {settings['vad']['min_silence_duration_ms']} ms, "
            f"pad {settings['vad']['speech_pad_ms']} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--copies", type=int, default=20, help="copies of the 30 s sample (20 = 10 minutes)")
    parser.add_argument("--minutes", type=float, default=None, help="recording length (overrides --copies)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads on both sides")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from workbench.backends import asr
    from workbench.recipes import parse_recipe

    # equal work: faster-whisper's whole-signal features at any length in this process (the workbench's default
    # computes them a window at a time past LAZY_FEATURES_MIN_S of speech: equal up to float rounding, which can
    # change words and so the decoding work); that step's own cost is timed apart (window_features_cost)
    lazy_min_s, asr.LAZY_FEATURES_MIN_S = asr.LAZY_FEATURES_MIN_S, math.inf
    recipe = parse_recipe(recipe_table(args.threads), name="overhead-vad-asr")
    wb, direct = workbench_settings(recipe), direct_settings(args.threads)
    assert_equal_work(wb, direct)
    copies = max(1, math.ceil(args.minutes * 2)) if args.minutes else args.copies
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "long.wav"
        duration = make_long_recording(audio, copies)
        print(f"recording: {duration / 60:.1f} min ({copies} × the bundled 30 s sample)")
        print(f"A workbench: recipe {recipe.name} ({recipe.description}); stages "
              + ", ".join(f"{s.stage}={s.backend}" for s in recipe.stages if s.backend != "none")
              + f"; {describe(wb)}")
        print(f"B faster-whisper {_fw_version()} direct: decode_audio → WhisperModel.transcribe(vad_filter=True); "
              f"{describe(direct)}")
        print("settings checked equal on both sides: model, device, compute type, threads, features, "
              f"{len(wb['transcribe'])} decode arguments, {len(wb['vad'])} VAD options")
        run_direct(direct, audio)  # warm-up: page cache, model files, joined base model
        ratios, ratios_no_load, rows = [], [], []
        for i in range(args.repeats):
            # sides alternate which goes first (ABBA…), so a drift in the machine's speed favours neither
            if i % 2 == 0:
                wb_wall, wb_noload, wb_text = run_workbench(recipe, audio, Path(tmp) / "reports")
                fw_wall, fw_noload, fw_text = run_direct(direct, audio)
            else:
                fw_wall, fw_noload, fw_text = run_direct(direct, audio)
                wb_wall, wb_noload, wb_text = run_workbench(recipe, audio, Path(tmp) / "reports")
            if wb_text.split() != fw_text.split():
                print(f"warning: the two runs produced different words ({word_difference(fw_text, wb_text)}); "
                      "the decoding work differs with them")
            ratios.append(wb_wall / fw_wall)
            ratios_no_load.append(wb_noload / fw_noload)
            rows.append((wb_wall, fw_wall))
            print(f"pair {i + 1}: workbench {wb_wall:.2f} s, faster-whisper {fw_wall:.2f} s, ratio {ratios[-1]:.4f} "
                  f"(load excluded {ratios_no_load[-1]:.4f}); RTFx {duration / wb_wall:.1f} vs {duration / fw_wall:.1f}")
        med = statistics.median(ratios)
        print(f"median ratio workbench / faster-whisper: {med:.4f} (overhead {100 * (med - 1):+.1f}%), "
              f"load excluded: {statistics.median(ratios_no_load):.4f}; min–max {min(ratios):.4f}–{max(ratios):.4f}")
        fw_median = statistics.median(r[1] for r in rows)
        print(f"median wall: workbench {statistics.median(r[0] for r in rows):.2f} s, "
              f"faster-whisper {fw_median:.2f} s; target: median ratio ≤ 1.02")
        if duration > lazy_min_s:
            whole_s, windowed_s = window_features_cost(audio, max(3, args.repeats))
            print(f"left out above: the workbench's default features a window at a time past "
                  f"{lazy_min_s:.0f} s of speech take {windowed_s:.2f} s for this recording against "
                  f"{whole_s:.2f} s at once, {100 * (windowed_s - whole_s) / fw_median:+.2f} % of faster-whisper's "
                  f"run (they bound memory; equal up to float rounding, which can change words)")


def _fw_version() -> str:
    import faster_whisper

    return faster_whisper.__version__


if __name__ == "__main__":
    main()
