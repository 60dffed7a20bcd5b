"""What the Python API (`evalsuite.api`) is given, turned into what the engine reads.

* `side`: `a` or `b` of `compute_fid` / `compute_kid` / `compute_fvd` (a folder, an `.npz` file, a registered
  reference name, ReferenceStats, a list of images or videos, or a batch tensor/array) as a folder of files or a
  statistics file/name. In-memory data is written to a temporary folder: PNG for images, lossless MP4 for videos
  (`split_batch`, `write_items`), after the pixel rule generator outputs follow.
* `stats_file`: statistics for `frechet_distance` (a file, a name, ReferenceStats, `(mu, sigma)`, a mapping) as a
  file or name `refstats.distance` reads.
* `spec_of` / `as_spec`: an object given where a spec is expected (an `nn.Module` extractor, a generator) as the
  spec `python:evalsuite.api:in_memory.<Class>_<hash>`, named while the call runs. The spec names `evalsuite.api`,
  which re-exports `in_memory`, so that specs (and the feature cache keyed by them) stay what they were.
"""

from __future__ import annotations

import os
import re
import threading
import types
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalsuite.errors import InputError

#: The module whose `in_memory` attribute the `python:` specs of in-memory objects name (it re-exports it).
SPEC_MODULE = "evalsuite.api"

# ------------------------------------------------------------------------------------------------ in-memory objects
in_memory = types.SimpleNamespace()  # objects handed to the API, reachable by the engine's `python:` specs
_in_memory_lock = threading.Lock()
_in_memory_refs: dict[str, int] = {}


def object_name(obj: Any) -> str:
    """A stable attribute name for an object: its class and a hash of what identifies it (class, module files,
    weights of it or of its nn.Module attributes, model_id), so the same network always gets the same spec."""
    from evalsuite.hashing import sha256_json
    from evalsuite.models.python_model import model_fingerprint

    cls = type(obj)
    identity = {"class": f"{cls.__module__}.{cls.__qualname__}", "model_id": str(getattr(obj, "model_id", "") or ""),
                **model_fingerprint(obj, obj)}
    return f"{re.sub(r'[^0-9A-Za-z_]', '_', cls.__qualname__)}_{sha256_json(identity)[:12]}"


@contextmanager
def as_spec(obj: Any) -> Iterator[str]:
    """`python:evalsuite.api:in_memory.NAME` naming `obj` while the block runs (the engine's `python:` loaders
    return it as it is: an nn.Module is used as the extractor, an object with generate/encode as the model)."""
    name = object_name(obj)
    with _in_memory_lock:
        setattr(in_memory, name, obj)
        _in_memory_refs[name] = _in_memory_refs.get(name, 0) + 1
    try:
        yield f"python:{SPEC_MODULE}:in_memory.{name}"
    finally:
        with _in_memory_lock:
            _in_memory_refs[name] -= 1
            if not _in_memory_refs[name]:
                del _in_memory_refs[name]
                delattr(in_memory, name)


def spec_of(value: Any, stack: ExitStack) -> Any:
    """A spec string for an option that names a model or a network: strings pass through, objects are registered
    for the duration of `stack`."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return stack.enter_context(as_spec(value))


# ------------------------------------------------------------------------------------------------ samples
@dataclass
class Side:
    """One side of a comparison, as the engine takes it: a folder of files, or statistics (file or name)."""

    kind: str  # "folder" or "stats"
    value: str  # the folder path, the .npz path or the registered name
    given: str  # how the user gave it, for messages


def is_tensor(x: Any) -> bool:
    return hasattr(x, "detach") and hasattr(x, "is_floating_point")


def _registered_reference(name: str) -> bool:
    from evalsuite import refstats

    return any(entry["name"] == name for entry in refstats.entries())


def side(x: Any, label: str, media: str, tmp: Path) -> Side:
    """Turn `a` or `b` into a folder or statistics the engine reads; in-memory data is written under `tmp`."""
    import numpy as np

    from evalsuite.refstats import ReferenceStats, save_npz

    if isinstance(x, (str, os.PathLike)):
        path = Path(x).expanduser()
        if path.is_dir():
            return Side("folder", str(path), str(x))
        if path.is_file():
            if path.suffix != ".npz":
                raise InputError(f"{label} {path} is a file, not a folder of {media}s or an .npz statistics file",
                                 f"pass the folder that holds the {media}s, a .npz file or a registered name")
            return Side("stats", str(path), str(x))
        if isinstance(x, str) and path.suffix != ".npz" and _registered_reference(x):
            return Side("stats", x, x)
        raise InputError(f"{label} {str(x)!r} is neither a folder, an .npz file nor a registered reference name",
                         f"pass an existing folder of {media}s, a .npz statistics file, or a name from "
                         "`evalsuite ref list`")
    if isinstance(x, ReferenceStats):
        path = tmp / f"{label}.npz"
        save_npz(x, path)
        return Side("stats", str(path), f"statistics {x.name!r}")
    if is_tensor(x) or isinstance(x, np.ndarray):
        items = split_batch(x, label, media)
    elif isinstance(x, (list, tuple)):
        items = list(x)
    else:
        raise InputError(f"{label} is a {type(x).__name__}",
                         f"pass a folder, a list of {media}s, a batch tensor or array, an .npz file, a registered "
                         "reference name or ReferenceStats")
    if len(items) < 2:
        raise InputError(f"{label} holds {len(items)} {media}(s)", f"statistics need at least 2 {media}s")
    folder = tmp / label
    folder.mkdir()
    write_items(items, folder, label, media)
    return Side("folder", str(folder), f"{len(items)} {media}s in memory")


def split_batch(x: Any, label: str, media: str) -> list[Any]:
    """A batch as a list of items in channels-last layout: images (N, 3, H, W) or (N, H, W, 3); videos
    (N, T, 3, H, W) or (N, T, H, W, 3). A size-3 last axis is read as channels-last, as for generator outputs,
    except for tensors, which are channels-first when their second (images) or third (videos) axis is 3.

    >>> import numpy as np, torch
    >>> [item.shape for item in split_batch(np.zeros((2, 3, 8, 5)), "a", "image")]  # channels-first array
    [(8, 5, 3), (8, 5, 3)]
    >>> split_batch(torch.zeros(2, 4, 3, 8, 3), "a", "video")[0].shape  # a tensor: (T, 3, H, W) is channels-first
    torch.Size([4, 8, 3, 3])
    """
    rank, layout = (4, "(N, 3, H, W) or (N, H, W, 3)") if media == "image" else \
        (5, "(N, T, 3, H, W) or (N, T, H, W, 3)")
    shape = tuple(x.shape)
    if len(shape) != rank:
        raise InputError(f"{label} is a batch of shape {shape}; a batch of {media}s is {layout}",
                         f"stack the {media}s into one batch, or pass a list of them")
    channel_axis = rank - 3  # 1 for images, 2 for videos
    first = shape[channel_axis] == 3 and (shape[-1] != 3 or is_tensor(x))
    if first:
        order = (0, *range(channel_axis + 1, rank), channel_axis) if media == "image" else (0, 1, 3, 4, 2)
        x = x.permute(*order) if is_tensor(x) else x.transpose(order)
    elif shape[-1] != 3:
        raise InputError(f"{label} is a batch of shape {shape} with no axis of 3 colour channels where one is "
                         f"expected ({layout})", "pass RGB images: grayscale and RGBA are refused")
    return [x[i] for i in range(shape[0])]


def write_items(items: list[Any], folder: Path, label: str, media: str) -> None:
    """PNG (images) or lossless MP4 (videos), after the pixel rule generator outputs follow."""
    from PIL import Image

    from evalsuite.imageio import frames_from_model, image_from_model
    from evalsuite.videoio import write_video

    for i, item in enumerate(items):
        if media == "image":
            Image.fromarray(image_from_model(item, f"{label} image {i}")).save(folder / f"{i:06d}.png")
        else:
            if is_tensor(item) and item.ndim == 4 and item.shape[1] == 3 and item.shape[-1] != 3:
                item = item.permute(0, 2, 3, 1)  # (T, 3, H, W) -> (T, H, W, 3), uint8 tensors included
            write_video(folder / f"{i:06d}.mp4", frames_from_model(item, f"{label} video {i}"), lossless=True)


# ------------------------------------------------------------------------------------------------ statistics
def stats_file(stats: Any, path: Path, label: str) -> str:
    """A statistics file or registered name for `refstats.distance`; in-memory statistics (ReferenceStats,
    `(mu, sigma)`, a mapping with `mu` and `sigma`) are written to `path`."""
    import numpy as np

    from evalsuite.refstats import ReferenceStats, save_npz

    if isinstance(stats, (str, os.PathLike)):
        return os.fspath(stats)
    if isinstance(stats, ReferenceStats):
        save_npz(stats, path)
        return str(path)
    if isinstance(stats, tuple) and len(stats) == 2:
        mu, sigma = stats
    elif hasattr(stats, "keys") and {"mu", "sigma"} <= set(stats.keys()):
        mu, sigma = stats["mu"], stats["sigma"]
    else:
        raise InputError(f"{label} is a {type(stats).__name__}",
                         "pass an .npz file, a registered name, ReferenceStats, (mu, sigma) or {'mu': .., 'sigma': ..}")
    try:
        mu_arr = np.asarray(mu, dtype=np.float64)
        sigma_arr = np.asarray(sigma, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{label}: mu and sigma must be numeric arrays ({exc})", "pass float arrays") from exc
    save_npz(ReferenceStats(label, mu_arr, sigma_arr, None, {}), path)
    return str(path)
