"""Which frames of a video an extractor sees: the frame sampling (`num_frames`, `stride`, `start`, or a seeded
random start and a reference cap) and the per-frame or whole-clip pipeline, named together by `VideoPreprocessing.id`
(the feature key's `preprocessing`), so the feature cache and reference statistics never mix two samplings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from evalsuite.errors import InputError
from evalsuite.extractors import Extractor
from evalsuite.preprocess import Preprocessing
from evalsuite.videomae import cdfvd_resize_crop

DEFAULT_SAMPLING = {"num_frames": 16, "stride": 1, "start": 0}  # StyleGAN-V fvd2048_16f: 16 consecutive frames


def normalize_sampling(sampling: dict | None) -> dict:
    """{"num_frames", "stride", "start"} as ints, checked (num_frames >= 1, stride >= 1, start >= 0)."""
    merged = {**DEFAULT_SAMPLING, **(sampling or {})}
    try:
        out = {k: int(merged[k]) for k in ("num_frames", "stride", "start")}
    except (TypeError, ValueError) as exc:
        raise InputError(f"frame sampling {sampling!r} is not made of integers", "pass --frames N, "
                         "--frame-stride K, --frame-start S as integers") from exc
    if out["num_frames"] < 1 or out["stride"] < 1 or out["start"] < 0:
        raise InputError(f"frame sampling {out} is not usable", "use --frames >= 1, --frame-stride >= 1 and "
                         "--frame-start >= 0")
    return out


@dataclass(frozen=True)
class VideoPreprocessing:
    """Which frames of a video are taken, the per-frame pipeline, and what the network does with the clip itself.

    `id` (the feature key's `preprocessing`) names all of it, so cached features and reference statistics never mix
    samplings or pipelines. `random_start_seed` replaces the fixed `start` by a seeded random clip start (the real
    side of StyleGAN-V's FVD, both sides of cd-fvd; see `random_start`); `max_videos` names a reference set capped at
    its first usable videos (StyleGAN-V's max_real); `clip` names a whole-clip transform (`CLIP_TRANSFORMS`) run in
    the worker instead of the per-frame pipeline."""

    frame: Preprocessing
    num_frames: int = 16
    stride: int = 1
    start: int = 0
    network: str = ""  # what happens inside the network call (e.g. I3D's in-graph rescale and resize)
    clip: str = ""
    random_start_seed: int | None = None
    max_videos: int | None = None

    @property
    def sampling(self) -> dict:
        out: dict[str, Any] = {"num_frames": self.num_frames, "stride": self.stride, "start": self.start}
        if self.random_start_seed is not None:
            out.update(start="random", random_start_seed=self.random_start_seed, random_start_rule=RANDOM_START_RULE)
        if self.max_videos is not None:
            out["max_videos"] = self.max_videos
        return out

    @property
    def id(self) -> str:
        start = f"random(seed={self.random_start_seed})" if self.random_start_seed is not None else self.start
        cap = f",first={self.max_videos}" if self.max_videos is not None else ""
        clip = f"|{self.clip}" if self.clip else ""
        net = f"|{self.network}" if self.network else ""
        return f"frames={self.num_frames},stride={self.stride},start={start}{cap}|{self.frame.id}{clip}{net}"

    @property
    def input_dtype(self) -> str:
        return self.frame.input_dtype

    def with_sampling(self, sampling: dict | None) -> VideoPreprocessing:
        return dataclasses.replace(self, **normalize_sampling(sampling))

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 -> network input: the named clip transform, else frame by frame with the image
        pipeline."""
        if self.clip:
            return CLIP_TRANSFORMS[self.clip](frames)
        if self.frame.resize == "none":
            return frames.astype(np.float32) if self.frame.input_dtype == "float255" else frames
        return np.stack([self.frame(f) for f in frames])


# whole-clip transforms a VideoPreprocessing names in its `clip` field (run in the loader's workers)
CLIP_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "cdfvd-resize256-antialias-centercrop-byte": cdfvd_resize_crop,
}

# the rule of StyleGAN-V's dataset (src/training/dataset.py, VideoFramesFolderDataset.__getitem__, L399-406) and of
# cd-fvd's VideoDataset (cdfvd/utils/data_utils.py, get_random_clip_from_video), drawn from our own seeded generator
RANDOM_START_RULE = ("start uniform in [0, n - num_frames*stride + stride - 1] (n = the video's frame count; videos "
                     "with n < num_frames*stride are skipped), numpy default_rng([seed, first 64 bits of the file's "
                     "sha256]).integers(0, high + 1)")


def random_start(n_frames: int, num_frames: int, stride: int, seed: int, content_sha256: str) -> int:
    """A seeded random clip start, StyleGAN-V's rule: `random.randint(0, n - num_frames*stride + stride - 1)` over
    videos of at least num_frames*stride frames (`discard_short_videos`); the draw depends only on the seed and the
    file's content, so it is the same in any order, shard or worker (and the feature cache stays valid)."""
    if n_frames < num_frames * stride:
        raise InputError(f"video of {n_frames} frames is shorter than {num_frames}x{stride} frames (StyleGAN-V "
                         "discards such videos)", "pass fewer --frames, or remove the video")
    high = n_frames - num_frames * stride + stride - 1
    rng = np.random.default_rng([int(seed), int(content_sha256[:16], 16)])
    return int(rng.integers(0, high + 1))


def with_random_start(extractor: Extractor[VideoPreprocessing], seed: int,
                      max_videos: int | None = None) -> Extractor[VideoPreprocessing]:
    """The same network with seeded random clip starts (and, for a reference set, its cap) in its key."""
    return dataclasses.replace(extractor, preprocessing=dataclasses.replace(
        extractor.preprocessing, random_start_seed=int(seed), max_videos=max_videos))


def with_sampling(extractor: Extractor, sampling: dict | None) -> Extractor:
    """The same network with another frame sampling (and so another key)."""
    prep = extractor.preprocessing
    if not isinstance(prep, VideoPreprocessing):
        raise InputError(f"extractor {extractor.id} is an image extractor, not a video one",
                         "use i3d, videomae:PATH or python:module:factory (a video network)")
    return dataclasses.replace(extractor, preprocessing=prep.with_sampling(sampling))
