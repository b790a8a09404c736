"""The Streamlit dashboard: upload a recording, compare recipes, browse earlier runs, export reports.

A thin face over the library: pages call :mod:`workbench.runner`, :mod:`workbench.store` and
:mod:`workbench.report`; what the pages show is computed in :mod:`workbench.dashboard.tables` (no Streamlit).
``workbench dashboard`` starts it with :func:`command`; settings reach the app through environment variables
(:mod:`workbench.dashboard.settings`).
"""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).resolve().with_name("app.py")


def command(host: str = "127.0.0.1", port: int = 8501, max_upload_mb: int = 1024) -> list[str]:
    """The ``streamlit run`` command line for the app: headless, no telemetry, no tracebacks shown to users
    (errors are reported by the pages themselves), no file watcher."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.maxUploadSize", str(max_upload_mb),
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        "--client.showErrorDetails", "none",
        "--client.toolbarMode", "minimal",
        "--global.developmentMode", "false",
    ]
