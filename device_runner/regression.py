"""Regression rule for speed series (after PyTorch's benchmark checker): a point *violates* when its latency
exceeds `threshold` (1.15) × the median of the `window` (5) points before it; a *regression* is flagged when the
latest `consecutive` (2) releases are all slower than threshold × the median of the window before them. Phones
swing >10% run to run, so one slow point is not a regression."""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 1.15
DEFAULT_WINDOW = 5
DEFAULT_CONSECUTIVE = 2


def violations(latencies: list[float], threshold: float = DEFAULT_THRESHOLD,
               window: int = DEFAULT_WINDOW) -> list[bool]:
    """Per point: slower than threshold × median of up to `window` previous points (the first point never is)."""
    out = []
    for i, value in enumerate(latencies):
        base = latencies[max(0, i - window):i]
        out.append(bool(base) and value > threshold * float(np.median(base)))
    return out


def regression_at(latencies: list[float], i: int, threshold: float = DEFAULT_THRESHOLD,
                  window: int = DEFAULT_WINDOW, consecutive: int = DEFAULT_CONSECUTIVE) -> bool:
    """The `consecutive` points ending at i are all slower than threshold × the median of the `window` points
    before them (the earlier window)."""
    start = i - consecutive + 1
    base = latencies[max(0, start - window):max(0, start)]
    if start < 1 or not base:
        return False
    limit = threshold * float(np.median(base))
    return all(v > limit for v in latencies[start:i + 1])


def is_regression(latencies: list[float], threshold: float = DEFAULT_THRESHOLD, window: int = DEFAULT_WINDOW,
                  consecutive: int = DEFAULT_CONSECUTIVE) -> bool:
    """Is the latest release a regression?"""
    return regression_at(latencies, len(latencies) - 1, threshold, window, consecutive)


def regression_events(latencies: list[float], threshold: float = DEFAULT_THRESHOLD, window: int = DEFAULT_WINDOW,
                      consecutive: int = DEFAULT_CONSECUTIVE) -> list[int]:
    """Indices where a regression is first flagged (a slow stretch counts once, at its `consecutive`-th point)."""
    flagged = [regression_at(latencies, i, threshold, window, consecutive) for i in range(len(latencies))]
    return [i for i, f in enumerate(flagged) if f and not (i > 0 and flagged[i - 1])]
