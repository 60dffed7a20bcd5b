"""T2I-CompBench's non-spatial score (CLIPScore_eval/CLIP_similarity.py): OpenAI CLIP ViT-B/32 (`clip.load`, L16),
the image through OpenAI's preprocess (L58), the prompt read from the file name through `clip.tokenize` (L59, L66,
no truncation), both embeddings L2-normalised and their dot product taken: the plain cosine, no ×100, ×2.5 or
clamp (L72-80); the category score is the mean (L106-111).

`clip.load` leaves the weights fp16 on CUDA and fp32 on the CPU (evalsuite.openai_clip), so the official number is
an fp16 one on a GPU: the precision follows the device the same way. A prompt over 77 tokens makes `clip.tokenize`
raise in the official script; here it is cut as `clip.tokenize(truncate=True)` cuts it and flagged."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from evalsuite import openai_clip
from evalsuite import weights as weights_store

WEIGHTS = "clip-vit-b-32-openai"  # clip.load("ViT-B/32"), CLIP_similarity.py L16
CONTEXT = 77


class CLIPSimilarity:
    """Per (image, prompt): cos(image, text) of OpenAI CLIP ViT-B/32, as CLIP_similarity.py computes it."""

    def __init__(self, device: str = "cpu", offline: bool | None = None, precision: str | None = None):
        import open_clip

        path, digest = weights_store.require_verified(WEIGHTS, offline=offline)
        self.precision = precision or openai_clip.official_precision(device)
        self.model: Any = openai_clip.load(path, device, self.precision)  # open_clip's CLIP (untyped)
        self.preprocess = open_clip.image_transform(224, is_train=False)  # OpenAI clip.py _transform(224)
        self.tokenizer = open_clip.get_tokenizer("ViT-B-32")
        self.device = device
        self.weights_sha256 = digest
        self.protocol = "compbench-clip-vit-b-32-openai" + ("" if self.precision == "fp16" else f"-{self.precision}")

    def tokens(self, prompt: str) -> tuple[torch.Tensor, bool]:
        """OpenAI `clip.tokenize(prompt)` ids (start, BPE, end, zeros to 77) and whether they had to be cut."""
        bpe = self.tokenizer.encode(prompt)
        sot, eot = self.tokenizer.sot_token_id, self.tokenizer.eot_token_id
        ids = [sot, *bpe, eot]
        long = len(ids) > CONTEXT
        if long:
            ids = ids[:CONTEXT - 1] + [eot]
        row = torch.zeros(CONTEXT, dtype=torch.long)
        row[:len(ids)] = torch.tensor(ids)
        return row, long

    @torch.inference_mode()
    def score(self, images: list[Image.Image], prompts: list[str]) -> dict[str, np.ndarray]:
        """{'similarity': cos per pair, 'long': whether the prompt was cut}."""
        pixels = torch.stack([self.preprocess(img) for img in images]).to(self.device)
        dtype = self.model.visual.conv1.weight.dtype  # OpenAI's CLIP.dtype: fp16 on CUDA
        img = self.model.encode_image(pixels.to(dtype))
        rows = [self.tokens(p) for p in prompts]
        txt = self.model.encode_text(torch.stack([r for r, _ in rows]).to(self.device))
        img = img / img.norm(dim=-1, keepdim=True)  # in the weights' dtype, as L73 and L77 normalise
        txt = txt / txt.norm(dim=-1, keepdim=True)
        return {"similarity": (img * txt).sum(-1).double().cpu().numpy(),
                "long": np.array([long for _, long in rows])}


def build(device: Any = "cpu", offline: bool | None = None) -> CLIPSimilarity:
    """The scorer; missing weights raise MissingWeightsError (the task turns it into a skip)."""
    return CLIPSimilarity(device=str(device), offline=offline)
