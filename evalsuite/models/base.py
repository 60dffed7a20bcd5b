"""The model-adapter protocol and the spec-string resolver: built-in modules and plugins (the `evalsuite.models`
entry-point group) register spec schemes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from evalsuite.errors import InputError, UnknownNameError
from evalsuite.registry import Registry


@runtime_checkable
class ImageGenerator(Protocol):
    """A text-to-image (or unconditional, prompts ignored) generator: one image per (prompt, seed) pair,
    the same pair always giving the same image."""

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Any]: ...


@dataclass
class ModelSource:
    """A resolved spec: either a generator (samples go through the sample store) or a folder of finished samples."""

    spec: str
    model_id: str
    kind: str  # "generator", "folder" or "autoencoder"
    generator: Any = None
    autoencoder: Any = None
    folder: Path | None = None
    default_suite: str = "default"
    prompts: list[str] | None = None  # the model's own default prompt list (the demo's shape prompts)
    info: dict = field(default_factory=dict)  # provenance: weights sha256, paths, versions


SchemeFactory = Callable[[str], ModelSource]

#: model adapters by spec scheme; the built-in modules register theirs on import (on the first lookup), plugins
#: through the `evalsuite.models` entry-point group (a module that calls `register_scheme`, or `name = mod:factory`)
SCHEMES: Registry[SchemeFactory] = Registry(
    "model spec scheme", group="evalsuite.models",
    builtin_modules=[f"evalsuite.models.{m}" for m in ("autoencoders", "demo", "demo_video", "diffusers_model",
                                                        "folder", "python_model", "class_conditional")])
_SCHEMES = SCHEMES  # the name tests patch


def register_scheme(name: str, factory: SchemeFactory) -> None:
    """Add a spec scheme (`name` or `name:ARG`); `factory` receives the part after the colon ('' if none)."""
    SCHEMES.register(name, factory)


def schemes() -> list[str]:
    return SCHEMES.names()


def _load_builtin() -> None:
    SCHEMES.load()


def resolve_model(spec: str) -> ModelSource:
    """Turn a model spec string into a ModelSource; unknown schemes get the list of known ones."""
    _load_builtin()
    spec = spec.strip()
    if not spec:
        raise InputError("empty model spec", "pass e.g. demo, folder:PATH, python:pkg.mod:factory or diffusers:PATH")
    from evalsuite import knobs

    base, values = knobs.split_spec(spec)
    name, _, arg = spec.partition(":")
    factory = SCHEMES.get(name, None)
    if values and not getattr(factory, "reads_query", False):  # a variant: `SPEC?knob=value&...`
        return knobs.apply(resolve_model(base), values)
    # a scheme whose factory has `reads_query = True` reads the whole query itself (diffusers:PATH?num_inference_
    # steps=4: the pipeline's call arguments); it returns the variant, or calls knobs.apply with its knob values
    if factory is not None:
        source = factory(arg)
        return source if "variant" in source.info else knobs.apply(source, {})
    if Path(spec).is_dir():
        raise UnknownNameError(f"model spec '{spec}' has no scheme", f"for a folder of images write folder:{spec}")
    raise UnknownNameError(  # the whole spec and the forms it may take, more helpful here than the bare scheme names
        f"unknown model spec '{spec}'",
        "known forms: " + ", ".join(f"{s}" if s in ("demo",) else f"{s}:..." for s in SCHEMES.names()),
    )
