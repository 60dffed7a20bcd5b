"""Pluggable model backends for text-to-image scoring, each named by the *protocol* it implements so results of
different backends never share a column (e.g. `geneval-mask2former` vs `torchvision-maskrcnn`).

Specs: a registered name, or `python:module:factory` returning an object with the methods below (tests use
scripted fakes this way)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from evalsuite.errors import InputError, UnknownNameError
from evalsuite.pyspec import load_object


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


_FACTORIES: dict[str, dict[str, Callable[..., Any]]] = {"detector": {}, "color": {}, "vqa": {}}


def register(kind: str, name: str, factory: Callable[..., Any]) -> None:
    _FACTORIES[kind][name] = factory


def resolve(kind: str, spec: str, **kwargs: Any) -> Any:
    """Build the backend a spec names; `python:module:factory` objects must have the kind's method."""
    method = {"detector": "detect", "color": "classify", "vqa": "answer"}[kind]
    if spec.startswith("python:"):
        obj = load_object(spec[len("python:"):], f"{kind} backend")
        obj = obj() if callable(obj) and not hasattr(obj, method) else obj
    else:
        name, _, arg = spec.partition(":")
        if name not in _FACTORIES[kind]:
            raise UnknownNameError(f"unknown {kind} backend '{spec}'",
                                   f"use one of {', '.join(sorted(_FACTORIES[kind])) or '(none registered)'}, or "
                                   "python:module:factory")
        obj = _FACTORIES[kind][name](arg, **kwargs)
    if not hasattr(obj, method):
        raise InputError(f"{kind} backend {spec} has no {method}() method",
                         f"implement {method}() (evalsuite.tasks.t2i.backends)")
    if not getattr(obj, "protocol", None):
        raise InputError(f"{kind} backend {spec} does not name its protocol",
                         "set .protocol to a name that identifies its results (e.g. 'my-detector-v1')")
    return obj
