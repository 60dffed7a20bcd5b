"""The CLIP-based human-preference tasks: `hpsv2` (HPSv2.1 / v2.0), `pickscore` (PickScore v1) and `aesthetic`
(LAION improved aesthetic predictor). Each scores every image (with its prompt, except `aesthetic`), keeps the
per-image scores so `compare` bootstraps confidence intervals, reports their mean, names its protocol (version and
weights) and records the weights' sha256. The scorers live in `hps.py`, `pickscore.py` and `aesthetic.py`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from evalsuite.errors import InputError, TaskSkipped
from evalsuite.tasks import register
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput
from evalsuite.tasks.t2i.task_helpers import build_backend, open_or_reason

NO_PROMPT_FIX = "for folder:PATH add prompts.jsonl with {\"file\", \"prompt\"} per line"

# score a batch: (images, prompts or None) -> one float, or the reason it cannot be scored, per image
BatchScorer = Callable[[list[Image.Image], list[str] | None], list[Any]]


def score_images(ctx, score_batch: BatchScorer, label: str, with_prompts: bool) -> dict[str, Any]:
    """Score every sample image (and its prompt) in batches, sharded over ranks; images without a prompt (when one
    is needed) or unreadable are skipped samples. Returns names, prompts, scores and skipped records."""
    files = ctx.sample_files()
    skipped: list[dict] = []
    if with_prompts:
        prompts = ctx.sample_prompts()
        skipped += [{"file": str(f), "reason": "no prompt known for this image"}
                    for f, p in zip(files, prompts) if not p]
        items = [(str(f), p) for f, p in zip(files, prompts) if p]
        if not items:
            raise TaskSkipped("no prompt is known for any of these images", NO_PROMPT_FIX)
    else:
        items = [(str(f), None) for f in files]
    size = max(1, ctx.options.batch_size)

    def run(shard: list) -> list:
        out: list = []
        for start in range(0, len(shard), size):
            chunk = shard[start:start + size]
            opened = [open_or_reason(path) for path, _ in chunk]
            readable = [(i, image) for i, image in enumerate(opened) if not isinstance(image, str)]
            ok = [i for i, _ in readable]
            got = score_batch([image for _, image in readable], [chunk[i][1] for i in ok] if with_prompts else None) \
                if ok else []
            values = dict(zip(ok, got))
            for i, (path, _) in enumerate(chunk):
                value = values.get(i, opened[i])
                out.append({"file": path, "reason": value} if isinstance(value, str) else float(value))
        return out

    results = ctx.map_samples(items, run, label)
    kept = [(item, value) for item, value in zip(items, results) if not isinstance(value, dict)]
    skipped += [value for value in results if isinstance(value, dict)]
    if not kept:
        raise InputError(f"no image could be scored by {label}", "check the images (see the skipped samples)")
    return {"names": [f for (f, _), _ in kept], "prompts": [p for (_, p), _ in kept],
            "scores": [v for _, v in kept], "skipped": skipped}


def _output(metric: str, got: dict[str, Any], details: dict[str, Any]) -> TaskOutput:
    per_sample: dict[str, list] = {"name": got["names"], metric: got["scores"]}
    if any(p is not None for p in got["prompts"]):
        per_sample["prompt"] = got["prompts"]
    return TaskOutput(metrics={metric: float(np.mean(got["scores"]))}, details=details, per_sample=per_sample,
                      skipped_samples=got["skipped"], num_samples=len(got["scores"]), protocol=details["protocol"])


@register
class HPSv2Task(Task):
    name = "hpsv2"
    version = "1"
    family = "text-image"
    sample_kind = "image"
    description = ("HPSv2.1 human-preference score (hpsv2 1.2.0's img_score.score, ×100 as its benchmark prints): "
                   "cosine of HPS-tuned OpenCLIP ViT-H-14 image and prompt embeddings; -o hpsv2.version=v2.0")
    metrics = {"hpsv2": MetricInfo("higher", "mean over images of 100·cos(image, prompt) with the HPS checkpoint "
                                             "(hpsv2.score returns cos; its benchmark prints 100·cos)",
                                   primary=True, per_sample="hpsv2")}

    @dataclass(frozen=True)
    class Options:
        version: str = field(default="v2.1", metadata={"help": "HPS checkpoint: v2.1 (HPS_v2.1_compressed.pt) | "
                                                                "v2.0 (HPS_v2_compressed.pt)"})
        antialias: bool = field(default=True, metadata={
            "help": "antialiased resize (torchvision >= 0.17's default, what hpsv2 1.2.0 gets today); false: the "
                    "resize of torchvision < 0.17 (protocol suffix -noantialias)"})

        def __post_init__(self) -> None:
            from evalsuite.tasks.preference.hps import VERSIONS

            if self.version not in VERSIONS:
                raise InputError(f"hpsv2.version is '{self.version}'",
                                 f"pass -o hpsv2.version= one of {', '.join(VERSIONS)}")

    def requirements(self, options) -> Requirements:
        from evalsuite.tasks.preference.hps import VERSIONS

        return Requirements(weights=(VERSIONS[self.options.version],))

    def run(self, ctx) -> TaskOutput:
        from evalsuite.tasks.preference.hps import HPSScorer

        scorer = build_backend(HPSScorer, self.options.version, ctx.device, ctx.options.offline,
                               self.options.antialias)
        ctx.weights_used[scorer.protocol] = scorer.weights_sha256
        return _output("hpsv2", score_images(ctx, hps_batch(scorer), "HPSv2", with_prompts=True),
                       {"protocol": scorer.protocol, "version": scorer.version,
                        "path": "hpsv2.img_score.score (hpsv2 1.2.0) × 100, hps_version pinned",
                        "resize_antialias": scorer.antialias,
                        "weights_sha256": scorer.weights_sha256})


def hps_batch(scorer) -> BatchScorer:
    """Preprocess with HPS's transform (an image it cannot feed to the ViT gets a reason) and score the rest."""
    import torch

    def run(images: list[Image.Image], prompts: list[str] | None) -> list[Any]:
        assert prompts is not None
        pixels = [scorer.preprocess(image) for image in images]
        ok = [i for i, x in enumerate(pixels) if x is not None]
        out: list[Any] = ["HPSv2's transform does not pad a non-square image whose longer side is already "
                          f"{scorer.image_size} (hpsv2 transform.py ResizeMaxSize): the official scorer fails on it"
                          ] * len(images)
        if ok:
            got = scorer.score(torch.stack([pixels[i] for i in ok]), [prompts[i] for i in ok])
            for j, i in enumerate(ok):
                out[i] = float(got[j])
        return out

    return run


@register
class PickScoreTask(Task):
    name = "pickscore"
    version = "1"
    family = "text-image"
    sample_kind = "image"
    description = ("PickScore v1 (yuvalkirstain/PickScore README recipe through transformers): exp(logit_scale) · "
                   "cos(prompt, image) per image; local folders -o pickscore.model=PATH -o pickscore.processor=PATH")
    metrics = {"pickscore": MetricInfo("higher", "mean over images of exp(logit_scale)·cos(text, image) with "
                                                 "PickScore_v1 (the README's scores, before its softmax)",
                                       primary=True, per_sample="pickscore")}

    @dataclass(frozen=True)
    class Options:
        model: str | None = field(default=None, metadata={"help": "local folder of yuvalkirstain/PickScore_v1"})
        processor: str | None = field(default=None, metadata={
            "help": "local folder with laion/CLIP-ViT-H-14-laion2B-s32B-b79K's processor files (default: the model "
                    "folder)"})

    def requirements(self, options) -> Requirements:
        return Requirements(needs="-o pickscore.model=PATH (a local PickScore_v1 folder) and -o pickscore.processor="
                                  "PATH (CLIP-ViT-H-14 processor files), never downloaded")

    def run(self, ctx) -> TaskOutput:
        from evalsuite.tasks.preference.pickscore import FIX, PickScorer

        if not self.options.model:
            raise TaskSkipped("PickScore needs a local PickScore_v1 folder (weights are never downloaded)", FIX)
        try:
            scorer = PickScorer(self.options.model, self.options.processor, ctx.device)
        except InputError as exc:
            raise TaskSkipped(exc.message, exc.fix) from exc
        ctx.weights_used[scorer.protocol] = scorer.weights_sha256

        def batch(images: list[Image.Image], prompts: list[str] | None) -> list[Any]:
            assert prompts is not None
            return [float(v) for v in scorer.score(images, prompts)]

        return _output("pickscore", score_images(ctx, batch, "PickScore", with_prompts=True),
                       {"protocol": scorer.protocol, "weights_sha256": scorer.weights_sha256, **scorer.sources,
                        "recipe": "yuvalkirstain/PickScore README: logit_scale.exp() * text_embs @ image_embs.T, "
                                  "L2-normalised; processor padding=True, truncation=True, max_length=77",
                        "image_processor": "CLIPImageProcessorPil (transformers 4's PIL CLIPImageProcessor)"})


@register
class AestheticTask(Task):
    name = "aesthetic"
    version = "1"
    family = "image-quality"
    sample_kind = "image"
    description = ("LAION improved aesthetic predictor (simple_inference.py): linear MLP sac+logos+ava1-l14-linearMSE "
                   "on the L2-normalised OpenAI CLIP ViT-L/14 image embedding; no prompt")
    metrics = {"aesthetic": MetricInfo("higher", "mean over images of the predicted aesthetic score (≈1-10)",
                                       primary=True, per_sample="aesthetic")}

    def requirements(self, options) -> Requirements:
        from evalsuite.tasks.preference.aesthetic import CLIP_WEIGHTS, HEAD_WEIGHTS

        return Requirements(weights=(CLIP_WEIGHTS, HEAD_WEIGHTS))

    def run(self, ctx) -> TaskOutput:
        from evalsuite.tasks.preference.aesthetic import AestheticScorer

        scorer = build_backend(AestheticScorer, ctx.device, ctx.options.offline)
        ctx.weights_used[scorer.protocol] = scorer.weights_sha256["head"]
        ctx.weights_used["clip-vit-l-14-openai"] = scorer.weights_sha256["clip"]

        def batch(images: list[Image.Image], prompts: list[str] | None) -> list[Any]:
            return [float(v) for v in scorer.score(images)]

        return _output("aesthetic", score_images(ctx, batch, "aesthetic", with_prompts=False),
                       {"protocol": scorer.protocol, "weights_sha256": scorer.weights_sha256,
                        "clip_precision": scorer.precision,
                        "official": "christophschuhmann/improved-aesthetic-predictor simple_inference.py @6934dd8"})
