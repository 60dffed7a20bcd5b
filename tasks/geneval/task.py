"""The `geneval` task: GenEval's official rule over a prompt grid (`<NNNNN>/samples/<jjjj>.png`), with the detector
and colour classifier named as the protocol. The scoring itself is in the sibling modules (prompts, scoring,
detectors, color_classifier)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evalsuite.errors import InputError
from evalsuite.score_cache import ScoreCache, fill, scorer_identity
from evalsuite.tasks import register
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput
from evalsuite.tasks.t2i.task_helpers import PromptGridOptions, first_prompts, resolve_backend

#: images per detector call on an accelerator (Mask R-CNN upsamples each to 800 px: memory grows fast with the batch)
DETECTION_BATCH = 8


def detection_batch(ctx: Any) -> int:
    """Images per detector call: --batch-size, at most DETECTION_BATCH, on an accelerator; one on the CPU, where
    batches of 4 and 8 measured no faster than one image a call (benchmarks/per_image_tasks.py) and take more
    memory."""
    if str(ctx.device).startswith("cpu"):
        return 1
    return max(1, min(ctx.options.batch_size, DETECTION_BATCH))

DETECTOR_HELP = "torchvision-maskrcnn | mask2former:CONFIG,CHECKPOINT | python:module:factory"


def required_weights(options: Any, detector: bool = True, color: bool = False) -> tuple[str, ...]:
    """The stored weights the default detector / colour classifier of these options need."""
    needed = []
    if detector and options.detector == "torchvision-maskrcnn":
        needed.append("maskrcnn-v2-coco")
    if color and options.color == "clip-vit-l-14":
        needed.append("clip-vit-l-14-openai")
    return tuple(needed)


@register
class GenEvalTask(Task):
    name = "geneval"
    version = "2"
    family = "text-image"
    sample_kind = "image"
    description = "GenEval (official rule; detector and colour classifier named as the protocol)"
    metrics = {
        "overall": MetricInfo("higher", "mean over the tasks of each task's accuracy (summary_scores.py)",
                              primary=True),
        "image_accuracy": MetricInfo("higher", "fraction of correct images", per_sample="correct"),
        **{tag: MetricInfo("higher", f"{tag} accuracy") for tag in
           ("single_object", "two_object", "counting", "colors", "position", "color_attr")},
        "missing_images": MetricInfo("lower", "expected images (images per prompt x prompts) not found or "
                                              "unreadable: not scored (official), or failures with "
                                              "-o geneval.missing_as_failure=true"),
    }

    @dataclass(frozen=True)
    class Options(PromptGridOptions):
        detector: str = field(default="torchvision-maskrcnn", metadata={"help": DETECTOR_HELP})
        color: str = field(default="clip-vit-l-14", metadata={"help": "colour classifier"})
        missing_as_failure: bool = field(default=False, metadata={
            "help": "count missing images as failures (the official script skips them)"})

    def requirements(self, options) -> Requirements:
        return Requirements(weights=required_weights(self.options, detector=True, color=True))

    def run(self, ctx) -> TaskOutput:
        import json
        import re
        import warnings

        from evalsuite.tasks.geneval.prompts import generate_prompts, load_prompts
        from evalsuite.tasks.geneval.scoring import open_image, score_images, summarize

        detector = resolve_backend("detector", self.options.detector, ctx)
        color = resolve_backend("color", self.options.color, ctx)
        if ctx.options.prompts and str(ctx.options.prompts).endswith(".jsonl"):
            prompts, prompt_set = load_prompts(ctx.options.prompts), f"file:{ctx.options.prompts}"
        else:
            prompts, prompt_set = generate_prompts(43), "evalsuite generate_prompts(seed=43)"
        prompts = first_prompts(prompts, self.options)
        expected = self.options.images_per_prompt
        items = ctx.prompt_samples(prompts, "geneval", expected)
        as_failure = self.options.missing_as_failure

        # a row depends on the image, its prompt's metadata and the two models, not on how many prompts are scored
        identity = scorer_identity(self, detector, ctx, color, options=f"detector={self.options.detector}, "
                                                                       f"color={self.options.color}")
        cache = ScoreCache(identity) if identity else None
        batch = detection_batch(ctx)

        def score(shard: list) -> list:  # per prompt: its rows and its missing or unreadable images
            # evaluate_images.py L270-273: only the files named like `\d+\.png` are scored
            images = [(k, path, f"{item.index:05d}/samples/{path.name}", json.dumps(item.metadata, sort_keys=True))
                      for k, item in enumerate(shard) for path in item.images if re.match(r"\d+\.png", path.name)]
            of_item: dict[int, list[int]] = {}
            for i, image in enumerate(images):
                of_item.setdefault(image[0], []).append(i)
            def compute(chunk: list[int]) -> dict[int, Any]:  # a row without its filename, or why it is unreadable
                done: dict[int, Any] = {}
                opened = {}
                for i in chunk:
                    try:  # read as evaluate_images.py L227 reads it: EXIF orientation applied
                        opened[i] = open_image(images[i][1])
                    except InputError as exc:
                        done[i] = f"unreadable image: {exc.message}"
                fresh = score_images([(images[i][2], image, shard[images[i][0]].metadata)
                                      for i, image in opened.items()], detector, color)
                done.update({i: {k: v for k, v in row.items() if k != "filename"} for i, row in zip(opened, fresh)})
                return done

            got, from_cache = fill(cache, [(path, key) for _, path, _, key in images], compute, batch)
            out = []
            for k, item in enumerate(shard):
                mine = of_item.get(k, [])
                rows = [{"filename": images[i][2], **got[i]} for i in mine if not isinstance(got[i], str)]
                absent = [_failed_row(images[i][2], item.metadata, got[i]) for i in mine if isinstance(got[i], str)]
                for j in range(max(0, expected - len(rows) - len(absent))):
                    absent.append(_failed_row(f"{item.index:05d}/samples/missing-{j}", item.metadata, "missing image"))
                out.append((rows, absent, sum(i in from_cache for i in mine)))
            return out

        scored = ctx.map_samples(items, score, "GenEval detection")
        missing = [row for _, rows, _ in scored for row in rows]
        rows = [row for found, absent, _ in scored for row in found + (absent if as_failure else [])]
        if missing:
            warnings.warn(f"GenEval: {len(missing)} of {expected * len(items)} expected images are missing or "
                          f"unreadable (e.g. {missing[0]['filename']}); " +
                          ("they count as failures" if as_failure else
                           "they are not scored, as the official script does (-o geneval.missing_as_failure=true "
                           "counts them as failures)"), stacklevel=2)
        if not rows:
            raise InputError(f"no GenEval image could be scored under {ctx.layouts.get('geneval')}",
                             "generate the images (<NNNNN>/samples/<jjjj>.png) or point at the right folder")
        summary = summarize(rows)
        metrics = {"overall": summary["overall"], "image_accuracy": summary["image_accuracy"],
                   "missing_images": float(len(missing)),
                   **{tag: t["accuracy"] for tag, t in summary["tasks"].items() if tag in self.metrics}}
        protocol = f"{detector.protocol}+{color.protocol}" + ("+missing-as-failure" if as_failure else "")
        return TaskOutput(
            metrics=metrics, protocol=protocol,
            details={"tasks": summary["tasks"], "prompts_any_correct": summary["prompts_any_correct"],
                     "prompt_accuracy": summary["prompt_accuracy"], "prompt_set": prompt_set,
                     "num_prompts": summary["num_prompts"], "images_per_prompt": expected,
                     "cached_samples": sum(hits for _, _, hits in scored),
                     "missing_or_unreadable_images": len(missing),
                     "missing_images_policy": "failures (geneval.missing_as_failure)" if as_failure else
                     "not scored (official evaluate_images.py scores the files that exist)",
                     "missing": [r["filename"] for r in missing][:100],
                     "color_precision": getattr(color, "precision", None),
                     "layout": str(ctx.layouts.get("geneval")), "per_prompt": summary["per_prompt"]},
            per_sample={"name": [r["filename"] for r in rows], "tag": [r["tag"] for r in rows],
                        "correct": [float(r["correct"]) for r in rows]},
            skipped_samples=[{"file": r["filename"], "reason": r["reason"]} for r in missing],
            num_samples=len(rows), artifacts={"results.jsonl": "".join(json.dumps(r) + "\n" for r in rows).encode()})


def _failed_row(filename: str, metadata: dict, reason: str) -> dict:
    """A missing or unreadable image as an incorrect row (official results.jsonl schema), for the opt-in policy."""
    import json

    return {"filename": filename, "tag": metadata["tag"], "prompt": metadata["prompt"], "correct": False,
            "reason": reason, "metadata": json.dumps(metadata), "details": "{}"}

