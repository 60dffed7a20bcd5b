"""ImageReward v1.0 (Xu et al. 2023, THUDM/ImageReward; pip `image-reward` 1.5), reimplemented in our own code.

What `ImageReward.score(prompt, image)` computes (ImageReward/ImageReward.py; BLIP modules in ImageReward/models/BLIP):
* image: torchvision Resize(224, bicubic) of the shorter side, CenterCrop(224), then `.convert("RGB")` (after the
  resize, as the package does), ToTensor, Normalize with CLIP's mean/std; a BLIP ViT-L/16 (`vit.py`: pre-norm blocks,
  LayerNorm eps 1e-6, exact GELU, qkv bias) gives 197 tokens of width 1024.
* prompt: bert-base-uncased's WordPiece tokenizer with BLIP's added tokens ([DEC], [ENC]), padding="max_length",
  truncation, max_length=35.
* text encoder: BLIP's `med.py` BERT (12 layers, width 768, no token-type embeddings) whose every layer runs masked
  self-attention (additive mask (1 − mask)·−10000), cross-attention to all image tokens, then the feed-forward block;
  the first token's last hidden state goes through a 5-layer linear MLP (768→1024→128→64→16→1, no activations) and
  the reward is (r − 0.16717362830052426) / 1.0333394966054072.
transformers' BertModel cannot host this text encoder (it has token-type embeddings and its cross-attention keys
and values are sized for the text width, not the 1024-wide image tokens), so the small modules are written here;
their parameter names are the checkpoint's (`blip.visual_encoder.*`, `blip.text_encoder.*`, `mlp.layers.*`).
Weights: ImageReward.pt and bert-base-uncased's vocab.txt from the weights store, never downloaded at scoring time.
The package scores one image per forward pass; batching here changes nothing but float rounding."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from evalsuite import weights as weights_store
from evalsuite.errors import InputError
from evalsuite.score_cache import ScorerInfo

WEIGHTS = "imagereward-v1.0"
VOCAB = "bert-base-uncased-vocab"
PROTOCOL = "imagereward-v1.0"
REWARD_MEAN = 0.16717362830052426  # ImageReward.py, ImageReward.__init__: self.mean
REWARD_STD = 1.0333394966054072  # ImageReward.py, ImageReward.__init__: self.std
MAX_LENGTH = 35  # ImageReward.score: tokenizer(..., padding='max_length', truncation=True, max_length=35)
MEAN = (0.48145466, 0.4578275, 0.40821073)  # ImageReward.py _transform: Normalize
STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ImageRewardConfig:
    """Sizes of the network; the defaults are ImageReward v1.0's (BLIP ViT-L/16 at 224, its med_config.json)."""

    image_size: int = 224
    patch_size: int = 16
    vision_width: int = 1024
    vision_depth: int = 24
    vision_heads: int = 16
    text_width: int = 768
    text_layers: int = 12
    text_heads: int = 12
    text_intermediate: int = 3072
    vocab_size: int = 30524  # bert-base-uncased's 30522 + [DEC] + [ENC]
    max_positions: int = 512


CONFIG = ImageRewardConfig()  # what `ImageRewardScorer.from_store` builds (tests put a tiny one here)


# ------------------------------------------------------------------ vision: BLIP's ViT (models/BLIP/vit.py)
class _ViTAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c))


class _ViTMlp(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _ViTBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=1e-6)
        self.attn = _ViTAttention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=1e-6)
        self.mlp = _ViTMlp(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, patch: int, width: int):
        super().__init__()
        self.proj = nn.Conv2d(3, width, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionEncoder(nn.Module):
    """BLIP's VisionTransformer: patch tokens after a class token, learned positions, pre-norm blocks, final norm."""

    def __init__(self, cfg: ImageRewardConfig):
        super().__init__()
        tokens = (cfg.image_size // cfg.patch_size) ** 2 + 1
        self.patch_embed = _PatchEmbed(cfg.patch_size, cfg.vision_width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.vision_width))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, cfg.vision_width))
        self.blocks = nn.ModuleList(_ViTBlock(cfg.vision_width, cfg.vision_heads) for _ in range(cfg.vision_depth))
        self.norm = nn.LayerNorm(cfg.vision_width, eps=1e-6)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(pixels)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed[:, :x.shape[1] + 1]
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


# ------------------------------------------------------------------ text: BLIP's med.py BERT with cross-attention
class _Projections(nn.Module):
    """BertSelfAttention's query/key/value (keys and values of width `source` for cross-attention)."""

    def __init__(self, width: int, source: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(source, width)
        self.value = nn.Linear(source, width)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.heads, -1).transpose(1, 2)

    def forward(self, x: torch.Tensor, source: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(source)), self._split(self.value(source))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return out.transpose(1, 2).reshape(x.shape)


class _Residual(nn.Module):
    """BertSelfOutput / BertOutput: dense, then LayerNorm of the sum with the block's input."""

    def __init__(self, inner: int, width: int):
        super().__init__()
        self.dense = nn.Linear(inner, width)
        self.LayerNorm = nn.LayerNorm(width, eps=1e-12)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self, width: int, source: int, heads: int):
        super().__init__()
        self.self = _Projections(width, source, heads)
        self.output = _Residual(width, width)

    def forward(self, x: torch.Tensor, source: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.output(self.self(x, source, mask), x)


class _Dense(nn.Module):
    def __init__(self, width: int, inner: int):
        super().__init__()
        self.dense = nn.Linear(width, inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))


class _TextLayer(nn.Module):
    def __init__(self, cfg: ImageRewardConfig):
        super().__init__()
        w = cfg.text_width
        self.attention = _Attention(w, w, cfg.text_heads)
        self.crossattention = _Attention(w, cfg.vision_width, cfg.text_heads)
        self.intermediate = _Dense(w, cfg.text_intermediate)
        self.output = _Residual(cfg.text_intermediate, w)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, x, mask)
        x = self.crossattention(x, image, None)  # every image token is attended (the package's mask is all ones)
        return self.output(self.intermediate(x), x)


class _Embeddings(nn.Module):
    def __init__(self, cfg: ImageRewardConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.text_width, padding_idx=0)
        self.position_embeddings = nn.Embedding(cfg.max_positions, cfg.text_width)
        self.LayerNorm = nn.LayerNorm(cfg.text_width, eps=1e-12)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        return self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings(positions)[None])


class _Encoder(nn.Module):
    def __init__(self, cfg: ImageRewardConfig):
        super().__init__()
        self.layer = nn.ModuleList(_TextLayer(cfg) for _ in range(cfg.text_layers))


class TextEncoder(nn.Module):
    """BLIP's med.py BertModel in its 'multimodal' mode, without the pooler (add_pooling_layer=False)."""

    def __init__(self, cfg: ImageRewardConfig):
        super().__init__()
        self.embeddings = _Embeddings(cfg)
        self.encoder = _Encoder(cfg)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(ids)
        # med.py get_extended_attention_mask: (1 - mask) * -10000, added to the scores of every query
        mask = ((1.0 - attention_mask.to(x.dtype)) * -10000.0)[:, None, None, :]
        for layer in self.encoder.layer:
            x = layer(x, mask, image)
        return x


class _Blip(nn.Module):
    def __init__(self, cfg: ImageRewardConfig):
        super().__init__()
        self.visual_encoder = VisionEncoder(cfg)
        self.text_encoder = TextEncoder(cfg)


class _RewardHead(nn.Module):
    """ImageReward.py MLP: Linear layers at indices 0, 2, 4, 6, 7 of `layers` (dropouts between, off in eval)."""

    def __init__(self, width: int):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(width, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                                    nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ImageRewardModel(nn.Module):
    """The network; `forward` returns the normalised reward per (image, prompt) pair."""

    def __init__(self, cfg: ImageRewardConfig = ImageRewardConfig()):
        super().__init__()
        self.blip = _Blip(cfg)
        self.mlp = _RewardHead(cfg.text_width)

    def forward(self, pixels: torch.Tensor, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        image = self.blip.visual_encoder(pixels)
        text = self.blip.text_encoder(ids, attention_mask, image)
        reward = self.mlp(text[:, 0, :].float())[:, 0]
        return (reward - REWARD_MEAN) / REWARD_STD


# ------------------------------------------------------------------ inputs
def preprocess(image: Image.Image, size: int = 224) -> torch.Tensor:
    """ImageReward.py `_transform(224)`: bicubic Resize of the shorter side, CenterCrop, convert to RGB, ToTensor,
    Normalize (the conversion comes after the resize, as in the package: a palette or RGBA image resizes first)."""
    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Normalize, Resize, ToTensor

    return Compose([Resize(size, interpolation=InterpolationMode.BICUBIC), CenterCrop(size),
                    lambda im: im.convert("RGB"), ToTensor(), Normalize(MEAN, STD)])(image)


def blip_tokenizer(vocab_file: str | Path):
    """BLIP's `init_tokenizer` (models/BLIP/blip.py) from a local bert-base-uncased vocab.txt: lower-casing
    WordPiece, then [DEC] as bos token and [ENC] as an additional special token (ids 30522 and 30523). The package
    gets transformers 4's Python BertTokenizer; transformers 5 keeps that code as BertTokenizerLegacy (its
    BertTokenizer is the Rust one)."""
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    tokenizer = BertTokenizerLegacy(vocab_file=str(vocab_file), do_lower_case=True)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    return tokenizer


def load_checkpoint(model: ImageRewardModel, state: dict) -> None:
    """Load ImageReward.pt's state dict; a missing tensor is an error (the package loads with strict=False, which
    would leave it random), extra entries (BLIP's projections, position_ids) are ignored as the package ignores
    them (its model has them but never uses them for the score)."""
    if not isinstance(state, dict):
        raise InputError("the ImageReward checkpoint is not a state dict",
                         "import ImageReward.pt from THUDM/ImageReward")
    missing = [k for k in model.state_dict() if k not in state]
    if missing:
        raise InputError(f"the ImageReward checkpoint lacks {len(missing)} tensor(s), e.g. {missing[:3]}",
                         "import ImageReward.pt from THUDM/ImageReward (`evalsuite weights import imagereward-v1.0 "
                         "PATH`)")
    model.load_state_dict({k: state[k] for k in model.state_dict()})


class ImageRewardScorer:
    """Scores (image, prompt) pairs in batches with ImageReward v1.0 (fp32)."""

    protocol = PROTOCOL

    def __init__(self, model: ImageRewardModel, tokenizer, device: str = "cpu", weights_sha256: str = "",
                 vocab_sha256: str = "", image_size: int = 224):
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = device
        self.weights_sha256 = weights_sha256
        self.vocab_sha256 = vocab_sha256
        self.image_size = image_size

    @classmethod
    def from_store(cls, device: str = "cpu", offline: bool | None = None) -> ImageRewardScorer:
        """ImageReward.pt and bert-base-uncased's vocab.txt from the weights store (MissingWeightsError when absent)."""
        info = cls.describe(offline)
        path, vocab = weights_store.require(WEIGHTS, offline=offline), weights_store.require(VOCAB, offline=offline)
        model = ImageRewardModel(CONFIG)
        load_checkpoint(model, torch.load(path, map_location="cpu", weights_only=True))
        return cls(model, blip_tokenizer(vocab), device, info.weights_sha256, info.details["vocab_sha256"],
                   CONFIG.image_size)

    @staticmethod
    def describe(offline: bool | None = None) -> ScorerInfo:
        """Protocol, ImageReward.pt's sha256 and the vocabulary's (details["vocab_sha256"]), without loading the
        model (MissingWeightsError when a file is absent offline)."""
        _, digest = weights_store.require_verified(WEIGHTS, offline=offline)
        _, vocab_digest = weights_store.require_verified(VOCAB, offline=offline)
        return ScorerInfo(PROTOCOL, digest, {"vocab_sha256": vocab_digest})

    def tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids and attention mask as ImageReward.score makes them (padded to and truncated at 35 tokens)."""
        out = self.tokenizer(list(prompts), padding="max_length", truncation=True, max_length=MAX_LENGTH,
                             return_tensors="pt")
        return out["input_ids"], out["attention_mask"]

    @torch.no_grad()
    def score(self, images: list[Image.Image], prompts: list[str]) -> np.ndarray:
        """The normalised ImageReward of each image with its prompt (one batch)."""
        if len(images) != len(prompts):
            raise ValueError("one prompt per image")
        pixels = torch.stack([preprocess(image, self.image_size) for image in images]).to(self.device)
        ids, mask = self.tokenize(prompts)
        return self.model(pixels, ids.to(self.device), mask.to(self.device)).cpu().numpy().astype(np.float64)
