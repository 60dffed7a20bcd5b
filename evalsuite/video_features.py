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

Video extractors (specs):

* `i3d` -- StyleGAN-V's `fvd2048_16f` network: the TorchScript `i3d_torchscript.pt` (Kinetics-400 I3D, a port of
  the TF-Hub model used by the original FVD code) from the weights store, called as StyleGAN-V calls it:
  `net(x, rescale=True, resize=True, return_features=True)` with `x` a uint8 tensor [B, C, T, H, W] of the decoded
  frames at their native size (the graph rescales to [-1, 1] and resizes itself); 400-d pre-softmax features.
* `videomae` / `videomae:FILE.pth` -- cd-fvd's VideoMAE (PyPI `cd-fvd` 0.1.1, `cdfvd.fvd.cdfvd('videomae')`): the
  VideoMAE-v2 ViT-g/14 SSv2 checkpoint `vit_g_hybrid_pt_1200e_ssv2_ft.pth` from the weights store (or a local copy),
  run by `VideoMAEv2Features`, our own definition of its `forward_features` (cdfvd is a test-only package). As
  cd-fvd's video-folder path does: each clip /255, shorter side to 256 (bilinear, antialias), centre crop 256,
  `(x*255).byte()` (truncation), then /255 and bilinear to 224x224 (no antialias, no mean/std), feature
  `fc_norm(mean of the tokens)`, 1408-d. Random clip starts on both sides, every reference video (n_real='full').
  Not copied: cd-fvd's default n_fake=2048 loops over the generated videos again when fewer exist, and its loader
  replaces a too-short video by the next one; we refuse the first and count the second as a skip. Its `compute_fvd`
  on arrays skips the 256 resize/crop; we follow the folder loader of its README.
* `python:module:factory` -- a user network: an nn.Module (or a factory returning one) mapping a uint8 tensor
  [B, C, T, H, W] of native-size frames to (B, d) features, declaring `num_features` = d. It may declare a
  per-frame `preprocessing` as image extractors do (`evalsuite.extractors`); its weights hash is its state dict's.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evalsuite import weights as weights_store
from evalsuite.errors import InputError, UnknownNameError
from evalsuite.extractors import Extractor
from evalsuite.features import CachedFileDataset, FeatureCache, FeatureResult, extract_dataset
from evalsuite.hashing import sha256_file, sha256_state_dict
from evalsuite.preprocess import Preprocessing
from evalsuite.pyspec import load_object
from evalsuite.videoio import probe, read_frames

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
        out = {"num_frames": self.num_frames, "stride": self.stride, "start": self.start}
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


def with_random_start(extractor: Extractor, seed: int, max_videos: int | None = None) -> Extractor:
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
    """Weights-store names a video spec needs (none for videomae:FILE and python:, which bring their own)."""
    if spec.startswith("python:"):
        return ()
    name, _, option = spec.partition(":")
    return () if option else _info(name).weights


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
    """Leaderboard protocol of an FVD computed with this extractor and its sampling: StyleGAN-V style `fvd-i3d-16f`,
    cd-fvd's `cd-fvd-videomae-16f`; `-stride{k}` / `-start{s}` are added when not 1 / 0; networks brought by the user
    (python:, or videomae:FILE other than the weights store's) add the first 12 hex digits of their weights hash (two
    checkpoints never share a column)."""
    prep = extractor.preprocessing
    name = spec.partition(":")[0]
    if spec.startswith("python:"):
        name = f"fvd-{spec}@{extractor.weights_sha256[:12]}"
    elif name == "videomae":
        own = extractor.weights_sha256 == weights_store.expected_digest(VIDEOMAE_WEIGHTS)
        name = "cd-fvd-videomae" if own else f"cd-fvd-videomae@{extractor.weights_sha256[:12]}"
    else:
        name = f"fvd-{name}"
    out = f"{name}-{prep.num_frames}f"
    if prep.stride != 1:
        out += f"-stride{prep.stride}"
    if prep.start != 0:
        out += f"-start{prep.start}"
    return out


# ----------------------------------------------------------------------------------------------- I3D
def _build_i3d(option: str, device: torch.device, offline: bool | None, sampling: dict) -> Extractor:
    if option:
        raise InputError(f"extractor 'i3d' takes no option, got 'i3d:{option}'", "use --extractor i3d")
    path, digest = weights_store.require_verified(I3D_WEIGHTS, offline=offline)  # pinned on first use
    net = torch.jit.load(str(path), map_location=device).eval()

    def forward(x: torch.Tensor) -> torch.Tensor:  # StyleGAN-V's detector_kwargs for fvd2048_16f
        return net(x, rescale=True, resize=True, return_features=True)

    prep = VideoPreprocessing(Preprocessing("none", input_dtype="uint8"), **sampling,
                              network="i3d(rescale=True,resize=True,return_features=True)")
    return Extractor("i3d-torchscript-stylegan-v", digest, prep, 400, forward, device)


register(VideoExtractorInfo(
    "i3d", (I3D_WEIGHTS,),
    "StyleGAN-V fvd2048_16f I3D (TorchScript, Kinetics-400), 400-d; uint8 native-size frames, resized in the graph",
    _build_i3d,
))


# ----------------------------------------------------------------------------------------------- VideoMAE (cd-fvd)
VIDEOMAE_WEIGHTS = "videomae-v2-g-ssv2"  # registered in evalsuite.weights (no published digest: pinned on first use)
CDFVD_VIDEOMAE_ID = "cd-fvd-videomae-v2-g"
CDFVD_RESOLUTION = 256  # cd-fvd's load_videos(resolution=256)
CDFVD_INPUT = 224  # cd-fvd's preprocess_videomae: Resize((224, 224))


def cdfvd_resize_crop(frames: np.ndarray) -> np.ndarray:
    """cd-fvd's video-folder loader then its byte conversion: (T, H, W, 3) uint8 -> /255 -> shorter side to 256
    (longer side ceil-rounded), bilinear with antialias -> centre crop 256x256 -> (x*255).byte(), i.e. truncated
    (cdfvd/utils/data_utils.py `preprocess`; cdfvd/fvd.py `compute_real_stats` / `compute_fake_stats`)."""
    res = CDFVD_RESOLUTION
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    h, w = video.shape[-2:]
    scale = res / min(h, w)
    size = (res, math.ceil(w * scale)) if h < w else (math.ceil(h * scale), res)
    video = F.interpolate(video, size=size, mode="bilinear", align_corners=False, antialias=True)
    h, w = video.shape[-2:]
    top, left = (h - res) // 2, (w - res) // 2
    video = video[:, :, top:top + res, left:left + res]
    return (video * 255).byte().permute(0, 2, 3, 1).contiguous().numpy()


CLIP_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "cdfvd-resize256-antialias-centercrop-byte": cdfvd_resize_crop,
}


def _sinusoid_table(n_position: int, dim: int) -> torch.Tensor:
    """VideoMAE's fixed sine-cosine position table (1, n_position, dim), computed in float64 then float32."""
    pos = np.arange(n_position)[:, None] / np.power(10000, 2 * (np.arange(dim) // 2) / dim)[None, :]
    pos[:, 0::2], pos[:, 1::2] = np.sin(pos[:, 0::2]), np.cos(pos[:, 1::2])
    return torch.tensor(pos, dtype=torch.float32)[None]


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        bias = None if self.q_bias is None else torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        q, k, v = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(head_dim)) v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, qkv_bias: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VideoMAEv2Features(nn.Module):
    """cd-fvd's VideoMAE-v2 feature network, written from its definition (cdfvd/third_party/VideoMAEv2/
    videomaev2_finetune.py, `VisionTransformer.forward_features` of `vit_giant_patch14_224(img_size=224,
    all_frames=16, tubelet_size=2, use_mean_pooling=True)`): tubelet patch embedding, fixed sine-cosine positions
    (trilinearly interpolated in time, from 8 tubelets, when the clip is not 16 frames, as `interpolate_pos_encoding`
    does), pre-norm blocks with q/v biases, LayerNorm eps 1e-6, feature = `fc_norm(mean of the tokens)`. Input: uint8
    (B, 3, T, 256, 256) from `cdfvd_resize_crop`; it applies `preprocess_videomae` (/255, bilinear to 224x224, no
    antialias, no mean/std). Module names equal the checkpoint's keys, so its state dict loads as is."""

    def __init__(self, dim: int, depth: int, heads: int, hidden: int, patch: int, tubelet: int, qkv_bias: bool = True,
                 img_size: int = CDFVD_INPUT, all_frames: int = 16):
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(3, dim, (tubelet, patch, patch), (tubelet, patch, patch))
        self.tubelet, self.grid, self.all_frames = tubelet, img_size // patch, all_frames
        self.register_buffer("pos_embed", _sinusoid_table(self.grid ** 2 * (all_frames // tubelet), dim),
                             persistent=False)
        self.blocks = nn.ModuleList(_Block(dim, heads, hidden, qkv_bias) for _ in range(depth))
        self.fc_norm = nn.LayerNorm(dim, eps=1e-6)
        self.num_features = dim

    def positions(self, frames: int) -> torch.Tensor:
        t0, base = frames // self.tubelet, self.all_frames // self.tubelet
        if t0 == base:
            return self.pos_embed
        dim = self.pos_embed.shape[-1]
        grid = self.pos_embed.permute(0, 2, 1).reshape(1, dim, base, self.grid, self.grid)
        grid = F.interpolate(grid, scale_factor=((t0 + 0.1) / base, 1, 1), mode="trilinear")
        return grid.reshape(1, dim, -1).permute(0, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        x = x.float().div(255.0).reshape(b, c * t, h, w)  # each (channel, frame) plane resized on its own
        x = F.interpolate(x, size=(CDFVD_INPUT, CDFVD_INPUT), mode="bilinear", align_corners=False)
        x = self.patch_embed.proj(x.reshape(b, c, t, CDFVD_INPUT, CDFVD_INPUT)).flatten(2).transpose(1, 2)
        x = x + self.positions(t).to(x.dtype)
        for blk in self.blocks:
            x = blk(x)
        return self.fc_norm(x.mean(1))


def load_videomae_v2(path: str | Path, heads: int = 16) -> VideoMAEv2Features:
    """A cd-fvd VideoMAE-v2 checkpoint (`vit_g_hybrid_pt_1200e_ssv2_ft.pth` format: a state dict, possibly under
    'model' or 'module'): sizes read from the tensors, 16 heads (ViT-g; the head count is not in the state dict);
    the classification head is dropped."""
    path = Path(path)
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- any unreadable file is the user's input
        raise InputError(f"cannot read the VideoMAE-v2 checkpoint {path}: {exc}",
                         "point at cd-fvd's vit_g_hybrid_pt_1200e_ssv2_ft.pth (a torch state dict)") from exc
    for key in ("model", "module"):
        if isinstance(ckpt, dict) and key in ckpt:
            ckpt = ckpt[key]
            break
    if not isinstance(ckpt, dict) or "patch_embed.proj.weight" not in ckpt or "fc_norm.weight" not in ckpt:
        raise InputError(f"{path} is not a VideoMAE-v2 fine-tuned checkpoint (no patch_embed.proj / fc_norm weights)",
                         "use cd-fvd's vit_g_hybrid_pt_1200e_ssv2_ft.pth (`evalsuite weights fetch "
                         f"{VIDEOMAE_WEIGHTS}`)")
    state = {k: v for k, v in ckpt.items() if not k.startswith("head.")}
    dim, _, tubelet, patch, _ = state["patch_embed.proj.weight"].shape
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    model = VideoMAEv2Features(dim, depth, heads, state["blocks.0.mlp.fc1.weight"].shape[0], patch, tubelet,
                               qkv_bias="blocks.0.attn.q_bias" in state)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"{path} does not match cd-fvd's VideoMAE-v2 architecture: {exc}",
                         "use cd-fvd's vit_g_hybrid_pt_1200e_ssv2_ft.pth") from exc
    return model.eval()


def _build_videomae(option: str, device: torch.device, offline: bool | None, sampling: dict) -> Extractor:
    if option:
        path = Path(option).expanduser()
        if not path.is_file():
            raise InputError(f"videomae:{option}: {path} is not a checkpoint file",
                             "pass cd-fvd's vit_g_hybrid_pt_1200e_ssv2_ft.pth (videomae:FILE.pth), or use "
                             f"--extractor videomae with `evalsuite weights fetch {VIDEOMAE_WEIGHTS}`; other video "
                             "networks (e.g. a transformers VideoMAE folder) go through python:module:factory")
        digest = weights_store.file_digest(path)
    else:
        path, digest = weights_store.require_verified(VIDEOMAE_WEIGHTS, offline=offline)
    model = load_videomae_v2(path).to(device)
    prep = VideoPreprocessing(Preprocessing("none", input_dtype="uint8"), **sampling,
                              clip="cdfvd-resize256-antialias-centercrop-byte",
                              network="x/255,bilinear-224x224,videomae-v2-fc_norm(mean-tokens)")
    return Extractor(CDFVD_VIDEOMAE_ID, digest, prep, model.num_features, model, device)


register(VideoExtractorInfo(
    "videomae", (VIDEOMAE_WEIGHTS,),
    "cd-fvd's VideoMAE-v2 ViT-g/14 SSv2 (weights store, or videomae:FILE.pth), 1408-d fc_norm features; cd-fvd's "
    "resize-256/crop/byte, /255 and bilinear 224 preprocessing; random clip starts on both sides",
    _build_videomae,
))


def is_cdfvd(extractor: Extractor) -> bool:
    """True for cd-fvd's VideoMAE protocol (every reference video, random clip starts on both sides)."""
    return extractor.id == CDFVD_VIDEOMAE_ID


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


__all__ = ["DEFAULT_SAMPLING", "I3D_WEIGHTS", "RANDOM_START_RULE", "VIDEOMAE_WEIGHTS", "VideoExtractorInfo",
           "VideoFeatureResult", "VideoMAEv2Features", "VideoPreprocessing", "build", "cdfvd_resize_crop",
           "extract_reference_videos", "extract_videos", "is_cdfvd", "is_video_spec", "load_videomae_v2",
           "normalize_sampling", "protocol_name", "random_start", "reference_extractor", "register", "registered",
           "weights_needed", "with_random_start", "with_sampling"]
