"""Video feature engine: video files -> sampled clips -> features -> streaming statistics, with the feature cache.

The video counterpart of `evalsuite.features` (same FeatureCache, FeatureResult and StreamingStats): decoding
(`videoio.read_frames`), hashing, cache look-up and per-frame resizing run in DataLoader worker processes; the
network runs in the main process under `torch.inference_mode`.

Frame sampling is part of every feature key: an extractor's `preprocessing` is a `VideoPreprocessing` whose id
names the frames taken (`num_frames`, `stride`, `start`) as well as the per-frame pipeline, so the feature cache
and reference statistics (`refstats.check_compatible` compares that id) never mix two samplings.

Video extractors (specs):

* `i3d` -- StyleGAN-V's `fvd2048_16f` network: the TorchScript `i3d_torchscript.pt` (Kinetics-400 I3D, a port of
  the TF-Hub model used by the original FVD code) from the weights store, called as StyleGAN-V calls it:
  `net(x, rescale=True, resize=True, return_features=True)` with `x` a uint8 tensor [B, C, T, H, W] of the decoded
  frames at their native size (the graph rescales to [-1, 1] and resizes itself); 400-d pre-softmax features.
* `videomae:PATH` -- a local transformers VideoMAE folder (`VideoMAEModel.from_pretrained(PATH,
  local_files_only=True)`), the content-debiased FVD idea of cd-fvd. Exactly: each frame is resized to the
  checkpoint's `image_size` (224 for the usual checkpoints) by `torch.nn.functional.interpolate(mode="bilinear",
  align_corners=False, antialias=False)` on float RGB in [0, 255] (aspect ratio not kept, no crop), divided by 255,
  normalised with the ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), fed as pixel_values
  [B, T, C, H, W]; the feature is `last_hidden_state.mean(dim=1)`, the mean over all tokens, `hidden_size`-d.
  The clip must have the checkpoint's `num_frames` frames (16 for the usual ones).
  Comparability with cd-fvd: cd-fvd uses VideoMAE-v2 ViT-g/14 fine-tuned on SSv2 (`vit_g_hybrid_pt_1200e_ssv2_ft`,
  1408-d), so the user must point PATH at that checkpoint converted to the transformers format. Even then two
  differences remain and the numbers are not the same: cd-fvd feeds [0, 1] frames without mean/std normalisation,
  and its feature is `fc_norm(mean of tokens)` (the fine-tuned model's final LayerNorm, which transformers keeps
  in `VideoMAEForVideoClassification.fc_norm`, not in `VideoMAEModel`). Both are recorded in the preprocessing id.
* `python:module:factory` -- a user network: an nn.Module (or a factory returning one) mapping a uint8 tensor
  [B, C, T, H, W] of native-size frames to (B, d) features, declaring `num_features` = d. It may declare a
  per-frame `preprocessing` as image extractors do (`evalsuite.extractors`); its weights hash is its state dict's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from evalsuite import weights as weights_store
from evalsuite.errors import InputError, UnknownNameError
from evalsuite.extractors import Extractor
from evalsuite.features import CachedFileDataset, FeatureCache, FeatureResult, extract_dataset
from evalsuite.hashing import sha256_state_dict
from evalsuite.preprocess import Preprocessing
from evalsuite.pyspec import load_object
from evalsuite.videoio import read_frames

# ------------------------------------------------------------------------------------------------ weights
I3D_WEIGHTS = "i3d-torchscript"
# registered in evalsuite.weights (no published digest: the first copy is pinned, see evalsuite.weights)


# ------------------------------------------------------------------------------------------------ sampling
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

    `id` (the feature key's `preprocessing`) names all three, so cached features and reference statistics never mix
    samplings or pipelines."""

    frame: Preprocessing
    num_frames: int = 16
    stride: int = 1
    start: int = 0
    network: str = ""  # what happens inside the network call (e.g. I3D's in-graph rescale and resize)

    @property
    def sampling(self) -> dict:
        return {"num_frames": self.num_frames, "stride": self.stride, "start": self.start}

    @property
    def id(self) -> str:
        net = f"|{self.network}" if self.network else ""
        return f"frames={self.num_frames},stride={self.stride},start={self.start}|{self.frame.id}{net}"

    @property
    def input_dtype(self) -> str:
        return self.frame.input_dtype

    def with_sampling(self, sampling: dict | None) -> VideoPreprocessing:
        return dataclasses.replace(self, **normalize_sampling(sampling))

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 -> (T, H', W', 3) network input, frame by frame with the image pipeline."""
        if self.frame.resize == "none":
            return frames.astype(np.float32) if self.frame.input_dtype == "float255" else frames
        return np.stack([self.frame(f) for f in frames])


def with_sampling(extractor: Extractor, sampling: dict | None) -> Extractor:
    """The same network with another frame sampling (and so another key)."""
    prep = extractor.preprocessing
    if not isinstance(prep, VideoPreprocessing):
        raise InputError(f"extractor {extractor.id} is an image extractor, not a video one",
                         "use i3d, videomae:PATH or python:module:factory (a video network)")
    return dataclasses.replace(extractor, preprocessing=prep.with_sampling(sampling))


# ------------------------------------------------------------------------------------------------ registry
@dataclass(frozen=True)
class VideoExtractorInfo:
    """Registry entry: the spec name, the weights-store names it needs, and how to build it for a sampling."""

    name: str
    weights: tuple[str, ...]
    description: str
    build: Callable[[str, torch.device, bool | None, dict], Extractor]


_REGISTRY: dict[str, VideoExtractorInfo] = {}


def register(info: VideoExtractorInfo) -> None:
    _REGISTRY[info.name] = info


def registered() -> list[VideoExtractorInfo]:
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def is_video_spec(spec: str | None) -> bool:
    """True for `i3d`, `videomae:PATH` and `python:...` (a python: spec is taken to name a video network)."""
    if not spec:
        return False
    return spec.startswith("python:") or spec.partition(":")[0] in _REGISTRY


def _info(name: str) -> VideoExtractorInfo:
    if name not in _REGISTRY:
        raise UnknownNameError(f"unknown video extractor '{name}'",
                               f"use one of {', '.join(sorted(_REGISTRY))}, or python:module:factory for your own "
                               "video network")
    return _REGISTRY[name]


def weights_needed(spec: str) -> tuple[str, ...]:
    """Weights-store names a video spec needs (none for videomae:PATH and python:, which bring their own)."""
    if spec.startswith("python:"):
        return ()
    return _info(spec.partition(":")[0]).weights


def build(spec: str, device: torch.device | str = "cpu", offline: bool | None = None,
          sampling: dict | None = None) -> Extractor:
    """Build the video extractor a spec names; `sampling` (default: 16 consecutive frames from frame 0) becomes part
    of its key. `extract_videos` rebinds it to the sampling it is given."""
    device = torch.device(device)
    sampling = normalize_sampling(sampling)
    if spec.startswith("python:"):
        return _build_python(spec[len("python:"):], device, sampling)
    name, _, option = spec.partition(":")
    return _info(name).build(option, device, offline, sampling)


def protocol_name(spec: str, extractor: Extractor) -> str:
    """Leaderboard protocol of an FVD computed with this extractor and its sampling, StyleGAN-V style:
    `fvd-i3d-16f`; `-stride{k}` / `-start{s}` are added when not 1 / 0; networks brought by the user add the first
    12 hex digits of their weights hash (two checkpoints never share a column)."""
    prep = extractor.preprocessing
    name = spec.partition(":")[0]
    if spec.startswith("python:"):
        name = f"{spec}@{extractor.weights_sha256[:12]}"
    elif name != "i3d":
        name = f"{name}@{extractor.weights_sha256[:12]}"
    out = f"fvd-{name}-{prep.num_frames}f"
    if prep.stride != 1:
        out += f"-stride{prep.stride}"
    if prep.start != 0:
        out += f"-start{prep.start}"
    return out


# ----------------------------------------------------------------------------------------------- I3D
def _build_i3d(option: str, device: torch.device, offline: bool | None, sampling: dict) -> Extractor:
    if option:
        raise InputError(f"extractor 'i3d' takes no option, got 'i3d:{option}'", "use --extractor i3d")
    path = weights_store.require(I3D_WEIGHTS, offline=offline)
    net = torch.jit.load(str(path), map_location=device).eval()

    def forward(x: torch.Tensor) -> torch.Tensor:  # StyleGAN-V's detector_kwargs for fvd2048_16f
        return net(x, rescale=True, resize=True, return_features=True)

    prep = VideoPreprocessing(Preprocessing("none", input_dtype="uint8"), **sampling,
                              network="i3d(rescale=True,resize=True,return_features=True)")
    digest = weights_store.expected_digest(I3D_WEIGHTS) or ""  # the registry's or the pinned digest
    return Extractor("i3d-torchscript-stylegan-v", digest, prep, 400, forward, device)


register(VideoExtractorInfo(
    "i3d", (I3D_WEIGHTS,),
    "StyleGAN-V fvd2048_16f I3D (TorchScript, Kinetics-400), 400-d; uint8 native-size frames, resized in the graph",
    _build_i3d,
))


# ----------------------------------------------------------------------------------------------- VideoMAE
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _build_videomae(option: str, device: torch.device, offline: bool | None, sampling: dict) -> Extractor:
    if not option:
        raise InputError("extractor 'videomae' needs a folder: videomae:PATH",
                         "point at a local transformers VideoMAE folder (config.json + weights); for cd-fvd's "
                         "protocol, VideoMAE-v2 ViT-g/14 SSv2 converted to the transformers format")
    folder = Path(option).expanduser()
    if not (folder / "config.json").is_file():
        raise InputError(f"videomae:{option}: {folder} is not a transformers model folder (no config.json)",
                         "save the model with save_pretrained(), or convert the checkpoint to the transformers format")
    from transformers import VideoMAEModel

    try:
        model = VideoMAEModel.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load a VideoMAE model from {folder}: {exc}",
                         "point at a folder written by VideoMAEModel.save_pretrained()") from exc
    model = model.float().to(device).eval()
    cfg = model.config
    size = int(cfg.image_size)
    num_frames = int(cfg.num_frames)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 1, 3, 1, 1)

    def forward(x: torch.Tensor) -> torch.Tensor:  # x: float (B, C, T, size, size) in [0, 255]
        if x.shape[2] != num_frames:
            raise InputError(f"the VideoMAE model in {folder} takes clips of exactly {num_frames} frames, "
                             f"got {x.shape[2]}", f"pass --frames {num_frames}")
        pixels = (x.permute(0, 2, 1, 3, 4) / 255.0 - mean) / std  # (B, T, C, H, W)
        return model(pixel_values=pixels).last_hidden_state.mean(dim=1)

    prep = VideoPreprocessing(Preprocessing("torch-bilinear", (size, size)), **sampling,
                              network="x/255,imagenet-mean-std,videomae-last-hidden-mean")
    return Extractor("videomae-mean-last-hidden", sha256_state_dict(model), prep, int(cfg.hidden_size), forward,
                     device)


register(VideoExtractorInfo(
    "videomae", (),
    "transformers VideoMAE folder (videomae:PATH): mean of last_hidden_state over tokens; frames bilinear-resized "
    "to image_size, ImageNet mean/std (cd-fvd style; see evalsuite.video_features for the differences)",
    _build_videomae,
))


# ----------------------------------------------------------------------------------------------- user networks
def _build_python(target: str, device: torch.device, sampling: dict) -> Extractor:
    from evalsuite.extractors import _declared_preprocessing

    factory = load_object(target, "video extractor")
    module = factory() if callable(factory) and not isinstance(factory, nn.Module) else factory
    if not isinstance(module, nn.Module):
        raise InputError(f"video extractor factory python:{target} returned {type(module).__name__}, not an nn.Module",
                         "return a torch.nn.Module mapping uint8 clips (B, C, T, H, W) to (B, d) features")
    frame_prep = (_declared_preprocessing(module) if getattr(module, "preprocessing", None) is not None
                  else Preprocessing("none", input_dtype="uint8"))
    module = module.to(device).eval()
    dim = getattr(module, "num_features", None)
    if dim is None:
        raise InputError(f"video extractor python:{target} does not declare num_features",
                         "set module.num_features = d (the length of the feature vector it returns per clip)")
    prep = VideoPreprocessing(frame_prep, **sampling, network=f"python:{target}")
    return Extractor(f"python:{target}", sha256_state_dict(module), prep, int(dim), module, device)


# ----------------------------------------------------------------------------------------------- extraction
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
        frames = read_frames(path, prep.num_frames, prep.stride, prep.start)
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
    prep: VideoPreprocessing = extractor.preprocessing  # type: ignore[assignment]
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


__all__ = ["DEFAULT_SAMPLING", "I3D_WEIGHTS", "VideoExtractorInfo",
           "VideoFeatureResult", "VideoPreprocessing", "build", "extract_videos", "is_video_spec", "normalize_sampling",
           "protocol_name", "register", "registered", "weights_needed", "with_sampling"]
