"""The `imagereward` task: ImageReward v1.0 (image-reward 1.5's `ImageReward.score(prompt, image)`) of every image
with its prompt. Per-image rewards are kept so `compare` bootstraps confidence intervals; the metric is their mean.
Images without a prompt, or that cannot be opened, are skipped samples. The scorer is `imagereward.py`."""

from __future__ import annotations

from PIL import Image

from evalsuite.score_cache import scorer_identity
from evalsuite.tasks import register
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput
from evalsuite.tasks.t2i.task_helpers import Deferred, build_backend, per_image_output, score_per_image


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

        info = build_backend(ImageRewardScorer.describe, ctx.options.offline)
        vocab_sha256 = info.details["vocab_sha256"]
        ctx.weights_used[info.protocol] = info.weights_sha256
        ctx.weights_used[f"{info.protocol}-vocab"] = vocab_sha256
        scorer = Deferred(lambda: build_backend(ImageRewardScorer.from_store, ctx.device, ctx.options.offline))
        got = score_per_image(ctx, lambda images, prompts: [float(r) for r in scorer().score(images, prompts)],
                              "ImageReward", opener=open_as_package,
                              cache_identity=scorer_identity(self, info, ctx, vocab=vocab_sha256))
        return per_image_output("imagereward", got, {
            "protocol": info.protocol, "path": "image-reward 1.5 ImageReward.score(prompt, image), one prompt per "
                                               "image, fp32",
            "weights_sha256": info.weights_sha256, "vocab_sha256": vocab_sha256})
