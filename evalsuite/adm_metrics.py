"""The ADM evaluator's metrics (openai/guided-diffusion `evaluations/evaluator.py`, the tables of ADM, DiT and the
papers built on them), in numpy, with their quirks: Inception Score with ADM's fixed-size splits, FID/sFID with
ADM's `frechet_distance` (its eps offset only when sqrtm is not finite), precision/recall with ADM's
`ManifoldEstimator` (k = 3, 10000-row/column batches, squared distances computed in float16 first).

Line numbers below are those of evaluator.py at guided-diffusion's HEAD. Named alternatives: torch-fidelity's IS
(`inception_score_torch_fidelity`: 10 splits of shuffled logits) and StyleGAN2-ADA's (`inception_score_stylegan2ada`:
10 splits of `num_gen`, unshuffled). Features come from elsewhere (`tasks/adm.py`); nothing here imports TF.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg

from evalsuite.errors import InputError

ADM_SPLIT_SIZE = 5000  # compute_inception_score(split_size=5000), evaluator.py:179
ADM_FD_EPS = 1e-6  # FIDStatistics.frechet_distance(eps=1e-6), evaluator.py:72
ADM_ROW_BATCH = 10000  # ManifoldEstimator(row_batch_size=10000, col_batch_size=10000), evaluator.py:215-216
ADM_COL_BATCH = 10000
ADM_NHOOD_SIZES = (3,)  # nhood_sizes=(3,), evaluator.py:217
ADM_SPATIAL_CHANNELS = 7  # spatial[..., :7] of mixed_6/conv (N, 17, 17, 768), evaluator.py:599
DISTANCE_PRECISIONS = ("float16", "float32")


def _probabilities(probs: np.ndarray, what: str = "probabilities") -> np.ndarray:
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[0] == 0 or probs.shape[1] == 0:
        raise InputError(f"Inception Score needs an (N, classes) array of {what}, got shape {probs.shape}",
                         "pass the classifier's softmax outputs, one row per sample")
    return probs


def _split_score(part: np.ndarray) -> np.floating:
    # improved-gan's KL per split (evaluator.py:189-191; StyleGAN2-ADA metrics/inception_score.py:29-31); kept in
    # the input's dtype, so the mean over splits is taken in it too, as ADM's np.mean of float32 scores
    kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
    return np.exp(np.mean(np.sum(kl, 1)))


def inception_score_adm(probs: np.ndarray, split_size: int = ADM_SPLIT_SIZE) -> float:
    """ADM's IS (evaluator.py:179-192): consecutive splits of `split_size` rows (the last one shorter when N is no
    multiple), the mean of exp(mean KL(p(y|x) || p(y))) over splits; no shuffling, no std. The arithmetic stays in
    the dtype given (ADM's TF softmax gives float32)."""
    probs = _probabilities(probs)
    if split_size < 1:
        raise InputError(f"split_size is {split_size}", "use a positive split size (ADM: 5000)")
    scores = [_split_score(probs[i:i + split_size]) for i in range(0, len(probs), split_size)]
    return float(np.mean(scores))


def inception_score_stylegan2ada(probs: np.ndarray, num_splits: int = 10,
                                 num_gen: int | None = None) -> tuple[float, float]:
    """StyleGAN2-ADA's IS (metrics/inception_score.py:15-32, `is50k`: num_gen 50000, 10 splits): split i is rows
    [i*num_gen//s, (i+1)*num_gen//s) of the probabilities (no output bias); returns (mean, std) over splits."""
    probs = _probabilities(probs)
    num_gen = len(probs) if num_gen is None else num_gen
    scores = [_split_score(probs[i * num_gen // num_splits:(i + 1) * num_gen // num_splits])
              for i in range(num_splits)]
    return float(np.mean(scores)), float(np.std(scores))


def inception_score_torch_fidelity(logits: np.ndarray, splits: int = 10, shuffle: bool = True,
                                   rng_seed: int = 2020) -> tuple[float, float]:
    """torch-fidelity 0.4's IS (metric_isc.py `isc_features_to_metric`) on unbiased logits: rows permuted by
    RandomState(rng_seed) when `shuffle`, float64 softmax/log-softmax, splits [i*N//s, (i+1)*N//s); (mean, std)."""
    logits = _probabilities(logits, "logits").astype(np.float64)
    n = len(logits)
    if shuffle:
        logits = logits[np.random.RandomState(rng_seed).permutation(n)]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    p = np.exp(log_p)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        q = p[lo:hi].mean(axis=0, keepdims=True)
        scores.append(float(np.exp((p[lo:hi] * (log_p[lo:hi] - np.log(q))).sum(axis=1).mean())))
    return float(np.mean(scores)), float(np.std(scores))


def softmax_without_bias(pool: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """ADM's IS classifier (evaluator.py:603-614): softmax(pool3 @ W) with the graph's `softmax/logits/MatMul`
    weight and no bias, in float32 as the TF graph computes it. `weight` is (2048, classes)."""
    logits = np.asarray(pool, dtype=np.float32) @ np.asarray(weight, dtype=np.float32)
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


# ------------------------------------------------------------------------------------------------ FID / sFID
@dataclass
class ADMStatistics:
    """`FIDStatistics` (evaluator.py:67-70): a mean and a covariance."""

    mu: np.ndarray
    sigma: np.ndarray


def statistics_adm(activations: np.ndarray) -> ADMStatistics:
    """`compute_statistics` (evaluator.py:174-177): np.mean over rows (in the activations' dtype, float32 from TF)
    and np.cov(rowvar=False) (float64, divided by N - 1)."""
    activations = np.asarray(activations)
    if activations.ndim != 2 or activations.shape[0] < 2:
        raise InputError(f"statistics need an (N >= 2, d) array of activations, got shape {activations.shape}",
                         "pass at least two feature vectors")
    return ADMStatistics(np.mean(activations, axis=0), np.cov(activations, rowvar=False))


def spatial_features(mixed_6_conv: np.ndarray, layout: str = "NHWC") -> np.ndarray:
    """sFID's features (evaluator.py:599, 157-158): the first 7 channels of `mixed_6/conv` (N, 17, 17, 768 in TF's
    NHWC), flattened in NHWC order to 17*17*7 = 2023 values per image. An NCHW tensor (a PyTorch port) is
    transposed first, so the flattening order is TF's."""
    x = np.asarray(mixed_6_conv)
    if x.ndim != 4:
        raise InputError(f"mixed_6/conv activations must be 4-d, got shape {x.shape}", "pass (N, H, W, C)")
    if layout == "NCHW":
        x = x.transpose(0, 2, 3, 1)
    elif layout != "NHWC":
        raise InputError(f"unknown layout {layout!r}", "use NHWC or NCHW")
    return x[..., :ADM_SPATIAL_CHANNELS].reshape(x.shape[0], -1)


def frechet_distance_adm(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                         eps: float = ADM_FD_EPS) -> float:
    """`FIDStatistics.frechet_distance` (evaluator.py:72-115): sqrtm(sigma1 @ sigma2) with disp=False; only if it is
    not finite, a warning and sqrtm((sigma1 + eps I) @ (sigma2 + eps I)); an imaginary part is dropped unless its
    diagonal exceeds 1e-3 (then ValueError, as ADM); |mu1 - mu2|^2 + tr(s1) + tr(s2) - 2 tr(covmean)."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise InputError(f"statistics differ in shape: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs "
                         f"{sigma2.shape}", "compare statistics of the same feature space (pool 2048, spatial 2023)")
    diff = mu1 - mu2
    with warnings.catch_warnings():  # scipy >= 1.16 deprecates disp=False, which ADM passes
        warnings.simplefilter("ignore", DeprecationWarning)
        covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        warnings.warn(f"fid calculation produces singular product; adding {eps} to diagonal of cov estimates",
                      stacklevel=2)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


# ------------------------------------------------------------------------------------------ precision / recall
def _sq_distances(u: np.ndarray, v: np.ndarray, dtype: type) -> np.ndarray:
    """`_batch_pairwise_distances` (evaluator.py:414-430) in `dtype`: max(|u|^2 - 2 u.v + |v|^2, 0), squared."""
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is ADM's cue for the float32 pass
        return _sq_distances_unchecked(u.astype(dtype), v.astype(dtype), dtype)


def _sq_distances_unchecked(u: np.ndarray, v: np.ndarray, dtype: type) -> np.ndarray:
    if dtype is np.float16:  # fp16 tensors, fp32 accumulation (TF's GPU half reductions and matmuls), fp16 results
        norm_u = np.square(u).astype(np.float32).sum(1).astype(np.float16).reshape(-1, 1)
        norm_v = np.square(v).astype(np.float32).sum(1).astype(np.float16).reshape(1, -1)
        mm = (u.astype(np.float32) @ v.astype(np.float32).T).astype(np.float16)
    else:
        norm_u = np.square(u).sum(1).reshape(-1, 1)
        norm_v = np.square(v).sum(1).reshape(1, -1)
        mm = u @ v.T
    return np.maximum(norm_u - 2 * mm + norm_v, dtype(0.0))


def pairwise_distances_adm(u: np.ndarray, v: np.ndarray, precision: str = "float16") -> np.ndarray:
    """`DistanceBlock.distance_block` (evaluator.py:376-384): squared distances of float16 copies, used (as float32)
    when all are finite, else recomputed in float32. `precision="float32"` skips the float16 pass (an opt-in
    correction). The float16 pass is an emulation: inputs, squares, norms, products and sums rounded to float16,
    accumulations in float32 as TF's GPU kernels do; the accumulation order is not TF's, so a distance can differ
    from TF's by a float16 rounding step."""
    if precision not in DISTANCE_PRECISIONS:
        raise InputError(f"unknown distance precision {precision!r}", "use float16 (ADM) or float32")
    if precision == "float16":
        d16 = _sq_distances(u, v, np.float16)
        if np.isfinite(d16).all():
            return d16.astype(np.float32)
    return _sq_distances(np.asarray(u, np.float32), np.asarray(v, np.float32), np.float32)


@dataclass
class ManifoldEstimatorADM:
    """ADM's `ManifoldEstimator` (evaluator.py:205-359, after Kynkäänniemi et al.'s precision_recall.py) with
    numpy distances (`pairwise_distances_adm`)."""

    row_batch_size: int = ADM_ROW_BATCH
    col_batch_size: int = ADM_COL_BATCH
    nhood_sizes: tuple[int, ...] = ADM_NHOOD_SIZES
    clamp_to_percentile: float | None = None
    eps: float = 1e-5
    precision: str = "float16"

    def manifold_radii(self, features: np.ndarray) -> np.ndarray:
        """evaluator.py:248-281: per row, the squared distance to its k-th nearest row (index k of the sorted
        distances, the row itself included at 0), float32, batched by rows and columns."""
        n = len(features)
        radii = np.zeros([n, len(self.nhood_sizes)], dtype=np.float32)
        dist = np.zeros([self.row_batch_size, n], dtype=np.float32)
        kth = np.arange(max(self.nhood_sizes) + 1, dtype=np.int32)
        for b1 in range(0, n, self.row_batch_size):
            e1 = min(b1 + self.row_batch_size, n)
            for b2 in range(0, n, self.col_batch_size):
                e2 = min(b2 + self.col_batch_size, n)
                dist[0:e1 - b1, b2:e2] = pairwise_distances_adm(features[b1:e1], features[b2:e2], self.precision)
            radii[b1:e1, :] = np.partition(dist[0:e1 - b1, :], kth, axis=1)[:, list(self.nhood_sizes)]
        if self.clamp_to_percentile is not None:
            max_distances = np.percentile(radii, self.clamp_to_percentile, axis=0)
            radii[radii > max_distances] = 0
        return radii

    def evaluate_pr(self, features_1: np.ndarray, radii_1: np.ndarray, features_2: np.ndarray,
                    radii_2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """evaluator.py:325-359 with DistanceBlock.less_thans (386-391): a row of batch 2 is "in" when its distance
        to some row of batch 1 is <= that row's radius (and vice versa); returns (precision, recall) = (fraction of
        features_2 inside the manifold of features_1, fraction of features_1 inside that of features_2), one per
        neighbourhood size."""
        status_1 = np.zeros([len(features_1), radii_2.shape[1]], dtype=bool)
        status_2 = np.zeros([len(features_2), radii_1.shape[1]], dtype=bool)
        for b1 in range(0, len(features_1), self.row_batch_size):
            e1 = b1 + self.row_batch_size
            for b2 in range(0, len(features_2), self.col_batch_size):
                e2 = b2 + self.col_batch_size
                dist = pairwise_distances_adm(features_1[b1:e1], features_2[b2:e2], self.precision)[..., None]
                status_1[b1:e1] |= np.any(dist <= radii_2[b2:e2], axis=1)
                status_2[b2:e2] |= np.any(dist <= radii_1[b1:e1][:, None], axis=0)
        return (np.mean(status_2.astype(np.float64), axis=0), np.mean(status_1.astype(np.float64), axis=0))


def precision_recall_adm(ref_features: np.ndarray, sample_features: np.ndarray,
                         estimator: ManifoldEstimatorADM | None = None) -> tuple[float, float]:
    """`Evaluator.compute_prec_recall` (evaluator.py:194-202): radii of both sets, then (precision, recall) for
    the first neighbourhood size (k = 3). ADM feeds pool3 features of the reference batch's images (arr_0)."""
    est = estimator or ManifoldEstimatorADM()
    ref, sample = np.asarray(ref_features), np.asarray(sample_features)
    if ref.ndim != 2 or sample.ndim != 2 or ref.shape[1] != sample.shape[1]:
        raise InputError(f"precision/recall needs two (N, d) feature arrays of one d, got {ref.shape} and "
                         f"{sample.shape}", "pass pool3 features of the reference and the sample batch")
    k = max(est.nhood_sizes)
    if min(len(ref), len(sample)) <= k:
        raise InputError(f"precision/recall with k = {k} needs more than {k} feature vectors per set, got "
                         f"{len(ref)} and {len(sample)}", "score more samples")
    radii_1 = est.manifold_radii(ref)
    radii_2 = est.manifold_radii(sample)
    pr = est.evaluate_pr(ref, radii_1, sample, radii_2)
    return float(pr[0][0]), float(pr[1][0])
