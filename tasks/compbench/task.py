"""The `t2i-compbench` task: T2I-CompBench's colour / shape / texture (BLIP-VQA), spatial (the 2D detector rule)
and non-spatial (CLIP similarity) categories in one command, prompts read from the user's copy of the official
repository, each category scored by its official formula (sibling modules), each backend named in the protocol.

Images: a generator makes `images_per_prompt` (10, as the official inference_eval.py) per prompt in the prompt-grid
layout (one `t2i-compbench` layout, `tag` = category); a `folder:` model is either such a layout or the official
one, `<folder>/<category>/samples/<prompt>_<NNNNNN>.png` (the prompt then comes from the file name, as the
official scorers read it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite.errors import InputError, MissingWeightsError, TaskSkipped
from evalsuite.tasks import register
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput
from evalsuite.tasks.compbench.prompts import CATEGORIES, IMAGES_PER_PROMPT, NOT_COVERED, SPLITS
from evalsuite.tasks.t2i.task_helpers import PromptGridOptions, first_prompts, open_or_reason, resolve_backend

_DESCRIPTIONS = {
    "color": "colour binding: BLIP-VQA, product over noun phrases of P(yes) (BLIPvqa_eval/BLIP_vqa.py), mean",
    "shape": "shape binding: BLIP-VQA as colour, on shape_val.txt",
    "texture": "texture binding: BLIP-VQA as colour, on texture_val.txt",
    "spatial": "2D spatial: the official detector rule (UniDet_eval/2D_spatial_eval.py) on the named detector, mean",
    "non_spatial": "non-spatial: cos(image, prompt) of OpenAI CLIP ViT-B/32 (CLIPScore_eval/CLIP_similarity.py), "
                   "mean",
}
_CATEGORIES_HELP = f"comma-separated, of {', '.join(CATEGORIES)} (not covered: {', '.join(NOT_COVERED)})"
_SOURCE_FIX = ("clone https://github.com/Karine-Huang/T2I-CompBench once and pass "
               "-o t2i-compbench.compbench=/path/to/T2I-CompBench (its examples/dataset/<category>_val.txt are read)")


@register
class T2ICompBenchTask(Task):
    name = "t2i-compbench"
    version = "2"  # 2: model-folder digest by evalsuite.hashing.files_digest (one formula for every task)
    family = "text-image"
    sample_kind = "image"
    description = "T2I-CompBench: attribute binding (BLIP-VQA), 2D spatial (detector rule), non-spatial (CLIP)"
    metrics = {
        **{c: MetricInfo("higher", d, per_sample=c) for c, d in _DESCRIPTIONS.items()},
        "average": MetricInfo("higher", "mean of the scored categories' scores (a summary, not an official "
                                        "number)", primary=True),
    }

    @dataclass(frozen=True)
    class Options(PromptGridOptions):
        images_per_prompt: int = field(default=IMAGES_PER_PROMPT, metadata={
            "help": "images per prompt (official inference_eval.py: 10)"})
        compbench: str | None = field(default=None, metadata={
            "help": "the user's copy of the T2I-CompBench repository (or its examples/dataset folder)"})
        categories: str = field(default=",".join(CATEGORIES), metadata={"help": _CATEGORIES_HELP})
        split: str = field(default="val", metadata={"help": "prompt files: val (official), train, all"})
        blip: str = field(default="official", metadata={
            "help": "BLIP VQA for colour/shape/texture: official (model_base_vqa_capfilt_large.pth from the weights "
                    "store) | a transformers folder (Salesforce/blip-vqa-capfilt-large, HF's 384-px conversion)"})
        detector: str = field(default="torchvision-maskrcnn", metadata={
            "help": "detector for spatial (official: UniDet, not installable): torchvision-maskrcnn | "
                    "mask2former:CONFIG,CHECKPOINT | python:module:factory"})
        spacy: str = field(default="en_core_web_sm", metadata={
            "help": "spaCy model (name or folder) that parses the prompts (official: en_core_web_sm)"})

        def __post_init__(self) -> None:
            super().__post_init__()
            from evalsuite.tasks.compbench.prompts import parse_categories

            parse_categories(self.categories)
            if self.split not in SPLITS:
                raise InputError(f"split is {self.split}", f"pass -o t2i-compbench.split= one of {', '.join(SPLITS)}")

    def requirements(self, options) -> Requirements:
        from evalsuite.tasks.compbench.prompts import parse_categories

        cats = parse_categories(self.options.categories)
        weights = []
        if self.options.blip == "official" and any(CATEGORIES[c] == "blip-vqa" for c in cats):
            weights += ["blip-vqa-capfilt-large", "bert-base-uncased-vocab"]
        if "non_spatial" in cats:
            weights.append("clip-vit-b-32-openai")
        if "spatial" in cats and self.options.detector == "torchvision-maskrcnn":
            weights.append("maskrcnn-v2-coco")
        return Requirements(optional_weights=tuple(weights),
                            needs="-o t2i-compbench.compbench=PATH (the official repository's prompt files); spaCy "
                                  "with en_core_web_sm for colour/shape/texture and spatial")

    def run(self, ctx) -> TaskOutput:
        import numpy as np

        from evalsuite.tasks.compbench.prompts import parse_categories, prompt_file, read_prompts

        if not self.options.compbench:
            raise TaskSkipped("T2I-CompBench's prompt files are not shipped with evalsuite", _SOURCE_FIX)
        cats = parse_categories(self.options.categories)
        prompts = {c: first_prompts(read_prompts(prompt_file(self.options.compbench, c, self.options.split)),
                                    self.options) for c in cats}
        images = self._images(ctx, cats, prompts)  # category -> [(name, path, prompt)]
        scorers, skipped, protocols, weights = self._scorers(ctx, cats)
        if not scorers:
            raise TaskSkipped("no T2I-CompBench category can be scored here: " +
                              "; ".join(f"{c}: {r}" for c, (r, _) in skipped.items()),
                              "; ".join(dict.fromkeys(f for _, f in skipped.values() if f)))
        rows: list[dict] = []
        unreadable: list[dict] = []
        for cat in (c for c in cats if c in scorers):
            def work(shard: list, cat: str = cat) -> list:
                out = []
                for _name, path, prompt in shard:
                    image = open_or_reason(path)
                    out.append(image if isinstance(image, str) else scorers[cat](image, prompt))
                return out

            results = ctx.map_samples(images[cat], work, f"T2I-CompBench {cat}")
            for (name, _, prompt), res in zip(images[cat], results):
                if isinstance(res, str):
                    unreadable.append({"file": name, "reason": res})
                else:
                    rows.append({"category": cat, "name": name, "prompt": prompt, **res})
        metrics = {}
        for cat in scorers:
            values = [r["score"] for r in rows if r["category"] == cat]
            if values:
                metrics[cat] = float(np.mean(values))
        if not metrics:
            raise InputError("T2I-CompBench: no image could be scored", "generate the images or point at them")
        metrics["average"] = float(np.mean([metrics[c] for c in cats if c in metrics]))
        ctx.weights_used.update(weights)
        protocol = "+".join(f"{c}={protocols[c]}" for c in cats if c in protocols)
        per_sample: dict[str, list] = {"name": [r["name"] for r in rows], "category": [r["category"] for r in rows],
                                       "score": [r["score"] for r in rows]}
        for cat in metrics:
            if cat != "average":
                per_sample[cat] = [r["score"] for r in rows if r["category"] == cat]
        return TaskOutput(
            metrics=metrics, protocol=protocol, per_sample=per_sample, num_samples=len(rows),
            skipped_samples=unreadable,
            details={"protocols": protocols, "skipped_categories": {c: {"reason": r, "fix": f}
                                                                    for c, (r, f) in skipped.items()},
                     "not_covered": NOT_COVERED, "split": self.options.split,
                     "prompt_counts": {c: len(prompts[c]) for c in cats},
                     "image_counts": {c: len(images[c]) for c in cats},
                     "note": "each category's formula is the official script's; the detector (spatial) and the "
                             "BLIP weights (HF conversion) differ from the official ones where the protocol says so",
                     "rows": [{k: v for k, v in r.items()} for r in rows][:5000]})

    # ------------------------------------------------------------------ helpers
    def _images(self, ctx, cats: tuple[str, ...], prompts: dict[str, list[str]]) -> dict[str, list]:
        """category -> [(name, path, prompt)]: the official folder layout, or the prompt-grid layout."""
        from evalsuite import prompt_layout
        from evalsuite.tasks.compbench.prompts import official_samples, prompt_of

        if ctx.source.kind == "folder" and not prompt_layout.is_layout(ctx.source.folder):
            folder = Path(ctx.source.folder)
            out = {}
            for cat in cats:
                samples = folder / cat / "samples"
                if not samples.is_dir() and len(cats) == 1 and (folder / "samples").is_dir():
                    samples = folder / "samples"
                if not samples.is_dir():
                    raise InputError(f"{folder} has no {cat}/samples/ folder (the official layout) and is not a "
                                     "prompt-grid layout",
                                     "lay the official images out as <folder>/<category>/samples/"
                                     "<prompt>_<NNNNNN>.png, or score a generator")
                out[cat] = [(f"{cat}/samples/{p.name}", p, prompt_of(p.name)) for p in official_samples(samples)]
            return out
        grid = [{"tag": c, "prompt": p} for c in cats for p in prompts[c]]
        items = ctx.prompt_samples(grid, "t2i-compbench", self.options.images_per_prompt)
        out = {c: [] for c in cats}
        for item in items:
            cat = item.metadata.get("tag")
            if cat in out:
                for path in item.images:
                    out[cat].append((f"{item.index:05d}/samples/{path.name}", path, item.metadata["prompt"]))
        return out

    def _scorers(self, ctx, cats: tuple[str, ...]) -> tuple[dict, dict, dict, dict]:
        """category -> scorer(image, prompt) -> row dict; skipped category -> (reason, fix); protocols; weights."""
        from evalsuite.tasks.compbench import blip_vqa, nlp, nonspatial, spatial

        scorers: dict[str, Any] = {}
        skipped: dict[str, tuple[str, str | None]] = {}
        protocols: dict[str, str] = {}
        weights: dict[str, str] = {}
        parser: Any = None

        def spacy_model() -> Any:
            nonlocal parser
            if parser is None:
                parser = nlp.load_spacy(self.options.spacy)
            return parser

        device = str(ctx.device) if ctx.device else "cpu"
        blip_cats = [c for c in cats if CATEGORIES[c] == "blip-vqa"]
        if blip_cats:
            try:
                model = spacy_model()
                parsed = nlp.model_name(model, self.options.spacy)
                if self.options.blip == "official":
                    vqa, digests = blip_vqa.load_official(device=device, offline=ctx.options.offline)
                    name = f"compbench-blip-vqa-capfilt-large-480-spacy-{parsed}"
                    weights.update(digests)
                else:
                    vqa, digest = blip_vqa.load(self.options.blip, device=device)
                    name = f"compbench-blip-vqa-{Path(self.options.blip).name}-hf384-spacy-{parsed}"
                    weights[name] = digest
                for c in blip_cats:
                    scorers[c] = lambda img, prompt: blip_vqa.score_image(img, prompt, vqa, parser)
                    protocols[c] = name
            except (TaskSkipped, InputError, MissingWeightsError) as exc:
                reason = exc.reason if isinstance(exc, TaskSkipped) else exc.message
                for c in blip_cats:
                    skipped[c] = (reason, exc.fix)
        if "spatial" in cats:
            try:
                model = spacy_model()
                detector = resolve_backend("detector", self.options.detector, ctx)
                scorers["spatial"] = lambda img, prompt: spatial.score_image(img, prompt, detector, parser)
                det = str(getattr(detector, "protocol", self.options.detector))
                protocols["spatial"] = (f"compbench-2d-rule-{det}-not-unidet-spacy-"
                                        f"{nlp.model_name(model, self.options.spacy)}")
            except TaskSkipped as exc:
                skipped["spatial"] = (exc.reason, exc.fix)
        if "non_spatial" in cats:
            try:
                clip = nonspatial.build(device=device, offline=ctx.options.offline)
                scorers["non_spatial"] = lambda img, prompt: {
                    "score": float(clip.score([img], [prompt])["similarity"][0])}
                protocols["non_spatial"] = clip.protocol
                weights[clip.protocol] = clip.weights_sha256
            except MissingWeightsError as exc:
                skipped["non_spatial"] = (exc.message, exc.fix)
        return scorers, skipped, protocols, weights
