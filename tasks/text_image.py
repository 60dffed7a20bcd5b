"""The `clipscore` task (CLIPScore, OpenAI CLIP image and prompt embeddings; the scorer is
`evalsuite.tasks.t2i.clipscore`) and the `text-image` suite. Each text-image task keeps per-image (and per-prompt)
results so `compare` can bootstrap confidence intervals, and names its scoring protocol (the detector / VQA backend)
in its details so results of different backends are never mixed.

GenEval and counting live in `evalsuite.tasks.geneval`, DPG-Bench in `evalsuite.tasks.dpg`, the helpers they share
in `evalsuite.tasks.t2i.task_helpers`. Their task classes and public names are re-exported here for code that
imports them from this module (importing it still registers all four tasks)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evalsuite.score_cache import scorer_identity
from evalsuite.tasks import register, register_suite
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput
from evalsuite.tasks.dpg.task import DPG_CATEGORIES, DPGBenchTask
from evalsuite.tasks.geneval.counting_task import COUNTING_CLASSES, CountingTask, counting_prompts
from evalsuite.tasks.geneval.task import DETECTOR_HELP, GenEvalTask
from evalsuite.tasks.t2i.task_helpers import Deferred, PromptGridOptions, build_backend, score_per_image

__all__ = ["COUNTING_CLASSES", "CLIPScoreTask", "CountingTask", "DETECTOR_HELP", "DPGBenchTask", "DPG_CATEGORIES",
           "GenEvalTask", "PromptGridOptions", "counting_prompts"]


@register
class CLIPScoreTask(Task):
    name = "clipscore"
    version = "2"
    family = "text-image"
    sample_kind = "image"
    description = ("CLIPScore: torchmetrics' max(mean of 100·cos, 0), and Hessel et al.'s CLIP-S (2.5·max(cos, 0) "
                   "with \"A photo depicts\"), OpenAI CLIP image and prompt embeddings")
    metrics = {
        "clipscore": MetricInfo("higher", "torchmetrics CLIPScore: max(mean of 100·cos over image-prompt pairs, 0); "
                                          "ids cut at 77 (a longer prompt loses its end token)", primary=True,
                                per_sample="clipscore"),
        "clip_s_hessel": MetricInfo("higher", "Hessel et al. CLIP-S: mean of 2.5·max(cos, 0) with the prefix \"A "
                                              "photo depicts \", clip.tokenize(truncate=True)",
                                    per_sample="clip_s_hessel"),
    }

    @dataclass(frozen=True)
    class Options:
        backbone: str = field(default="ViT-B-32", metadata={"help": "CLIP backbone: ViT-B-32 | ViT-L-14"})

    def requirements(self, options) -> Requirements:
        from evalsuite.tasks.t2i.clipscore import BACKBONES

        return Requirements(weights=(BACKBONES.get(self.options.backbone, "clip-vit-b-32-openai"),))

    def run(self, ctx) -> TaskOutput:
        from evalsuite.tasks.t2i.clipscore import CLIPScorer

        info = build_backend(CLIPScorer.describe, self.options.backbone, ctx.options.offline)
        ctx.weights_used[info.protocol] = info.weights_sha256
        scorer = Deferred(lambda: build_backend(CLIPScorer, self.options.backbone, ctx.device, ctx.options.offline))
        keys = ("clipscore", "clip_s_hessel", "long", "long_hessel")

        def score(images: list, prompts: list[str] | None) -> list[tuple]:  # per image: its values in `keys` order
            assert prompts is not None
            got = scorer().score(images, prompts)
            return [tuple(got[k][j].item() for k in keys) for j in range(len(images))]

        scored = score_per_image(ctx, score, "CLIPScore", cache_identity=scorer_identity(self, info, ctx))
        names, texts = scored.names, scored.prompts
        columns = {k: [v[i] for v in scored.values] for i, k in enumerate(keys)}
        long = {"clipscore": int(sum(columns["long"])), "clip_s_hessel": int(sum(columns["long_hessel"]))}
        if any(long.values()):
            import warnings

            warnings.warn(f"CLIPScore: {long['clipscore']} prompt(s) longer than CLIP's 77 tokens (end token cut "
                          f"off, as torchmetrics does), {long['clip_s_hessel']} with Hessel's prefix (truncated)",
                          UserWarning, stacklevel=2)
        return TaskOutput(metrics={"clipscore": max(float(np.mean(columns["clipscore"])), 0.0),
                                   "clip_s_hessel": float(np.mean(columns["clip_s_hessel"]))},
                          details={"protocol": info.protocol, "backbone": self.options.backbone,
                                   "cached_samples": scored.cached,
                                   "prompts_over_77_tokens": long,
                                   "truncation": {"clipscore": "torchmetrics: ids sliced at 77, end token dropped",
                                                  "clip_s_hessel": "clip.tokenize(truncate=True): end token kept"}},
                          per_sample={"name": names, "prompt": texts, "clipscore": columns["clipscore"],
                                      "clip_s_hessel": columns["clip_s_hessel"],
                                      "truncated": [bool(a) for a in columns["long"]],
                                      "truncated_hessel": [bool(a) for a in columns["long_hessel"]]},
                          skipped_samples=scored.skipped, num_samples=len(names))


register_suite("text-image", ["clipscore", "geneval", "counting", "vqascore", "hpsv2", "pickscore", "imagereward",
                              "t2i-compbench"],
               "Text-image alignment: CLIPScore, GenEval, counting, VQAScore, T2I-CompBench, and the human-preference "
               "scores HPSv2.1, PickScore and ImageReward (add dpg-bench with --dpg and --vqa, vlm-judge with --judge)")
