"""The boundary to user model code (`python:` specs): every call into the model and everything it returns is checked,
so a model that raises or returns the wrong thing gets one clear error naming the model, the call and the sample,
never a traceback from evalsuite's internals. The model's own exception stays chained (`evalsuite --debug` prints
its traceback). Generated pixels follow one rule (evalsuite.imageio.image_from_model / frames_from_model)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from evalsuite.errors import EvalsuiteError, InputError, TaskSkipped
from evalsuite.imageio import frames_from_model, image_from_model

DEBUG_FIX = "fix the model's code; `evalsuite --debug ...` (or EVALSUITE_DEBUG=1) prints its traceback"


def call_model(model: str, call: str, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)`; an exception from the model becomes one InputError naming `model` and `call`, chained to the
    original. Evalsuite's own errors (e.g. missing weights the model asked for) pass through unchanged."""
    try:
        return fn(*args)
    except (EvalsuiteError, TaskSkipped):
        raise
    except Exception as exc:  # noqa: BLE001 (anything the user's code raises)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise InputError(f"model {model}: {call} raised {type(exc).__name__}" + (f": {first}" if first else ""),
                         DEBUG_FIX) from exc


def _seeds(seeds: Sequence[int]) -> str:
    if len(seeds) > 1 and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds[:8]))}{', ...' if len(seeds) > 8 else ''}"


class _Guard:
    """Delegates every attribute it does not define (model_id, fps, kind, device, ...) to the wrapped model."""

    def __init__(self, inner: Any, spec: str):
        self._inner = inner
        self._spec = spec

    def __getattr__(self, name: str) -> Any:
        if name in ("_inner", "_spec"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._inner!r})"


class GuardedGenerator(_Guard):
    """A user generator whose `generate` is checked: one output per (prompt, seed), each by the pixel rule; returns
    HxWx3 uint8 arrays."""

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[np.ndarray]:
        """The model's images for `prompts`/`seeds`, checked and converted by the pixel rule."""
        return self._produce("generate", image_from_model, prompts, seeds)

    def _produce(self, method: str, convert: Callable[[Any, str], np.ndarray], prompts: Sequence[str],
                 seeds: Sequence[int]) -> list[np.ndarray]:
        prompts, seeds = list(prompts), list(seeds)
        call = f"{method}() on {len(seeds)} prompt(s), {_seeds(seeds)}"
        out = call_model(self._spec, call, getattr(self._inner, method), prompts, seeds)
        kind = "video" if method == "generate_video" else "image"
        if isinstance(out, (list, tuple)) or (isinstance(out, np.ndarray) and out.ndim > 0) or (
                hasattr(out, "detach") and getattr(out, "ndim", 0) > 0):
            items = list(out)
        else:
            raise InputError(f"model {self._spec}: {call} returned {type(out).__name__}",
                             f"{method}() must return a list with one {kind} per prompt")
        if len(items) != len(seeds):
            raise InputError(f"model {self._spec}: {call} returned {len(items)} {kind}s for {len(seeds)} requests",
                             f"{method}() must return exactly one {kind} per (prompt, seed) pair, in order")
        return [convert(item, f"model {self._spec}: {method}() output {i} (seed {seed}, prompt {prompt[:60]!r})")
                for i, (item, prompt, seed) in enumerate(zip(items, prompts, seeds))]


class GuardedVideoGenerator(GuardedGenerator):
    """A user generator with `generate_video` too: each clip checked to (T, H, W, 3) uint8 by the same rule."""

    def generate_video(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[np.ndarray]:
        """The model's videos for `prompts`/`seeds`, checked and converted by the pixel rule."""
        return self._produce("generate_video", frames_from_model, prompts, seeds)


def guard_generator(obj: Any, spec: str) -> GuardedGenerator:
    """Wrap a user generator (with `generate_video` only when the model has it, so `hasattr` still tells)."""
    return (GuardedVideoGenerator if hasattr(obj, "generate_video") else GuardedGenerator)(obj, spec)


class GuardedAutoencoder(_Guard):
    """A user autoencoder whose `encode`/`decode` must return float torch tensors of the input's rank and batch
    size; the tasks check the decoded shape against the input's."""

    def encode(self, x: Any) -> Any:
        """The model's latents for x (float (N, 3, H, W) or (N, 3, T, H, W) in [-1, 1])."""
        return self._checked("encode", x)

    def decode(self, z: Any) -> Any:
        """The model's reconstruction from latents z."""
        return self._checked("decode", z)

    def _checked(self, method: str, x: Any) -> Any:
        import torch

        call = f"{method}() on a batch of shape {tuple(x.shape)}"
        out = call_model(self._spec, call, getattr(self._inner, method), x)
        if not isinstance(out, torch.Tensor):
            raise InputError(f"model {self._spec}: {call} returned {type(out).__name__}",
                             f"{method}() must return a float torch.Tensor (see the autoencoder protocol)")
        if not out.is_floating_point() or out.ndim != x.ndim or out.shape[0] != x.shape[0]:
            raise InputError(f"model {self._spec}: {call} returned a {out.dtype} tensor of shape {tuple(out.shape)}",
                             f"{method}() must return a float tensor with the input's rank ({x.ndim}) and batch "
                             f"size ({x.shape[0]}): (N, C, h, w) for images, (N, C, t, h, w) for videos")
        return out
