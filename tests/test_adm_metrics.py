"""ADM evaluator metrics (evalsuite.adm_metrics) against openai/guided-diffusion `evaluations/evaluator.py`.

evaluator.py imports TensorFlow at module level, which does not install here, so its numpy logic is written out
below line by line (line numbers of evaluator.py at guided-diffusion HEAD), with its TF `DistanceBlock` replaced by
numpy squared distances, and compared with ours to 1e-9 (identical arithmetic: exact equality is asserted where the
operations are the same). torch-fidelity's IS is run itself (installed in .venv). StyleGAN2-ADA's IS is written out
from NVlabs/stylegan2-ada-pytorch metrics/inception_score.py:26-32.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg
from scipy.spatial.distance import cdist

from evalsuite import adm_metrics as am
from evalsuite.errors import InputError


def _probs(n: int, c: int, seed: int, dtype=np.float32) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(size=(n, c)) * 3
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(dtype)


# ------------------------------------------------------------------------------------------- official, written out
def official_inception_score(preds: np.ndarray, split_size: int = 5000) -> float:
    scores = []  # evaluator.py:186
    for i in range(0, len(preds), split_size):  # :187
        part = preds[i: i + split_size]  # :188
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))  # :189
        kl = np.mean(np.sum(kl, 1))  # :190
        scores.append(np.exp(kl))  # :191
    return float(np.mean(scores))  # :192


def official_frechet(mu1, sigma1, mu2, sigma2, eps=1e-6):
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)  # :80-81
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)  # :83-84
    diff = mu1 - mu2  # :93
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)  # :96
    if not np.isfinite(covmean).all():  # :97
        offset = np.eye(sigma1.shape[0]) * eps  # :103
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))  # :104
    if np.iscomplexobj(covmean):  # :107
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):  # :108
            raise ValueError("Imaginary component")  # :109-110
        covmean = covmean.real  # :111
    tr_covmean = np.trace(covmean)  # :113
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean  # :115


def official_stats(acts):
    return np.mean(acts, axis=0), np.cov(acts, rowvar=False)  # :175-176


def _numpy_partition(arr, kth, axis, workers=3):  # evaluator.py:636-649 (thread chunks of rows)
    num_workers = min(workers, len(arr))
    chunk, extra = len(arr) // num_workers, len(arr) % num_workers
    start, out = 0, []
    for i in range(num_workers):
        size = chunk + (1 if i < extra else 0)
        out.append(np.partition(arr[start: start + size], kth, axis=axis))
        start += size
    return out


class OfficialManifold:
    """evaluator.py:205-359 with `distance` standing in for the TF DistanceBlock (:362-411)."""

    def __init__(self, distance, row_batch_size=10000, col_batch_size=10000, nhood_sizes=(3,)):
        self.distance = distance
        self.row_batch_size, self.col_batch_size = row_batch_size, col_batch_size  # :234-235
        self.nhood_sizes, self.num_nhoods = nhood_sizes, len(nhood_sizes)  # :236-237

    def less_thans(self, b1, r1, b2, r2):  # :389-391
        dist32 = self.distance(b1, b2).astype(np.float32)[..., None]
        return np.any(dist32 <= r2, axis=1), np.any(dist32 <= r1[:, None], axis=0)

    def manifold_radii(self, features):
        num_images = len(features)  # :249
        radii = np.zeros([num_images, self.num_nhoods], dtype=np.float32)  # :252
        distance_batch = np.zeros([self.row_batch_size, num_images], dtype=np.float32)  # :253
        seq = np.arange(max(self.nhood_sizes) + 1, dtype=np.int32)  # :254
        for begin1 in range(0, num_images, self.row_batch_size):  # :256
            end1 = min(begin1 + self.row_batch_size, num_images)  # :257
            row_batch = features[begin1:end1]  # :258
            for begin2 in range(0, num_images, self.col_batch_size):  # :260
                end2 = min(begin2 + self.col_batch_size, num_images)  # :261
                col_batch = features[begin2:end2]  # :262
                distance_batch[0: end1 - begin1, begin2:end2] = self.distance(row_batch, col_batch)  # :265-267
            radii[begin1:end1, :] = np.concatenate(  # :270-276
                [x[:, self.nhood_sizes] for x in _numpy_partition(distance_batch[0: end1 - begin1, :], seq, axis=1)],
                axis=0)
        return radii  # :281 (clamp_to_percentile None)

    def evaluate_pr(self, features_1, radii_1, features_2, radii_2):
        f1_status = np.zeros([len(features_1), radii_2.shape[1]], dtype=bool)  # :343 (np.bool)
        f2_status = np.zeros([len(features_2), radii_1.shape[1]], dtype=bool)  # :344
        for begin_1 in range(0, len(features_1), self.row_batch_size):  # :345
            end_1 = begin_1 + self.row_batch_size  # :346
            batch_1 = features_1[begin_1:end_1]  # :347
            for begin_2 in range(0, len(features_2), self.col_batch_size):  # :348
                end_2 = begin_2 + self.col_batch_size  # :349
                batch_2 = features_2[begin_2:end_2]  # :350
                b1_in, b2_in = self.less_thans(batch_1, radii_1[begin_1:end_1], batch_2,
                                               radii_2[begin_2:end_2])  # :351-353
                f1_status[begin_1:end_1] |= b1_in  # :354
                f2_status[begin_2:end_2] |= b2_in  # :355
        return (np.mean(f2_status.astype(np.float64), axis=0), np.mean(f1_status.astype(np.float64), axis=0))

    def compute_prec_recall(self, ref, sample):  # :194-202
        r1, r2 = self.manifold_radii(ref), self.manifold_radii(sample)
        pr = self.evaluate_pr(ref, r1, sample, r2)
        return float(pr[0][0]), float(pr[1][0])


# ------------------------------------------------------------------------------------------------ Inception Score
def test_is_hand_worked():
    # one-hot rows over k classes, each split balanced: p(y) uniform over k, KL = log k per row, IS = k
    onehot = np.eye(4, dtype=np.float64)[np.arange(8) % 4] * (1 - 1e-12) + 1e-12 / 4
    assert am.inception_score_adm(onehot, split_size=4) == pytest.approx(4.0, rel=1e-9)
    # identical rows: p(y|x) = p(y), KL = 0, IS = 1
    assert am.inception_score_adm(np.full((7, 5), 0.2), split_size=3) == pytest.approx(1.0, abs=1e-12)
    # ADM's splits are consecutive blocks of split_size rows with a short last one (evaluator.py:187-188): 4 + 2
    # rows; the first block one-hot over 4 classes (IS 4), the last two identical rows (IS 1); mean 2.5
    rows = np.vstack([onehot[:4], np.full((2, 4), 0.25)])
    assert am.inception_score_adm(rows, split_size=4) == pytest.approx(2.5, rel=1e-9)


@pytest.mark.parametrize("n,split", [(12, 5), (23, 23), (5001, 5000), (40, 7)])
def test_is_equals_official_loop(n, split):
    probs = _probs(n, 6, seed=n)  # float32, as the TF softmax gives
    assert am.inception_score_adm(probs, split_size=split) == official_inception_score(probs, split)


def test_is_default_split_is_5000():
    probs = _probs(10001, 3, seed=3)
    assert am.inception_score_adm(probs) == official_inception_score(probs, 5000)
    assert am.inception_score_adm(probs) != official_inception_score(probs, 10001)


def test_softmax_without_bias():
    rng = np.random.default_rng(0)
    pool, w = rng.random((5, 16)).astype(np.float32), rng.normal(size=(16, 9)).astype(np.float32)
    p = am.softmax_without_bias(pool, w)
    z = pool.astype(np.float64) @ w.astype(np.float64)
    ref = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(p, ref / ref.sum(1, keepdims=True), rtol=1e-5)
    assert p.dtype == np.float32


def test_is_torch_fidelity_runs_official():
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = np.random.default_rng(1).normal(size=(53, 11)) * 2
    for shuffle in (True, False):
        theirs = isc_features_to_metric(torch.from_numpy(logits), splits=10, shuffle=shuffle, rng_seed=2020)
        ours = am.inception_score_torch_fidelity(logits, splits=10, shuffle=shuffle, rng_seed=2020)
        assert ours[0] == pytest.approx(theirs["inception_score_mean"], rel=1e-12)
        assert ours[1] == pytest.approx(theirs["inception_score_std"], rel=1e-9, abs=1e-12)


def test_is_stylegan2ada_written_out():
    probs = _probs(57, 8, seed=5, dtype=np.float64)
    num_gen, num_splits = 57, 10
    scores = []  # stylegan2-ada-pytorch metrics/inception_score.py:26-32
    for i in range(num_splits):
        part = probs[i * num_gen // num_splits: (i + 1) * num_gen // num_splits]
        kl = part * (np.log(part) - np.log(np.mean(part, axis=0, keepdims=True)))
        scores.append(np.exp(np.mean(np.sum(kl, axis=1))))
    assert am.inception_score_stylegan2ada(probs) == (float(np.mean(scores)), float(np.std(scores)))
    # its splits differ from ADM's: 10 near-equal parts versus blocks of 5000
    assert am.inception_score_stylegan2ada(probs)[0] != am.inception_score_adm(probs)


def test_is_bad_input():
    with pytest.raises(InputError):
        am.inception_score_adm(np.zeros(5))
    with pytest.raises(InputError):
        am.inception_score_adm(np.ones((3, 2)), split_size=0)


# ----------------------------------------------------------------------------------------------- FID / sFID
def test_frechet_equals_official():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(40, 6)).astype(np.float32)
    b = (rng.normal(size=(35, 6)) * 1.3 + 0.4).astype(np.float32)
    sa, sb = am.statistics_adm(a), am.statistics_adm(b)
    mu_a, sig_a = official_stats(a)
    np.testing.assert_array_equal(sa.mu, mu_a)
    np.testing.assert_array_equal(sa.sigma, sig_a)
    assert sa.mu.dtype == np.float32 and sa.sigma.dtype == np.float64  # np.mean keeps float32, np.cov is float64
    ours = am.frechet_distance_adm(sa.mu, sa.sigma, sb.mu, sb.sigma)
    assert ours == pytest.approx(float(official_frechet(*official_stats(a), *official_stats(b))), abs=1e-9)
    # hand-worked: identity covariances, means 3 apart in one coordinate: FID = 9
    assert am.frechet_distance_adm(np.zeros(3), np.eye(3), np.array([3.0, 0, 0]), np.eye(3)) == pytest.approx(9.0)


def test_frechet_eps_branch_equals_official(monkeypatch):
    # evaluator.py:97-104: a non-finite sqrtm triggers the eps offset; forced here by a sqrtm that fails once
    calls = {"n": 0}
    real = linalg.sqrtm

    def flaky(m, disp=True):
        calls["n"] += 1
        if calls["n"] % 2 == 1:
            return np.full_like(m, np.nan), 0.0
        return real(m)

    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(10, 4)), rng.normal(size=(12, 4))
    monkeypatch.setattr(linalg, "sqrtm", flaky)
    theirs = official_frechet(*official_stats(a), *official_stats(b))
    with pytest.warns(UserWarning, match="adding 1e-06 to diagonal"):
        ours = am.frechet_distance_adm(*official_stats(a), *official_stats(b))
    assert calls["n"] == 4
    assert ours == pytest.approx(float(theirs), abs=1e-9)


def test_spatial_features_take_7_channels_in_nhwc_order():
    x = np.arange(2 * 17 * 17 * 768, dtype=np.float32).reshape(2, 17, 17, 768)
    s = am.spatial_features(x)
    assert s.shape == (2, 2023)
    np.testing.assert_array_equal(s, x[..., :7].reshape(2, -1))  # evaluator.py:599 then :158
    np.testing.assert_array_equal(am.spatial_features(x.transpose(0, 3, 1, 2), layout="NCHW"), s)


# ------------------------------------------------------------------------------------------- precision / recall
def test_distances_float32_equal_cdist():
    rng = np.random.default_rng(6)
    u, v = rng.random((9, 5)), rng.random((7, 5))
    np.testing.assert_allclose(am.pairwise_distances_adm(u, v, "float32"), cdist(u, v, "sqeuclidean"), atol=1e-5)


def test_distances_float16_emulation():
    rng = np.random.default_rng(7)
    u, v = (rng.random((6, 32)) * 4).astype(np.float32), (rng.random((5, 32)) * 4).astype(np.float32)
    d = am.pairwise_distances_adm(u, v)
    assert d.dtype == np.float32
    assert np.all(d.astype(np.float16) == d)  # values are float16 numbers (evaluator.py:376-382)
    np.testing.assert_allclose(d, cdist(u, v, "sqeuclidean"), rtol=2e-2, atol=0.5)
    # overflow in float16 falls back to float32 (evaluator.py:380-384)
    big = u * 200
    np.testing.assert_allclose(am.pairwise_distances_adm(big, big[:3]),
                               am.pairwise_distances_adm(big, big[:3], "float32"))


@pytest.mark.parametrize("precision", ["float16", "float32"])
@pytest.mark.parametrize("rows,cols", [(10000, 10000), (7, 5), (4, 13)])
def test_manifold_equals_official(precision, rows, cols):
    rng = np.random.default_rng(8)
    ref = rng.random((30, 8)).astype(np.float32) * 3
    sample = (rng.random((26, 8)) * 3 + 0.5).astype(np.float32)

    def distance(u, v):
        return am.pairwise_distances_adm(u, v, precision)

    official = OfficialManifold(distance, rows, cols)
    ours = am.ManifoldEstimatorADM(rows, cols, precision=precision)
    np.testing.assert_array_equal(ours.manifold_radii(ref), official.manifold_radii(ref))
    theirs = official.compute_prec_recall(ref, sample)
    got = am.precision_recall_adm(ref, sample, ours)
    assert got == pytest.approx(theirs, abs=1e-9)
    assert 0 < got[0] < 1 and 0 < got[1] < 1  # a case where both decide something


def test_precision_recall_hand_worked():
    # 1-d points; k = 3 radii (squared) of the reference {0,1,2,3,4}: 9, 4, 4, 4, 9. Samples {10,11,12,13}: radii
    # 9, 4, 4, 9. No sample lies within a reference ball (nearest: 10 to 4 is 36 > 9): precision 0; no reference
    # within a sample ball: recall 0. Shift one sample to 5: 5 to 4 is 1 <= 9, precision 1/4.
    ref = np.arange(5, dtype=np.float32)[:, None]
    sample = np.array([10, 11, 12, 13], dtype=np.float32)[:, None]
    est = am.ManifoldEstimatorADM(precision="float32")
    np.testing.assert_array_equal(est.manifold_radii(ref)[:, 0], [9, 4, 4, 4, 9])
    assert am.precision_recall_adm(ref, sample, est) == (0.0, 0.0)
    sample[0] = 5  # radii of {5,11,12,13}: 64, 4, 4, 9 -> 5's ball (64) holds 0..4? 25 <= 64 for 0: recall 1
    assert am.precision_recall_adm(ref, sample, est) == (0.25, 1.0)


def test_precision_recall_too_few():
    with pytest.raises(InputError):
        am.precision_recall_adm(np.zeros((3, 2)), np.zeros((10, 2)))
