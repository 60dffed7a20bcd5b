"""Reference statistics: build, list, show, import (clean-fid format), fd between files, compatibility checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from evalsuite import refstats
from evalsuite.catalog import extractor_key
from evalsuite.cli import app
from evalsuite.errors import IncompatibleStatsError
from evalsuite.imageio import list_images
from evalsuite.metrics import frechet_distance
from evalsuite.runner import ScoreOptions, score
from evalsuite.stats import StreamingStats
from tests.conftest import write_images
from tests.tiny_models import tiny_uint8

runner = CliRunner()
TINY_UINT8 = "python:tests.tiny_models:tiny_uint8"
TINY_CLEAN = "python:tests.tiny_models:tiny_clean"


def _tiny_features(folder) -> np.ndarray:
    """The tiny extractor's features of a folder's images, computed here without evalsuite's engine."""
    net = tiny_uint8().eval()
    imgs = np.stack([np.asarray(Image.open(p).convert("RGB"), dtype=np.uint8) for p in list_images(folder)])
    with torch.inference_mode():
        feats = net(torch.from_numpy(imgs).permute(0, 3, 1, 2))
    return feats.numpy().astype(np.float64)


def _assert_close(actual, expected, rtol=1e-6):
    """Relative tolerance against the array's scale (entries near zero are judged against the largest one)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def _build(name, folder, extractor=TINY_UINT8):
    result = runner.invoke(app, ["ref", "build", name, "--from", str(folder), "--extractor", extractor,
                                 "--workers", "0", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _stats_file(path, feats: np.ndarray, key: dict, unbiased: bool = True):
    """An evalsuite-format statistics file (mu, sigma, n, meta) from raw features."""
    stream = StreamingStats(feats.shape[1])
    stream.update(feats)
    ref = refstats.from_stream(path.stem, stream, key, source="test", unbiased=unbiased)
    refstats.save_npz(ref, path)
    return path


def _key(extractor="python:test-a", dim=16):
    return {"extractor": extractor, "weights_sha256": "ab" * 32, "preprocessing": "none:uint8", "dim": dim}


def test_build_list_show_and_values(image_folders):
    folder, _ = image_folders
    entry = _build("tinyref", folder)
    assert entry["name"] == "tinyref" and entry["n"] == 40
    assert entry["extractor"] == TINY_UINT8

    listed = runner.invoke(app, ["ref", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["tinyref"]["extractor"] == TINY_UINT8
    assert rows["tinyref"]["n"] == 40
    assert rows["tinyref"]["dim"] == 16

    shown = runner.invoke(app, ["ref", "show", "tinyref", "--json"])
    assert shown.exit_code == 0, shown.output
    info = json.loads(shown.stdout)
    assert info["name"] == "tinyref"
    assert info["n"] == 40
    assert info["dim"] == 16
    assert info["has_features"] is True
    assert info["extractor"] == TINY_UINT8
    assert info["preprocessing"] == "none:uint8"
    assert info["covariance"] == "unbiased"

    feats = _tiny_features(folder)
    ref = refstats.load("tinyref")
    assert ref.n == 40 and ref.dim == 16
    _assert_close(ref.mu, feats.mean(axis=0))
    _assert_close(ref.sigma, np.cov(feats, rowvar=False))
    _assert_close(ref.covariance(unbiased=False), np.cov(feats, rowvar=False, bias=True))
    assert ref.feats.shape == (40, 16)
    _assert_close(ref.feats, feats)


def test_rebuild_replaces_entry(image_folders):
    a, b = image_folders
    _build("tinyref", a)
    _build("tinyref", b)
    names = [e["name"] for e in refstats.entries()]
    assert names.count("tinyref") == 1
    _assert_close(refstats.load("tinyref").mu, _tiny_features(b).mean(axis=0))


def test_import_clean_fid_npz(tmp_path):
    key = extractor_key("inception")
    dim = key["dim"]
    rng = np.random.default_rng(0)
    mu = rng.normal(size=dim)
    basis = rng.normal(size=(dim, 4))
    sigma = basis @ basis.T + np.eye(dim) * 0.1
    path = tmp_path / "cleanfid_stats.npz"
    np.savez(path, mu=mu, sigma=sigma)  # clean-fid / pytorch-fid layout: nothing but mu and sigma

    result = runner.invoke(app, ["ref", "import", "imported", str(path), "--extractor", "inception",
                                 "--source", "test-set"])
    assert result.exit_code == 0, result.output

    ref = refstats.load("imported")
    np.testing.assert_array_equal(ref.mu, mu)
    np.testing.assert_array_equal(ref.sigma, sigma)
    assert ref.n is None
    assert ref.feats is None
    for field in ("extractor", "weights_sha256", "preprocessing", "dim"):
        assert ref.meta[field] == key[field]
    assert ref.meta["extractor"] == "inception-2015-12-05/clean"
    assert ref.meta["covariance"] == "unbiased"
    assert ref.meta["source"] == "test-set"
    entry = {e["name"]: e for e in refstats.entries()}["imported"]
    assert entry["extractor"] == key["extractor"]


def test_import_wrong_dimension_is_refused(tmp_path):
    path = tmp_path / "small.npz"
    np.savez(path, mu=np.zeros(16), sigma=np.eye(16))
    result = runner.invoke(app, ["ref", "import", "small", str(path), "--extractor", "inception"])
    assert result.exit_code == 2
    assert "16" in result.stderr and "2048" in result.stderr
    assert "small" not in [e["name"] for e in refstats.entries()]


def test_fd_between_files(tmp_path):
    rng = np.random.default_rng(3)
    fa = rng.normal(size=(50, 16))
    fb = rng.normal(0.5, 1.3, size=(60, 16))
    a = _stats_file(tmp_path / "a.npz", fa, _key())
    b = _stats_file(tmp_path / "b.npz", fb, _key())

    result = runner.invoke(app, ["fd", str(a), str(b), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    expected = frechet_distance(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False))
    assert out["fd"] == pytest.approx(expected, rel=1e-9)
    assert out["dim"] == 16 and out["n_a"] == 50 and out["n_b"] == 60
    assert out["covariance"] == "unbiased"

    result = runner.invoke(app, ["fd", str(a), str(b), "--json", "--biased-cov"])
    assert result.exit_code == 0, result.output
    biased = json.loads(result.stdout)
    expected_biased = frechet_distance(fa.mean(0), np.cov(fa, rowvar=False, bias=True),
                                       fb.mean(0), np.cov(fb, rowvar=False, bias=True))
    assert biased["fd"] == pytest.approx(expected_biased, rel=1e-9)
    assert biased["covariance"] == "biased"
    assert biased["fd"] != pytest.approx(out["fd"], rel=1e-6)


def test_fd_of_biased_file_converts_to_unbiased(tmp_path):
    rng = np.random.default_rng(4)
    fa, fb = rng.normal(size=(30, 8)), rng.normal(1.0, 1.0, size=(30, 8))
    a = _stats_file(tmp_path / "a.npz", fa, _key(dim=8), unbiased=False)
    b = _stats_file(tmp_path / "b.npz", fb, _key(dim=8), unbiased=True)
    out = refstats.distance(str(a), str(b))
    expected = frechet_distance(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False))
    assert out["fd"] == pytest.approx(expected, rel=1e-9)


def test_fd_matches_library_on_clean_fid_files(tmp_path):
    rng = np.random.default_rng(5)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    s1, s2 = np.cov(rng.normal(size=(20, 8)), rowvar=False), np.cov(rng.normal(size=(20, 8)), rowvar=False)
    np.savez(tmp_path / "a.npz", mu=mu1, sigma=s1)
    np.savez(tmp_path / "b.npz", mu=mu2, sigma=s2)
    result = runner.invoke(app, ["fd", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["fd"] == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=1e-12)
    # without N the covariance cannot be converted: refused with a fix, not silently wrong
    result = runner.invoke(app, ["fd", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--biased-cov"])
    assert result.exit_code == 2
    assert "does not record N" in result.stderr


def test_fd_refuses_mismatched_extractors(tmp_path):
    rng = np.random.default_rng(6)
    fa, fb = rng.normal(size=(20, 16)), rng.normal(size=(20, 16))
    a = _stats_file(tmp_path / "a.npz", fa, _key("python:net-one"))
    b = _stats_file(tmp_path / "b.npz", fb, _key("python:net-two"))

    result = runner.invoke(app, ["fd", str(a), str(b), "--json"])
    assert result.exit_code == 2
    assert "extractor" in result.stderr
    assert "python:net-one" in result.stderr and "python:net-two" in result.stderr
    assert "--allow-mismatch" in result.stderr
    assert result.stdout == ""

    result = runner.invoke(app, ["fd", str(a), str(b), "--json", "--allow-mismatch"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["mismatched_fields"] == ["extractor"]
    expected = frechet_distance(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False))
    assert out["fd"] == pytest.approx(expected, rel=1e-9)


def test_fd_refuses_different_dimensions(tmp_path):
    rng = np.random.default_rng(7)
    a = _stats_file(tmp_path / "a.npz", rng.normal(size=(20, 16)), _key(dim=16))
    b = _stats_file(tmp_path / "b.npz", rng.normal(size=(20, 8)), _key(dim=8))
    result = runner.invoke(app, ["fd", str(a), str(b), "--allow-mismatch"])
    assert result.exit_code == 2
    assert "dimension" in result.stderr


def test_score_refuses_reference_of_another_extractor(tmp_path, image_folders):
    ref_folder, sample_folder = image_folders
    _build("uint8ref", ref_folder, TINY_UINT8)
    options = ScoreOptions(tasks=["fid"], extractor=TINY_CLEAN, ref="uint8ref", num_workers=0, progress=False,
                           device="cpu")
    with pytest.raises(IncompatibleStatsError) as info:
        score(f"folder:{sample_folder}", options)
    message = info.value.message
    assert "uint8ref" in message
    assert f"extractor: reference '{TINY_UINT8}' vs run '{TINY_CLEAN}'" in message
    assert "preprocessing" in message
    assert "weights_sha256" not in message  # same seed, same weights: only what differs is named
    assert "evalsuite ref build" in info.value.fix


def test_score_accepts_reference_of_the_same_extractor(tmp_path, image_folders):
    ref_folder, sample_folder = image_folders
    _build("uint8ref", ref_folder, TINY_UINT8)
    options = ScoreOptions(tasks=["fid"], extractor=TINY_UINT8, ref="uint8ref", num_workers=0, progress=False,
                           device="cpu")
    summary = score(f"folder:{sample_folder}", options)
    (doc,) = summary.results
    assert doc["status"] == "ok"
    fa, fb = _tiny_features(sample_folder), _tiny_features(ref_folder)
    expected = frechet_distance(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False))
    assert doc["metrics"]["fid"] == pytest.approx(expected, rel=1e-5)


def test_build_from_empty_folder_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["ref", "build", "x", "--from", str(tmp_path / "empty"), "--extractor", TINY_UINT8,
                                 "--workers", "0", "--device", "cpu"])
    assert result.exit_code == 2
    assert "holds no images" in result.stderr


def test_build_needs_two_images(tmp_path):
    write_images(tmp_path / "one", 1)
    result = runner.invoke(app, ["ref", "build", "x", "--from", str(tmp_path / "one"), "--extractor", TINY_UINT8,
                                 "--workers", "0", "--device", "cpu"])
    assert result.exit_code == 2
    assert "at least 2" in result.stderr
