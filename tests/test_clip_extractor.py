"""CLIP-FID against clean-fid's own `clip_vit_b_32` code (cleanfid/clip_features.py, fid.py, 0.1.35): the same
uint8 crop (shorter side 224 bicubic + centre crop 224), the same network input bit for bit, the same CLIP-FID.

The real ViT-B-32.pt cannot be downloaded here, so the test saves a tiny CLIP in OpenAI's state-dict layout (random
init, fixed seed; a fixture only) and registers its sha256 for the test. clean-fid loads the network with OpenAI's
`clip` package (not installed here): a stub module stands in for `clip.load` only and hands clean-fid that same
network; everything else (resize, dataset, normalisation, statistics, Fréchet distance) is clean-fid's code.
"""

from __future__ import annotations

import dataclasses
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from evalsuite.runner import ScoreOptions, score
from tests.conftest import write_images
from tests.official import official

open_clip = pytest.importorskip("open_clip")

SHAPES = [(30, 40), (300, 200), (225, 500), (17, 33), (224, 224), (224, 300)]  # (h, w), mostly non-square


def _clean_fid_clip(monkeypatch, network):
    """cleanfid.clip_features with `clip.load` stubbed to return `network` (only the loader is replaced)."""
    stub = types.ModuleType("clip")
    stub.load = lambda name, device="cuda": (network, None)
    monkeypatch.setitem(sys.modules, "clip", stub)
    module = official("cleanfid.clip_features")
    monkeypatch.setattr(module, "clip", stub)
    return module


class _Recorder(torch.nn.Module):
    """Stands in for the CLIP network: keeps every batch it is given, returns zero features."""

    def __init__(self):
        super().__init__()
        self.inputs: list[torch.Tensor] = []
        self.visual = types.SimpleNamespace(output_dim=512)

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return torch.zeros(x.shape[0], 512)


@pytest.mark.parametrize("shape", SHAPES)
def test_crop_is_clean_fids_img_preprocess_clip(shape, monkeypatch):
    """Our clip preprocessing against clean-fid's img_preprocess_clip on the same uint8 array: exact."""
    from evalsuite.extractors import key_of
    from evalsuite.preprocess import Preprocessing

    clip_features = _clean_fid_clip(monkeypatch, _Recorder())
    img = np.random.default_rng(shape[0] * 7 + shape[1]).integers(0, 256, (*shape, 3), dtype=np.uint8)
    ours = Preprocessing("pil-bicubic-short-crop", (224, 224), "uint8")(img)
    theirs = clip_features.img_preprocess_clip(img)
    assert ours.dtype == theirs.dtype == np.uint8 and ours.shape == theirs.shape == (224, 224, 3)
    assert np.array_equal(ours, theirs)
    assert key_of("clip")["preprocessing"] == "pil-bicubic-short-crop@224x224:uint8"


def test_network_input_is_clean_fids(tmp_path, tiny_openai_clip, monkeypatch):
    """The tensor handed to encode_image, from the same PNG files: clean-fid's ResizeDataset with
    img_preprocess_clip, DataLoader, CLIP_fx.__call__ (u8/255*255, /255, Normalize) vs our extract(); exact."""
    from evalsuite.extractors import build
    from evalsuite.features import extract

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(3)
    files = []
    for i, shape in enumerate(SHAPES):
        files.append(folder / f"{i:02d}.png")
        Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(files[-1])

    theirs_net, ours_net = _Recorder(), _Recorder()
    clip_features = _clean_fid_clip(monkeypatch, theirs_net)
    utils = official("cleanfid.utils")
    dataset = utils.ResizeDataset([str(f) for f in files], mode="clean")
    dataset.fn_resize = clip_features.img_preprocess_clip  # as cleanfid.fid.get_files_features sets it
    fx = clip_features.CLIP_fx("ViT-B/32", device="cpu")
    for batch in torch.utils.data.DataLoader(dataset, batch_size=4, shuffle=False, num_workers=0):
        fx(batch)

    monkeypatch.setattr(open_clip, "load_openai_model", lambda *a, **kw: ours_net)
    ext = dataclasses.replace(build("clip"), optimize_graph=False)
    extract(files, ext, batch_size=4, num_workers=0, use_cache=False, progress=False)
    theirs, ours = torch.cat(theirs_net.inputs), torch.cat(ours_net.inputs)
    assert ours.shape == theirs.shape == (len(SHAPES), 3, 224, 224) and ours.dtype == theirs.dtype == torch.float32
    assert torch.equal(ours.contiguous(), theirs.contiguous())


def test_clip_fid_matches_clean_fid(tmp_path, tiny_openai_clip, monkeypatch):
    """clean-fid's compute_fid(model_name="clip_vit_b_32") on the same non-square folders with the same network:
    rel 1e-5 (identical network inputs; the float32 network runs in other batches and memory layout, and FID of
    40 samples in 32 dimensions amplifies that rounding)."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_images(a, 40, size=(30, 40), seed=1)
    write_images(b, 40, size=(50, 36), seed=2, offset=30.0)
    (doc,) = score(f"folder:{a}", ScoreOptions(tasks=["clip-fid"], ref=f"folder:{b}", batch_size=4, num_workers=0,
                                                progress=False)).results
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["task_version"] == "2"
    assert doc["provenance"]["preprocessing"]["clip"] == "pil-bicubic-short-crop@224x224:uint8"

    network = open_clip.load_openai_model(str(tiny_openai_clip), precision="fp32", device="cpu").eval()
    _clean_fid_clip(monkeypatch, network)
    fid = official("cleanfid.fid")
    expected = fid.compute_fid(str(a), str(b), mode="clean", model_name="clip_vit_b_32", num_workers=0,
                               batch_size=4, device=torch.device("cpu"), verbose=False)
    assert doc["metrics"]["clip-fid"] == pytest.approx(expected, rel=1e-5)  # observed 3.4e-7
