"""Per-sample reconstruction metrics on images in [0, 1]: MSE/PSNR (hand-rolled), SSIM and MS-SSIM (torchmetrics),
LPIPS (torchmetrics' network with its backbone from the weights store). Per-sample values feed bootstrap CIs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from evalsuite import weights as weights_store
from evalsuite.hashing import sha256_file

MS_SSIM_MIN_SIDE = 161  # 5 scales of an 11-pixel Gaussian window: (11 - 1) * 2**4 < side


def mse_per_sample(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Mean squared error per sample (all non-batch dimensions), float64."""
    diff = (x.double() - y.double()).reshape(x.shape[0], -1)
    return (diff * diff).mean(dim=1).cpu().numpy()


def psnr_from_mse(mse: np.ndarray | float, data_range: float = 1.0) -> np.ndarray | float:
    """10·log10(range² / MSE); an MSE of exactly 0 gives +inf (identical images), never NaN."""
    mse_arr = np.asarray(mse, dtype=np.float64)
    with np.errstate(divide="ignore"):
        out = np.where(mse_arr > 0, 10.0 * np.log10(data_range**2 / np.where(mse_arr > 0, mse_arr, 1.0)), np.inf)
    return float(out) if out.ndim == 0 else out


def pooled_psnr(mse: np.ndarray, data_range: float = 1.0) -> float:
    """Dataset PSNR from the mean MSE (as torchmetrics accumulates it): one inf sample cannot dominate an average."""
    return float(psnr_from_mse(float(np.mean(mse)), data_range)) if len(mse) else math.nan


def mean_psnr(psnr: np.ndarray) -> float:
    """Mean of per-image PSNR (what autoencoder papers print; torchmetrics' PeakSignalNoiseRatio with
    dim=(1, 2, 3)): +inf as soon as one image is reconstructed exactly, NaN for no images."""
    return float(np.mean(np.asarray(psnr, dtype=np.float64))) if len(psnr) else math.nan


def ssim_per_sample(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """SSIM (Gaussian window 11, σ 1.5, data range 1) per sample, via torchmetrics, in float64 (float32 costs ~2e-4)."""
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    value = ssim(y.double(), x.double(), data_range=1.0, reduction="none")
    assert isinstance(value, torch.Tensor)  # a tuple only with return_full_image / return_contrast_sensitivity
    return value.double().cpu().numpy().reshape(-1)


def ms_ssim_per_sample(x: torch.Tensor, y: torch.Tensor) -> np.ndarray | None:
    """MS-SSIM per sample via torchmetrics, or None when the images are too small for its 5 scales."""
    if min(x.shape[-2:]) < MS_SSIM_MIN_SIDE:
        return None
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as ms_ssim

    return ms_ssim(y.double(), x.double(), data_range=1.0, reduction="none").double().cpu().numpy().reshape(-1)


class LPIPS:
    """LPIPS v0.1 (AlexNet): torchmetrics' network and linear heads, the ImageNet AlexNet backbone from the
    weights store (`alexnet-imagenet`). Inputs in [0, 1]."""

    WEIGHTS = "alexnet-imagenet"

    def __init__(self, device: str = "cpu", offline: bool | None = None):
        import torchvision
        from torchmetrics.functional.image import lpips as tm_lpips

        backbone_path = weights_store.require(self.WEIGHTS, offline=offline)
        alexnet = torchvision.models.alexnet(weights=None)
        alexnet.load_state_dict(torch.load(backbone_path, map_location="cpu", weights_only=True))
        features = alexnet.features.state_dict()
        net = tm_lpips._LPIPS(pretrained=True, net="alex", pnet_rand=True)
        backbone = {k: features[k.split(".", 1)[1]] for k in net.net.state_dict()}  # sliceK.<i>.w <- <i>.w
        net.net.load_state_dict(backbone)
        self.net = net.eval().to(device)
        self.device = device
        heads = Path(tm_lpips.__file__).parent / "lpips_models" / "alex.pth"
        self.provenance = {"backbone_sha256": weights_store.REGISTRY[self.WEIGHTS].sha256,
                           "linear_heads": "torchmetrics lpips_models/alex.pth", "linear_heads_sha256":
                           sha256_file(heads) if heads.is_file() else None}

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        a = x.float().to(self.device) * 2 - 1
        b = y.float().to(self.device) * 2 - 1
        return self.net(a, b, normalize=False).reshape(-1).double().cpu().numpy()
