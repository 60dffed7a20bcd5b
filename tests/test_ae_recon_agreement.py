"""ae-recon against the reference implementations, on the very tensors the task scored: PSNR (per-image mean and
pooled), SSIM and MS-SSIM against torchmetrics' metric classes, LPIPS against the official `lpips` package (0.1.4)
with the same random AlexNet backbone; and peak_memory_mb measuring the autoencoder's own allocations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evalsuite import imagemetrics
from evalsuite.runner import ScoreOptions, score
from evalsuite.tasks.autoencoder import PeakMemory

RECORD: list[tuple[torch.Tensor, torch.Tensor]] = []  # (input, reconstruction) per decode call, in [-1, 1]
BIG_MIB = 256


class NoisyAE:
    """Identity plus seeded noise (some values leave [-1, 1], so the task's clamp is exercised); records its I/O."""

    model_id = "noisy-ae@test"

    def __init__(self):
        self.calls = 0

    def encode(self, x):
        self._x = x.clone()
        return x.clone()

    def decode(self, z):
        g = torch.Generator().manual_seed(self.calls)
        self.calls += 1
        scale = 0.02 + 0.1 * torch.rand(z.shape[0], 1, 1, 1, generator=g)  # a different PSNR per image
        out = z + scale * torch.randn(z.shape, generator=g)
        RECORD.append((self._x, out.clone()))
        return out


class BigDecodeAE:
    """Identity whose decode fills (and frees) a BIG_MIB scratch tensor."""

    model_id = "big-decode-ae@test"

    def encode(self, x):
        return x.clone()

    def decode(self, z):
        scratch = torch.ones(BIG_MIB * 2**20 // 4)  # float32, pages touched
        out = z + 0 * scratch[0]
        del scratch
        return out


def noisy_ae():
    return NoisyAE()


def big_decode_ae():
    return BigDecodeAE()


def _opts(**kw):
    return ScoreOptions.with_legacy(**{**dict(num_workers=0, progress=False, resolution=64, batch_size=4,
                                    tasks=["ae-recon"]),
                           **kw})


def _01(x: torch.Tensor) -> torch.Tensor:
    """The task's metric space: float reconstructions mapped to [0, 1] and clamped, float64."""
    return ((x.double() + 1) / 2).clamp(0, 1)


def _standin_alexnet(tmp_path, monkeypatch) -> dict:
    """A seeded random AlexNet registered as `alexnet-imagenet` for this test only (the real file cannot be
    downloaded here); both LPIPS implementations get this backbone."""
    import torchvision

    from tests.conftest import install_standin_weights

    torch.manual_seed(0)
    state = torchvision.models.alexnet(weights=None).state_dict()
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(state, path)
    install_standin_weights(monkeypatch, "alexnet-imagenet", path)
    return state


def _official_lpips(state: dict):
    """The official lpips package's LPIPS v0.1 AlexNet: its own linear heads (lpips/weights/v0.1/alex.pth from the
    wheel), the trunk random (pnet_rand=True), then `state`'s AlexNet features loaded into its slices."""
    from tests.official import official

    lpips = official("lpips")
    net = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    trunk = {k: state["features." + k.split(".", 1)[1]] for k in net.net.state_dict()}  # sliceK.<i> <- features.<i>
    net.net.load_state_dict(trunk)
    return net.eval()


# ------------------------------------------------------------------ PSNR, SSIM, MS-SSIM, LPIPS on the task's tensors
def test_ae_recon_metrics_equal_the_references_on_the_same_tensors(tmp_path, monkeypatch):
    """One ae-recon run (6 images at 192 px, so MS-SSIM applies, in batches of 4 and 2) records what the AE saw and
    returned; torchmetrics' PSNR classes are fed those batches as accumulating metrics are meant to be used, SSIM and
    MS-SSIM (torchmetrics, the reference here) and the official LPIPS score the same tensors per image."""
    import torchmetrics.functional.image as tmf
    from torchmetrics.image import PeakSignalNoiseRatio

    state = _standin_alexnet(tmp_path, monkeypatch)
    RECORD.clear()
    (doc,) = score("python:tests.test_ae_recon_agreement:noisy_ae", _opts(resolution=192, num_samples=6)).results
    assert doc["status"] == "ok" and doc["num_samples"] == 6 and len(RECORD) == 2
    refs = {"psnr_mean": PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3)),  # per image, then the mean
            "psnr": PeakSignalNoiseRatio(data_range=1.0)}  # the class default: pooled squared error
    official_lpips = _official_lpips(state)
    lpips_ref = []
    for x, recon in RECORD:
        target, preds = _01(x), _01(recon)
        for metric in refs.values():
            metric.update(preds, target)
        with torch.no_grad():
            lpips_ref += official_lpips(target.float(), preds.float(), normalize=True).reshape(-1).tolist()
    m = doc["metrics"]
    for name, metric in refs.items():  # torchmetrics scales by 10 / ln 10 computed in float32: 2e-7
        assert m[name] == pytest.approx(float(metric.compute()), rel=2e-7), name
    target = torch.cat([_01(x) for x, _ in RECORD])
    preds = torch.cat([_01(r) for _, r in RECORD])
    # SSIM: Gaussian window 11, σ 1.5, k1 0.01, k2 0.03; MS-SSIM: 5 scales, its default betas, normalize="relu";
    # per image in float64 (the metric classes would sum into float32 states), then the mean over images
    per_image = {"psnr": tmf.peak_signal_noise_ratio(preds, target, data_range=1.0, dim=(1, 2, 3), reduction="none"),
                 "ssim": tmf.structural_similarity_index_measure(preds, target, data_range=1.0, reduction="none"),
                 "ms_ssim": tmf.multiscale_structural_similarity_index_measure(preds, target, data_range=1.0,
                                                                               reduction="none")}
    for name, values in per_image.items():
        np.testing.assert_allclose(doc["per_sample"][name], values.numpy(), rtol=2e-7 if name == "psnr" else 1e-10,
                                   err_msg=name)
        if name != "psnr":
            assert m[name] == pytest.approx(float(values.mean()), rel=1e-10), name
    assert m["psnr_mean"] == pytest.approx(float(np.mean(doc["per_sample"]["psnr"])), rel=1e-12)
    assert abs(m["psnr_mean"] - m["psnr"]) > 0.1  # the per-image noise levels differ: the two really are different
    np.testing.assert_allclose(doc["per_sample"]["lpips"], lpips_ref, rtol=1e-6, atol=1e-7)
    assert m["lpips"] == pytest.approx(float(np.mean(lpips_ref)), rel=1e-6)
    assert "psnr_mean" in doc["details"]["psnr_headline"]
    assert doc["details"]["psnr_mean_finite_only"] == pytest.approx(m["psnr_mean"], rel=1e-12)


def test_psnr_mean_inf_handling_matches_torchmetrics():
    """One exact reconstruction: per-image torchmetrics PSNR is +inf, so is its mean; the pooled PSNR stays finite."""
    from torchmetrics.image import PeakSignalNoiseRatio

    rng = np.random.default_rng(3)
    a = torch.from_numpy(rng.uniform(0, 1, (3, 3, 16, 16)))
    b = a.clone()
    b[1:] = (b[1:] + torch.from_numpy(rng.normal(0, 0.05, (2, 3, 16, 16)))).clamp(0, 1)
    mse = imagemetrics.mse_per_sample(a, b)
    per_image = PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3), reduction="none")(b, a)
    np.testing.assert_allclose(imagemetrics.psnr_from_mse(mse), per_image.numpy(), rtol=2e-7)  # float32 10/ln 10
    assert imagemetrics.mean_psnr(imagemetrics.psnr_from_mse(mse)) == float(
        PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3))(b, a)) == float("inf")
    assert imagemetrics.pooled_psnr(mse) == pytest.approx(float(PeakSignalNoiseRatio(data_range=1.0)(b, a)),
                                                          rel=2e-7)


def test_identity_ae_psnr_mean_is_inf_and_counted():
    (doc,) = score("python:tests.test_autoencoder_tasks:identity_ae", _opts()).results
    assert doc["metrics"]["psnr_mean"] == doc["metrics"]["psnr"] == float("inf")
    assert doc["details"]["psnr_infinite_samples"] == 10 and doc["details"]["psnr_mean_finite_only"] is None


def test_lpips_linear_heads_are_the_official_packages(tmp_path, monkeypatch):
    """Our LPIPS (torchmetrics' network) carries the same v0.1 AlexNet linear heads as the official wheel, and the
    same backbone; on random images both give the same distances."""
    state = _standin_alexnet(tmp_path, monkeypatch)
    ours = imagemetrics.LPIPS("cpu")
    theirs = _official_lpips(state)
    for k in range(5):
        assert torch.equal(getattr(ours.net, f"lin{k}").model[1].weight, getattr(theirs, f"lin{k}").model[1].weight)
    rng = np.random.default_rng(0)
    a, b = (torch.from_numpy(rng.uniform(0, 1, (3, 3, 64, 64))) for _ in range(2))
    with torch.no_grad():
        ref = theirs(a.float(), b.float(), normalize=True).reshape(-1).numpy()
    np.testing.assert_allclose(ours(a, b), ref, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ peak memory of the autoencoder itself
def test_peak_memory_counts_a_transient_allocation():
    with PeakMemory("cpu") as memory:
        scratch = torch.ones(BIG_MIB * 2**20 // 4)
        del scratch
    if not memory.method.startswith("cpu: peak RSS"):
        pytest.skip(f"no resettable peak RSS here ({memory.method})")
    assert BIG_MIB * 0.99 <= memory.mib < BIG_MIB + 64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_peak_memory_on_cuda_excludes_what_was_allocated_before():
    held = torch.ones(BIG_MIB * 2**20 // 4, device="cuda")  # e.g. the weights: allocated before, not counted
    with PeakMemory("cuda") as memory:
        scratch = torch.ones(BIG_MIB * 2**20 // 4, device="cuda")
        del scratch
    assert memory.method.startswith("cuda: ") and BIG_MIB <= memory.mib < BIG_MIB + 8
    del held


def test_peak_memory_mb_is_the_autoencoders_not_the_process():
    (small,) = score("python:tests.test_autoencoder_tasks:identity_ae", _opts()).results
    (big,) = score("python:tests.test_ae_recon_agreement:big_decode_ae", _opts()).results
    method = big["details"]["peak_memory_method"]
    assert method == small["details"]["peak_memory_method"] and method.startswith("cpu: ")
    assert small["metrics"]["peak_memory_mb"] < 50  # 4 images of 64x64: a few MiB, not the process's GBs
    if method.startswith("cpu: peak RSS"):
        assert big["metrics"]["peak_memory_mb"] >= BIG_MIB * 0.99
