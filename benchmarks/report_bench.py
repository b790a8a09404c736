"""Time to store 1,000 results and render their report (all four formats). Target: under 5 s here.

    .venv/bin/python benchmarks/report_bench.py [--rows 1000] [--from reports/<run>/results.jsonl]
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

from workbench.report import write_reports
from workbench.store import ResultStore

ROOT = Path(__file__).resolve().parent.parent


def synthetic_rows(template: dict, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        r = copy.deepcopy(template)
        r["run_id"] = "bench"
        r["recipe"] = f"recipe-{i % 5}"
        r["recipe_hash"] = f"{i % 5:016d}"
        r["recording"] = {**r["recording"], "id": f"rec{i // 5}", "path": f"/bench/rec{i // 5}.wav"}
        rows.append(r)
    return rows


def arguments(doc: str) -> argparse.ArgumentParser:
    """--rows and --from, shared by the benchmarks that copy one real result row many times."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--from", dest="source", type=Path, help="a results.jsonl whose first row is the template")
    return parser


def template_row(source: Path | None) -> dict:
    source = source or next(iter(sorted(ROOT.glob("reports/**/results.jsonl"), reverse=True)), None)
    if source is None:
        raise SystemExit("no results.jsonl to copy rows from: run `workbench compare` once, or pass --from")
    return json.loads(source.read_text().splitlines()[0])


def main() -> None:
    args = arguments(__doc__).parse_args()
    rows = synthetic_rows(template_row(args.source), args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        with ResultStore(Path(tmp) / "s.sqlite") as store:
            store.add_run("bench")
            store.add_many(rows)
            t1 = time.perf_counter()
            stored = store.rows(run_id="bench")
        # the template's reference lies outside the run folder: allowed, as `workbench report --reference` would
        references = sorted({str(Path(r["metrics"]["reference"]).parent) for r in stored if (r.get("metrics") or {}).get("reference")})
        write_reports(stored, "bench", Path(tmp) / "out", ["html", "md", "json", "csv"], references=references)
        t2, c2 = time.perf_counter(), time.process_time()
    # CPU seconds too: on a shared machine the wall time measures the neighbours as much as the code
    print(f"{len(rows)} results: store {t1 - t0:.2f} s, read + render html/md/json/csv {t2 - t1:.2f} s, "
          f"total {t2 - t0:.2f} s (CPU {c2 - c0:.2f} s; target < 5 s)")


if __name__ == "__main__":
    main()
