"""VQAScore's prompt side and score rule as t2v-metrics 3.0 defines them for CLIP-FlanT5
(t2v_metrics/models/vqascore_models/clip_t5_model.py, mm_utils.py, constants.py; written here, not copied):

- question 'Does this figure show "{prompt}"? Please answer yes or no.', answer "Yes" (clip_t5_model.py l. 9-10);
- the 't5_chat' conversation: SYSTEM_MSG + " USER: " + "<image>" + "\\n" + question + " ASSISTANT: " (l. 16);
- each "<image>"-separated chunk tokenised on its own, so every chunk ends with the tokenizer's "</s>", the image
  marker (-200) between them (mm_utils.t5_tokenizer_image_token), padded with the pad id and cut at the tokenizer's
  model_max_length, 2048 (CONTEXT_LEN; clip_t5_model.py l. 247-255): no 77-token limit;
- the image padded to a square with the CLIP mean colour (int(m * 255) per channel) before the CLIP processor
  (mm_utils.expand2square, clip_t5_model.py l. 215-217), transformers 4's CLIPImageProcessor (t2v-metrics pins
  4.49; transformers 5's resizes differently, up to 0.015 after normalisation): PIL resize of the shorter side,
  numpy centre crop, x * (1/255) in float64 cast to float32, (x - mean) / std in float32;
- score = exp(-mean cross-entropy of the answer tokens), i.e. the geometric mean of P("Yes") and P("</s>" | "Yes"),
  not normalised over yes/no (clip_t5_model.py l. 280-285)."""

from __future__ import annotations

from typing import Any

from PIL import Image

QUESTION_TEMPLATE = 'Does this figure show "{}"? Please answer yes or no.'
ANSWER_TEMPLATE = "Yes"
SYSTEM_MSG = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
              "detailed, and polite answers to the user's questions.")
IMAGE_TOKEN = "<image>"
IMAGE_TOKEN_INDEX = -200
IGNORE_INDEX = -100
CONTEXT_LEN = 2048


def t5_chat(question: str) -> str:
    """The 't5_chat' conversation around a question (CLIP-FlanT5's second-stage format)."""
    return f"{SYSTEM_MSG} USER: {IMAGE_TOKEN}\n{question} ASSISTANT: "


def tokenize_with_image(text: str, tokenizer: Any) -> list[int]:
    """Ids of `text` with IMAGE_TOKEN_INDEX where "<image>" was: each chunk tokenised on its own (with its "</s>")."""
    ids: list[int] = []
    for i, chunk in enumerate(text.split(IMAGE_TOKEN)):
        if i:
            ids.append(IMAGE_TOKEN_INDEX)
        ids.extend(tokenizer(chunk).input_ids)
    return ids


def pad_to_square(image: Image.Image, mean: tuple[float, ...]) -> Image.Image:
    """The image centred on a square canvas of its longer side, filled with the processor's mean colour."""
    width, height = image.size
    if width == height:
        return image
    colour = tuple(int(m * 255) for m in mean)
    side = max(width, height)
    canvas = Image.new(image.mode, (side, side), colour)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def clip_pixels(image: Image.Image, config: dict) -> Any:
    """transformers 4.49's CLIPImageProcessor.preprocess on one RGB image, from its preprocessor_config.json
    (image_processing_clip.py resize / center_crop / rescale / normalize, image_transforms.py): a 3xHxW tensor."""
    import numpy as np
    import torch

    if config.get("do_resize", True):
        size = config.get("size", 224)
        short = size["shortest_edge"] if isinstance(size, dict) else int(size)
        width, height = image.size
        small, large = min(width, height), max(width, height)
        long_side = int(short * large / small)
        new = (short, long_side) if width <= height else (long_side, short)
        image = image.resize(new, resample=Image.Resampling(config.get("resample", 3)), reducing_gap=None)
    array = np.asarray(image)
    if config.get("do_center_crop", True):
        crop = config.get("crop_size", 224)
        ch, cw = (crop["height"], crop["width"]) if isinstance(crop, dict) else (int(crop), int(crop))
        h, w = array.shape[:2]
        if ch > h or cw > w:
            raise ValueError(f"crop {ch}x{cw} larger than the resized image {h}x{w}")
        top, left = (h - ch) // 2, (w - cw) // 2
        array = array[top:top + ch, left:left + cw]
    out = array
    if config.get("do_rescale", True):
        out = (array.astype(np.float64) * config.get("rescale_factor", 1 / 255)).astype(np.float32)
    if config.get("do_normalize", True):
        out = out.astype(np.float32) if not np.issubdtype(out.dtype, np.floating) else out
        mean = np.array(config["image_mean"], dtype=out.dtype)
        std = np.array(config["image_std"], dtype=out.dtype)
        out = (out - mean) / std
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))


def answer_likelihood(logits: Any, labels: Any) -> Any:
    """exp(-mean cross-entropy) per row over the label tokens that are not IGNORE_INDEX (a float32 tensor)."""
    import torch

    out = torch.zeros(logits.shape[0])
    for k in range(logits.shape[0]):
        out[k] = (-torch.nn.functional.cross_entropy(logits[k], labels[k], ignore_index=IGNORE_INDEX)).exp()
    return out
