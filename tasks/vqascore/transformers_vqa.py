"""VQAScore with a local transformers VQA model (`-o vqascore.model=transformers:/path`), never downloaded: the same
question, and the same rule as t2v-metrics (exp(-mean cross-entropy) of the answer tokens). Not t2v-metrics'
protocol: its protocol names the model, so its results get their own column. Two kinds of model:

- BLIP VQA (Salesforce/blip-vqa-base, blip-vqa-capfilt-large): its answer decoder reads "[DEC] yes [SEP]" (the bos
  token in place of [CLS], as BLIP's generate does); the answer tokens are "yes" and "[SEP]".
- an image-text-to-text model (AutoModelForImageTextToText, e.g. LLaVA-1.5, Qwen2-VL, PaliGemma) whose processor has
  a chat template: the user turn is the image and the question, then the template's generation prompt, then the
  answer (after one space when the prompt does not end in whitespace); the answer tokens are those the answer adds
  (no end-of-turn token), the next-token likelihoods of a teacher-forced pass, as t2v-metrics' LLaVA models do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from evalsuite.errors import InputError, TaskSkipped
from evalsuite.hashing import sha256_file_remembered, sha256_json
from evalsuite.score_cache import ScorerInfo
from evalsuite.tasks.vqascore import scoring
from evalsuite.tasks.vqascore.clip_flant5 import weight_files

FIX = ("download a VQA model folder once where there is internet (e.g. `huggingface-cli download "
       "Salesforce/blip-vqa-base --local-dir blip-vqa-base`), then pass -o vqascore.model=transformers:/path/to/it")


def _model_folder(folder: str) -> Path:
    path = Path(folder).expanduser()
    if not folder or not (path / "config.json").is_file():
        raise TaskSkipped(f"no transformers VQA model folder at {path} (config.json)", FIX)
    return path


def describe(folder: str, question_template: str = scoring.QUESTION_TEMPLATE,
             answer_template: str = scoring.ANSWER_TEMPLATE) -> ScorerInfo:
    """Protocol, weights sha256 and per-file digests (details["files"]) of the scorer of a local model folder,
    without loading it (the weight files' digests are remembered across runs)."""
    path = _model_folder(folder)
    files = {"model": {f.name: sha256_file_remembered(f) for f in weight_files(path)}}
    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in path.resolve().name)
    suffix = ""
    if (question_template, answer_template) != (scoring.QUESTION_TEMPLATE, scoring.ANSWER_TEMPLATE):
        suffix = "-q" + sha256_json([question_template, answer_template])[:8]
    return ScorerInfo(f"vqascore-{name}-transformers{suffix}", sha256_json(files),
                      {"files": files, "max_tokens": _LocalModel.max_tokens})


def TransformersVQAScore(folder: str, device: str = "cpu", question_template: str = scoring.QUESTION_TEMPLATE,
                         answer_template: str = scoring.ANSWER_TEMPLATE) -> Any:
    """The scorer for a local model folder: BLIP VQA, or an image-text-to-text model with a chat template."""
    path = _model_folder(folder)
    try:
        model_type = json.loads((path / "config.json").read_text()).get("model_type", "")
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path / 'config.json'}: {exc}", FIX) from None
    cls = BlipVQAScore if model_type == "blip" else ChatVLMScore
    return cls(path, device, question_template, answer_template)


class _LocalModel:
    """What both kinds share: the folder's digests, the protocol name, one pair at a time."""

    max_tokens: int | None = None

    def __init__(self, path: Path, device: str, question_template: str, answer_template: str):
        import torch

        self.torch, self.device = torch, device
        self.question_template, self.answer_template = question_template, answer_template
        info = describe(str(path), question_template, answer_template)
        self.files, self.weights_sha256, self.protocol = info.details["files"], info.weights_sha256, info.protocol

    def _score(self, images: list[Image.Image], prompts: list[str]) -> dict[str, Any]:
        raise NotImplementedError

    def score(self, images: list[Image.Image], prompts: list[str]) -> dict[str, Any]:
        """{"vqascore": P(answer) per pair, "tokens": question length, "truncated": cut by the tokenizer}.
        One pair at a time: padded batches move the score (BLIP: 4e-5 relative on a tiny model)."""
        parts = [self._score([im], [p]) for im, p in zip(images, prompts)]
        return {"vqascore": self.torch.cat([x["vqascore"] for x in parts]),
                "tokens": [n for x in parts for n in x["tokens"]],
                "truncated": [t for x in parts for t in x["truncated"]]}



class BlipVQAScore(_LocalModel):
    """P(answer | image, question) of a BLIP VQA model."""

    def __init__(self, path: Path, device: str, question_template: str, answer_template: str):
        import transformers

        super().__init__(path, device, question_template, answer_template)
        self.processor = transformers.BlipProcessor.from_pretrained(path, local_files_only=True)
        model: Any = transformers.BlipForQuestionAnswering.from_pretrained(path, local_files_only=True)
        self.model: Any = model.to(device).eval().requires_grad_(False)

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


class ChatVLMScore(_LocalModel):
    """P(answer | image, question) of an image-text-to-text model through its processor's chat template."""

    def __init__(self, path: Path, device: str, question_template: str, answer_template: str):
        import transformers

        super().__init__(path, device, question_template, answer_template)
        try:
            self.processor: Any = transformers.AutoProcessor.from_pretrained(path, local_files_only=True)
            model: Any = transformers.AutoModelForImageTextToText.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{path} is neither BLIP VQA nor an image-text-to-text model transformers can load: "
                             f"{exc}", FIX) from None
        if not getattr(self.processor, "chat_template", None):
            raise InputError(f"{path}: its processor has no chat template to put the question in", FIX)
        self.model: Any = model.to(device).eval().requires_grad_(False)

    def prompt(self, prompt: str) -> tuple[str, str]:
        """The templated question (up to the generation prompt) and the same followed by the answer."""
        messages = [{"role": "user", "content": [{"type": "image"},
                                                 {"type": "text", "text": self.question_template.format(prompt)}]}]
        question = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        answer = self.answer_template.format(prompt)
        return question, question + (answer if question[-1:].isspace() else " " + answer)

    def _score(self, images: list[Image.Image], prompts: list[str]) -> dict[str, Any]:
        torch = self.torch
        question, full = self.prompt(prompts[0])
        image = images[0].convert("RGB")
        q_ids = self.processor(images=[image], text=[question], return_tensors="pt").input_ids[0]
        inputs = self.processor(images=[image], text=[full], return_tensors="pt").to(self.device)
        ids = inputs.input_ids[0].cpu()
        n = q_ids.shape[0]
        if ids.shape[0] <= n or not torch.equal(ids[:n], q_ids):
            raise InputError("the answer does not extend the tokenised question (the tokenizer merges across the "
                             "boundary)", "use another answer_template")
        with torch.no_grad():
            logits = self.model(**inputs).logits[0].float()
        labels = ids[n:].to(logits.device)
        value = scoring.answer_likelihood(logits[n - 1:-1][None], labels[None])
        return {"vqascore": value, "tokens": [n], "truncated": [False]}
