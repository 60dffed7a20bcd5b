"""Reference statistics: `.npz` files with `mu`, `sigma` (+ `n`, `meta` JSON, optional `feats` for KID) and a
manifest naming them. Shipped entries live in the repository's `reference_stats/`, user ones in EVALSUITE_HOME.

Reads clean-fid and pytorch-fid files (`mu`, `sigma`; clean-fid's `_kid.npz` holds `feats`). Scoring refuses
statistics whose extractor, weights or preprocessing differ from the run's, and says which.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from evalsuite import config
from evalsuite.errors import IncompatibleStatsError, InputError, UnknownNameError
from evalsuite.fsutil import atomic_write, atomic_write_bytes
from evalsuite.hashing import sha256_file
from evalsuite.stats import StreamingStats

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "reference_stats"
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


def save_npz(ref: ReferenceStats, path: Path) -> str:
    """Write atomically; returns the file's sha256 (the statistics' identity in results)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"mu": ref.mu.astype(np.float64), "sigma": ref.sigma.astype(np.float64),
              "n": np.int64(ref.n or 0), "meta": np.array(json.dumps(ref.meta, sort_keys=True))}
    if ref.feats is not None:
        arrays["feats"] = ref.feats.astype(np.float32)
    atomic_write(path, lambda tmp: np.savez(tmp, **arrays), suffix=".tmp.npz")
    return sha256_file(path)


def load_npz(path: str | Path, name: str | None = None, manifest_meta: dict | None = None) -> ReferenceStats:
    """Read an evalsuite, clean-fid or pytorch-fid statistics file; wrong keys or shapes name the file and fix."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"statistics file {path} does not exist", "check the path, or list names with `evalsuite ref list`")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read statistics file {path}: {exc}",
                         "it must be a .npz written by numpy.savez with arrays mu and sigma") from exc
    feats = arrays.get("feats")
    if "mu" not in arrays or "sigma" not in arrays:
        if feats is None:
            raise InputError(f"statistics file {path} has keys {sorted(arrays)}, but needs 'mu' and 'sigma'",
                             "save it with np.savez(path, mu=mu, sigma=sigma) (clean-fid and pytorch-fid do)")
        feats64 = np.asarray(feats, dtype=np.float64)
        stream = StreamingStats(feats64.shape[1])
        stream.update(feats64)
        arrays["mu"], arrays["sigma"], arrays["n"] = stream.mean, stream.cov(True), np.int64(stream.n)
    mu = np.asarray(arrays["mu"], dtype=np.float64).reshape(-1)
    sigma = np.asarray(arrays["sigma"], dtype=np.float64)
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise InputError(f"statistics file {path}: sigma has shape {sigma.shape} but mu has dimension {mu.shape[0]}",
                         "sigma must be the (d, d) covariance of the d-dimensional features whose mean is mu")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise InputError(f"statistics file {path} holds NaN or inf values", "rebuild the statistics")
    if feats is not None and (feats.ndim != 2 or feats.shape[1] != mu.shape[0]):
        raise InputError(f"statistics file {path}: feats has shape {feats.shape}, expected (N, {mu.shape[0]})",
                         "store the reference features as an (N, d) array")
    meta = dict(manifest_meta or {})
    if "meta" in arrays:
        meta.update(json.loads(str(arrays["meta"])))
    n = int(arrays["n"]) if "n" in arrays and int(arrays["n"]) > 0 else meta.get("n")
    return ReferenceStats(name or path.stem, mu, sigma, n, meta, feats, path, id=f"{name or path.stem}@{sha256_file(path)[:16]}")


def check_compatible(ref: ReferenceStats, key: dict) -> None:
    """Refuse statistics made with another extractor, weights, preprocessing or dimension than `key`."""
    label = f"reference '{ref.name}'" + (f" ({ref.path})" if ref.path else "")
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
    path = _manifest_path(root)
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
            return load_npz(Path(entry["root"]) / entry["file"], name, meta)
    raise UnknownNameError(f"unknown reference statistics '{name}'",
                           "list them with `evalsuite ref list`; add one with `ref build` or `ref import`")


def register(ref: ReferenceStats) -> dict:
    """Save `ref` into the user reference folder and add it to that manifest (replacing an entry of that name)."""
    root = config.user_reference_dir()
    file = f"{ref.name}.npz"
    digest = save_npz(ref, root / file)
    entry = {"name": ref.name, "file": file, "sha256": digest, "n": ref.n,
             "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             **{k: v for k, v in ref.meta.items() if k != "n"}}
    current = [e for e in _read_manifest(root) if e["name"] != ref.name]
    current = [{k: v for k, v in e.items() if k != "root"} for e in current] + [entry]
    data = json.dumps({"schema": "evalsuite.reference_stats/1", "stats": current}, indent=1).encode()
    atomic_write_bytes(_manifest_path(root), data)
    return entry


def import_npz(name: str, file: str | Path, key: dict, source: str, covariance: str = "unbiased") -> dict:
    """Import a clean-fid / pytorch-fid / evalsuite `.npz`, recording the extractor key it was made with."""
    ref = load_npz(file, name)
    if ref.dim != key["dim"]:
        raise InputError(f"{file} holds {ref.dim}-d statistics but extractor {key['extractor']} gives {key['dim']}-d",
                         "pass the --extractor the statistics were computed with")
    ref.meta = {**key, **{k: v for k, v in ref.meta.items() if k in COMPARED_FIELDS},
                "source": source or str(file), "covariance": ref.meta.get("covariance", covariance),
                "imported_from": str(file)}
    return register(ref)


# ------------------------------------------------------------------------------------------------ building and comparing
def build(name: str, folder: str | Path, extractor_spec: str = "inception", *, device: str = "cpu",
          batch_size: int = 32, num_workers: int | None = None, offline: bool | None = None,
          keep_features: bool = True, strict: bool = False, progress: bool = True,
          sampling: dict | None = None) -> dict:
    """Compute reference statistics (and features, for KID) of a folder and register them as `name`: images with an
    image extractor, videos with a video one (i3d, videomae:PATH; `sampling` = frames, stride, start; the biased
    covariance FVD uses)."""
    from evalsuite import video_features

    from evalsuite.videoio import VIDEO_EXTENSIONS

    named_video = video_features.is_video_spec(extractor_spec) and not extractor_spec.startswith("python:")
    holds_videos = any(p.suffix.lower() in VIDEO_EXTENSIONS for p in Path(folder).rglob("*") if p.is_file()) \
        if Path(folder).is_dir() else False
    video = named_video or (extractor_spec.startswith("python:") and holds_videos)  # python: nets by the data
    if video:
        from evalsuite.videoio import list_videos

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


def resolve_file_or_name(spec: str) -> ReferenceStats:
    """A statistics file path or a registered name."""
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
