"""Streaming float64 statistics against numpy.cov; batch-size independence; merging parts."""

from __future__ import annotations

import numpy as np
import pytest

from evalsuite.stats import StreamingStats


@pytest.fixture
def feats():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(301, 24)) * rng.uniform(0.1, 3, 24) + rng.uniform(-2, 2, 24)).astype(np.float32)


def _stream(x, batch):
    s = StreamingStats(x.shape[1])
    for i in range(0, len(x), batch):
        s.update(x[i:i + batch])
    return s


def test_matches_numpy_cov(feats):
    s = _stream(feats, 50)
    x = feats.astype(np.float64)
    np.testing.assert_allclose(s.mean, x.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.cov(True), np.cov(x, rowvar=False), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s.cov(False), np.cov(x, rowvar=False, bias=True), rtol=1e-10, atol=1e-12)
    assert s.n == len(feats)


@pytest.mark.parametrize("batch", [1, 7, 64, 301, 1000])
def test_independent_of_batch_size(feats, batch):
    ref = _stream(feats, 301)
    s = _stream(feats, batch)
    np.testing.assert_allclose(s.cov(), ref.cov(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(s.mean, ref.mean, rtol=1e-13, atol=1e-14)


def test_merged_parts_equal_whole(feats):
    whole = _stream(feats, 32)
    parts = [_stream(feats[:100], 10), _stream(feats[100:250], 33), _stream(feats[250:], 5)]
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert merged.n == whole.n
    np.testing.assert_allclose(merged.cov(), whole.cov(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-13, atol=1e-14)


def test_shape_errors():
    s = StreamingStats(4)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        s.update(np.zeros((3, 5)))
    with pytest.raises(ValueError):
        _ = s.mean
    s.update(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="more than 1"):
        s.cov()
    with pytest.raises(ValueError, match="dimension"):
        s.merge(StreamingStats(5))
