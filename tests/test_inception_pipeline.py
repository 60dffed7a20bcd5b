"""The Inception extractor's wiring (weights store -> TorchScript -> preprocessing -> normalisation) against
clean-fid's own pipeline (`InceptionV3W` wrapper + `compute_fid`), both loading the same TorchScript file.

The real inception-2015-12-05.pt cannot be downloaded here, so the test writes a small TorchScript stand-in with
the same interface (`.layers`, `forward(x, return_features)`, 2048-d output) and registers its sha256 in the
weights registry for the test only. Both tools then do the same arithmetic on it.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evalsuite import weights
from evalsuite.runner import ScoreOptions, score
from tests.conftest import install_standin_weights, write_images


class _StandInInception(nn.Module):
    """Same interface as the TorchScript FID Inception; random weights with a fixed seed (a test fixture only)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.Sequential(nn.AdaptiveAvgPool2d(6), nn.Conv2d(3, 2048, 3), nn.Tanh(), nn.AdaptiveAvgPool2d(1))

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.layers((x - 128.0) / 128.0).reshape(x.shape[0], -1)


@pytest.fixture
def standin_weights(tmp_path, monkeypatch):
    folder = tmp_path / "standin"
    folder.mkdir()
    path = folder / "inception-2015-12-05.pt"
    torch.jit.script(_StandInInception()).save(str(path))
    install_standin_weights(monkeypatch, "inception-2015-12-05", path)
    return folder


@pytest.mark.parametrize("mode", ["clean", "legacy_tensorflow"])
def test_inception_fid_equals_cleanfid(tmp_path, standin_weights, mode):
    from cleanfid import fid as cleanfid
    from cleanfid.inception_torchscript import InceptionV3W

    a, b = tmp_path / "a", tmp_path / "b"
    size = (37, 45) if mode == "clean" else (64, 64)  # legacy_tensorflow batches need equal sizes in clean-fid
    write_images(a, 12, size=size, seed=1)
    write_images(b, 12, size=size, seed=2, offset=25.0)
    extractor = "inception" if mode == "clean" else f"inception:{mode}"
    (doc,) = score(f"folder:{a}", ScoreOptions(tasks=["fid"], extractor=extractor, ref=f"folder:{b}", batch_size=5,
                                                num_workers=0, progress=False)).results
    assert doc["status"] == "ok", doc.get("reason")
    model = InceptionV3W(str(standin_weights), download=False, resize_inside=(mode == "legacy_tensorflow"))
    theirs = cleanfid.compute_fid(str(a), str(b), mode=mode, custom_feat_extractor=model, num_workers=0,
                                  batch_size=5, device=torch.device("cpu"), verbose=False, use_dataparallel=False)
    # same float32 network on the same inputs; the statistics path differs (streamed float64 vs np.cov)
    assert doc["metrics"]["fid"] == pytest.approx(float(theirs), rel=1e-5)
    assert doc["provenance"]["preprocessing"][extractor] == (
        "pil-float-bicubic@299x299:float255" if mode == "clean" else "none:float255")
    graph = doc["provenance"]["inference_graph"][extractor]  # the TorchScript network, frozen and checked
    assert graph["applied"][0].startswith("TorchScript freeze"), graph
    assert graph["max_feature_deviation_relative"] < 1e-5


def test_wrong_weights_file_is_refused(tmp_path):
    bogus = tmp_path / "inception-2015-12-05.pt"
    bogus.write_bytes(b"not the weights")
    with pytest.raises(weights.WeightsIntegrityError, match="sha256"):
        weights.import_file("inception-2015-12-05", bogus)
    assert not weights.is_present("inception-2015-12-05")
