"""Video plumbing and native video tasks: frame sampling on a video with numbered frames, temporal flickering
against a hand computation on a synthetic MP4, demo-video end to end, and bad videos."""

from __future__ import annotations

import numpy as np
import pytest

from evalsuite.errors import InputError
from evalsuite.runner import ScoreOptions, score
from evalsuite.videoio import probe, read_frames, write_video


def _numbered(path, count=12, size=16):
    """Frame k is filled with the value 10·k (lossless, so decoding gives it back exactly)."""
    frames = np.stack([np.full((size, size, 3), 10 * k, dtype=np.uint8) for k in range(count)])
    write_video(path, frames, lossless=True)
    return frames


def test_frame_sampling_is_explicit(tmp_path):
    _numbered(tmp_path / "n.mp4")
    picked = read_frames(tmp_path / "n.mp4", num_frames=4, stride=3, start=1)
    assert [int(f[0, 0, 0]) for f in picked] == [10, 40, 70, 100]  # frames 1, 4, 7, 10
    assert probe(tmp_path / "n.mp4")["frames"] == 12
    with pytest.raises(InputError, match="fewer than"):
        read_frames(tmp_path / "n.mp4", num_frames=5, stride=3, start=1)  # would need frame 13


def test_temporal_flickering_hand_computed(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    _numbered(folder / "a.mp4", count=5)  # adjacent frames differ by exactly 10 everywhere
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    write_video(folder / "b.mp4", noisy, lossless=True)
    diffs = [np.abs(noisy[i + 1].astype(np.float64) - noisy[i]).mean() for i in range(4)]
    expected_b = (255 - np.mean(diffs)) / 255
    (doc,) = score(f"folder:{folder}", ScoreOptions(tasks=["temporal-flickering"], progress=False,
                                                     num_workers=0)).results
    per = dict(zip([p.rsplit("/", 1)[-1] for p in doc["per_sample"]["name"]], doc["per_sample"]["temporal_flickering"]))
    assert per["a.mp4"] == pytest.approx((255 - 10) / 255, rel=1e-6)
    assert per["b.mp4"] == pytest.approx(expected_b, rel=1e-6)
    assert doc["metrics"]["temporal_flickering"] == pytest.approx(((255 - 10) / 255 + expected_b) / 2, rel=1e-6)
    assert doc["details"]["sampling"] == {"frames": "all"}
    assert doc["protocol"] == "vbench-temporal-flickering-native"


def test_bad_videos_are_counted_skips(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    _numbered(folder / "good.mp4", count=6)
    _numbered(folder / "short.mp4", count=2)  # every frame is read: 2 frames are enough
    _numbered(folder / "single.mp4", count=1)  # nothing to compare
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "junk.mp4").write_bytes(b"not a video at all")
    (doc,) = score(f"folder:{folder}", ScoreOptions(tasks=["temporal-flickering"], progress=False)).results
    assert doc["num_samples"] == 2 and doc["skipped_samples"]["count"] == 3
    with pytest.raises(InputError):
        score(f"folder:{folder}", ScoreOptions(tasks=["temporal-flickering"], strict=True, progress=False))
    (doc,) = score(f"folder:{folder}", ScoreOptions.with_legacy(tasks=["temporal-flickering"], vbench_frames=4,
                                                    progress=False)).results
    assert doc["num_samples"] == 1 and doc["skipped_samples"]["count"] == 4  # sampled: short.mp4 is too short
    with pytest.raises(InputError, match="fewer than --num-samples"):
        score(f"folder:{folder}", ScoreOptions(tasks=["temporal-flickering"], num_samples=9, progress=False))


def test_demo_video_end_to_end_and_attribution(tmp_path):
    summary = score("demo", ScoreOptions(tasks=["temporal-flickering", "video-speed"], num_samples=3,
                                         video_model="demo-video", progress=False))
    docs = {d["task"]: d for d in summary.results}
    assert all(d["status"] == "ok" for d in docs.values())
    assert docs["temporal-flickering"]["model"]["spec"] == "demo-video"
    assert 0.9 < docs["temporal-flickering"]["metrics"]["temporal_flickering"] < 1.0
    assert docs["video-speed"]["metrics"]["frames_per_second"] > 0
    videos = list((summary.store / "samples").rglob("*.mp4"))
    assert len(videos) == 3 and probe(videos[0])["frames"] == 16
    again = score("demo-video", ScoreOptions(tasks=["temporal-flickering"], num_samples=3, progress=False))
    assert again.results[0]["provenance"]["samples_generated_this_run"] == 0
    assert again.results[0]["metrics"] == docs["temporal-flickering"]["metrics"]


def test_video_task_on_an_image_model_is_a_skip():
    (doc,) = score("demo", ScoreOptions(tasks=["temporal-flickering"], num_samples=2, progress=False)).results
    assert doc["status"] == "skipped" and "--video-model" in doc["fix"]


def test_mixed_frame_rates_are_a_clear_error(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    frames = np.zeros((4, 16, 16, 3), dtype=np.uint8)
    write_video(folder / "a.mp4", frames, fps=8, lossless=True)
    write_video(folder / "b.mp4", frames, fps=24, lossless=True)
    with pytest.raises(InputError, match="different frame rates"):
        score(f"folder:{folder}", ScoreOptions.with_legacy(tasks=["temporal-flickering"], frames=4, progress=False))


def test_every_frame_by_default_and_sampling_is_its_own_protocol(tmp_path):
    """A 14-frame video (shorter than --frames 16) is scored over all 14 frames, as VBench reads it;
    --vbench-frames N samples N frames (stride, start) under its own protocol name, recorded in details."""
    folder = tmp_path / "videos"
    folder.mkdir()
    frames = _numbered(folder / "fourteen.mp4", count=14)
    (doc,) = score(f"folder:{folder}", ScoreOptions(tasks=["temporal-flickering"], progress=False)).results
    assert doc["status"] == "ok" and doc["num_samples"] == 1
    assert doc["metrics"]["temporal_flickering"] == pytest.approx((255 - 10) / 255, rel=1e-6)
    assert doc["protocol"] == "vbench-temporal-flickering-native" and doc["details"]["sampling"] == {"frames": "all"}
    assert doc["task_version"] == "2"
    (doc,) = score(f"folder:{folder}", ScoreOptions.with_legacy(tasks=["temporal-flickering"], vbench_frames=4,
                                                                frame_stride=3,
                                                    frame_start=1, progress=False)).results
    assert doc["protocol"] == "vbench-temporal-flickering-native-sampled-4f-s3-from1"
    assert doc["details"]["sampling"] == {"num_frames": 4, "stride": 3, "start": 1}
    assert doc["metrics"]["temporal_flickering"] == pytest.approx((255 - 30) / 255, rel=1e-6)  # frames 1, 4, 7, 10
    (doc,) = score(f"folder:{folder}", ScoreOptions.with_legacy(tasks=["temporal-flickering"], vbench_frames=14,
                                                    progress=False)).results
    assert doc["protocol"] == "vbench-temporal-flickering-native-sampled-14f-s1"
    assert len(frames) == 14


@pytest.mark.parametrize("bad", [{"vbench_frames": 1}, {"vbench_frames": 4, "frame_stride": 0},
                                 {"vbench_frames": 4, "frame_start": -1}])
def test_bad_frame_sampling_is_refused_before_any_video_is_made(tmp_path, bad):
    store = tmp_path / "store"
    with pytest.raises(InputError) as err:
        score("demo-video", ScoreOptions.with_legacy(tasks=["temporal-flickering"], store=store, progress=False,
                                                     num_samples=2, task_options={"temporal-flickering": bad}))
    assert "pass" in err.value.fix
    assert not [p for p in store.rglob("*") if p.suffix in (".mp4", ".avi", ".webm")]  # nothing was generated
