#!/usr/bin/env bash
# Sets up .venv with the test tools and runs the whole suite: unit tests and the integration tests
# on the real bundled models. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
export HF_HUB_OFFLINE=1 PYANNOTE_METRICS_ENABLED=false
exec .venv/bin/python -m pytest -m "" "$@"
