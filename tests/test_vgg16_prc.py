"""Precision/recall in torch-fidelity's feature space (VGG-16 fc2_relu), checked by running torch-fidelity itself.

The real vgg16-397923af.pth cannot be downloaded here, so a VGG-16 of the real architecture with torchvision's
random init (fixed seed; a fixture, never offered as weights) is saved once and fed to both: our `vgg16` extractor
(through the weights store) and torch-fidelity's FeatureExtractorVGG16 (its `feature_extractor_weights_path`).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evalsuite.runner import ScoreOptions, score
from tests.conftest import install_standin_weights, write_images
from tests.official import official

FAKE_SIZE, REAL_SIZE = (40, 56), (250, 230)  # (h, w): one folder upsampled to 224, one downsampled, non-square


@pytest.fixture(scope="module")
def random_vgg16(tmp_path_factory):
    """torchvision VGG-16, random init with a fixed seed, saved as a state dict (what torch-fidelity loads)."""
    import torchvision

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vgg") / "vgg16-397923af.pth"
    torch.save(torchvision.models.vgg16().state_dict(), path)
    return path


@pytest.fixture
def folders(tmp_path):
    a, b = tmp_path / "fake", tmp_path / "real"
    write_images(a, 12, size=FAKE_SIZE, seed=1)
    write_images(b, 12, size=REAL_SIZE, seed=2, offset=100.0)  # recall 0.5 here
    return a, b


@pytest.mark.parametrize("shape", [(17, 33), (300, 260), (224, 224), (500, 225)])
def test_tf1_bilinear_is_torch_fidelitys_resize(shape):
    """Bit-exact against torch-fidelity 0.4's interpolate_bilinear_2d_like_tensorflow1x (as its VGG-16 calls it)."""
    from evalsuite.extractors import key_of
    from evalsuite.preprocess import Preprocessing

    tf1 = official("torch_fidelity.interpolate_compat_tensorflow").interpolate_bilinear_2d_like_tensorflow1x
    img = np.random.default_rng(shape[0]).integers(0, 256, (*shape, 3), dtype=np.uint8)
    ours = Preprocessing("tf1-bilinear", (224, 224))(img)
    theirs = tf1(torch.from_numpy(img).permute(2, 0, 1)[None].to(torch.float32), size=(224, 224),
                 align_corners=False)[0].permute(1, 2, 0).numpy()
    assert ours.dtype == np.float32 and np.array_equal(ours, theirs)
    assert key_of("vgg16")["preprocessing"] == "tf1-bilinear@224x224:float255"


def test_vgg16_precision_recall_matches_torch_fidelity(folders, random_vgg16, monkeypatch):
    """Same weights, same PNG folders: torch-fidelity's calculate_metrics(prc=True) (generated = input1, real =
    input2) against our default precision-recall task. Features agree to float32 rounding (rtol 1e-4; our graph
    may run channels_last / oneDNN); precision, recall and F agree exactly (abs 1e-9), no ball boundary being
    that close."""
    tf_metrics = official("torch_fidelity.metrics")
    from torch_fidelity.datasets import ImagesPathDataset
    from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16

    from evalsuite.extractors import build
    from evalsuite.features import extract

    a, b = folders
    install_standin_weights(monkeypatch, "vgg16-imagenet1k-v1", random_vgg16)
    (doc,) = score(f"folder:{a}", ScoreOptions(tasks=["precision-recall"], ref=f"folder:{b}", num_workers=0,
                                               batch_size=8, progress=False)).results
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["protocol"] == "prc-vgg16-fc2relu-k3" and doc["task_version"] == "2"
    assert doc["provenance"]["preprocessing"]["vgg16"] == "tf1-bilinear@224x224:float255"

    theirs = tf_metrics.calculate_metrics(input1=str(a), input2=str(b), prc=True, cuda=False, cache=False,
                                          verbose=False, batch_size=6, save_cpu_ram=True, feature_extractor="vgg16",
                                          feature_extractor_weights_path=str(random_vgg16))
    assert 0.0 < theirs["recall"] < 1.0  # not a degenerate case
    for ours_key, their_key in (("precision", "precision"), ("recall", "recall"), ("f_score", "f_score")):
        assert doc["metrics"][ours_key] == pytest.approx(theirs[their_key], abs=1e-9)

    net = FeatureExtractorVGG16("vgg16", ["fc2_relu"], feature_extractor_weights_path=str(random_vgg16))
    files = sorted(a.glob("*.png"))
    with torch.inference_mode():
        their_feats = net(torch.stack([ImagesPathDataset(files)[i] for i in range(len(files))]))[0].numpy()
    ours = extract(files, build("vgg16"), num_workers=0, keep_features=True, use_cache=False, progress=False)
    assert ours.features.shape == their_feats.shape == (12, 4096)
    assert np.abs(their_feats).max() > 0
    np.testing.assert_allclose(ours.features, their_feats, rtol=1e-4, atol=1e-4 * np.abs(their_feats).max())


def test_missing_vgg16_weights_skip_with_the_fix(image_folders):
    a, b = image_folders
    (doc,) = score(f"folder:{a}", ScoreOptions(tasks=["precision-recall"], ref=f"folder:{b}", num_workers=0,
                                               progress=False)).results
    assert doc["status"] == "skipped"
    assert "evalsuite weights fetch vgg16-imagenet1k-v1" in doc["fix"]
    assert "evalsuite weights import vgg16-imagenet1k-v1" in doc["fix"]


def test_reference_of_another_feature_space_skips_with_the_fix(image_folders, tmp_path):
    """An Inception reference (what FID/KID use) cannot serve precision/recall in VGG space: a skip that says how
    to build the right one, while FID and KID of the same run still score."""
    from evalsuite import refstats
    from evalsuite.extractors import build
    from evalsuite.features import extract

    a, b = image_folders
    tiny = "python:tests.tiny_models:tiny_uint8"
    ext = build(tiny)
    feats = extract(sorted(b.glob("*.png")), ext, num_workers=0, keep_features=True, progress=False)
    npz = tmp_path / "ref.npz"
    refstats.save_npz(refstats.from_stream("b", feats.stats, ext.key, source="test", feats=feats.features), npz)
    other = "python:tests.tiny_models:tiny_clean"  # stands in for vgg16: another network than the reference's
    kid, pr = score(f"folder:{a}", ScoreOptions.with_legacy(tasks=["kid", "precision-recall"], extractor=tiny,
                                                            ref=str(npz),
                                                pr_extractor=other, num_workers=0, progress=False)).results
    assert kid["status"] == "ok"
    assert pr["status"] == "skipped" and "computed differently" in pr["reason"]
    assert f"--extractor {other}" in pr["fix"] and "--pr-extractor" in pr["fix"]


@pytest.mark.parametrize("spec, protocol", [
    ("vgg16", "prc-vgg16-fc2relu-k3"), ("inception", "prc-inception-pool3-k3"),
    ("inception:clean", "prc-inception-pool3-k3"),
    ("inception:legacy_tensorflow", "prc-inception-pool3-legacy_tensorflow-k3"),
    ("clip", "prc-clip-vit-b-32-k3"), ("python:m:f", "prc-python:m:f-k3"),
])
def test_protocol_names_the_feature_space(spec, protocol):
    from evalsuite.tasks.image_quality import _pr_protocol

    assert _pr_protocol(spec, 3) == protocol
    assert _pr_protocol(spec, 5).endswith("-k5")
