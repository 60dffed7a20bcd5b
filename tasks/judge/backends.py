"""Judge backends: what answers the questions. A judge returns, for each (media, question) pair, the next-token
scores of "yes" and "no" after its prompt; `evalsuite.tasks.judge.scoring` turns them into P(yes). Nothing here
parses free text.

Specs: `transformers:PATH` (a local vision-language model folder: Qwen2.5-VL / Qwen3-VL, InternVL, LLaVA-OneVision
families; never downloaded), `python:module:factory` (an object with `yes_no_logits`; tests use scripted judges this
way), or a plugin's name through the entry-point group `evalsuite.judges`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Protocol, Union, runtime_checkable

import numpy as np
from PIL import Image

from evalsuite.errors import InputError
from evalsuite.pyspec import load_object
from evalsuite.registry import Registry

#: one image, or a video as its sampled frames in order
Media = Union[Image.Image, list[Image.Image]]


@runtime_checkable
class Judge(Protocol):
    """A frozen model that answers yes/no questions about images and videos."""

    protocol: str  # names the judge (family and model); results of different judges never share a column
    fingerprint: str  # sha256 of the judge's weights: part of every number it gives

    def yes_no_logits(self, media: Sequence[Media], questions: Sequence[str]) -> np.ndarray:
        """(n, 2) float array: for pair i, the log-scores of answering "yes" and "no" to `questions[i]` about
        `media[i]` as the next token (each the log-sum-exp over every token that spells the word), deterministic."""
        ...


JudgeFactory = Callable[..., Any]  # (the part of the spec after the colon, device=..., **options) -> Judge

#: judge backends by name; plugins add theirs through the entry-point group `evalsuite.judges`
JUDGES: Registry[JudgeFactory] = Registry("judge backend", builtin_modules=["evalsuite.tasks.judge.backends"],
                                          group="evalsuite.judges", fix="or python:module:factory")


def _transformers(arg: str, **kwargs: Any) -> Any:
    from evalsuite.tasks.judge.transformers_judge import TransformersJudge

    return TransformersJudge(arg, **kwargs)


JUDGES.register("transformers", _transformers)


def resolve(spec: str, **kwargs: Any) -> Judge:
    """Build the judge a spec names and check it has what results need (its protocol and fingerprint)."""
    if not spec:
        raise InputError("the VLM judge needs a judge model", "pass --judge transformers:/path/to/Qwen2.5-VL-7B-"
                         "Instruct (a local folder) or --judge python:module:factory")
    if spec.startswith("python:"):
        obj = load_object(spec[len("python:"):], "judge backend")
        obj = obj() if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "yes_no_logits")) else obj
    else:
        name, _, arg = spec.partition(":")
        obj = JUDGES.get(name)(arg, **kwargs)
    if not callable(getattr(obj, "yes_no_logits", None)):
        raise InputError(f"judge {spec} has no yes_no_logits() method",
                         "implement yes_no_logits(media, questions) -> (n, 2) array (evalsuite.tasks.judge.backends)")
    for attr in ("protocol", "fingerprint"):
        if not isinstance(getattr(obj, attr, None), str) or not getattr(obj, attr):
            raise InputError(f"judge {spec} does not set .{attr}",
                             "set .protocol to a name for its results and .fingerprint to the sha256 of its weights")
    return obj
