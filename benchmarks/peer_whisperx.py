"""The workbench's cascade VAD+ASR against WhisperX: same recording, same weights, same cores, interleaved.

WhisperX pins its own torch stack (torch/torchaudio 2.8, pyannote.audio 4, torchcodec), so it gets a venv of its
own, built by this script on first use under ``~/.cache/workbench/whisperx-venv`` (``--venv``): the CPU torch
2.13.0 wheel (never a CUDA build: the script stops if pip brings any ``nvidia-*`` or ``triton`` package), then
``whisperx==3.8.6`` without its pins, then exactly what its batched transcription needs (faster-whisper and
CTranslate2 at the workbench's own versions, transformers 4, pandas, pyannote.core, silero-vad). pyannote.audio
cannot be installed without torchaudio/torchcodec, so WhisperX runs with its ``vad_method="silero"`` option (the
silero model from the silero-vad package, as ``torch.hub`` would fetch it; its pyannote VAD is never imported).
When the venv cannot be built the script prints one line saying why and exits 0 (skipped).

Each side runs in its own process, load and decoding excluded (the timed span is VAD + ASR only):
  - WhisperX: ``load_model(<the workbench's base folder>, compute_type="int8", threads=N, vad_method="silero",
    language="en")`` then ``transcribe(samples, batch_size=B)``; its own defaults otherwise (beam 5, no word
    timestamps: WhisperX gets words from a separate alignment model, not run here);
  - workbench: a VAD+ASR recipe (silero VAD → faster-whisper base, int8, N threads, beam 5, word timestamps, as
    the shipped cascade recipes), sequential (``batch_size = 0``) and batched (the shipped ``cascade`` recipe's
    ``batch_size``, or ``--workbench-batch-size``), through the runner; the time is its ``vad`` + ``asr`` stage
    timings.
Both get the same 16 kHz samples (decoded once by the workbench). Sides alternate within each repeat; the script
prints each run, the medians, the speed ratio workbench / WhisperX (> 1: the workbench is faster) and each
side's WER against the reference (workbench metric: Whisper English normalisation, jiwer alignment).

Recordings: ``meeting`` (default: samples/meeting, 96.5 s of real telephone speech with silences and noises
between turns, exact reference) repeated ``--copies`` times, or ``dense`` (samples/pyannote/sample.wav, 30 s of
dense two-speaker telephone speech) repeated, or any ``--audio FILE --reference FILE``.

    .venv/bin/python benchmarks/peer_whisperx.py [--recording meeting|dense] [--copies 3] [--repeats 2]
        [--threads N] [--batch-size 8] [--workbench-batch-size N] [--venv DIR]
"""

from __future__ import annotations

# stdlib only at the top: the same file runs as the WhisperX worker inside the WhisperX venv
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHISPERX = "whisperx==3.8.6"
TORCH = "torch==2.13.0"  # the CPU wheel on this machine's disk; PyPI's torch for Linux is a CUDA build
# what WhisperX's batched transcription imports (asr.py, audio.py, vads/vad.py, vads/silero.py)
WHISPERX_NEEDS = ["transformers>=4.48,<5", "huggingface-hub<1.0", "pandas", "pyannote.core", "silero-vad==6.2.3",
                  "numpy"]
FORBIDDEN = ("nvidia-", "triton")  # a CUDA torch stack: several GB, never wanted here


def default_venv() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "workbench" / "whisperx-venv"


# --- the WhisperX venv ------------------------------------------------------------------------------


def _pip(python: Path, args: list[str], log) -> None:
    cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *args]
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=1800)
    if done.returncode:
        raise RuntimeError(f"pip install {' '.join(a for a in args if not a.startswith('-'))} failed")
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True).stdout
    bad = [line for line in listed.splitlines() if line.lower().startswith(FORBIDDEN)]
    if bad:
        raise CudaStack(f"pip brought a CUDA stack ({', '.join(bad[:3])}); venv removed")


class CudaStack(RuntimeError):
    pass


def ensure_venv(venv: Path) -> tuple[Path | None, str]:
    """(the venv's python, "") when WhisperX imports there; (None, why) when it cannot be built."""
    python = venv / "bin" / "python"
    ready = venv / ".ready"
    if ready.exists() and python.exists():
        return python, ""
    from importlib.metadata import version

    log_path = venv.parent / "whisperx-venv.log"
    try:
        venv.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("w") as log:
            if not python.exists():  # a venv left unfinished by an earlier try is completed (pip skips what is there)
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=log, stderr=subprocess.STDOUT)
            # the same decoder on both sides, and no other torch may ever be pulled in
            constraints = venv / "constraints.txt"
            constraints.write_text(f"{TORCH}\nfaster-whisper=={version('faster-whisper')}\n"
                                   f"ctranslate2=={version('ctranslate2')}\n")
            _pip(python, [TORCH], log)
            check = subprocess.run([str(python), "-c", "import torch; print(torch.__version__)"],
                                   capture_output=True, text=True)
            if "+cpu" not in check.stdout:
                raise RuntimeError(f"torch in the venv is not the CPU build ({check.stdout.strip() or check.stderr[-200:]})")
            _pip(python, ["--no-deps", WHISPERX], log)
            _pip(python, ["-c", str(constraints), f"faster-whisper=={version('faster-whisper')}",
                          f"ctranslate2=={version('ctranslate2')}", *WHISPERX_NEEDS], log)
            probe = subprocess.run([str(python), __file__, "--probe"], capture_output=True, text=True, timeout=300)
            if probe.returncode:
                last = (probe.stderr or probe.stdout).strip().splitlines()[-1:] or ["?"]
                raise RuntimeError(f"whisperx does not import: {last[0]}")
        ready.write_text(WHISPERX + "\n")
        return python, ""
    except CudaStack as exc:
        shutil.rmtree(venv, ignore_errors=True)
        return None, f"{exc} (log: {log_path})"
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return None, f"{exc} (log: {log_path})"


# --- the WhisperX worker (runs inside the WhisperX venv) ---------------------------------------------


def _import_whisperx_asr():
    """whisperx.asr with pyannote.audio stubbed: asr.py imports the pyannote VAD class at module level, and
    pyannote.audio (torchaudio, torchcodec) is not installed; the silero VAD used here never touches it. The
    silero model comes from the silero-vad package instead of torch.hub (no network here)."""
    import torch

    class _Absent:
        def __init__(self, *a, **k):
            raise RuntimeError("pyannote.audio is not installed in this venv")

    def _absent(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Absent

    for name in ("pyannote.audio", "pyannote.audio.core", "pyannote.audio.core.io", "pyannote.audio.pipelines",
                 "pyannote.audio.pipelines.utils"):
        module = types.ModuleType(name)
        module.__getattr__ = _absent  # type: ignore[method-assign]
        sys.modules[name] = module

    def hub_load(repo_or_dir, model, **kwargs):
        if repo_or_dir != "snakers4/silero-vad":
            raise RuntimeError(f"no network: torch.hub.load({repo_or_dir!r})")
        import silero_vad

        return silero_vad.load_silero_vad(onnx=kwargs.get("onnx", False)), (
            silero_vad.get_speech_timestamps, None, silero_vad.read_audio, None, None)

    torch.hub.load = hub_load
    import whisperx.asr

    return whisperx.asr


def whisperx_worker(args) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    asr = _import_whisperx_asr()
    import whisperx

    samples = np.load(args.samples)
    t0 = time.perf_counter()
    model = asr.load_model(args.model, "cpu", compute_type="int8", threads=args.threads, vad_method="silero",
                           language="en")
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = model.transcribe(samples, batch_size=args.batch_size, language="en")
    seconds = time.perf_counter() - t0
    text = " ".join(s["text"].strip() for s in out["segments"])
    print(json.dumps({"seconds": seconds, "load_s": load_s, "text": text,
                      "version": getattr(whisperx, "__version__", None) or _dist_version("whisperx")}))


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


# --- the workbench worker ------------------------------------------------------------------------------


def recipe_table(threads: int, batch_size: int) -> dict:
    """The shipped cascade's VAD+ASR, with the decoding path under test."""
    return {
        "name": f"peer-vad-asr-b{batch_size}",
        "description": "benchmark: silero VAD → faster-whisper base (no diarization, no formatting)",
        "pipeline": "cascade",
        "vad": {"backend": "silero"},
        "asr": {"backend": "faster-whisper", "model": "base", "device": "cpu", "compute_type": "int8",
                "cpu_threads": threads, "language": "en", "beam_size": 5, "word_timestamps": True,
                "batch_size": batch_size},
    }


def shipped_batch_size() -> int:
    """The shipped ``cascade`` recipe's ASR batch size (the path the benchmark measures by default)."""
    from workbench.recipes import load_recipe_file

    return load_recipe_file(ROOT / "pipelines" / "cascade.toml").stage("asr").options.batch_size


def workbench_worker(args) -> None:
    from workbench import runner
    from workbench.recipes import parse_recipe

    table = recipe_table(args.threads, args.batch_size)
    recipe = parse_recipe(table, name=table["name"])
    with tempfile.TemporaryDirectory() as tmp:
        item = runner.load_item(args.audio)
        writer = runner.ResultWriter(Path(tmp) / runner.new_run_id())
        [result] = runner.run_recipes([recipe], [item], writer=writer, run_id="peer")
    if result.error:
        sys.exit(f"workbench run failed: {result.error}")
    stages = {t.stage: t.wall_s for t in result.timings}
    asr = result.components.get("asr", {})
    print(json.dumps({"seconds": stages.get("vad", 0.0) + stages["asr"], "load_s": result.load_s,
                      "text": result.transcript.text, "ran": decoding(asr)}))


def decoding(asr: dict) -> str:
    """How the workbench's ASR decoded: threads, and model replicas when more than one."""
    if asr.get("replicas", 1) > 1:
        return f"{asr['replicas']} replicas × {asr['threads_per_replica']} thread(s)"
    return f"{asr.get('threads', '?')} thread(s)"


# --- the comparison --------------------------------------------------------------------------------------


def compose(kind: str, copies: int, folder: Path) -> tuple[Path, str, float]:
    """(a wav of ``copies`` × the bundled recording, its reference text, its duration in seconds)."""
    import wave

    from workbench.references import load_reference

    src = {"meeting": ROOT / "samples" / "meeting" / "meeting.wav", "dense": ROOT / "samples" / "pyannote" / "sample.wav"}[kind]
    reference = load_reference(src.with_suffix(".stm")).text
    path = folder / f"{kind}-x{copies}.wav"
    with wave.open(str(src), "rb") as r:
        params, frames = r.getparams(), r.readframes(r.getnframes())
    with wave.open(str(path), "wb") as w:
        w.setparams(params)
        for _ in range(copies):
            w.writeframes(frames)
    return path, " ".join([reference] * copies), copies * params.nframes / params.framerate


def _run(cmd: list[str]) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode:
        sys.exit(f"{' '.join(cmd[:3])} … failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recording", choices=("meeting", "dense"), default="meeting")
    parser.add_argument("--copies", type=int, default=3, help="times the bundled recording is repeated")
    parser.add_argument("--audio", help="any recording instead (with --reference)")
    parser.add_argument("--reference", help="its reference (STM, RTTM-less text, …: what workbench reads)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=8, help="WhisperX's batch size (its default: 8)")
    parser.add_argument("--workbench-batch-size", type=int, default=None,
                        help="the workbench's batched path (default: the shipped cascade recipe's batch_size)")
    parser.add_argument("--venv", type=Path, default=default_venv())
    parser.add_argument("--install-only", action="store_true", help="build the WhisperX venv and stop")
    # internal: the worker processes
    parser.add_argument("--worker", choices=("whisperx", "workbench"), help=argparse.SUPPRESS)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--samples", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        _import_whisperx_asr()
        return
    if args.worker == "whisperx":
        return whisperx_worker(args)
    if args.worker == "workbench":
        return workbench_worker(args)

    python, why = ensure_venv(args.venv)
    if python is None:
        print(f"skipped: WhisperX could not be installed in its own venv: {why}")
        return
    if args.install_only:
        print(f"WhisperX venv ready: {python}")
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np

    from workbench.audio import load_audio
    from workbench.metrics.errors import word_errors
    from workbench.model_sources import resolve_whisper

    model = resolve_whisper("base").location
    ours = args.workbench_batch_size or shipped_batch_size()
    with tempfile.TemporaryDirectory() as tmp:
        if args.audio:
            from workbench.references import load_reference

            audio, reference = Path(args.audio), load_reference(args.reference).text
            what = audio.name
        else:
            audio, reference, _ = compose(args.recording, args.copies, Path(tmp))
            what = f"samples/{args.recording} × {args.copies}"
        samples = load_audio(str(audio)).samples.astype(np.float32)
        duration = len(samples) / 16000
        np.save(Path(tmp) / "samples.npy", samples)
        me = [sys.executable, __file__, "--threads", str(args.threads)]
        sides = {  # name → its command; batch size last
            "WhisperX 3.8.6 (batched, silero VAD)": [str(python), __file__, "--threads", str(args.threads), "--worker",
                                                       "whisperx", "--samples", str(Path(tmp) / "samples.npy"),
                                                       "--model", model, "--batch-size", str(args.batch_size)],
            "workbench sequential (batch_size 0)": [*me, "--worker", "workbench", "--audio", str(audio), "--batch-size", "0"],
            f"workbench batched (batch_size {ours})": [*me, "--worker", "workbench", "--audio", str(audio),
                                                       "--batch-size", str(ours)],
        }
        print(f"recording: {what}, {duration / 60:.1f} min; model faster-whisper base ({model}), int8, "
              f"{args.threads} threads each, WhisperX batch {args.batch_size}; timed: VAD + ASR (load and decoding excluded)")
        runs: dict[str, list[dict]] = {k: [] for k in sides}
        for i in range(args.repeats):
            for name, cmd in sides.items():
                out = _run(cmd)
                out["wer"] = word_errors(reference, out["text"]).rate
                runs[name].append(out)
                ran = f" [{out['ran']}]" if out.get("ran") else ""
                print(f"  repeat {i + 1} {name}{ran}: {out['seconds']:.1f} s (RTFx {duration / out['seconds']:.1f}), "
                      f"WER {100 * out['wer']:.1f} %", flush=True)
    wx = statistics.median(r["seconds"] for r in runs[next(iter(runs))])
    print(f"\n| path | VAD+ASR s (median of {args.repeats}) | RTFx | speed vs WhisperX | WER |")
    print("|---|---|---|---|---|")
    for name, rs in runs.items():
        med = statistics.median(r["seconds"] for r in rs)
        print(f"| {name} | {med:.1f} | {duration / med:.1f} | {wx / med:.2f}× | {100 * rs[-1]['wer']:.1f} % |")


if __name__ == "__main__":
    main()
