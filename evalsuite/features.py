"""Feature engine: files -> features -> streaming statistics, with a content-addressed feature cache.

Decoding, hashing, cache look-up and resizing run in DataLoader worker processes (or, where the network has every
core, in threads between forward passes); the network runs in the main process under `torch.inference_mode`. The
cache key is (extractor id, weights sha256, preprocessing, file sha256), so no image is featurised twice, whatever
its name or folder.
"""

from __future__ import annotations

import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from evalsuite import config
from evalsuite.errors import InputError
from evalsuite.extractors import Extractor
from evalsuite.fsutil import atomic_write_bytes
from evalsuite.hashing import sha256_file, sha256_json
from evalsuite.imageio import read_rgb
from evalsuite.stats import StreamingStats


class FeatureCache:
    """One folder per extractor key; one `.npy` per file content hash, written atomically. An entry is one feature
    vector of the key's `dim`, or an array of the `shape` its reader asks for (e.g. a whole batch file's features)."""

    def __init__(self, key: dict, root: Path | None = None):
        self.key = key
        self.root = root or config.features_dir()
        self.dir = self.root / sha256_json(key)[:24]

    def _path(self, content_sha: str) -> Path:
        return self.dir / content_sha[:2] / f"{content_sha}.npy"

    def get(self, content_sha: str, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
        """The cached features of a file (shape `(dim,)` unless `shape` says otherwise), or None."""
        path = self._path(content_sha)
        if path.is_symlink():
            return None  # never read through a link; put() then refuses it with an error naming the file
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None  # absent, or a damaged entry: recompute (and overwrite it) rather than trust it
        if arr.shape != (shape or (self.key["dim"],)) or arr.dtype != np.float32 or not np.isfinite(arr).all():
            return None
        return arr

    def put(self, content_sha: str, feat: np.ndarray) -> None:
        path = self._path(content_sha)
        key_file = self.dir / "key.json"
        if not key_file.exists():
            atomic_write_bytes(key_file, json.dumps(self.key, indent=1).encode(), root=self.root)
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(feat, dtype=np.float32), allow_pickle=False)
        atomic_write_bytes(path, buf.getvalue(), root=self.root)


@dataclass
class FeatureResult:
    """What extraction produced: statistics over the usable files, their features if kept, and counted skips."""

    key: dict
    stats: StreamingStats
    files: list[str]
    content_sha256: list[str]
    features: np.ndarray | None = None
    skipped: list[dict] = field(default_factory=list)
    n_cached: int = 0
    n_computed: int = 0

    @property
    def n(self) -> int:
        return self.stats.n


class CachedFileDataset(Dataset):
    """Worker-side work for one file: hash it, return its cached feature if there is one, else `load` it (an
    InputError becomes a counted skip). Subclasses say how a file becomes network input."""

    def __init__(self, files: Sequence[Path], preprocessing: Any, cache: FeatureCache | None):
        self.files = list(files)
        self.preprocessing = preprocessing
        self.cache = cache

    def __len__(self) -> int:
        return len(self.files)

    def load(self, path: Path) -> dict:
        """{"input": array, ...extra fields}; raise InputError for an unusable file."""
        raise NotImplementedError

    def cached_extra(self, path: Path) -> dict:
        """Fields to report for a file served from the cache (e.g. a video's resolution)."""
        return {}

    def __getitem__(self, i: int) -> dict:
        item = self.lookup(i)
        return item if "feature" in item or "error" in item else self.complete(item)

    def lookup(self, i: int) -> dict:
        """Hash file `i` and look it up: its cached feature, a read error, or {"index", "sha"} still to `complete`."""
        path = self.files[i]
        try:
            content_sha = sha256_file(path)
        except OSError as exc:
            return {"index": i, "error": f"cannot read {path}: {exc}"}
        cached = self.cache.get(content_sha) if self.cache else None
        if cached is not None:
            return {"index": i, "sha": content_sha, "feature": cached, **self.cached_extra(path)}
        return {"index": i, "sha": content_sha}

    def complete(self, item: dict) -> dict:
        """The looked-up item with its network input (`load`), or the reason the file cannot be used."""
        try:
            return {**item, **self.load(self.files[item["index"]])}
        except InputError as exc:
            return {**item, "error": exc.message}


class _FileDataset(CachedFileDataset):
    """Images: decoded to RGB uint8 and preprocessed (resize) in the worker."""

    def load(self, path: Path) -> dict:
        return {"input": self.preprocessing(read_rgb(path))}


def _collate(items: list[dict]) -> list[dict]:
    return items


def _threaded_batches(dataset: CachedFileDataset, batch_size: int) -> Iterator[list[dict]]:
    """The batches a worker-less DataLoader would give, in order: each file hashed and looked up in the cache here
    (np.load parses headers with `ast`, which CPython 3.11 does not allow on two threads at once), then the batch's
    uncached images decoded and resized on every core at once by threads (PIL releases the GIL). It runs between
    forward passes, while the network's threads wait, so unlike a worker process it never preempts them."""
    threads = min(os.cpu_count() or 1, batch_size)
    with ThreadPoolExecutor(threads, thread_name_prefix="evalsuite-load") as pool:
        for start in range(0, len(dataset), batch_size):
            items = [dataset.lookup(i) for i in range(start, min(start + batch_size, len(dataset)))]
            todo = [n for n, item in enumerate(items) if "feature" not in item and "error" not in item]
            for n, done in zip(todo, pool.map(dataset.complete, [items[n] for n in todo])):
                items[n] = done
            yield items


def default_workers(device: torch.device | str | None = None, layout: str = "image") -> int:
    """DataLoader worker processes: min(8, cores), except 0 for images whose network runs on every core of this
    CPU: a worker decoding there preempts one of the network's threads, and the others wait for it at every layer
    (InceptionV3 at N = 300 on 2 cores: 24.4 s with 2 workers, 23.7 s with none). Videos decode in workers."""
    cores = os.cpu_count() or 1
    on_every_core = device is not None and torch.device(device).type == "cpu" and torch.get_num_threads() >= cores
    return 0 if on_every_core and layout == "image" else min(8, cores)


def extract(
    files: Sequence[str | Path],
    extractor: Extractor,
    *,
    batch_size: int = 64,
    num_workers: int | None = None,
    keep_features: bool = False,
    use_cache: bool = True,
    cache_root: Path | None = None,
    progress: bool = True,
    desc: str = "features",
) -> FeatureResult:
    """Featurise image `files` in order; unreadable images and non-finite features are skipped and counted."""
    cache = FeatureCache(extractor.cache_key, cache_root) if use_cache else None
    dataset = _FileDataset([Path(f) for f in files], extractor.preprocessing, cache)
    return extract_dataset(dataset, extractor, cache, batch_size=batch_size, num_workers=num_workers,
                           keep_features=keep_features, progress=progress, desc=desc)


def extract_dataset(
    dataset: CachedFileDataset,
    extractor: Extractor,
    cache: FeatureCache | None,
    *,
    batch_size: int,
    num_workers: int | None,
    keep_features: bool,
    progress: bool,
    desc: str,
    unit: str = "img",
    layout: str = "image",
    prefetch_factor: int = 4,
    on_kept: Callable[[dict], None] | None = None,
) -> FeatureResult:
    """The one feature loop for images and videos: workers return cached features, errors or preprocessed inputs
    (items with index/sha/feature/error/input); the network runs here; statistics stream in float64."""
    workers = default_workers(extractor.device, layout) if num_workers is None else num_workers
    loader: Iterable[list[dict]]
    if workers > 0 or layout != "image":  # (video decoders keep to one thread: their own threads decode)
        loader = DataLoader(dataset, batch_size=max(1, batch_size), shuffle=False, num_workers=workers,
                            collate_fn=_collate, persistent_workers=False,
                            prefetch_factor=prefetch_factor if workers > 0 else None)
    else:
        loader = _threaded_batches(dataset, max(1, batch_size))
    files = dataset.files
    stats = StreamingStats(extractor.dim)
    kept_files: list[str] = []
    kept_sha: list[str] = []
    kept_feats: list[np.ndarray] = []
    skipped: list[dict] = []
    n_cached = n_computed = 0
    with tqdm(total=len(dataset), desc=desc, unit=unit, disable=not progress) as bar:
        for batch in loader:
            feats: dict[int, np.ndarray] = {}
            to_compute = []
            for item in batch:
                if "error" in item:
                    skipped.append({"file": str(files[item["index"]]), "reason": item["error"]})
                elif "feature" in item:
                    feats[item["index"]] = item["feature"]
                    n_cached += 1
                else:
                    to_compute.append(item)
            computed = run_network(extractor, [it["input"] for it in to_compute], layout)
            for item, feat in zip(to_compute, computed):
                if not np.isfinite(feat).all():
                    skipped.append({"file": str(files[item["index"]]),
                                    "reason": "feature vector holds NaN or inf (extractor output)"})
                    continue
                feat = feat.astype(np.float32)
                if cache is not None:
                    cache.put(item["sha"], feat)
                feats[item["index"]] = feat
                n_computed += 1
            ordered = [item for item in batch if item["index"] in feats]
            if ordered:
                block = np.stack([feats[item["index"]] for item in ordered]).astype(np.float32)
                stats.update(block)
                kept_files.extend(str(files[item["index"]]) for item in ordered)
                kept_sha.extend(item["sha"] for item in ordered)
                for item in ordered:
                    if on_kept:
                        on_kept(item)
                if keep_features:
                    kept_feats.append(block)
            bar.update(len(batch))
    features = np.concatenate(kept_feats) if keep_features and kept_feats else None
    if keep_features and features is None:
        features = np.zeros((0, extractor.dim), dtype=np.float32)
    return FeatureResult(extractor.key, stats, kept_files, kept_sha, features, skipped, n_cached, n_computed)


_LAYOUTS = {"image": (0, 3, 1, 2), "video": (0, 4, 1, 2, 3)}  # NHWC -> NCHW; NTHWC -> NCTHW


CPU_IMAGE_NETWORK_BATCH = 8  # images per forward pass on a CPU: activations stay in cache (InceptionV3 on the
# project's 2-core EPYC: 29.6 ms/image at 8, 37.6 ms at 50; benchmarks/network_batch.py measures it)


def _network_batch(device: torch.device, layout: str) -> int | None:
    """How many inputs one forward pass takes: a cache-sized chunk for images on a CPU, the whole batch elsewhere
    (GPUs want large batches). A fixed rule, not a timing, so the same inputs always meet the same arithmetic."""
    return CPU_IMAGE_NETWORK_BATCH if device.type == "cpu" and layout == "image" else None


def _in_chunks(network: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or len(batch) <= size:
        return network(batch)
    return torch.cat([network(batch[i:i + size]) for i in range(0, len(batch), size)])


def run_network(extractor: Extractor, inputs: list[np.ndarray], layout: str = "image") -> list[np.ndarray]:
    """Run the network on preprocessed arrays (HWC images or THWC clips); equal shapes go as one batch, mixed
    shapes one by one. Exact float32 unless the extractor is in fast mode (TF32 + autocast)."""
    if not inputs:
        return []
    groups: dict[tuple, list[int]] = {}
    for i, arr in enumerate(inputs):
        groups.setdefault(arr.shape, []).append(i)
    out: list[np.ndarray | None] = [None] * len(inputs)
    cuda = extractor.device.type == "cuda"
    if cuda:  # fidelity first: full float32 matmuls, no TF32, unless fast mode was asked for
        torch.backends.cuda.matmul.allow_tf32 = extractor.fast
        torch.backends.cudnn.allow_tf32 = extractor.fast
    autocast = torch.autocast(device_type="cuda" if cuda else "cpu", dtype=torch.float16 if cuda else torch.bfloat16,
                              enabled=extractor.fast)
    unit = "clips" if layout == "video" else "images"
    with torch.inference_mode(), autocast:
        for idx in groups.values():
            batch = torch.from_numpy(np.stack([inputs[i] for i in idx])).permute(*_LAYOUTS[layout])
            memory = torch.channels_last if layout == "image" else torch.contiguous_format
            batch = batch.to(extractor.device).contiguous(memory_format=memory)
            try:
                feats = _in_chunks(extractor.runner(layout), batch, _network_batch(extractor.device, layout))
            except RuntimeError as exc:
                raise InputError(f"extractor {extractor.id} failed on {unit} of shape {tuple(batch.shape)}: {exc}",
                                 "check the input size the network expects (for video networks, --frames) and "
                                 "that the inputs are RGB") from exc
            if feats.ndim != 2 or feats.shape[0] != len(idx) or feats.shape[1] != extractor.dim:
                raise InputError(
                    f"extractor {extractor.id} returned features of shape {tuple(feats.shape)}, "
                    f"expected ({len(idx)}, {extractor.dim})",
                    f"make the extractor return one flat feature vector per {unit[:-1]} and declare num_features",
                )
            feats_np = feats.detach().float().cpu().numpy()
            for row, i in enumerate(idx):
                out[i] = feats_np[row]
    return out  # type: ignore[return-value]
