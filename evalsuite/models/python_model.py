"""`python:package.module:factory`: any checkpoint wrapped in a few lines (see evalsuite.models for the protocol)."""

from __future__ import annotations

from evalsuite.errors import InputError
from evalsuite.models.base import ImageGenerator, ModelSource, register_scheme
from evalsuite.pyspec import load_object


def _resolve(arg: str) -> ModelSource:
    factory = load_object(arg, "model")
    obj = factory() if callable(factory) and not hasattr(factory, "generate") else factory
    if not isinstance(obj, ImageGenerator):
        raise InputError(
            f"python:{arg} returned {type(obj).__name__}, which has no generate(prompts, seeds) method",
            "return an object with generate(prompts: list[str], seeds: list[int]) -> list of PIL images",
        )
    model_id = str(getattr(obj, "model_id", f"python:{arg}"))
    info = {"factory": f"python:{arg}"}
    if getattr(obj, "weights_sha256", None):
        info["weights_sha256"] = obj.weights_sha256
    return ModelSource(spec=f"python:{arg}", model_id=model_id, kind="generator", generator=obj, info=info)


register_scheme("python", _resolve)
