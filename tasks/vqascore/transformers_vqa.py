"""VQAScore with a local transformers VQA model (`-o vqascore.model=transformers:/path`), never downloaded: the same
question, and the same rule as t2v-metrics (exp(-mean cross-entropy) of the answer tokens, end token included),
on the model's own answer decoder. Not t2v-metrics' protocol: its protocol names the model, so its results get their
own column. Supported: BLIP VQA (Salesforce/blip-vqa-base, blip-vqa-capfilt-large), whose decoder starts the
answer with its bos token ([DEC]) in place of [CLS], as BLIP's generate does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from evalsuite.errors import InputError, TaskSkipped
from evalsuite.hashing import sha256_file, sha256_json
from evalsuite.tasks.vqascore import scoring
from evalsuite.tasks.vqascore.clip_flant5 import weight_files

FIX = ("download a VQA model folder once where there is internet (e.g. `huggingface-cli download "
       "Salesforce/blip-vqa-base --local-dir blip-vqa-base`), then pass -o vqascore.model=transformers:/path/to/it")


class TransformersVQAScore:
    """P(answer | image, question) of a BLIP VQA model from a local folder."""

    max_tokens = None

    def __init__(self, folder: str, device: str = "cpu", question_template: str = scoring.QUESTION_TEMPLATE,
                 answer_template: str = scoring.ANSWER_TEMPLATE):
        import torch
        import transformers

        path = Path(folder).expanduser()
        if not folder or not (path / "config.json").is_file():
            raise TaskSkipped(f"no transformers VQA model folder at {path} (config.json)", FIX)
        model_type = json.loads((path / "config.json").read_text()).get("model_type", "")
        if model_type != "blip":
            raise InputError(f"{path}: model type {model_type!r} is not supported by the VQAScore transformers "
                             "backend (BLIP VQA is)", FIX)
        self.torch, self.device = torch, device
        self.question_template, self.answer_template = question_template, answer_template
        self.processor = transformers.BlipProcessor.from_pretrained(path, local_files_only=True)
        model: Any = transformers.BlipForQuestionAnswering.from_pretrained(path, local_files_only=True)
        self.model: Any = model.to(device).eval().requires_grad_(False)
        self.files = {"model": {f.name: sha256_file(f) for f in weight_files(path)}}
        self.weights_sha256 = sha256_json(self.files)
        name = "".join(c if c.isalnum() or c in "._-" else "-" for c in path.resolve().name)
        suffix = ""
        if (question_template, answer_template) != (scoring.QUESTION_TEMPLATE, scoring.ANSWER_TEMPLATE):
            suffix = "-q" + sha256_json([question_template, answer_template])[:8]
        self.protocol = f"vqascore-{name}-transformers{suffix}"

    def score(self, images: list[Image.Image], prompts: list[str]) -> dict[str, Any]:
        """{"vqascore": P(answer) per pair, "tokens": question length, "truncated": cut by the tokenizer}.
        One pair at a time: BLIP's padded batches move the score (4e-5 relative on a tiny model)."""
        parts = [self._score([im], [p]) for im, p in zip(images, prompts)]
        return {"vqascore": self.torch.cat([x["vqascore"] for x in parts]),
                "tokens": [n for x in parts for n in x["tokens"]],
                "truncated": [t for x in parts for t in x["truncated"]]}

    def _score(self, images: list[Image.Image], prompts: list[str]) -> dict[str, Any]:
        torch, model = self.torch, self.model
        text_config: Any = model.config.text_config
        questions = [self.question_template.format(p) for p in prompts]
        limit = text_config.max_position_embeddings
        inputs = self.processor(images=[im.convert("RGB") for im in images], text=questions, padding=True,
                                truncation=True, max_length=limit, return_tensors="pt").to(self.device)
        lengths = [len(self.processor.tokenizer(q).input_ids) for q in questions]
        answers = self.processor.tokenizer([self.answer_template.format(p) for p in prompts], padding=True,
                                           return_tensors="pt").to(self.device)
        answer_ids = answers.input_ids.clone()
        answer_ids[:, 0] = text_config.bos_token_id
        with torch.no_grad():
            image_embeds = model.vision_model(pixel_values=inputs.pixel_values).last_hidden_state
            question = model.text_encoder(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask,
                                          encoder_hidden_states=image_embeds,
                                          encoder_attention_mask=torch.ones(image_embeds.shape[:-1], dtype=torch.long,
                                                                            device=image_embeds.device))[0]
            logits = model.text_decoder(input_ids=answer_ids, attention_mask=answers.attention_mask,
                                        encoder_hidden_states=question,
                                        encoder_attention_mask=inputs.attention_mask).logits
        labels = answer_ids[:, 1:].masked_fill(answers.attention_mask[:, 1:] == 0, scoring.IGNORE_INDEX)
        values = scoring.answer_likelihood(logits[:, :-1].float(), labels)
        return {"vqascore": values, "tokens": lengths, "truncated": [n > limit for n in lengths]}
