"""Hallucination probes and padding delta on the real bundled models (faster-whisper base without VAD:
``whisper-raw``; silero VAD → tiny.en: ``cascade-fast``), through the CLI as a user runs them.

Measured here (CPU int8, 2 cores, seeded): on the generated probes whisper-raw writes "You" on the three
digital silences and on white noise at −60 dBFS, ". ." on pink noise at −60 dBFS (punctuation only: not
counted as output by the summary), "I'm sorry, I'm sorry, …" on pink noise at −45 dBFS, and nothing on the
rest; cascade-fast writes nothing on any of them (its VAD finds no speech). The whole generated set takes
whisper-raw 40–65 s here (most of it on white noise at −45/−30 dBFS and clicks: temperature fallback), this
file 80–115 s in all depending on the machine's load; the real-noise test adds 40–65 s and runs only with
WORKBENCH_SLOW_PROBES=1.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import PYANNOTE_STM, PYANNOTE_WAV, SHARED_DATA, write_wav
from workbench.cli import app
from workbench.hallucination import probes as probes_module
from workbench.hallucination.probes import generated_probes
from workbench.hallucination.suite import run_probes, summarize_probes
from workbench.metrics import normalize
from workbench.recipes import load_recipe
from workbench.runner import MemoryWriter

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)

SR = probes_module.SAMPLE_RATE
GENERATED = [p.id for p in generated_probes()]
SILENCES = ["silence-5s", "silence-15s", "silence-30s"]
NONSPEECH = SHARED_DATA / "nonspeech"


def invoke(args: list[str], out: Path) -> tuple[str, list[dict], Path]:
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    [run_dir] = out.iterdir()
    rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    return result.output, rows, run_dir


def table_row(summary_md: str, recipe: str) -> list[str]:
    [line] = [x for x in summary_md.splitlines() if x.startswith(f"| {recipe} |")]
    return [c.strip() for c in line.strip("|").split("|")]


def pink_noise(seconds: float, level_dbfs: float, seed: int = probes_module.SEED) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return probes_module._at_level(probes_module._pink(rng, int(seconds * SR)), level_dbfs)


# --- the generated probes through `workbench probe` -------------------------------------------


@pytest.fixture(scope="module")
def generated_run(tmp_path_factory):
    # the transcripts only (asking about the clips is tested on a small folder below: SmolLM2's answers cost time)
    return invoke(["probe", "--recipes", "whisper-raw,cascade-fast", "--no-questions"],
                  tmp_path_factory.mktemp("probe") / "reports")


def test_probe_writes_one_result_per_clip_and_recipe(generated_run):
    output, rows, run_dir = generated_run
    assert [(r["recipe"], r["recording"]["id"]) for r in rows] == (
        [("whisper-raw", c) for c in GENERATED] + [("cascade-fast", c) for c in GENERATED])
    for r in rows:
        assert r["error"] is None, r
        assert r["metrics"]["hallucination"] is not None
        assert r["metrics"]["hallucination"]["nonspeech_s"] == pytest.approx(r["recording"]["duration_s"], abs=1e-3)
        assert r["metrics"]["reference_words"] == 0
    assert (run_dir / "summary.md").exists()
    for label in ("words / min", "repeats agree", "whisper-raw", "cascade-fast", f"0/{len(GENERATED)}"):
        assert label in output  # the printed table (wrapped at 80 columns here)
    assert all(r["tasks"] == [] for r in rows)  # --no-questions


def test_whisper_raw_writes_you_on_digital_silence(generated_run):
    _, rows, run_dir = generated_run
    raw = {r["recording"]["id"]: r for r in rows if r["recipe"] == "whisper-raw"}
    log.info("whisper-raw on the generated probes: %s", {c: r["transcript"]["text"] for c, r in raw.items()})
    for clip in SILENCES:
        r, h = raw[clip], raw[clip]["metrics"]["hallucination"]
        assert normalize(r["transcript"]["text"]) == "you", clip
        assert "you" in h["stock_phrases"], clip
        assert h["nonspeech_words"] >= 1 and h["words_per_hour_nonspeech"] > 0, clip
        assert h["words_per_hour_nonspeech"] == pytest.approx(3600 * h["nonspeech_words"] / r["recording"]["duration_s"], rel=1e-3)
        assert r["metrics"]["insertions"] >= 1
    with_words = [c for c, r in raw.items() if normalize(r["transcript"]["text"])]
    assert set(SILENCES) <= set(with_words)
    cells = table_row((run_dir / "summary.md").read_text(encoding="utf-8"), "whisper-raw")
    assert cells[1].startswith(f"{len(with_words)}/{len(GENERATED)} ")
    assert float(cells[2]) > 0
    assert "you ×" in cells[3]


def test_vad_gated_cascade_writes_nothing_on_any_probe(generated_run):
    _, rows, run_dir = generated_run
    gated = [r for r in rows if r["recipe"] == "cascade-fast"]
    assert len(gated) == len(GENERATED)
    for r in gated:
        h = r["metrics"]["hallucination"]
        assert r["transcript"]["text"] == "", r["recording"]["id"]
        assert h["nonspeech_words"] == 0 and h["words_per_hour_nonspeech"] == 0.0 and h["stock_phrases"] == []
        assert r["metrics"]["insertions"] == 0
        assert r["stage_details"]["vad"]["speech_s"] == 0
    assert table_row((run_dir / "summary.md").read_text(encoding="utf-8"), "cascade-fast") == [
        "cascade-fast", f"0/{len(GENERATED)} (0%)", "0.0", "none", "yes", "0"]


# --- repeats on a small folder -----------------------------------------------------------------


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("nonspeech")
    write_wav(folder / "zeros.wav", np.zeros(5 * SR, np.float32))
    write_wav(folder / "pink45.wav", pink_noise(5, -45))
    return folder


def test_the_clips_are_asked_about_and_answers_claiming_speech_are_counted(tmp_path, small_folder):
    """Each clip asked "What does the speaker say?" and "Describe what you hear." through the recipe's [answer]
    stage (the bundled SmolLM2); every answer read for a claim of speech — whatever SmolLM2 answers (measured
    here: it invents what "the speaker says" on silence)."""
    _, rows, run_dir = invoke(["probe", "--recipes", "cascade-fast", "--no-generated",
                                    "--nonspeech", str(small_folder)], tmp_path / "reports")
    assert len(rows) == 2
    for r in rows:
        assert r["error"] is None, r
        assert {t["id"] for t in r["tasks"]} == {"probe-say", "probe-describe"}, r["tasks"]
        assert all(t["error"] is None and t["answer"] for t in r["tasks"]), r["tasks"]
    log.info("cascade-fast answers on non-speech: %s", [(t["id"], t["answer"]) for r in rows for t in r["tasks"]])
    assert "## Asked about the clips" in (run_dir / "summary.md").read_text(encoding="utf-8")


def test_repeats_agree_and_give_identical_numbers(tmp_path, small_folder):
    _, rows, run_dir = invoke(["probe", "--recipes", "whisper-raw,cascade-fast", "--no-generated", "--no-questions",
                               "--nonspeech", str(small_folder), "--repeats", "2"], tmp_path / "reports")
    clips = ["real-pink45", "real-zeros"]
    assert len(rows) == 2 * 2 * 2  # recipes × clips × repeats
    assert sorted({r["recording"]["id"] for r in rows}) == clips
    for recipe in ("whisper-raw", "cascade-fast"):
        for clip in clips:
            first, second = [r for r in rows if (r["recipe"], r["recording"]["id"]) == (recipe, clip)]
            log.info("%s on %s, twice: %r / %r", recipe, clip, first["transcript"]["text"], second["transcript"]["text"])
            assert first["transcript"]["segments"] == second["transcript"]["segments"], (recipe, clip)
            assert first["metrics"] == second["metrics"], (recipe, clip)
    summary = (run_dir / "summary.md").read_text(encoding="utf-8")
    for recipe in ("whisper-raw", "cascade-fast"):
        cells = table_row(summary, recipe)
        assert cells[4] == "yes", cells
        wpm, _, spread = cells[2].partition(" (range ")
        low, high = spread.rstrip(")").split("–")
        assert low == high, cells  # the same words per minute on both repeats
    # measured: whisper-raw "You" on the zeros both times, nothing on the 5 s pink noise (the 10 s probe loops)
    raw = [r for r in rows if r["recipe"] == "whisper-raw" and r["recording"]["id"] == "real-zeros"]
    assert all(normalize(r["transcript"]["text"]) == "you" for r in raw)  # 5 s of zeros: "You" again
    assert table_row(summary, "cascade-fast")[1] == "0/2 (0%)"


def test_run_probes_twice_in_one_process_gives_identical_transcripts():
    [pink] = [p for p in generated_probes() if p.id == "pink-noise-45dBFS"]  # 10 s, where whisper-raw loops
    results = run_probes([load_recipe("whisper-raw")], [pink], writer=MemoryWriter(), run_id="t", repeats=2)
    first, second = results
    log.info("whisper-raw on %s, twice: %r / %r", pink.id, first.transcript.text, second.transcript.text)
    assert first.ok and second.ok
    assert first.transcript == second.transcript  # text, segments, word timestamps, language
    assert first.scores.hallucination == second.scores.hallucination
    [summary] = summarize_probes(results)
    assert summary.repeatable is True
    assert summary.words_per_minute_spread[0] == summary.words_per_minute_spread[1]
    assert len(summary.outputs[pink.id]) == 1


# --- real non-speech recordings ----------------------------------------------------------------


@pytest.mark.skipif(not NONSPEECH.is_dir(), reason=f"{NONSPEECH} not present")
@pytest.mark.skipif(not os.environ.get("WORKBENCH_SLOW_PROBES"),
                    reason="40-65 s more (whisper-raw on 78 s of real noise): set WORKBENCH_SLOW_PROBES=1")
def test_whisper_raw_invents_text_on_real_noise(tmp_path):
    # Measured (seeded, CPU int8, faster-whisper's default temperature fallback): noise1 "", noise2 ". . . . ."
    # (punctuation only, not output), noise3 "I'll see you in the next video." (see-you-next-video),
    # noise4 "You" (you), noise5 "": words on 2 of 5 clips. ../shared/data/README.md saw words on all 5, with
    # temperature 0 and no fallback.
    _, rows, run_dir = invoke(["probe", "--recipes", "whisper-raw", "--no-generated", "--nonspeech", str(NONSPEECH)],
                              tmp_path / "reports")
    assert len(rows) == 5 and all(r["error"] is None for r in rows)
    log.info("whisper-raw on real noise: %s", {r["recording"]["id"]: r["transcript"]["text"] for r in rows})
    cells = table_row((run_dir / "summary.md").read_text(encoding="utf-8"), "whisper-raw")
    with_output = int(cells[1].split("/")[0])
    assert with_output >= 2, cells
    phrases = {p for r in rows for p in r["metrics"]["hallucination"]["stock_phrases"]}
    assert phrases, "no stock phrase flagged on real noise"


# --- padding delta -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def padded_run(tmp_path_factory):
    return invoke(["pad-delta", str(PYANNOTE_WAV), "-r", str(PYANNOTE_STM), "--recipes", "whisper-raw,cascade-fast",
                   "--pad", "30@start,30@end"], tmp_path_factory.mktemp("pad") / "reports")


def test_pad_delta_writes_original_and_padded_rows(padded_run):
    output, rows, run_dir = padded_run
    assert [(r["recipe"], r["recording"]["id"]) for r in rows] == [
        ("whisper-raw", "sample"), ("whisper-raw", "sample+pad"), ("cascade-fast", "sample"), ("cascade-fast", "sample+pad")]
    for original, padded in (rows[0:2], rows[2:4]):
        assert original["error"] is None and padded["error"] is None
        assert original["recording"]["duration_s"] == pytest.approx(30.0, abs=0.01)
        assert padded["recording"]["duration_s"] == pytest.approx(90.0, abs=0.01)
        assert "padding" not in (original["metrics"]["hallucination"] or {})
        assert padded["metrics"]["reference_words"] == original["metrics"]["reference_words"] == 87
        pad = padded["metrics"]["hallucination"]["padding"]
        assert pad["pads"] == ["30@start", "30@end"] and pad["inserted_at_s"] == [0.0, 30.0]
        assert pad["insertions_original"] == original["metrics"]["insertions"]
        assert pad["insertions_padded"] == padded["metrics"]["insertions"]
        assert pad["delta"] == pad["insertions_padded"] - pad["insertions_original"]
        # 60 s of padding is non-speech in the shifted reference (the 30 s recording has 6.43 s scored)
        assert padded["metrics"]["hallucination"]["nonspeech_s"] > original["metrics"]["hallucination"]["nonspeech_s"] + 59
    summary = (run_dir / "summary.md").read_text(encoding="utf-8")
    assert "Pads: 30@start, 30@end" in summary
    for label in ("insertions without", "with padding", "delta"):
        assert label in output


def test_vad_gated_cascade_invents_nothing_in_the_padding(padded_run):
    # Measured (seeded, CPU int8): whisper-raw insertions 4 → 0 with padding (delta −4), padded text opening
    # "You …" and ending with an extra "I'm in New Jersey." inside the padding (5 words in non-speech,
    # 271.9 words/hour); cascade-fast insertions 1 → 0 (delta −1), no word in non-speech.
    # So cascade-fast's delta is NOT ≤ whisper-raw's here: whisper-raw's padded output also dropped reference
    # words, and the alignment turns its invented words into substitutions instead of insertions. The padding
    # delta is asserted only as a bound for the gated cascade; the timed measure (words in non-speech) is
    # where the difference shows.
    _, rows, _ = padded_run
    padded = {r["recipe"]: r for r in rows if r["recording"]["id"] == "sample+pad"}
    pad = {k: r["metrics"]["hallucination"]["padding"] for k, r in padded.items()}
    wph = {k: r["metrics"]["hallucination"]["words_per_hour_nonspeech"] for k, r in padded.items()}
    log.info("padding delta: %s; words/hour in non-speech (padded): %s", {k: p["delta"] for k, p in pad.items()}, wph)
    assert pad["cascade-fast"]["delta"] <= 1
    assert wph["cascade-fast"] <= wph["whisper-raw"]
    assert padded["cascade-fast"]["metrics"]["hallucination"]["nonspeech_words"] == 0
