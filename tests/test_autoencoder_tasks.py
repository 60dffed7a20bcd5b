"""Autoencoder metrics and tasks against independent references: hand-computed PSNR/SSIM, torchmetrics and
scikit-image, scipy's DCT, known spectra, and the scale-equivariance identity."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.fft
import torch
from PIL import Image

from evalsuite import imagemetrics
from evalsuite.results import ResultsStore
from evalsuite.runner import ScoreOptions, score
from evalsuite.spectral import SpectrumAccumulator, zigzag_order


# ------------------------------------------------------------------ test autoencoders (module-level factories)
class IdentityAE:
    model_id = "identity-ae@test"

    def encode(self, x):
        return x.clone()

    def decode(self, z):
        return z.clone()


class PointwiseLinearAE:
    """1x1 linear maps, no resampling: commutes exactly with average pooling."""

    model_id = "pointwise-ae@test"

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.enc = torch.randn(5, 3, generator=g)
        self.dec = torch.linalg.pinv(self.enc)

    def encode(self, x):
        return torch.einsum("ck,nkhw->nchw", self.enc.to(x), x)

    def decode(self, z):
        return torch.einsum("kc,nchw->nkhw", self.dec.to(z), z)


def identity_ae():
    return IdentityAE()


def pointwise_ae():
    return PointwiseLinearAE()


def _opts(**kw):
    base = dict(num_workers=0, progress=False, resolution=64, batch_size=4)
    return ScoreOptions.with_legacy(**{**base, **kw})


# ------------------------------------------------------------------ PSNR / SSIM
def test_psnr_hand_computed_and_torchmetrics():
    x = torch.zeros(1, 3, 8, 8, dtype=torch.float64)
    y = torch.full_like(x, 0.1)
    mse = imagemetrics.mse_per_sample(x, y)
    assert mse[0] == pytest.approx(0.01, rel=1e-12)
    assert imagemetrics.psnr_from_mse(mse)[0] == pytest.approx(20.0, rel=1e-12)  # 10 log10(1 / 0.01)
    from torchmetrics.functional.image import peak_signal_noise_ratio

    rng = np.random.default_rng(0)
    a, b = (torch.from_numpy(rng.uniform(0, 1, (4, 3, 16, 16))) for _ in range(2))
    ours = imagemetrics.psnr_from_mse(imagemetrics.mse_per_sample(a, b))
    theirs = [float(peak_signal_noise_ratio(b[i:i + 1], a[i:i + 1], data_range=1.0)) for i in range(4)]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert imagemetrics.pooled_psnr(imagemetrics.mse_per_sample(a, b)) == pytest.approx(
        float(peak_signal_noise_ratio(b, a, data_range=1.0)), rel=1e-6)


def test_psnr_of_identical_images_is_inf_not_nan():
    x = torch.rand(3, 3, 8, 8)
    assert np.all(np.isinf(imagemetrics.psnr_from_mse(imagemetrics.mse_per_sample(x, x))))
    assert imagemetrics.pooled_psnr(np.array([0.0, 0.01])) == pytest.approx(10 * np.log10(1 / 0.005))


def test_ssim_hand_computed_constant_images():
    """Constant images a, b: SSIM = (2ab + C1) / (a² + b² + C1) (the contrast-structure term is C2/C2 = 1)."""
    a, b, c1 = 0.3, 0.6, 0.01**2
    x = torch.full((1, 1, 32, 32), a, dtype=torch.float64)
    y = torch.full((1, 1, 32, 32), b, dtype=torch.float64)
    assert imagemetrics.ssim_per_sample(x, y)[0] == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-5)
    assert imagemetrics.ssim_per_sample(x, x)[0] == pytest.approx(1.0, abs=1e-6)


def test_ssim_against_scikit_image():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (48, 48, 3))
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    ref = structural_similarity(x, y, data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False)
    ours = imagemetrics.ssim_per_sample(torch.from_numpy(x).permute(2, 0, 1)[None],
                                        torch.from_numpy(y).permute(2, 0, 1)[None])[0]
    assert ours == pytest.approx(ref, abs=2e-3)  # the two differ only in border handling


# ------------------------------------------------------------------ spectra
def test_zigzag_order_starts_like_jpeg():
    assert zigzag_order(8)[:10] == [(0, 0), (0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3), (1, 2), (2, 1), (3, 0)]
    assert sorted(zigzag_order(8)) == [(i, j) for i in range(8) for j in range(8)]


@pytest.mark.parametrize("u,v", [(0, 3), (2, 1), (5, 6)])
def test_single_cosine_lands_on_its_zigzag_index(u, v):
    b = 8
    n = np.arange(b)
    basis = np.outer(np.cos(np.pi * (2 * n + 1) * u / (2 * b)), np.cos(np.pi * (2 * n + 1) * v / (2 * b)))
    plane = 1.0 + 0.5 * np.tile(basis, (4, 4))  # a DC offset so the normalisation is defined
    acc = SpectrumAccumulator(b)
    acc.update(plane[None, None])
    profile = np.array(acc.result()["dct_profile"])
    k = zigzag_order(b).index((u, v))
    assert np.argmax(profile[1:]) + 1 == k
    # the value itself, from scipy directly on one block
    coefs = np.abs(scipy.fft.dctn(plane[:8, :8], norm="ortho"))
    assert profile[k] == pytest.approx(coefs[u, v] / coefs[0, 0], rel=1e-10)
    assert np.delete(profile, [0, k]).max() < 1e-10


def test_white_noise_flat_and_smoothed_decaying():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(8, 4, 64, 64))
    flat = np.array(_profile(noise))
    assert np.all(np.abs(flat - 1.0) < 0.1)  # every coefficient has the DC's distribution
    smooth = torch.nn.functional.avg_pool2d(torch.from_numpy(noise), 5, stride=1, padding=2).numpy()
    decay = np.array(_profile(smooth))
    assert decay[-16:].mean() < 0.2 * decay[1:5].mean()


def _profile(x):
    acc = SpectrumAccumulator(8)
    acc.update(x)
    return acc.result()["dct_profile"]


@pytest.mark.parametrize("k", [4, 12, 24])
def test_radial_spectrum_of_a_sinusoid(k):
    n = 64
    xs = np.arange(n)
    img = np.tile(np.cos(2 * np.pi * k * xs / n), (n, 1))  # k cycles across: frequency k/n cycles/pixel
    acc = SpectrumAccumulator(8)
    acc.update(img[None, None])
    res = acc.result()
    assert res["radial_freq"][int(np.argmax(res["radial_power"]))] == pytest.approx(k / (n / 2))
    assert res["high_freq_energy_fraction"] == pytest.approx(1.0 if k / (n / 2) > 0.5 else 0.0)


# ------------------------------------------------------------------ scale equivariance and end to end
def test_scale_equivariance_zero_for_commuting_ae_positive_for_demo():
    (doc,) = score("python:tests.test_autoencoder_tasks:pointwise_ae", _opts(tasks=["scale-equivariance"])).results
    assert doc["metrics"]["eq_rel_mse_s2"] < 1e-12 and doc["metrics"]["eq_rel_mse_s4"] < 1e-12
    assert doc["metrics"]["eq_psnr_s2"] > 120  # float32 rounding is all that is left
    (demo,) = score("demo-ae:f=4", _opts(tasks=["scale-equivariance"])).results
    assert demo["metrics"]["eq_rel_mse_s2"] > 1e-4 and demo["metrics"]["eq_psnr_s4"] < 60


def test_identity_ae_gives_ssim_one_and_infinite_psnr(tmp_path):
    summary = score("python:tests.test_autoencoder_tasks:identity_ae", _opts(tasks=["ae-recon"]))
    (doc,) = summary.results
    assert doc["status"] == "ok"
    assert doc["metrics"]["psnr"] == float("inf")
    assert doc["metrics"]["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert doc["details"]["psnr_infinite_samples"] == doc["num_samples"] == 10
    raw = json.loads((summary.store / "runs" / summary.run_id / "ae-recon.json").read_text())
    assert raw["metrics"]["psnr"] == "inf"  # valid JSON: no Infinity token
    assert ResultsStore(summary.store).load_run(summary.run_id)[0]["metrics"]["psnr"] == float("inf")
    table = ResultsStore(summary.store).table()
    assert table.loc[table.metric == "psnr", "value"].iloc[0] == float("inf")


def test_demo_ae_end_to_end_with_plot():
    summary = score("demo-ae", _opts(resolution=64))
    docs = {d["task"]: d for d in summary.results}
    assert set(docs) == {"ae-recon", "spectral", "scale-equivariance"}
    assert all(d["status"] == "ok" for d in docs.values())
    recon = docs["ae-recon"]
    assert recon["metrics"]["compression_ratio"] == pytest.approx(64 * 64 * 3 / (8 * 8 * 4))
    assert recon["details"]["latent_shape"] == [4, 8, 8]
    assert len(recon["per_sample"]["psnr"]) == len(recon["per_sample"]["ssim"]) == recon["num_samples"] == 10
    assert 10 < recon["metrics"]["psnr"] < 60 and 0 < recon["metrics"]["ssim"] < 1
    assert recon["metrics"]["psnr_mean"] == pytest.approx(np.mean(recon["per_sample"]["psnr"]), rel=1e-12)
    assert recon["metrics"]["peak_memory_mb"] < 50 and "peak_memory_method" in recon["details"]
    assert "lpips_skipped" in recon["details"] and "rfid_skipped" in recon["details"]  # offline, no weights
    (plot,) = docs["spectral"]["artifacts"]
    path = summary.store / plot
    assert path.is_file() and Image.open(path).format == "PNG"
    assert docs["spectral"]["provenance"]["data"]["spec"] == "skimage"
    assert docs["spectral"]["metrics"]["rgb_high_freq_fraction"] < docs["spectral"]["metrics"][
        "latent_high_freq_fraction"]


def test_rfid_and_lpips_when_an_extractor_is_given():
    (doc,) = score("demo-ae:f=4", _opts(tasks=["ae-recon"], extractor="python:tests.tiny_models:tiny_clean")).results
    assert doc["metrics"]["rfid"] > 0


def test_lpips_backbone_comes_from_the_weights_store(tmp_path, monkeypatch):
    """The real AlexNet file cannot be downloaded here: a seeded random AlexNet stands in (a fixture only), its
    sha256 registered for the test. LPIPS must load exactly those weights and behave as a distance."""
    import torchvision

    from evalsuite import weights
    from tests.conftest import install_standin_weights

    torch.manual_seed(0)
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    state = torchvision.models.alexnet(weights=None).state_dict()
    torch.save(state, path)
    install_standin_weights(monkeypatch, "alexnet-imagenet", path)
    spec = weights.REGISTRY["alexnet-imagenet"]
    lpips = imagemetrics.LPIPS("cpu")
    assert torch.equal(lpips.net.net.slice1[0].weight, state["features.0.weight"])
    assert torch.equal(getattr(lpips.net.net.slice5, "10").bias, state["features.10.bias"])
    rng = np.random.default_rng(0)
    a, b = (torch.from_numpy(rng.uniform(0, 1, (2, 3, 64, 64))) for _ in range(2))
    assert np.allclose(lpips(a, a), 0.0, atol=1e-7)
    d = lpips(a, b)
    assert np.all(d > 0) and np.allclose(d, lpips(b, a), rtol=1e-5)
    (doc,) = score("demo-ae:f=4", _opts(tasks=["ae-recon"])).results
    assert doc["metrics"]["lpips"] > 0 and doc["details"]["lpips"]["backbone_sha256"] == spec.sha256


def test_latents_smaller_than_the_dct_block_keep_the_fft_view():
    (doc,) = score("demo-ae:f=8", _opts(tasks=["spectral"], resolution=32)).results  # 4x4 latents, 8x8 blocks
    assert doc["status"] == "ok"
    assert "latent_dct_high_half" not in doc["metrics"] and "latent_high_freq_fraction" in doc["metrics"]
    assert "smaller than the DCT block 8" in doc["details"]["latent_dct_skipped"]


def test_spectrum_accumulators_merge_like_one_pass():
    """Ranks accumulate shards and merge: equal to one accumulator over everything (sums in another order)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6, 3, 16, 16))
    whole = SpectrumAccumulator(4)
    whole.update(x)
    parts = [SpectrumAccumulator(4) for _ in range(2)]
    parts[0].update(x[0::2])
    parts[1].update(x[1::2])
    merged = SpectrumAccumulator(4)
    for part in (SpectrumAccumulator(4), *parts):  # an empty shard merges as nothing
        merged.merge(part)
    a, b = whole.result(), merged.result()
    for key in ("high_freq_energy_fraction", "spectral_slope", "dct_high_half_mean"):
        assert b[key] == pytest.approx(a[key], rel=1e-12)
    other = SpectrumAccumulator(4)
    other.update(rng.normal(size=(1, 3, 8, 8)))
    with pytest.raises(ValueError, match="cannot merge"):
        merged.merge(other)
