"""DINOv2 vision transformer (Oquab et al. 2023), written here so that FD-DINOv2 needs no torch.hub download: the
network of facebookresearch/dinov2's `dinov2_vitl14` hub entry (ViT-L/14, 518² positional grid, LayerScale, MLP
feed-forward, no register tokens, no block chunks), whose state-dict keys the official checkpoint
`dinov2_vitl14_pretrain.pth` uses (cls_token, pos_embed, mask_token, patch_embed.proj.*, blocks.N.{norm1, attn.qkv,
attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}, norm.*), loaded strictly.

`forward` returns what the hub model returns and dgm-eval encodes with: the final LayerNorm's CLS token
(`x_norm_clstoken`; the head is the identity), float32. The positional grid is resized as the official
`interpolate_pos_encoding` does: bicubic, no antialiasing, scale factor (grid + 0.1) / source grid.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: dinov2_vitl14: embed_dim, depth, heads (patch 14, MLP ratio 4, positional grid for 518² inputs)
VITL14 = {"embed_dim": 1024, "depth": 24, "num_heads": 16}


class _PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class _Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class _Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, num_heads)
        self.ls1 = _LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = _LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoV2ViT(nn.Module):
    """A DINOv2 ViT; `DinoV2ViT(**VITL14)` is dinov2_vitl14. Smaller widths/depths (tests) keep the same keys."""

    def __init__(self, embed_dim: int, depth: int, num_heads: int, patch_size: int = 14, img_size: int = 518,
                 mlp_ratio: float = 4.0):
        super().__init__()
        self.patch_size = patch_size
        self.num_features = embed_dim
        grid = img_size // patch_size
        self.patch_embed = _PatchEmbed(patch_size, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim))  # in the checkpoint; unused at inference
        self.blocks = nn.ModuleList([_Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

    def interpolate_pos_encoding(self, npatch: int, height: int, width: int) -> torch.Tensor:
        n = self.pos_embed.shape[1] - 1
        if npatch == n and height == width:
            return self.pos_embed
        pos = self.pos_embed.float()
        dim, m = pos.shape[-1], int(math.sqrt(n))
        h0, w0 = height // self.patch_size, width // self.patch_size
        patch = F.interpolate(pos[:, 1:].reshape(1, m, m, dim).permute(0, 3, 1, 2),
                              scale_factor=(float((h0 + 0.1) / m), float((w0 + 0.1) / m)), mode="bicubic",
                              antialias=False)
        patch = patch.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat((pos[:, :1], patch), dim=1).to(self.pos_embed.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        tokens = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        tokens = tokens + self.interpolate_pos_encoding(tokens.shape[1] - 1, height, width)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)[:, 0]


#: ImageNet mean/std that dgm-eval's DINOv2 transform normalises with (after ToTensor's / 255)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DinoV2Features(nn.Module):
    """dgm-eval's DINOv2 encoder on a uint8 batch already resized to 224² (PIL bicubic): ToTensor (/ 255),
    Normalize(ImageNet), the network's normalised CLS token, float32."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, net: DinoV2ViT):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255.0
        return self.net((x - self.mean) / self.std)


def load_vitl14(path: str, device: torch.device) -> DinoV2Features:
    """The official checkpoint in our network (strict keys), fp32, eval mode."""
    net = DinoV2ViT(**VITL14)
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return DinoV2Features(net).to(device).eval().requires_grad_(False)
