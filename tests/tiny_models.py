"""Tiny networks and generators for tests: random init with a fixed seed, so nothing is downloaded.
These are test fixtures, never offered as real weights."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class TinyExtractor(nn.Module):
    """uint8 NCHW batch -> (N, 16) features; mixes channels and space so FID depends on the images."""

    num_features = 16

    def __init__(self, preprocessing="none", input_size: int = 32, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        if preprocessing == "none":
            self.preprocessing = {"resize": "none", "input_dtype": "uint8"}
        else:
            self.preprocessing = preprocessing
        self.input_size = input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255.0
        x = torch.tanh(self.conv1(x))
        x = torch.tanh(self.conv2(x))
        return x.mean(dim=(2, 3)) * 10.0


def tiny_uint8() -> TinyExtractor:
    """Native-size uint8 input: the same call torchmetrics makes with `feature=module`."""
    return TinyExtractor("none")


def tiny_clean() -> TinyExtractor:
    """clean-fid 'clean' preprocessing at 32x32 (float input in [0, 255])."""
    return TinyExtractor("clean", input_size=32)


class NaNOnBrightExtractor(TinyExtractor):
    """Returns NaN features for images whose mean exceeds 200: drives the non-finite-feature path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = super().forward(x)
        bright = x.float().mean(dim=(1, 2, 3)) > 200
        feats[bright] = float("nan")
        return feats


def nan_on_bright() -> NaNOnBrightExtractor:
    return NaNOnBrightExtractor("none")


class NoiseGenerator:
    """A generator following the protocol: seeded noise images, 32x32."""

    model_id = "test-noise@1"

    def __init__(self):
        self.calls: list[tuple[str, int]] = []

    def generate(self, prompts, seeds):
        out = []
        for p, s in zip(prompts, seeds):
            self.calls.append((p, s))
            rng = np.random.default_rng(s)
            out.append(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
        return out


def noise_generator() -> NoiseGenerator:
    return NoiseGenerator()
