"""The bundled samples: samples/meeting/ is what scripts/compose_long_sample.py makes, and its
references agree with its audio. Fast: numpy and the standard library only, no models."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MEETING = REPO_ROOT / "samples" / "meeting"
PYANNOTE = REPO_ROOT / "samples" / "pyannote"
SCRIPT = REPO_ROOT / "scripts" / "compose_long_sample.py"

# Speech RMS inside an STM segment is far above this (about -40 dBFS for the quietest, a faint
# "Hello?"); digital silence is exactly zero.
SILENT_DBFS = -70.0


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        rate = w.getframerate()
        data = w.readframes(w.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0, rate


def _read_stm(path: Path) -> list[tuple[str, float, float, str]]:
    segments = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith(";;"):
            continue
        _rec, _channel, speaker, start, end, text = line.split(maxsplit=5)
        segments.append((speaker, float(start), float(end), text))
    return segments


def _dbfs(x: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(x**2))) if x.size else 0.0
    return 20 * np.log10(rms) if rms > 0 else -np.inf


@pytest.fixture(scope="module")
def meeting():
    audio, rate = _read_wav(MEETING / "meeting.wav")
    return {
        "audio": audio,
        "rate": rate,
        "duration": len(audio) / rate,
        "stm": _read_stm(MEETING / "meeting.stm"),
        "json": json.loads((MEETING / "meeting.json").read_text(encoding="utf-8")),
    }


def test_pyannote_sample_is_bundled_with_its_notice():
    for name in ("sample.wav", "sample.stm", "sample.rttm", "NOTICE.md"):
        assert (PYANNOTE / name).is_file(), name
    notice = (PYANNOTE / "NOTICE.md").read_text(encoding="utf-8")
    assert "MIT License" in notice and "Copyright (c) 2020 CNRS" in notice


def test_committed_meeting_files_are_what_the_script_makes():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_meeting_wav_format(meeting):
    assert meeting["rate"] == 16_000
    assert 90.0 < meeting["duration"] < 115.0


def test_stm_segments_are_inside_the_recording_and_ordered(meeting):
    segments = meeting["stm"]
    assert segments
    starts = [s[1] for s in segments]
    assert starts == sorted(starts)
    for speaker, start, end, text in segments:
        assert speaker in {"Diane", "Sheila"}
        assert text
        assert 0.0 <= start < end <= meeting["duration"], (speaker, start, end)


def test_every_stm_segment_has_sound(meeting):
    audio, rate = meeting["audio"], meeting["rate"]
    for speaker, start, end, text in meeting["stm"]:
        level = _dbfs(audio[round(start * rate) : round(end * rate)])
        assert level > SILENT_DBFS, f"{start}-{end} {speaker} {text!r}: {level:.1f} dBFS"


def test_json_matches_stm(meeting):
    from_json = [(s["speaker"], s["start"], s["end"], s["text"]) for s in meeting["json"]["segments"]]
    assert from_json == meeting["stm"]


def test_nonspeech_regions_do_not_overlap_speech(meeting):
    nonspeech = meeting["json"]["nonspeech"]
    assert nonspeech
    for region in nonspeech:
        assert 0.0 <= region["start"] < region["end"] <= meeting["duration"]
        for speaker, start, end, text in meeting["stm"]:
            assert end <= region["start"] or start >= region["end"], (region, start, end, text)


def test_nonspeech_regions_are_silence_or_quiet_noise(meeting):
    audio, rate = meeting["audio"], meeting["rate"]
    levels = [
        _dbfs(audio[round(r["start"] * rate) : round(r["end"] * rate)]) for r in meeting["json"]["nonspeech"]
    ]
    assert all(level < -25.0 for level in levels), levels
    assert any(level == -np.inf for level in levels), "expected some exact digital silence"
