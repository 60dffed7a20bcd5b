"""Text-image alignment tasks: CLIPScore, GenEval, DPG-Bench and object-counting accuracy. Each keeps per-image
(and per-prompt) results so `compare` can bootstrap confidence intervals, and names its scoring protocol (the
detector / VQA backend) in its details so results of different backends are never mixed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from evalsuite.errors import InputError, MissingWeightsError, TaskSkipped
from evalsuite.imageio import read_rgb
from evalsuite.tasks import register, register_suite
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput


def _backend(build, *args: Any, **kwargs: Any) -> Any:
    """Build a model backend; missing weights make the task a skip with both fixing commands."""
    try:
        return build(*args, **kwargs)
    except MissingWeightsError as exc:
        raise TaskSkipped(exc.message, exc.fix) from exc


@dataclass(frozen=True)
class PromptGridOptions:
    """How many prompts and images per prompt a prompt-grid task (GenEval's layout) scores."""

    images_per_prompt: int = field(default=4, metadata={"help": "images generated (expected) per prompt"})
    max_prompts: int | None = field(default=None, metadata={"help": "score the first N prompts only"})


def _first_prompts(prompts: list, options: PromptGridOptions) -> list:
    if options.images_per_prompt < 1:
        raise InputError(f"images_per_prompt is {options.images_per_prompt}", "pass -o images_per_prompt=1 or more")
    if options.max_prompts is not None and options.max_prompts < 1:
        raise InputError(f"max_prompts is {options.max_prompts}", "pass -o max_prompts=1 or more, or leave it out")
    return prompts[:options.max_prompts] if options.max_prompts else prompts


DETECTOR_HELP = "torchvision-maskrcnn | mask2former:CONFIG,CHECKPOINT | python:module:factory"


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

        scorer = _backend(CLIPScorer, self.options.backbone, ctx.device, ctx.options.offline)
        ctx.weights_used[scorer.protocol] = scorer.weights_sha256
        files, prompts = ctx.sample_files(), ctx.sample_prompts()
        skipped = [{"file": str(f), "reason": "no prompt known for this image"}
                   for f, p in zip(files, prompts) if not p]
        pairs = [(f, p) for f, p in zip(files, prompts) if p]
        if not pairs:
            raise TaskSkipped("no prompt is known for any of these images",
                              "for folder:PATH add prompts.jsonl with {\"file\", \"prompt\"} per line")
        size = max(1, ctx.options.batch_size)

        keys = ("clipscore", "clip_s_hessel", "long", "long_hessel")

        def score(shard: list) -> list:  # per (file, prompt): its values (a tuple in `keys` order), or a skip record
            out: list = []
            for start in range(0, len(shard), size):
                chunk = shard[start:start + size]
                opened = [_open(path) for path, _ in chunk]
                ok = [i for i, image in enumerate(opened) if not isinstance(image, str)]
                got = scorer.score([opened[i] for i in ok], [chunk[i][1] for i in ok]) if ok else {}
                values = {i: tuple(got[k][j].item() for k in keys) for j, i in enumerate(ok)}
                out += [values[i] if i in values else {"file": str(chunk[i][0]), "reason": opened[i]}
                        for i in range(len(chunk))]
            return out

        results = ctx.map_samples(pairs, score, "CLIPScore")
        kept = [(pair, value) for pair, value in zip(pairs, results) if not isinstance(value, dict)]
        skipped += [value for value in results if isinstance(value, dict)]
        names, texts = [str(f) for (f, _), _ in kept], [t for (_, t), _ in kept]
        columns = {k: [v[i] for _, v in kept] for i, k in enumerate(keys)}
        if not kept:
            raise InputError("no image could be scored", "check the images")
        long = {"clipscore": int(sum(columns["long"])), "clip_s_hessel": int(sum(columns["long_hessel"]))}
        if any(long.values()):
            import warnings

            warnings.warn(f"CLIPScore: {long['clipscore']} prompt(s) longer than CLIP's 77 tokens (end token cut "
                          f"off, as torchmetrics does), {long['clip_s_hessel']} with Hessel's prefix (truncated)",
                          UserWarning, stacklevel=2)
        return TaskOutput(metrics={"clipscore": max(float(np.mean(columns["clipscore"])), 0.0),
                                   "clip_s_hessel": float(np.mean(columns["clip_s_hessel"]))},
                          details={"protocol": scorer.protocol, "backbone": self.options.backbone,
                                   "prompts_over_77_tokens": long,
                                   "truncation": {"clipscore": "torchmetrics: ids sliced at 77, end token dropped",
                                                  "clip_s_hessel": "clip.tokenize(truncate=True): end token kept"}},
                          per_sample={"name": names, "prompt": texts, "clipscore": columns["clipscore"],
                                      "clip_s_hessel": columns["clip_s_hessel"],
                                      "truncated": [bool(a) for a in columns["long"]],
                                      "truncated_hessel": [bool(a) for a in columns["long_hessel"]]},
                          skipped_samples=skipped, num_samples=len(kept))


def _resolve_backend(kind: str, spec: str, ctx) -> Any:
    """A detector / colour / VQA backend; absent weights or an uninstallable official backend make a skip."""
    import evalsuite.tasks.t2i.dpg  # noqa: F401  (registers the VQA backends)
    import evalsuite.tasks.t2i.geneval  # noqa: F401  (registers detectors and the colour classifier)
    from evalsuite.tasks.t2i import backends

    try:
        return _backend(backends.resolve, kind, spec, device=ctx.device, offline=ctx.options.offline)
    except InputError as exc:
        raise TaskSkipped(f"{kind} backend {spec} is not available: {exc.message}", exc.fix) from exc


def _open(path) -> Image.Image | str:
    """The image, or the reason it cannot be read."""
    try:
        return Image.fromarray(read_rgb(path))
    except InputError as exc:
        return exc.message


def _default_weights(options: Any, detector: bool = True, color: bool = False) -> tuple[str, ...]:
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
        return Requirements(weights=_default_weights(self.options, detector=True, color=True))

    def run(self, ctx) -> TaskOutput:
        import json
        import re
        import warnings

        from evalsuite.tasks.t2i import geneval

        detector = _resolve_backend("detector", self.options.detector, ctx)
        color = _resolve_backend("color", self.options.color, ctx)
        if ctx.options.prompts and str(ctx.options.prompts).endswith(".jsonl"):
            prompts, prompt_set = geneval.load_prompts(ctx.options.prompts), f"file:{ctx.options.prompts}"
        else:
            prompts, prompt_set = geneval.generate_prompts(43), "evalsuite generate_prompts(seed=43)"
        prompts = _first_prompts(prompts, self.options)
        expected = self.options.images_per_prompt
        items = ctx.prompt_samples(prompts, "geneval", expected)
        as_failure = self.options.missing_as_failure

        def score(shard: list) -> list:  # per prompt: its rows and its missing or unreadable images
            out = []
            for item in shard:
                rows, missing = [], []
                # evaluate_images.py L270-273: only the files named like `\d+\.png` are scored
                for path in (p for p in item.images if re.match(r"\d+\.png", p.name)):
                    name = f"{item.index:05d}/samples/{path.name}"
                    try:  # read as evaluate_images.py L227 reads it: EXIF orientation applied
                        image = geneval.open_image(path)
                    except InputError as exc:
                        missing.append(_failed_row(name, item.metadata, f"unreadable image: {exc.message}"))
                        continue
                    rows += geneval.score_images([(name, image, item.metadata)], detector, color)
                for k in range(max(0, expected - len(rows) - len(missing))):
                    missing.append(_failed_row(f"{item.index:05d}/samples/missing-{k}", item.metadata,
                                               "missing image"))
                out.append((rows, missing))
            return out

        scored = ctx.map_samples(items, score, "GenEval detection")
        missing = [row for _, rows in scored for row in rows]
        rows = [row for found, absent in scored for row in found + (absent if as_failure else [])]
        if missing:
            warnings.warn(f"GenEval: {len(missing)} of {expected * len(items)} expected images are missing or "
                          f"unreadable (e.g. {missing[0]['filename']}); " +
                          ("they count as failures" if as_failure else
                           "they are not scored, as the official script does (-o geneval.missing_as_failure=true "
                           "counts them as failures)"), stacklevel=2)
        if not rows:
            raise InputError(f"no GenEval image could be scored under {ctx.layouts.get('geneval')}",
                             "generate the images (<NNNNN>/samples/<jjjj>.png) or point at the right folder")
        summary = geneval.summarize(rows)
        metrics = {"overall": summary["overall"], "image_accuracy": summary["image_accuracy"],
                   "missing_images": float(len(missing)),
                   **{tag: t["accuracy"] for tag, t in summary["tasks"].items() if tag in self.metrics}}
        protocol = f"{detector.protocol}+{color.protocol}" + ("+missing-as-failure" if as_failure else "")
        return TaskOutput(
            metrics=metrics, protocol=protocol,
            details={"tasks": summary["tasks"], "prompts_any_correct": summary["prompts_any_correct"],
                     "prompt_accuracy": summary["prompt_accuracy"], "prompt_set": prompt_set,
                     "num_prompts": summary["num_prompts"], "images_per_prompt": expected,
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


COUNTING_CLASSES = ("apple", "dog", "cat", "bird", "car", "cup", "banana", "orange", "person", "chair")


def counting_prompts(classes=COUNTING_CLASSES, max_count: int = 10) -> list[dict]:
    """'a photo of seven apples' for counts 1..10 of each class (class-major), with GenEval-style metadata plus
    `target_class` and `target_count`."""
    from evalsuite.tasks.t2i.geneval import noun_phrase

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
        return Requirements(weights=_default_weights(self.options))

    def run(self, ctx) -> TaskOutput:
        from evalsuite.tasks.t2i import geneval

        detector = _resolve_backend("detector", self.options.detector, ctx)
        prompts = _first_prompts(counting_prompts(), self.options)
        items = ctx.prompt_samples(prompts, "counting", self.options.images_per_prompt)

        def count(shard: list) -> list:  # per prompt: (name, target, predicted, missing?) for each expected image
            out = []
            for item in shard:
                meta = item.metadata
                target = int(meta.get("target_count", meta["include"][0]["count"]))
                cls = meta.get("target_class", meta["include"][0]["class"])
                rows = []
                for j in range(len(item.images) + item.missing):
                    image = _open(item.images[j]) if j < len(item.images) else "missing image"
                    if isinstance(image, str):  # missing images stay in the denominator, counted as 0
                        rows.append((f"{item.index:05d}/{j:04d}", target, 0, True))
                    else:
                        kept = geneval.filter_detections(detector.detect(image), "counting")
                        rows.append((f"{item.index:05d}/{j:04d}", target, len(kept.get(cls, [])), False))
                out.append(rows)
            return out

        per: dict[str, list] = {k: [] for k in ("name", "target", "predicted", "correct", "abs_error", "off_by_one")}
        missing = 0
        for name, target, predicted, was_missing in (r for rows in ctx.map_samples(items, count, "counting")
                                                     for r in rows):
            err = abs(predicted - target)
            missing += was_missing
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
            details={"per_count": per_count, "per_count_mae": per_count_mae, "threshold": geneval.COUNTING_THRESHOLD,
                     "counter": f"{detector.protocol} detections of the target class at confidence > "
                                f"{geneval.COUNTING_THRESHOLD}", "missing_or_unreadable_images": missing,
                     "images_per_prompt": self.options.images_per_prompt, "num_prompts": len(items)},
            per_sample=per, num_samples=len(per["name"]))


DPG_CATEGORIES = ("entity", "attribute", "relation", "global", "other")  # DPG-Bench's level-1 categories


@register
class DPGBenchTask(Task):
    name = "dpg-bench"
    version = "2"
    family = "text-image"
    sample_kind = "image"
    description = "DPG-Bench: VQA of dense prompts' propositions with the dependency rule (x100), official numbers"
    metrics = {
        "overall": MetricInfo("higher", "official compute_dpg_bench.py: mean over the prompts with images of the "
                                        "mean question score after the rule, x100", primary=True, per_sample="score"),
        **{f"cat_{c}": MetricInfo("higher", f"official {c} score: last image, before the dependency rule (ELLA #60), "
                                            "x100") for c in DPG_CATEGORIES},
        "dpg_corrected": MetricInfo("higher", "corrected: every CSV row (ELLA #61), normalised answers, a prompt "
                                              "without images scores 0, x100"),
        **{f"cat_corrected_{c}": MetricInfo("higher", f"corrected {c} score: after the dependency rule over every "
                                                      "image, x100") for c in DPG_CATEGORIES},
    }

    @dataclass(frozen=True)
    class Options(PromptGridOptions):
        dpg: str | None = field(default=None, metadata={"help": "DPG-Bench folder (ELLA's dpg_bench) or its CSV"})
        vqa: str | None = field(default=None, metadata={"help": "VQA model: mplug | transformers:PATH | python:..."})

    def requirements(self, options) -> Requirements:
        return Requirements(needs="-o dpg-bench.dpg=PATH (DPG-Bench's CSV and prompts) and -o dpg-bench.vqa=SPEC "
                                  "(--dpg, --vqa)")

    def run(self, ctx) -> TaskOutput:
        import warnings

        from evalsuite import prompt_layout as t2i_layout
        from evalsuite.tasks.t2i import dpg

        if not self.options.dpg:
            raise TaskSkipped("DPG-Bench's prompts are not shipped with evalsuite",
                              "pass --dpg PATH (the ELLA repo's dpg_bench folder or its CSV)")
        if not self.options.vqa:
            raise TaskSkipped("DPG-Bench needs a VQA backend",
                              "pass --vqa mplug (official, needs modelscope) or --vqa transformers:/path/to/model")
        vqa = _resolve_backend("vqa", self.options.vqa, ctx)
        prompts = _first_prompts(dpg.load_dpg(self.options.dpg), self.options)
        absent = 0  # expected images of the layout that are missing or unreadable
        if ctx.source.kind == "folder" and not t2i_layout.is_layout(ctx.source.folder):
            images = dpg.load_dpg_images(ctx.source.folder, prompts)
        else:
            items = ctx.prompt_samples([{"tag": "dpg", "prompt": p.prompt, "item_id": p.item_id} for p in prompts],
                                       "dpg-bench", self.options.images_per_prompt)
            by_prompt = {item.metadata.get("item_id"): item for item in items}
            images = {p.item_id: [img for img in (_open(f) for f in by_prompt[p.item_id].images)
                                  if not isinstance(img, str)] for p in prompts if p.item_id in by_prompt}
            absent = sum(item.missing + len(item.images) - len(images.get(item.metadata.get("item_id"), []))
                         for item in items)
        answers = ctx.map_samples(prompts, lambda shard: [dpg.answer_prompt(p, images.get(p.item_id), vqa)
                                                          for p in shard], "DPG-Bench VQA")
        result = dpg.summarize(prompts, {p.item_id: a for p, a in zip(prompts, answers) if a is not None},
                               protocol=str(getattr(vqa, "protocol", "") or ""))
        if result.missing or result.failed:
            warnings.warn(f"DPG-Bench: {len(result.missing)} prompt(s) have no image and {len(result.failed)} fail "
                          "the official script's rule (first CSV row skipped); the official score leaves them "
                          "out, dpg_corrected scores every prompt (one without images as 0)", stacklevel=2)
        if not result.per_prompt:
            raise InputError("DPG-Bench: no prompt could be scored (no images found, or every prompt dropped)",
                             "generate the images (one <item_id>.png 2x2 grid, or <item_id>/ images, per prompt)")
        metrics = {"overall": result.score, "dpg_corrected": result.corrected_score,
                   **{f"cat_{k}": v for k, v in result.categories_l1.items() if k in DPG_CATEGORIES},
                   **{f"cat_corrected_{k}": v for k, v in result.corrected_categories_l1.items()
                      if k in DPG_CATEGORIES}}
        ids = list(result.per_prompt)
        return TaskOutput(
            metrics=metrics, protocol=vqa.protocol,
            details={"categories_l1": result.categories_l1, "categories_l2": result.categories_l2,
                     "corrected_categories_l1": result.corrected_categories_l1,
                     "corrected_categories_l2": result.corrected_categories_l2,
                     "missing": result.missing, "failed": result.failed, "missing_or_unreadable_images": absent,
                     "n_prompts": result.n_prompts, "scored_prompts": len(ids),
                     "note": "overall and cat_* are compute_dpg_bench.py's numbers (first CSV row skipped, ELLA #61; "
                             "categories from the last image before the dependency rule, ELLA #60; prompts "
                             "without images left out); dpg_corrected and cat_corrected_* read every row, apply "
                             "the rule over every image and count missing prompts as 0",
                     "answers": result.to_dict()["answers"]},
            per_sample={"name": ids, "score": [100 * result.per_prompt[i] for i in ids]}, num_samples=len(ids),
            skipped_samples=[{"file": i, "reason": "no image for this prompt"} for i in result.missing] +
            [{"file": i, "reason": "dropped by the official script's rule (first CSV row skipped, ELLA #61)"}
             for i in result.failed])


register_suite("text-image", ["clipscore", "geneval", "counting"],
               "Text-image alignment: CLIPScore, GenEval and counting (add dpg-bench with --dpg and --vqa)")
