"""The `vqascore` task: per image, P("Yes") of a VQA model asked 'Does this figure show "{prompt}"? Please answer
yes or no.' (Lin et al. 2024). The default is t2v-metrics' CLIP-FlanT5-XXL rule (`evalsuite.tasks.vqascore.
clip_flant5`); `-o vqascore.model=transformers:/path` scores with another local transformers VQA model instead
(`evalsuite.tasks.vqascore.transformers_vqa`), a different protocol and so a different column."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evalsuite.errors import InputError, TaskSkipped
from evalsuite.score_cache import ScorerInfo, scorer_identity
from evalsuite.tasks import register
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput
from evalsuite.tasks.t2i.task_helpers import NO_PROMPT_FIX, Deferred, score_per_image
from evalsuite.tasks.vqascore import scoring


@register
class VQAScoreTask(Task):
    name = "vqascore"
    version = "1"
    family = "text-image"
    sample_kind = "image"
    description = ("VQAScore (t2v-metrics): P(\"Yes\") of CLIP-FlanT5 (or a local transformers VQA model) asked "
                   "whether the image shows its prompt; long prompts kept whole (T5, up to 2048 tokens)")
    metrics = {"vqascore": MetricInfo("higher", "mean over images of P(\"Yes\" | image, 'Does this figure show "
                                                "\"{prompt}\"? Please answer yes or no.'), t2v-metrics' rule "
                                                "exp(-mean cross-entropy of the answer tokens)", primary=True,
                                      per_sample="vqascore")}

    @dataclass(frozen=True)
    class Options:
        model: str = field(default="clip-flant5-xxl", metadata={
            "help": "clip-flant5-xxl | clip-flant5-xl (t2v-metrics; folders below) | its checkpoint folder | "
                    "transformers:/path/to/a local VQA model folder (another protocol)"})
        checkpoint: str | None = field(default=None, metadata={
            "help": "local folder of zhiqiulin/clip-flant5-xxl (or -xl)"})
        vision_tower: str | None = field(default=None, metadata={
            "help": "local folder of openai/clip-vit-large-patch14-336 (default: the checkpoint's mm_vision_tower "
                    "where that is a local folder)"})
        tokenizer: str | None = field(default=None, metadata={
            "help": "local folder of google/flan-t5-xxl's tokenizer (default: the checkpoint folder)"})
        dtype: str = field(default="bfloat16", metadata={
            "help": "bfloat16 (t2v-metrics) | float32 (another protocol)"})
        question_template: str = field(default=scoring.QUESTION_TEMPLATE, metadata={
            "help": "the question, {} = the prompt (a change is another protocol)"})
        answer_template: str = field(default=scoring.ANSWER_TEMPLATE, metadata={
            "help": "the answer whose likelihood is the score (a change is another protocol)"})

        def __post_init__(self) -> None:
            if self.dtype not in ("bfloat16", "float32"):
                raise InputError(f"vqascore.dtype is {self.dtype}", "pass -o vqascore.dtype=bfloat16 or float32")
            if "{}" not in self.question_template:
                raise InputError("vqascore.question_template has no {} for the prompt",
                                 "put {} where the prompt goes")

    def requirements(self, options) -> Requirements:
        return Requirements(needs="a local CLIP-FlanT5 folder (-o vqascore.checkpoint=...) and the CLIP ViT-L/14-336 "
                                  "and FlanT5 tokenizer folders, or -o vqascore.model=transformers:/path")

    def _scorer(self, ctx) -> tuple[ScorerInfo, Deferred]:
        """What the scorer is (protocol, digests: read without loading it) and the scorer, built on first use."""
        o = self.options
        if o.model.startswith("transformers:"):
            from evalsuite.tasks.vqascore.transformers_vqa import TransformersVQAScore, describe

            folder = o.model.split(":", 1)[1]
            return (describe(folder, o.question_template, o.answer_template),
                    Deferred(lambda: TransformersVQAScore(folder, device=ctx.device,
                                                          question_template=o.question_template,
                                                          answer_template=o.answer_template)))
        from evalsuite.tasks.vqascore.clip_flant5 import MODELS, CLIPFlanT5, model_name, resolve_folders

        name, checkpoint = o.model, o.checkpoint
        if name not in MODELS and Path(name).expanduser().is_dir():  # -o vqascore.model=/path/to/clip-flant5-xxl
            name, checkpoint = model_name(Path(name).expanduser()), name
        folders = resolve_folders(name, checkpoint, o.vision_tower, o.tokenizer)
        return (CLIPFlanT5.describe(name, *folders, dtype=o.dtype, question_template=o.question_template,
                                    answer_template=o.answer_template),
                Deferred(lambda: CLIPFlanT5(name, *folders, device=ctx.device, dtype=o.dtype,
                                            question_template=o.question_template,
                                            answer_template=o.answer_template)))

    def run(self, ctx) -> TaskOutput:
        if not any(ctx.sample_prompts()):  # before the model is loaded
            raise TaskSkipped("no prompt is known for any of these images", NO_PROMPT_FIX)
        info, scorer = self._scorer(ctx)
        ctx.weights_used[info.protocol] = info.weights_sha256

        def score(images: list, prompts: list[str] | None) -> list[tuple]:  # per image: (value, tokens, truncated)
            assert prompts is not None
            got = scorer().score(images, prompts)
            return [(float(got["vqascore"][j]), int(got["tokens"][j]), bool(got["truncated"][j]))
                    for j in range(len(images))]

        scored = score_per_image(ctx, score, "VQAScore", cache_identity=scorer_identity(
            self, info, ctx, files=info.details["files"]))
        values = [v[0] for v in scored.values]
        truncated = [v[2] for v in scored.values]
        return TaskOutput(metrics={"vqascore": float(np.mean(values))},
                          details={"protocol": info.protocol, "model": self.options.model,
                                   "question_template": self.options.question_template,
                                   "answer_template": self.options.answer_template,
                                   "weights": info.details["files"],
                                   "prompts_truncated": int(sum(truncated)),
                                   "max_prompt_tokens": info.details["max_tokens"],
                                   "cached_samples": scored.cached},
                          per_sample={"name": scored.names, "prompt": scored.prompts, "vqascore": values,
                                      "tokens": [v[1] for v in scored.values], "truncated": truncated},
                          skipped_samples=scored.skipped, num_samples=len(values), protocol=info.protocol)
