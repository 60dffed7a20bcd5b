"""VBench subject_consistency / background_consistency computed natively: the per-video formula against hand
computations, background-consistency on demo-video against an independent computation (decode every frame, VBench's
clip_transform written here with torchvision, open_clip, the formula written out), subject-consistency with a
stand-in DINO, and the skip without weights. Agreement with VBench's own code: tests/test_vbench_native_official.py.

Stand-ins (random init, fixed seed; test fixtures, never offered as the real weights): `tiny_openai_clip` for
`clip-vit-b-32-openai`; for `dino-vitb16` a timm `vit_base_patch16_224` built with depth 2, width 64 and 2 heads
(same class, same state-dict keys as DINO's checkpoint, patch 16, 224 position table), patched in as the network
the checkpoint loads into."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import evalsuite.tasks.video_native as vn
from evalsuite import weights
from evalsuite.errors import InputError
from evalsuite.runner import ScoreOptions, score
from evalsuite.videoio import read_all_frames
from tests.conftest import install_standin_weights


def _cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _vbench_formula(features) -> float:
    """Written out as VBench loops: per frame after the first, (max(0, cos prev) + max(0, cos first)) / 2."""
    total = 0.0
    for i in range(1, len(features)):
        total += (max(0.0, _cos(features[i - 1], features[i])) + max(0.0, _cos(features[0], features[i]))) / 2
    return total / (len(features) - 1)


# ------------------------------------------------------------------------------------------------------ formula
def test_identical_frames_score_one():
    f = np.tile(np.array([[0.3, -1.2, 2.0, 0.5]]), (5, 1))
    assert vn.consistency_score(f) == pytest.approx(1.0, abs=1e-12)
    assert vn.consistency_score(f * np.array([[1], [2], [3], [0.5], [7]])) == pytest.approx(1.0, abs=1e-12)


def test_negative_cosine_is_clamped_at_zero():
    f = np.array([[1.0, 0.0], [-1.0, 0.0]])  # cos = −1 to both the previous and the first frame
    assert vn.consistency_score(f) == 0.0
    f = np.array([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0]])
    # frame 1: cos(f1, f0) = 1/√2 twice; frame 2: cos(f2, f1) = −1/√2 → 0, cos(f2, f0) = −1 → 0
    assert vn.consistency_score(f) == pytest.approx((1 / math.sqrt(2) + 0.0) / 2, abs=1e-12)


def test_three_frames_by_hand():
    f = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    # frame 1: cos to previous (= first) is 0 → 0; frame 2: cos to frame 1 is 1/√2, to frame 0 is 1/√2 → 1/√2
    assert vn.consistency_score(f) == pytest.approx((0.0 + 1 / math.sqrt(2)) / 2, abs=1e-12)
    f = np.array([[3.0, 4.0], [4.0, 3.0], [0.0, 5.0]])
    c10, c21, c20 = 24 / 25, 15 / 25, 20 / 25
    assert vn.consistency_score(f) == pytest.approx(((c10 + c10) / 2 + (c21 + c20) / 2) / 2, abs=1e-12)
    rng = np.random.default_rng(0)
    f = rng.normal(size=(6, 8))
    assert vn.consistency_score(f) == pytest.approx(_vbench_formula(f), abs=1e-12)
    with pytest.raises(InputError, match="compares frames, and the video has 1"):
        vn.consistency_score(f[:1])


def test_dino_position_table_as_dino_resizes_it():
    table = torch.randn(1, 1 + 14 * 14, 8)
    assert vn._dino_pos_embed(table, 224, 224, 16) is table  # trained grid: untouched
    wide = vn._dino_pos_embed(table, 224, 298, 16)  # 14 × 18 patches
    assert wide.shape == (1, 1 + 14 * 18, 8) and torch.equal(wide[:, 0], table[:, 0])


# ------------------------------------------------------------------------------------------------ end to end
def _opts(tasks, **kw):
    return ScoreOptions.with_legacy(tasks=tasks, num_samples=2, progress=False, num_workers=0, **kw)


def test_background_consistency_matches_an_independent_computation(tiny_openai_clip):
    import open_clip
    from torchvision import transforms as T

    (doc,) = score("demo-video", _opts(["background-consistency"])).results
    assert doc["status"] == "ok", doc
    assert doc["protocol"] == "vbench-background-consistency-native-clip-vitb32"
    model = open_clip.load_openai_model(str(tiny_openai_clip), precision="fp32", device="cpu").eval()
    clip_transform = T.Compose([  # VBench's clip_transform(224), on float frames in 0..255
        T.Resize(224, interpolation=T.InterpolationMode.BICUBIC, antialias=False), T.CenterCrop(224),
        T.Lambda(lambda x: x.float().div(255.0)),
        T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))])
    expected = []
    for name in doc["per_sample"]["name"]:
        frames = torch.tensor(read_all_frames(name), dtype=torch.float32).permute(0, 3, 1, 2)
        with torch.no_grad():
            feats = model.encode_image(clip_transform(frames)).numpy().astype(np.float64)
        expected.append(_vbench_formula(feats))
    assert len(expected) == 2
    assert doc["per_sample"]["background_consistency"] == pytest.approx(expected, abs=1e-5)
    assert doc["metrics"]["background_consistency"] == pytest.approx(np.mean(expected), abs=1e-5)
    assert 0.0 < doc["metrics"]["background_consistency"] <= 1.0


@pytest.fixture
def tiny_dino(tmp_path, monkeypatch):
    import timm

    def small_vit():
        return timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0, depth=2, embed_dim=64,
                                 num_heads=2)

    torch.manual_seed(0)
    model = small_vit()
    path = tmp_path / "dino_vitbase16_pretrain.pth"
    torch.save(model.state_dict(), path)
    install_standin_weights(monkeypatch, "dino-vitb16", path)
    monkeypatch.setattr(vn, "_dino_architecture", small_vit)
    return model.eval()


def test_subject_consistency_with_a_standin_dino(tiny_dino):
    from torchvision import transforms as T

    (doc,) = score("demo-video", _opts(["subject-consistency"])).results
    assert doc["status"] == "ok", doc
    dino_transform = T.Compose([  # VBench's dino_transform(224): no crop, then /255
        T.Resize(size=224, antialias=False), T.Lambda(lambda x: x.div(255.0)),
        T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    expected = []
    for name in doc["per_sample"]["name"]:
        frames = torch.tensor(read_all_frames(name), dtype=torch.float32).permute(0, 3, 1, 2)
        assert len(frames) == 16  # every frame of demo-video's clips
        with torch.no_grad():  # one frame at a time, timm's own forward: the CLS token after the final norm
            feats = np.concatenate([tiny_dino(img.unsqueeze(0)).numpy() for img in dino_transform(frames)])
        expected.append(_vbench_formula(feats.astype(np.float64)))
    assert doc["per_sample"]["subject_consistency"] == pytest.approx(expected, abs=1e-5)
    assert doc["metrics"]["subject_consistency"] == pytest.approx(np.mean(expected), abs=1e-5)
    assert doc["protocol"] == "vbench-subject-consistency-native-dino-vitb16"
    assert doc["provenance"]["weights_sha256"]["vbench-subject-consistency-native-dino-vitb16"] == \
        weights.expected_digest("dino-vitb16")


def test_second_run_reads_each_video_from_the_score_cache(tiny_dino, tmp_path, monkeypatch):
    """Issue 20 item 4: per video content, the frame scores' (mean, sum, count) are cached under the network's
    identity and the frame sampling; a second run computes no features and gives the same numbers."""
    calls = {"frames": 0}
    real = vn._DinoFrames.__call__

    def counted(self, frames):
        calls["frames"] += len(frames)
        return real(self, frames)

    monkeypatch.setattr(vn._DinoFrames, "__call__", counted)
    run = lambda **kw: score("demo-video", _opts(["subject-consistency"], store=tmp_path / "store",  # noqa: E731
                                                 **kw)).results[0]
    first = run()
    assert first["status"] == "ok" and calls["frames"] == 32 and first["details"]["cached_samples"] == 0
    again = run()
    assert calls["frames"] == 32 and again["details"]["cached_samples"] == 2
    assert again["metrics"] == first["metrics"] and again["per_sample"] == first["per_sample"]
    sampled = run(task_options={"subject-consistency": {"vbench_frames": 4}})  # another sampling: computed again
    assert calls["frames"] == 40 and sampled["details"]["cached_samples"] == 0


def test_missing_weights_offline_are_stored_skips():
    summary = score("demo-video", _opts(["subject-consistency", "background-consistency"]))
    docs = {d["task"]: d for d in summary.results}
    assert docs["subject-consistency"]["status"] == "skipped"
    assert "evalsuite weights fetch dino-vitb16" in docs["subject-consistency"]["fix"]
    assert "evalsuite weights import dino-vitb16" in docs["subject-consistency"]["fix"]
    assert docs["background-consistency"]["status"] == "skipped"
    assert "evalsuite weights fetch clip-vit-b-32-openai" in docs["background-consistency"]["fix"]
    assert "evalsuite weights import clip-vit-b-32-openai" in docs["background-consistency"]["fix"]
    assert not (ScoreOptions().store / "samples").exists()  # skipped before generating anything


def test_static_non_square_video_scores_one(tmp_path, tiny_dino, tiny_openai_clip):
    from evalsuite.videoio import write_video

    folder = tmp_path / "videos"
    folder.mkdir()
    still = np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)  # DINO sees 224 × 373
    write_video(folder / "still.mp4", np.stack([still] * 4), lossless=True)
    docs = {d["task"]: d for d in score(f"folder:{folder}", ScoreOptions(
        tasks=["subject-consistency", "background-consistency"], progress=False)).results}
    assert docs["subject-consistency"]["metrics"]["subject_consistency"] == pytest.approx(1.0, abs=1e-6)
    assert docs["background-consistency"]["metrics"]["background_consistency"] == pytest.approx(1.0, abs=1e-6)
