"""CLIP-FID wiring: weights store -> open_clip's OpenAI loader -> clean resize to 224 -> CLIP normalisation.

The real ViT-B-32.pt cannot be downloaded here, so the test saves a tiny CLIP in OpenAI's state-dict layout
(random init, fixed seed; a fixture only), registers its sha256 for the test, and compares the task's CLIP-FID
with features computed independently: clean-fid's resizer, open_clip's own mean/std, `encode_image`, numpy stats.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch
from cleanfid.resize import make_resizer
from PIL import Image

from evalsuite.metrics import frechet_distance
from evalsuite.runner import ScoreOptions, score
from tests.conftest import write_images

open_clip = pytest.importorskip("open_clip")


def _independent_features(folder, weights_path):
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    model = open_clip.load_openai_model(str(weights_path), precision="fp32", device="cpu").eval()
    resize = make_resizer("PIL", False, "bicubic", (224, 224))
    mean = torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1)
    batch = torch.from_numpy(np.stack([resize(np.asarray(Image.open(f).convert("RGB")))
                                       for f in sorted(folder.glob("*.png"))])).permute(0, 3, 1, 2)
    with torch.inference_mode():
        return model.encode_image((batch / 255.0 - mean) / std).double().numpy()


def test_clip_fid_matches_independent_computation(tmp_path, tiny_openai_clip):
    a, b = tmp_path / "a", tmp_path / "b"
    write_images(a, 10, size=(40, 30), seed=1)
    write_images(b, 10, size=(40, 30), seed=2, offset=30.0)
    (doc,) = score(f"folder:{a}", ScoreOptions(tasks=["clip-fid"], ref=f"folder:{b}", batch_size=4, num_workers=0,
                                                progress=False)).results
    assert doc["status"] == "ok", doc.get("reason")
    fa, fb = _independent_features(a, tiny_openai_clip), _independent_features(b, tiny_openai_clip)
    expected = frechet_distance(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False))
    assert doc["metrics"]["clip-fid"] == pytest.approx(expected, rel=1e-5)
    assert doc["provenance"]["preprocessing"]["clip"] == "pil-float-bicubic@224x224:float255"
