"""`python:package.module:factory`: any checkpoint wrapped in a few lines (see evalsuite.models for the protocol).

The user's code is called only through evalsuite.models.guard (clear errors, checked outputs). A model without
`model_id` is keyed by its spec plus a fingerprint of what can be seen (`model_fingerprint`), so samples made by
other code or other weights are not reused; the missing `model_id` is warned about once per process.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

from evalsuite.errors import EvalsuiteError, InputError
from evalsuite.hashing import sha256_file, sha256_json, sha256_state_dict
from evalsuite.models.autoencoders import Autoencoder, autoencoder_source
from evalsuite.models.base import ImageGenerator, ModelSource, register_scheme
from evalsuite.models.guard import DEBUG_FIX, GuardedAutoencoder, call_model, guard_generator
from evalsuite.pyspec import load_object

_WARNED: set[str] = set()


def model_fingerprint(factory: Any, obj: Any) -> dict:
    """What can be seen of a `python:` model: the sha256 of the factory's and the model class's module files, and the
    weights sha256 of the model if it is an nn.Module, else of each nn.Module among its attributes."""
    files = {}
    for thing in (factory, type(obj)):
        module = sys.modules.get(getattr(thing, "__module__", None) or "")
        path = getattr(module, "__file__", None)
        if module is not None and path and os.path.isfile(path):
            files[module.__name__] = sha256_file(path)
    weights = {}
    nn = sys.modules.get("torch.nn")
    if nn is not None:
        parts = {".": obj} if isinstance(obj, nn.Module) else dict(getattr(obj, "__dict__", {}))
        for name, value in sorted(parts.items()):
            if isinstance(value, nn.Module):
                try:
                    weights[name] = sha256_state_dict(value)
                except Exception as exc:  # noqa: BLE001 (meta tensors, exotic parameters: recorded, not fatal)
                    weights[name] = f"unhashable ({type(exc).__name__})"
    return {"module_files": files, "module_weights": weights}


def _model_id(spec: str, factory: Any, obj: Any, info: dict) -> str:
    given = getattr(obj, "model_id", None)
    if given not in (None, ""):
        return str(given)
    info["fingerprint"] = fingerprint = model_fingerprint(factory, obj)
    model_id = f"{spec}@{sha256_json(fingerprint)[:16]}"
    if spec not in _WARNED:
        _WARNED.add(spec)
        warnings.warn(f"model {spec} has no model_id: its samples are keyed as {model_id}, from its module file(s) "
                      f"and the weights of its nn.Module attributes ({len(fingerprint['module_weights'])} found); a "
                      "checkpoint change neither shows is not seen. Set model_id = 'name@<checkpoint sha256>' on "
                      "the model", stacklevel=2)
    return model_id


def _resolve(arg: str) -> ModelSource:
    spec = f"python:{arg}"
    try:
        factory = load_object(arg, "model")
    except EvalsuiteError:
        raise
    except Exception as exc:  # noqa: BLE001 (the module's own import-time code failed)
        raise InputError(f"model {spec}: importing its module raised {type(exc).__name__}: {exc}",
                         DEBUG_FIX) from exc
    is_model = not isinstance(factory, type) and (hasattr(factory, "generate") or isinstance(factory, Autoencoder))
    if callable(factory) and not is_model:
        obj = call_model(spec, f"the factory {arg.rpartition(':')[2]}()", factory)
    else:
        obj = factory
    info: dict[str, Any] = {"factory": spec}
    if getattr(obj, "weights_sha256", None):
        info["weights_sha256"] = obj.weights_sha256
    if isinstance(obj, Autoencoder) and not isinstance(obj, ImageGenerator):
        model_id = _model_id(spec, factory, obj, info)
        return autoencoder_source(spec, GuardedAutoencoder(obj, spec), info, model_id)
    if not isinstance(obj, ImageGenerator) and not callable(getattr(obj, "generate_class", None)):
        raise InputError(
            f"{spec} returned {type(obj).__name__}, which has neither generate(prompts, seeds), "
            "generate_class(labels, seeds) nor encode(x)/decode(z)",
            "return a generator (generate(prompts, seeds) -> images), a class-conditional one (generate_class("
            "labels, seeds) -> images) or an autoencoder (encode, decode)",
        )
    model_id = _model_id(spec, factory, obj, info)
    return ModelSource(spec=spec, model_id=model_id, kind="generator", generator=guard_generator(obj, spec),
                       info=info)


register_scheme("python", _resolve)
