"""Image preprocessing before a feature network, named so that results and caches can record it exactly.

`clean` is clean-fid's: per channel, PIL float ('F' mode) bicubic resize, clipped to [0, 255], never quantised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

RESIZE_METHODS = ("pil-float-bicubic", "torch-bilinear", "none")


@dataclass(frozen=True)
class Preprocessing:
    """How an RGB uint8 image becomes network input: `resize` method to `size` (width, height), or none."""

    resize: str
    size: tuple[int, int] | None = None
    input_dtype: str = "float255"  # "float255": float32 in [0, 255]; "uint8": rounded to uint8 after resizing

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_METHODS:
            raise ValueError(f"unknown resize method {self.resize!r}; known: {', '.join(RESIZE_METHODS)}")
        if (self.resize == "none") != (self.size is None):
            raise ValueError("a size is required for a resize method, and must be omitted for 'none'")
        if self.input_dtype not in ("float255", "uint8"):
            raise ValueError(f"unknown input dtype {self.input_dtype!r}; use 'float255' or 'uint8'")

    @property
    def id(self) -> str:
        size = f"@{self.size[0]}x{self.size[1]}" if self.size else ""
        return f"{self.resize}{size}:{self.input_dtype}"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 -> HxWx3 network input (float32 in [0, 255], or uint8 rounded half to even)."""
        if self.resize == "none":
            out = rgb.astype(np.float32) if self.input_dtype == "float255" else rgb
            return out
        if self.resize == "pil-float-bicubic":
            out = pil_float_bicubic(rgb, self.size)  # type: ignore[arg-type]
        else:
            out = torch_bilinear(rgb, self.size)  # type: ignore[arg-type]
        if self.input_dtype == "uint8":
            return np.rint(out).astype(np.uint8)
        return out


def pil_float_bicubic(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """clean-fid's `clean` resize: each channel as a PIL 'F' image, bicubic to `size`, clipped, float32."""
    width, height = size
    channels = []
    for c in range(rgb.shape[2]):
        img = Image.fromarray(np.ascontiguousarray(rgb[:, :, c], dtype=np.float32))  # float32 -> mode "F"
        channels.append(np.asarray(img.resize((width, height), resample=Image.BICUBIC)).clip(0, 255))
    return np.stack(channels, axis=2).astype(np.float32)


def torch_bilinear(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """pytorch-fid / clean-fid `legacy_pytorch` resize: F.interpolate bilinear, align_corners=False, no antialias."""
    width, height = size
    x = torch.from_numpy(rgb.astype(np.float32).transpose(2, 0, 1))[None]
    x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    return x[0].numpy().transpose(1, 2, 0).clip(0, 255).astype(np.float32)


def named(mode: str, size: int) -> Preprocessing:
    """clean-fid's mode names at a square size: clean, legacy_pytorch, legacy_tensorflow (resize in the network)."""
    if mode == "clean":
        return Preprocessing("pil-float-bicubic", (size, size))
    if mode == "legacy_pytorch":
        return Preprocessing("torch-bilinear", (size, size))
    if mode == "legacy_tensorflow":
        return Preprocessing("none")
    raise ValueError(f"unknown preprocessing mode {mode!r}; use clean, legacy_pytorch or legacy_tensorflow")
