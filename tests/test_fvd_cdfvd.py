"""cd-fvd agreement (PyPI `cd-fvd` 0.1.1, package `cdfvd`, from `.official/`): our `videomae` extractor against
cd-fvd's own preprocessing (`cdfvd.utils.data_utils.preprocess`, `cdfvd.third_party.VideoMAEv2.utils.
preprocess_videomae` inside `cdfvd.fvd.get_videomae_features`), its own VideoMAE-v2 model code
(`videomaev2_finetune.VisionTransformer`, a tiny random-init model of the ViT-g recipe, fixed seed) and its FVD
(`cdfvd.fvd.cdfvd.compute_fvd_from_stats` over `cdfvd.utils.metric_utils.FeatureStats`).

`einops` (a cd-fvd dependency, absent here) is stubbed: only `compute_real_stats` / `load_videos` use it, and
neither is called. The one step of those we do by hand is their byte conversion, `rearrange(batch['video']*255,
'b c t h w -> b t h w c').byte()` (cdfvd/fvd.py, `compute_real_stats` and `compute_fake_stats`).
"""

from __future__ import annotations

import types
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from evalsuite.metrics import frechet_distance
from evalsuite.runner import ScoreOptions, score
from evalsuite.stats import StreamingStats
from evalsuite.video_features import (
    VIDEOMAE_WEIGHTS,
    build,
    cdfvd_resize_crop,
    extract_videos,
    load_videomae_v2,
    protocol_name,
)
from evalsuite.videoio import write_video
from tests.conftest import install_standin_weights
from tests.official import official

FEATURE_ATOL = 2e-6  # measured 2.4e-7; float32 features (LayerNorm outputs, O(1)), SDPA vs explicit attention


@pytest.fixture
def cdfvd(monkeypatch):
    """cd-fvd's modules, with einops stubbed (unused by the functions called here)."""
    monkeypatch.setitem(__import__("sys").modules, "einops", types.SimpleNamespace(rearrange=_no_einops))
    return types.SimpleNamespace(fvd=official("cdfvd.fvd"), data=official("cdfvd.utils.data_utils"),
                                 metric=official("cdfvd.utils.metric_utils"),
                                 vit=official("cdfvd.third_party.VideoMAEv2.videomaev2_finetune"))


def _no_einops(*args, **kwargs):
    raise AssertionError("einops is stubbed: this test must not reach cd-fvd code that uses it")


def _official_model(cdfvd, patch: int, dim: int = 16, depth: int = 2):
    """cd-fvd's VisionTransformer with vit_giant_patch14_224's recipe (16 heads, mlp 48/11, q/v biases, LN eps 1e-6,
    mean pooling + fc_norm) and load_videomae_model's arguments, at a tiny width; every parameter randomised."""
    torch.manual_seed(0)
    model = cdfvd.vit.VisionTransformer(img_size=224, patch_size=patch, embed_dim=dim, depth=depth, num_heads=16,
                                        mlp_ratio=48 / 11, qkv_bias=True,
                                        norm_layer=partial(nn.LayerNorm, eps=1e-6), num_classes=174, all_frames=16,
                                        tubelet_size=2, drop_path_rate=0.3, use_mean_pooling=True)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape) * 0.2)
    return model.eval()


def _videos(count: int, frames: int = 16, size=(40, 56), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        base = rng.uniform(0, 255, 3) + rng.normal(0, 5, 3) * np.arange(frames)[:, None, None, None]
        clip = base + rng.normal(0, 40, (frames, *size, 3))
        out.append(np.clip(clip, 0, 255).astype(np.uint8))
    return out


def _official_uint8(cdfvd, video: np.ndarray) -> np.ndarray:
    """cd-fvd's loader (`data_utils.preprocess`, resolution=256, as load_videos(data_type='video_folder') passes it)
    and the byte conversion of compute_real_stats: (T, 256, 256, 3) uint8."""
    clip = cdfvd.data.preprocess(torch.from_numpy(video), 256)["video"]  # (C, T, 256, 256) in [0, 1]
    return (clip[None] * 255).permute(0, 2, 3, 4, 1).byte().numpy()[0]


def _official_features(cdfvd, model, videos: list[np.ndarray]) -> np.ndarray:
    stats = cdfvd.metric.FeatureStats(capture_all=True, capture_mean_cov=True)
    batch = np.stack([_official_uint8(cdfvd, v) for v in videos])
    cdfvd.fvd.get_videomae_features(stats, model, batch, batchsize=4, device="cpu")
    return stats.get_all()


def _write(folder, videos):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, v in enumerate(videos):
        paths.append(folder / f"v{i:03d}.mp4")
        write_video(paths[-1], v, lossless=True)
    return paths


def test_resize_crop_equals_cdfvd_loader(cdfvd):
    """Landscape, portrait, square and upscaled clips: the uint8 256x256 clip is identical."""
    for size in [(40, 56), (72, 48), (300, 300), (270, 480)]:
        (video,) = _videos(1, frames=3, size=size, seed=size[0])
        np.testing.assert_array_equal(cdfvd_resize_crop(video), _official_uint8(cdfvd, video))


@pytest.mark.parametrize("patch, frames", [(28, 16), (14, 4)])
def test_videomae_features_equal_cdfvd(cdfvd, tmp_path, patch, frames):
    """Our VideoMAEv2Features on cd-fvd's checkpoint format = cd-fvd's get_videomae_features on its own model.
    16 frames use the position table as is; 4 frames take cd-fvd's temporal interpolation of it."""
    model = _official_model(cdfvd, patch)
    ckpt = tmp_path / "vit_g_hybrid_pt_1200e_ssv2_ft.pth"
    torch.save({"module": model.state_dict()}, ckpt)
    videos = _videos(3, frames=frames) + _videos(1, frames=frames, size=(64, 48), seed=5)
    paths = _write(tmp_path / "v", videos)
    ext = build(f"videomae:{ckpt}", sampling={"num_frames": frames})
    assert ext.dim == 16 and ext.id == "cd-fvd-videomae-v2-g"
    ours = extract_videos(paths, ext, {"num_frames": frames}, num_workers=0, progress=False, keep_features=True,
                          use_cache=False)
    expected = _official_features(cdfvd, model, videos)
    np.testing.assert_allclose(ours.features, expected, rtol=0, atol=FEATURE_ATOL)
    assert np.abs(expected).max() > 0.1  # not a degenerate comparison
    # the in-memory module alone, on cd-fvd's uint8 clips
    ours_direct = load_videomae_v2(ckpt)(torch.from_numpy(np.stack([_official_uint8(cdfvd, v) for v in videos]))
                                         .permute(0, 4, 1, 2, 3)).detach().numpy()
    np.testing.assert_allclose(ours_direct, expected, rtol=0, atol=FEATURE_ATOL)


def test_frechet_equals_cdfvd_compute_fvd_from_stats(cdfvd):
    """Same features: cd-fvd's FeatureStats (biased covariance) + scipy sqrtm vs our StreamingStats + FD."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(60, 8)).astype(np.float32)
    b = (rng.normal(size=(70, 8)) * 1.3 + 0.4).astype(np.float32)
    real, fake = (cdfvd.metric.FeatureStats(capture_mean_cov=True) for _ in range(2))
    real.append(a)
    fake.append(b)
    official_value = cdfvd.fvd.cdfvd.compute_fvd_from_stats(types.SimpleNamespace(), fake, real)
    sa, sb = StreamingStats(8), StreamingStats(8)
    sa.update(a)
    sb.update(b)
    ours = frechet_distance(sb.mean, sb.cov(unbiased=False), sa.mean, sa.cov(unbiased=False))
    assert ours == pytest.approx(float(official_value), rel=1e-9)
    # cd-fvd divides by N (biased): the unbiased covariance would not agree
    unbiased = frechet_distance(sb.mean, sb.cov(unbiased=True), sa.mean, sa.cov(unbiased=True))
    assert abs(unbiased - float(official_value)) > 1e-4


def test_fvd_task_equals_cdfvd_end_to_end(cdfvd, tmp_path, monkeypatch):
    """`evalsuite score folder:GEN --extractor videomae --ref folder:REAL` with the checkpoint in the weights store
    = cd-fvd's features of both folders (16-frame clips: its random clip start is frame 0) and its FVD."""
    model = _official_model(cdfvd, 28)
    ckpt = tmp_path / "vit_g_hybrid_pt_1200e_ssv2_ft.pth"
    torch.save(model.state_dict(), ckpt)
    install_standin_weights(monkeypatch, VIDEOMAE_WEIGHTS, ckpt)
    gen, real = _videos(20, seed=10), _videos(20, size=(48, 64), seed=20)
    _write(tmp_path / "gen", gen)
    _write(tmp_path / "real", real)
    opts = ScoreOptions.with_legacy(tasks=["fvd"], extractor="videomae", ref=f"folder:{tmp_path / 'real'}", frames=16,
                        num_workers=0, progress=False)
    (doc,) = score(f"folder:{tmp_path / 'gen'}", opts).results
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["protocol"] == "cd-fvd-videomae-16f"
    details = doc["details"]
    assert details["start"] == "random" and details["reference_cap"]["max_real"] is None
    assert details["num_videos"] == 20 and details["n_reference"] == 20 and "n_fake=2048" in details["note"]
    real_stats, fake_stats = (cdfvd.metric.FeatureStats(capture_mean_cov=True) for _ in range(2))
    real_stats.append(_official_features(cdfvd, model, real))
    fake_stats.append(_official_features(cdfvd, model, gen))
    expected = float(cdfvd.fvd.cdfvd.compute_fvd_from_stats(types.SimpleNamespace(), fake_stats, real_stats))
    assert expected > 0
    assert doc["metrics"]["fvd"] == pytest.approx(expected, rel=1e-4)


def test_videomae_inputs_are_checked(tmp_path):
    from evalsuite.errors import InputError

    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    with pytest.raises(InputError, match="not a checkpoint file"):
        build(f"videomae:{tmp_path / 'hf'}")
    torch.save({"model": {"w": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(InputError, match="not a VideoMAE-v2 fine-tuned checkpoint"):
        build(f"videomae:{tmp_path / 'other.pth'}")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read the VideoMAE-v2 checkpoint"):
        build(f"videomae:{tmp_path / 'junk.pth'}")


def test_protocol_names(tmp_path, monkeypatch):
    from evalsuite.video_features import VideoMAEv2Features

    torch.manual_seed(0)
    net = VideoMAEv2Features(16, 1, 16, 69, 28, 2)
    ckpt = tmp_path / "vit_g_hybrid_pt_1200e_ssv2_ft.pth"
    torch.save(net.state_dict(), ckpt)
    own = build(f"videomae:{ckpt}")
    assert protocol_name(f"videomae:{ckpt}", own) == f"cd-fvd-videomae@{own.weights_sha256[:12]}-16f"
    install_standin_weights(monkeypatch, VIDEOMAE_WEIGHTS, ckpt)
    store = build("videomae")
    assert protocol_name("videomae", store) == "cd-fvd-videomae-16f"
    assert protocol_name(f"videomae:{ckpt}", own) == "cd-fvd-videomae-16f"  # the store's own file
