"""Strict JSON for everything the workbench writes (results.jsonl, the store, report.json).

JSON has no NaN or Infinity; a figure that could not be measured is ``null``. This sits at the bottom of the
layers (it imports nothing from the workbench) so that the runner, the store writer and the reports share it
without importing each other.
"""

from __future__ import annotations

import math


def finite(value):
    """``value`` with every non-finite float (NaN, ±Infinity), however deeply nested, made ``None``; tuples
    become lists, as JSON has them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
