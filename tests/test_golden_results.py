"""The golden results.jsonl: what today's runner writes for a small, deterministic comparison (the FAKE pipeline
of fake_pipeline.py, no model), pinned in tests/golden/results.jsonl and compared field by field with a fresh run.

A refactoring of the result model, the scoring or the writers must leave every figure of these rows as it is.
Only the fields that change from run to run or machine to machine are left out of the comparison
(:data:`VOLATILE`); absolute paths are replaced by ``<root>`` (this repository) and ``<tmp>`` (the test's folder).

To rewrite the golden file after an *intended* change of the rows: ``WORKBENCH_WRITE_GOLDEN=1 pytest
tests/test_golden_results.py`` — and say in the commit why the rows changed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from fake_pipeline import BEHAVIOUR, EVENTS, FAKE, FakeModelOptions, register

from workbench.audio import Audio, load_audio
from workbench.datamodel import Reference, Segment, Turn, Word
from workbench.recipes import Recipe, StageSpec, load_recipe
from workbench.references import load_reference
from workbench.runner import RESULTS_FILE, Item, PendingItem, ResultWriter, run_recipes

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "results.jsonl"
WAV = ROOT / "samples" / "pyannote" / "sample.wav"
STM = ROOT / "samples" / "pyannote" / "sample.stm"
RTTM = ROOT / "samples" / "pyannote" / "sample.rttm"

#: top-level fields that differ between runs or machines: wall and CPU times (and what is computed from them:
#: RTFx; no price is given, so cost stays null and is compared), when it ran, the process's peak memory,
#: package versions, the machine, how it was executed (core counts)
VOLATILE = ("created_at", "timings", "cpu_timings", "processing_s", "cpu_s", "rtfx", "peak_rss_mb", "versions",
            "hardware", "execution")


def _recipe(name: str, stages: tuple[str, ...] = (), **behaviour) -> Recipe:
    """A fake recipe; ``stages``: "diarization" / "formatter" to mark one that diarizes / formats."""
    BEHAVIOUR[name] = behaviour
    specs = tuple(StageSpec(s, "fake", FakeModelOptions()) for s in stages)
    return Recipe(name, FAKE, stages=specs, description="fake", path=f"/fake/{name}.toml")


def comparison(tmp_path: Path) -> list[dict]:
    """Run the golden comparison into ``tmp_path``; the rows as written to results.jsonl."""
    audio = load_audio(WAV)
    stm, rttm = load_reference(STM), load_reference(RTTM)
    items = [Item(Audio(dataclasses.replace(audio.recording, id=f"sample-{i}"), audio.samples), (stm, rttm))
             for i in range(2)]
    # a hallucination probe: the same audio with an empty reference (no speech anywhere)
    items.append(Item(Audio(dataclasses.replace(audio.recording, id="probe"), audio.samples), (Reference(),)))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    items.append(PendingItem(str(broken), (str(STM),)))  # bad input: did not run for every recipe

    speakers = {"Diane": "spk0", "Sheila": "spk1"}
    diarized = tuple(Segment(s.start, s.end, s.text, speakers.get(s.speaker, "spk2"),
                             words=(Word(s.start, s.end, s.text.split()[0], 0.9),) if i == 0 else ())
                     for i, s in enumerate(stm.segments))
    turns = tuple(Turn(s.start, s.end, s.speaker) for s in rttm.segments)
    real = load_recipe("cascade-fast")
    asr = real.stage("asr")
    unavailable = dataclasses.replace(real, name="missing-model", path="/fake/missing-model.toml", stages=(
        real.stage("vad"), dataclasses.replace(asr, options=asr.options.model_copy(update={"model": "/nonexistent/folder"}))))
    recipes = [
        _recipe("exact", text=stm.text),
        _recipe("sloppy", text="hello hello thank you for watching", run={1: RuntimeError("asr broke")}),
        _recipe("formats", ("formatter",), text=stm.text, formatted="Speaker 1: " + stm.text.upper() + " and more", summary="a chat"),
        _recipe("diarizes", ("diarization",), segments=diarized, turns=turns),
        _recipe("cannot-load", load=RuntimeError("weights corrupt")),
        unavailable,
    ]
    run_recipes(recipes, items, writer=ResultWriter(tmp_path), run_id="golden")
    return [json.loads(line) for line in (tmp_path / RESULTS_FILE).read_text(encoding="utf-8").splitlines()]


def stable(value, tmp_path: Path):
    """The row with absolute paths replaced (``<root>``, ``<tmp>``), for a comparison across machines."""
    if isinstance(value, dict):
        return {k: stable(v, tmp_path) for k, v in value.items()}
    if isinstance(value, list):
        return [stable(v, tmp_path) for v in value]
    if isinstance(value, str):
        return value.replace(str(tmp_path), "<tmp>").replace(str(ROOT), "<root>")
    return value


#: measured per stage inside ``stage_details`` (issue 15): as volatile as the run's own peak RSS
VOLATILE_DETAILS = ("peak_rss_mb",)


def comparable(row: dict, tmp_path: Path) -> dict:
    row = {k: v for k, v in stable(row, tmp_path).items() if k not in VOLATILE}
    if isinstance(row.get("stage_details"), dict):
        kept = {stage: {k: v for k, v in detail.items() if k not in VOLATILE_DETAILS}
                for stage, detail in row["stage_details"].items()}
        row["stage_details"] = {stage: detail for stage, detail in kept.items() if detail}
    return row


@pytest.fixture
def fresh_rows(monkeypatch, tmp_path) -> list[dict]:
    register(monkeypatch)
    try:
        return comparison(tmp_path)
    finally:
        BEHAVIOUR.clear()
        EVENTS.clear()


def test_a_fresh_run_writes_the_golden_rows_field_by_field(fresh_rows, tmp_path):
    fresh = [stable(r, tmp_path) for r in fresh_rows]
    if os.environ.get("WORKBENCH_WRITE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in fresh),
                          encoding="utf-8")
    golden = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]
    assert len(fresh) == len(golden)
    for new, old in zip(fresh, golden):
        where = f"{old['recipe']} on {old['recording']['id']}"
        assert sorted(new) == sorted(old), where  # the same fields, volatile ones included
        stable_new, stable_old = comparable(new, tmp_path), comparable(old, tmp_path)
        for key in stable_old:
            assert stable_new[key] == stable_old[key], f"{where}: {key}"
        # the volatile fields keep their shape: the same stages timed
        assert sorted(new["timings"]) == sorted(old["timings"]), where


def test_the_golden_rows_cover_every_kind_of_row():
    golden = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]
    kinds = {r["error_kind"] for r in golden}
    assert kinds == {None, "failed", "bad-input", "load-failed", "unavailable"}
    assert any(r["metrics"]["formatting_drift"] for r in golden)  # a formatter ran
    assert any(r["metrics"]["der"] and r["metrics"]["cpwer"] for r in golden)  # a diarization was scored
    assert any(r["speakers"] for r in golden)
    assert any(r["recording"]["id"] == "probe" and r["metrics"]["hallucination"] for r in golden)
