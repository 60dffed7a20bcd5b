"""Regression rule for speed series (as PyTorch's benchmark checker does it): a point *violates* when its latency
exceeds `threshold` × the median of the `window` points before it; a *regression* is flagged when the last
`consecutive` points all violate. Phones swing >10% run to run, so one slow point is not a regression."""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 1.15
DEFAULT_WINDOW = 5
DEFAULT_CONSECUTIVE = 2


def violations(latencies: list[float], threshold: float = DEFAULT_THRESHOLD, window: int = DEFAULT_WINDOW) -> list[bool]:
    """Per point: slower than threshold × median of up to `window` previous points (the first point never is)."""
    out = []
    for i, value in enumerate(latencies):
        base = latencies[max(0, i - window):i]
        out.append(bool(base) and value > threshold * float(np.median(base)))
    return out


def is_regression(latencies: list[float], threshold: float = DEFAULT_THRESHOLD, window: int = DEFAULT_WINDOW,
                  consecutive: int = DEFAULT_CONSECUTIVE) -> bool:
    flags = violations(latencies, threshold, window)
    return len(flags) >= consecutive and all(flags[-consecutive:])
