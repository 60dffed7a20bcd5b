"""The `dpg-bench` task: DPG-Bench's dense prompts, each image asked its yes/no questions by a VQA model (the
protocol), scored with the official numbers and the corrected ones beside them (`evalsuite.tasks.dpg.scoring`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from evalsuite.errors import InputError, TaskSkipped
from evalsuite.tasks import register
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput
from evalsuite.tasks.t2i.task_helpers import PromptGridOptions, first_prompts, open_or_reason, resolve_backend

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
        from evalsuite.tasks.dpg.images import load_dpg_images
        from evalsuite.tasks.dpg.prompts import load_dpg
        from evalsuite.tasks.dpg.scoring import answer_prompt, summarize

        if not self.options.dpg:
            raise TaskSkipped("DPG-Bench's prompts are not shipped with evalsuite",
                              "pass --dpg PATH (the ELLA repo's dpg_bench folder or its CSV)")
        if not self.options.vqa:
            raise TaskSkipped("DPG-Bench needs a VQA backend",
                              "pass --vqa mplug (official, needs modelscope) or --vqa transformers:/path/to/model")
        vqa = resolve_backend("vqa", self.options.vqa, ctx)
        prompts = first_prompts(load_dpg(self.options.dpg), self.options)
        absent = 0  # expected images of the layout that are missing or unreadable
        images: Mapping[Any, list]  # item_id -> its images
        if ctx.source.kind == "folder" and not t2i_layout.is_layout(ctx.source.folder):
            images = load_dpg_images(ctx.source.folder, prompts)
        else:
            items = ctx.prompt_samples([{"tag": "dpg", "prompt": p.prompt, "item_id": p.item_id} for p in prompts],
                                       "dpg-bench", self.options.images_per_prompt)
            by_prompt = {item.metadata.get("item_id"): item for item in items}
            images = {p.item_id: [img for img in (open_or_reason(f) for f in by_prompt[p.item_id].images)
                                  if not isinstance(img, str)] for p in prompts if p.item_id in by_prompt}
            absent = sum(item.missing + len(item.images) - len(images.get(item.metadata.get("item_id"), []))
                         for item in items)
        answers = ctx.map_samples(prompts, lambda shard: [answer_prompt(p, images.get(p.item_id), vqa)
                                                          for p in shard], "DPG-Bench VQA")
        result = summarize(prompts, {p.item_id: a for p, a in zip(prompts, answers) if a is not None},
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
