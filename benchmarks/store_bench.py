"""How fast does the results store take rows, and read them back for a report?

Stores N synthetic rows (copies of one real results.jsonl row, with the recipe and recording varied) into
a fresh SQLite file, first one ``add`` per row (one transaction each, as batch workers write), then the
same number again through ``add_many`` (one transaction, as ``import_jsonl`` writes), then reads them back
as a report would (``rows`` + ``metric_table``). Prints seconds and rows/s for each.

    .venv/bin/python benchmarks/store_bench.py [--rows 1000] [--from reports/<run-id>/results.jsonl]

Without ``--from`` it uses the newest reports/*/results.jsonl that has a row without an error, or a
row built in memory from ``RunResult`` when there is none.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workbench.store import ResultStore  # noqa: E402


def real_row(source: Path | None) -> tuple[dict, str]:
    candidates = [source] if source else sorted(ROOT.glob("reports/*/results.jsonl"), key=lambda p: p.stat().st_mtime,
                                                reverse=True)
    for path in candidates:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        rows.sort(key=lambda r: (r.get("error") is not None, -len(json.dumps(r))))  # the fullest successful row
        if rows:
            return rows[0], str(path)
    from workbench.datamodel import Recording, Segment, StageTiming, Transcript, Word
    from workbench.metrics import char_errors, word_errors
    from workbench.result import RunResult, Scores

    ref, hyp = "the cat sat on the mat " * 40, "the cat sat on a mat " * 40
    words = tuple(Word(i * 0.3, i * 0.3 + 0.25, w, 0.9) for i, w in enumerate(hyp.split()))
    result = RunResult(run_id="bench", recipe="cascade", recipe_hash="0" * 16, pipeline="cascade",
                       recording=Recording("x", "x.wav", 60.0, 16000, 1, "pcm_s16le"),
                       transcript=Transcript((Segment(0.0, 60.0, hyp, "S1", words),), "en"),
                       timings=(StageTiming("load", 1.0, 1.0), StageTiming("asr", 5.0, 4.0)),
                       scores=Scores(word_errors(ref, hyp), char_errors(ref, hyp), "whisper-english", "x.stm", "stm"))
    return json.loads(json.dumps(result.to_json())), "a row built in memory"


def synthetic(base: dict, n: int, run_id: str) -> list[dict]:
    out = []
    for i in range(n):
        row = copy.deepcopy(base)
        row["run_id"] = run_id
        row["recipe"], row["recipe_hash"] = f"recipe-{i % 20}", f"{i % 20:016x}"
        row["recording"] = {**row["recording"], "id": f"rec-{i // 20}", "path": f"corpus/rec-{i // 20}.wav"}
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--from", dest="source", type=Path)
    args = parser.parse_args()
    base, origin = real_row(args.source)
    size = len(json.dumps(base, ensure_ascii=False))
    print(f"row: {origin} ({base['recipe']}, {size:,} bytes of JSON)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "workbench.sqlite"
        with ResultStore(path) as store:
            one = synthetic(base, args.rows, "bench-add")
            many = synthetic(base, args.rows, "bench-add-many")
            start = time.perf_counter()
            for row in one:
                store.add(row)
            t_add = time.perf_counter() - start
            start = time.perf_counter()
            store.add_many(many)
            t_many = time.perf_counter() - start
        start = time.perf_counter()
        with ResultStore(path) as store:  # a later report, in a fresh connection
            rows = store.rows(run_id="bench-add")
            table = store.metric_table("bench-add")
        t_report = time.perf_counter() - start
        assert len(rows) == args.rows, len(rows)
        file_mb = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
    n = args.rows
    print(f"store, one add per row:      {t_add:.3f} s  ({n / t_add:,.0f} rows/s)")
    print(f"store, add_many (one tx):    {t_many:.3f} s  ({n / t_many:,.0f} rows/s)")
    print(f"report read (rows + metric_table, {len(table):,} metric rows): {t_report:.3f} s")
    print(f"store + report: {t_add + t_report:.3f} s for {n} rows; file {file_mb:.1f} MB for {2 * n} rows")


if __name__ == "__main__":
    main()
