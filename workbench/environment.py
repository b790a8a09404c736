"""What produced a result: package versions and the machine it ran on."""

from __future__ import annotations

import os
import platform
from functools import lru_cache

from workbench.backends.base import package_versions

CORE_PACKAGES = ("speech-workbench", "numpy", "av", "jiwer", "whisper-normalizer", "pydantic")


def versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    out = {"python": platform.python_version(), **package_versions(CORE_PACKAGES)}
    out.update(extra or {})
    return dict(sorted(out.items()))


@lru_cache(maxsize=1)
def hardware() -> dict:
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "gpu": _gpus(),
        "gpu_models": _gpu_models(),
    }
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _gpu_models() -> list[str]:
    """GPU model names as the NVIDIA driver reports them ("NVIDIA L4"), one per GPU; [] without nvidia-smi."""
    import shutil
    import subprocess

    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def _gpus() -> list[str]:
    try:
        import ctranslate2

        count = ctranslate2.get_cuda_device_count()
    except Exception:  # noqa: BLE001 - no GPU runtime is a normal answer
        return []
    return [f"cuda:{i}" for i in range(count)]
