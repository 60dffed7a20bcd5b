"""Data for autoencoder tasks: real images or videos, resized (shorter side, PIL bicubic with antialiasing) and
centre-cropped to a stated square resolution, prepared once into EVALSUITE_HOME and recorded in each result.

`--data folder:PATH` takes images and/or videos; the default `skimage` is the photographs scikit-image ships, so
the tasks run offline with no download. Images smaller than the resolution are skipped and counted, never upscaled.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from evalsuite import config
from evalsuite.errors import InputError
from evalsuite.fsutil import atomic_write_bytes
from evalsuite.hashing import sha256_file, sha256_json
from evalsuite.imageio import IMAGE_EXTENSIONS, read_rgb
from evalsuite.videoio import VIDEO_EXTENSIONS, read_frames

SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
                  "camera", "moon", "coins")
PREPARE_VERSION = "1"


@dataclass
class AEDataset:
    """Prepared items: image items are HxWx3 uint8 PNG files, video items TxHxWx3 uint8 .npy files."""

    spec: str
    resolution: int
    kind: str  # "image" or "video"
    files: list[Path]
    names: list[str]
    skipped: list[dict] = field(default_factory=list)
    frames: dict | None = None

    def load(self, i: int) -> np.ndarray:
        path = self.files[i]
        return np.load(path) if path.suffix == ".npy" else np.asarray(Image.open(path).convert("RGB"))

    def describe(self) -> dict:
        return {"spec": self.spec, "resolution": self.resolution, "kind": self.kind, "count": len(self.files),
                "preprocessing": f"resize shorter side to {self.resolution} (PIL bicubic, antialiased), centre crop "
                                 f"{self.resolution}x{self.resolution}; smaller inputs skipped",
                "skipped": len(self.skipped), "frames": self.frames}


def resize_center_crop(rgb: np.ndarray, resolution: int) -> np.ndarray:
    """Shorter side to `resolution` with PIL bicubic, then a centred square crop; HxWx3 uint8 in and out."""
    h, w = rgb.shape[:2]
    scale = resolution / min(h, w)
    new_w, new_h = max(resolution, round(w * scale)), max(resolution, round(h * scale))
    img = Image.fromarray(rgb)
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), resample=Image.Resampling.BICUBIC)
    left, top = (new_w - resolution) // 2, (new_h - resolution) // 2
    return np.asarray(img.crop((left, top, left + resolution, top + resolution)))


def _skimage_sources() -> list[tuple[str, np.ndarray]]:
    try:
        import skimage.data as data
    except ImportError as exc:
        raise InputError("scikit-image is not installed, and the default autoencoder data come from it",
                         "pip install scikit-image, or pass --data folder:PATH") from exc
    out = []
    for name in SKIMAGE_PHOTOS:
        arr = getattr(data, name)()
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        out.append((name, np.ascontiguousarray(arr[:, :, :3]).astype(np.uint8)))
    return out


def prepare(spec: str | None, resolution: int = 256, *, num_frames: int = 16, frame_stride: int = 1,
            limit: int | None = None) -> AEDataset:
    """Resolve `skimage` or `folder:PATH` into prepared, cached items at `resolution`."""
    spec = spec or "skimage"
    if resolution < 8:
        raise InputError(f"--resolution {resolution} is too small", "use at least 8 (256 is the usual choice)")
    out_root = config.home() / "data" / "prepared"
    if spec == "skimage":
        key = sha256_json({"v": PREPARE_VERSION, "skimage": SKIMAGE_PHOTOS, "res": resolution})[:16]
        items = [(name, lambda arr=arr: arr) for name, arr in _skimage_sources()]
        return _prepare_images(spec, items, resolution, out_root / key, limit)
    if not spec.startswith("folder:"):
        raise InputError(f"unknown data spec '{spec}'", "use --data skimage (the default) or --data folder:PATH")
    folder = Path(spec[len("folder:"):]).expanduser()
    if not folder.is_dir():
        raise InputError(f"data folder {folder} does not exist", "pass an existing folder of images or videos")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
    videos = [p for p in files if p.suffix.lower() in VIDEO_EXTENSIONS]
    if not images and not videos:
        raise InputError(f"data folder {folder} holds no images or videos",
                         f"add images ({', '.join(IMAGE_EXTENSIONS)}) or videos ({', '.join(VIDEO_EXTENSIONS)})")
    if images and videos:
        raise InputError(f"data folder {folder} mixes images and videos", "point --data at one kind")
    if videos:
        return _prepare_videos(spec, videos, resolution, num_frames, frame_stride, out_root, limit)
    items = [(str(p.relative_to(folder)), lambda p=p: read_rgb(p)) for p in images]
    key = sha256_json({"v": PREPARE_VERSION, "files": [(n, sha256_file(p)) for (n, _), p in zip(items, images)],
                       "res": resolution})[:16]
    return _prepare_images(spec, items, resolution, out_root / key, limit)


def _prepare_images(spec, items, resolution, out_dir: Path, limit) -> AEDataset:
    files, names, skipped = [], [], []
    for i, (name, load) in enumerate(items[:limit] if limit else items):
        path = out_dir / f"{i:05d}.png"
        if not path.is_file():
            try:
                rgb = load()
            except InputError as exc:
                skipped.append({"file": name, "reason": exc.message})
                continue
            if min(rgb.shape[:2]) < resolution:
                skipped.append({"file": name, "reason": f"{rgb.shape[1]}x{rgb.shape[0]} is smaller than the "
                                                       f"resolution {resolution} (not upscaled)"})
                continue
            buf = io.BytesIO()
            Image.fromarray(resize_center_crop(rgb, resolution)).save(buf, format="PNG")
            atomic_write_bytes(path, buf.getvalue())
        files.append(path)
        names.append(name)
    if not files:
        raise InputError(f"no usable images in data {spec} ({len(skipped)} skipped, e.g. "
                         f"{skipped[0]['file']}: {skipped[0]['reason']})" if skipped else f"no images in data {spec}",
                         "use images at least as large as --resolution, or lower --resolution")
    return AEDataset(spec, resolution, "image", files, names, skipped)


def _prepare_videos(spec, videos, resolution, num_frames, stride, out_root: Path, limit) -> AEDataset:
    files, names, skipped = [], [], []
    sampling = {"num_frames": num_frames, "stride": stride, "start": 0}
    for video in videos[:limit] if limit else videos:
        key = sha256_json({"v": PREPARE_VERSION, "sha": sha256_file(video), "res": resolution, **sampling})[:24]
        path = out_root / "videos" / f"{key}.npy"
        if not path.is_file():
            try:
                frames = read_frames(video, num_frames, stride)
            except InputError as exc:
                skipped.append({"file": str(video), "reason": exc.message})
                continue
            if min(frames.shape[1:3]) < resolution:
                skipped.append({"file": str(video), "reason": f"{frames.shape[2]}x{frames.shape[1]} is smaller than "
                                                              f"the resolution {resolution} (not upscaled)"})
                continue
            buf = io.BytesIO()
            np.save(buf, np.stack([resize_center_crop(f, resolution) for f in frames]), allow_pickle=False)
            atomic_write_bytes(path, buf.getvalue())
        files.append(path)
        names.append(str(video))
    if not files:
        raise InputError(f"no usable videos in data {spec} ({len(skipped)} skipped"
                         + (f", e.g. {skipped[0]['file']}: {skipped[0]['reason']})" if skipped else ")"),
                         "check the videos' length against --frames and their size against --resolution")
    return AEDataset(spec, resolution, "video", files, names, skipped, frames=sampling)
