"""The model-adapter protocol and the spec-string resolver that later issues extend with new schemes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from evalsuite.errors import InputError, UnknownNameError


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
_SCHEMES: dict[str, SchemeFactory] = {}


def register_scheme(name: str, factory: SchemeFactory) -> None:
    """Add a spec scheme (`name` or `name:ARG`); `factory` receives the part after the colon ('' if none)."""
    _SCHEMES[name] = factory


def schemes() -> list[str]:
    _load_builtin()
    return sorted(_SCHEMES)


def _load_builtin() -> None:
    from evalsuite.models import autoencoders, demo, demo_video, diffusers_model, folder, python_model  # noqa: F401  (each registers its schemes on import)


def resolve_model(spec: str) -> ModelSource:
    """Turn a model spec string into a ModelSource; unknown schemes get the list of known ones."""
    _load_builtin()
    spec = spec.strip()
    if not spec:
        raise InputError("empty model spec", "pass e.g. demo, folder:PATH, python:pkg.mod:factory or diffusers:PATH")
    name, _, arg = spec.partition(":")
    if name in _SCHEMES:
        return _SCHEMES[name](arg)
    if Path(spec).is_dir():
        raise UnknownNameError(f"model spec '{spec}' has no scheme", f"for a folder of images write folder:{spec}")
    raise UnknownNameError(
        f"unknown model spec '{spec}'",
        "known forms: " + ", ".join(f"{s}" if s in ("demo",) else f"{s}:..." for s in sorted(_SCHEMES)),
    )
