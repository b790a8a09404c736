"""Render time of the dashboard's pages over a store of N results (AppTest: the page scripts themselves, no
browser), median of --repeats, against the 1 s target for a finished run. The browser test prints the full
first-load and render times on the real app.

    .venv/bin/python benchmarks/dashboard_bench.py [--rows 1000] [--repeats 3] [--from reports/<run>/results.jsonl]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from report_bench import arguments, synthetic_rows, template_row

TARGET_S = 1.0


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    template = template_row(args.source)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["WORKBENCH_STORE"] = str(Path(tmp) / "s.sqlite")
        os.environ["WORKBENCH_OUT"] = str(Path(tmp) / "out")
        from streamlit.testing.v1 import AppTest

        from workbench.dashboard import APP
        from workbench.store import ResultStore

        with ResultStore(Path(tmp) / "s.sqlite") as store:
            store.add_run("bench", tags=["bench"])
            store.add_many(synthetic_rows(template, args.rows))
            store.add_run("one")
            store.add_many([dict(r, run_id="one") for r in synthetic_rows(template, 2)])
        times: dict[str, list[float]] = {"runs page": [], f"compare view, {args.rows} results": [], "compare view, 2 results": []}
        for _ in range(args.repeats):
            for label, run_id in ((f"compare view, {args.rows} results", "bench"), ("compare view, 2 results", "one")):
                at = AppTest.from_file(str(APP), default_timeout=120)
                at.query_params["run"] = run_id
                t = time.perf_counter()
                at.run()
                times[label].append(time.perf_counter() - t)
                assert not at.exception, at.exception
            at = AppTest.from_file(str(APP), default_timeout=120)
            at.run()
            at.switch_page("page_scripts/runs.py")
            t = time.perf_counter()
            at.run()
            times["runs page"].append(time.perf_counter() - t)
            assert not at.exception, at.exception
    for label, ts in times.items():
        m = statistics.median(ts)
        print(f"{label}: median {m:.2f} s over {len(ts)} (min {min(ts):.2f}, max {max(ts):.2f}); {m / TARGET_S:.2f}× the 1 s target")


if __name__ == "__main__":
    main()
