"""Models the device runner builds and times, chosen by a spec: `demo` (the built-in DiT-like denoiser) or
`python:package.module:factory` returning an `nn.Module` with `example_inputs()` (or a `(module, inputs)` pair).
For end-to-end generation timing a factory may instead return a `GenerationPipeline`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, cast

import torch
from torch import nn

from evalsuite.errors import InputError
from evalsuite.hashing import sha256_state_dict
from evalsuite.pyspec import load_object


@dataclass
class DeviceModel:
    name: str
    module: nn.Module
    example_inputs: tuple
    weights_sha256: str = ""


@dataclass
class GenerationPipeline:
    """The pieces papers time: a text encoder (optional), one denoising step, a decoder; `frames` > 1 for video."""

    name: str
    denoiser: DeviceModel
    decoder: DeviceModel
    text_encoder: DeviceModel | None = None
    frames: int = 1
    info: dict = field(default_factory=dict)


class _WithExampleInputs(Protocol):
    def example_inputs(self) -> tuple: ...


def _wrap(name: str, module: nn.Module, inputs: tuple | None = None) -> DeviceModel:
    module = module.eval()
    # without `inputs`, the module is one with example_inputs() (resolve checked it)
    inputs = tuple(inputs) if inputs is not None else tuple(cast(_WithExampleInputs, module).example_inputs())
    return DeviceModel(name, module, inputs, sha256_state_dict(module))


def resolve(spec: str) -> DeviceModel:
    """`demo` or `python:module:factory` -> a module with example inputs."""
    if spec == "demo":
        from evalsuite.device.demo_net import DemoDiT

        return _wrap("demo", DemoDiT())
    if spec.startswith("python:"):
        obj = load_object(spec[len("python:"):], "device model")
        obj = obj() if callable(obj) and not isinstance(obj, nn.Module) else obj
        if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], nn.Module):
            return _wrap(spec, obj[0], obj[1])
        if isinstance(obj, nn.Module) and hasattr(obj, "example_inputs"):
            return _wrap(spec, obj)
        raise InputError(f"{spec} returned {type(obj).__name__}",
                         "return an nn.Module with example_inputs(), or a (module, example_inputs) pair")
    raise InputError(f"unknown device model spec '{spec}'", "use demo or python:package.module:factory")


def resolve_pipeline(spec: str) -> GenerationPipeline:
    """`demo` (text encoder + DemoDiT + decoder) or a `python:` factory returning a GenerationPipeline."""
    if spec == "demo":
        from evalsuite.device.demo_net import DemoDecoder, DemoDiT, DemoTextEncoder

        return GenerationPipeline("demo", _wrap("demo/denoiser", DemoDiT()), _wrap("demo/decoder", DemoDecoder()),
                                  _wrap("demo/text-encoder", DemoTextEncoder()))
    if spec.startswith("python:"):
        obj = load_object(spec[len("python:"):], "generation pipeline")
        obj = obj() if callable(obj) and not isinstance(obj, GenerationPipeline) else obj
        if isinstance(obj, GenerationPipeline):
            return obj
        raise InputError(f"{spec} returned {type(obj).__name__}, not a GenerationPipeline",
                         "return evalsuite.device.models.GenerationPipeline(name, denoiser, decoder, text_encoder)")
    raise InputError(f"unknown pipeline spec '{spec}'", "use demo or python:package.module:factory")


def run(model: DeviceModel, device: str = "cpu") -> torch.Tensor:
    """One forward pass on `device` (used for timing)."""
    return model.module(*[x.to(device) if isinstance(x, torch.Tensor) else x for x in model.example_inputs])
