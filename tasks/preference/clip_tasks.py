"""The CLIP-based human-preference tasks: `hpsv2` (HPSv2.1 / v2.0), `pickscore` (PickScore v1) and `aesthetic`
(LAION improved aesthetic predictor). Each scores every image (with its prompt, except `aesthetic`), keeps the
per-image scores so `compare` bootstraps confidence intervals, reports their mean, names its protocol (version and
weights) and records the weights' sha256. The scorers live in `hps.py`, `pickscore.py` and `aesthetic.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from evalsuite.errors import InputError, TaskSkipped
from evalsuite.score_cache import scorer_identity
from evalsuite.tasks import register
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput
from evalsuite.tasks.t2i.task_helpers import BatchScorer, Deferred, build_backend, per_image_output, score_per_image


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

        info = build_backend(HPSScorer.describe, self.options.version, ctx.options.offline, self.options.antialias)
        ctx.weights_used[info.protocol] = info.weights_sha256
        scorer = Deferred(lambda: build_backend(HPSScorer, self.options.version, ctx.device, ctx.options.offline,
                                                self.options.antialias))

        def batch(images: list[Image.Image], prompts: list[str] | None) -> list[Any]:
            return hps_batch(scorer())(images, prompts)

        cache = scorer_identity(self, info, ctx)
        return per_image_output("hpsv2", score_per_image(ctx, batch, "HPSv2", cache_identity=cache),
                       {"protocol": info.protocol, "version": self.options.version,
                        "path": "hpsv2.img_score.score (hpsv2 1.2.0) × 100, hps_version pinned",
                        "resize_antialias": self.options.antialias,
                        "weights_sha256": info.weights_sha256})


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
    version = "2"  # 2: model-folder digest by evalsuite.hashing.files_digest (one formula for every task)
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
        def build(make: Any, *args: Any) -> Any:
            try:
                return make(self.options.model, self.options.processor, *args)
            except InputError as exc:
                raise TaskSkipped(exc.message, exc.fix) from exc

        info = build(PickScorer.describe)
        ctx.weights_used[info.protocol] = info.weights_sha256
        scorer = Deferred(lambda: build(PickScorer, ctx.device))
        sources = info.details["sources"]

        def batch(images: list[Image.Image], prompts: list[str] | None) -> list[Any]:
            assert prompts is not None
            return [float(v) for v in scorer().score(images, prompts)]

        cache = scorer_identity(self, info, ctx, sources=sources)
        return per_image_output("pickscore", score_per_image(ctx, batch, "PickScore", cache_identity=cache),
                       {"protocol": info.protocol, "weights_sha256": info.weights_sha256, **sources,
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

        info = build_backend(AestheticScorer.describe, ctx.device, ctx.options.offline)
        ctx.weights_used[info.protocol] = info.weights_sha256["head"]
        ctx.weights_used["clip-vit-l-14-openai"] = info.weights_sha256["clip"]
        scorer = Deferred(lambda: build_backend(AestheticScorer, ctx.device, ctx.options.offline))

        def batch(images: list[Image.Image], prompts: list[str] | None) -> list[Any]:
            return [float(v) for v in scorer().score(images)]

        cache = scorer_identity(self, info, ctx, precision=info.details["precision"])
        return per_image_output("aesthetic", score_per_image(ctx, batch, "aesthetic", with_prompts=False,
                                                             cache_identity=cache),
                       {"protocol": info.protocol, "weights_sha256": info.weights_sha256,
                        "clip_precision": info.details["precision"],
                        "official": "christophschuhmann/improved-aesthetic-predictor simple_inference.py @6934dd8"})
