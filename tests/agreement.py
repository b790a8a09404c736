"""Comparing two runs of the same recipes on the same recordings that computed differently (other processes,
other thread counts: int8 matrix products split across another number of threads round differently, and a
different word can win a beam).

The rule the tests follow: exact equality only where the computation is the same (same process, same threads).
Otherwise:
- the same results (keys) and the same errors, exactly;
- the WER against the reference, pooled over the rows that have one, within 1 point (0.01) — never less than one
  word, since a corpus under 100 words cannot resolve 1 point;
- the transcripts of the two runs within 10 points of WER of each other, pooled: a sanity bound that catches a
  result attached to the wrong recording or a lost segment (measured on the batch tests' 57-word corpus, 1 thread
  against 2: 3 words differed, "need to design" / "need the design", "a Yankee" / "a yankie down").
"""

from __future__ import annotations

from workbench.metrics import ErrorCounts, word_errors

WER_TOLERANCE = 0.01  # the measured figure: 1 point
TRANSCRIPT_TOLERANCE = 0.10  # one run's words against the other's


def _pooled_wer(rows) -> tuple[float | None, int]:
    measured = [r["metrics"] for r in rows if (r.get("metrics") or {}).get("reference_words")]
    words = sum(m["reference_words"] for m in measured)
    errors = sum(m["substitutions"] + m["deletions"] + m["insertions"] for m in measured)
    return (errors / words if words else None), words


def assert_runs_agree(a: dict, b: dict, what: str = "the two runs") -> None:
    """``a`` and ``b``: rows by key (recording, recipe hash) of two runs."""
    assert a.keys() == b.keys(), f"{what}: different results"
    for key, row in a.items():
        assert b[key]["error"] == row["error"], f"{what}: different errors on {key}"
    keys = sorted(a)
    wer_a, words = _pooled_wer(a[k] for k in keys)
    wer_b, _ = _pooled_wer(b[k] for k in keys)
    if wer_a is not None:
        tolerance = max(WER_TOLERANCE, 1 / words)
        assert abs(wer_a - wer_b) <= tolerance + 1e-12, (
            f"{what}: WER {wer_a:.4f} vs {wer_b:.4f}: more than the tolerance (1 point, at least one of {words} words)")
    between: ErrorCounts = sum(word_errors(a[k]["transcript"]["text"], b[k]["transcript"]["text"]) for k in keys)
    if between.reference_length:
        assert between.rate <= TRANSCRIPT_TOLERANCE, (
            f"{what}: the transcripts differ by {between.errors} of {between.reference_length} words, more than the "
            f"tolerance ({TRANSCRIPT_TOLERANCE:.0%} WER between the runs): "
            + "; ".join(f"{a[k]['transcript']['text']!r} / {b[k]['transcript']['text']!r}" for k in keys
                        if a[k]["transcript"]["text"] != b[k]["transcript"]["text"]))
    else:
        assert all(not b[k]["transcript"]["text"].strip() for k in keys), f"{what}: one run wrote text, the other none"
