"""The `counting` task: object counts 1-10 of ten classes, counted with GenEval's detector rule (confidence above
GenEval's counting threshold), scored as exact accuracy, mean absolute error and off-by-one rate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evalsuite.errors import InputError
from evalsuite.score_cache import ScoreCache, fill, scorer_identity
from evalsuite.tasks import register
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput
from evalsuite.tasks.geneval.task import DETECTOR_HELP, detection_batch, required_weights
from evalsuite.tasks.t2i.backends import detect_all
from evalsuite.tasks.t2i.task_helpers import (
    PromptGridOptions,
    first_prompts,
    open_or_reason,
    resolve_backend,
)

COUNTING_CLASSES = ("apple", "dog", "cat", "bird", "car", "cup", "banana", "orange", "person", "chair")


def counting_prompts(classes=COUNTING_CLASSES, max_count: int = 10) -> list[dict]:
    """'a photo of seven apples' for counts 1..10 of each class (class-major), with GenEval-style metadata plus
    `target_class` and `target_count`."""
    from evalsuite.tasks.geneval.prompts import noun_phrase

    return [{"tag": "counting", "include": [{"class": cls, "count": n}], "exclude": [{"class": cls, "count": n + 1}],
             "prompt": f"a photo of {noun_phrase(cls, n)}", "target_class": cls, "target_count": n}
            for cls in classes for n in range(1, max_count + 1)]


@register
class CountingTask(Task):
    name = "counting"
    version = "1"
    family = "text-image"
    sample_kind = "image"
    description = "Object counting 1-10: exact accuracy, mean absolute error, off-by-one rate, per target count"
    metrics = {
        "accuracy": MetricInfo("higher", "exact-count accuracy", primary=True, per_sample="correct"),
        "mae": MetricInfo("lower", "mean absolute count error", per_sample="abs_error"),
        "off_by_one": MetricInfo("lower", "fraction of images off by exactly one", per_sample="off_by_one"),
    }

    @dataclass(frozen=True)
    class Options(PromptGridOptions):
        detector: str = field(default="torchvision-maskrcnn", metadata={"help": DETECTOR_HELP})

    def requirements(self, options) -> Requirements:
        return Requirements(weights=required_weights(self.options))

    def run(self, ctx) -> TaskOutput:
        from evalsuite.tasks.geneval.scoring import COUNTING_THRESHOLD, filter_detections

        detector = resolve_backend("detector", self.options.detector, ctx)
        prompts = first_prompts(counting_prompts(), self.options)
        items = ctx.prompt_samples(prompts, "counting", self.options.images_per_prompt)

        # a count depends on the image, the target class and the detector, not on how many prompts are scored
        identity = scorer_identity(self, detector, ctx, options=f"detector={self.options.detector}")
        cache = ScoreCache(identity) if identity else None
        batch = detection_batch(ctx)

        def count(shard: list) -> list:  # per prompt, for each expected image: (name, target, predicted, missing?,
            # from the cache?)
            images = []  # (prompt's place in the shard, image's place in the prompt, file, target class)
            for k, item in enumerate(shard):
                meta = item.metadata
                cls = meta.get("target_class", meta["include"][0]["class"])
                images += [(k, j, path, cls) for j, path in enumerate(item.images)]

            def compute(chunk: list[int]) -> dict[int, Any]:  # the count, or why the image cannot be read
                opened = {i: open_or_reason(images[i][2]) for i in chunk}
                readable = [i for i in chunk if not isinstance(opened[i], str)]
                detections = detect_all(detector, [opened[i] for i in readable])  # type: ignore[misc]
                counts = {i: len(filter_detections(found, "counting").get(images[i][3], []))
                          for i, found in zip(readable, detections)}
                return {i: counts.get(i, opened[i]) for i in chunk}

            got, from_cache = fill(cache, [(path, cls) for _, _, path, cls in images], compute, batch)
            at = {(k, j): (None if isinstance(got[i], str) else int(got[i]), i in from_cache)
                  for i, (k, j, _, _) in enumerate(images)}
            out = []
            for k, item in enumerate(shard):
                meta = item.metadata
                target = int(meta.get("target_count", meta["include"][0]["count"]))
                rows = []
                for j in range(len(item.images) + item.missing):  # missing images stay in the denominator as 0
                    predicted, hit = at.get((k, j), (None, False))
                    rows.append((f"{item.index:05d}/{j:04d}", target, predicted or 0, predicted is None, hit))
                out.append(rows)
            return out

        per: dict[str, list] = {k: [] for k in ("name", "target", "predicted", "correct", "abs_error", "off_by_one")}
        missing = hits = 0
        for name, target, predicted, was_missing, hit in (r for rows in ctx.map_samples(items, count, "counting")
                                                          for r in rows):
            err = abs(predicted - target)
            missing += was_missing
            hits += hit
            per["name"].append(name)
            per["target"].append(target)
            per["predicted"].append(predicted)
            per["correct"].append(float(err == 0))
            per["abs_error"].append(float(err))
            per["off_by_one"].append(float(err == 1))
        if not per["name"]:
            raise InputError("no counting images were produced", "check -o images_per_prompt and the model")
        targets = np.array(per["target"])
        per_count = {str(n): float(np.mean(np.array(per["correct"])[targets == n])) for n in sorted(set(per["target"]))}
        per_count_mae = {str(n): float(np.mean(np.array(per["abs_error"])[targets == n]))
                         for n in sorted(set(per["target"]))}
        return TaskOutput(
            metrics={"accuracy": float(np.mean(per["correct"])), "mae": float(np.mean(per["abs_error"])),
                     "off_by_one": float(np.mean(per["off_by_one"]))},
            protocol=detector.protocol,
            details={"per_count": per_count, "per_count_mae": per_count_mae, "threshold": COUNTING_THRESHOLD,
                     "cached_samples": hits,
                     "counter": f"{detector.protocol} detections of the target class at confidence > "
                                f"{COUNTING_THRESHOLD}", "missing_or_unreadable_images": missing,
                     "images_per_prompt": self.options.images_per_prompt, "num_prompts": len(items)},
            per_sample=per, num_samples=len(per["name"]))
