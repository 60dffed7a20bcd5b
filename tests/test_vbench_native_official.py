"""Agreement of the native VBench dimensions with VBench 0.1.5's own code (`.official/vbench`, imported through
tests.official): `vbench.utils.dino_transform` / `clip_transform` against our frame preparation, and VBench's own
per-video loops `subject_consistency.subject_consistency`, `background_consistency.background_consistency` and
`temporal_flickering.temporal_flickering` against our tasks on the same lossless videos of 14 and 16 frames.

Stubbed, as irrelevant to the functions under test: `decord` (VBench's `load_video` reads MP4s with decord's
VideoReader; the stub hands it the frames PyAV decodes, so VBench's own `load_video` code runs on the same uint8
frames), `cv2` (`get_frames` reads BGR frames with cv2.VideoCapture: the stub gives the same frames in BGR order;
`cv2.absdiff` of two float32 arrays is |a − b|, OpenCV saturates only integer types) and `clip` (imported at the top
of background_consistency.py; the model is passed in). Networks: random-init stand-ins (fixed seed) shared by both
sides — timm's own ViT forward for DINO (square frames, so its fixed 224 grid applies), the tiny OpenAI-layout CLIP
loaded by open_clip for CLIP."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

import evalsuite.tasks.video_native as vn
from evalsuite.runner import ScoreOptions, score
from evalsuite.videoio import read_all_frames, write_video
from tests.official import official
from tests.test_video_consistency import tiny_dino  # noqa: F401  (fixture)

TOL = 1e-6  # per-video and dimension scores (float32 features; VBench sums Python floats, we sum float64)


class _DecordReader:
    """decord.VideoReader as `vbench.utils.load_video` uses it: len() and get_batch(indices).asnumpy()."""

    def __init__(self, path, width=None, height=None, num_threads=1):
        assert width is None and height is None
        self.frames = read_all_frames(path)

    def __len__(self):
        return len(self.frames)

    def get_batch(self, indices):
        return types.SimpleNamespace(asnumpy=lambda: self.frames[list(indices)])


class _Capture:
    """cv2.VideoCapture as `vbench.temporal_flickering.get_frames` uses it; frames in OpenCV's BGR order."""

    def __init__(self, path):
        self.frames = list(read_all_frames(path)[..., ::-1])

    def isOpened(self):  # noqa: N802 (OpenCV's name)
        return True

    def read(self):
        return (True, self.frames.pop(0)) if self.frames else (False, None)

    def release(self):
        pass


@pytest.fixture
def vbench(monkeypatch):
    """VBench's modules with decord, cv2 and clip stubbed (see the module docstring)."""
    decord = types.ModuleType("decord")
    decord.VideoReader, decord.cpu = _DecordReader, lambda *a: None
    decord.bridge = types.SimpleNamespace(set_bridge=lambda name: None)
    cv2 = types.ModuleType("cv2")
    cv2.VideoCapture, cv2.absdiff = _Capture, lambda a, b: np.abs(a - b)
    for name, module in (("decord", decord), ("cv2", cv2), ("clip", types.ModuleType("clip"))):
        monkeypatch.setitem(sys.modules, name, module)
    mods = types.SimpleNamespace(utils=official("vbench.utils"),
                                 subject=official("vbench.subject_consistency"),
                                 background=official("vbench.background_consistency"),
                                 flicker=official("vbench.temporal_flickering"))
    monkeypatch.setattr(mods.utils, "VideoReader", _DecordReader)  # bound at import time
    monkeypatch.setattr(mods.flicker, "cv2", cv2)
    return mods


def _videos(folder, size=(32, 32), lengths=(14, 16)):
    """Lossless videos (decoded frames equal the written ones): a random image drifting a pixel per frame plus
    noise, one video per length."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i, count in enumerate(lengths):
        base = rng.integers(0, 256, (*size, 3)).astype(np.int16)
        frames = np.stack([np.roll(base, k, axis=1) + rng.integers(-20, 21, base.shape) for k in range(count)])
        path = folder / f"v{i}.mp4"
        write_video(path, np.clip(frames, 0, 255).astype(np.uint8), lossless=True)
        paths.append(str(path))
    return paths


def _ours(folder, task):
    (doc,) = score(f"folder:{folder}", ScoreOptions(tasks=[task], progress=False, num_workers=0)).results
    assert doc["status"] == "ok", doc
    return doc


def _per_video(doc, metric):
    return dict(zip(doc["per_sample"]["name"], doc["per_sample"][metric]))


@pytest.mark.parametrize("size", [(32, 32), (48, 80), (61, 37)])
def test_frame_preparation_equals_vbench_transforms(vbench, tmp_path, size):
    (path,) = _videos(tmp_path / "v", size=size, lengths=(3,))
    loaded = vbench.utils.load_video(path)  # VBench's own reader: float (T, C, H, W) in 0..255
    frames = read_all_frames(path)
    assert torch.equal(loaded, torch.from_numpy(frames).permute(0, 3, 1, 2).float())
    assert torch.equal(vn.dino_input(frames), vbench.utils.dino_transform(224)(loaded))
    assert torch.equal(vn.clip_input(frames), vbench.utils.clip_transform(224)(loaded))
    assert min(vn.dino_input(frames).shape[-2:]) == 224 and vn.clip_input(frames).shape[-2:] == (224, 224)


def test_subject_consistency_equals_vbench(vbench, tmp_path, tiny_dino):  # noqa: F811
    paths = _videos(tmp_path / "videos")
    doc = _ours(tmp_path / "videos", "subject-consistency")
    with torch.no_grad():
        dimension, results = vbench.subject.subject_consistency(tiny_dino, paths, "cpu", False)
    ours = _per_video(doc, "subject_consistency")
    assert len(results) == 2
    for r in results:
        assert ours[r["video_path"]] == pytest.approx(r["video_results"], abs=TOL)
    assert doc["metrics"]["subject_consistency"] == pytest.approx(dimension, abs=TOL)
    assert doc["details"]["frames_scored"] == 13 + 15  # every frame after the first, across both videos


def test_subject_consistency_non_square_equals_vbench_loop(vbench, tmp_path, tiny_dino):  # noqa: F811
    """Frames of 48 × 80 (DINO sees 224 × 373, its position table resized): VBench's loop and transform with our
    DINO forward as the model (timm's own forward only takes its 224 grid)."""
    paths = _videos(tmp_path / "videos", size=(48, 80), lengths=(5,))
    doc = _ours(tmp_path / "videos", "subject-consistency")
    with torch.no_grad():
        dimension, _ = vbench.subject.subject_consistency(lambda x: vn.dino_forward(tiny_dino, x), paths, "cpu",
                                                          False)
    assert doc["metrics"]["subject_consistency"] == pytest.approx(dimension, abs=TOL)


def test_background_consistency_equals_vbench(vbench, tmp_path, tiny_openai_clip):
    import open_clip

    paths = _videos(tmp_path / "videos", size=(48, 80))
    doc = _ours(tmp_path / "videos", "background-consistency")
    model = open_clip.load_openai_model(str(tiny_openai_clip), precision="fp32", device="cpu").eval()
    with torch.no_grad():
        dimension, results = vbench.background.background_consistency(model, None, paths, "cpu", False)
    ours = _per_video(doc, "background_consistency")
    for r in results:
        assert ours[r["video_path"]] == pytest.approx(r["video_results"], abs=TOL)
    assert doc["metrics"]["background_consistency"] == pytest.approx(dimension, abs=TOL)
    assert [r["cnt_per_video"] for r in results] == [13, 15]


def test_temporal_flickering_equals_vbench(vbench, tmp_path):
    paths = _videos(tmp_path / "videos", size=(48, 80))
    doc = _ours(tmp_path / "videos", "temporal-flickering")
    dimension, results = vbench.flicker.temporal_flickering(paths)
    ours = _per_video(doc, "temporal_flickering")
    for r in results:
        assert ours[r["video_path"]] == pytest.approx(r["video_results"], abs=TOL)
        assert vn.flicker_score(read_all_frames(r["video_path"])) == pytest.approx(
            vbench.flicker.cal_score(r["video_path"]), abs=TOL)
    assert doc["metrics"]["temporal_flickering"] == pytest.approx(dimension, abs=TOL)
