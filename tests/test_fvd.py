"""FVD: the Fréchet maths on Gaussians with a closed form, the task end to end with a scripted stand-in for StyleGAN-V's
I3D TorchScript (random init, fixed seed: a test fixture, never offered as the real weights) against an independent
computation, the feature cache, frame sampling in the key, counted skips, counts, references and missing weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evalsuite import refstats, weights
from evalsuite.errors import IncompatibleStatsError, InputError
from evalsuite.metrics import frechet_distance
from evalsuite.models import resolve_model
from evalsuite.runner import REFERENCE_SEED_OFFSET, ScoreOptions, score
from evalsuite.samples import SampleStore, make_requests
from evalsuite.stats import StreamingStats
from evalsuite.video_features import (
    I3D_WEIGHTS,
    build,
    extract_videos,
    protocol_name,
)
from evalsuite.videoio import read_frames, write_video
from tests.conftest import install_standin_weights


# ------------------------------------------------------------------------------------------------ maths
def _closed_form(mu1, a, mu2, b):
    """FD of N(mu1, Q diag(a) Qᵀ) and N(mu2, Q diag(b) Qᵀ) (commuting covariances), by hand."""
    return float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))


def _rotation(d, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


def test_frechet_exact_on_given_mu_sigma():
    rng = np.random.default_rng(0)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    a, b = rng.uniform(0.5, 3.0, d), rng.uniform(0.5, 3.0, d)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(_closed_form(mu1, a, mu2, b),
                                                                               rel=1e-12)
    q = _rotation(d, 1)
    got = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(_closed_form(mu1, a, mu2, b), rel=1e-10)
    assert frechet_distance(mu1, np.diag(a), mu1, np.diag(a)) == pytest.approx(0.0, abs=1e-12)


def test_frechet_through_streaming_stats_matches_population():
    """Samples -> StreamingStats (biased, as the task uses) -> FD, against the population closed form."""
    d, n = 5, 200_000
    rng = np.random.default_rng(3)
    q = _rotation(d, 4)
    mu1, mu2 = np.zeros(d), np.full(d, 1.5)
    a, b = np.array([1.0, 2.0, 0.5, 3.0, 1.5]), np.array([2.0, 0.5, 1.0, 1.0, 4.0])
    x = rng.normal(size=(n, d)) * np.sqrt(a) @ q.T + mu1
    y = rng.normal(size=(n, d)) * np.sqrt(b) @ q.T + mu2
    sx, sy = StreamingStats(d), StreamingStats(d)
    for chunk in np.array_split(np.arange(n), 7):  # streamed in uneven batches
        sx.update(x[chunk])
        sy.update(y[chunk])
    np.testing.assert_allclose(sx.cov(unbiased=False), np.cov(x, rowvar=False, bias=True), rtol=1e-9, atol=1e-12)
    ref = refstats.from_stream("y", sy, {"extractor": "t", "weights_sha256": "0", "preprocessing": "p", "dim": d},
                               source="test", unbiased=False)
    got = frechet_distance(sx.mean, sx.cov(unbiased=False), ref.mu, ref.covariance(unbiased=False))
    assert got == pytest.approx(_closed_form(mu1, a, mu2, b), rel=1e-2)
    # a reference stored unbiased is converted exactly to the biased covariance FVD uses
    stored_unbiased = refstats.from_stream("y", sy, ref.meta, source="test", unbiased=True)
    np.testing.assert_allclose(stored_unbiased.covariance(unbiased=False), sy.cov(unbiased=False), rtol=1e-12)


# ------------------------------------------------------------------------------------------------ fixtures
class I3DStandIn(nn.Module):
    """The calling convention of StyleGAN-V's i3d_torchscript.pt: uint8 [B, C, T, H, W], rescale/resize flags,
    (B, 400) pre-softmax features. Random init with a fixed seed."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.conv = nn.Conv3d(3, 8, kernel_size=3, stride=2, padding=1)
        self.fc = nn.Linear(8 * 2 * 2 * 2, 400)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        x = x.float()
        if rescale:
            x = x / 127.5 - 1.0
        if resize:
            x = F.interpolate(x, size=[int(x.shape[2]), 32, 32], mode="trilinear", align_corners=False)
        h = torch.tanh(self.conv(x))
        h = F.adaptive_avg_pool3d(h, (2, 2, 2)).flatten(1)
        out = self.fc(h) * 5.0
        if not return_features:
            out = torch.softmax(out, dim=1)
        return out


@pytest.fixture
def i3d_standin(tmp_path, monkeypatch):
    """The scripted stand-in saved as i3d_torchscript.pt and installed under `i3d-torchscript` (its own sha256)."""
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.save(torch.jit.script(I3DStandIn().eval()), str(path))
    install_standin_weights(monkeypatch, I3D_WEIGHTS, path)
    return path


def _clips(count, frames=8, size=(32, 32), seed=0, bright=False):
    rng = np.random.default_rng(seed)
    h, w = size
    out = []
    for _ in range(count):
        base = rng.uniform(150 if bright else 0, 255, 3)
        drift = rng.normal(0, 6, 3)
        noise = rng.normal(0, 30, (frames, h, w, 3))
        clip = base + drift * np.arange(frames)[:, None, None, None] + noise
        out.append(np.clip(clip, 0, 255).astype(np.uint8))
    return out


def _write_folder(folder, count, frames=8, size=(32, 32), seed=0, prefix="clip"):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, clip in enumerate(_clips(count, frames, size, seed)):
        path = folder / f"{prefix}{k:03d}.mp4"
        write_video(path, clip, lossless=True)
        paths.append(path)
    return paths


def _opts(**kw):
    base = {"tasks": ["fvd"], "num_workers": 0, "progress": False, "batch_size": 4, "frames": 8}
    base.update(kw)
    return ScoreOptions.with_legacy(**base)


def _stylegan_v_start(path, frames, stride, seed=0):
    """StyleGAN-V's reference clip start (src/training/dataset.py L402-403: random.randint(0, n - frames*stride +
    stride - 1)), drawn as evalsuite documents it: default_rng([seed, first 64 bits of the file's sha256])."""
    import av

    with av.open(str(path)) as container:
        n = sum(1 for _ in container.decode(container.streams.video[0]))
    high = n - frames * stride + stride - 1
    sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return int(np.random.default_rng([seed, int(sha[:16], 16)]).integers(0, high + 1))


def _independent_fvd(net, sample_paths, ref_paths, frames=8, stride=1, start=0, ref_seed=0):
    """Generated clips from `start`, reference clips at StyleGAN-V's random start (seeded as evalsuite records)."""
    def feats(paths, starts):
        clips = np.stack([read_frames(p, frames, stride, s) for p, s in zip(paths, starts)])
        x = torch.from_numpy(clips).permute(0, 4, 1, 2, 3).contiguous()
        with torch.no_grad():
            return net(x, rescale=True, resize=True, return_features=True).numpy().astype(np.float64)

    f1 = feats(sample_paths, [start] * len(sample_paths))
    f2 = feats(ref_paths, [_stylegan_v_start(p, frames, stride, ref_seed) for p in ref_paths])
    return frechet_distance(f1.mean(0), np.cov(f1, rowvar=False, bias=True),
                            f2.mean(0), np.cov(f2, rowvar=False, bias=True))


def _demo_paths(store, n, seed):
    source = resolve_model("demo-video")
    requests = make_requests(source.prompts, n, seed)
    return [SampleStore(store / "samples", source.model_id).path_for(r, "video") for r in requests]


# ------------------------------------------------------------------------------------------------ end to end
def test_demo_video_fvd_end_to_end_equals_independent_computation(i3d_standin, tmp_path):
    opts = _opts(ref="model:demo-video", num_samples=4)
    (doc,) = score("demo-video", opts).results
    assert doc["status"] == "ok", doc.get("reason")
    assert doc["protocol"] == "fvd-i3d-8f"
    details = doc["details"]
    assert (details["frames"], details["stride"], details["start"]) == (8, 1, 0)
    assert details["covariance"] == "biased" and details["resolutions"] == {"64x64": 4}
    assert details["num_videos"] == 4 and details["n_reference"] == 4 and doc["num_samples"] == 4
    assert "not comparable to fvd2048" in details["note"]
    assert details["reference"]["seeds"] == [REFERENCE_SEED_OFFSET, 4]
    assert "frames=8,stride=1,start=0|" in details["extractor_key"]["preprocessing"]
    # the real side: StyleGAN-V's random clip start (seeded by --seed) and max_real=2048 in its key
    assert details["reference_start"] == "random" and details["random_start"]["seed"] == 0
    assert "start=random(seed=0),first=2048|" in details["reference_extractor_key"]["preprocessing"]
    assert details["reference_cap"]["max_real"] == 2048
    assert details["extractor_key"]["weights_sha256"] == weights.REGISTRY[I3D_WEIGHTS].sha256
    prov = doc["provenance"]
    assert prov["weights_sha256"]["i3d-torchscript-stylegan-v"] == weights.REGISTRY[I3D_WEIGHTS].sha256
    assert prov["extractors"]["video:i3d"]["dim"] == 400
    assert prov["reference_stats"][0]["covariance"] == "biased"

    store = opts.store
    net = torch.jit.load(str(i3d_standin)).eval()
    expected = _independent_fvd(net, _demo_paths(store, 4, 0), _demo_paths(store, 4, REFERENCE_SEED_OFFSET))
    assert expected > 0
    assert doc["metrics"]["fvd"] == pytest.approx(expected, rel=1e-6)
    assert (details["n_computed_features"], details["n_reference_computed_features"]) == (4, 4)

    # a second run: every feature comes from the cache, nothing is generated, the value is identical
    (again,) = score("demo-video", _opts(ref="model:demo-video", num_samples=4)).results
    d2 = again["details"]
    assert (d2["n_computed_features"], d2["n_reference_computed_features"]) == (0, 0)
    assert (d2["n_cached_features"], d2["n_reference_cached_features"]) == (4, 4)
    assert again["provenance"]["samples_generated_this_run"] == 0
    assert again["metrics"]["fvd"] == doc["metrics"]["fvd"]

    # another sampling is another key: recomputed, recorded, and a separate protocol
    (strided,) = score("demo-video", _opts(ref="model:demo-video", num_samples=4, frame_stride=2,
                                           frame_start=1)).results
    assert strided["protocol"] == "fvd-i3d-8f-stride2-start1"
    assert (strided["details"]["stride"], strided["details"]["start"]) == (2, 1)
    assert strided["details"]["n_computed_features"] == 4
    expected_strided = _independent_fvd(net, _demo_paths(store, 4, 0), _demo_paths(store, 4, REFERENCE_SEED_OFFSET),
                                        stride=2, start=1)
    assert strided["metrics"]["fvd"] == pytest.approx(expected_strided, rel=1e-6)


def test_folder_with_fewer_videos_than_num_samples_is_an_error(i3d_standin, tmp_path):
    _write_folder(tmp_path / "gen", 4)
    _write_folder(tmp_path / "real", 4, seed=9)
    with pytest.raises(InputError, match="fewer than --num-samples 5"):
        score(f"folder:{tmp_path / 'gen'}", _opts(ref=f"folder:{tmp_path / 'real'}", num_samples=5))


@pytest.fixture
def folder_with_bad_videos(tmp_path):
    gen = tmp_path / "gen"
    good = _write_folder(gen, 3)
    (gen / "empty.mp4").write_bytes(b"")
    (gen / "garbage.mp4").write_bytes(b"\x00\x01not a video at all" * 50)
    write_video(gen / "short.mp4", _clips(1, frames=4, seed=5)[0], lossless=True)
    real = _write_folder(tmp_path / "real", 4, seed=9)
    return gen, good, real


def test_corrupt_and_short_videos_are_counted_skips(i3d_standin, folder_with_bad_videos):
    gen, good, real = folder_with_bad_videos
    (doc,) = score(f"folder:{gen}", _opts(ref=f"folder:{real[0].parent}")).results
    assert doc["status"] == "ok" and doc["num_samples"] == 3
    skipped = {s["file"].rsplit("/", 1)[-1]: s["reason"] for s in doc["skipped_samples"]["files"]}
    assert doc["skipped_samples"]["count"] == 3 and set(skipped) == {"empty.mp4", "garbage.mp4", "short.mp4"}
    assert "cannot decode" in skipped["empty.mp4"] and "cannot decode" in skipped["garbage.mp4"]
    assert "fewer than 8 frames" in skipped["short.mp4"]
    net = torch.jit.load(str(i3d_standin)).eval()
    assert doc["metrics"]["fvd"] == pytest.approx(_independent_fvd(net, good, real), rel=1e-6)


def test_fewer_usable_videos_than_requested_is_an_error(i3d_standin, folder_with_bad_videos):
    gen, _, real = folder_with_bad_videos
    with pytest.raises(InputError, match="only 3 of the 6 requested sample videos are usable"):
        score(f"folder:{gen}", _opts(ref=f"folder:{real[0].parent}", num_samples=6))
    with pytest.raises(InputError, match="could not be used"):
        score(f"folder:{gen}", _opts(ref=f"folder:{real[0].parent}", strict=True))


def test_npz_reference_must_share_the_sampling(i3d_standin, tmp_path):
    from evalsuite.tasks.video_fvd import reference_stats

    gen = _write_folder(tmp_path / "gen", 4)
    real = tmp_path / "real"
    _write_folder(real, 4, seed=9)
    ext = build("i3d", sampling={"num_frames": 8})
    ref, _ = reference_stats(f"folder:{real}", ext, {"num_frames": 8}, store_root=tmp_path / "store",
                             num_workers=0, progress=False)
    refstats.save_npz(ref, tmp_path / "real8.npz")
    (by_folder,) = score(f"folder:{gen[0].parent}", _opts(ref=f"folder:{real}")).results
    (by_npz,) = score(f"folder:{gen[0].parent}", _opts(ref=str(tmp_path / "real8.npz"))).results
    assert by_npz["metrics"]["fvd"] == pytest.approx(by_folder["metrics"]["fvd"], rel=1e-12)
    with pytest.raises(IncompatibleStatsError, match="frames=8"):
        score(f"folder:{gen[0].parent}", _opts(ref=str(tmp_path / "real8.npz"), frames=4))


def test_missing_i3d_weights_offline_skips_with_the_weights_commands(tmp_path, monkeypatch):
    # the shipped registry has no published digest for StyleGAN-V's file (the first copy gets pinned)
    assert weights.REGISTRY[I3D_WEIGHTS].sha256 is None
    (doc,) = score("demo-video", _opts(ref="model:demo-video", num_samples=2)).results
    assert doc["status"] == "skipped"
    assert "evalsuite weights fetch i3d-torchscript" in doc["fix"]
    assert "evalsuite weights import i3d-torchscript" in doc["fix"]
    assert not (ScoreOptions().store / "samples").exists()  # skipped before generating anything
    # with a digest in the registry, a missing file is the plain missing-weights skip
    monkeypatch.setitem(weights.REGISTRY, I3D_WEIGHTS,
                        __import__("dataclasses").replace(weights.REGISTRY[I3D_WEIGHTS], sha256="ab" * 32))
    (doc,) = score("demo-video", _opts(ref="model:demo-video", num_samples=2)).results
    assert doc["status"] == "skipped" and "missing weights i3d_torchscript.pt" in doc["reason"]
    assert "evalsuite weights import i3d-torchscript" in doc["fix"]


def test_no_reference_skips(i3d_standin):
    (doc,) = score("demo-video", _opts(num_samples=2)).results
    assert doc["status"] == "skipped" and "--ref" in doc["fix"]


# ------------------------------------------------------------------------------------------------ other extractors
class TinyVideoNet(nn.Module):
    """uint8 (B, C, T, H, W) of any size -> (B, 6); NaN for clips brighter than 200 on average."""

    num_features = 6

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(1)
        self.proj = nn.Parameter(torch.randn(6, 6, generator=gen))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255.0
        stats = torch.cat([x.mean(dim=(2, 3, 4)), x.std(dim=(2, 3, 4))], dim=1)
        out = torch.tanh(stats @ self.proj) * 3.0
        bright = x.mean(dim=(1, 2, 3, 4)) > 200 / 255
        return torch.where(bright[:, None], torch.full_like(out, float("nan")), out)


def tiny_video_net() -> TinyVideoNet:
    return TinyVideoNet()


@pytest.mark.parametrize("workers", [0, 2])
def test_python_extractor_mixed_resolutions_nan_skips_and_cache(tmp_path, workers):
    folder = tmp_path / "mixed"
    paths = _write_folder(folder, 2, size=(32, 32)) + _write_folder(folder, 2, size=(48, 32), seed=2, prefix="wide")
    write_video(folder / "zbright.mp4", _clips(1, seed=3, bright=True)[0] | 240, lossless=True)
    ext = build("python:tests.test_fvd:tiny_video_net", sampling={"num_frames": 4})
    result = extract_videos(sorted(folder.glob("*.mp4")), ext, {"num_frames": 4, "stride": 2, "start": 0},
                            batch_size=8, num_workers=workers, progress=False, keep_features=True,
                            cache_root=tmp_path / "cache")
    assert result.n == 4 and result.n_computed == 4 and result.resolutions == {"32x32": 2, "32x48": 2}
    assert [s["file"].endswith("zbright.mp4") for s in result.skipped] == [True]
    assert "NaN" in result.skipped[0]["reason"]
    assert "frames=4,stride=2,start=0" in result.key["preprocessing"] and result.sampling["stride"] == 2
    net = tiny_video_net().eval()
    for path, feat in zip(result.files, result.features):
        clip = torch.from_numpy(read_frames(path, 4, 2, 0)).permute(3, 0, 1, 2)[None]
        np.testing.assert_allclose(feat, net(clip)[0].detach().numpy(), rtol=1e-6, atol=1e-6)
    assert sorted(result.files) == sorted(str(p) for p in paths)
    again = extract_videos(sorted(folder.glob("*.mp4")), ext, {"num_frames": 4, "stride": 2, "start": 0},
                           num_workers=0, progress=False, cache_root=tmp_path / "cache")
    assert (again.n_cached, again.n_computed) == (4, 0) and again.resolutions == result.resolutions
    np.testing.assert_array_equal(again.stats.sum_outer, result.stats.sum_outer)
    assert protocol_name("python:tests.test_fvd:tiny_video_net", ext).startswith(
        "fvd-python:tests.test_fvd:tiny_video_net@")


def test_ref_build_of_a_video_folder_feeds_fvd(tmp_path, i3d_standin):
    """`evalsuite ref build NAME --from VIDEOS --extractor i3d` gives the same FVD as --video-ref folder:VIDEOS."""
    from typer.testing import CliRunner

    from evalsuite.cli import app

    real, gen = tmp_path / "real", tmp_path / "gen"
    for folder, seed in ((real, 0), (gen, 50)):
        folder.mkdir()
        for i in range(4):
            frames = np.random.default_rng(seed + i).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
            write_video(folder / f"{i}.mp4", frames, lossless=True)
    built = CliRunner().invoke(app, ["ref", "build", "realvids", "--from", str(real), "--extractor", "i3d",
                                     "--frames", "8", "--workers", "0", "--json"])
    assert built.exit_code == 0, built.output
    entry = json.loads(built.stdout)
    assert entry["covariance"] == "biased" and "start=random(seed=0),first=2048|" in entry["preprocessing"]
    opts = dict(tasks=["fvd"], frames=8, num_workers=0, progress=False)
    (by_name,) = score(f"folder:{gen}", ScoreOptions.with_legacy(**opts, video_ref="realvids")).results
    (by_folder,) = score(f"folder:{gen}", ScoreOptions.with_legacy(**opts, video_ref=f"folder:{real}")).results
    assert by_name["metrics"]["fvd"] == pytest.approx(by_folder["metrics"]["fvd"], rel=1e-10)
