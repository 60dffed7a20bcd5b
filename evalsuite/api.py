"""The Python API: FID, KID, FVD and Fréchet distances in one call, scoring runs as DataFrames.

Every function goes through the engine the CLI uses; nothing here computes a distance itself:

* `compute_fid`, `compute_kid` and `compute_fvd` run the registered `fid`, `kid` and `fvd` tasks through
  `evalsuite.runner.score`, with `a` as a `folder:` model and `b` as the reference (`--ref folder:PATH`, an `.npz`
  file or a registered name), in a temporary results store that is deleted afterwards. Features therefore come from
  `evalsuite.features` / `evalsuite.video_features` (and their cache in `$EVALSUITE_HOME/features`), reference
  statistics from `evalsuite.refstats`, and the number from `evalsuite.metrics`, exactly as
  `evalsuite score folder:A --tasks fid --ref folder:B` computes it.
* Images or videos given in memory (a list, a tensor or array batch) are written to a temporary folder first:
  PNG for images, lossless MP4 (libx264rgb, qp 0) for videos, both decoded back bit-exactly, after the pixel rule
  generators follow (`evalsuite.imageio.image_from_model` / `frames_from_model`: uint8, or float in [0, 1]). The
  feature engine reads files (that is what its cache is keyed by), so this is its one input path.
* `frechet_distance` is `evalsuite fd`: `evalsuite.refstats.distance` on two statistics files (in-memory statistics
  are written to temporary `.npz` files, so they are checked like any file).
* `score` is `evalsuite score`; `load_results` reads a results store like `evalsuite runs`.

A feature network may be a registered name (`inception`, `clip`, `vgg16`, `i3d`, `videomae:FILE`), a
`python:module:factory` spec, or an `nn.Module` object. An object is handed to the engine's `python:` path under
the spec `python:evalsuite.api:in_memory.<Class>_<hash>` (the hash covers its class and weights, so the feature
cache is shared between calls with the same network); it declares `preprocessing` (and `num_features`) as a
`python:` extractor does. Errors are the usual one-line evalsuite errors (`InputError`, `UnknownNameError`,
`MissingWeightsError`, `IncompatibleStatsError`), with the fix.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
import threading
import types
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Union

from evalsuite.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch

    from evalsuite.refstats import ReferenceStats

__all__ = ["KID", "RESULT_COLUMNS", "RunResult", "compute_fid", "compute_fvd", "compute_kid", "frechet_distance",
           "load_results", "score"]

#: What `a` and `b` may be: a folder, a list of images (or videos), a batch tensor/array, an `.npz` file,
#: a registered reference name, or ReferenceStats.
Samples = Union[str, os.PathLike, Sequence[Any], "np.ndarray", "torch.Tensor", "ReferenceStats"]
#: A feature network: a registered name, `python:module:factory`, or an `nn.Module`.
ExtractorSpec = Union[str, "torch.nn.Module"]
#: Statistics for `frechet_distance`: an `.npz` file, a registered name, ReferenceStats, (mu, sigma) or {"mu", "sigma"}.
Stats = Union[str, os.PathLike, "ReferenceStats", tuple, dict]

_TMP_PREFIX = "evalsuite-api-"


class KID(NamedTuple):
    """Kernel Inception Distance: the mean unbiased MMD² over the subsets and its standard deviation."""

    mean: float
    std: float


# ------------------------------------------------------------------------------------------------ in-memory objects
in_memory = types.SimpleNamespace()  # objects handed to the API, reachable by the engine's `python:` specs
_in_memory_lock = threading.Lock()
_in_memory_refs: dict[str, int] = {}


def _object_name(obj: Any) -> str:
    """A stable attribute name for an object: its class and a hash of what identifies it (class, module files,
    weights of it or of its nn.Module attributes, model_id), so the same network always gets the same spec."""
    from evalsuite.hashing import sha256_json
    from evalsuite.models.python_model import model_fingerprint

    cls = type(obj)
    identity = {"class": f"{cls.__module__}.{cls.__qualname__}", "model_id": str(getattr(obj, "model_id", "") or ""),
                **model_fingerprint(obj, obj)}
    return f"{re.sub(r'[^0-9A-Za-z_]', '_', cls.__qualname__)}_{sha256_json(identity)[:12]}"


@contextmanager
def _as_spec(obj: Any) -> Iterator[str]:
    """`python:evalsuite.api:in_memory.NAME` naming `obj` while the block runs (the engine's `python:` loaders
    return it as it is: an nn.Module is used as the extractor, an object with generate/encode as the model)."""
    name = _object_name(obj)
    with _in_memory_lock:
        setattr(in_memory, name, obj)
        _in_memory_refs[name] = _in_memory_refs.get(name, 0) + 1
    try:
        yield f"python:{__name__}:in_memory.{name}"
    finally:
        with _in_memory_lock:
            _in_memory_refs[name] -= 1
            if not _in_memory_refs[name]:
                del _in_memory_refs[name]
                delattr(in_memory, name)


def _spec_of(value: Any, stack: ExitStack) -> Any:
    """A spec string for an option that names a model or a network: strings pass through, objects are registered
    for the duration of `stack`."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return stack.enter_context(_as_spec(value))


# ------------------------------------------------------------------------------------------------ inputs
@dataclass
class _Side:
    """One side of a comparison, as the engine takes it: a folder of files, or statistics (file or name)."""

    kind: str  # "folder" or "stats"
    value: str  # the folder path, the .npz path or the registered name
    given: str  # how the user gave it, for messages


def _is_tensor(x: Any) -> bool:
    return hasattr(x, "detach") and hasattr(x, "is_floating_point")


def _registered_reference(name: str) -> bool:
    from evalsuite import refstats

    return any(entry["name"] == name for entry in refstats.entries())


def _side(x: Any, label: str, media: str, tmp: Path) -> _Side:
    """Turn `a` or `b` into a folder or statistics the engine reads; in-memory data is written under `tmp`."""
    import numpy as np

    from evalsuite.refstats import ReferenceStats, save_npz

    if isinstance(x, (str, os.PathLike)):
        path = Path(x).expanduser()
        if path.is_dir():
            return _Side("folder", str(path), str(x))
        if path.is_file():
            if path.suffix != ".npz":
                raise InputError(f"{label} {path} is a file, not a folder of {media}s or an .npz statistics file",
                                 f"pass the folder that holds the {media}s, a .npz file or a registered name")
            return _Side("stats", str(path), str(x))
        if isinstance(x, str) and path.suffix != ".npz" and _registered_reference(x):
            return _Side("stats", x, x)
        raise InputError(f"{label} {str(x)!r} is neither a folder, an .npz file nor a registered reference name",
                         f"pass an existing folder of {media}s, a .npz statistics file, or a name from "
                         "`evalsuite ref list`")
    if isinstance(x, ReferenceStats):
        path = tmp / f"{label}.npz"
        save_npz(x, path)
        return _Side("stats", str(path), f"statistics {x.name!r}")
    if _is_tensor(x) or isinstance(x, np.ndarray):
        items = _split_batch(x, label, media)
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
    _write_items(items, folder, label, media)
    return _Side("folder", str(folder), f"{len(items)} {media}s in memory")


def _split_batch(x: Any, label: str, media: str) -> list[Any]:
    """A batch as a list of items in channels-last layout: images (N, 3, H, W) or (N, H, W, 3); videos
    (N, T, 3, H, W) or (N, T, H, W, 3). A size-3 last axis is read as channels-last, as for generator outputs,
    except for tensors, which are channels-first when their second (images) or third (videos) axis is 3."""
    rank, layout = (4, "(N, 3, H, W) or (N, H, W, 3)") if media == "image" else \
        (5, "(N, T, 3, H, W) or (N, T, H, W, 3)")
    shape = tuple(x.shape)
    if len(shape) != rank:
        raise InputError(f"{label} is a batch of shape {shape}; a batch of {media}s is {layout}",
                         f"stack the {media}s into one batch, or pass a list of them")
    channel_axis = rank - 3  # 1 for images, 2 for videos
    first = shape[channel_axis] == 3 and (shape[-1] != 3 or _is_tensor(x))
    if first:
        order = (0, *range(channel_axis + 1, rank), channel_axis) if media == "image" else (0, 1, 3, 4, 2)
        x = x.permute(*order) if _is_tensor(x) else x.transpose(order)
    elif shape[-1] != 3:
        raise InputError(f"{label} is a batch of shape {shape} with no axis of 3 colour channels where one is "
                         f"expected ({layout})", "pass RGB images: grayscale and RGBA are refused")
    return [x[i] for i in range(shape[0])]


def _write_items(items: list[Any], folder: Path, label: str, media: str) -> None:
    """PNG (images) or lossless MP4 (videos), after the pixel rule generator outputs follow."""
    from PIL import Image

    from evalsuite.imageio import frames_from_model, image_from_model
    from evalsuite.videoio import write_video

    for i, item in enumerate(items):
        if media == "image":
            Image.fromarray(image_from_model(item, f"{label} image {i}")).save(folder / f"{i:06d}.png")
        else:
            if _is_tensor(item) and item.ndim == 4 and item.shape[1] == 3 and item.shape[-1] != 3:
                item = item.permute(0, 2, 3, 1)  # (T, 3, H, W) -> (T, H, W, 3), uint8 tensors included
            write_video(folder / f"{i:06d}.mp4", frames_from_model(item, f"{label} video {i}"), lossless=True)


# ------------------------------------------------------------------------------------------------ the engine
def _check_weights(spec: str, video: bool, offline: bool | None) -> None:
    """A missing or damaged weights file is an error before any work (the runner would store a skip)."""
    from evalsuite import weights

    if video:
        from evalsuite.video_features import weights_needed
    else:
        from evalsuite.extractors import weights_needed
    for name in weights_needed(spec):
        weights.require_verified(name, offline=offline)


def _image_extractor(extractor: ExtractorSpec, mode: str, stack: ExitStack) -> str:
    """The spec of an image feature network; `mode` is the Inception preprocessing (clean-fid's mode names)."""
    if not isinstance(extractor, str):
        if mode != "clean":
            raise InputError(f"mode={mode!r} applies to the inception extractor only",
                             "a network object declares its own `preprocessing`; drop mode=")
        return _spec_of(extractor, stack)
    name, _, option = extractor.partition(":")
    if name == "inception":
        if option and mode != "clean" and option != mode:
            raise InputError(f"extractor={extractor!r} and mode={mode!r} disagree", "give the mode once")
        return f"inception:{option or mode}"
    if mode != "clean":
        raise InputError(f"mode={mode!r} applies to the inception extractor only, not {extractor!r}",
                         "drop mode= (clip and vgg16 have one fixed preprocessing; python: networks declare theirs)")
    return extractor


def _run_task(task: str, a: _Side, b: _Side, options: dict[str, Any]) -> dict:
    """Run one registered task with `a` as a folder: model and `b` as its reference, in a temporary store that is
    deleted afterwards; returns the result document. A task that could not run is an error here."""
    from evalsuite.runner import ScoreOptions
    from evalsuite.runner import score as run_score

    ref = f"folder:{b.value}" if b.kind == "folder" else b.value
    ref_option: dict[str, Any] = {"video_ref": ref} if task == "fvd" else {"ref": ref}
    with tempfile.TemporaryDirectory(prefix=_TMP_PREFIX) as store:
        summary = run_score(f"folder:{a.value}", ScoreOptions(tasks=[task], store=Path(store), **ref_option,
                                                              **options))
    (doc,) = summary.results
    if doc["status"] != "ok":
        raise InputError(f"{task} could not be computed: {doc.get('reason')}", doc.get("fix"))
    return doc


def _common(batch_size: int, device: str, num_workers: int | None, offline: bool | None, strict: bool,
            progress: bool, fast: bool, optimize_graph: bool) -> dict[str, Any]:
    return {"batch_size": batch_size, "device": device, "num_workers": num_workers, "offline": offline,
            "strict": strict, "progress": progress, "fast": fast, "optimize_graph": optimize_graph}


def compute_fid(
    a: Samples,
    b: Samples,
    *,
    extractor: ExtractorSpec = "inception",
    mode: str = "clean",
    biased_cov: bool = False,
    batch_size: int = 32,
    device: str = "auto",
    num_workers: int | None = None,
    offline: bool | None = None,
    strict: bool = False,
    progress: bool = True,
    fast: bool = False,
    optimize_graph: bool = True,
) -> float:
    """Fréchet distance between the features of `a` and `b` (FID with the default Inception network).

    `a` and `b` are each a folder of images, a list of images (PIL, HxWx3 uint8 arrays, or float arrays/tensors in
    [0, 1], HxWx3 or 3xHxW), a batch tensor or array ((N, 3, H, W) or (N, H, W, 3), uint8 or float in [0, 1]), an
    `.npz` statistics file, a registered reference name (`evalsuite ref list`) or ReferenceStats. Statistics must
    have been made with the same extractor and preprocessing (checked); two statistics give their Fréchet distance
    directly (`frechet_distance`; `extractor` is then not used); statistics as `a` and images as `b` are swapped
    (FID is symmetric).

    `extractor`: `inception` (clean-fid's FID Inception; `mode` is clean-fid's `clean`, `legacy_tensorflow` or
    `legacy_pytorch`), `clip` (CLIP-FID), `vgg16`, `python:module:factory`, or an `nn.Module` declaring
    `preprocessing`. `biased_cov` divides the covariance by N instead of N - 1. The other options are `evalsuite
    score`'s: unreadable images are skipped and counted (`strict=True` makes them an error).

    Same engine as `evalsuite score folder:A --tasks fid --ref folder:B --extractor ...`, so the same number.

    >>> import numpy as np, torch
    >>> from evalsuite import compute_fid
    >>> _ = torch.manual_seed(0)  # a tiny feature network with fixed random weights: runs offline
    >>> net = torch.nn.Sequential(torch.nn.GroupNorm(1, 3), torch.nn.Conv2d(3, 8, 3), torch.nn.Tanh(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    >>> net.preprocessing = {"resize": "none", "input_dtype": "float255"}  # native size, float pixels in [0, 255]
    >>> rng = np.random.default_rng(0)
    >>> a = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)  # a batch of 12 images, (N, H, W, 3)
    >>> b = a.mean(axis=3, keepdims=True).repeat(3, axis=3).astype(np.uint8)  # the same images in grey
    >>> fid = compute_fid(a, b, extractor=net, progress=False)
    >>> fid > 0
    True
    >>> round(compute_fid(a, list(a), extractor=net, progress=False), 6)  # the same images, given another way
    0.0
    """
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=_TMP_PREFIX)))
        side_a, side_b = _side(a, "a", "image", tmp), _side(b, "b", "image", tmp)
        if side_a.kind == "stats" and side_b.kind == "stats":
            return frechet_distance(side_a.value, side_b.value, biased_cov=biased_cov)
        if side_a.kind == "stats":
            side_a, side_b = side_b, side_a
        spec = _image_extractor(extractor, mode, stack)
        _check_weights(spec, video=False, offline=offline)
        doc = _run_task("fid", side_a, side_b, {
            "extractor": spec, "biased_cov": biased_cov,
            **_common(batch_size, device, num_workers, offline, strict, progress, fast, optimize_graph)})
        return float(doc["metrics"]["fid"])


def compute_kid(
    a: Samples,
    b: Samples,
    *,
    extractor: ExtractorSpec = "inception",
    mode: str = "clean",
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    batch_size: int = 32,
    device: str = "auto",
    num_workers: int | None = None,
    offline: bool | None = None,
    strict: bool = False,
    progress: bool = True,
    fast: bool = False,
    optimize_graph: bool = True,
) -> KID:
    """Kernel Inception Distance of `a` against `b`: (mean, std) of the unbiased MMD² with the cubic polynomial
    kernel over `num_subsets` subsets of min(`subset_size`, N) drawn with `seed`.

    `a` holds images as in `compute_fid` (a folder, a list, a batch); `b` is images too, or statistics that keep
    their features (`evalsuite ref build` keeps them; clean-fid's `*_kid.npz`). Same engine as `evalsuite score
    folder:A --tasks kid --ref ...`.

    >>> import numpy as np, torch
    >>> from evalsuite import compute_kid
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.GroupNorm(1, 3), torch.nn.Conv2d(3, 8, 3), torch.nn.Tanh(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    >>> net.preprocessing = {"resize": "none", "input_dtype": "float255"}
    >>> rng = np.random.default_rng(0)
    >>> a = torch.from_numpy(rng.random((12, 3, 16, 16), dtype=np.float32))  # (N, 3, H, W) float in [0, 1]
    >>> grey = a.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    >>> kid, kid_std = compute_kid(a, grey, extractor=net, progress=False)
    >>> kid > 0 and kid_std >= 0
    True
    """
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=_TMP_PREFIX)))
        side_a, side_b = _side(a, "a", "image", tmp), _side(b, "b", "image", tmp)
        if side_a.kind == "stats":
            raise InputError(f"compute_kid needs images as a, got statistics ({side_a.given})",
                             "pass the images to score as a (a folder, a list or a batch) and the reference as b")
        spec = _image_extractor(extractor, mode, stack)
        _check_weights(spec, video=False, offline=offline)
        doc = _run_task("kid", side_a, side_b, {
            "extractor": spec, "kid_subsets": num_subsets, "kid_subset_size": subset_size, "seed": seed,
            **_common(batch_size, device, num_workers, offline, strict, progress, fast, optimize_graph)})
        return KID(float(doc["metrics"]["kid"]), float(doc["metrics"]["kid_std"]))


def compute_fvd(
    a: Samples,
    b: Samples,
    *,
    extractor: ExtractorSpec = "i3d",
    frames: int = 16,
    frame_stride: int = 1,
    frame_start: int = 0,
    max_real: int = 2048,
    seed: int = 0,
    batch_size: int = 32,
    device: str = "auto",
    num_workers: int | None = None,
    offline: bool | None = None,
    strict: bool = False,
    progress: bool = True,
    fast: bool = False,
    optimize_graph: bool = True,
) -> float:
    """Fréchet Video Distance of the videos `a` against the reference `b` (StyleGAN-V's `fvd2048_16f` protocol with
    the default I3D network; cd-fvd's with `extractor="videomae"`).

    `a` is a folder of videos, a list of videos (each (T, H, W, 3) uint8, float in [0, 1] as (T, H, W, 3) or
    (T, 3, H, W), or a list of frames), or a batch ((N, T, 3, H, W) or (N, T, H, W, 3)); `b` is videos too, an
    `.npz` or a registered name built with the same network and sampling. The sides are not symmetric: `b` is the
    real side (the first `max_real` videos, random clip starts drawn from `seed`). `frames`, `frame_stride`,
    `frame_start`: the clip taken from each video. `extractor`: `i3d`, `videomae[:FILE]`,
    `python:module:factory` or an `nn.Module` taking uint8 (B, 3, T, H, W) clips (or declaring `preprocessing`)
    and declaring `num_features`. Same engine as `evalsuite score folder:A --tasks fvd --video-ref ...`.

    >>> import numpy as np, torch
    >>> from evalsuite import compute_fvd
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.GroupNorm(1, 3), torch.nn.Conv3d(3, 6, 3), torch.nn.Tanh(),
    ...                           torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten())
    >>> net.preprocessing, net.num_features = {"resize": "none", "input_dtype": "float255"}, 6
    >>> rng = np.random.default_rng(0)
    >>> a = rng.integers(0, 256, (6, 4, 16, 16, 3), dtype=np.uint8)  # 6 videos of 4 frames, (N, T, H, W, 3)
    >>> grey = a.mean(axis=4, keepdims=True).repeat(3, axis=4).astype(np.uint8)
    >>> fvd = compute_fvd(a, grey, extractor=net, frames=4, num_workers=0, progress=False)
    >>> fvd > 0
    True
    """
    from evalsuite.video_features import is_video_spec

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=_TMP_PREFIX)))
        side_a, side_b = _side(a, "a", "video", tmp), _side(b, "b", "video", tmp)
        if side_a.kind == "stats":
            raise InputError(f"compute_fvd needs videos as a, got statistics ({side_a.given})",
                             "pass the videos to score as a and the reference (videos or statistics) as b")
        spec = _spec_of(extractor, stack)
        if not is_video_spec(spec):
            raise InputError(f"extractor {spec!r} is not a video network",
                             "use i3d, videomae[:FILE], python:module:factory or an nn.Module for videos")
        _check_weights(spec, video=True, offline=offline)
        doc = _run_task("fvd", side_a, side_b, {
            "extractor": spec, "frames": frames, "frame_stride": frame_stride, "frame_start": frame_start,
            "fvd_max_real": max_real, "seed": seed,
            **_common(batch_size, device, num_workers, offline, strict, progress, fast, optimize_graph)})
        return float(doc["metrics"]["fvd"])


def frechet_distance(stats_a: Stats, stats_b: Stats, *, biased_cov: bool = False,
                     allow_mismatch: bool = False) -> float:
    """Fréchet distance ‖μa − μb‖² + tr Σa + tr Σb − 2 tr √(Σa Σb) between two sets of statistics.

    Each is an `.npz` file (evalsuite's, clean-fid's or pytorch-fid's), a registered reference name, ReferenceStats,
    a `(mu, sigma)` pair or a mapping with `mu` and `sigma`. Statistics made with different extractors or
    preprocessing are refused unless `allow_mismatch`. `biased_cov` uses covariances divided by N (converted when
    the statistics record N; a `(mu, sigma)` pair is used as given). This is `evalsuite fd A B`.

    >>> import numpy as np
    >>> from evalsuite import frechet_distance
    >>> mu, sigma = np.zeros(2), np.eye(2)
    >>> frechet_distance((mu, sigma), (mu + 1, sigma))  # ‖(1, 1)‖² = 2; equal covariances add nothing
    2.0
    >>> frechet_distance({"mu": mu, "sigma": sigma}, (mu, 4 * sigma))  # tr I + tr 4I - 2 tr 2I = 2
    2.0
    """
    from evalsuite import refstats

    with tempfile.TemporaryDirectory(prefix=_TMP_PREFIX) as tmp:
        a = _stats_file(stats_a, Path(tmp) / "a.npz", "stats_a")
        b = _stats_file(stats_b, Path(tmp) / "b.npz", "stats_b")
        return float(refstats.distance(a, b, biased_cov=biased_cov, allow_mismatch=allow_mismatch)["fd"])


def _stats_file(stats: Stats, path: Path, label: str) -> str:
    """A statistics file or registered name for `refstats.distance`; in-memory statistics are written to `path`."""
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
        mu, sigma = stats["mu"], stats["sigma"]  # type: ignore[index]
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


# ------------------------------------------------------------------------------------------------ runs as DataFrames
#: Columns of `RunResult.metrics()` and `load_results()`: one row per model x task x metric, with provenance.
RESULT_COLUMNS = [
    "run_id", "model_spec", "model_id", "task", "task_version", "metric", "value", "direction", "primary",
    "status", "reason", "num_samples", "skipped_samples", "protocol", "extractor", "preprocessing",
    "weights_sha256", "reference", "seed", "evalsuite_version", "git_sha", "device", "wall_time_s", "created_at",
]


def _rows(doc: dict) -> list[dict]:
    """The DataFrame rows of one result document (a skipped task: one row without a metric)."""
    prov = doc.get("provenance") or {}
    hardware = prov.get("hardware") or {}
    model = doc.get("model") or {}
    extractors_used = (prov.get("extractors") or {}).values()
    common = {
        "run_id": doc.get("run_id"), "model_spec": model.get("spec"), "model_id": model.get("id"),
        "task": doc.get("task"), "task_version": doc.get("task_version"), "status": doc.get("status"),
        "reason": doc.get("reason"), "num_samples": doc.get("num_samples"),
        "skipped_samples": (doc.get("skipped_samples") or {}).get("count"), "protocol": doc.get("protocol"),
        "extractor": ", ".join(str(k.get("extractor")) for k in extractors_used) or None,
        "preprocessing": ", ".join(str(k.get("preprocessing")) for k in extractors_used) or None,
        "weights_sha256": ", ".join(f"{k}={v}" for k, v in (prov.get("weights_sha256") or {}).items()) or None,
        "reference": ", ".join(str(r.get("id")) for r in prov.get("reference_stats") or []) or None,
        "seed": (prov.get("seeds") or {}).get("sample_seed_start"),
        "evalsuite_version": prov.get("evalsuite_version"), "git_sha": hardware.get("evalsuite_git_sha"),
        "device": hardware.get("device"), "wall_time_s": prov.get("wall_time_s"), "created_at": doc.get("created_at"),
    }
    info = doc.get("metric_info") or {}
    metrics = doc.get("metrics") or {}
    if not metrics:
        return [{**common, "metric": None, "value": None, "direction": None, "primary": None}]
    return [{**common, "metric": name, "value": value, "direction": (info.get(name) or {}).get("direction"),
             "primary": (info.get(name) or {}).get("primary")} for name, value in metrics.items()]


def _frame(docs: Sequence[dict], include_skipped: bool) -> pd.DataFrame:
    import pandas as pd

    rows = [row for doc in docs for row in _rows(doc) if include_skipped or doc.get("status") == "ok"]
    frame = pd.DataFrame.from_records(rows, columns=RESULT_COLUMNS)
    frame["value"] = frame["value"].astype(float)
    return frame


@dataclass
class RunResult:
    """One scoring run: its id, the store it was written to (None: not stored) and its result documents (schema
    `evalsuite.result/1`, as stored)."""

    run_id: str
    store: Path | None
    results: list[dict]

    def metrics(self, include_skipped: bool = True) -> pd.DataFrame:
        """A DataFrame with one row per model x task x metric and provenance columns (`RESULT_COLUMNS`); a task that
        was skipped is one row with `status` "skipped", no metric and the `reason` (dropped by
        `include_skipped=False`).

        >>> from evalsuite.api import RunResult
        >>> doc = {"run_id": "r1", "task": "fid", "status": "ok", "model": {"spec": "demo", "id": "demo@1"},
        ...        "metrics": {"fid": 12.5}, "metric_info": {"fid": {"direction": "lower", "primary": True}}}
        >>> RunResult("r1", None, [doc]).metrics()[["model_spec", "task", "metric", "value", "direction"]]
          model_spec task metric  value direction
        0       demo  fid    fid   12.5     lower
        """
        return _frame(self.results, include_skipped)

    def __getitem__(self, task: str) -> dict:
        """The result document of one task."""
        for doc in self.results:
            if doc.get("task") == task:
                return doc
        raise KeyError(f"run {self.run_id} has no result for task {task!r}; it has "
                       f"{', '.join(d.get('task', '?') for d in self.results)}")


_SCORE_ARGS = ("model", "tasks", "suite", "store")
_OBJECT_OPTIONS = ("extractor", "pr_extractor", "autoencoder", "video_model")  # may be objects, not only specs


def score(model: Any, tasks: str | Sequence[str] | None = None, *, suite: str | None = None,
          store: str | os.PathLike | None = None, **task_options: Any) -> RunResult:
    """Score `model` on `tasks` (or `suite`, or the model's default suite), as `evalsuite score` does.

    `model` is a spec (`demo`, `folder:PATH`, `python:pkg.module:factory`, `diffusers:PATH`, ...), a `pathlib.Path`
    to a folder of samples, or an object with `generate(prompts, seeds)` (or `encode`/`decode`) as a `python:`
    factory returns. `tasks`: a list or a comma-separated string. `store=None` (default) scores in a temporary store
    that is deleted before this returns: nothing is written to the working folder or `$EVALSUITE_STORE` (the feature
    cache in `$EVALSUITE_HOME` is still used), and the results live only in the returned RunResult. `store=PATH`
    keeps them there like `--store PATH`. `task_options` are `evalsuite score`'s options by their `ScoreOptions`
    names (`num_samples`, `seed`, `ref`, `extractor`, `batch_size`, `device`, `kid_subsets`, ...); `extractor`,
    `pr_extractor`, `autoencoder` and `video_model` may also be objects.

    >>> import torch
    >>> from evalsuite import score
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.GroupNorm(1, 3), torch.nn.Conv2d(3, 8, 3, stride=4), torch.nn.Tanh(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    >>> net.preprocessing = {"resize": "none", "input_dtype": "float255"}
    >>> run = score("demo", tasks="fid", num_samples=6, ref="model:demo", extractor=net, progress=False)
    >>> run.store is None  # nothing was stored
    True
    >>> df = run.metrics()
    >>> df[["model_spec", "task", "metric", "status"]]
      model_spec task metric status
    0       demo  fid    fid     ok
    >>> bool(df.loc[0, "value"] > 0)
    True
    """
    from evalsuite.runner import ScoreOptions
    from evalsuite.runner import score as run_score

    known = {f.name for f in dataclasses.fields(ScoreOptions)} - set(_SCORE_ARGS)
    unknown = sorted(set(task_options) - known)
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)} for score()",
                         f"use the ScoreOptions names: {', '.join(sorted(known))}")
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    with ExitStack() as stack:
        # a Path is a folder of samples; strings are specs, as on the CLI; objects go through the python: path
        spec = f"folder:{os.fspath(model)}" if isinstance(model, os.PathLike) else _spec_of(model, stack)
        for key in _OBJECT_OPTIONS:
            if key in task_options:
                task_options[key] = _spec_of(task_options[key], stack)
        for key in ("prompts",):
            if task_options.get(key) is not None:
                task_options[key] = Path(task_options[key])
        if store is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=_TMP_PREFIX)))
        else:
            root = Path(store).expanduser()
        options = ScoreOptions(tasks=list(tasks) if tasks is not None else None, suite=suite, store=root,
                               **task_options)
        summary = run_score(spec, options)
        return RunResult(summary.run_id, None if store is None else Path(summary.store), summary.results)


def load_results(store: str | os.PathLike, *, runs: str | Sequence[str] | None = None,
                 include_skipped: bool = True) -> pd.DataFrame:
    """Every result in a results store (or only `runs`, by id or unique prefix) as a DataFrame with one row per
    model x task x metric and the provenance columns of `RunResult.metrics()`, oldest run first. Unusable result
    files are skipped with a StoreWarning naming them, as `evalsuite runs` does.

    >>> import tempfile, torch
    >>> from evalsuite import load_results, score
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.GroupNorm(1, 3), torch.nn.Conv2d(3, 8, 3, stride=4), torch.nn.Tanh(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    >>> net.preprocessing = {"resize": "none", "input_dtype": "float255"}
    >>> with tempfile.TemporaryDirectory() as store:
    ...     run = score("demo", tasks=["fid", "kid"], num_samples=6, ref="model:demo", extractor=net,
    ...                 store=store, progress=False)
    ...     df = load_results(store)
    >>> df[["task", "metric", "status"]]
      task   metric status
    0  fid      fid     ok
    1  kid      kid     ok
    2  kid  kid_std     ok
    >>> bool((df["run_id"] == run.run_id).all())
    True
    """
    from evalsuite.results import ResultsStore

    root = Path(store).expanduser()
    if not root.is_dir():
        raise InputError(f"results store {root} does not exist or is not a folder",
                         "pass the folder given as --store (or score(..., store=PATH))")
    results = ResultsStore(root)
    wanted = [runs] if isinstance(runs, str) else list(runs) if runs is not None else None
    run_ids = [r["run_id"] for r in reversed(results.runs())] if wanted is None else wanted  # oldest run first
    docs = []
    for run_id in run_ids:
        stored = results.load_run(run_id)
        manifest = results.read_manifest(stored[0]["run_id"]) if stored else None
        order = {t: i for i, t in enumerate((manifest or {}).get("tasks", []))}
        docs += sorted(stored, key=lambda d: (order.get(d["task"], len(order)), d["task"]))
    return _frame(docs, include_skipped)
