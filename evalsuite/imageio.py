"""Image reading: every supported file becomes an RGB uint8 array, or a clear error naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from evalsuite.errors import InputError
from evalsuite.fsutil import is_temp_file

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in `folder` (recursively), sorted by relative path; errors on a missing or empty folder."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"image folder {root} does not exist or is not a folder", "pass an existing folder of images")
    files = sorted(p for p in root.rglob("*")  # never a killed writer's half-written temporary file
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not is_temp_file(p))
    if not files:
        raise InputError(
            f"image folder {root} holds no images ({', '.join(IMAGE_EXTENSIONS)})",
            "point at the folder that holds the generated images, or generate them first",
        )
    return files


def to_rgb_uint8(img: Image.Image) -> np.ndarray:
    """Convert any PIL mode to HxWx3 uint8: 16-bit and 32-bit integer images are rescaled (not clipped),
    RGBA/LA/P drop or resolve transparency the way PIL's convert('RGB') does, grayscale is replicated."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img, dtype=np.uint16).astype(np.float64)
        arr = np.rint(arr / 257.0).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if img.mode == "I":
        arr = np.asarray(img, dtype=np.int64)
        scale = 257.0 if arr.max(initial=0) > 255 else 1.0
        arr = np.clip(np.rint(arr / scale), 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ValueError("floating-point image holds NaN or inf values")
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file fully into HxWx3 uint8; corrupt or truncated files raise InputError naming the file."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            arr = to_rgb_uint8(img)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(
            f"cannot decode image {path}: {exc}",
            "delete or regenerate this file (or run without --strict to skip and count it)",
        ) from exc
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"image {path} has unusable shape {arr.shape}", "regenerate this file")
    return np.ascontiguousarray(arr)


# ------------------------------------------------------------------ pixels returned by a generator
FLOAT_TOLERANCE = 1e-3  # float pixels within [-tol, 1 + tol] are clipped to [0, 1]; anything further is refused
PIXEL_RULE = ("return PIL images (8-bit modes), uint8 arrays HxWx3 (values 0-255), or float arrays/tensors in [0, 1] "
              "shaped HxWx3 or 3xHxW; videos: (T, H, W, 3) uint8, or float in [0, 1] as (T, H, W, 3) or (T, 3, H, W)")


def image_from_model(obj: Any, what: str) -> np.ndarray:
    """One generated image as HxWx3 uint8, by the one documented rule: a PIL image of an 8-bit mode (converted to
    RGB as PIL does), a uint8 array HxWx3, or a float array/tensor in [0, 1] (±1e-3, clipped) shaped HxWx3 or
    3xHxW (HxWx3 is read first), rounded to 0-255. Anything else (other dtypes, ranges, ranks, NaN, empty) raises
    InputError starting with `what` and stating the rule; nothing is converted silently."""
    if isinstance(obj, Image.Image):
        if obj.mode in ("I", "F") or obj.mode.startswith(("I;", "F;")):
            _refuse(what, f"is a PIL image of mode {obj.mode} (16/32-bit or float); its scale is ambiguous")
        obj = np.asarray(obj if obj.mode == "RGB" else obj.convert("RGB"))
    return _pixels(obj, what, video=False)


def frames_from_model(obj: Any, what: str) -> np.ndarray:
    """One generated video as (T, H, W, 3) uint8 by the same rule as images: a uint8 (T, H, W, 3) array, a float
    array/tensor in [0, 1] as (T, H, W, 3) or (T, 3, H, W), or a list of frames each accepted by
    `image_from_model`, all of one size; anything else raises InputError starting with `what`."""
    if isinstance(obj, (list, tuple)):
        if not obj:
            _refuse(what, "has no frames")
        frames = [image_from_model(frame, f"{what} frame {t}") for t, frame in enumerate(obj)]
        if len({f.shape for f in frames}) != 1:
            _refuse(what, f"has frames of different sizes {sorted({f.shape for f in frames})}")
        return np.stack(frames)
    return _pixels(obj, what, video=True)


def _refuse(what: str, problem: str) -> None:
    raise InputError(f"{what} {problem}", PIXEL_RULE)


def _pixels(obj: Any, what: str, video: bool) -> np.ndarray:
    """The array rule shared by images (rank 3) and videos (rank 4)."""
    if hasattr(obj, "detach") and hasattr(obj, "is_floating_point"):  # a torch tensor, without importing torch
        tensor = obj.detach().cpu()
        if tensor.is_complex():
            _refuse(what, f"is a {tensor.dtype} tensor (complex)")
        obj = tensor.double().numpy() if tensor.is_floating_point() else tensor.numpy()
    if not isinstance(obj, np.ndarray):
        _refuse(what, f"is a {type(obj).__name__}")
    rank, layout = (4, "(T, H, W, 3)") if video else (3, "HxWx3")
    if obj.ndim != rank or 0 in obj.shape:
        _refuse(what, f"has shape {obj.shape} ({obj.dtype}); expected {layout} with every side > 0")
    if obj.dtype == np.uint8:
        if obj.shape[-1] != 3:
            _refuse(what, f"is a uint8 array of shape {obj.shape}; uint8 images must be {layout}")
        return np.ascontiguousarray(obj)
    if not np.issubdtype(obj.dtype, np.floating):
        _refuse(what, f"has dtype {obj.dtype}; only uint8 (0-255) and float (0-1) pixels are accepted")
    if obj.shape[-1] != 3:
        if obj.shape[-3] != 3:
            _refuse(what, f"has shape {obj.shape}; float images must be {layout} or channels-first with 3 channels")
        obj = np.moveaxis(obj, -3, -1)
    arr = obj.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        _refuse(what, "holds NaN or inf values; nothing was stored for this sample")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -FLOAT_TOLERANCE or hi > 1 + FLOAT_TOLERANCE:
        _refuse(what, f"is {obj.dtype} with values in [{lo:.4g}, {hi:.4g}]; float pixels must lie in [0, 1] "
                      "(divide 0-255 values by 255, map [-1, 1] with (x + 1) / 2)")
    return np.ascontiguousarray(np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8))
