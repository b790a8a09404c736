#!/usr/bin/env bash
# Sets up .venv with the test tools and runs the whole suite: unit tests and the integration tests
# on the real bundled models. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
# Debian's chromium for the browser tests (Playwright drives it; Playwright's own browser download is not used).
if ! command -v chromium >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "test: installing chromium" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "test: chromium is missing and cannot be installed here; the browser test will be skipped" >&2
    fi
fi
export HF_HUB_OFFLINE=1 PYANNOTE_METRICS_ENABLED=false
# With chromium here, the browser tests must run (a missing browser fails them instead of skipping them).
if command -v chromium >/dev/null 2>&1; then export WORKBENCH_REQUIRE_BROWSER=1; fi
exec .venv/bin/python -m pytest -m "" "$@"
