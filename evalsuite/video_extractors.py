"""Video feature extractors by spec name, and the FVD protocol name each gives.

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

Plugin packages register `VideoExtractorInfo`s through the `evalsuite.video_extractors` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from evalsuite import weights as weights_store
from evalsuite.errors import InputError
from evalsuite.extractors import Extractor, _declared_preprocessing
from evalsuite.hashing import sha256_state_dict
from evalsuite.preprocess import Preprocessing
from evalsuite.pyspec import load_object
from evalsuite.registry import Registry
from evalsuite.video_sampling import VideoPreprocessing, normalize_sampling
from evalsuite.videomae import VIDEOMAE_WEIGHTS, load_videomae_v2

I3D_WEIGHTS = "i3d-torchscript"
# registered in evalsuite.weights (no published digest: the first copy is pinned, see evalsuite.weights)
CDFVD_VIDEOMAE_ID = "cd-fvd-videomae-v2-g"


@dataclass(frozen=True)
class VideoExtractorInfo:
    """Registry entry: the spec name, the weights-store names it needs, and how to build it for a sampling."""

    name: str
    weights: tuple[str, ...]
    description: str
    build: Callable[[str, torch.device, bool | None, dict], Extractor]


#: video extractors by spec name; plugins add theirs through the `evalsuite.video_extractors` entry-point group
VIDEO_EXTRACTORS: Registry[VideoExtractorInfo] = Registry(
    "video extractor", group="evalsuite.video_extractors",
    fix="or python:module:factory for your own video network")


def register(info: VideoExtractorInfo) -> VideoExtractorInfo:
    """Add a video extractor under `info.name` (what a plugin module's import does)."""
    return VIDEO_EXTRACTORS.register(info.name, info)


def registered() -> list[VideoExtractorInfo]:
    return VIDEO_EXTRACTORS.values()


def is_video_spec(spec: str | None) -> bool:
    """True for `i3d`, `videomae:PATH` and `python:...` (a python: spec is taken to name a video network)."""
    if not spec:
        return False
    return spec.startswith("python:") or spec.partition(":")[0] in VIDEO_EXTRACTORS


def _info(name: str) -> VideoExtractorInfo:
    return VIDEO_EXTRACTORS.get(name)


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
