"""The demo's few-step sampler: what makes `demo?steps=N&compression=V` a real variant offline.

The demo draws its images procedurally; that drawing is the ideal sampler's output (the reference variant, `steps`
unset). With `steps=N` the image is produced as a few-step sampler would: from seeded Gaussian noise, N steps of a
noise schedule t = 1, (N-1)/N, ..., 1/N, each predicting the clean image with a small convolutional denoiser whose
error grows with the noise level, the last prediction (at t = 1/N) being the output. More steps end at a lower
noise level, so the image approaches the ideal one; the denoiser is a real `nn.Module` (seeded weights, no
download), so weight compression (`compression=fp16 | palettizeN | int8`, applied on the host as the phone runs it)
changes its output a little, as it does for a real model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

DENOISER_SEED = 20261202
ERROR_SCALE = 48.0  # pixel units of the denoiser's error at t = 1


class DemoDenoiser(nn.Module):
    """A small convolutional network (seeded, never trained) standing in for a diffusion denoiser: given the noisy
    image and its noise level it returns a bounded correction that the sampler scales by the noise level."""

    def __init__(self, width: int = 8):
        super().__init__()
        gen = torch.Generator().manual_seed(DENOISER_SEED)
        self.net = nn.Sequential(nn.Conv2d(4, width, 3, padding=1), nn.SiLU(), nn.Conv2d(width, width, 3, padding=1),
                                 nn.SiLU(), nn.Conv2d(width, 3, 3, padding=1), nn.Tanh())
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * (0.35 if p.ndim > 1 else 0.05))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [-1, 1]; t: (B,) noise levels in (0, 1]. Returns (B, 3, H, W) in [-1, 1]."""
        level = t.view(-1, 1, 1, 1).expand(x.shape[0], 1, *x.shape[2:])
        return self.net(torch.cat([x, level], dim=1))

    def example_inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs of one denoising step at the demo's 128 px (for `device build` / `device time`)."""
        return torch.zeros(1, 3, 128, 128), torch.ones(1)


class PixelDecoder(nn.Module):
    """The sampler's last operation as a module (no weights): the final clean-image prediction in [-1, 1] to 8-bit
    pixel values, as `sample` converts it. The demo works in pixel space, so this stands where a latent model's VAE
    decoder stands when its generation is timed (`DemoGenerator.device_pipeline`)."""

    def forward(self, pred: torch.Tensor) -> torch.Tensor:
        """pred: (B, 3, H, W) in [-1, 1]. Returns (B, 3, H, W) pixel values 0..255 (float, rounded)."""
        return ((pred + 1.0) * 127.5).round().clamp(0, 255)


def sample(ideal: np.ndarray, steps: int, seed: int, denoiser: nn.Module) -> np.ndarray:
    """The image an N-step sampler reaches for this seed: `ideal` (H, W, 3) uint8 is the clean image the ideal
    sampler draws. Deterministic given (ideal, steps, seed, the denoiser's weights)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    clean = torch.from_numpy(ideal.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
    gen = torch.Generator().manual_seed(int(seed) & 0x7FFFFFFF)
    noise = torch.randn(clean.shape, generator=gen)
    x = noise  # t = 1: pure noise
    pred = clean
    with torch.inference_mode():
        for k in range(steps):
            t = (steps - k) / steps  # 1, (N-1)/N, ..., 1/N
            error = denoiser(x, torch.tensor([t])) * (ERROR_SCALE / 127.5) * t
            pred = (clean + error).clamp(-1.0, 1.0)  # the denoiser's estimate of the clean image at level t
            t_next = (steps - k - 1) / steps
            x = pred + t_next * noise  # the next, less noisy, sample (deterministic DDIM-style update)
    out = ((pred[0].permute(1, 2, 0) + 1.0) * 127.5).round().clamp(0, 255)
    return out.to(torch.uint8).numpy()
