"""ADM sample and reference batches (openai/guided-diffusion): `.npz` archives the ADM evaluator reads.

A sample batch is what `scripts/image_sample.py` writes (`np.savez(out_path, arr, label_arr)`, lines 84-87):
`arr_0`, uint8 (N, H, W, 3) images, and `arr_1`, int labels, for class-conditional samples. A reference batch
(`VIRTUAL_imagenet256_labeled.npz`) holds the dataset's pool statistics `mu`, `sigma`, its spatial (sFID) ones
`mu_s`, `sigma_s`, and 10,000 images in `arr_0` for precision/recall (evaluations/README.md). The evaluator streams
`arr_0` out of the zip (evaluator.py `open_npz_array`, 516-531) and takes `mu`/`sigma`/`mu_s`/`sigma_s` from any
batch that has `mu` (`read_statistics`, 164-172): a sample batch written here never holds `mu`, so its statistics are
always computed from its images.

Batches are written streaming (never the whole 50k-image array in memory), uncompressed (ZIP_STORED, as np.savez)
with ZIP64 records, and read with every .npy header checked before any data (no pickles).
"""

from __future__ import annotations

import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from evalsuite.errors import InputError
from evalsuite.fsutil import atomic_write
from evalsuite.hashing import sha256_file

IMAGES_KEY, LABELS_KEY = "arr_0", "arr_1"
STAT_KEYS = ("mu", "sigma", "mu_s", "sigma_s")
POOL_DIM, SPATIAL_DIM = 2048, 2023  # pool_3 and mixed_6/conv[..., :7] at 17x17
_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError)
_FIX = ("an ADM batch is a .npz written by numpy.savez: arr_0 uint8 (N, H, W, 3) images, optionally arr_1 labels; "
        "a reference batch adds mu, sigma, mu_s, sigma_s (guided-diffusion's VIRTUAL_*.npz files)")


@dataclass(frozen=True)
class ArrayInfo:
    """The header of one array of an archive: shape and dtype, read without its data."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool


def _bad(path: Path, problem: str) -> InputError:
    return InputError(f"ADM batch {path} {problem}", _FIX)


def _header(fh, path: Path, key: str) -> ArrayInfo:
    version = np.lib.format.read_magic(fh)
    if version not in ((1, 0), (2, 0)):
        raise _bad(path, f"stores '{key}' in .npy format {version}, not 1.0 or 2.0")
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(fh)
    if dtype.hasobject or dtype.fields is not None:
        raise _bad(path, f"holds '{key}' as an object or structured array (refused: unpickling can run code)")
    return ArrayInfo(tuple(int(s) for s in shape), dtype, bool(fortran))


def describe(path: str | Path) -> dict[str, ArrayInfo]:
    """Every array of an archive with its header (shape, dtype); no data is read."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"ADM batch {path} does not exist", "check the path")
    out: dict[str, ArrayInfo] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.filename.endswith(".npy"):
                    with zf.open(info) as fh:
                        out[info.filename[:-4]] = _header(fh, path, info.filename[:-4])
    except InputError:
        raise
    except _ERRORS as exc:
        raise _bad(path, f"is not a readable .npz archive ({type(exc).__name__}: {str(exc)[:160]})") from exc
    return out


def check_images(path: str | Path, info: ArrayInfo | None = None) -> ArrayInfo:
    """arr_0's header, refused unless uint8 (N, H, W, 3) in C order (what the evaluator streams and feeds to TF)."""
    path = Path(path)
    info = info or describe(path).get(IMAGES_KEY)
    if info is None:
        raise _bad(path, "holds no arr_0 (the evaluator reads images from arr_0: 'missing arr_0 in npz file')")
    if info.dtype != np.uint8 or len(info.shape) != 4 or info.shape[3] != 3 or info.fortran:
        raise _bad(path, f"holds arr_0 of dtype {info.dtype}, shape {info.shape}"
                         f"{' (Fortran order)' if info.fortran else ''}; expected uint8 (N, H, W, 3)")
    return info


def iter_images(path: str | Path, batch_size: int = 64, key: str = IMAGES_KEY) -> Iterator[np.ndarray]:
    """Batches of arr_0 read straight out of the zip, as the evaluator's StreamingNpzArrayReader does
    (evaluator.py:467-490): never the whole array in memory."""
    path = Path(path)
    info = check_images(path, describe(path).get(key)) if key == IMAGES_KEY else describe(path)[key]
    row = math.prod(info.shape[1:]) * info.dtype.itemsize
    with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as fh:
        _header(fh, path, key)
        for start in range(0, info.shape[0], batch_size):
            count = min(batch_size, info.shape[0] - start)
            data = fh.read(count * row)
            if len(data) != count * row:
                raise _bad(path, f"ends inside '{key}' (expected {info.shape[0]} rows; truncated or damaged)")
            yield np.frombuffer(data, dtype=info.dtype).reshape((count, *info.shape[1:]))


def read_labels(path: str | Path) -> np.ndarray | None:
    """arr_1 (one integer label per image) when the batch has it, else None."""
    path = Path(path)
    arrays = describe(path)
    if LABELS_KEY not in arrays:
        return None
    info = arrays[LABELS_KEY]
    n = arrays[IMAGES_KEY].shape[0] if IMAGES_KEY in arrays else None
    if info.dtype.kind not in "iu" or len(info.shape) != 1 or (n is not None and info.shape[0] != n):
        raise _bad(path, f"holds arr_1 of dtype {info.dtype}, shape {info.shape}; expected {n} integer labels")
    with np.load(path, allow_pickle=False) as data:
        return np.asarray(data[LABELS_KEY])


def write_sample_batch(path: str | Path, images: Iterable[np.ndarray], count: int, size: tuple[int, int],
                       labels: np.ndarray | None = None) -> str:
    """Write an ADM sample batch atomically: `count` uint8 (H, W, 3) images (any iterable of single images or
    batches) as arr_0 and, when given, `labels` as arr_1 (int64, as torch.randint labels become); streamed into an
    uncompressed ZIP64 archive, the layout np.savez writes. Returns the file's sha256."""
    path = Path(path)
    height, width = size
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (count,) or labels.dtype.kind not in "iu":
            raise InputError(f"labels have shape {labels.shape} and dtype {labels.dtype}, expected ({count},) ints",
                             "pass one integer class label per image")

    def write(tmp: str) -> None:
        written = 0
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            with zf.open(f"{IMAGES_KEY}.npy", "w", force_zip64=True) as fh:
                header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
                          "shape": (count, height, width, 3)}
                np.lib.format.write_array_header_1_0(fh, header)
                for item in images:
                    arr = np.asarray(item)
                    arr = arr[None] if arr.ndim == 3 else arr
                    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[1:] != (height, width, 3):
                        raise InputError(f"image {written} has dtype {arr.dtype} and shape {arr.shape[-3:]}, "
                                         f"expected uint8 ({height}, {width}, 3)",
                                         "an ADM batch holds images of one size (resize or crop them first)")
                    if written + len(arr) > count:
                        raise InputError(f"more than the {count} images announced", "pass the right count")
                    fh.write(np.ascontiguousarray(arr).tobytes())
                    written += len(arr)
            if written != count:
                raise InputError(f"{written} images written, {count} announced", "pass the right count")
            if labels is not None:
                with zf.open(f"{LABELS_KEY}.npy", "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, labels.astype(np.int64), allow_pickle=False)

    atomic_write(path, write, suffix=".tmp.npz")
    return sha256_file(path)


@dataclass
class ADMReference:
    """A reference batch's statistics (pool: mu, sigma; spatial: mu_s, sigma_s) and its images' header."""

    path: Path
    mu: np.ndarray
    sigma: np.ndarray
    mu_s: np.ndarray
    sigma_s: np.ndarray
    images: ArrayInfo | None
    sha256: str

    @property
    def num_images(self) -> int:
        return self.images.shape[0] if self.images is not None else 0


def read_reference_batch(path: str | Path) -> ADMReference:
    """Read a reference batch's mu, sigma, mu_s, sigma_s (float, (2048,), (2048, 2048), (2023,), (2023, 2023), all
    finite) and check its arr_0 images when present (needed for precision/recall only)."""
    path = Path(path)
    arrays = describe(path)
    missing = [k for k in STAT_KEYS if k not in arrays]
    if missing:
        raise _bad(path, f"lacks {', '.join(missing)} (has {', '.join(sorted(arrays))}): not a reference batch")
    for key, dim in (("mu", POOL_DIM), ("mu_s", SPATIAL_DIM)):
        cov = "sigma" + key[2:]
        if arrays[key].shape != (dim,) or arrays[cov].shape != (dim, dim):
            raise _bad(path, f"holds {key} {arrays[key].shape} and {cov} {arrays[cov].shape}; the evaluator's are "
                             f"({dim},) and ({dim}, {dim})")
        if arrays[key].dtype.kind != "f" or arrays[cov].dtype.kind != "f":
            raise _bad(path, f"holds {key}/{cov} of dtypes {arrays[key].dtype}/{arrays[cov].dtype}, not float")
    images = check_images(path, arrays[IMAGES_KEY]) if IMAGES_KEY in arrays else None
    try:
        with np.load(path, allow_pickle=False) as data:
            stats = {k: np.asarray(data[k]) for k in STAT_KEYS}
    except _ERRORS as exc:
        raise _bad(path, f"cannot be read ({type(exc).__name__}: {str(exc)[:160]})") from exc
    if not all(np.isfinite(v).all() for v in stats.values()):
        raise _bad(path, "holds NaN or inf statistics")
    return ADMReference(path, stats["mu"], stats["sigma"], stats["mu_s"], stats["sigma_s"], images,
                        sha256_file(path))
