"""The networks a diffusers pipeline generates with, as modules with example inputs (issue 16): what
`DiffusersGenerator.device_pipeline()` hands the device runner and what weight compression converts.

The example inputs are the pipeline's own: `capture` runs the pipeline once (one sampling step) and records the
first call of every text encoder, every denoiser (unet/transformer) call of that step and the decoder's
(`vae.decode`) input, so they are shaped like the pipeline's latents, timestep and text embeddings at the configured
resolution and guidance (classifier-free guidance doubles the denoiser's batch), whatever the pipeline's class.
`Call` replays recorded calls: its tensors are the module's example inputs, everything else is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn
from torch.utils import _pytree as pytree

DENOISERS = ("unet", "transformer", "prior")
DECODERS = ("vae", "vqvae", "movq")
RecordedCall = tuple[tuple, dict]  # (args, kwargs) of one call


def denoiser_name(pipe: Any) -> str | None:
    """The component that runs once per sampling step (`unet` or `transformer`), or None."""
    return next((n for n in DENOISERS if isinstance(getattr(pipe, n, None), nn.Module)), None)


def decoder_name(pipe: Any) -> str | None:
    """The autoencoder whose `decode` makes the image from the latents (`vae`), or None (a pixel-space pipeline)."""
    return next((n for n in DECODERS if callable(getattr(getattr(pipe, n, None), "decode", None))), None)


def text_encoder_names(pipe: Any) -> list[str]:
    """`text_encoder`, `text_encoder_2`, ... that the pipeline holds."""
    components = getattr(pipe, "components", {}) or {}
    return sorted(n for n, m in components.items() if n.startswith("text_encoder") and isinstance(m, nn.Module))


def first_tensor(out: Any) -> torch.Tensor:
    """The first tensor of a module's output (a tensor, a tuple, or a diffusers/transformers ModelOutput)."""
    while not isinstance(out, torch.Tensor):
        out = out[0]
    return out


class Call(nn.Module):
    """`inner.<method>` called as recorded (once per recorded call, in order): forward's positional arguments are the
    recorded tensors in order (`example_inputs()`), every other argument is fixed; returns the last call's first
    output tensor. The module is `inner` itself (its weights are this module's, under `inner.`)."""

    def __init__(self, inner: nn.Module, calls: list[RecordedCall], method: str = "forward"):
        super().__init__()
        self.inner, self.method = inner, method
        self._layout: list[tuple[Any, list[bool], list[Any]]] = []
        inputs: list[torch.Tensor] = []
        for args, kwargs in calls:
            leaves, spec = pytree.tree_flatten((tuple(args), dict(kwargs)))
            is_input = [isinstance(x, torch.Tensor) for x in leaves]
            # a torch.Generator (vae.decode's) is dropped: decoding the mean draws nothing
            fixed = [None if flag or isinstance(x, torch.Generator) else x for x, flag in zip(leaves, is_input)]
            self._layout.append((spec, is_input, fixed))
            inputs += [x.detach().clone() for x in leaves if isinstance(x, torch.Tensor)]
        self._inputs = tuple(inputs)

    def example_inputs(self) -> tuple:
        return self._inputs

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        given = iter(inputs)
        out: Any = None
        for spec, is_input, fixed in self._layout:
            args, kwargs = pytree.tree_unflatten([next(given) if flag else x for flag, x in zip(is_input, fixed)],
                                                 spec)
            out = getattr(self.inner, self.method)(*args, **kwargs)
        return first_tensor(out)


class Chain(nn.Module):
    """Several `Call`s one after the other (every text encoder of a pipeline); inputs are theirs, concatenated."""

    def __init__(self, calls: list[Call]):
        super().__init__()
        self.calls = nn.ModuleList(calls)
        self._counts = [len(c.example_inputs()) for c in calls]

    def example_inputs(self) -> tuple:
        return tuple(x for c in self.calls for x in c.example_inputs())  # type: ignore[operator]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        out, at = None, 0
        for call, n in zip(self.calls, self._counts):
            out = call(*inputs[at:at + n])
            at += n
        assert out is not None
        return out


class PixelOutput(nn.Module):
    """A pixel-space pipeline's last operation (DDPM's `(x / 2 + 0.5).clamp(0, 1)`): no weights; its example input
    is shaped like the pipeline's sample."""

    def __init__(self, example: torch.Tensor):
        super().__init__()
        self._inputs = (example,)

    def example_inputs(self) -> tuple:
        return self._inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x / 2 + 0.5).clamp(0, 1)


@dataclass
class Captured:
    """What one sampling step of a pipeline called: each text encoder's first call, the denoiser's calls of the step
    and the decoder's call (None for a pixel-space pipeline)."""

    text_encoders: dict[str, RecordedCall] = field(default_factory=dict)
    denoiser: list[RecordedCall] = field(default_factory=list)
    decoder: RecordedCall | None = None


def _record(args: tuple, kwargs: dict) -> RecordedCall:
    def detach(x: Any) -> Any:
        return x.detach().clone() if isinstance(x, torch.Tensor) else x
    return pytree.tree_map(detach, tuple(args)), pytree.tree_map(detach, dict(kwargs))


def capture(pipe: Any, run: Callable[[], Any]) -> Captured:
    """Record what `run()` (one call of `pipe` with one sampling step) calls; hooks are removed afterwards."""
    out = Captured()
    handles = []
    for name in text_encoder_names(pipe):
        def on_text(_m: nn.Module, args: tuple, kwargs: dict, name: str = name) -> None:
            out.text_encoders.setdefault(name, _record(args, kwargs))
        handles.append(getattr(pipe, name).register_forward_pre_hook(on_text, with_kwargs=True))
    dname = denoiser_name(pipe)
    if dname is not None:
        def on_step(_m: nn.Module, args: tuple, kwargs: dict) -> None:
            out.denoiser.append(_record(args, kwargs))
        handles.append(getattr(pipe, dname).register_forward_pre_hook(on_step, with_kwargs=True))
    vname = decoder_name(pipe)
    vae = getattr(pipe, vname) if vname else None
    if vae is not None:
        decode = vae.decode

        def recording_decode(*args: Any, **kwargs: Any) -> Any:
            if out.decoder is None:
                out.decoder = _record(args, kwargs)
            return decode(*args, **kwargs)
        vae.__dict__["decode"] = recording_decode  # shadows the method on this instance only
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
        if vae is not None:
            vae.__dict__.pop("decode", None)
    return out
