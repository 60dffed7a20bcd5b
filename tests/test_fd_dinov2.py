"""FD-DINOv2 (Stein et al. 2023; layer6ai-labs/dgm-eval): our DINOv2 ViT-L/14 extractor and the fd-dinov2 task.

The real dinov2_vitl14_pretrain.pth cannot be downloaded here, so the checks run on a tiny DINOv2 of the same
architecture (patch 14, 518² positional grid, LayerScale, MLP; width 32, depth 2) with random weights (fixed seed; a
fixture, never offered as weights), built by the official network code (facebookresearch/dinov2 as published on
the registry, installed into .official/ by .ci/install-official): what torch.hub.load('facebookresearch/dinov2',
'dinov2_vitl14') builds for dgm-eval and torch-fidelity. The same state dict is loaded strictly into ours.

Preprocessing: dgm-eval (`dgm_eval/models/dinov2.py` DINOv2Encoder.transform, clean_resize=False, its default)
applies torchvision Resize((224, 224), BICUBIC) to the PIL image, ToTensor, Normalize(ImageNet). torch-fidelity 0.4's
FeatureExtractorDinoV2 resizes differently (TensorFlow-1 bilinear, no antialiasing), so the two disagree on any image
not already 224²; our default follows dgm-eval, the official FD-DINOv2 code, and the test below shows the difference.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from evalsuite.runner import ScoreOptions, score
from tests.conftest import install_standin_weights, write_images
from tests.official import official

TINY = {"embed_dim": 32, "depth": 2, "num_heads": 2}
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def official_vit(**config):
    """The official DinoVisionTransformer as the dinov2_vitl14 hub entry configures it (block_chunks=0)."""
    vt = official("dinov2.models.vision_transformer")
    layers = official("dinov2.layers")
    return vt.DinoVisionTransformer(img_size=518, patch_size=14, mlp_ratio=4, init_values=1.0, block_chunks=0,
                                    block_fn=partial(layers.NestedTensorBlock, attn_class=layers.MemEffAttention),
                                    **config)


@pytest.fixture(scope="module")
def tiny_official(tmp_path_factory):
    """A tiny official DINOv2 with every parameter random (LayerScale and tokens too, so each part counts)."""
    torch.manual_seed(0)
    net = official_vit(**TINY).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    path = tmp_path_factory.mktemp("dinov2") / "dinov2_vitl14_pretrain.pth"
    torch.save(net.state_dict(), path)
    return net, path


@pytest.fixture
def tiny_weights(tiny_official, monkeypatch):
    """Our dinov2-vitl14 extractor built from the store with the tiny file (ViT-L/14 sizes replaced by TINY)."""
    from evalsuite import dinov2

    monkeypatch.setattr(dinov2, "VITL14", TINY)
    install_standin_weights(monkeypatch, "dinov2-vitl14", tiny_official[1])
    return tiny_official[0]


def dgm_eval_transform(img: Image.Image) -> torch.Tensor:
    """dgm-eval DINOv2Encoder.transform (clean_resize=False), torchvision calls as it makes them."""
    import torchvision.transforms as T

    x = T.Compose([T.Resize((224, 224), T.InterpolationMode.BICUBIC), T.ToTensor()])(img)
    return T.Normalize(np.array(MEAN), np.array(STD))(x)


def test_state_dict_keys_are_the_official_vitl14s():
    """ViT-L/14 width: the same keys and shapes as the official hub network (official built 2 blocks deep on the
    CPU, every block having the same keys; ours full size on the meta device)."""
    from evalsuite.dinov2 import VITL14, DinoV2ViT

    with torch.device("meta"):
        ours = {k: v.shape for k, v in DinoV2ViT(**VITL14).state_dict().items()}
    theirs = {k: v.shape for k, v in official_vit(embed_dim=1024, depth=2, num_heads=16).state_dict().items()}
    assert {k: v for k, v in ours.items() if not k.startswith("blocks.") or k.split(".")[1] in ("0", "1")} == theirs
    assert tuple(theirs["pos_embed"]) == (1, 1370, 1024) and len(ours) == 5 + 14 * 24 + 2


@pytest.mark.parametrize("shape", [(40, 56), (300, 260), (224, 224), (500, 225)])
def test_preprocessing_is_dgm_evals(shape):
    """Our pil-bicubic resize + the extractor's normalisation = dgm-eval's transform (uint8 resize bit-exact)."""
    from evalsuite.dinov2 import DinoV2Features, DinoV2ViT
    from evalsuite.extractors import key_of
    from evalsuite.preprocess import Preprocessing

    img = np.random.default_rng(shape[0]).integers(0, 256, (*shape, 3), dtype=np.uint8)
    resized = Preprocessing("pil-bicubic", (224, 224), "uint8")(img)
    theirs = dgm_eval_transform(Image.fromarray(img))
    assert resized.dtype == np.uint8 and resized.shape == (224, 224, 3)
    import torchvision.transforms as T

    their_resize = T.Resize((224, 224), T.InterpolationMode.BICUBIC)(Image.fromarray(img))  # dgm-eval's first step
    np.testing.assert_array_equal(resized, np.asarray(their_resize))
    feats = DinoV2Features(DinoV2ViT(**TINY))
    ours = (torch.from_numpy(resized.copy()).permute(2, 0, 1)[None].float() / 255.0 - feats.mean) / feats.std
    torch.testing.assert_close(ours[0], theirs.float(), rtol=0, atol=1e-6)
    assert key_of("dinov2-vitl14")["preprocessing"] == "pil-bicubic@224x224:uint8"
    assert key_of("dinov2-vitl14")["dim"] == 1024


def test_torch_fidelity_resizes_differently():
    """torch-fidelity 0.4's DINOv2 path (TF-1 bilinear on the uint8 tensor) is not dgm-eval's (PIL bicubic): on a
    downsampled image the network inputs differ, so our default follows dgm-eval, the official FD-DINOv2 code."""
    tf1 = official("torch_fidelity.interpolate_compat_tensorflow").interpolate_bilinear_2d_like_tensorflow1x
    img = np.random.default_rng(1).integers(0, 256, (300, 260, 3), dtype=np.uint8)
    theirs = tf1(torch.from_numpy(img).permute(2, 0, 1)[None].float(), size=(224, 224), align_corners=False)[0]
    dgm = dgm_eval_transform(Image.fromarray(img)) * torch.tensor(STD).view(3, 1, 1) * 255
    dgm = dgm + torch.tensor(MEAN).view(3, 1, 1) * 255
    assert (theirs - dgm.float()).abs().mean() > 1.0  # grey levels apart on average


def test_features_match_dgm_eval_and_torch_fidelity(tiny_weights, tmp_path, monkeypatch):
    """Same tiny weights, same PNGs. dgm-eval: official network on its transform of the PIL image. torch-fidelity:
    FeatureExtractorDinoV2('dinov2-vit-l-14') with torch.hub.load answering the official network, fed our 224²
    uint8 input (its resize is the identity there). Ours: the registered extractor through extract(). rtol 1e-4."""
    from torch_fidelity.feature_extractor_dinov2 import FeatureExtractorDinoV2

    from evalsuite.extractors import build
    from evalsuite.features import extract
    from evalsuite.preprocess import Preprocessing

    files = write_images(tmp_path / "imgs", 6, size=(250, 230), seed=3)
    ours = extract(files, build("dinov2-vitl14"), num_workers=0, keep_features=True, use_cache=False,
                   progress=False).features
    with torch.inference_mode():
        dgm = tiny_weights(torch.stack([dgm_eval_transform(Image.open(f).convert("RGB")) for f in files]).float())
    assert ours.shape == dgm.shape == (6, 32) and np.abs(dgm.numpy()).max() > 0.1
    np.testing.assert_allclose(ours, dgm.numpy(), rtol=1e-4, atol=1e-4 * np.abs(dgm.numpy()).max())

    monkeypatch.setattr(torch.hub, "load", lambda *a, **k: tiny_weights)
    tf = FeatureExtractorDinoV2("dinov2-vit-l-14", ["dinov2"])
    pre = Preprocessing("pil-bicubic", (224, 224), "uint8")
    batch = torch.stack([torch.from_numpy(pre(np.asarray(Image.open(f).convert("RGB"))).copy()).permute(2, 0, 1)
                         for f in files])
    with torch.inference_mode():
        (theirs,) = tf(batch)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=1e-4 * np.abs(theirs.numpy()).max())


def test_fd_dinov2_task_end_to_end(tiny_weights, tmp_path):
    """The task offline through the weights store: FID's Fréchet path on DINOv2 features, protocol recorded."""
    from scipy import linalg

    from evalsuite.extractors import build
    from evalsuite.features import extract

    a, b = tmp_path / "fake", tmp_path / "real"
    fa, fb = write_images(a, 40, size=(40, 56), seed=1), write_images(b, 40, size=(250, 230), seed=2, offset=60.0)
    (doc,) = score(f"folder:{a}", ScoreOptions(tasks=["fd-dinov2"], ref=f"folder:{b}", num_workers=0,
                                               progress=False)).results
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["protocol"] == "fd-dinov2-vitl14" and doc["num_samples"] == 40
    assert doc["provenance"]["preprocessing"]["dinov2-vitl14"] == "pil-bicubic@224x224:uint8"

    ext = build("dinov2-vitl14")
    x, y = (extract(f, ext, num_workers=0, keep_features=True, progress=False).features.astype(np.float64)
            for f in (fa, fb))
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    expected = float(((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))
    assert doc["metrics"]["fd-dinov2"] == pytest.approx(expected, rel=1e-5)
    assert doc["metrics"]["fd-dinov2"] > 1e-3  # distinct sets; the identical pair below is ~0

    (same,) = score(f"folder:{b}", ScoreOptions(tasks=["fd-dinov2"], ref=f"folder:{b}", num_workers=0,
                                                progress=False)).results
    assert abs(same["metrics"]["fd-dinov2"]) < 1e-6


def test_missing_dinov2_weights_skip_with_the_fix(image_folders):
    a, b = image_folders
    (doc,) = score(f"folder:{a}", ScoreOptions(tasks=["fd-dinov2"], ref=f"folder:{b}", num_workers=0,
                                               progress=False)).results
    assert doc["status"] == "skipped"
    assert "evalsuite weights fetch dinov2-vitl14" in doc["fix"]
    assert "evalsuite weights import dinov2-vitl14" in doc["fix"]


def test_fd_dinov2_is_in_the_image_quality_suite():
    from evalsuite.task import get_suite

    assert "fd-dinov2" in get_suite("image-quality")["tasks"]


def test_unpublished_digest_is_pinned_on_first_import(tiny_official, monkeypatch):
    """Meta publishes no sha256: the first imported copy is pinned (as for I3D/VideoMAE), keys references built
    before any network pass (`key_of`), and equals the digest the built extractor records."""
    from evalsuite import dinov2, weights
    from evalsuite.extractors import build, key_of
    from evalsuite.hashing import sha256_file

    assert weights.REGISTRY["dinov2-vitl14"].sha256 is None
    assert key_of("dinov2-vitl14")["weights_sha256"] is None
    weights.import_file("dinov2-vitl14", tiny_official[1])
    digest = sha256_file(tiny_official[1])
    assert weights.expected_digest("dinov2-vitl14") == digest == key_of("dinov2-vitl14")["weights_sha256"]
    monkeypatch.setattr(dinov2, "VITL14", TINY)
    assert build("dinov2-vitl14").weights_sha256 == digest


def test_kd_and_precision_recall_on_the_same_dinov2_features(tiny_weights, tmp_path):
    """Stein et al. also report KD and precision/recall on DINOv2: kid and precision-recall in that space, named
    kid-dinov2-vitl14 and prc-dinov2-vitl14-k3, from the one DINOv2 feature pass that fd-dinov2 uses."""
    from evalsuite.extractors import build
    from evalsuite.features import extract
    from evalsuite.metrics import kernel_distance, precision_recall

    a, b = tmp_path / "fake", tmp_path / "real"
    fa, fb = write_images(a, 12, size=(40, 56), seed=1), write_images(b, 12, size=(64, 60), seed=2, offset=60.0)
    docs = {d["task"]: d for d in score(f"folder:{a}", ScoreOptions(
        tasks=["fd-dinov2", "kid", "precision-recall"], ref=f"folder:{b}", extractor="dinov2-vitl14", num_workers=0,
        progress=False, task_options={"kid": {"subsets": 5, "subset_size": 6},
                                      "precision-recall": {"extractor": "dinov2-vitl14"}})).results}
    assert {d["status"] for d in docs.values()} == {"ok"}, [d.get("reason") for d in docs.values()]
    assert docs["kid"]["protocol"] == "kid-dinov2-vitl14"
    assert docs["precision-recall"]["protocol"] == "prc-dinov2-vitl14-k3"
    assert docs["fd-dinov2"]["protocol"] == "fd-dinov2-vitl14"
    ext = build("dinov2-vitl14")
    x, y = (extract(f, ext, num_workers=0, keep_features=True, progress=False).features for f in (fa, fb))
    kid, _ = kernel_distance(x, y, num_subsets=5, subset_size=6, seed=0)
    assert docs["kid"]["metrics"]["kid"] == pytest.approx(kid, rel=1e-6)
    assert docs["precision-recall"]["metrics"]["precision"] == pytest.approx(precision_recall(x, y, 3)["precision"])
