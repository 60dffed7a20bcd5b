"""T2I-CompBench's attribute-binding score (BLIPvqa_eval/BLIP_vqa.py with BLIP/train_vqa_func.py and
models/blip_vqa.py), with BLIP VQA (ViT-B, CapFilt-L, VQAv2) through transformers' BlipForQuestionAnswering.

Per image (official file and line):

* the prompt is parsed with spaCy; its noun chunks, less 'top', 'the side', 'the left', 'the right', are the
  phrases (BLIP_vqa.py L32-35); phrase i is asked as the question f"{phrase}?" (L36-38) for i < np_num = 8 (L66);
  a phrase slot beyond the prompt's phrases scores 1 (L96-97);
* the question goes through `pre_question` (data/utils.py L31-36: lower-case, strip .!"()*#:;~, rstrip) and
  BERT's tokenizer (max 35 tokens), with its first id replaced by [ENC] (models/blip_vqa.py L44-46); the image is
  resized to 480×480 bicubic, CLIP mean/std (data/__init__.py L22-26, configs/vqa.yaml image_size 480);
* the text encoder attends to the image, the decoder reads [DEC] (id 30522) and the answer's first-token softmax
  gives p = P(yes) / (P(yes) + P(no)), ids 2748 / 2053 (models/blip_vqa.py L133-147), formatted '{:.4f}' and read
  back as a float (L124-126; BLIP_vqa.py L95): each phrase's score is rounded to 4 decimals;
* the image's score is the product over the phrase slots (BLIP_vqa.py L99-101), again rounded to 4 decimals
  (L107-108); the category score is the mean (L109, L117).

The model, two ways:

* "official" (default): BLIP's own checkpoint, model_base_vqa_capfilt_large.pth (configs/vqa.yaml `pretrained`), from
  the weights store (`blip-vqa-capfilt-large`, the first download pinned) with bert-base-uncased's vocabulary
  (`bert-base-uncased-vocab`) and init_tokenizer's [DEC] / [ENC], its tensors renamed into transformers'
  BlipForQuestionAnswering (ViT-B/16 at 480 px, LayerNorm eps 1e-6 as BLIP's vit.py; BERT-base as
  configs/med_config.json): the official network and weights;
* a transformers folder (`Salesforce/blip-vqa-capfilt-large`, HF's conversion of that checkpoint, made at 384 px:
  its position embeddings are the 480 ones interpolated to 24×24 patches): it reads the official 480×480 input
  with its position embeddings interpolated back (`interpolate_pos_encoding`), so its numbers are close to, not
  identical with, the official ones; the protocol says so (`...-hf384`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

from PIL import Image

from evalsuite.errors import InputError

SKIPPED_PHRASES = ("top", "the side", "the left", "the right")  # BLIP_vqa.py L34
NP_NUM = 8  # BLIP_vqa.py L66 (--np_num default)
DEC_ID, ENC_ID, YES_ID, NO_ID = 30522, 30523, 2748, 2053  # models/blip_vqa.py L136, L145-146; blip.py L186-190
IMAGE_SIZE = 480  # configs/vqa.yaml
MEAN = (0.48145466, 0.4578275, 0.40821073)  # data/__init__.py L13
STD = (0.26862954, 0.26130258, 0.27577711)
MAX_QUESTION_TOKENS = 35  # models/blip_vqa.py L44

OFFICIAL_WEIGHTS = "blip-vqa-capfilt-large"  # configs/vqa.yaml `pretrained`
VOCAB_WEIGHTS = "bert-base-uncased-vocab"  # models/blip.py L187
_FIX = ("download the HF conversion of the official BLIP VQA once where there is internet (`huggingface-cli "
        "download Salesforce/blip-vqa-capfilt-large --local-dir blip-vqa-capfilt-large`), then pass "
        "-o t2i-compbench.blip=/path/to/blip-vqa-capfilt-large")


def noun_phrases(prompt: str, nlp: Any) -> list[str]:
    """The prompt's noun chunks the official asks about (BLIP_vqa.py L31-35)."""
    return [chunk.text for chunk in nlp(prompt).noun_chunks if chunk.text not in SKIPPED_PHRASES]


def pre_question(question: str) -> str:
    """BLIP's data/utils.py pre_question (L31-36; 50 words is far beyond any question asked here)."""
    question = re.sub(r"([.!\"()*#:;~])", "", question.lower()).rstrip(" ")
    return " ".join(question.split(" ")[:50])


def round4(x: float) -> float:
    """float('{:.4f}'.format(x)): what the official writes and reads back (blip_vqa.py L125, BLIP_vqa.py L95)."""
    return float(f"{x:.4f}")


def image_score(phrase_probs: Sequence[float], np_num: int = NP_NUM) -> float:
    """The product over np_num phrase slots of the rounded phrase scores, a slot without a phrase counting 1
    (BLIP_vqa.py L92-101), rounded to 4 decimals (L107). The official multiplies float32 tensors (L76, L99-101)."""
    import numpy as np

    slots = np.ones(np_num, dtype=np.float32)
    for i, p in enumerate(phrase_probs[:np_num]):
        slots[i] = np.float32(round4(p))
    total = slots[0]
    for i in range(1, np_num):
        total = np.float32(total * slots[i])
    return round4(float(total))


class BlipYesProbability:
    """P(yes) / (P(yes) + P(no)) of BLIP VQA's answer decoder, as models/blip_vqa.py `vqa_prob` computes it."""

    def __init__(self, model: Any, tokenizer: Any, device: str = "cpu", image_size: int = IMAGE_SIZE):
        import torch

        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = device
        self.image_size = image_size
        self._torch = torch
        ids = tokenizer.convert_tokens_to_ids(["yes", "no"])
        if list(ids) != [YES_ID, NO_ID]:
            raise InputError(f"BLIP tokenizer maps yes/no to {ids}, the official ids are {YES_ID}/{NO_ID}", _FIX)

    def pixels(self, image: Image.Image) -> Any:
        """The official test transform: Resize((480, 480), bicubic), ToTensor, CLIP normalisation."""
        from torchvision import transforms
        from torchvision.transforms.functional import InterpolationMode

        t = transforms.Compose([
            transforms.Resize((self.image_size, self.image_size), interpolation=InterpolationMode.BICUBIC),
            transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
        return t(image.convert("RGB"))

    def probabilities(self, image: Image.Image, questions: list[str]) -> list[float]:
        """One probability per question about this image (the questions already f"{phrase}?")."""
        if not questions:
            return []
        torch = self._torch
        out = []
        with torch.no_grad():
            pixel = self.pixels(image).unsqueeze(0).to(self.device)
            native = self.model.config.vision_config.image_size
            vision = self.model.vision_model(pixel_values=pixel, interpolate_pos_encoding=native != self.image_size)
            image_embeds = vision[0]
            image_atts = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=self.device)
            # one question per pass: the official masks its batch's padding (L44-45, L138-142); transformers 5's
            # BLIP decoder ignores the cross-attention padding mask of a one-token query, so nothing is padded here
            for question in questions:
                q = self.tokenizer([pre_question(question)], truncation=True, max_length=MAX_QUESTION_TOKENS,
                                   return_tensors="pt").to(self.device)
                input_ids = q.input_ids.clone()
                input_ids[:, 0] = ENC_ID  # models/blip_vqa.py L46
                states = self.model.text_encoder(input_ids=input_ids, attention_mask=q.attention_mask,
                                                 encoder_hidden_states=image_embeds,
                                                 encoder_attention_mask=image_atts, return_dict=True).last_hidden_state
                start = torch.full((1, 1), DEC_ID, dtype=torch.long, device=self.device)
                logits = self.model.text_decoder(input_ids=start, encoder_hidden_states=states,
                                                 encoder_attention_mask=q.attention_mask, return_dict=True).logits
                prob = torch.softmax(logits[:, 0, :].float(), dim=1)  # L143-147
                out.append(float(prob[0, YES_ID] / (prob[0, YES_ID] + prob[0, NO_ID])))
        return out


def score_image(image: Image.Image, prompt: str, vqa: BlipYesProbability, nlp: Any) -> dict:
    """{'score', 'phrases', 'phrase_scores'} of one image, by the official rule."""
    phrases = noun_phrases(prompt, nlp)[:NP_NUM]
    probs = vqa.probabilities(image, [f"{p}?" for p in phrases])
    return {"score": image_score(probs), "phrases": phrases, "phrase_scores": [round4(p) for p in probs]}


def folder_digest(folder: Path) -> str:
    """The protocol's fingerprint: `evalsuite.hashing.files_digest` of the folder's weight files and configs."""
    from evalsuite.hashing import files_digest

    files = [p for p in folder.iterdir() if p.is_file() and p.suffix in (".safetensors", ".bin", ".json", ".txt")]
    return files_digest(folder, files)[0]


def load(folder: str, device: str = "cpu", image_size: int = IMAGE_SIZE) -> tuple[BlipYesProbability, str]:
    """BLIP VQA from a local transformers folder (never downloaded) and the folder's fingerprint; images are read at
    `image_size` (the official 480)."""
    path = Path(folder).expanduser()
    if not (path / "config.json").is_file():
        raise InputError(f"BLIP VQA folder {path} is missing or has no config.json", _FIX)
    try:
        model_type = json.loads((path / "config.json").read_text()).get("model_type")
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path / 'config.json'}: {exc}", _FIX) from None
    if model_type != "blip":
        raise InputError(f"{path} holds a '{model_type}' model, not BLIP VQA", _FIX)
    import transformers

    try:
        config: Any = transformers.BlipConfig.from_pretrained(path, local_files_only=True)
        config.vision_config.layer_norm_eps = 1e-6  # BLIP's models/vit.py LayerNorm (HF's default is 1e-5)
        model = transformers.BlipForQuestionAnswering.from_pretrained(path, config=config, local_files_only=True)
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot load BLIP VQA from {path}: {exc}", _FIX) from None
    return BlipYesProbability(model, tokenizer, device=device, image_size=image_size), folder_digest(path)


# BLIP (and LAVIS) tensor names -> transformers' BlipForQuestionAnswering names, as HF's BLIP conversion renames them
_VISION_NAMES = {"cls_token": "embeddings.class_embedding", "pos_embed": "embeddings.position_embedding",
                 "patch_embed.proj.weight": "embeddings.patch_embedding.weight",
                 "patch_embed.proj.bias": "embeddings.patch_embedding.bias",
                 "norm.weight": "post_layernorm.weight", "norm.bias": "post_layernorm.bias"}


def convert_state_dict(state: dict) -> dict:
    """A BLIP VQA state dict (visual_encoder.*, text_encoder.*, text_decoder.*) in transformers' names; the text
    modules already share BLIP's names (med.py); position_ids buffers are dropped."""
    out = {}
    for key, value in state.items():
        if key.startswith("visual_encoder."):
            k = key[len("visual_encoder."):]
            k = _VISION_NAMES.get(k, k)
            k = (k.replace("blocks.", "encoder.layers.").replace(".attn.proj.", ".self_attn.projection.")
                 .replace(".attn.qkv.", ".self_attn.qkv.").replace(".norm1.", ".layer_norm1.")
                 .replace(".norm2.", ".layer_norm2."))
            out["vision_model." + k] = value
        elif key.startswith(("text_encoder.", "text_decoder.")) and not key.endswith("position_ids"):
            out[key] = value
    return out


def official_config(image_size: int = IMAGE_SIZE) -> Any:
    """BLIP VQA base: BERT-base text modules as configs/med_config.json, ViT-B/16 as models/blip.py create_vit
    ('base': 768 wide, 12 deep, 12 heads, LayerNorm eps 1e-6 in models/vit.py) at configs/vqa.yaml's 480 px."""
    import transformers

    return transformers.BlipConfig(
        text_config=dict(vocab_size=30524, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, max_position_embeddings=512, layer_norm_eps=1e-12,
                         hidden_act="gelu", encoder_hidden_size=768, pad_token_id=0, bos_token_id=DEC_ID,
                         sep_token_id=102),
        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           image_size=image_size, patch_size=16, layer_norm_eps=1e-6, hidden_act="gelu"))


def _interpolate_pos_embed(pos: Any, num_patches: int) -> Any:
    """BLIP's models/vit.py interpolate_pos_embed: the class token kept, the patch grid resized bicubically."""
    import torch

    old = int((pos.shape[-2] - 1) ** 0.5)
    new = int(num_patches ** 0.5)
    if old == new:
        return pos
    grid = pos[:, 1:].reshape(1, old, old, -1).permute(0, 3, 1, 2)
    grid = torch.nn.functional.interpolate(grid, size=(new, new), mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).flatten(1, 2)], dim=1)


def load_official(device: str = "cpu", offline: bool | None = None, config: Any = None,
                  image_size: int = IMAGE_SIZE) -> tuple[BlipYesProbability, dict[str, str]]:
    """The official checkpoint and vocabulary from the weights store (MissingWeightsError when absent) in
    transformers' BLIP VQA; returns the scorer and {weights name: sha256}."""
    import torch
    import transformers

    from evalsuite import weights as weights_store
    from evalsuite.tasks.preference.imagereward import blip_tokenizer

    path, digest = weights_store.require_verified(OFFICIAL_WEIGHTS, offline=offline)
    vocab, vocab_digest = weights_store.require_verified(VOCAB_WEIGHTS, offline=offline)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged or foreign file: unpickling raises many kinds
        raise InputError(f"cannot read {path} as BLIP's checkpoint: {exc}",
                         f"`evalsuite weights fetch {OFFICIAL_WEIGHTS}` again") from None
    state = convert_state_dict(checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else {})
    config = config or official_config(image_size)
    model = transformers.BlipForQuestionAnswering(config)
    key = "vision_model.embeddings.position_embedding"
    if key in state:  # models/blip.py load_checkpoint interpolates a checkpoint made at another size
        state[key] = _interpolate_pos_embed(state[key], (config.vision_config.image_size //
                                                         config.vision_config.patch_size) ** 2)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("text_decoder.cls.predictions.decoder.")]
    if missing or unexpected:
        raise InputError(f"{path} does not fit BLIP VQA base: {len(missing)} missing tensors (e.g. "
                         f"{missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})",
                         f"`evalsuite weights fetch {OFFICIAL_WEIGHTS}` (model_base_vqa_capfilt_large.pth)")
    scorer = BlipYesProbability(model, blip_tokenizer(vocab), device=device, image_size=image_size)
    return scorer, {OFFICIAL_WEIGHTS: digest, VOCAB_WEIGHTS: vocab_digest}
