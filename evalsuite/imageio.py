"""Image reading: every supported file becomes an RGB uint8 array, or a clear error naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from evalsuite.errors import InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in `folder` (recursively), sorted by relative path; errors on a missing or empty folder."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"image folder {root} does not exist or is not a folder", "pass an existing folder of images")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
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
