"""cd-fvd's VideoMAE-v2 feature network (the `videomae` video extractor): its clip transform (`cdfvd_resize_crop`),
our own definition of its `forward_features` (`VideoMAEv2Features`; cdfvd is a test-only package) and the checkpoint
loader. Registered as an extractor in `evalsuite.video_extractors`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evalsuite.errors import InputError

VIDEOMAE_WEIGHTS = "videomae-v2-g-ssv2"  # registered in evalsuite.weights (no published digest: pinned on first use)
CDFVD_RESOLUTION = 256  # cd-fvd's load_videos(resolution=256)
CDFVD_INPUT = 224  # cd-fvd's preprocess_videomae: Resize((224, 224))


def cdfvd_resize_crop(frames: np.ndarray) -> np.ndarray:
    """cd-fvd's video-folder loader then its byte conversion: (T, H, W, 3) uint8 -> /255 -> shorter side to 256
    (longer side ceil-rounded), bilinear with antialias -> centre crop 256x256 -> (x*255).byte(), i.e. truncated
    (cdfvd/utils/data_utils.py `preprocess`; cdfvd/fvd.py `compute_real_stats` / `compute_fake_stats`)."""
    res = CDFVD_RESOLUTION
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    h, w = video.shape[-2:]
    scale = res / min(h, w)
    size = (res, math.ceil(w * scale)) if h < w else (math.ceil(h * scale), res)
    video = F.interpolate(video, size=size, mode="bilinear", align_corners=False, antialias=True)
    h, w = video.shape[-2:]
    top, left = (h - res) // 2, (w - res) // 2
    video = video[:, :, top:top + res, left:left + res]
    return (video * 255).byte().permute(0, 2, 3, 1).contiguous().numpy()


def _sinusoid_table(n_position: int, dim: int) -> torch.Tensor:
    """VideoMAE's fixed sine-cosine position table (1, n_position, dim), computed in float64 then float32."""
    pos = np.arange(n_position)[:, None] / np.power(10000, 2 * (np.arange(dim) // 2) / dim)[None, :]
    pos[:, 0::2], pos[:, 1::2] = np.sin(pos[:, 0::2]), np.cos(pos[:, 1::2])
    return torch.tensor(pos, dtype=torch.float32)[None]


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        bias = None
        if self.q_bias is not None and self.v_bias is not None:  # both or neither (qkv_bias)
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        q, k, v = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(head_dim)) v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, qkv_bias: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, dim: int, patch: int, tubelet: int):
        super().__init__()
        self.proj = nn.Conv3d(3, dim, (tubelet, patch, patch), (tubelet, patch, patch))


class VideoMAEv2Features(nn.Module):
    """cd-fvd's VideoMAE-v2 feature network, written from its definition (cdfvd/third_party/VideoMAEv2/
    videomaev2_finetune.py, `VisionTransformer.forward_features` of `vit_giant_patch14_224(img_size=224,
    all_frames=16, tubelet_size=2, use_mean_pooling=True)`): tubelet patch embedding, fixed sine-cosine positions
    (trilinearly interpolated in time, from 8 tubelets, when the clip is not 16 frames, as `interpolate_pos_encoding`
    does), pre-norm blocks with q/v biases, LayerNorm eps 1e-6, feature = `fc_norm(mean of the tokens)`. Input: uint8
    (B, 3, T, 256, 256) from `cdfvd_resize_crop`; it applies `preprocess_videomae` (/255, bilinear to 224x224, no
    antialias, no mean/std). Module names equal the checkpoint's keys, so its state dict loads as is."""

    pos_embed: torch.Tensor  # a buffer

    def __init__(self, dim: int, depth: int, heads: int, hidden: int, patch: int, tubelet: int, qkv_bias: bool = True,
                 img_size: int = CDFVD_INPUT, all_frames: int = 16):
        super().__init__()
        self.patch_embed = _PatchEmbed(dim, patch, tubelet)
        self.tubelet, self.grid, self.all_frames = tubelet, img_size // patch, all_frames
        self.register_buffer("pos_embed", _sinusoid_table(self.grid ** 2 * (all_frames // tubelet), dim),
                             persistent=False)
        self.blocks = nn.ModuleList(_Block(dim, heads, hidden, qkv_bias) for _ in range(depth))
        self.fc_norm = nn.LayerNorm(dim, eps=1e-6)
        self.num_features = dim

    def positions(self, frames: int) -> torch.Tensor:
        t0, base = frames // self.tubelet, self.all_frames // self.tubelet
        if t0 == base:
            return self.pos_embed
        dim = self.pos_embed.shape[-1]
        grid = self.pos_embed.permute(0, 2, 1).reshape(1, dim, base, self.grid, self.grid)
        grid = F.interpolate(grid, scale_factor=((t0 + 0.1) / base, 1, 1), mode="trilinear")
        return grid.reshape(1, dim, -1).permute(0, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        x = x.float().div(255.0).reshape(b, c * t, h, w)  # each (channel, frame) plane resized on its own
        x = F.interpolate(x, size=(CDFVD_INPUT, CDFVD_INPUT), mode="bilinear", align_corners=False)
        x = self.patch_embed.proj(x.reshape(b, c, t, CDFVD_INPUT, CDFVD_INPUT)).flatten(2).transpose(1, 2)
        x = x + self.positions(t).to(x.dtype)
        for blk in self.blocks:
            x = blk(x)
        return self.fc_norm(x.mean(1))


def load_videomae_v2(path: str | Path, heads: int = 16) -> VideoMAEv2Features:
    """A cd-fvd VideoMAE-v2 checkpoint (`vit_g_hybrid_pt_1200e_ssv2_ft.pth` format: a state dict, possibly under
    'model' or 'module'): sizes read from the tensors, 16 heads (ViT-g; the head count is not in the state dict);
    the classification head is dropped."""
    path = Path(path)
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- any unreadable file is the user's input
        raise InputError(f"cannot read the VideoMAE-v2 checkpoint {path}: {exc}",
                         "point at cd-fvd's vit_g_hybrid_pt_1200e_ssv2_ft.pth (a torch state dict)") from exc
    for key in ("model", "module"):
        if isinstance(ckpt, dict) and key in ckpt:
            ckpt = ckpt[key]
            break
    if not isinstance(ckpt, dict) or "patch_embed.proj.weight" not in ckpt or "fc_norm.weight" not in ckpt:
        raise InputError(f"{path} is not a VideoMAE-v2 fine-tuned checkpoint (no patch_embed.proj / fc_norm weights)",
                         "use cd-fvd's vit_g_hybrid_pt_1200e_ssv2_ft.pth (`evalsuite weights fetch "
                         f"{VIDEOMAE_WEIGHTS}`)")
    state = {k: v for k, v in ckpt.items() if not k.startswith("head.")}
    dim, _, tubelet, patch, _ = state["patch_embed.proj.weight"].shape
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    model = VideoMAEv2Features(dim, depth, heads, state["blocks.0.mlp.fc1.weight"].shape[0], patch, tubelet,
                               qkv_bias="blocks.0.attn.q_bias" in state)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"{path} does not match cd-fvd's VideoMAE-v2 architecture: {exc}",
                         "use cd-fvd's vit_g_hybrid_pt_1200e_ssv2_ft.pth") from exc
    return model.eval()
