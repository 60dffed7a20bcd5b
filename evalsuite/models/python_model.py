"""`python:package.module:factory`: any checkpoint wrapped in a few lines (see evalsuite.models for the protocol)."""

from __future__ import annotations

from evalsuite.errors import InputError
from evalsuite.models.autoencoders import Autoencoder, autoencoder_source
from evalsuite.models.base import ImageGenerator, ModelSource, register_scheme
from evalsuite.pyspec import load_object


def _resolve(arg: str) -> ModelSource:
    factory = load_object(arg, "model")
    is_model = hasattr(factory, "generate") or isinstance(factory, Autoencoder)
    obj = factory() if callable(factory) and not is_model else factory
    info = {"factory": f"python:{arg}"}
    if getattr(obj, "weights_sha256", None):
        info["weights_sha256"] = obj.weights_sha256
    if isinstance(obj, Autoencoder) and not isinstance(obj, ImageGenerator):
        return autoencoder_source(f"python:{arg}", obj, info)
    if not isinstance(obj, ImageGenerator):
        raise InputError(
            f"python:{arg} returned {type(obj).__name__}, which has neither generate(prompts, seeds) nor "
            "encode(x)/decode(z)",
            "return a generator (generate(prompts, seeds) -> images) or an autoencoder (encode, decode)",
        )
    model_id = str(getattr(obj, "model_id", f"python:{arg}"))
    return ModelSource(spec=f"python:{arg}", model_id=model_id, kind="generator", generator=obj, info=info)


register_scheme("python", _resolve)
