"""Distances between feature distributions: Fréchet distance (FID/FVD), kernel distance (KID), CMMD and improved
precision/recall (k-NN manifolds, Kynkäänniemi et al. 2019)."""

from __future__ import annotations

import numpy as np


def _sqrt_psd(mat: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix via eigh; tiny negative eigenvalues are clamped to 0."""
    vals, vecs = np.linalg.eigh((mat + mat.T) / 2.0)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr √(Σ₁Σ₂) computed as Σ √eig(√Σ₁·Σ₂·√Σ₁): real and symmetric by construction, never complex."""
    s1 = np.asarray(sigma1, dtype=np.float64)
    s2 = np.asarray(sigma2, dtype=np.float64)
    root1 = _sqrt_psd(s1)
    m = root1 @ s2 @ root1
    vals = np.linalg.eigvalsh((m + m.T) / 2.0)
    return float(np.sqrt(np.clip(vals, 0.0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """‖μ₁−μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr √(Σ₁Σ₂), in float64; a result below 0 from rounding is reported as 0."""
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"mismatched statistics: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}"
        )
    for name, arr in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} holds NaN or inf values")
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2))
    return max(value, 0.0)


def frechet_bootstrap(features: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, *, n_boot: int, seed: int = 0,
                      unbiased: bool = True, progress: bool = False) -> np.ndarray:
    """Bootstrap replicates of the Fréchet distance between `features` (N, d) and fixed reference statistics: each
    replicate draws N rows with replacement (`default_rng(seed).integers(0, N, N)`, as `evalsuite.bootstrap`) and
    computes the distance of their mean and covariance (divided by N - 1 when `unbiased`, else N) to (mu2, sigma2).
    A sampling interval of the generated side only: no network runs again, the reference is not resampled.

    tr √(Σ₁Σ₂) is Σ √eig(√Σ₂·Σ₁·√Σ₂) (the same eigenvalues as `trace_sqrt_product`'s √Σ₁·Σ₂·√Σ₁), with √Σ₂ computed
    once and √Σ₂·Σ₁·√Σ₂ = Yᵀ W Y for Y = (X − μ₁)√Σ₂: its eigenvalues come from the smaller of the d×d matrix and the
    Gram matrix of the drawn rows, so a replicate costs one pass over the drawn features, never a d×d square root.

    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(40, 3)), rng.normal(size=(60, 3))
    >>> reps = frechet_bootstrap(x, y.mean(0), np.cov(y, rowvar=False), n_boot=50)
    >>> reps.shape, bool((reps >= 0).all())
    ((50,), True)
    """
    x = np.asarray(features, dtype=np.float64)
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if x.ndim != 2 or x.shape[1] != mu2.size or sigma2.shape != (mu2.size, mu2.size):
        raise ValueError(f"features {x.shape} do not match reference statistics mu {mu2.shape}, sigma {sigma2.shape}")
    n = len(x)
    if n < 2 or n_boot < 1:
        raise ValueError(f"a bootstrap needs at least 2 samples and 1 resample, got {n} and {n_boot}")
    ddof = 1 if unbiased else 0
    root2 = _sqrt_psd(sigma2)
    y = x @ root2  # the features in the reference's whitened-by-root coordinates, once
    trace2 = float(np.trace(sigma2))
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot, dtype=np.float64)
    from tqdm.auto import tqdm

    steps = tqdm(range(n_boot), desc="FID sampling bootstrap", unit="resample", disable=not progress)
    for i in steps:
        counts = np.bincount(rng.integers(0, n, n), minlength=n)
        drawn = np.flatnonzero(counts)
        w = counts[drawn].astype(np.float64)
        mu1 = w @ x[drawn] / n
        xc = x[drawn] - mu1
        trace1 = float(w @ np.einsum("ij,ij->i", xc, xc)) / (n - ddof)
        yc = (y[drawn] - mu1 @ root2) * np.sqrt(w / (n - ddof))[:, None]
        small = yc @ yc.T if len(drawn) < yc.shape[1] else yc.T @ yc
        vals = np.linalg.eigvalsh((small + small.T) / 2.0)
        diff = mu1 - mu2
        value = float(diff @ diff + trace1 + trace2 - 2.0 * np.sqrt(np.clip(vals, 0.0, None)).sum())
        out[i] = max(value, 0.0)
    return out


def kernel_distance(
    feats1: np.ndarray,
    feats2: np.ndarray,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: unbiased MMD² with the cubic polynomial kernel (xᵀy/d + 1)³ over `num_subsets` random subsets of
    min(subset_size, N₁, N₂) drawn without replacement by a seeded generator; returns (mean, std)."""
    x_all = np.asarray(feats1, dtype=np.float64)
    y_all = np.asarray(feats2, dtype=np.float64)
    if x_all.ndim != 2 or y_all.ndim != 2 or x_all.shape[1] != y_all.shape[1]:
        raise ValueError(f"feature sets must be (N, d) with equal d, got {x_all.shape} and {y_all.shape}")
    d = x_all.shape[1]
    m = min(subset_size, len(x_all), len(y_all))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(x_all)} and {len(y_all)}")
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets, dtype=np.float64)
    for i in range(num_subsets):
        x = x_all[rng.choice(len(x_all), m, replace=False)]
        y = y_all[rng.choice(len(y_all), m, replace=False)]
        kxx = (x @ x.T / d + 1.0) ** 3
        kyy = (y @ y.T / d + 1.0) ** 3
        kxy = (x @ y.T / d + 1.0) ** 3
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values[i] = within - 2.0 * kxy.sum() / (m * m)
    return float(values.mean()), float(values.std())


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances in float64 (‖a‖² + ‖b‖² − 2a·b, clamped at 0)."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0)


def _row_chunk(n_cols: int, budget_bytes: int = 1 << 28) -> int:
    """Rows per block so that one float64 block of distances stays within `budget_bytes` (memory flat in N)."""
    return max(1, budget_bytes // (8 * max(1, n_cols)))


def knn_radii(feats: np.ndarray, k: int = 3) -> np.ndarray:
    """Squared distance from each point to its k-th nearest neighbour in the same set (itself excluded: the
    (k+1)-th smallest distance, counting the zero to itself, as the reference code does)."""
    x = np.asarray(feats, dtype=np.float64)
    if len(x) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set, got {len(x)}")
    step = _row_chunk(len(x))
    return np.concatenate([np.partition(_squared_distances(x[i:i + step], x), k, axis=1)[:, k]
                           for i in range(0, len(x), step)])


def manifold_coverage(queries: np.ndarray, support: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """For each query, whether it lies in some support point's k-NN ball (distance ≤ that point's radius)."""
    q = np.asarray(queries, dtype=np.float64)
    s = np.asarray(support, dtype=np.float64)
    step = _row_chunk(len(s))
    return np.concatenate([(_squared_distances(q[i:i + step], s) <= radii[None, :]).any(axis=1)
                           for i in range(0, len(q), step)])


def precision_recall(fake: np.ndarray, real: np.ndarray, k: int = 3) -> dict[str, float]:
    """Improved precision (share of generated samples inside the real k-NN manifold) and recall (share of real
    samples inside the generated one), with F = 2PR/(P+R) as torch-fidelity reports it. float64, blockwise."""
    fake = np.asarray(fake, dtype=np.float64)
    real = np.asarray(real, dtype=np.float64)
    if fake.ndim != 2 or real.ndim != 2 or fake.shape[1] != real.shape[1]:
        raise ValueError(f"feature sets must be (N, d) with equal d, got {fake.shape} and {real.shape}")
    precision = float(manifold_coverage(fake, real, knn_radii(real, k)).mean())
    recall = float(manifold_coverage(real, fake, knn_radii(fake, k)).mean())
    return {"precision": precision, "recall": recall,
            "f_score": 2 * precision * recall / max(1e-5, precision + recall)}


CMMD_SIGMA = 10.0  # google-research cmmd/distance.py `_SIGMA`
CMMD_SCALE = 1000.0  # cmmd/distance.py `_SCALE`


def _rbf_kernel_sum(a: np.ndarray, b: np.ndarray, a_sq: np.ndarray, b_sq: np.ndarray, gamma: float,
                    block: int) -> float:
    """Σᵢⱼ exp(−γ(−2aᵢ·bⱼ + ‖aᵢ‖² + ‖bⱼ‖²)), one (block × len(b)) slab at a time (memory flat in N)."""
    total = 0.0
    for i in range(0, len(a), block):
        d2 = -2.0 * (a[i:i + block] @ b.T) + a_sq[i:i + block, None] + b_sq[None, :]
        total += float(np.exp(-gamma * d2).sum())
    return total


def cmmd(x: np.ndarray, y: np.ndarray, *, sigma: float = CMMD_SIGMA, scale: float = CMMD_SCALE,
         block_rows: int | None = None) -> float:
    """CMMD as google-research `cmmd/distance.py` `mmd` computes it: the biased (minimum-variance, V-statistic)
    MMD² estimate with a Gaussian RBF kernel exp(−‖x−y‖²/(2σ²)), σ = 10, times 1000:
    scale · (mean K(x, x') + mean K(y, y') − 2 mean K(x, y)), every mean over all pairs, diagonals included, with
    the squared distances written as the official code writes them (−2x·y + ‖x‖² + ‖y‖², not clamped).
    float64 and blockwise (`block_rows` rows of kernel at a time; by default ~256 MiB), where the official code
    forms each full kernel matrix in float32."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"embedding sets must be (N, d) with equal d, got {x.shape} and {y.shape}")
    if len(x) == 0 or len(y) == 0:
        raise ValueError(f"CMMD needs at least one embedding per set, got {len(x)} and {len(y)}")
    gamma = 1.0 / (2.0 * sigma ** 2)
    x_sq, y_sq = (x * x).sum(1), (y * y).sum(1)
    block = block_rows or _row_chunk(max(len(x), len(y)))
    k_xx = _rbf_kernel_sum(x, x, x_sq, x_sq, gamma, block) / (len(x) * len(x))
    k_yy = _rbf_kernel_sum(y, y, y_sq, y_sq, gamma, block) / (len(y) * len(y))
    k_xy = _rbf_kernel_sum(x, y, x_sq, y_sq, gamma, block) / (len(x) * len(y))
    return float(scale * (k_xx + k_yy - 2.0 * k_xy))
