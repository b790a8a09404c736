"""benchmarks/peer_whisperx.py: when WhisperX cannot be installed in its own venv the benchmark is skipped with
one line saying why (exit 0), and it never accepts a CUDA torch stack (no timing here)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "peer_whisperx.py"


def _script():
    spec = importlib.util.spec_from_file_location("peer_whisperx", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_venv_that_cannot_be_built_is_one_skip_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = subprocess.run([sys.executable, str(SCRIPT), "--venv", str(blocker / "venv")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    [line] = done.stdout.strip().splitlines()
    assert line.startswith("skipped: WhisperX could not be installed")


def test_a_cuda_stack_brought_by_pip_is_refused(tmp_path, monkeypatch):
    peer = _script()

    class Done:
        returncode, stdout = 0, "numpy==2.0\nnvidia-cublas-cu12==12.8\ntorch==2.8.0\n"

    monkeypatch.setattr(peer.subprocess, "run", lambda *a, **k: Done())
    with open(tmp_path / "log", "w") as log, pytest.raises(peer.CudaStack):
        peer._pip(Path(sys.executable), ["whisperx"], log)


@pytest.mark.parametrize("name", ["cascade", "cascade-plain"])
def test_the_shipped_base_cascades_decode_batched(name):
    """The choice measured by peer_whisperx.py (README, "ASR path"): batched decoding was faster and more accurate
    than sequential on both benchmark recordings; batches of 4 as fast as 8 in 480 MB less. The benchmark's
    workbench side decodes as the shipped recipe does."""
    from workbench.recipes import load_recipe_file

    recipe = load_recipe_file(ROOT / "pipelines" / f"{name}.toml")
    assert recipe.stage("asr").options.batch_size == 4
    assert _script().shipped_batch_size() == 4


def test_the_benchmark_says_how_the_workbench_decoded():
    peer = _script()
    assert peer.decoding({"threads": 2, "replicas": 2, "threads_per_replica": 1}) == "2 replicas × 1 thread(s)"
    assert peer.decoding({"threads": 2}) == "2 thread(s)"
