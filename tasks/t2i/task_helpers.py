"""What the text-image tasks (CLIPScore, GenEval, counting, DPG-Bench, the per-image scores) share: the prompt-grid
options (images per prompt, first N prompts), building a model backend so that missing weights make the task a skip,
resolving a detector / colour / VQA backend spec, opening an image or saying why it cannot be read, and scoring every
sample image (with its prompt) in batches, sharded over ranks (`score_per_image`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from evalsuite.errors import InputError, MissingWeightsError, TaskSkipped
from evalsuite.imageio import read_rgb
from evalsuite.score_cache import ScoreCache, fill
from evalsuite.task import TaskOutput


def build_backend(build, *args: Any, **kwargs: Any) -> Any:
    """Build a model backend; missing weights make the task a skip with both fixing commands."""
    try:
        return build(*args, **kwargs)
    except MissingWeightsError as exc:
        raise TaskSkipped(exc.message, exc.fix) from exc


class Deferred:
    """A model backend built on first use and kept, e.g. when the first image misses the score cache: a second run
    whose every result is cached never loads the model.

    >>> built = []
    >>> backend = Deferred(lambda: built.append(1) or "model")
    >>> backend.built, backend(), backend(), built
    (False, 'model', 'model', [1])
    """

    def __init__(self, build: Callable[[], Any]):
        self._build = build
        self._value: Any = None
        self.built = False

    def __call__(self) -> Any:
        if not self.built:
            self._value = self._build()
            self.built = True
        return self._value


@dataclass(frozen=True)
class PromptGridOptions:
    """How many prompts and images per prompt a prompt-grid task (GenEval's layout) scores."""

    images_per_prompt: int = field(default=4, metadata={"help": "images generated (expected) per prompt"})
    max_prompts: int | None = field(default=None, metadata={"help": "score the first N prompts only"})

    def __post_init__(self) -> None:  # checked when the run's options are resolved, before any work
        if self.images_per_prompt < 1:
            raise InputError(f"images_per_prompt is {self.images_per_prompt}", "pass -o images_per_prompt=1 or more")
        if self.max_prompts is not None and self.max_prompts < 1:
            raise InputError(f"max_prompts is {self.max_prompts}", "pass -o max_prompts=1 or more, or leave it out")


def first_prompts(prompts: list, options: PromptGridOptions) -> list:
    """The prompts the options ask for (all, or the first `max_prompts`; both counts checked by the options)."""
    return prompts[:options.max_prompts] if options.max_prompts else prompts


def resolve_backend(kind: str, spec: str, ctx) -> Any:
    """A detector / colour / VQA backend; absent weights or an uninstallable official backend make a skip."""
    import evalsuite.tasks.dpg.vqa  # noqa: F401  (registers the VQA backends)
    import evalsuite.tasks.geneval.color_classifier  # noqa: F401  (registers the colour classifier)
    import evalsuite.tasks.geneval.detectors  # noqa: F401  (registers the detectors)
    from evalsuite.tasks.t2i import backends

    try:
        return build_backend(backends.resolve, kind, spec, device=ctx.device, offline=ctx.options.offline)
    except InputError as exc:
        raise TaskSkipped(f"{kind} backend {spec} is not available: {exc.message}", exc.fix) from exc


def open_or_reason(path) -> Image.Image | str:
    """The image, or the reason it cannot be read."""
    try:
        return Image.fromarray(read_rgb(path))
    except InputError as exc:
        return exc.message


NO_PROMPT_FIX = "for folder:PATH add prompts.jsonl with {\"file\", \"prompt\"} per line"

#: scores a batch: (images, their prompts or None) -> one result per image (a str is the reason it cannot be scored)
BatchScorer = Callable[[list[Image.Image], list[str] | None], list[Any]]


@dataclass
class PerImage:
    """What `score_per_image` returns: the scored images' names, prompts and results, and the skipped samples."""

    names: list[str]
    prompts: list[str | None]
    values: list[Any]
    skipped: list[dict]
    cached: int = 0  # results read from the score cache instead of the model


def score_per_image(ctx: Any, score_batch: BatchScorer, label: str, *, with_prompts: bool = True,
                    opener: Callable[[str], Image.Image | str] = open_or_reason,
                    cache_identity: dict | None = None) -> PerImage:
    """Score every sample image (and its prompt) in batches of --batch-size, sharded over ranks. Images without a
    prompt (when `with_prompts`) and images `opener` cannot open or `score_batch` cannot score (a str result) are
    skipped samples with their reason; none scored at all is an error (no prompt known anywhere: a skip).

    With `cache_identity` (everything that changes the number: task, version, protocol, weights sha256, device,
    options), results are cached per (image content sha256, prompt) in `evalsuite.score_cache`, so a second run over
    the same images only reads them."""
    files = ctx.sample_files()
    skipped: list[dict] = []
    if with_prompts:
        prompts = ctx.sample_prompts()
        skipped += [{"file": str(f), "reason": "no prompt known for this image"}
                    for f, p in zip(files, prompts) if not p]
        items: list[tuple[str, str | None]] = [(str(f), p) for f, p in zip(files, prompts) if p]
        if not items:
            raise TaskSkipped("no prompt is known for any of these images", NO_PROMPT_FIX)
    else:
        items = [(str(f), None) for f in files]
    size = max(1, ctx.options.batch_size)

    cache = ScoreCache(cache_identity) if cache_identity is not None else None

    def run(shard: list) -> list:  # per item: (its result or skip record, whether it came from the cache)
        def compute(chunk: list[int]) -> dict[int, Any]:  # a str: why the image cannot be scored
            opened = {i: opener(shard[i][0]) for i in chunk}
            readable = [i for i in chunk if not isinstance(opened[i], str)]
            got = score_batch([opened[i] for i in readable],  # type: ignore[misc]
                              [shard[i][1] for i in readable] if with_prompts else None) if readable else []
            values = dict(zip(readable, got))
            return {i: values.get(i, opened[i]) for i in chunk}

        got, from_cache = fill(cache, shard, compute, size)
        return [({"file": shard[i][0], "reason": got[i]} if isinstance(got[i], str) else got[i], i in from_cache)
                for i in range(len(shard))]

    results = ctx.map_samples(items, run, label)
    kept = [(item, value) for item, (value, _) in zip(items, results) if not isinstance(value, dict)]
    skipped += [value for value, _ in results if isinstance(value, dict)]
    if not kept:
        raise InputError(f"no image could be scored by {label}", "check the images (see the skipped samples)")
    return PerImage([f for (f, _), _ in kept], [p for (_, p), _ in kept], [v for _, v in kept], skipped,
                    cached=sum(hit for _, hit in results))


def per_image_output(metric: str, got: PerImage, details: dict[str, Any]) -> TaskOutput:
    """A per-image score's result: the mean as `metric`, every image's score kept (compare bootstraps CIs)."""
    scores = [float(v) for v in got.values]
    per_sample: dict[str, list] = {"name": got.names, metric: scores}
    if any(p is not None for p in got.prompts):
        per_sample["prompt"] = got.prompts
    details = {**details, "cached_samples": got.cached}
    return TaskOutput(metrics={metric: float(np.mean(scores))}, details=details, per_sample=per_sample,
                      skipped_samples=got.skipped, num_samples=len(scores), protocol=details["protocol"])
