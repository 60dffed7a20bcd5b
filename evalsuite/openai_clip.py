"""OpenAI CLIP weights in the precision OpenAI's `clip.load` runs them.

clean-fid's CLIP-FID (`cleanfid/clip_features.py` `CLIP_fx`) and VBench's `background_consistency` load CLIP with
OpenAI's `clip.load`, which builds the model in fp16 (`clip/model.py` `build_model` → `convert_weights`; LayerNorm
computes in fp32) and calls `model.float()` only when the device is the CPU (`clip/clip.py` `load`). So their
official number is an fp16 number on a GPU and an fp32 number on the CPU. `official_precision` gives that choice,
`load` builds the same network through open_clip, and `encode_image` casts the input to the weights' dtype as
OpenAI's `CLIP.encode_image` does. `tests/test_openai_clip.py` checks both precisions against OpenAI's own
`clip.model.build_model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

PRECISIONS = ("fp16", "fp32")


def official_precision(device: torch.device | str) -> str:
    """"fp16" on a CUDA device, "fp32" elsewhere: what `clip.load(..., device)` leaves the weights in."""
    return "fp16" if torch.device(device).type == "cuda" else "fp32"


def load(path: str | Path, device: torch.device | str, precision: str) -> torch.nn.Module:
    """OpenAI CLIP from an OpenAI checkpoint (TorchScript archive or state dict), in eval mode, with weights in
    `precision` ("fp16": OpenAI's fp16 layout with fp32 LayerNorm, as `clip.load` on CUDA; "fp32")."""
    import open_clip

    if precision not in PRECISIONS:
        raise ValueError(f"CLIP precision must be one of {PRECISIONS}, got {precision!r}")
    return open_clip.load_openai_model(str(path), precision=precision, device=device).eval()


def encode_image(model: Any, x: torch.Tensor) -> torch.Tensor:  # model: open_clip's CLIP (open_clip is untyped)
    """`model.encode_image` of a normalised float batch cast to the weights' dtype (OpenAI's `image.type(self.dtype)`),
    returned as float32."""
    stem = getattr(model.visual, "conv1", None)  # OpenAI's `CLIP.dtype` is this weight's dtype
    dtype = stem.weight.dtype if stem is not None else torch.float32
    return model.encode_image(x.to(dtype)).float()
