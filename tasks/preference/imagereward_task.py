"""The `imagereward` task: ImageReward v1.0 (image-reward 1.5's `ImageReward.score(prompt, image)`) of every image
with its prompt. Per-image rewards are kept so `compare` bootstraps confidence intervals; the metric is their mean.
Images without a prompt, or that cannot be opened, are skipped samples. The scorer is `imagereward.py`."""

from __future__ import annotations

import numpy as np
from PIL import Image

from evalsuite.errors import InputError, TaskSkipped
from evalsuite.tasks import register
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput
from evalsuite.tasks.t2i.task_helpers import build_backend

NO_PROMPT_FIX = "for folder:PATH add prompts.jsonl with {\"file\", \"prompt\"} per line"


def open_as_package(path: str) -> Image.Image | str:
    """The image as `ImageReward.score` opens a path (PIL, in the file's own mode: the package converts to RGB
    after resizing), or the reason it cannot be read."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        return f"cannot decode image: {exc}"


@register
class ImageRewardTask(Task):
    name = "imagereward"
    version = "1"
    family = "text-image"
    sample_kind = "image"
    description = ("ImageReward v1.0 human-preference reward (image-reward 1.5's ImageReward.score): BLIP ViT-L "
                   "image tokens, BERT text encoder with cross-attention, reward MLP, normalised by the package's "
                   "mean/std")
    metrics = {"imagereward": MetricInfo("higher", "mean over images of ImageReward.score(prompt, image): (MLP(first "
                                                   "token) − 0.16717) / 1.03334; prompts cut at 35 BERT tokens",
                                         primary=True, per_sample="imagereward")}

    def requirements(self, options) -> Requirements:
        from evalsuite.tasks.preference.imagereward import VOCAB, WEIGHTS

        return Requirements(weights=(WEIGHTS, VOCAB))

    def run(self, ctx) -> TaskOutput:
        from evalsuite.tasks.preference.imagereward import ImageRewardScorer

        scorer = build_backend(ImageRewardScorer.from_store, ctx.device, ctx.options.offline)
        ctx.weights_used[scorer.protocol] = scorer.weights_sha256
        ctx.weights_used[f"{scorer.protocol}-vocab"] = scorer.vocab_sha256
        files, prompts = ctx.sample_files(), ctx.sample_prompts()
        skipped = [{"file": str(f), "reason": "no prompt known for this image"}
                   for f, p in zip(files, prompts) if not p]
        items = [(str(f), p) for f, p in zip(files, prompts) if p]
        if not items:
            raise TaskSkipped("no prompt is known for any of these images", NO_PROMPT_FIX)
        size = max(1, ctx.options.batch_size)

        def score(shard: list) -> list:  # per (file, prompt): the reward, or a skip record
            out: list = []
            for start in range(0, len(shard), size):
                chunk = shard[start:start + size]
                opened = [open_as_package(path) for path, _ in chunk]
                ok = [i for i, image in enumerate(opened) if not isinstance(image, str)]
                got = scorer.score([opened[i] for i in ok], [chunk[i][1] for i in ok]) if ok else []
                values = {i: float(got[j]) for j, i in enumerate(ok)}
                out += [values[i] if i in values else {"file": chunk[i][0], "reason": opened[i]}
                        for i in range(len(chunk))]
            return out

        results = ctx.map_samples(items, score, "ImageReward")
        kept = [(item, value) for item, value in zip(items, results) if not isinstance(value, dict)]
        skipped += [value for value in results if isinstance(value, dict)]
        if not kept:
            raise InputError("no image could be scored by ImageReward", "check the images (see the skipped samples)")
        rewards = [value for _, value in kept]
        return TaskOutput(metrics={"imagereward": float(np.mean(rewards))},
                          details={"protocol": scorer.protocol,
                                   "path": "image-reward 1.5 ImageReward.score(prompt, image), one prompt per image, "
                                           "fp32",
                                   "weights_sha256": scorer.weights_sha256, "vocab_sha256": scorer.vocab_sha256},
                          per_sample={"name": [f for (f, _), _ in kept], "prompt": [p for (_, p), _ in kept],
                                      "imagereward": rewards},
                          skipped_samples=skipped, num_samples=len(kept), protocol=scorer.protocol)
