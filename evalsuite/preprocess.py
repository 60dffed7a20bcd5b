"""Image preprocessing before a feature network, named so that results and caches can record it exactly.

`clean` is clean-fid's: per channel, PIL float ('F' mode) bicubic resize, clipped to [0, 255], never quantised.
`tf1-bilinear` is torch-fidelity's VGG-16/Inception resize (TensorFlow 1.x bilinear, align_corners=False, float32);
`pil-bicubic-short-crop` is clean-fid's CLIP transform (uint8 PIL bicubic shorter side, then centre crop);
`pil-crop-bicubic` is CMMD's (google-research `cmmd/io_util.py`: centre square crop, then uint8 PIL bicubic);
`pil-bicubic` is dgm-eval's DINOv2 transform (uint8 PIL bicubic to the size, no crop).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

RESIZE_METHODS = ("pil-float-bicubic", "torch-bilinear", "tf1-bilinear", "pil-bicubic-short-crop",
                  "pil-crop-bicubic", "pil-bicubic", "none")


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
        elif self.resize == "tf1-bilinear":
            out = tf1_bilinear(rgb, self.size)  # type: ignore[arg-type]
        elif self.resize in ("pil-bicubic-short-crop", "pil-crop-bicubic"):
            crop = pil_bicubic_short_crop if self.resize == "pil-bicubic-short-crop" else pil_crop_bicubic
            out = crop(rgb, self.size)  # type: ignore[arg-type]
            return out if self.input_dtype == "uint8" else out.astype(np.float32)
        elif self.resize == "pil-bicubic":
            out = pil_bicubic(rgb, self.size)  # type: ignore[arg-type]
            return out if self.input_dtype == "uint8" else out.astype(np.float32)
        else:
            out = torch_bilinear(rgb, self.size)  # type: ignore[arg-type]
        if self.input_dtype == "uint8":
            return np.rint(out).astype(np.uint8)
        return out


def pil_float_bicubic(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """clean-fid's `clean` resize: each channel as a PIL 'F' image, bicubic to `size`, clipped, float32."""
    width, height = size
    if rgb.shape[:2] == (height, width) and rgb.dtype == np.uint8:
        return rgb.astype(np.float32)  # PIL's resize to the same size is a copy (Image.resize), [0, 255] needs no clip
    channels = []
    for c in range(rgb.shape[2]):
        img = Image.fromarray(np.ascontiguousarray(rgb[:, :, c], dtype=np.float32))  # float32 -> mode "F"
        channels.append(np.asarray(img.resize((width, height), resample=Image.Resampling.BICUBIC)).clip(0, 255))
    return np.stack(channels, axis=2).astype(np.float32)


def torch_bilinear(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """pytorch-fid / clean-fid `legacy_pytorch` resize: F.interpolate bilinear, align_corners=False, no antialias."""
    width, height = size
    x = torch.from_numpy(rgb.astype(np.float32).transpose(2, 0, 1))[None]
    x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    return x[0].numpy().transpose(1, 2, 0).clip(0, 255).astype(np.float32)


def tf1_bilinear(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """torch-fidelity's `interpolate_bilinear_2d_like_tensorflow1x` (align_corners=False, 'slow' method): source
    coordinate = float32(out index * in/out), no half-pixel offset, no antialiasing; float32 throughout, unclipped."""
    width, height = size
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).to(torch.float32)

    def axis(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pos = torch.arange(0, n_out, 1, dtype=torch.float32) * torch.tensor(n_in / n_out, dtype=torch.float32)
        lo = pos.long()
        return lo, (lo + 1).clamp_max(n_in - 1), pos - lo.float()

    y_lo, y_hi, dy = axis(x.shape[1], height)
    x_lo, x_hi, dx = axis(x.shape[2], width)
    top, bottom = x[:, y_lo, :], x[:, y_hi, :]
    row_lo = top[:, :, x_lo] + (top[:, :, x_hi] - top[:, :, x_lo]) * dx.view(1, 1, -1)
    row_hi = bottom[:, :, x_lo] + (bottom[:, :, x_hi] - bottom[:, :, x_lo]) * dx.view(1, 1, -1)
    out = row_lo + (row_hi - row_lo) * dy.view(1, -1, 1)
    return out.numpy().transpose(1, 2, 0).astype(np.float32)


def pil_bicubic_short_crop(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """clean-fid's CLIP transform (`img_preprocess_clip`): torchvision Resize(min(size)) on the shorter side of a
    uint8 PIL image (bicubic, PIL's own antialiasing), then CenterCrop(size); uint8 out."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    width, height = size
    img = TF.resize(Image.fromarray(rgb), min(width, height), interpolation=InterpolationMode.BICUBIC)
    return np.asarray(TF.center_crop(img, [height, width]), dtype=np.uint8)


def pil_crop_bicubic(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """CMMD's `_center_crop_and_resize` (google-research `cmmd/io_util.py`): the centred square of side
    min(w, h) at ((w - l) // 2, (h - l) // 2), then a uint8 PIL bicubic resize (PIL's antialiasing) to `size`."""
    img = Image.fromarray(rgb)
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    return np.asarray(img.resize((size[0], size[1]), resample=Image.Resampling.BICUBIC), dtype=np.uint8)


def pil_bicubic(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """dgm-eval's DINOv2 transform (`dgm_eval/models/dinov2.py`): torchvision Resize((h, w), BICUBIC) of a uint8
    PIL image, i.e. PIL's bicubic (with its antialiasing) to exactly `size`, aspect ratio not kept; uint8 out."""
    return np.asarray(Image.fromarray(rgb).resize(size, resample=Image.Resampling.BICUBIC), dtype=np.uint8)


def named(mode: str, size: int) -> Preprocessing:
    """clean-fid's mode names at a square size: clean, legacy_pytorch, legacy_tensorflow (resize in the network)."""
    if mode == "clean":
        return Preprocessing("pil-float-bicubic", (size, size))
    if mode == "legacy_pytorch":
        return Preprocessing("torch-bilinear", (size, size))
    if mode == "legacy_tensorflow":
        return Preprocessing("none")
    raise ValueError(f"unknown preprocessing mode {mode!r}; use clean, legacy_pytorch or legacy_tensorflow")
