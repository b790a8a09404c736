"""Shared fixtures. Nothing here reaches a model hub: HF_HUB_OFFLINE is set for every test."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
PYANNOTE_WAV = SAMPLES / "pyannote" / "sample.wav"
PYANNOTE_STM = SAMPLES / "pyannote" / "sample.stm"
PYANNOTE_RTTM = SAMPLES / "pyannote" / "sample.rttm"
MEETING_WAV = SAMPLES / "meeting" / "meeting.wav"
MEETING_STM = SAMPLES / "meeting" / "meeting.stm"
SHARED_DATA = ROOT.parent / "shared" / "data"

@pytest.fixture(scope="session", autouse=True)
def results_store_in_tmp(tmp_path_factory):
    """Every command adds its runs to the results store (default reports/workbench.sqlite in the working
    directory): a test that does not name one keeps it in a temporary folder ($WORKBENCH_STORE, read by --store).
    Session-scoped, so module-scoped fixtures that run a command see it too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_STORE", str(tmp_path_factory.mktemp("store") / "workbench.sqlite"))
        yield


#: measurements tests report (never assert): printed in pytest's summary, so CI logs show them
MEASURED: list[str] = []


def pytest_terminal_summary(terminalreporter) -> None:
    if MEASURED:
        terminalreporter.section("measured (not asserted)")
        for line in MEASURED:
            terminalreporter.write_line(line)


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())
    return path


@pytest.fixture
def silence_wav(tmp_path: Path) -> Path:
    """30 s of digital silence, 16 kHz mono."""
    return write_wav(tmp_path / "silence.wav", np.zeros(30 * 16000, dtype=np.float32))


@pytest.fixture
def empty_reference(tmp_path: Path) -> Path:
    """An empty text reference: "nobody speaks here"."""
    path = tmp_path / "silence.txt"
    path.write_text("")
    return path


@pytest.fixture
def fake(monkeypatch):
    """The FAKE pipeline of tests/fake_pipeline.py registered for the test; its behaviour and event log cleared
    after it."""
    from fake_pipeline import BEHAVIOUR, EVENTS, register

    register(monkeypatch)
    yield
    BEHAVIOUR.clear()
    EVENTS.clear()
