"""The device runner's built-in `demo` network: a small DiT-like denoiser (patch embedding, self-attention, MLP,
a convolutional output head), random-initialised with a fixed seed. Latency does not depend on the weights, so
it times and converts offline like a real checkpoint would; it is never used to score quality.

Also a tiny text encoder and VAE decoder, so end-to-end generation timing (text encoder + steps × denoiser +
decoder) has the same three pieces the papers time."""

from __future__ import annotations

import math

import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x + cond))
        return x + self.mlp(self.norm2(x))


class DemoDiT(nn.Module):
    """latent (B, C, H, W) and timestep (B,) -> predicted noise (B, C, H, W)."""

    def __init__(self, channels: int = 4, size: int = 32, patch: int = 2, dim: int = 128, depth: int = 4,
                 heads: int = 4, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.channels, self.size, self.patch, self.dim = channels, size, patch, dim
        self.embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.randn(1, (size // patch) ** 2, dim) * 0.02)
        self.time = nn.Sequential(nn.Linear(1, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.unpatch = nn.Linear(dim, channels * patch * patch)
        self.head = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        g = self.size // self.patch
        h = self.embed(x).flatten(2).transpose(1, 2) + self.pos
        cond = self.time(t.reshape(b, 1, 1).to(h.dtype))
        for block in self.blocks:
            h = block(h, cond)
        h = self.unpatch(self.norm(h))  # (B, g*g, C*p*p)
        h = h.reshape(b, g, g, self.channels, self.patch, self.patch).permute(0, 3, 1, 4, 2, 5)
        return self.head(h.reshape(b, self.channels, self.size, self.size))

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(1)
        return (torch.randn(batch, self.channels, self.size, self.size, generator=gen), torch.full((batch,), 0.5))


class DemoTextEncoder(nn.Module):
    """token ids (B, L) -> (B, L, dim): embedding + two transformer blocks."""

    def __init__(self, vocab: int = 1000, length: int = 32, dim: int = 128, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed + 1)
        self.length = length
        self.tokens = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList(Block(dim, 4) for _ in range(2))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.tokens(ids)
        for block in self.blocks:
            h = block(h, torch.zeros_like(h[:, :1]))
        return h

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor]:
        return (torch.zeros(batch, self.length, dtype=torch.long),)


class DemoDecoder(nn.Module):
    """latent (B, 4, h, w) -> image (B, 3, 8h, 8w): three nearest-upsample + conv stages."""

    def __init__(self, channels: int = 4, size: int = 32, width: int = 32, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed + 2)
        self.channels, self.size = channels, size
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1)]
        for _ in range(3):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, width, 3, padding=1), nn.SiLU()]
        layers.append(nn.Conv2d(width, 3, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor]:
        return (torch.zeros(batch, self.channels, self.size, self.size),)
