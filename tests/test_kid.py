"""KID against clean-fid's kernel_distance and a hand-written double loop, on cases where subsets are whole sets."""

from __future__ import annotations

import numpy as np
import pytest

from evalsuite.metrics import kernel_distance


def _mmd_loops(x, y):
    """Unbiased MMD² with k(a, b) = (a·b/d + 1)³, written out as explicit sums (independent of the vector code)."""
    m, d = x.shape
    k = lambda a, b: (float(a @ b) / d + 1.0) ** 3  # noqa: E731
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return kxx + kyy - 2 * kxy


def test_whole_set_equals_hand_computed():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 5)), rng.normal(0.5, 1.2, size=(12, 5))
    mean, std = kernel_distance(x, y, num_subsets=3, subset_size=100, seed=0)
    assert mean == pytest.approx(_mmd_loops(x, y), rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)  # every subset is the whole set


def test_matches_cleanfid_when_subsets_are_whole_sets():
    from cleanfid.fid import kernel_distance as cleanfid_kid

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 16)), rng.normal(0.2, 1.0, size=(40, 16))
    ours, _ = kernel_distance(x, y, num_subsets=2, subset_size=1000, seed=5)
    assert ours == pytest.approx(float(cleanfid_kid(x, y, num_subsets=2, max_subset_size=1000)), rel=1e-10)


def test_matches_torch_fidelity_when_subsets_are_whole_sets():
    """torch-fidelity's `kid_features_to_metric` (its own seeded subsets, kernel_mmd) on the same features."""
    import torch
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 16)), rng.normal(0.3, 1.1, size=(30, 16))
    ours, _ = kernel_distance(x, y, num_subsets=4, subset_size=30, seed=0)
    theirs = kid_features_to_metric(torch.from_numpy(x), torch.from_numpy(y), kid_subsets=4, kid_subset_size=30,
                                    verbose=False)
    assert ours == pytest.approx(theirs[KEY_METRIC_KID_MEAN], rel=1e-10)


def test_seeded_and_reported_spread():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(300, 8)), rng.normal(0.3, 1.0, size=(300, 8))
    a = kernel_distance(x, y, num_subsets=20, subset_size=50, seed=11)
    b = kernel_distance(x, y, num_subsets=20, subset_size=50, seed=11)
    c = kernel_distance(x, y, num_subsets=20, subset_size=50, seed=12)
    assert a == b and a != c
    assert a[1] > 0
    full, _ = kernel_distance(x, y, num_subsets=1, subset_size=300, seed=0)
    assert abs(a[0] - full) < 4 * a[1]  # subset estimates scatter around the whole-set value


def test_too_few_samples():
    with pytest.raises(ValueError, match="at least 2"):
        kernel_distance(np.zeros((1, 3)), np.zeros((5, 3)))
