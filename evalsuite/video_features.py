"""Video feature engine: video files -> sampled clips -> features -> streaming statistics, with the feature cache.

The video counterpart of `evalsuite.features` (same FeatureCache, FeatureResult and StreamingStats): decoding
(`videoio.read_frames`), hashing, cache look-up and per-frame resizing run in DataLoader worker processes; the
network runs in the main process under `torch.inference_mode`.

Frame sampling is part of every feature key: an extractor's `preprocessing` is a `VideoPreprocessing` whose id
names the frames taken (`num_frames`, `stride`, `start`, or a seeded random start and a reference cap) as well as the
per-frame pipeline, so the feature cache and reference statistics (`refstats.check_compatible` compares that id)
never mix two samplings. The real side of an FVD (`extract_reference_videos`) follows StyleGAN-V: the first
`max_real` (2048) usable videos in sorted order, each clip at a random start drawn by `random_start` from the run's
seed and the file's content (StyleGAN-V's own draw is unseeded `random.randint`, so only its rule is reproduced).

The pieces live in their own modules, all re-exported here: `evalsuite.video_sampling` (frame sampling and the
clip's preprocessing), `evalsuite.video_extractors` (the extractor registry: `i3d`, `videomae`, `python:`, and the
protocol names) and `evalsuite.videomae` (cd-fvd's VideoMAE-v2 network).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evalsuite.errors import InputError
from evalsuite.extractors import Extractor
from evalsuite.features import CachedFileDataset, FeatureCache, FeatureResult, extract_dataset
from evalsuite.hashing import sha256_file
from evalsuite.video_extractors import (
    CDFVD_VIDEOMAE_ID,
    I3D_WEIGHTS,
    VIDEO_EXTRACTORS,
    VideoExtractorInfo,
    build,
    is_cdfvd,
    is_video_spec,
    protocol_name,
    register,
    registered,
    weights_needed,
)
from evalsuite.video_sampling import (
    CLIP_TRANSFORMS,
    DEFAULT_SAMPLING,
    RANDOM_START_RULE,
    VideoPreprocessing,
    normalize_sampling,
    random_start,
    with_random_start,
    with_sampling,
)
from evalsuite.videoio import probe, read_frames
from evalsuite.videomae import (
    CDFVD_INPUT,
    CDFVD_RESOLUTION,
    VIDEOMAE_WEIGHTS,
    VideoMAEv2Features,
    cdfvd_resize_crop,
    load_videomae_v2,
)


@dataclass
class VideoFeatureResult(FeatureResult):
    """A FeatureResult with the frame sampling used and the resolutions of the usable videos ("WxH" -> count)."""

    sampling: dict = field(default_factory=dict)
    resolutions: dict = field(default_factory=dict)


def _header_size(path: Path) -> tuple[int, int] | None:
    """(height, width) of a video's first stream from its header, without decoding; None when unknown."""
    import av

    try:
        with av.open(str(path)) as container:
            ctx = container.streams.video[0].codec_context
            return (int(ctx.height), int(ctx.width)) if ctx.width and ctx.height else None
    except Exception:  # noqa: BLE001 -- only a recorded detail; decoding decides what is usable
        return None


class _VideoDataset(CachedFileDataset):
    """Videos: the sampled frames decoded and preprocessed in the worker; the resolution is reported."""

    def load(self, path: Path) -> dict:
        prep = self.preprocessing
        start = prep.start
        if prep.random_start_seed is not None:
            try:
                start = random_start(probe(path)["frames"], prep.num_frames, prep.stride, prep.random_start_seed,
                                     sha256_file(path))
            except InputError as exc:
                raise InputError(f"video {path}: {exc.message}", exc.fix) from exc
        frames = read_frames(path, prep.num_frames, prep.stride, start)
        return {"input": prep(frames), "size": tuple(frames.shape[1:3])}

    def cached_extra(self, path: Path) -> dict:
        return {"size": _header_size(path)}


def extract_videos(
    files: Sequence[str | Path],
    extractor: Extractor,
    sampling: dict | None = None,
    *,
    batch_size: int = 16,
    keep_features: bool = False,
    progress: bool = True,
    cache_root: Path | None = None,
    num_workers: int | None = None,
    use_cache: bool = True,
    desc: str = "video features",
) -> VideoFeatureResult:
    """Featurise `files` in order with `extractor` rebound to `sampling` (None: the extractor's own). Unreadable
    videos, videos too short for the sampling and non-finite features are skipped and counted, never fatal; equal
    clip shapes run as one batch, mixed resolutions one by one. Statistics accumulate in float64 from the float32
    features (the cached values), so a cached rerun gives identical statistics."""
    if sampling is not None:
        extractor = with_sampling(extractor, sampling)
    elif not isinstance(extractor.preprocessing, VideoPreprocessing):
        extractor = with_sampling(extractor, None)
    prep: VideoPreprocessing = extractor.preprocessing
    cache = FeatureCache(extractor.cache_key, cache_root) if use_cache else None
    dataset = _VideoDataset([Path(f) for f in files], prep, cache)
    resolutions: dict[str, int] = {}

    def count_resolution(item: dict) -> None:
        size = item.get("size")
        label = f"{size[1]}x{size[0]}" if size else "unknown"
        resolutions[label] = resolutions.get(label, 0) + 1

    result = extract_dataset(dataset, extractor, cache, batch_size=batch_size, num_workers=num_workers,
                             keep_features=keep_features, progress=progress, desc=desc, unit="video", layout="video",
                             prefetch_factor=2, on_kept=count_resolution)
    return VideoFeatureResult(**vars(result), sampling=prep.sampling, resolutions=dict(sorted(resolutions.items())))


def _concat(a: VideoFeatureResult, b: VideoFeatureResult) -> VideoFeatureResult:
    """Two results of the same extractor over consecutive file lists, as one."""
    sizes = dict(a.resolutions)
    for size, count in b.resolutions.items():
        sizes[size] = sizes.get(size, 0) + count
    feats = None if a.features is None else np.concatenate([a.features, b.features])
    return dataclasses.replace(a, stats=a.stats.merge(b.stats), files=a.files + b.files,
                               content_sha256=a.content_sha256 + b.content_sha256, features=feats,
                               skipped=a.skipped + b.skipped, n_cached=a.n_cached + b.n_cached,
                               n_computed=a.n_computed + b.n_computed, resolutions=dict(sorted(sizes.items())))


def reference_extractor(extractor: Extractor, sampling: dict | None = None, *, seed: int = 0,
                        max_real: int | None = 2048) -> Extractor:
    """The extractor for the real side of an FVD: seeded random clip starts and, for StyleGAN-V's protocol, the first
    `max_real` usable videos (cd-fvd uses every reference video, its n_real='full'); both are in its key."""
    ext = with_sampling(extractor, sampling) if sampling is not None else extractor
    return with_random_start(ext, seed, None if is_cdfvd(ext) else max_real)


def extract_reference_videos(files: Sequence[str | Path], extractor: Extractor, sampling: dict | None = None, *,
                             seed: int = 0, max_real: int | None = 2048, sharded: Callable | None = None,
                             **kwargs) -> VideoFeatureResult:
    """Featurise a reference set as `reference_extractor` says: files in order, in chunks, until `max_videos` are
    usable (StyleGAN-V's `max_items=max_real` over its dataset's first items, short videos being discarded first);
    the skipped ones are counted. `sharded(files, extract, what)` spreads each chunk over ranks; `kwargs` go to
    `extract_videos`."""
    ext = reference_extractor(extractor, sampling, seed=seed, max_real=max_real)

    def extract(chunk: list) -> VideoFeatureResult:
        return extract_videos(chunk, ext, None, **kwargs)

    def run(chunk: list) -> VideoFeatureResult:
        return sharded(chunk, extract, "reference video features") if sharded else extract(chunk)

    files, cap = list(files), ext.preprocessing.max_videos
    if cap is None:
        return run(files)
    result, pos = run(files[:cap]), cap
    while result.n < cap and pos < len(files):
        chunk = files[pos:pos + cap - result.n]
        pos += len(chunk)
        result = _concat(result, run(chunk))
    return result


__all__ = ["CDFVD_INPUT", "CDFVD_RESOLUTION", "CDFVD_VIDEOMAE_ID", "CLIP_TRANSFORMS", "DEFAULT_SAMPLING", "I3D_WEIGHTS",
           "RANDOM_START_RULE", "VIDEOMAE_WEIGHTS", "VIDEO_EXTRACTORS", "VideoExtractorInfo", "VideoFeatureResult",
           "VideoMAEv2Features", "VideoPreprocessing", "build", "cdfvd_resize_crop", "extract_reference_videos",
           "extract_videos", "is_cdfvd", "is_video_spec", "load_videomae_v2", "normalize_sampling", "protocol_name",
           "random_start", "reference_extractor", "register", "registered", "weights_needed", "with_random_start",
           "with_sampling"]
