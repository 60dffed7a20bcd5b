"""PickScore v1 (Kirstain et al. 2023, yuvalkirstain/PickScore): a CLIP-H/14 fine-tuned on Pick-a-Pic preferences,
scored as the README's recipe does (no package: the recipe runs through transformers):

* processor: `AutoProcessor.from_pretrained("laion/CLIP-ViT-H-14-laion2B-s32B-b79K")`; images and text are processed
  separately with `padding=True, truncation=True, max_length=77` (truncation keeps the end token last);
* model: `AutoModel.from_pretrained("yuvalkirstain/PickScore_v1")` (a `CLIPModel`);
* score = `model.logit_scale.exp() * (text_embs @ image_embs.T)` with both embeddings L2-normalised (per image:
  exp(logit_scale) · cos(text, image); the recipe's softmax over images is a ranking aid, not reported).

The image processor is transformers 4's `CLIPImageProcessor` (PIL: bicubic resize of the shorter side to 224,
centre crop, OpenAI mean/std), what the recipe ran with (PickScore's requirements.txt pins transformers==4.27.3,
and 4.50's AutoProcessor still picks it); transformers 5's `AutoProcessor`
would give its torchvision-based processor, whose resampling differs slightly, so the PIL class
(`CLIPImageProcessorPil`) is loaded from the processor folder's preprocessor_config.json. transformers 5 also
returns a ModelOutput from `get_*_features`; its `pooler_output` is the projected embedding the recipe normalises.

Weights are never downloaded: pass local folders (`huggingface-cli download yuvalkirstain/PickScore_v1`, and the
processor files of laion/CLIP-ViT-H-14-laion2B-s32B-b79K). The fingerprint is the sha256 of the model folder's
weight files (name and digest of each, sorted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from evalsuite.errors import InputError
from evalsuite.hashing import files_digest
from evalsuite.score_cache import ScorerInfo

MODEL_REPO = "yuvalkirstain/PickScore_v1"
PROCESSOR_REPO = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
FIX = (f"download once where there is internet: `huggingface-cli download {MODEL_REPO} --local-dir PickScore_v1` and "
       f"`huggingface-cli download {PROCESSOR_REPO} preprocessor_config.json tokenizer.json tokenizer_config.json "
       "vocab.json merges.txt special_tokens_map.json --local-dir clip-h-processor`; then pass "
       "-o pickscore.model=PickScore_v1 -o pickscore.processor=clip-h-processor")


def weights_digest(folder: Path) -> str:
    """The model folder's identity: `evalsuite.hashing.files_digest` of its weight files."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise InputError(f"model folder {folder} holds no weight file ({', '.join(WEIGHT_SUFFIXES)})", FIX)
    return files_digest(folder, files)[0]


def protocol_for(model_dir: Path, digest: str) -> str:
    """`pickscore-v1-transformers` for a folder of PickScore_v1 (its name, or a hub cache path naming it, e.g.
    models--yuvalkirstain--PickScore_v1/snapshots/...); another model gets its weights digest in the name."""
    if any(part.lower().endswith(("pickscore_v1", "pickscore-v1")) for part in model_dir.resolve().parts):
        return "pickscore-v1-transformers"
    return f"pickscore-{digest[:12]}-transformers"


def _folder(spec: str | None, what: str) -> Path:
    if not spec:
        raise InputError(f"PickScore needs the {what} as a local folder", FIX)
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise InputError(f"PickScore {what} folder {path} does not exist", FIX)
    return path


class PickScorer:
    """exp(logit_scale) · cos(text, image) per pair, from a local PickScore_v1 folder and a CLIP-H processor."""

    @staticmethod
    def describe(model: str | None, processor: str | None = None) -> ScorerInfo:
        """Protocol, weights sha256 and source folders (details["sources"]) of the scorer of these folders, checked
        but not loaded (the weights' digests are remembered across runs)."""
        if importlib.util.find_spec("transformers") is None:
            raise InputError("PickScore needs transformers, which is not installed", "`pip install transformers`")
        model_dir = _folder(model, "model (PickScore_v1)")
        processor_dir = _folder(processor, "processor") if processor else model_dir
        if not (model_dir / "config.json").is_file():
            raise InputError(f"{model_dir} has no config.json (not a transformers model folder)", FIX)
        if not (processor_dir / "preprocessor_config.json").is_file():
            raise InputError(f"{processor_dir} has no preprocessor_config.json (the CLIP-H processor files)", FIX)
        digest = weights_digest(model_dir)
        return ScorerInfo(protocol_for(model_dir, digest), digest,
                          {"sources": {"model": str(model_dir), "processor": str(processor_dir)}})

    def __init__(self, model: str | None, processor: str | None = None, device: str = "cpu"):
        info = self.describe(model, processor)
        import transformers
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

        model_dir, processor_dir = Path(info.details["sources"]["model"]), Path(info.details["sources"]["processor"])
        self.weights_sha256 = info.weights_sha256
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(processor_dir, local_files_only=True)
            self.image_processor = CLIPImageProcessorPil.from_pretrained(processor_dir, local_files_only=True)
            self.model: Any = transformers.AutoModel.from_pretrained(model_dir, local_files_only=True,
                                                                     dtype=torch.float32)  # transformers 4's default
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"cannot load PickScore from {model_dir} / {processor_dir}: {exc}", FIX) from None
        self.model.to(device).eval()
        self.device = str(device)
        self.protocol = info.protocol
        self.sources = info.details["sources"]

    @staticmethod
    def _tensor(out: Any) -> torch.Tensor:
        return out if isinstance(out, torch.Tensor) else out.pooler_output  # transformers 5: a ModelOutput

    @torch.inference_mode()
    def score(self, images: list[Image.Image], prompts: list[str]) -> np.ndarray:
        """exp(logit_scale) · cos per (image, prompt) pair."""
        pixels = self.image_processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
        text = self.tokenizer(prompts, padding=True, truncation=True, max_length=77, return_tensors="pt")
        image_embs = self._tensor(self.model.get_image_features(pixel_values=pixels["pixel_values"].to(self.device)))
        text_embs = self._tensor(self.model.get_text_features(**{k: v.to(self.device) for k, v in text.items()}))
        image_embs = image_embs / torch.norm(image_embs, dim=-1, keepdim=True)
        text_embs = text_embs / torch.norm(text_embs, dim=-1, keepdim=True)
        scores = self.model.logit_scale.exp() * torch.diagonal(text_embs @ image_embs.T)
        return scores.double().cpu().numpy()
