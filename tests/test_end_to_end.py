"""A folder scored end to end (files -> features -> FID/KID) equals torchmetrics on the same images and network."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance
from typer.testing import CliRunner

from evalsuite.cli import app
from evalsuite.runner import ScoreOptions, score
from tests.tiny_models import tiny_uint8

EXTRACTOR = "python:tests.tiny_models:tiny_uint8"


def _uint8_batch(folder):
    files = sorted(folder.glob("*.png"))
    return torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])).permute(0, 3, 1, 2)


def _torchmetrics_fid(a, b):
    metric = FrechetInceptionDistance(feature=tiny_uint8(), normalize=False)
    metric.update(_uint8_batch(b), real=True)
    metric.update(_uint8_batch(a), real=False)
    return float(metric.compute())


@pytest.mark.parametrize("workers", [0, 2])
def test_folder_fid_equals_torchmetrics(image_folders, tmp_path, workers):
    a, b = image_folders
    summary = score(f"folder:{a}", ScoreOptions(tasks=["fid"], extractor=EXTRACTOR, ref=f"folder:{b}",
                                                 batch_size=7, num_workers=workers, progress=False))
    (doc,) = summary.results
    assert doc["status"] == "ok" and doc["num_samples"] == 40
    # torchmetrics accumulates float64 sums of the same float32 features and uses eigvals: agree to 1e-6 relative
    assert doc["metrics"]["fid"] == pytest.approx(_torchmetrics_fid(a, b), rel=1e-6)
    assert doc["metrics"]["fid"] > 1.0  # the two folders differ


def test_kid_equals_torchmetrics_on_whole_sets(image_folders):
    """With one subset as large as the sets, KID is deterministic: compare with torchmetrics' KID."""
    a, b = image_folders
    summary = score(f"folder:{a}", ScoreOptions.with_legacy(tasks=["kid"], extractor=EXTRACTOR, ref=f"folder:{b}",
                                                 kid_subsets=1, kid_subset_size=40, num_workers=0, progress=False))
    (doc,) = summary.results
    metric = KernelInceptionDistance(feature=tiny_uint8(), subsets=1, subset_size=40, normalize=False)
    metric.update(_uint8_batch(b), real=True)
    metric.update(_uint8_batch(a), real=False)
    mean, _ = metric.compute()
    # torchmetrics evaluates the cubic kernel in float32 (we use float64): agreement to 2e-4 relative
    assert doc["metrics"]["kid"] == pytest.approx(float(mean), rel=2e-4)


def test_second_run_reuses_feature_cache_and_gives_same_numbers(image_folders):
    a, b = image_folders
    opts = dict(tasks=["fid", "kid"], extractor=EXTRACTOR, ref=f"folder:{b}", num_workers=0, progress=False)
    first = score(f"folder:{a}", ScoreOptions.with_legacy(**opts))
    second = score(f"folder:{a}", ScoreOptions.with_legacy(**opts))
    assert first.results[0]["details"]["n_computed_features"] == 40
    assert second.results[0]["details"]["n_cached_features"] == 40
    assert second.results[0]["details"]["n_computed_features"] == 0
    assert [d["metrics"] for d in first.results] == [d["metrics"] for d in second.results]
    assert first.run_id != second.run_id


def test_provenance_is_complete(image_folders):
    a, b = image_folders
    (doc,) = score(f"folder:{a}", ScoreOptions(tasks=["fid"], extractor=EXTRACTOR, ref=f"folder:{b}", seed=3,
                                                num_workers=0, progress=False)).results
    prov = doc["provenance"]
    for key in ("evalsuite_version", "task_version", "weights_sha256", "reference_stats", "seeds",
                "preprocessing", "hardware", "wall_time_s"):
        assert prov[key] not in (None, {}, []), key
    assert prov["seeds"]["sample_seed_start"] == 3
    assert prov["preprocessing"][EXTRACTOR] == "none:uint8"
    assert list(prov["weights_sha256"].values())[0] == doc["provenance"]["extractors"][EXTRACTOR]["weights_sha256"]
    assert prov["reference_stats"][0]["n"] == 40


def test_cli_score_json(image_folders, tmp_path):
    a, b = image_folders
    result = CliRunner().invoke(app, ["score", f"folder:{a}", "--tasks", "fid,kid", "--extractor", EXTRACTOR,
                                      "--ref", f"folder:{b}", "--workers", "0", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    metrics = {r["metric"]: r["value"] for r in data["results"]}
    assert metrics["fid"] == pytest.approx(_torchmetrics_fid(a, b), rel=1e-6)
    assert set(metrics) == {"fid", "kid", "kid_std"}
    shown = CliRunner().invoke(app, ["runs", "show", data["run_id"], "--json"])
    assert shown.exit_code == 0
    assert {d["task"] for d in json.loads(shown.stdout)} == {"fid", "kid"}


def test_fid_and_kid_share_one_feature_pass(image_folders):
    a, b = image_folders
    fid, kid = score(f"folder:{a}", ScoreOptions(tasks=["fid", "kid"], extractor=EXTRACTOR, ref=f"folder:{b}",
                                                 num_workers=0, progress=False)).results
    assert fid["details"]["n_computed_features"] == 40 and kid["status"] == "ok"


def test_fast_mode_is_opt_in_measured_and_cached_apart(image_folders):
    a, b = image_folders
    opts = dict(tasks=["fid"], extractor=EXTRACTOR, ref=f"folder:{b}", num_workers=0, progress=False)
    (exact,) = score(f"folder:{a}", ScoreOptions.with_legacy(**opts)).results
    (fast,) = score(f"folder:{a}", ScoreOptions.with_legacy(**opts, fast=True)).results
    mode = fast["provenance"]["fast_mode"][EXTRACTOR]
    assert mode["checked_files"] == 40 and 0 < mode["max_feature_deviation_relative"] < 0.1  # bf16 on the CPU
    assert fast["details"]["n_cached_features"] == 0  # never served from the exact-mode cache
    assert exact["provenance"]["fast_mode"] is None
    assert fast["metrics"]["fid"] == pytest.approx(exact["metrics"]["fid"], rel=0.2)


def test_in_process_loading_gives_the_batches_in_order(tmp_path):
    """Without worker processes, each batch's uncached files are read by threads; the batches, their items, cached
    features and errors are those of a worker-less DataLoader, in the same order."""
    from torch.utils.data import DataLoader

    from evalsuite import features
    from evalsuite.preprocess import Preprocessing

    files = []
    for i in range(11):
        path = tmp_path / f"{i:02d}.png"
        if i == 4:
            path.write_bytes(b"not an image")
        else:
            Image.fromarray(np.full((5 + i, 6, 3), i, dtype=np.uint8)).save(path)
        files.append(path)
    cache = features.FeatureCache({"dim": 3}, tmp_path / "cache")
    cache.put(hashlib.sha256(files[6].read_bytes()).hexdigest(), np.ones(3, np.float32))  # one cached file
    dataset = features._FileDataset(files, Preprocessing(resize="none", input_dtype="uint8"), cache)
    threaded = list(features._threaded_batches(dataset, 4))
    serial = list(DataLoader(dataset, batch_size=4, num_workers=0, collate_fn=features._collate))
    assert [len(b) for b in threaded] == [4, 4, 3]
    for got, want in zip(threaded, serial, strict=True):
        assert [item["index"] for item in got] == [item["index"] for item in want]
        for a, b in zip(got, want):
            assert a.keys() == b.keys() and a.get("sha") == b.get("sha") and a.get("error") == b.get("error")
            for field in ("input", "feature"):
                assert (field in a) == (field in b) and (field not in a or np.array_equal(a[field], b[field]))
    assert "error" in threaded[1][0] and "feature" in threaded[1][2]
