"""Reproducibility wiring: how a run was executed is recorded in every result; workers share the cores instead of
each taking all of them; a backend whose random state seeding cannot reach is rebuilt between recordings.

The pipeline in the runner tests is a FAKE (tests/fake_pipeline.py): these check wiring, not any model. The
faster-whisper tests replace ``WhisperModel`` by a stand-in that records how it was built; the real model's
behaviour is checked in test_repeatability.py (integration).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import pytest
from fake_pipeline import BEHAVIOUR, EVENTS, FAKE, FakePipeline, register

from workbench import execution as execution_module
from workbench.audio import load_audio
from workbench.execution import Execution, cpu_threads, split_threads
from workbench.recipes import Recipe
from workbench.runner import Item, MemoryWriter, run_recipes

ROOT = Path(__file__).resolve().parent.parent
WAV = ROOT / "samples" / "pyannote" / "sample.wav"


@pytest.fixture(autouse=True)
def fake_pipeline(monkeypatch):
    register(monkeypatch)
    yield
    BEHAVIOUR.clear()
    EVENTS.clear()


@pytest.fixture
def no_thread_limit(monkeypatch):
    """Whatever a test sets as this process's thread budget is undone afterwards (environment, torch included)."""
    monkeypatch.setattr(execution_module, "_limit", None)
    for variable in execution_module._THREAD_VARIABLES:
        monkeypatch.setenv(variable, "unset-by-test")
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    yield
    if torch is not None:
        torch.set_num_threads(before)


def items(n: int = 2) -> list[Item]:
    audio = load_audio(WAV)
    audio = dataclasses.replace(audio, samples=audio.samples[: 16000 * 2],
                                recording=dataclasses.replace(audio.recording, duration_s=2.0))
    return [Item(dataclasses.replace(audio, recording=dataclasses.replace(audio.recording, id=f"r{i}")))
            for i in range(n)]


def recipe(name: str, **behaviour) -> Recipe:
    BEHAVIOUR[name] = behaviour
    return Recipe(name, FAKE, stages=(), description="fake", path=f"/fake/{name}.toml")


def test_split_threads_gives_each_worker_its_share_of_the_cores():
    assert split_threads(2, 16) == 8
    assert split_threads(3, 16) == 5
    assert split_threads(4, 2) == 1  # never less than one
    assert split_threads(1, None) == (os.cpu_count() or 1)


def test_every_result_records_how_it_ran(no_thread_limit):
    writer = MemoryWriter()
    [r] = run_recipes([recipe("a", text="hello")], items(1), writer=writer, run_id="r")
    cores = os.cpu_count()
    assert r.to_json()["execution"] == {"executor": "in-process", "workers": 1, "threads": cores, "cpu_count": cores,
                                        "contended": False}
    assert execution_module.thread_limit() is None  # a run alone changes nothing: every core, as before


def test_a_worker_runs_its_models_on_its_share_of_the_threads(no_thread_limit):
    seen = []
    r = recipe("a", text="hello", before_run=lambda i: seen.append((cpu_threads(), os.environ["OMP_NUM_THREADS"])))
    results = run_recipes([r], items(2), writer=MemoryWriter(), run_id="r", execution=Execution("processes", 2, 1))
    assert seen == [(1, "1"), (1, "1")]
    for row in (x.to_json() for x in results):
        assert row["execution"]["executor"] == "processes"
        assert (row["execution"]["workers"], row["execution"]["threads"], row["execution"]["contended"]) == (2, 1, True)


def test_runner_gives_the_pipeline_a_fresh_random_state_before_each_recording(monkeypatch, no_thread_limit):
    """Outside the stage timings, recorded in the row's load detail."""
    def fresh(self):
        EVENTS.append(("fresh", self.recipe.name))
        return ["asr"]

    monkeypatch.setattr(FakePipeline, "fresh_random_state", fresh, raising=False)
    results = run_recipes([recipe("a", text="hello")], items(2), writer=MemoryWriter(), run_id="r")
    assert [e[0] for e in EVENTS if e[0] in ("fresh", "run")] == ["fresh", "run", "fresh", "run"]
    for row in (x.to_json() for x in results):
        assert row["stage_details"]["load"]["reseed_before_recording"]["stages"] == ["asr"]
        assert set(row["timings"]) == {"load", "vad", "asr"}  # no stage of its own: not in processing time or RTFx


def test_nothing_is_recorded_when_no_rebuild_was_needed(monkeypatch, no_thread_limit):
    monkeypatch.setattr(FakePipeline, "fresh_random_state", lambda self: [], raising=False)
    [r] = run_recipes([recipe("a", text="hello")], items(1), writer=MemoryWriter(), run_id="r")
    assert "reseed_before_recording" not in r.to_json()["stage_details"].get("load", {})


# --- faster-whisper: threads, and the rebuild after a decode that sampled -----------------------------------------


class FakeCT2:
    """Stands in for ctranslate2.models.Whisper: counts generate calls."""

    def __init__(self):
        self.calls = []
        self.is_multilingual = False

    def generate(self, *args, **kwargs):
        self.calls.append(kwargs)
        return ["result"]


class FakeWhisperModel:
    built: list[dict] = []

    def __init__(self, location, **kwargs):
        FakeWhisperModel.built.append(kwargs)
        self.model = FakeCT2()


@pytest.fixture
def fake_whisper(monkeypatch):
    pytest.importorskip("faster_whisper")
    import faster_whisper

    from workbench.backends import asr
    from workbench.model_sources import ModelSource

    FakeWhisperModel.built = []
    monkeypatch.setattr(faster_whisper, "WhisperModel", FakeWhisperModel)
    monkeypatch.setattr(asr, "resolve_whisper", lambda model, build=True: ModelSource("tiny.en", "/models/tiny.en", "folder", "test folder"))
    return asr


def test_faster_whisper_uses_the_workers_share_unless_the_recipe_names_threads(fake_whisper, no_thread_limit):
    execution_module.limit_threads(3)
    backend = fake_whisper.FasterWhisper(fake_whisper.FasterWhisperOptions(model="tiny.en", device="cpu"))
    backend.load()
    assert FakeWhisperModel.built[-1]["cpu_threads"] == 3
    assert backend.describe()["threads"] == 3
    explicit = fake_whisper.FasterWhisper(fake_whisper.FasterWhisperOptions(model="tiny.en", device="cpu", cpu_threads=2))
    explicit.load()
    assert FakeWhisperModel.built[-1]["cpu_threads"] == 2


def test_faster_whisper_rebuilds_its_model_only_after_a_decode_that_sampled(fake_whisper, no_thread_limit):
    backend = fake_whisper.FasterWhisper(fake_whisper.FasterWhisperOptions(model="tiny.en", device="cpu"))
    backend.load()
    assert len(FakeWhisperModel.built) == 1
    ct2 = backend._model.model
    ct2.generate("enc", [[1]], beam_size=5, patience=1)  # beam search: nothing drawn
    ct2.generate("enc", [[1]], sampling_temperature=0.0)  # greedy (top-k 1 by default): nothing drawn
    assert backend.fresh_random_state() is False and len(FakeWhisperModel.built) == 1
    assert ct2.is_multilingual is False  # everything else is the model's own
    # faster-whisper's temperature fallback
    ct2.generate("enc", [[1]], beam_size=1, num_hypotheses=5, sampling_topk=0, sampling_temperature=0.2)
    assert backend.fresh_random_state() is True and len(FakeWhisperModel.built) == 2
    assert backend._model.model is not ct2  # a new model: new worker threads, new generators from the seed
    assert FakeWhisperModel.built[1] == FakeWhisperModel.built[0]  # built the same way
    assert backend.fresh_random_state() is False  # the new one has not sampled


def test_llama_cpp_uses_the_workers_share_unless_the_recipe_names_threads(monkeypatch, no_thread_limit):
    pytest.importorskip("llama_cpp")
    import llama_cpp

    from workbench.backends import formatter

    built = []

    class FakeLlama:
        def __init__(self, model_path, **kwargs):
            built.append(kwargs)

    monkeypatch.setattr(llama_cpp, "Llama", FakeLlama)
    monkeypatch.setattr(formatter, "resolve_gguf", lambda model: "/models/x.gguf")
    execution_module.limit_threads(3)
    formatter.LlamaCppFormatter(formatter.LlamaCppOptions(model="/models/x.gguf")).load()
    formatter.LlamaCppFormatter(formatter.LlamaCppOptions(model="/models/x.gguf", threads=2)).load()
    assert [k["n_threads"] for k in built] == [3, 2]


def test_freed_heap_memory_goes_back_to_the_system():
    """Buffers of a few MB, allocated and freed chunk after chunk, stay resident under glibc (its mmap threshold
    rises after the first frees); ``release_freed_memory`` hands them back (what the batched ASR does between
    groups of clips)."""
    import ctypes.util
    import platform

    import numpy as np

    from workbench.execution import release_freed_memory

    if platform.system() != "Linux" or "libc" not in (ctypes.util.find_library("c") or ""):
        assert release_freed_memory() in (True, False)
        return

    def resident_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    big = np.ones(3 * 2**18, np.float32)
    del big  # a freed 3 MB mapping: glibc now serves buffers of this size from the heap
    held, pins = [], []
    for _ in range(40):  # 120 MB of 3 MB buffers, each followed by a 64 KB survivor that keeps the heap from shrinking
        held.append(np.ones(3 * 2**18, np.float32))
        pins.append(np.ones(2**14, np.float32))
    before = resident_mb()
    del held
    assert release_freed_memory() is True
    assert resident_mb() < before - 60  # most of the 120 MB went back
    del pins


_HEAP_PROBE = """
import os, sys
import numpy as np
from workbench.execution import bound_heap_growth

applied = bound_heap_growth() if sys.argv[1] == "apply" else None

def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

big = np.ones(6 * 2**20, np.float32)
del big  # a freed 24 MB mapping: by default glibc now serves buffers below 24 MB from the heap
held, pins = [], []
for _ in range(20):  # 240 MB of 12 MB buffers, each followed by a 64 KB survivor that keeps the heap from shrinking
    held.append(np.ones(3 * 2**20, np.float32))
    pins.append(np.ones(2**14, np.float32))
before = resident_mb()
del held
print(applied, round(before - resident_mb()))
"""


@pytest.mark.parametrize("how, user_threshold, returned", [
    ("default", None, False), ("apply", None, True), ("apply", str(32 * 2**20), False)])
def test_bounded_heap_growth_returns_freed_buffers_unless_the_user_set_glibc(how, user_threshold, returned):
    """After ``bound_heap_growth`` (what the runner calls before loading models) a freed 12 MB buffer goes back to
    the system at once; by default glibc keeps it. A threshold the user set in ``MALLOC_MMAP_THRESHOLD_`` wins."""
    import ctypes.util
    import platform
    import subprocess

    if platform.system() != "Linux" or "libc" not in (ctypes.util.find_library("c") or ""):
        pytest.skip("glibc's allocator only")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if user_threshold:
        env["MALLOC_MMAP_THRESHOLD_"] = user_threshold
    done = subprocess.run([sys.executable, "-c", _HEAP_PROBE, how], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    applied, freed_mb = done.stdout.split()
    assert applied == {"default": "None", "apply": "True"}[how]
    assert (int(freed_mb) > 150) is returned, freed_mb
