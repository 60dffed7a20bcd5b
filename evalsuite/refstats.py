"""Reference statistics: `.npz` files with `mu`, `sigma` (+ `n`, `meta` JSON, optional `feats` for KID) and a
manifest naming them. Shipped entries live in the repository's `reference_stats/`, user ones in EVALSUITE_HOME.

Reads clean-fid and pytorch-fid files (`mu`, `sigma`; clean-fid's `_kid.npz` holds `feats`). Scoring refuses
statistics whose extractor, weights or preprocessing differ from the run's, and says which.
"""

from __future__ import annotations

import json
import math
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evalsuite import config
from evalsuite.errors import IncompatibleStatsError, InputError, UnknownNameError
from evalsuite.fsutil import atomic_write, atomic_write_bytes, check_name, inside, package_dir, refuse_symlink
from evalsuite.hashing import sha256_file
from evalsuite.stats import StreamingStats

if TYPE_CHECKING:
    from evalsuite.features import FeatureResult

SHIPPED_DIR = package_dir("evalsuite.reference_stats")  # the installed package
COMPARED_FIELDS = ("extractor", "weights_sha256", "preprocessing", "dim")


@dataclass
class ReferenceStats:
    """Mean and covariance of a reference feature set, with what made them."""

    name: str
    mu: np.ndarray
    sigma: np.ndarray
    n: int | None
    meta: dict
    feats: np.ndarray | None = None
    path: Path | None = None
    id: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.mu.shape[0])

    def covariance(self, unbiased: bool) -> np.ndarray:
        """The covariance with the requested normalisation, converted from the stored one when N is known."""
        stored_unbiased = self.meta.get("covariance", "unbiased") == "unbiased"
        if stored_unbiased == unbiased:
            return self.sigma
        if not self.n:
            raise InputError(f"reference {self.name} does not record N, so its covariance cannot be converted",
                             "rebuild it with `evalsuite ref build`, or use the covariance it was stored with")
        factor = (self.n - 1) / self.n if stored_unbiased else self.n / (self.n - 1)
        return self.sigma * factor


def from_stream(name: str, stats: StreamingStats, key: dict, source: str, feats: np.ndarray | None = None,
                unbiased: bool = True) -> ReferenceStats:
    meta = {**key, "n": stats.n, "source": source, "covariance": "unbiased" if unbiased else "biased"}
    return ReferenceStats(name, stats.mean, stats.cov(unbiased), stats.n, meta, feats, id=f"{name}")


def save_npz(ref: ReferenceStats, path: Path, root: Path | None = None) -> str:
    """Write atomically (never through a link, inside `root` when given); returns the file's sha256 (the
    statistics' identity in results)."""
    arrays: dict[str, Any] = {"mu": ref.mu.astype(np.float64), "sigma": ref.sigma.astype(np.float64),
              "n": np.int64(ref.n or 0), "meta": np.array(json.dumps(ref.meta, sort_keys=True))}
    if ref.feats is not None:
        arrays["feats"] = ref.feats.astype(np.float32)
    atomic_write(path, lambda tmp: np.savez(tmp, **arrays), suffix=".tmp.npz", root=root)
    return sha256_file(path)


MAX_STATS_BYTES = 4 << 30  # the arrays of one statistics file, uncompressed (50k x 4096 float64 features: 1.6 GB)
_STATS_KINDS = {"mu": "f", "sigma": "f", "feats": "f", "n": "iu", "meta": "U"}  # numpy dtype kinds per key
_KIND_NAMES = {"f": "a real float array", "iu": "an integer", "U": "a JSON string"}
_NPZ_FIX = ("it must be a .npz written by numpy.savez: float arrays mu (d,) and sigma (d, d) (clean-fid and "
            "pytorch-fid write these), optionally feats (N, d), an integer n and a meta JSON string; rebuild it "
            "with `evalsuite ref build` if it was damaged")
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError)


def _bad_stats(path: Path, problem: str, fix: str = _NPZ_FIX) -> InputError:
    return InputError(f"statistics file {path} {problem}", fix)


def _read_npz(path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """The statistics arrays of a .npz (and the names of all it holds), each .npy header checked before its data is
    read: pickled object arrays, structured or unexpected dtypes, negative shapes and sizes over MAX_STATS_BYTES or
    beyond the data are refused. Arrays other than mu, sigma, feats, n and meta are never read."""
    arrays: dict[str, np.ndarray] = {}
    total = 0
    try:
        with zipfile.ZipFile(path) as zf:
            members = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
            for key, kinds in _STATS_KINDS.items():
                if key not in members:
                    continue
                with zf.open(members[key]) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version not in ((1, 0), (2, 0)):
                        raise _bad_stats(path, f"stores '{key}' in .npy format {version}, not 1.0 or 2.0")
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, fortran, dtype = read_header(fh)
                    if dtype.hasobject:
                        raise _bad_stats(path, f"holds '{key}' as a pickled object array (refused: unpickling a "
                                               "file can run code)")
                    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in kinds:
                        raise _bad_stats(path, f"holds '{key}' with dtype {dtype}, expected {_KIND_NAMES[kinds]}")
                    if any(s < 0 for s in shape):
                        raise _bad_stats(path, f"declares '{key}' with the negative shape {shape}")
                    nbytes = math.prod(shape) * dtype.itemsize
                    total += nbytes
                    if total > MAX_STATS_BYTES:
                        raise _bad_stats(path, f"declares '{key}' of shape {shape} ({nbytes} bytes): more than the "
                                               f"{MAX_STATS_BYTES} bytes of arrays a statistics file may hold")
                    held = members[key].file_size - fh.tell()
                if nbytes > held:
                    raise _bad_stats(path, f"declares '{key}' of shape {shape} ({nbytes} bytes) but holds "
                                           f"{held} bytes (truncated or damaged)")
                with zf.open(members[key]) as fh:  # checked: numpy reads into an array of the declared size
                    arrays[key] = np.lib.format.read_array(fh, allow_pickle=False)
    except InputError:
        raise
    except _READ_ERRORS as exc:
        problem = " ".join(str(exc).split())[:200]
        raise _bad_stats(path, f"is not a readable .npz archive ({type(exc).__name__}: {problem})") from exc
    return arrays, sorted(members)


def _stats_meta(path: Path, stored: np.ndarray | None, manifest_meta: dict | None) -> dict:
    """The manifest entry's fields updated by the file's `meta` JSON object; the fields evalsuite reads are
    type-checked."""
    meta = dict(manifest_meta or {})
    if stored is not None:
        if stored.shape != ():
            raise _bad_stats(path, f"holds meta of shape {stored.shape}, expected one JSON string")
        try:
            loaded = json.loads(str(stored[()]))
        except (ValueError, RecursionError) as exc:
            raise _bad_stats(path, f"holds a meta that is not valid JSON ({type(exc).__name__}: "
                                   f"{str(exc)[:120]})") from exc
        if not isinstance(loaded, dict):
            raise _bad_stats(path, f"holds a meta JSON {type(loaded).__name__}, expected an object")
        meta.update(loaded)
    for f in COMPARED_FIELDS[:3] + ("source",):
        if meta.get(f) is not None and not isinstance(meta[f], str):
            raise _bad_stats(path, f"records {f} as {type(meta[f]).__name__}, expected a string")
    if meta.get("covariance", "unbiased") not in ("unbiased", "biased"):
        raise _bad_stats(path, f"records covariance {meta['covariance']!r}, expected 'unbiased' or 'biased'")
    return meta


def _stats_count(path: Path, stored: np.ndarray | None, meta: dict) -> int | None:
    """N: the `n` array (0 = unknown), else meta's n; None when unknown; 1 or negative is refused."""
    if stored is not None and stored.size != 1:
        raise _bad_stats(path, f"holds n of shape {stored.shape}, expected one integer")
    n = int(stored.reshape(-1)[0]) if stored is not None else 0
    if n == 0:
        n = meta.get("n") or 0
        if isinstance(n, bool) or not isinstance(n, int):
            raise _bad_stats(path, f"records n as {n!r}, expected an integer")
    if n < 0 or n == 1:
        raise _bad_stats(path, f"records n = {n}: statistics need at least 2 samples")
    return n or None


def load_npz(path: str | Path, name: str | None = None, manifest_meta: dict | None = None) -> ReferenceStats:
    """Read an evalsuite, clean-fid or pytorch-fid statistics file; anything malformed (a damaged archive, wrong
    keys, dtypes, ranks or shapes, NaN/inf, an asymmetric sigma, a bad meta or n) is an InputError naming the file
    and the fix. Nothing is converted silently (complex, string or integer statistics are refused)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"statistics file {path} does not exist",
                         "check the path, or list names with `evalsuite ref list`")
    arrays, names = _read_npz(path)
    feats = arrays.get("feats")
    if feats is not None and (feats.ndim != 2 or feats.shape[1] == 0):
        raise _bad_stats(path, f"holds feats of shape {feats.shape}, expected (N, d)",
                         "store the reference features as an (N, d) array")
    if "mu" not in arrays or "sigma" not in arrays:
        if feats is None:
            raise InputError(f"statistics file {path} has keys {names}, but needs 'mu' and 'sigma'",
                             "save it with np.savez(path, mu=mu, sigma=sigma) (clean-fid and pytorch-fid do)")
        if feats.shape[0] < 2:
            raise _bad_stats(path, f"holds {feats.shape[0]} feature vector(s) and no mu/sigma; a covariance needs 2")
        stream = StreamingStats(feats.shape[1])
        stream.update(feats.astype(np.float64))
        arrays["mu"], arrays["sigma"], arrays["n"] = stream.mean, stream.cov(True), np.asarray(stream.n, dtype=np.int64)
    mu = arrays["mu"].astype(np.float64)
    sigma = arrays["sigma"].astype(np.float64)
    if mu.ndim != 1 or mu.shape[0] == 0:
        raise _bad_stats(path, f"holds mu of shape {mu.shape}, expected a (d,) vector")
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise InputError(f"statistics file {path}: sigma has shape {sigma.shape} but mu has dimension {mu.shape[0]}",
                         "sigma must be the (d, d) covariance of the d-dimensional features whose mean is mu")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all() and (feats is None or np.isfinite(feats).all())):
        raise InputError(f"statistics file {path} holds NaN or inf values", "rebuild the statistics")
    if np.abs(sigma - sigma.T).max() > 1e-6 * max(1.0, float(np.abs(sigma).max())):
        raise _bad_stats(path, "holds a sigma that is not symmetric, so it is no covariance", "rebuild the statistics")
    if feats is not None and feats.shape[1] != mu.shape[0]:
        raise InputError(f"statistics file {path}: feats has shape {feats.shape}, expected (N, {mu.shape[0]})",
                         "store the reference features as an (N, d) array")
    meta = _stats_meta(path, arrays.get("meta"), manifest_meta)
    n = _stats_count(path, arrays.get("n"), meta)
    label = name or path.stem
    return ReferenceStats(label, mu, sigma, n, meta, feats, path, id=f"{label}@{sha256_file(path)[:16]}")


def check_compatible(ref: ReferenceStats, key: dict) -> None:
    """Refuse statistics made with another extractor, weights, preprocessing or dimension than `key`."""
    label = f"reference '{ref.name}'" + (f" ({ref.path})" if ref.path else "")
    if not any(ref.meta.get(f) for f in COMPARED_FIELDS[:3]):
        raise IncompatibleStatsError(
            f"{label} does not record the extractor, weights and preprocessing it was computed with (a clean-fid "
            "or pytorch-fid file?), so it cannot be checked against this run",
            f"import it once, naming the extractor that made it: `evalsuite ref import NAME {ref.path or 'FILE.npz'} "
            "--extractor EXT` (inception for clean-fid's and pytorch-fid's FID statistics, clip for clean-fid's "
            "CLIP-FID ones), then pass --ref NAME")
    if ref.dim != key["dim"]:
        raise IncompatibleStatsError(
            f"{label} has dimension {ref.dim}, the run's extractor {key['extractor']} gives {key['dim']}",
            "use statistics built with the same extractor, or rebuild them with `evalsuite ref build`")
    diffs = [f"{f}: reference {ref.meta.get(f)!r} vs run {key[f]!r}" for f in COMPARED_FIELDS[:3]
             if ref.meta.get(f) != key[f]]
    if diffs:
        raise IncompatibleStatsError(
            f"{label} was computed differently from this run ({'; '.join(diffs)})",
            "rebuild the reference with `evalsuite ref build NAME --from FOLDER --extractor ...` using the run's "
            "extractor, or pick the matching --extractor for the run")


# ------------------------------------------------------------------------------------------------ manifest
def _manifest_path(root: Path) -> Path:
    return root / "manifest.json"


def _read_manifest(root: Path) -> list[dict]:
    path = refuse_symlink(_manifest_path(root))
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"reference manifest {path} is not valid JSON: {exc}", "fix or remove the file") from exc
    return [dict(e, root=str(root)) for e in data.get("stats", [])]


def entries() -> list[dict]:
    """Every known reference: shipped ones, then the user's (a user entry with the same name wins)."""
    merged: dict[str, dict] = {}
    for root in (SHIPPED_DIR, config.user_reference_dir()):
        for entry in _read_manifest(root):
            merged[entry["name"]] = entry
    return [merged[k] for k in sorted(merged)]


def load(name: str) -> ReferenceStats:
    for entry in entries():
        if entry["name"] == name:
            meta = {k: v for k, v in entry.items() if k not in ("name", "file", "root", "sha256")}
            root = Path(entry["root"])
            return load_npz(inside(root, root / str(entry["file"]), "the reference folder"), name, meta)
    raise UnknownNameError(f"unknown reference statistics '{name}'",
                           "list them with `evalsuite ref list`; add one with `ref build` or `ref import`")


def register(ref: ReferenceStats) -> dict:
    """Save `ref` into the user reference folder and add it to that manifest (replacing an entry of that name)."""
    root = config.user_reference_dir()
    file = f"{check_name(ref.name, 'reference name')}.npz"
    digest = save_npz(ref, root / file, root)
    entry = {"name": ref.name, "file": file, "sha256": digest, "n": ref.n,
             "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             **{k: v for k, v in ref.meta.items() if k != "n"}}
    current = [e for e in _read_manifest(root) if e["name"] != ref.name]
    current = [{k: v for k, v in e.items() if k != "root"} for e in current] + [entry]
    data = json.dumps({"schema": "evalsuite.reference_stats/1", "stats": current}, indent=1).encode()
    atomic_write_bytes(_manifest_path(root), data, root=root)
    return entry


def import_npz(name: str, file: str | Path, key: dict, source: str, covariance: str = "unbiased") -> dict:
    """Import a clean-fid / pytorch-fid / evalsuite `.npz`, recording the extractor key it was made with."""
    check_name(name, "reference name")
    ref = load_npz(file, name)
    if ref.dim != key["dim"]:
        raise InputError(f"{file} holds {ref.dim}-d statistics but extractor {key['extractor']} gives {key['dim']}-d",
                         "pass the --extractor the statistics were computed with")
    ref.meta = {**key, **{k: v for k, v in ref.meta.items() if k in COMPARED_FIELDS},
                "source": source or str(file), "covariance": ref.meta.get("covariance", covariance),
                "imported_from": str(file)}
    return register(ref)


# ---------------------------------------------------------------------------------------- building and comparing
def build(name: str, folder: str | Path, extractor_spec: str = "inception", *, device: str = "cpu",
          batch_size: int = 32, num_workers: int | None = None, offline: bool | None = None,
          keep_features: bool = True, strict: bool = False, progress: bool = True,
          sampling: dict | None = None) -> dict:
    """Compute reference statistics (and features, for KID) of a folder and register them as `name`: images with an
    image extractor, videos with a video one (i3d, videomae:PATH; `sampling` = frames, stride, start; the biased
    covariance FVD uses)."""
    from evalsuite import video_features
    from evalsuite.videoio import VIDEO_EXTENSIONS

    check_name(name, "reference name")  # before any work

    named_video = video_features.is_video_spec(extractor_spec) and not extractor_spec.startswith("python:")
    holds_videos = any(p.suffix.lower() in VIDEO_EXTENSIONS for p in Path(folder).rglob("*") if p.is_file()) \
        if Path(folder).is_dir() else False
    video = named_video or (extractor_spec.startswith("python:") and holds_videos)  # python: nets by the data
    if video:
        from evalsuite.videoio import list_videos

        result: FeatureResult
        files = list_videos(folder)
        ext = video_features.build(extractor_spec, device, offline, video_features.normalize_sampling(sampling))
        # the real side of an FVD: first 2048 usable videos, seeded random clip starts (video_features)
        result = video_features.extract_reference_videos(files, ext, None, batch_size=batch_size,
                                                         num_workers=num_workers, keep_features=keep_features,
                                                         progress=progress, desc=f"reference {name}")
    else:
        from evalsuite import extractors
        from evalsuite.features import extract
        from evalsuite.imageio import list_images

        files = list_images(folder)
        ext = extractors.build(extractor_spec, device, offline)
        result = extract(files, ext, batch_size=batch_size, num_workers=num_workers, keep_features=keep_features,
                         progress=progress, desc=f"reference {name}")
    if result.skipped and strict:
        first = result.skipped[0]
        raise InputError(f"{len(result.skipped)} file(s) in {folder} could not be used, e.g. {first['file']}: "
                         f"{first['reason']}", "fix or remove them, or run without --strict")
    if result.n < 2:
        raise InputError(f"only {result.n} usable image(s) in {folder}", "a reference needs at least 2 images")
    ref = from_stream(name, result.stats, result.key, source=f"folder:{Path(folder).resolve()}", feats=result.features,
                      unbiased=not video)
    ref.meta["skipped_files"] = len(result.skipped)
    return register(ref)


ADM_PREFIX = "adm:"  # an ADM reference batch (guided-diffusion's VIRTUAL_*.npz): --ref adm:PATH
ADM_EXTRACTOR = "adm-tf-inception-2015-12-05/pool_3"  # the TF graph ADM's evaluator computes its statistics with


def load_adm(path: str | Path) -> ReferenceStats:
    """An ADM reference batch as reference statistics: pool `mu`/`sigma` (what FID compares), the spatial `mu_s`/
    `sigma_s` (sFID) in `extra`, the number of its images (arr_0, for precision/recall) in meta. Its statistics are
    the TF graph's, named as such, so `check_compatible` refuses them for another extractor's features."""
    from evalsuite import adm_npz

    batch = adm_npz.read_reference_batch(path)
    meta = {"extractor": ADM_EXTRACTOR, "source": f"{ADM_PREFIX}{batch.path}", "covariance": "unbiased",
            "format": "adm-reference-batch", "images": batch.num_images, "sha256": batch.sha256, "dim": 2048}
    ref = ReferenceStats(f"{ADM_PREFIX}{batch.path.name}", np.asarray(batch.mu, np.float64),
                         np.asarray(batch.sigma, np.float64), None, meta, path=batch.path,
                         id=f"{ADM_PREFIX}{batch.path.name}@{batch.sha256[:16]}")
    ref.extra = {"mu_s": batch.mu_s, "sigma_s": batch.sigma_s}
    return ref


def resolve_file_or_name(spec: str) -> ReferenceStats:
    """A statistics file path, `adm:PATH` (an ADM reference batch) or a registered name."""
    if spec.startswith(ADM_PREFIX):
        return load_adm(spec[len(ADM_PREFIX):])
    path = Path(spec)
    return load_npz(path) if path.suffix == ".npz" or path.is_file() else load(spec)


def distance(a: str, b: str, *, biased_cov: bool = False, allow_mismatch: bool = False) -> dict:
    """Fréchet distance between two statistics (files or names); refuses ones made by different extractors."""
    from evalsuite.metrics import frechet_distance

    ra, rb = resolve_file_or_name(a), resolve_file_or_name(b)
    if ra.dim != rb.dim:
        raise InputError(f"{a} has dimension {ra.dim} but {b} has {rb.dim}",
                         "compare statistics computed with the same feature extractor")
    mismatched = [f for f in COMPARED_FIELDS[:3] if ra.meta.get(f) and rb.meta.get(f) and ra.meta[f] != rb.meta[f]]
    if mismatched and not allow_mismatch:
        raise IncompatibleStatsError(
            f"{a} and {b} differ in {', '.join(f'{f} ({ra.meta[f]!r} vs {rb.meta[f]!r})' for f in mismatched)}",
            "compare statistics from the same extractor, or pass --allow-mismatch to compute it anyway")
    unbiased = not biased_cov
    value = frechet_distance(ra.mu, ra.covariance(unbiased), rb.mu, rb.covariance(unbiased))
    return {"fd": value, "a": str(a), "b": str(b), "dim": ra.dim, "n_a": ra.n, "n_b": rb.n,
            "covariance": "unbiased" if unbiased else "biased", "mismatched_fields": mismatched}
