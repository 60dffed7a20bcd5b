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
* `score` is `evalsuite score` (the CLI's `score` calls it), `resume` is `score --resume`; `load_results` reads
  a results store like `evalsuite runs`.

A feature network may be a registered name (`inception`, `clip`, `vgg16`, `i3d`, `videomae:FILE`), a
`python:module:factory` spec, or an `nn.Module` object. An object is handed to the engine's `python:` path under
the spec `python:evalsuite.api:in_memory.<Class>_<hash>` (the hash covers its class and weights, so the feature
cache is shared between calls with the same network); it declares `preprocessing` (and `num_features`) as a
`python:` extractor does. Errors are the usual one-line evalsuite errors (`InputError`, `UnknownNameError`,
`MissingWeightsError`, `IncompatibleStatsError`), with the fix.

This module holds the functions and the calls into the engine; `evalsuite.api_inputs` turns what they are given
(folders, lists, batches, statistics, objects) into what the engine reads, and `evalsuite.result_frames` holds
`RunResult` and `load_results` (the DataFrames), both re-exported here. (Over 400 lines because every public
function carries its runnable doctest example; the code itself is about half of it.)
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Union

from evalsuite.api_inputs import Side as _Side
from evalsuite.api_inputs import in_memory as in_memory  # the module python:evalsuite.api:in_memory.NAME names
from evalsuite.api_inputs import side as _side
from evalsuite.api_inputs import spec_of as _spec_of
from evalsuite.api_inputs import stats_file as _stats_file
from evalsuite.errors import InputError
from evalsuite.result_frames import RESULT_COLUMNS, RunResult, load_results

if TYPE_CHECKING:
    import numpy as np
    import torch

    from evalsuite.refstats import ReferenceStats

__all__ = ["KID", "RESULT_COLUMNS", "RunResult", "compute_fid", "compute_fvd", "compute_kid", "frechet_distance",
           "load_results", "resume", "score"]

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
        summary = run_score(f"folder:{a.value}", ScoreOptions.with_legacy(tasks=[task], store=Path(store),
                                                                          **ref_option, **options))
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


_SCORE_ARGS = ("model", "tasks", "suite", "store", "task_options")
_OBJECT_OPTIONS = ("extractor", "pr_extractor", "autoencoder", "video_model")  # may be objects, not only specs
_PLAIN = (str, int, float, bool, type(None), os.PathLike)


def score(model: Any, tasks: str | Sequence[str] | None = None, *, suite: str | None = None,
          store: str | os.PathLike | None = None, options: Mapping[str, Any] | None = None,
          **run_options: Any) -> RunResult:
    """Score `model` on `tasks` (or `suite`, or the model's default suite), as `evalsuite score` does.

    `model` is a spec (`demo`, `folder:PATH`, `python:pkg.module:factory`, `diffusers:PATH`, ...), a `pathlib.Path`
    to a folder of samples, or an object with `generate(prompts, seeds)` (or `encode`/`decode`) as a `python:`
    factory returns. `tasks`: a list or a comma-separated string. `store=None` (default) scores in a temporary store
    that is deleted before this returns: nothing is written to the working folder or `$EVALSUITE_STORE` (the feature
    cache in `$EVALSUITE_HOME` is still used), and the results live only in the returned RunResult (such a run
    cannot be resumed). `store=PATH` keeps them there like `--store PATH`.

    `run_options` are the run-wide settings by their `ScoreOptions` names (`num_samples`, `seed`, `ref`,
    `extractor`, `batch_size`, `device`, `strict`, ...; `extractor`, `autoencoder` and `video_model` may also be
    objects). `options` are the tasks' own options as `-o` takes them: `{"geneval.detector": "...",
    "images_per_prompt": 2}` (a bare NAME sets it for every task of the run that declares it; `evalsuite tasks
    --options` lists them); the old flat names (`kid_subsets=50`, `detector=...`) are accepted in `run_options` too.

    >>> import torch
    >>> from evalsuite import score
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.GroupNorm(1, 3), torch.nn.Conv2d(3, 8, 3, stride=4), torch.nn.Tanh(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    >>> net.preprocessing = {"resize": "none", "input_dtype": "float255"}
    >>> run = score("demo", tasks="fid,kid", num_samples=6, ref="model:demo", extractor=net, progress=False,
    ...             options={"kid.subsets": 10, "kid.subset_size": 4})
    >>> run.store is None  # nothing was stored
    True
    >>> df = run.metrics()
    >>> df[["model_spec", "task", "metric", "status"]]
      model_spec task   metric status
    0       demo  fid      fid     ok
    1       demo  kid      kid     ok
    2       demo  kid  kid_std     ok
    >>> run["kid"]["provenance"]["task_options"]
    {'protocol_samples': 50000, 'subsets': 10, 'subset_size': 4}
    """
    from evalsuite import task_options
    from evalsuite.runner import ScoreOptions
    from evalsuite.runner import score as run_score

    known = ({f.name for f in dataclasses.fields(ScoreOptions)} | set(task_options.LEGACY_ALIASES)) - set(_SCORE_ARGS)
    unknown = sorted(set(run_options) - known)
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)} for score()",
                         "pass run-wide settings by their ScoreOptions names (num_samples, seed, ref, extractor, ...) "
                         "and task options as options={'TASK.NAME': VALUE}; " + task_options.LIST_FIX)
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    with ExitStack() as stack:
        # a Path is a folder of samples; strings are specs, as on the CLI; objects go through the python: path
        spec = f"folder:{os.fspath(model)}" if isinstance(model, os.PathLike) else _spec_of(model, stack)
        for key in _OBJECT_OPTIONS:
            if key in run_options:
                run_options[key] = _spec_of(run_options[key], stack)
        for key in ("prompts",):
            if run_options.get(key) is not None:
                run_options[key] = Path(run_options[key])
        settings = task_options.parse_assignments([])  # {} : filled from `options`, objects as python: specs
        for key, value in (options or {}).items():
            task, dot, name = str(key).rpartition(".")
            task_options.add(settings, task if dot else task_options.ALL_TASKS, name,
                             value if isinstance(value, _PLAIN) else _spec_of(value, stack))
        if store is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=_TMP_PREFIX)))
        else:
            root = Path(store).expanduser()
        opts = ScoreOptions.with_legacy(tasks=list(tasks) if tasks is not None else None, suite=suite, store=root,
                                        task_options=settings, **run_options)
        summary = run_score(spec, opts)
        return RunResult(summary.run_id, None if store is None else Path(summary.store), summary.results)


def resume(run_id: str, store: str | os.PathLike, *, model: str | None = None, progress: bool = True) -> RunResult:
    """Finish an interrupted run of a store (`evalsuite score --resume RUN_ID`): its tasks without a result, for
    the same model, with the options stored with the run; returns every result of the run."""
    from evalsuite.runner import resume as resume_run

    summary = resume_run(run_id, Path(store).expanduser(), model, progress=progress)
    return RunResult(summary.run_id, Path(summary.store), summary.results)
