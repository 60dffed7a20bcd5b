"""What the text-image tasks (CLIPScore, GenEval, counting, DPG-Bench) share: the prompt-grid options (images per
prompt, first N prompts), building a model backend so that missing weights make the task a skip, resolving a
detector / colour / VQA backend spec, and opening an image or saying why it cannot be read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from evalsuite.errors import InputError, MissingWeightsError, TaskSkipped
from evalsuite.imageio import read_rgb


def build_backend(build, *args: Any, **kwargs: Any) -> Any:
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
