"""CLIPScore in two conventions from one OpenAI CLIP (open_clip, weights from the weights store).

* `clipscore`: torchmetrics' `CLIPScore` (1.x). Per pair 100·cos(image, text); the task's number is
  max(mean, 0) (torchmetrics clamps the mean in `CLIPScore.compute`, not each pair). Text ids are what HF's
  CLIPProcessor gives without truncation, sliced at 77 (`_get_features`): a prompt of more than 75 BPE tokens
  loses its end-of-text token (torchmetrics #2883), CLIP then pools at the largest id left, the start token, and
  every such prompt gets the same text embedding. Kept on purpose: it is the number torchmetrics reports.
* `clip_s_hessel`: Hessel et al. 2021 CLIP-S (jmhessel/clipscore `clipscore.py`): the text is "A photo depicts "
  + prompt, tokenised by `clip.tokenize(truncate=True)` (cut at 77, the end-of-text token kept as the last one);
  per pair 2.5·max(cos, 0), then the mean. Hessel's script runs fp16 on a GPU; this is fp32 (his CPU path).

Images: PIL bicubic resize of the shorter side to 224, centre crop, CLIP mean/std. The crop offset differs: HF's
`CLIPImageProcessor` (torchmetrics) floors (size − 224) / 2, torchvision's `CenterCrop` (OpenAI CLIP, Hessel) rounds
it half to even, one pixel apart when size − 224 ≡ 3 (mod 4); each convention gets its own. (transformers 5's
default image processor resizes tensors with torchvision, not PIL; torchmetrics 1.9 expects transformers 4.)
Text: open_clip's BPE (the same vocabulary as HF's tokenizer; open_clip also fixes mojibake and HTML entities)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import CenterCrop, Compose

from evalsuite import weights as weights_store
from evalsuite.score_cache import ScorerInfo

BACKBONES = {"ViT-B-32": "clip-vit-b-32-openai", "ViT-L-14": "clip-vit-l-14-openai"}
CONTEXT = 77  # CLIP's text context: start token + 75 BPE tokens + end token
HESSEL_PREFIX = "A photo depicts "  # jmhessel/clipscore clipscore.py, CLIPCapDataset (a space is appended)
HESSEL_W = 2.5


def torchmetrics_tokens(bpe: list[int], sot: int, eot: int, context: int = CONTEXT) -> list[int]:
    """torchmetrics' ids: [sot] + bpe + [eot] sliced at `context`, so a longer prompt loses its end token."""
    return [sot, *bpe, eot][:context]


def hessel_tokens(bpe: list[int], sot: int, eot: int, context: int = CONTEXT) -> list[int]:
    """OpenAI `clip.tokenize(truncate=True)`: cut at `context` with the end token as the last one kept."""
    ids = [sot, *bpe, eot]
    return ids if len(ids) <= context else ids[:context - 1] + [eot]


class FloorCentreCrop:
    """HF CLIPImageProcessor's centre crop (transformers image_transforms.center_crop): offsets floor((size − crop)
    / 2), where torchvision's CenterCrop rounds half to even."""

    def __init__(self, size: tuple[int, int]):
        self.height, self.width = size

    def __call__(self, image: Image.Image) -> Image.Image:
        left, top = (image.width - self.width) // 2, (image.height - self.height) // 2
        return image.crop((left, top, left + self.width, top + self.height))


class CLIPScorer:
    @staticmethod
    def describe(backbone: str = "ViT-B-32", offline: bool | None = None) -> ScorerInfo:
        """Protocol and weights sha256 of the scorer of this backbone, without loading it (MissingWeightsError when
        the weights are absent offline)."""
        if backbone not in BACKBONES:
            from evalsuite.errors import UnknownNameError

            raise UnknownNameError(f"unknown CLIPScore backbone '{backbone}'", f"use one of {', '.join(BACKBONES)}")
        _, digest = weights_store.require_verified(BACKBONES[backbone], offline=offline)
        return ScorerInfo(f"clipscore-{backbone}-openai", digest)

    def __init__(self, backbone: str = "ViT-B-32", device: str = "cpu", offline: bool | None = None):
        import open_clip

        info = self.describe(backbone, offline)
        path = weights_store.require(BACKBONES[backbone], offline=offline)
        self.model = open_clip.load_openai_model(str(path), precision="fp32", device=device).eval()
        size = self.model.visual.image_size
        self.preprocess = open_clip.image_transform(size if isinstance(size, int) else size[0], is_train=False)
        self.preprocess_hf = Compose([FloorCentreCrop(t.size) if isinstance(t, CenterCrop) else t
                                      for t in self.preprocess.transforms])
        self.tokenizer = open_clip.get_tokenizer(backbone)
        self.device = device
        self.protocol = info.protocol
        self.weights_sha256 = info.weights_sha256

    def _encode_text(self, rows: list[list[int]]) -> torch.Tensor:
        ids = torch.zeros(len(rows), CONTEXT, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row)
        return self.model.encode_text(ids.to(self.device)).float()

    @torch.inference_mode()
    def score(self, images: list[Image.Image], prompts: list[str]) -> dict[str, np.ndarray]:
        """Per pair: `clipscore` (100·cos, torchmetrics' ids), `clip_s_hessel` (2.5·max(cos, 0), Hessel's text
        and truncation), and whether each convention truncated the prompt (`long`, `long_hessel`)."""
        sot, eot = self.tokenizer.sot_token_id, self.tokenizer.eot_token_id
        pixels = torch.stack([self.preprocess(img.convert("RGB")) for img in images])
        pixels_hf = torch.stack([self.preprocess_hf(img.convert("RGB")) for img in images])
        img = self.model.encode_image(pixels.to(self.device)).float()
        img_hf = img if torch.equal(pixels, pixels_hf) else self.model.encode_image(pixels_hf.to(self.device)).float()
        plain = [self.tokenizer.encode(p) for p in prompts]
        prefixed = [self.tokenizer.encode(HESSEL_PREFIX + p) for p in prompts]
        cos_tm = torch.nn.functional.cosine_similarity(
            img_hf, self._encode_text([torchmetrics_tokens(b, sot, eot) for b in plain]), dim=-1)
        cos_h = torch.nn.functional.cosine_similarity(
            img, self._encode_text([hessel_tokens(b, sot, eot) for b in prefixed]), dim=-1)
        return {"clipscore": (100.0 * cos_tm).double().cpu().numpy(),
                "clip_s_hessel": (HESSEL_W * cos_h.clamp_min(0.0)).double().cpu().numpy(),
                "long": np.array([len(b) + 2 > CONTEXT for b in plain]),
                "long_hessel": np.array([len(b) + 2 > CONTEXT for b in prefixed])}
