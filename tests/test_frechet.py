"""Fréchet distance against scipy `sqrtm` and clean-fid's `frechet_distance` (independent references)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from evalsuite.metrics import frechet_distance


def _scipy_fd(mu1, s1, mu2, s2):
    """The textbook formula with scipy's sqrtm, as pytorch-fid computes it (real part)."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def _stats(rng, n, d, shift=0.0):
    mixing = rng.normal(size=(d, d)) / np.sqrt(d)
    x = rng.normal(size=(n, d)) @ mixing + shift
    return x.mean(0), np.cov(x, rowvar=False)


@pytest.mark.parametrize("d", [16, 128])
def test_full_rank_matches_scipy_and_cleanfid(d):
    from cleanfid.fid import frechet_distance as cleanfid_fd

    rng = np.random.default_rng(d)
    mu1, s1 = _stats(rng, 4 * d, d)
    mu2, s2 = _stats(rng, 4 * d, d, shift=0.3)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(_scipy_fd(mu1, s1, mu2, s2), rel=1e-10)
    assert ours == pytest.approx(float(cleanfid_fd(mu1, s1, mu2, s2)), rel=1e-10)


@pytest.mark.parametrize("d", [16, 128])
def test_full_rank_matches_pytorch_fid_and_torch_fidelity(d):
    """pytorch-fid 0.3.0 `fid_score.calculate_frechet_distance` and torch-fidelity's `fid_statistics_to_metric`,
    run on the same statistics."""
    from tests.official import official

    pytorch_fid = official("pytorch_fid.fid_score")
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

    rng = np.random.default_rng(d + 1)
    mu1, s1 = _stats(rng, 4 * d, d)
    mu2, s2 = _stats(rng, 4 * d, d, shift=0.3)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(float(pytorch_fid.calculate_frechet_distance(mu1, s1, mu2, s2)), rel=1e-10)
    fidelity = fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, verbose=False)
    assert ours == pytest.approx(float(fidelity[KEY_METRIC_FID]), rel=1e-10)


def test_rank_deficient_is_real_and_close_to_scipy():
    """N < d: singular covariances. sqrtm's result is only accurate to ~1e-8 here (field notes); ours is real."""
    rng = np.random.default_rng(7)
    mu1, s1 = _stats(rng, 20, 64)
    mu2, s2 = _stats(rng, 25, 64, shift=0.5)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert isinstance(ours, float) and np.isfinite(ours)
    assert ours == pytest.approx(_scipy_fd(mu1, s1, mu2, s2), rel=1e-6)


def test_identical_statistics_give_zero_not_negative():
    rng = np.random.default_rng(3)
    mu, s = _stats(rng, 50, 32)
    value = frechet_distance(mu, s, mu, s)
    assert 0.0 <= value < 1e-9


def test_one_dimensional_closed_form():
    """d = 1: (m1 − m2)² + (σ1 − σ2)², by hand."""
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]])) == \
        pytest.approx((1 - 3) ** 2 + (2 - 3) ** 2, rel=1e-14)


def test_mismatched_shapes_and_nan_are_errors():
    with pytest.raises(ValueError, match="mismatched"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    bad = np.eye(3)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.zeros(3), bad, np.zeros(3), np.eye(3))
