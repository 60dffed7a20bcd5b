"""StyleGAN-V `fvd2048_16f` reference side, hand-worked (no package of StyleGAN-V exists). Cited from
universome/stylegan-v at 3fecd69:

* src/metrics/metric_main.py L115-117: `fvd2048_16f` = compute_fvd(opts, max_real=2048, num_gen=2048, num_frames=16).
* src/metrics/frechet_video_distance.py L26-28: the real dataset loads `num_frames` consecutive frames with
  `discard_short_videos=True`; L31-33: its stats use `max_items=max_real`; L39: generated videos
  `load_n_consecutive_random_offset = False` (frame 0).
* src/metrics/metric_utils.py L222-230: num_items = min(len(dataset), max_items), items 0..num_items-1 in order
  (one GPU), i.e. the first max_real videos of the dataset.
* src/training/dataset.py L266: `load_n_consecutive_random_offset=True` by default; L283/L299: videos sorted by path;
  L323-324: videos with fewer than load_n_consecutive * subsample_factor frames are dropped before indexing;
  L402-403: `random.randint(0, n - load_n_consecutive*subsample_factor + subsample_factor - 1)`; L406: frames
  offset, offset + s, ... .

StyleGAN-V draws the offsets with Python's unseeded `random` in DataLoader workers, so its exact offsets cannot be
reproduced; evalsuite reproduces the rule and seeds the draw (`--seed`, the file's sha256), recorded in the key.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from evalsuite import refstats
from evalsuite.errors import IncompatibleStatsError, InputError
from evalsuite.runner import REFERENCE_SEED_OFFSET, ScoreOptions, score
from evalsuite.video_features import build, random_start
from evalsuite.videoio import write_video
from tests.test_fvd import _demo_paths, _independent_fvd, _stylegan_v_start, i3d_standin  # noqa: F401 (fixture)


def _sha(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def test_random_start_follows_stylegan_v_rule():
    # n = 20 frames, 16 taken: randint(0, 20 - 16 + 1 - 1) = randint(0, 4), every value reachable
    draws = [random_start(20, 16, 1, 0, _sha(i)) for i in range(400)]
    assert set(draws) == {0, 1, 2, 3, 4}
    assert max(np.bincount(draws)) < 120  # roughly uniform (80 expected per value)
    # a video of exactly the clip length starts at 0
    assert {random_start(16, 16, 1, 0, _sha(i)) for i in range(50)} == {0}
    # subsample 2: randint(0, 32 - 32 + 2 - 1) = randint(0, 1)
    assert {random_start(32, 16, 2, 0, _sha(i)) for i in range(50)} == {0, 1}
    # discard_short_videos keeps n >= 16 * 2 = 32, even though 31 frames would hold frames 0, 2, ..., 30
    with pytest.raises(InputError, match="StyleGAN-V discards"):
        random_start(31, 16, 2, 0, _sha(0))
    with pytest.raises(InputError, match="shorter than 16x1"):
        random_start(15, 16, 1, 0, _sha(0))
    # the draw depends on the seed and the content only
    assert random_start(40, 16, 1, 3, _sha(7)) == random_start(40, 16, 1, 3, _sha(7))
    assert [random_start(40, 16, 1, 0, _sha(i)) for i in range(20)] != \
        [random_start(40, 16, 1, 1, _sha(i)) for i in range(20)]


def _folders(tmp_path):
    """real/: a00 too short (5 frames), a01..a05 of 12 frames; gen/: 4 videos of 8 frames."""
    real, gen = tmp_path / "real", tmp_path / "gen"
    real.mkdir()
    gen.mkdir()
    rng = np.random.default_rng(0)
    write_video(real / "a00.mp4", rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8), lossless=True)
    for i in range(1, 6):
        write_video(real / f"a{i:02d}.mp4", rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8), lossless=True)
    for i in range(4):
        frames = (rng.integers(0, 128, (8, 32, 32, 3)) + 60 + 10 * i).astype(np.uint8)
        write_video(gen / f"g{i}.mp4", frames, lossless=True)
    return real, gen


def _opts(**kw):
    base = {"tasks": ["fvd"], "num_workers": 0, "progress": False, "batch_size": 4, "frames": 8}
    return ScoreOptions.with_legacy(**{**base, **kw})


def test_reference_is_first_max_real_usable_videos_at_random_starts(i3d_standin, tmp_path):  # noqa: F811
    real, gen = _folders(tmp_path)
    net = torch.jit.load(str(i3d_standin)).eval()
    gen_paths = sorted(gen.glob("*.mp4"))
    expected_refs = [real / "a01.mp4", real / "a02.mp4", real / "a03.mp4"]  # a00 discarded, then the first 3
    starts = [_stylegan_v_start(p, 8, 1, 0) for p in expected_refs]
    assert len(set(starts)) > 1  # offsets in 0..4 actually vary here

    (doc,) = score(f"folder:{gen}", _opts(ref=f"folder:{real}", fvd_max_real=3)).results
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["protocol"] == "fvd-i3d-8f-maxreal3"
    d = doc["details"]
    assert (d["n_reference"], d["n_reference_skipped"], d["start"]) == (3, 1, 0)
    assert "start=random(seed=0),first=3|" in d["reference_extractor_key"]["preprocessing"]
    assert doc["metrics"]["fvd"] == pytest.approx(_independent_fvd(net, gen_paths, expected_refs), rel=1e-6)

    # another seed: other reference offsets (generated clips still from frame 0), recorded in the key
    (seeded,) = score(f"folder:{gen}", _opts(ref=f"folder:{real}", fvd_max_real=3, seed=1)).results
    assert "start=random(seed=1),first=3|" in seeded["details"]["reference_extractor_key"]["preprocessing"]
    assert seeded["metrics"]["fvd"] == pytest.approx(
        _independent_fvd(net, gen_paths, expected_refs, ref_seed=1), rel=1e-6)

    # the default cap: every usable video of this small folder (5), the standard protocol name
    (full,) = score(f"folder:{gen}", _opts(ref=f"folder:{real}")).results
    assert full["protocol"] == "fvd-i3d-8f" and full["details"]["n_reference"] == 5
    assert full["metrics"]["fvd"] == pytest.approx(
        _independent_fvd(net, gen_paths, sorted(real.glob("a0[1-5].mp4"))), rel=1e-6)


def test_stored_reference_must_share_cap_and_seed(i3d_standin, tmp_path):  # noqa: F811
    from evalsuite.tasks.video_fvd import reference_stats

    real, gen = _folders(tmp_path)
    ext = build("i3d", sampling={"num_frames": 8})
    ref, _ = reference_stats(f"folder:{real}", ext, {"num_frames": 8}, store_root=tmp_path / "store", max_real=3,
                             num_workers=0, progress=False)
    assert ref.n == 3 and ref.meta["sampling"]["max_videos"] == 3 and ref.meta["sampling"]["start"] == "random"
    refstats.save_npz(ref, tmp_path / "real3.npz")
    (by_npz,) = score(f"folder:{gen}", _opts(ref=str(tmp_path / "real3.npz"), fvd_max_real=3)).results
    (by_folder,) = score(f"folder:{gen}", _opts(ref=f"folder:{real}", fvd_max_real=3)).results
    assert by_npz["metrics"]["fvd"] == pytest.approx(by_folder["metrics"]["fvd"], rel=1e-12)
    with pytest.raises(IncompatibleStatsError, match="first=3"):
        score(f"folder:{gen}", _opts(ref=str(tmp_path / "real3.npz")))
    with pytest.raises(IncompatibleStatsError, match=r"seed=0\),first=3"):
        score(f"folder:{gen}", _opts(ref=str(tmp_path / "real3.npz"), fvd_max_real=3, seed=1))


def test_model_reference_is_capped(i3d_standin, tmp_path):  # noqa: F811
    (doc,) = score("demo-video", _opts(ref="model:demo-video", num_samples=4, fvd_max_real=3)).results
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["details"]["n_reference"] == 3 and doc["details"]["reference"]["seeds"] == [REFERENCE_SEED_OFFSET, 3]
    net = torch.jit.load(str(i3d_standin)).eval()
    store = ScoreOptions().store
    expected = _independent_fvd(net, _demo_paths(store, 4, 0), _demo_paths(store, 3, REFERENCE_SEED_OFFSET))
    assert doc["metrics"]["fvd"] == pytest.approx(expected, rel=1e-6)
