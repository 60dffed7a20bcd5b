"""Pluggable model backends for text-to-image scoring, each named by the *protocol* it implements so results of
different backends never share a column (e.g. `geneval-mask2former` vs `torchvision-maskrcnn`).

Specs: a registered name (built in, or a plugin's through the entry-point groups in `BACKENDS`), or
`python:module:factory` returning an object with the methods below (tests use scripted fakes this way)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from evalsuite.errors import InputError, UnknownNameError
from evalsuite.pyspec import load_object
from evalsuite.registry import Registry


@dataclass
class Detection:
    """One detected object: COCO class name, confidence, box (x1, y1, x2, y2) in pixels, optional HxW bool mask."""

    label: str
    score: float
    box: tuple[float, float, float, float]
    mask: np.ndarray | None = None


@runtime_checkable
class Detector(Protocol):
    protocol: str  # names the scoring protocol this detector defines (goes into task metadata and results)

    def detect(self, image: Image.Image) -> list[Detection]:
        """Every detection (not yet thresholded); class names are the 80 COCO names."""


def detect_all(detector: Detector, images: list[Image.Image]) -> list[list[Detection]]:
    """Every image's detections: in one call where the detector batches (`detect_many`), else one image a call."""
    many = getattr(detector, "detect_many", None)
    return many(images) if callable(many) else [detector.detect(image) for image in images]


@runtime_checkable
class ColorClassifier(Protocol):
    protocol: str

    def classify(self, image: Image.Image, detection: Detection, classname: str, colors: list[str]) -> str:
        """The colour (one of `colors`) of the detected object."""


@runtime_checkable
class VQAModel(Protocol):
    protocol: str

    def answer(self, image: Image.Image, question: str) -> str:
        """Free-text answer; DPG-Bench counts only 'yes'."""


BackendFactory = Callable[..., Any]  # (the part of the spec after the colon, **options) -> backend


def _backends(kind: str, group: str, module: str) -> Registry[BackendFactory]:
    return Registry(f"{kind} backend", builtin_modules=[module], group=group, fix="or python:module:factory")


#: scoring backends by kind, then name: GenEval's detectors and colour classifiers, DPG-Bench's VQA models; plugins add
#: theirs through the entry-point groups `evalsuite.detectors`, `evalsuite.color_classifiers` and `evalsuite.vqa_models`
#: (a module that calls `register`, or `name = mod:factory`)
BACKENDS: dict[str, Registry[BackendFactory]] = {
    "detector": _backends("detector", "evalsuite.detectors", "evalsuite.tasks.geneval.detectors"),
    "color": _backends("color", "evalsuite.color_classifiers", "evalsuite.tasks.geneval.color_classifier"),
    "vqa": _backends("vqa", "evalsuite.vqa_models", "evalsuite.tasks.dpg.vqa"),
}
_METHODS = {"detector": "detect", "color": "classify", "vqa": "answer"}


def _kind(kind: str) -> Registry[BackendFactory]:
    if kind not in BACKENDS:
        raise UnknownNameError(f"unknown backend kind '{kind}'", f"use one of {', '.join(BACKENDS)}")
    return BACKENDS[kind]


def default_device() -> str:
    """The device a backend runs on when none is given: "cuda" where torch sees a GPU, else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def register(kind: str, name: str, factory: BackendFactory) -> None:
    """Add a `kind` backend ("detector", "color" or "vqa"): `factory(arg, **options)` builds it for `name[:arg]`."""
    _kind(kind).register(name, factory)


def registered(kind: str) -> list[str]:
    """The names of the registered `kind` backends."""
    return _kind(kind).names()


def resolve(kind: str, spec: str, **kwargs: Any) -> Any:
    """Build the backend a spec names; `python:module:factory` objects must have the kind's method."""
    registry, method = _kind(kind), _METHODS[kind]
    if spec.startswith("python:"):
        obj = load_object(spec[len("python:"):], f"{kind} backend")
        obj = obj() if callable(obj) and not hasattr(obj, method) else obj
    else:
        name, _, arg = spec.partition(":")
        obj = registry.get(name)(arg, **kwargs)
    if not hasattr(obj, method):
        raise InputError(f"{kind} backend {spec} has no {method}() method",
                         f"implement {method}() (evalsuite.tasks.t2i.backends)")
    if not getattr(obj, "protocol", None):
        raise InputError(f"{kind} backend {spec} does not name its protocol",
                         "set .protocol to a name that identifies its results (e.g. 'my-detector-v1')")
    return obj
