"""Streaming float64 feature statistics (count, Σx, Σxxᵀ): O(d²) memory whatever N, mergeable across shards."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class StreamingStats:
    """Sufficient statistics of a feature set; `update` with batches, `merge` parts, then read `mean`/`cov`."""

    dim: int
    n: int = 0
    # None stands for "zeros of the right shape", made in __post_init__ once `dim` is known
    sum: np.ndarray = field(default=None)  # type: ignore[arg-type]
    sum_outer: np.ndarray = field(default=None)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        if self.sum is None:
            self.sum = np.zeros(self.dim, dtype=np.float64)
        if self.sum_outer is None:
            self.sum_outer = np.zeros((self.dim, self.dim), dtype=np.float64)

    def update(self, feats: np.ndarray) -> None:
        x = np.asarray(feats, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected features of shape (N, {self.dim}), got {x.shape}")
        self.n += x.shape[0]
        self.sum += x.sum(axis=0)
        self.sum_outer += x.T @ x

    def merge(self, other: "StreamingStats") -> "StreamingStats":
        if other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of dimension {other.dim} into {self.dim}")
        return StreamingStats(self.dim, self.n + other.n, self.sum + other.sum, self.sum_outer + other.sum_outer)

    @property
    def mean(self) -> np.ndarray:
        if self.n == 0:
            raise ValueError("no features were accumulated")
        return self.sum / self.n

    def cov(self, unbiased: bool = True) -> np.ndarray:
        """Covariance: divided by N−1 (clean-fid, pytorch-fid, torchmetrics) or by N (StyleGAN-V, cd-fvd)."""
        ddof = 1 if unbiased else 0
        if self.n - ddof <= 0:
            raise ValueError(f"need more than {ddof} feature vectors for a covariance, have {self.n}")
        mu = self.mean
        c = (self.sum_outer - self.n * np.outer(mu, mu)) / (self.n - ddof)
        return (c + c.T) / 2.0
