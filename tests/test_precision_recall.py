"""Improved precision/recall against torch-fidelity's implementation, a brute-force loop, and known cases; the task
shares the run's one feature pass with FID and KID when --pr-extractor names the same network (VGG-16 by default:
tests/test_vgg16_prc.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evalsuite import metrics
from evalsuite.metrics import knn_radii, precision_recall
from evalsuite.runner import ScoreOptions, score
from tests.official import official

EXTRACTOR = "python:tests.tiny_models:tiny_uint8"


def _brute_force(fake, real, k):
    """Kynkäänniemi et al.'s definition written out point by point (independent of the blockwise code)."""
    def radius(points, i):
        others = sorted(float(np.linalg.norm(points[i] - points[j])) for j in range(len(points)) if j != i)
        return others[k - 1]

    def covered(x, support):
        radii = [radius(support, j) for j in range(len(support))]
        return any(np.linalg.norm(x - support[j]) <= radii[j] for j in range(len(support)))

    precision = np.mean([covered(x, real) for x in fake])
    recall = np.mean([covered(y, fake) for y in real])
    return precision, recall


@pytest.mark.parametrize("k", [1, 3, 5])
def test_matches_brute_force(k):
    rng = np.random.default_rng(k)
    fake, real = rng.normal(0.3, 1.0, size=(23, 4)), rng.normal(size=(19, 4))
    ours = precision_recall(fake, real, k)
    p, r = _brute_force(fake, real, k)
    assert (ours["precision"], ours["recall"]) == (pytest.approx(p, abs=1e-12), pytest.approx(r, abs=1e-12))


@pytest.mark.parametrize("shift", [0.0, 0.7, 3.0])
def test_matches_torch_fidelity(shift):
    """torch-fidelity's prc on the same features (generated = input1, real = input2). It uses float32 cdist, we use
    float64: a point exactly on a ball's boundary could flip, which random features never hit; agreement exact."""
    prc = official("torch_fidelity.metric_prc")
    calculate_precision_recall_full, calculate_precision_recall_part = (prc.calculate_precision_recall_full,
                                                                        prc.calculate_precision_recall_part)

    rng = np.random.default_rng(7)
    fake = rng.normal(shift, 1.0, size=(300, 64)).astype(np.float32)
    real = rng.normal(0.0, 1.2, size=(250, 64)).astype(np.float32)
    ours = precision_recall(fake, real, 3)
    for fn in (calculate_precision_recall_full, calculate_precision_recall_part):
        p, r = fn(torch.from_numpy(fake), torch.from_numpy(real), 3, 10000)
        assert ours["precision"] == pytest.approx(p, abs=1e-7) and ours["recall"] == pytest.approx(r, abs=1e-7)
    f_expected = 2 * p * r / max(1e-5, p + r)
    assert ours["f_score"] == pytest.approx(f_expected, abs=1e-6)


def test_known_cases():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 8))
    same = precision_recall(real, real, 3)
    assert same["precision"] == 1.0 and same["recall"] == 1.0  # every point lies in its own ball
    far = precision_recall(real + 100.0, real, 3)
    assert far["precision"] == 0.0 and far["recall"] == 0.0
    # a generator that collapses onto a few real points: high precision, low recall
    collapsed = np.repeat(real[:5], 40, axis=0) + 1e-6 * rng.normal(size=(200, 8))
    mode = precision_recall(collapsed, real, 3)
    assert mode["precision"] == 1.0 and mode["recall"] < 0.2


def test_blocks_do_not_change_the_answer(monkeypatch):
    rng = np.random.default_rng(4)
    fake, real = rng.normal(0.2, 1.0, size=(120, 16)), rng.normal(size=(100, 16))
    whole = precision_recall(fake, real, 3)
    monkeypatch.setattr(metrics, "_row_chunk", lambda n_cols, budget_bytes=0: 7)  # tiny blocks
    assert precision_recall(fake, real, 3) == whole
    assert np.array_equal(knn_radii(real, 3), knn_radii(real, 3))


def test_bad_input():
    with pytest.raises(ValueError, match="more than 3 samples"):
        precision_recall(np.zeros((10, 2)), np.zeros((3, 2)), 3)
    with pytest.raises(ValueError, match="equal d"):
        precision_recall(np.zeros((10, 2)), np.zeros((10, 3)), 3)


def _count_passes(monkeypatch) -> list[str]:
    from evalsuite import context

    passes: list[str] = []
    real = context.extract

    def counting(files, ext, **kw):
        passes.append(ext.id)
        return real(files, ext, **kw)

    monkeypatch.setattr(context, "extract", counting)
    return passes


def test_task_shares_the_feature_pass_and_equals_the_metric(image_folders, monkeypatch):
    from evalsuite.extractors import build
    from evalsuite.features import extract

    a, b = image_folders
    passes = _count_passes(monkeypatch)
    docs = score(f"folder:{a}", ScoreOptions.with_legacy(tasks=["fid", "kid", "precision-recall"], extractor=EXTRACTOR,
                                             pr_extractor=EXTRACTOR, ref=f"folder:{b}", num_workers=0,
                                             progress=False)).results
    fid, kid, pr = docs
    assert fid["details"]["n_computed_features"] == 40 and kid["status"] == "ok" and pr["status"] == "ok"
    assert len(passes) == 2  # samples and reference, once each for all three tasks
    assert pr["metrics"].keys() == {"precision", "recall", "f_score"} and pr["details"]["k"] == 3
    assert pr["protocol"] == f"prc-{EXTRACTOR}-k3" and pr["task_version"] == "2"
    ext = build(EXTRACTOR)
    fa = extract(sorted(a.glob("*.png")), ext, num_workers=0, keep_features=True, use_cache=False, progress=False)
    fb = extract(sorted(b.glob("*.png")), ext, num_workers=0, keep_features=True, use_cache=False, progress=False)
    assert pr["metrics"] == pytest.approx(precision_recall(fa.features, fb.features, 3), abs=1e-12)


def test_task_uses_its_own_extractor_not_the_fid_one(image_folders, monkeypatch):
    """--pr-extractor differs from --extractor: a second feature pass in the precision/recall space."""
    from evalsuite.extractors import build
    from evalsuite.features import extract

    a, b = image_folders
    other = "python:tests.tiny_models:tiny_clean"
    passes = _count_passes(monkeypatch)
    fid, pr = score(f"folder:{a}", ScoreOptions.with_legacy(tasks=["fid", "precision-recall"], extractor=EXTRACTOR,
                                                pr_extractor=other, ref=f"folder:{b}", num_workers=0,
                                                progress=False)).results
    assert fid["status"] == pr["status"] == "ok" and len(passes) == 4
    assert pr["details"]["feature_space"] == other and pr["provenance"]["preprocessing"][other].startswith("pil")
    ext = build(other)
    fa, fb = (extract(sorted(d.glob("*.png")), ext, num_workers=0, keep_features=True, use_cache=False,
                      progress=False).features for d in (a, b))
    assert pr["metrics"] == pytest.approx(precision_recall(fa, fb, 3), abs=1e-12)


def test_task_refuses_too_few_samples_and_skips_without_reference_features(image_folders, tmp_path):
    from evalsuite import refstats
    from evalsuite.errors import InputError
    from evalsuite.extractors import build
    from evalsuite.features import extract

    a, b = image_folders
    with pytest.raises(InputError, match="--pr-k"):
        score(f"folder:{a}", ScoreOptions.with_legacy(tasks=["precision-recall"], pr_extractor=EXTRACTOR,
                                                      ref=f"folder:{b}",
                                          pr_neighbourhood=40, num_workers=0, progress=False))
    ext = build(EXTRACTOR)
    feats = extract(sorted(b.glob("*.png")), ext, num_workers=0, progress=False)
    npz = tmp_path / "mu_sigma_only.npz"
    refstats.save_npz(refstats.from_stream("b", feats.stats, ext.key, source="test"), npz)
    (doc,) = score(f"folder:{a}", ScoreOptions.with_legacy(tasks=["precision-recall"], pr_extractor=EXTRACTOR,
                                                           ref=str(npz),
                                               num_workers=0, progress=False)).results
    assert doc["status"] == "skipped" and "precision/recall needs them" in doc["reason"]
