"""Asking 20 questions about a ~10-minute recording: the transcription runs once, then each question costs one
answer (issue 13's done-when).

The recording is composed from the bundled real speech (samples/meeting/meeting.wav and
samples/pyannote/sample.wav, alternating, 1 s of silence between them) up to ``--minutes``. One cascade recipe
runs it: ``cascade-plain`` (silero VAD → faster-whisper base → resemblyzer → plain paragraphs) with its
``[answer]`` stage (llama-cpp, the bundled SmolLM2). The 20 questions are of every keyed kind; their keys are
not the point (this measures time, not accuracy).

Prints the transcription's processing time and RTFx, the answer model's load, the time per question (median, max)
and how each was covered (whole transcript, or parts + a combining call), and checks that the recording was
transcribed once (the pipeline's run calls, the warm-up apart) whatever the number of questions.

    .venv/bin/python benchmarks/ask_bench.py [--minutes 10] [--questions 20] [--recipe cascade-plain]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SOURCES = (ROOT / "samples" / "meeting" / "meeting.wav", ROOT / "samples" / "pyannote" / "sample.wav")


def compose(path: Path, minutes: float) -> float:
    """A recording of at least ``minutes`` from the bundled speech, alternating the sources (16 kHz mono)."""
    import soundfile as sf

    from workbench.audio import SAMPLE_RATE, load_audio

    clips = [load_audio(str(p)).samples for p in SOURCES]
    gap = np.zeros(SAMPLE_RATE, dtype=np.float32)
    parts, total, i = [], 0, 0
    while total < minutes * 60 * SAMPLE_RATE:
        parts += [clips[i % len(clips)], gap]
        total += len(clips[i % len(clips)]) + len(gap)
        i += 1
    samples = np.concatenate(parts)
    sf.write(str(path), samples, SAMPLE_RATE, subtype="PCM_16")
    return len(samples) / SAMPLE_RATE


def questions(n: int):
    from workbench.tasks import Question, QuestionSet

    pool = [
        Question("speakers", "speaker", "number", "How many different people speak in this recording?", answer=2.0),
        Question("sheila", "content", "short", "In which US state does Sheila say she is?", answer=("Texas",)),
        Question("weather", "content", "yesno", "Do the speakers talk about the weather?", answer="yes"),
        Question("city", "content", "choice", "Which city are both speakers originally from?",
                 choices=("Chicago", "Denver", "Boston"), answer="Chicago"),
        Question("first", "temporal", "locate", "When does the second speaker first talk?", answer=(3.0, 8.0)),
    ]
    chosen = [pool[i % len(pool)] for i in range(n)]
    import dataclasses

    return QuestionSet("bench", tuple(dataclasses.replace(q, id=f"{q.id}-{i}") for i, q in enumerate(chosen)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--recipe", default="cascade-plain")
    args = parser.parse_args(argv)

    from workbench.pipelines.cascade import CascadePipeline
    from workbench.recipes import load_recipe
    from workbench.runner import WARMUP_S, load_item, run_recipes
    from workbench.writers import MemoryWriter

    recipe = load_recipe(args.recipe)
    if recipe.stage("answer").backend == "none":
        sys.exit(f"{args.recipe} has no [answer] stage")
    runs: list[float] = []  # seconds of audio of each pipeline run
    original = CascadePipeline.run

    def counted(self, samples, clock, **kw):
        runs.append(len(samples) / 16000)
        return original(self, samples, clock, **kw)

    CascadePipeline.run = counted
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "composed.wav"
        duration = compose(wav, args.minutes)
        item = load_item(str(wav))
        qs = questions(args.questions)
        start = time.perf_counter()

        def progress(step, artifact=None, *, total=None, completed=None):  # as it goes, in case it is stopped
            if artifact is not None:
                print(f"  {step}: {artifact.wall_s:.1f} s ({time.perf_counter() - start:.0f} s in)", flush=True)
            elif step.endswith("/answer") and completed is not None:
                print(f"  answered {completed}/{total} ({time.perf_counter() - start:.0f} s in)", flush=True)

        [result] = run_recipes([recipe], [item], writer=MemoryWriter(), run_id="ask-bench", questions=qs, hook=progress)
        wall = time.perf_counter() - start
    if result.error:
        sys.exit(f"{args.recipe} failed: {result.error}")
    transcriptions = [s for s in runs if s > WARMUP_S + 0.01]
    answering = result.details["answering"]
    latencies = [t.latency_s for t in result.tasks]
    strategies = sorted({(t.strategy, t.windows) for t in result.tasks})
    print(f"recording: {duration / 60:.1f} min composed from {', '.join(p.name for p in SOURCES)}")
    print(f"recipe: {recipe.name} (answer: {recipe.stage('answer').backend}, {recipe.stage('answer').options.model})")
    print(f"transcription: {result.processing_s:.1f} s processing (RTFx {result.rtfx:.1f}), model load "
          f"{result.load_s:.1f} s; transcribed {len(transcriptions)} time(s) (+{len(runs) - len(transcriptions)} warm-up)")
    print(f"answer model load: {answering['load_s']} s (apart from the transcription's figures)")
    print(f"{len(result.tasks)} questions: {answering['answer_s']:.1f} s answering, {answering['answer_calls']} calls; "
          f"per question median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s")
    print("coverage: " + ", ".join(f"{s} ({w} part{'s' if w != 1 else ''})" for s, w in strategies))
    print(f"errors: {sum(1 for t in result.tasks if t.error)}; wall {wall:.1f} s")
    if len(transcriptions) != 1 or answering["transcriptions"] != 1:
        sys.exit(f"FAIL: the recording was transcribed {len(transcriptions)} times for {len(result.tasks)} questions")
    print("OK: one transcription for all questions")


if __name__ == "__main__":
    main()
