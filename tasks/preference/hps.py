"""HPSv2 / HPSv2.1 (Wu et al. 2023, tgxs002/HPSv2, pip `hpsv2` 1.2.0): an OpenCLIP ViT-H-14 fine-tuned on human
preferences; the score of an image for its prompt is the cosine of their L2-normalised embeddings.

The path pinned here is `hpsv2.img_score.score` (what `hpsv2.score(images, prompt, hps_version=...)` calls), the
same computation as `hpsv2.evaluation.evaluate_benchmark` (what `hpsv2.evaluate(...)` prints) up to the scale:
`score` returns the cosine, the benchmark prints 100·cosine. We report 100·cosine (the benchmark's and the
README tables' scale); `hpsv2.score` values are ours / 100. Two things differ between the package's entry points,
so the version is always named explicitly: `hpsv2.score` defaults to hps_version "v2.0" (HPS_v2_compressed.pt),
`hpsv2.evaluate` / `evaluate_benchmark` default to "v2.1" (HPS_v2.1_compressed.pt) (HPSv2 #27 reports the two
paths disagreeing). Our default is v2.1; `-o hpsv2.version=v2.0` gives v2.0.

What `img_score.py` does, reproduced (hpsv2 1.2.0):
* model: `create_model_and_transforms('ViT-H-14', ..., light_augmentation=True)`, then the whole state dict of the
  HPS checkpoint loaded strictly (`checkpoint['state_dict']`); the laion2B base weights it loads first are all
  overwritten, so they are not needed here. Built from this environment's open_clip (same ViT-H-14 config).
* image (`src/open_clip/transform.py` `image_transform(..., resize_longest_max=True)`): RGB, ToTensor, then
  `ResizeMaxSize(224)`: scale = 224 / longer side, new size = Python round(side · scale), bicubic resize of the
  float tensor (torchvision's tensor path, no clamp; antialiased by default since torchvision 0.17, not before:
  the package leaves it to torchvision's default), zero padding to 224 × 224 (left/top get the floor half), then
  CLIP mean/std. `-o hpsv2.antialias=false` gives the pre-0.17 resize (protocol suffix `-noantialias`). When the
  longer side is already 224 it neither resizes nor pads, so a non-square image with longer side 224 reaches the
  ViT at its own size and the official scorer fails: such an image is a skipped sample here.
* text: open_clip's `tokenize` (lower-cased, cut at 77 with the end token kept last).
* precision: fp32 on CPU; on CUDA the official runs under `torch.cuda.amp.autocast()` (fp16), reproduced there.

Benchmark numbers: HPSv2 #33 and #43 report v2.1 benchmark averages (README table) that `hpsv2.evaluate_benchmark`
with the released v2.1 checkpoint does not reproduce (SDXL Base 0.9: 28.71 printed vs 30.63 in the README);
unresolved upstream. This task reproduces what the released package computes with the released checkpoint."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from evalsuite import weights as weights_store
from evalsuite.errors import InputError
from evalsuite.score_cache import ScorerInfo

VERSIONS = {"v2.1": "hpsv2.1", "v2.0": "hpsv2.0"}  # hps_version -> weights name (hpsv2/utils.py hps_version_map)
ARCH = "ViT-H-14"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)  # open_clip constants (OPENAI_DATASET_MEAN / STD)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def resize_max_pad(image: Image.Image, size: int, antialias: bool = True) -> torch.Tensor | None:
    """hpsv2's val transform up to normalisation: [0, 1] tensor, longer side resized to `size` (bicubic on the
    tensor; antialiased as torchvision >= 0.17 does by default) and zero-padded to size × size; None when the
    official transform leaves the image non-square (longer side already `size`: no resize, no padding)."""
    import torchvision.transforms.functional as F

    x = F.to_tensor(image.convert("RGB"))
    height, width = x.shape[1:]
    scale = size / float(max(height, width))
    if scale == 1.0:
        return x if height == width else None
    new = (round(height * scale), round(width * scale))
    x = F.resize(x, list(new), interpolation=F.InterpolationMode.BICUBIC, antialias=antialias)
    pad_h, pad_w = size - new[0], size - new[1]
    return F.pad(x, [pad_w // 2, pad_h // 2, pad_w - pad_w // 2, pad_h - pad_h // 2], fill=0)


def load_checkpoint(path) -> dict[str, torch.Tensor]:
    """The model state dict of an HPS checkpoint (`{'state_dict': ...}`, as img_score.py reads it)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file raises all sorts
        raise InputError(f"cannot read the HPS checkpoint {path}: {exc}",
                         "fetch it again: `evalsuite weights fetch hpsv2.1` (or hpsv2.0)") from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise InputError(f"{path} holds no state dict", "pass HPS_v2.1_compressed.pt or HPS_v2_compressed.pt")
    return state


def protocol_for(version: str, antialias: bool) -> str:
    """The protocol name of an HPS version's score (the resize without antialiasing is its own protocol)."""
    return f"hps{version}-openclip-vit-h-14" + ("" if antialias else "-noantialias")


class HPSScorer:
    """HPSv2.x per image-prompt pair: 100 · cos(image, text) from the HPS-tuned OpenCLIP ViT-H-14."""

    def __init__(self, version: str = "v2.1", device: str = "cpu", offline: bool | None = None,
                 antialias: bool = True):
        import open_clip

        digest = self.describe(version, offline, antialias).weights_sha256
        path = weights_store.require(VERSIONS[version], offline=offline)
        model = open_clip.CLIP(**open_clip.get_model_config(ARCH))
        model.load_state_dict(load_checkpoint(path), strict=True)
        self._setup(model, device, version, digest, antialias)

    @staticmethod
    def describe(version: str = "v2.1", offline: bool | None = None, antialias: bool = True) -> ScorerInfo:
        """Protocol and weights sha256 of this HPS version's scorer, without loading it (MissingWeightsError when the
        checkpoint is absent offline)."""
        if version not in VERSIONS:
            raise InputError(f"unknown HPS version '{version}'", f"use one of {', '.join(VERSIONS)}")
        _, digest = weights_store.require_verified(VERSIONS[version], offline=offline)
        return ScorerInfo(protocol_for(version, antialias), digest)

    @classmethod
    def from_model(cls, model: torch.nn.Module, version: str = "v2.1", device: str = "cpu",
                   weights_sha256: str | None = None, antialias: bool = True) -> HPSScorer:
        """A scorer around an already-built open_clip CLIP (tests: a tiny model of the same family)."""
        self = cls.__new__(cls)
        self._setup(model, device, version, weights_sha256, antialias)
        return self

    def _setup(self, model: Any, device: str, version: str, digest: str | None, antialias: bool) -> None:
        import open_clip

        self.model = model.to(device).eval()
        size = model.visual.image_size
        self.image_size = int(size if isinstance(size, int) else size[0])
        self.tokenize = open_clip.tokenize
        self.device = str(device)
        self.version = version
        self.antialias = antialias
        self.protocol = protocol_for(version, antialias)
        self.weights_sha256 = digest

    def preprocess(self, image: Image.Image) -> torch.Tensor | None:
        """Normalised input tensor, or None when the official transform cannot feed this image to the ViT."""
        x = resize_max_pad(image, self.image_size, self.antialias)
        if x is None:
            return None
        mean, std = torch.tensor(OPENAI_MEAN).view(3, 1, 1), torch.tensor(OPENAI_STD).view(3, 1, 1)
        return (x - mean) / std

    @torch.inference_mode()
    def score(self, pixels: torch.Tensor, prompts: list[str]) -> np.ndarray:
        """100 · cos per (preprocessed image, prompt) pair."""
        cuda = self.device.startswith("cuda")
        with torch.autocast("cuda", enabled=cuda):  # img_score.py: torch.cuda.amp.autocast() (a no-op on CPU)
            image = self.model.encode_image(pixels.to(self.device), normalize=True)
            text = self.model.encode_text(self.tokenize(prompts).to(self.device), normalize=True)
            cos = torch.diagonal(image @ text.T)  # as img_score.py, so fp16 autocast rounds alike
        return (100.0 * cos.double()).cpu().numpy()
