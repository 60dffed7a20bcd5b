"""CLIPScore: 100 · max(cos(image, text), 0) per image-prompt pair, then the mean — the same convention as
torchmetrics' `CLIPScore` (Hessel et al. use w = 2.5 instead of 100; we follow torchmetrics). OpenAI CLIP through
open_clip, weights from the weights store; standard CLIP preprocessing (bicubic resize of the shorter side to 224,
centre crop, CLIP mean/std)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from evalsuite import weights as weights_store

BACKBONES = {"ViT-B-32": "clip-vit-b-32-openai", "ViT-L-14": "clip-vit-l-14-openai"}


class CLIPScorer:
    def __init__(self, backbone: str = "ViT-B-32", device: str = "cpu", offline: bool | None = None):
        import open_clip

        if backbone not in BACKBONES:
            from evalsuite.errors import UnknownNameError

            raise UnknownNameError(f"unknown CLIPScore backbone '{backbone}'", f"use one of {', '.join(BACKBONES)}")
        path = weights_store.require(BACKBONES[backbone], offline=offline)
        self.model = open_clip.load_openai_model(str(path), precision="fp32", device=device).eval()
        size = self.model.visual.image_size
        self.preprocess = open_clip.image_transform(size if isinstance(size, int) else size[0], is_train=False)
        self.tokenizer = open_clip.get_tokenizer(backbone)
        self.device = device
        self.protocol = f"clipscore-{backbone}-openai"
        self.weights_sha256 = weights_store.REGISTRY[BACKBONES[backbone]].sha256

    @torch.inference_mode()
    def score(self, images: list[Image.Image], prompts: list[str]) -> np.ndarray:
        """Per-pair CLIPScore (100 · max(cos, 0))."""
        pixels = torch.stack([self.preprocess(img.convert("RGB")) for img in images]).to(self.device)
        tokens = self.tokenizer(prompts).to(self.device)
        img = self.model.encode_image(pixels).float()
        txt = self.model.encode_text(tokens).float()
        cos = torch.nn.functional.cosine_similarity(img, txt, dim=-1)
        return (100.0 * cos.clamp_min(0.0)).double().cpu().numpy()
