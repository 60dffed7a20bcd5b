"""Class-conditional generation (ImageNet-style models: ADM, DiT, SiT): the protocol, the label assignment and the
weight-free `demo-class` model.

A class-conditional generator implements

    class MyDiT:
        model_id = "dit-xl-2-256@<checkpoint sha256>"
        num_classes = 1000                                   # optional, 1000 when absent
        knobs = (Knob("guidance_scale", float, 1.5, help="classifier-free guidance scale"),)   # optional
        def with_knobs(self, guidance_scale=1.5): ...        # the variant (see evalsuite.knobs)
        def generate_class(self, labels: list[int], seeds: list[int]) -> list[images]: ...

The labels of a run: sample i has class i mod C and seed `seed + i` (`class_requests`): 50,000 samples give exactly
50 per class for C = 1000, any count spreads evenly (class counts differ by at most one), and a prefix of a run is
itself balanced. ADM's image_sample.py and DiT's sample_ddp.py draw labels uniformly at random instead
(`torch.randint`); the evenly spread assignment is the protocol the issue names, recorded with every result.
Samples are stored through the sample store under the prompt `class:N` (so they are generated once and resumed).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np
from PIL import Image

from evalsuite.errors import InputError
from evalsuite.knobs import Knob
from evalsuite.models.base import ModelSource, register_scheme
from evalsuite.samples import SampleRequest

IMAGENET_CLASSES = 1000
PER_CLASS = 50  # ADM / DiT: 50,000 samples for 1000 classes
CLASS_PROMPT = "class:{}"
_CLASS_RE = re.compile(r"class:(\d+)")
LABEL_RULE = "sample i: class i mod C, seed seed + i (evenly spread; 50 per class at 50,000 samples, C = 1000)"


def num_classes(generator: Any) -> int:
    """The generator's class count (`num_classes`, default 1000)."""
    n = getattr(generator, "num_classes", IMAGENET_CLASSES)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InputError(f"model num_classes is {n!r}", "set num_classes to a positive integer (ImageNet: 1000)")
    return n


def is_class_conditional(generator: Any) -> bool:
    return (generator is not None and callable(getattr(generator, "generate_class", None))
            and getattr(generator, "class_conditional", True) is not False)  # diffusers: only class_labels pipelines


def class_labels(num_samples: int, classes: int = IMAGENET_CLASSES) -> np.ndarray:
    """Label of each sample: i mod `classes` (int64)."""
    return np.arange(num_samples, dtype=np.int64) % classes


def class_requests(num_samples: int, seed: int, classes: int = IMAGENET_CLASSES) -> list[SampleRequest]:
    """The sample store's requests of a class-conditional run: prompt `class:N` with N = i mod C, seed seed + i."""
    return [SampleRequest(CLASS_PROMPT.format(i % classes), seed + i) for i in range(num_samples)]


def label_of(prompt: str) -> int:
    """The class of a `class:N` request prompt."""
    match = _CLASS_RE.fullmatch(prompt)
    if match is None:
        raise InputError(f"request prompt {prompt!r} names no class", "class-conditional requests are 'class:N'")
    return int(match.group(1))


def class_counts(labels: Sequence[int] | np.ndarray) -> dict:
    """What a result records of its labels: classes used, the smallest and largest per-class count."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64))
    used = counts[counts > 0]
    return {"classes": int(len(used)), "min_per_class": int(used.min()) if len(used) else 0,
            "max_per_class": int(used.max()) if len(used) else 0}


class ClassPromptAdapter:
    """`generate(prompts, seeds)` over a class-conditional model: prompts are `class:N` (what the sample store
    calls), passed on as `generate_class(labels, seeds)`; calls go through the model guard's error wrapper."""

    def __init__(self, generator: Any, spec: str):
        self.generator, self.spec = generator, spec

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Any]:
        from evalsuite.models.guard import call_model

        labels = [label_of(p) for p in prompts]
        classes = num_classes(self.generator)
        bad = [c for c in labels if c >= classes]
        if bad:
            raise InputError(f"class {bad[0]} is beyond the model's {classes} classes", "check num_classes")
        inner = getattr(self.generator, "_inner", self.generator)  # a guarded python: model: its own method
        return list(call_model(self.spec, f"generate_class({len(labels)} labels)", inner.generate_class,
                               labels, list(seeds)))


# ------------------------------------------------------------------------------------------------ demo-class
class DemoClassGenerator:
    """A weight-free class-conditional stand-in: class c is drawn as a fixed colour/shape/count (from the demo's
    drawing), the seed places it; `guidance_scale` (a knob, default 1.0) pushes the colours away from the image's
    mean, as guidance sharpens class evidence. Its images mean nothing beyond being deterministic."""

    knobs = (Knob("guidance_scale", float, 1.0, help="strength of the class signal (1.0: none added)"),)

    def __init__(self, size: int = 64, classes: int = IMAGENET_CLASSES, guidance_scale: float = 1.0):
        from evalsuite.models.demo import DEMO_VERSION, DemoGenerator

        self.size, self.num_classes, self.guidance_scale = size, classes, guidance_scale
        self.model_id = f"demo-class@{DEMO_VERSION}/{size}px/{classes}"
        self._demo = DemoGenerator(size)

    def with_knobs(self, guidance_scale: float = 1.0) -> "DemoClassGenerator":
        if not guidance_scale >= 0:
            raise InputError(f"demo-class knob guidance_scale={guidance_scale}", "pass a scale of 0 or more")
        return DemoClassGenerator(self.size, self.num_classes, guidance_scale)

    def _prompt(self, label: int) -> str:
        from evalsuite.models.demo import COLOURS, SHAPES

        colours = list(COLOURS)
        return f"{label // 30 % 12 + 1} {colours[label % 10]} {SHAPES[label // 10 % 3]}s"

    def generate_class(self, labels: Sequence[int], seeds: Sequence[int]) -> list[np.ndarray]:
        if len(labels) != len(seeds):
            raise ValueError(f"got {len(labels)} labels but {len(seeds)} seeds")
        out = []
        for label, seed in zip(labels, seeds):
            img = np.asarray(self._demo._draw(self._prompt(int(label)), int(seed)), dtype=np.float64)
            if self.guidance_scale != 1.0:
                mean = img.mean(axis=(0, 1), keepdims=True)
                img = mean + (img - mean) * self.guidance_scale
            out.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
        return out

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Image.Image]:
        """`class:N` prompts (the sample store's) as generate_class; other prompts are refused."""
        return [Image.fromarray(a) for a in self.generate_class([label_of(p) for p in prompts], seeds)]


def _resolve(arg: str) -> ModelSource:
    size = int(arg) if arg else 64
    gen = DemoClassGenerator(size)
    return ModelSource(spec="demo-class" + (f":{arg}" if arg else ""), model_id=gen.model_id, kind="generator",
                       generator=gen, default_suite="imagenet-adm",
                       info={"weights": "none (procedural)", "size": size, "num_classes": gen.num_classes})


register_scheme("demo-class", _resolve)

__all__ = ["CLASS_PROMPT", "ClassPromptAdapter", "DemoClassGenerator", "IMAGENET_CLASSES", "LABEL_RULE",
           "PER_CLASS", "class_counts", "class_labels", "class_requests", "is_class_conditional",
           "label_of", "num_classes"]
