"""Text-image alignment tasks: CLIPScore, GenEval, DPG-Bench and object-counting accuracy. Each keeps per-image
(and per-prompt) results so `compare` can bootstrap confidence intervals, and names its scoring protocol (the
detector / VQA backend) in its details so results of different backends are never mixed."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from evalsuite.errors import InputError, MissingWeightsError, TaskSkipped
from evalsuite.imageio import read_rgb
from tasks import register, register_suite
from tasks.base import MetricInfo, Requirements, Task, TaskOutput


def _backend(build, *args: Any, **kwargs: Any) -> Any:
    """Build a model backend; missing weights make the task a skip with both fixing commands."""
    try:
        return build(*args, **kwargs)
    except MissingWeightsError as exc:
        raise TaskSkipped(exc.message, exc.fix) from exc


@register
class CLIPScoreTask(Task):
    name = "clipscore"
    version = "1"
    family = "text-image"
    sample_kind = "image"
    description = "CLIPScore: 100·max(cos, 0) of CLIP image and prompt embeddings, averaged (torchmetrics convention)"
    metrics = {"clipscore": MetricInfo("higher", "mean of 100·max(cos, 0) over image-prompt pairs", primary=True,
                                       per_sample="clipscore")}

    def requirements(self, options) -> Requirements:
        from tasks.t2i.clipscore import BACKBONES

        return Requirements(weights=(BACKBONES.get(options.clip_backbone, "clip-vit-b-32-openai"),))

    def run(self, ctx) -> TaskOutput:
        from tasks.t2i.clipscore import CLIPScorer

        scorer = _backend(CLIPScorer, ctx.options.clip_backbone, ctx.device, ctx.options.offline)
        ctx.weights_used[scorer.protocol] = scorer.weights_sha256
        files, prompts = ctx.sample_files(), ctx.sample_prompts()
        skipped = [{"file": str(f), "reason": "no prompt known for this image"} for f, p in zip(files, prompts) if not p]
        pairs = [(f, p) for f, p in zip(files, prompts) if p]
        if not pairs:
            raise TaskSkipped("no prompt is known for any of these images",
                              "for folder:PATH add prompts.jsonl with {\"file\", \"prompt\"} per line")
        names, texts, values = [], [], []
        size = max(1, ctx.options.batch_size)
        for start in range(0, len(pairs), size):
            images, batch = [], []
            for path, prompt in pairs[start:start + size]:
                try:
                    images.append(Image.fromarray(read_rgb(path)))
                    batch.append((path, prompt))
                except InputError as exc:
                    skipped.append({"file": str(path), "reason": exc.message})
            if images:
                values.extend(scorer.score(images, [p for _, p in batch]).tolist())
                names.extend(str(p) for p, _ in batch)
                texts.extend(p for _, p in batch)
        if ctx.options.strict and skipped:
            raise InputError(f"{len(skipped)} image(s) could not be scored, e.g. {skipped[0]['file']}: "
                             f"{skipped[0]['reason']}", "fix them, or run without --strict")
        if not values:
            raise InputError("no image could be scored", "check the images")
        return TaskOutput(metrics={"clipscore": float(np.mean(values))},
                          details={"protocol": scorer.protocol, "backbone": ctx.options.clip_backbone},
                          per_sample={"name": names, "prompt": texts, "clipscore": values},
                          skipped_samples=skipped, num_samples=len(values))
