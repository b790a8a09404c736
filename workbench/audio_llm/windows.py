"""Split long audio into windows no longer than a model accepts, cutting at the quietest point near the limit."""

from __future__ import annotations

import numpy as np

from workbench.audio import SAMPLE_RATE
from workbench.datamodel import Span


def split_windows(samples: np.ndarray, limit_s: float, *, search_s: float = 5.0, frame_s: float = 0.05) -> list[Span]:
    """Windows covering the whole recording, each at most ``limit_s`` long. Each cut falls at the frame of
    lowest energy within the last ``search_s`` seconds before the limit, so words are rarely split."""
    duration = len(samples) / SAMPLE_RATE
    if limit_s <= 0:
        raise ValueError("limit_s must be positive")
    if duration <= limit_s:
        return [Span(0.0, duration)]
    search_s = min(search_s, limit_s / 2)
    frame = max(1, int(frame_s * SAMPLE_RATE))
    windows, cursor = [], 0.0
    while duration - cursor > limit_s:
        lo = int((cursor + limit_s - search_s) * SAMPLE_RATE)
        hi = int((cursor + limit_s) * SAMPLE_RATE)
        region = samples[lo:hi]
        n = len(region) // frame
        if n == 0:
            cut = cursor + limit_s
        else:
            energy = np.square(region[: n * frame].reshape(n, frame).astype(np.float64)).mean(axis=1)
            # the quietest frame; among equals, the latest (longest window)
            best = n - 1 - int(np.argmin(energy[::-1]))
            cut = (lo + best * frame + frame // 2) / SAMPLE_RATE
        cut = round(min(max(cut, cursor + 1.0), cursor + limit_s), 3)
        windows.append(Span(round(cursor, 3), cut))
        cursor = cut
    windows.append(Span(round(cursor, 3), round(duration, 3)))
    return windows
