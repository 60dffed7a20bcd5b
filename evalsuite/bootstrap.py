"""Bootstrap confidence intervals for the difference of a statistic between two runs.

Algorithm (fixed so that a hand-written loop with the same seed reproduces it exactly): a NumPy
`default_rng(seed)`; for each of `n_boot` resamples, paired data draw one index vector
`rng.integers(0, n, n)` applied to both runs, unpaired data draw `rng.integers(0, n_a, n_a)` for run A and
then `rng.integers(0, n_b, n_b)` for run B; the delta is stat(B*) − stat(A*); the interval is
`np.percentile(deltas, [2.5, 97.5])` (linear interpolation) for 95%.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Statistic = Callable[[np.ndarray], float]


def mean_stat(x: np.ndarray) -> float:
    return float(np.mean(x))


def psnr_of_mean(data_range: float = 1.0) -> Statistic:
    """PSNR of the pooled MSE: the statistic behind ae-recon's `psnr` (per-sample values are MSEs)."""

    def stat(mse: np.ndarray) -> float:
        m = float(np.mean(mse))
        return float("inf") if m <= 0 else 10.0 * np.log10(data_range**2 / m)

    return stat


STATISTICS: dict[str, Callable[..., Statistic]] = {
    "mean": lambda **_: mean_stat,
    "psnr_of_mean": lambda data_range=1.0, **_: psnr_of_mean(data_range),
}


@dataclass(frozen=True)
class DeltaCI:
    delta: float
    low: float
    high: float
    paired: bool
    n_boot: int
    level: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def bootstrap_delta(a: np.ndarray, b: np.ndarray, stat: Statistic = mean_stat, *, paired: bool, n_boot: int = 2000,
                    seed: int = 0, level: float = 0.95) -> DeltaCI:
    """CI of stat(b) − stat(a) by the documented bootstrap; paired needs equal lengths (same samples, same order)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if paired and len(a) != len(b):
        raise ValueError(f"paired bootstrap needs equal sample counts, got {len(a)} and {len(b)}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("a bootstrap needs at least 2 samples per run")
    rng = np.random.default_rng(seed)
    deltas = np.empty(n_boot)
    for i in range(n_boot):
        if paired:
            idx = rng.integers(0, len(a), len(a))
            deltas[i] = stat(b[idx]) - stat(a[idx])
        else:
            ia = rng.integers(0, len(a), len(a))
            ib = rng.integers(0, len(b), len(b))
            deltas[i] = stat(b[ib]) - stat(a[ia])
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(deltas, [tail, 100 - tail])
    return DeltaCI(stat(b) - stat(a), float(low), float(high), paired, n_boot, level)


def bootstrap_ci(x: np.ndarray, stat: Statistic = mean_stat, *, n_boot: int = 2000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of stat(x) alone (for error bars)."""
    x = np.asarray(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    values = np.array([stat(x[rng.integers(0, len(x), len(x))]) for _ in range(n_boot)])
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def replicate_delta(a: np.ndarray, b: np.ndarray, delta: float, *, level: float = 0.95) -> DeltaCI:
    """Percentile CI of a difference from two runs' stored bootstrap replicates (e.g. FID's sampling interval):
    replicate i of B minus replicate i of A, over the replicates both have; `delta` is the difference of the
    point estimates. Each run's replicates resample only its own samples, so this is a sampling interval.

    >>> ci = replicate_delta(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0]), 2.0)
    >>> (ci.low, ci.high, ci.n_boot)
    (1.05, 2.95, 3)
    """
    n = min(len(a), len(b))
    if n < 2:
        raise ValueError("an interval needs at least 2 replicates per run")
    deltas = np.asarray(b[:n], dtype=np.float64) - np.asarray(a[:n], dtype=np.float64)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(deltas, [tail, 100 - tail])
    return DeltaCI(float(delta), float(low), float(high), False, n, level)
