"""CMMD against google-research `cmmd` (JAX/TF; no package installs here, so the official formulas are written out
literally in numpy in this file, each citing its file and lines):

- `cmmd/distance.py` @4c42994 `mmd`: L25 `_SIGMA = 10`, L28 `_SCALE = 1000`, L55-56 squared norms from
  `diag(x @ x.T)`, L58 `gamma = 1 / (2 * _SIGMA**2)`, L59-88 `k_xx`, `k_xy`, `k_yy` = `jnp.mean(exp(-gamma *
  (-2 x.y + |x|^2 + |y|^2)))` over all pairs (diagonals included: the biased estimator), L90 `_SCALE * (k_xx + k_yy
  - 2 * k_xy)`.
- `cmmd/io_util.py` @1963839 `_center_crop_and_resize` L38-46 (centred square crop, PIL BICUBIC to 336),
  `_read_image` L49-57 (`np.asarray(im).astype(np.float32)`), `compute_embeddings_for_dir` (`image_batch / 255.0`).
- `cmmd/embedding.py` @5b09c22 `_clip_preprocess` (jax.image.resize to the same 336x336: identity; scenic
  `normalize_image` = (x - IMAGE_MEAN) / IMAGE_STD) and `ClipEmbeddingModel.embed` (scenic CLIP, unit-norm
  embeddings).

The real ViT-L-14-336px.pt cannot be downloaded here: a tiny random CLIP ViT with the same patch size (14) and input
size (336), saved in OpenAI's state-dict layout, stands in for it (its own sha256 registered for the test only).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from evalsuite.metrics import cmmd
from evalsuite.runner import ScoreOptions, score
from tests.conftest import install_standin_weights, write_images

open_clip = pytest.importorskip("open_clip")

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073])  # scenic clip/model.py IMAGE_MEAN
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711])  # IMAGE_STD


def official_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """cmmd/distance.py `mmd` (L51-90), line by line, numpy in float64 instead of jnp."""
    sigma, scale = 10, 1000
    x_sqnorms = np.diag(np.matmul(x, x.T))
    y_sqnorms = np.diag(np.matmul(y, y.T))
    gamma = 1 / (2 * sigma**2)
    k_xx = np.mean(np.exp(-gamma * (-2 * np.matmul(x, x.T) + np.expand_dims(x_sqnorms, 1)
                                    + np.expand_dims(x_sqnorms, 0))))
    k_xy = np.mean(np.exp(-gamma * (-2 * np.matmul(x, y.T) + np.expand_dims(x_sqnorms, 1)
                                    + np.expand_dims(y_sqnorms, 0))))
    k_yy = np.mean(np.exp(-gamma * (-2 * np.matmul(y, y.T) + np.expand_dims(y_sqnorms, 1)
                                    + np.expand_dims(y_sqnorms, 0))))
    return scale * (k_xx + k_yy - 2 * k_xy)


def _unit(rng, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    x = rng.normal(size=(n, d)) + shift
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize(("n", "m", "d", "shift"), [(7, 7, 5, 0.0), (13, 9, 16, 0.3), (40, 25, 768, 0.05)])
def test_estimator_is_official_distance_py(n, m, d, shift):
    """(a) Our cmmd() against the literal distance.py formula on random embeddings (unit norm as CLIP's, and raw)."""
    rng = np.random.default_rng(n * 100 + d)
    x, y = _unit(rng, n, d), _unit(rng, m, d, shift)
    assert cmmd(x, y) == pytest.approx(official_mmd(x, y), rel=1e-9, abs=1e-12)
    raw_x, raw_y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) * 1.5
    assert cmmd(raw_x, raw_y) == pytest.approx(official_mmd(raw_x, raw_y), rel=1e-9, abs=1e-12)
    assert cmmd(x, x) == pytest.approx(0.0, abs=1e-9)  # biased estimator: exactly 0 on identical sets


def test_blocks_equal_the_direct_computation():
    """(d) Any row-block size gives the single-block (direct) value."""
    rng = np.random.default_rng(5)
    x, y = _unit(rng, 101, 32), _unit(rng, 67, 32, 0.2)
    direct = cmmd(x, y, block_rows=10_000)
    for block in (1, 3, 16, 64, 100):
        assert cmmd(x, y, block_rows=block) == pytest.approx(direct, rel=1e-12)
    assert direct == pytest.approx(official_mmd(x, y), rel=1e-9)


def test_crop_is_cmmd_center_crop_and_resize():
    """Our `pil-crop-bicubic` against io_util.py `_center_crop_and_resize` (L38-46) written out: exact."""
    from evalsuite.extractors import key_of
    from evalsuite.preprocess import Preprocessing

    prep = Preprocessing("pil-crop-bicubic", (336, 336), "uint8")
    for shape in [(30, 40), (401, 337), (336, 336), (17, 600), (500, 499)]:
        rgb = np.random.default_rng(shape[0]).integers(0, 256, (*shape, 3), dtype=np.uint8)
        assert np.array_equal(prep(rgb), np.asarray(_official_crop(Image.fromarray(rgb), 336)))
    assert key_of("clip-l14-336")["preprocessing"] == "pil-crop-bicubic@336x336:uint8"


def _official_crop(im: Image.Image, size: int) -> Image.Image:
    w, h = im.size
    side = min(w, h)
    top = (h - side) // 2
    left = (w - side) // 2
    im = im.crop((left, top, left + side, top + side))
    return im.resize((size, size), resample=Image.Resampling.BICUBIC)  # io_util: Image.BICUBIC


@pytest.fixture
def tiny_clip_l14_336(tmp_path, monkeypatch):
    """A tiny CLIP ViT with ViT-L/14@336px's patch size and input size (random init, fixed seed), OpenAI layout."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(0)
    model = CLIP(embed_dim=24, vision_cfg=CLIPVisionCfg(layers=1, width=64, patch_size=14, image_size=336),
                 text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=1))
    path = tmp_path / "ViT-L-14-336px.pt"
    torch.save(model.state_dict(), path)
    install_standin_weights(monkeypatch, "clip-vit-l-14-336-openai", path)
    return path


def _official_embeddings(folder, weights, batch_size: int = 32) -> np.ndarray:
    """io_util.py + embedding.py as the official code runs them, with our tiny network in place of scenic's port:
    sorted files (`_get_image_list`), the last N mod batch_size dropped (`compute_embeddings_for_dir`:
    `drop_remainder=True`), crop + resize, float32 / 255, (x - mean) / std in float32 (JAX without x64), unit norm."""
    net = open_clip.load_openai_model(str(weights), precision="fp32", device="cpu").eval()
    files = sorted(p for p in folder.iterdir() if p.suffix == ".png")
    if batch_size:
        files = files[:len(files) - len(files) % batch_size]
    batch = np.stack([np.asarray(_official_crop(Image.open(f).convert("RGB"), 336)).astype(np.float32)
                      for f in files]) / 255.0
    batch = (batch - CLIP_MEAN.astype(np.float32)) / CLIP_STD.astype(np.float32)
    with torch.inference_mode():
        emb = net.encode_image(torch.from_numpy(batch.astype(np.float32)).permute(0, 3, 1, 2)).numpy()
    return emb / np.linalg.norm(emb, axis=-1, keepdims=True)


def _expected(ref_folder, folder, weights, batch_size: int = 32) -> float:
    ref_emb = _official_embeddings(ref_folder, weights, batch_size)
    gen_emb = _official_embeddings(folder, weights, batch_size)
    # the official distance runs in float32 (JAX's default): on these embeddings that alone moves the value by
    # ~3.5e-5 relative; ours is float64, so the embeddings are compared through the float64 formula
    return official_mmd(ref_emb.astype(np.float64), gen_emb.astype(np.float64))


def test_cmmd_task_end_to_end(tmp_path, tiny_clip_l14_336):
    """(b) The task on folders of 40 and 35 images (32 of each used, as the official batch 32 drops the rest; and
    every image with official_batch_size=0), and on a reference built with `ref build --extractor clip-l14-336`,
    against the official pipeline written out with the same tiny network; listed in the image-quality suite."""
    from evalsuite import refstats
    from evalsuite.task import get_suite

    a, b = tmp_path / "a", tmp_path / "b"
    write_images(a, 40, size=(40, 30), seed=1)
    write_images(b, 35, size=(50, 64), seed=2, offset=40.0)
    expected = _expected(b, a, tiny_clip_l14_336)
    assert expected > 1e-3

    (doc,) = score(f"folder:{a}", ScoreOptions(tasks=["cmmd"], ref=f"folder:{b}", batch_size=8, num_workers=0,
                                                progress=False)).results
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["protocol"] == "cmmd-clip-l14-336-sigma10"
    assert doc["metrics"]["cmmd"] == pytest.approx(expected, rel=1e-6)  # observed 3.3e-8
    assert doc["details"]["n_reference"] == 35 and doc["details"]["sigma"] == 10
    assert doc["details"]["n_reference_used"] == doc["details"]["n_samples_used"] == 32

    (every,) = score(f"folder:{a}", ScoreOptions(tasks=["cmmd"], ref=f"folder:{b}", batch_size=8, num_workers=0,
                                                  progress=False,
                                                  task_options={"cmmd": {"official_batch_size": 0}})).results
    assert every["status"] == "ok", every.get("reason")
    assert every["protocol"] == "cmmd-clip-l14-336-sigma10-all"
    assert every["metrics"]["cmmd"] == pytest.approx(_expected(b, a, tiny_clip_l14_336, 0), rel=1e-6)

    refstats.build("cmmd-ref", b, "clip-l14-336", num_workers=0, progress=False)
    stored = refstats.load("cmmd-ref")
    assert stored.feats is not None and stored.feats.shape == (35, 24)
    np.testing.assert_allclose(np.linalg.norm(stored.feats, axis=1), 1.0, rtol=1e-5)
    (named,) = score(f"folder:{a}", ScoreOptions(tasks=["cmmd"], ref="cmmd-ref", batch_size=8, num_workers=0,
                                                  progress=False)).results
    assert named["status"] == "ok", named.get("reason")
    assert named["metrics"]["cmmd"] == pytest.approx(doc["metrics"]["cmmd"], rel=1e-6)
    assert "cmmd" in get_suite("image-quality")["tasks"]


def test_fewer_images_than_the_official_batch(tmp_path, tiny_clip_l14_336):
    """The official script fails on a side with fewer than batch_size images; ours is a skip naming the option."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_images(a, 40, seed=1)
    write_images(b, 10, seed=2)
    (doc,) = score(f"folder:{a}", ScoreOptions(tasks=["cmmd"], ref=f"folder:{b}", num_workers=0,
                                               progress=False)).results
    assert doc["status"] == "skipped" and "has only 10" in doc["reason"]
    assert "official_batch_size=0" in doc["fix"]


def test_missing_weights_skip_with_the_fix(tmp_path):
    """(c) No ViT-L-14-336px.pt in the store (offline): stored as skipped, naming the fetch and import commands."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_images(a, 4, seed=1)
    write_images(b, 4, seed=2)
    (doc,) = score(f"folder:{a}", ScoreOptions(tasks=["cmmd"], ref=f"folder:{b}", num_workers=0,
                                               progress=False)).results
    assert doc["status"] == "skipped"
    assert "evalsuite weights fetch clip-vit-l-14-336-openai" in doc["fix"]
    assert "evalsuite weights import clip-vit-l-14-336-openai" in doc["fix"]
