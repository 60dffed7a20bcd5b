"""Feature extractors as registered backbones. Each declares its id, weights sha256, preprocessing and dimension;
those four form the feature-cache key and must match a reference statistics file. The sha256 is that of the file
actually loaded, verified against the weights registry on every use (`weights.require_verified`).

Built in: `inception` (FID Inception, TorchScript `inception-2015-12-05.pt`) in clean-fid's modes `clean`
(default), `legacy_tensorflow` and `legacy_pytorch`; `clip` (OpenAI CLIP ViT-B/32 through open_clip, CLIP-FID, with
clean-fid's `clip_vit_b_32` preprocessing); `vgg16` (torchvision VGG-16 fc2_relu as torch-fidelity computes it, the
precision/recall feature space).
Users add `python:module:factory`; plugin packages register `ExtractorInfo`s through the `evalsuite.extractors`
entry-point group. Weights only ever come from the weights store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Protocol, TypeVar

import torch
from torch import nn

from evalsuite import openai_clip
from evalsuite import weights as weights_store
from evalsuite.errors import InputError, UnknownNameError
from evalsuite.hashing import sha256_state_dict
from evalsuite.inference import InferenceGraph
from evalsuite.preprocess import Preprocessing, named
from evalsuite.pyspec import load_object
from evalsuite.registry import Registry


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


#: what an extractor's input goes through: a Preprocessing (images) or a video_sampling.VideoPreprocessing (videos)
P = TypeVar("P", bound=_Identified)


@dataclass
class Extractor(Generic[P]):
    """A ready network: `forward` maps an NCHW batch (float32 in [0, 255], or uint8) to (N, dim) features.
    `Extractor[Preprocessing]` for images, `Extractor[VideoPreprocessing]` for videos."""

    id: str
    weights_sha256: str
    preprocessing: P
    dim: int
    forward: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    fast: bool = False  # opt-in: TF32 + autocast (fp16 on CUDA, bf16 on CPU); never the default
    optimize_graph: bool = True  # folded conv+BN / channels_last / frozen TorchScript, checked against the original
    _graph: InferenceGraph | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def cache_key(self) -> dict:
        """The feature cache's key: `key`, kept apart for runs that asked for the network exactly as written."""
        return self.key if self.optimize_graph else {**self.key, "graph": "as written"}

    def runner(self, layout: str = "image") -> InferenceGraph:
        """What run_network calls: the optimised graph once it agreed with `forward`, else `forward` itself."""
        if self._graph is None:
            self._graph = InferenceGraph(self.forward, enabled=self.optimize_graph, channels_last=layout == "image")
        return self._graph

    def graph_report(self) -> dict | None:
        return self._graph.report() if self._graph is not None else None

    @property
    def key(self) -> dict:
        """What identifies these features: cache key, and what reference statistics must share."""
        key = {"extractor": self.id, "weights_sha256": self.weights_sha256, "preprocessing": self.preprocessing.id,
               "dim": self.dim}
        if self.fast:
            key["precision"] = FAST_PRECISION
        return key


FAST_PRECISION = "fast: tf32 + autocast (fp16 cuda / bf16 cpu)"


@dataclass(frozen=True)
class ExtractorInfo:
    """Registry entry: the spec name, the weights it needs, its identity per option (no network needed), and how
    to build it."""

    name: str
    weights: tuple[str, ...]
    description: str
    identity: Callable[[str], tuple[str, Preprocessing, int]]  # option -> (id, preprocessing, dim)
    build: Callable[[str, torch.device, bool | None], Extractor]

    def key(self, option: str) -> dict:
        ext_id, preprocessing, dim = self.identity(option)
        # the published digest, else the trust-on-first-use pin (None until a copy is pinned)
        return {"extractor": ext_id, "weights_sha256": weights_store.expected_digest(self.weights[0]),
                "preprocessing": preprocessing.id, "dim": dim}


#: image feature extractors by spec name; plugins add theirs through the `evalsuite.extractors` entry-point group
EXTRACTORS: Registry[ExtractorInfo] = Registry(
    "extractor", group="evalsuite.extractors", fix="or python:module:factory for your own network")


def register(info: ExtractorInfo) -> ExtractorInfo:
    """Add an extractor under `info.name` (what a plugin module's import does)."""
    return EXTRACTORS.register(info.name, info)


def registered() -> list[ExtractorInfo]:
    return EXTRACTORS.values()


def weights_needed(spec: str) -> tuple[str, ...]:
    """Weights names a spec needs (none for python: extractors, which bring their own)."""
    if spec.startswith("python:"):
        return ()
    return _info(spec.split(":", 1)[0]).weights


def _info(name: str) -> ExtractorInfo:
    return EXTRACTORS.get(name)


def key_of(spec: str) -> dict:
    """The feature key a registered extractor spec produces, without loading its weights (for `ref import`)."""
    if spec.startswith("python:"):
        raise InputError(f"the key of {spec} is only known once it is built", "use a registered extractor name")
    name, _, option = spec.partition(":")
    return _info(name).key(option)


def build(spec: str, device: torch.device | str = "cpu", offline: bool | None = None) -> Extractor:
    """Build the extractor a spec names: `inception[:mode]`, `clip`, `vgg16`, or `python:module:factory`."""
    device = torch.device(device)
    if spec.startswith("python:"):
        return _build_python(spec[len("python:"):], device)
    name, _, option = spec.partition(":")
    return _info(name).build(option, device, offline)


# ----------------------------------------------------------------------------------------------- Inception
INCEPTION_MODES = ("clean", "legacy_tensorflow", "legacy_pytorch")


def _inception_identity(mode: str) -> tuple[str, Preprocessing, int]:
    mode = mode or "clean"
    if mode not in INCEPTION_MODES:
        raise UnknownNameError(f"unknown Inception mode '{mode}'",
                               f"use inception:{' | inception:'.join(INCEPTION_MODES)}")
    return f"inception-2015-12-05/{mode}", named(mode, 299), 2048


class _InceptionFeatures(nn.Module):
    """pool3 features of the TorchScript FID Inception: the whole graph (it resizes and normalises itself) in
    legacy_tensorflow mode, else its `layers` on (x − 128)/128 of an image resized beforehand."""

    def __init__(self, net: torch.jit.ScriptModule, resize_inside: bool):
        super().__init__()
        self.net = net
        self.resize_inside = resize_inside

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.resize_inside:
            return self.net(x, return_features=True).reshape(x.shape[0], -1)
        return self.net.layers((x - 128.0) / 128.0).reshape(x.shape[0], -1)


def _build_inception(mode: str, device: torch.device, offline: bool | None) -> Extractor:
    ext_id, preprocessing, dim = _inception_identity(mode)
    path, digest = weights_store.require_verified("inception-2015-12-05", offline=offline)
    net = torch.jit.load(str(path), map_location=device).eval()
    forward = _InceptionFeatures(net, resize_inside=preprocessing.resize == "none").eval()
    return Extractor(ext_id, digest, preprocessing, dim, forward, device)


register(ExtractorInfo(
    "inception", ("inception-2015-12-05",),
    "FID Inception-v3 pool3 (2048-d); modes clean (default), legacy_tensorflow, legacy_pytorch",
    _inception_identity, _build_inception,
))


# ----------------------------------------------------------------------------------------------- CLIP
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _clip_precision(option: str, device: torch.device | str = "cpu") -> str:
    """`clip` runs in the precision clean-fid's `clip.load` gives on the device (fp16 on CUDA, fp32 on the CPU);
    `clip:fp16` / `clip:fp32` choose one (e.g. to import clean-fid statistics computed on a GPU)."""
    if option and option not in openai_clip.PRECISIONS:
        raise InputError(f"extractor 'clip' takes fp16 or fp32 as its option, got 'clip:{option}'",
                         "use --extractor clip (the official precision for the device), clip:fp16 or clip:fp32")
    return option or openai_clip.official_precision(device)


def _clip_identity(option: str, device: torch.device | str = "cpu") -> tuple[str, Preprocessing, int]:
    # clean-fid's clip_vit_b_32 (cleanfid/clip_features.py img_preprocess_clip): bicubic shorter side to 224 on the
    # uint8 PIL image, centre crop 224x224, uint8; fp16 features carry their precision in the id
    suffix = "@fp16" if _clip_precision(option, device) == "fp16" else ""
    return f"clip-vit-b-32-openai{suffix}", Preprocessing("pil-bicubic-short-crop", (224, 224), "uint8"), 512


def _build_clip(option: str, device: torch.device, offline: bool | None) -> Extractor:
    ext_id, preprocessing, dim = _clip_identity(option, device)
    path, digest = weights_store.require_verified("clip-vit-b-32-openai", offline=offline)
    model = openai_clip.load(path, device, _clip_precision(option, device))
    mean = torch.tensor(_CLIP_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(_CLIP_STD, device=device).view(1, 3, 1, 1)

    def forward(x: torch.Tensor) -> torch.Tensor:
        # clean-fid: ToTensor() (u8 / 255) * 255 in its dataset, / 255 in CLIP_fx, then Normalize: the same float32
        # roundings, so the network input is bit-identical to clean-fid's
        x = x.float() / 255 * 255 / 255.0
        return openai_clip.encode_image(model, (x - mean) / std)

    dim = int(getattr(model.visual, "output_dim", dim))  # 512 for ViT-B/32; read from the loaded model
    return Extractor(ext_id, digest, preprocessing, dim, forward, device)


register(ExtractorInfo(
    "clip", ("clip-vit-b-32-openai",),
    "OpenAI CLIP ViT-B/32 image embedding (512-d) for CLIP-FID; clean-fid's bicubic shorter side 224 + centre crop; "
    "fp16 on CUDA and fp32 on the CPU as clean-fid's clip.load (clip:fp16 / clip:fp32 choose)",
    _clip_identity, _build_clip,
))


# ----------------------------------------------------------------------------------------------- CLIP L/14@336
# CMMD (google-research cmmd): io_util.py `_center_crop_and_resize` (centre square crop, uint8 PIL bicubic to 336),
# `/ 255.0` in float32, embedding.py `_clip_preprocess` (jax.image.resize to the same 336x336: identity; scenic
# `normalize_image` with CLIP mean/std), scenic CLIP `encode_image` with normalize=True (unit L2 norm); float32.
def _clip_l14_336_identity(option: str) -> tuple[str, Preprocessing, int]:
    if option:
        raise InputError(f"extractor 'clip-l14-336' takes no option, got 'clip-l14-336:{option}'", "use clip-l14-336")
    return "clip-vit-l-14-336-openai/l2norm", Preprocessing("pil-crop-bicubic", (336, 336), "uint8"), 768


def _build_clip_l14_336(option: str, device: torch.device, offline: bool | None) -> Extractor:
    ext_id, preprocessing, dim = _clip_l14_336_identity(option)
    path, digest = weights_store.require_verified("clip-vit-l-14-336-openai", offline=offline)
    model = openai_clip.load(path, device, "fp32")  # CMMD runs the JAX port in float32
    mean = torch.tensor(_CLIP_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(_CLIP_STD, device=device).view(1, 3, 1, 1)

    def forward(x: torch.Tensor) -> torch.Tensor:
        emb = openai_clip.encode_image(model, (x.float() / 255.0 - mean) / std)
        return emb / torch.linalg.vector_norm(emb, dim=-1, keepdim=True)

    dim = int(getattr(model.visual, "output_dim", dim))
    return Extractor(ext_id, digest, preprocessing, dim, forward, device)


register(ExtractorInfo(
    "clip-l14-336", ("clip-vit-l-14-336-openai",),
    "OpenAI CLIP ViT-L/14@336px image embedding (768-d, unit norm) for CMMD; CMMD's centre square crop + uint8 PIL "
    "bicubic to 336, float32",
    _clip_l14_336_identity, _build_clip_l14_336,
))


# ----------------------------------------------------------------------------------------------- VGG-16
# torch-fidelity 0.4 feature_extractor_vgg16.py: uint8 -> float32, TF1 bilinear to 224x224, ImageNet mean/std
# scaled by 255, torchvision VGG-16 without the classifier's last ReLU/Dropout/Linear, ReLU ('fc2_relu')
_VGG_MEAN = (255 * 0.485, 255 * 0.456, 255 * 0.406)
_VGG_STD = (255 * 0.229, 255 * 0.224, 255 * 0.225)


def _vgg16_identity(option: str) -> tuple[str, Preprocessing, int]:
    if option:
        raise InputError(f"extractor 'vgg16' takes no option, got 'vgg16:{option}'", "use vgg16")
    return "vgg16-imagenet1k-v1/fc2_relu", Preprocessing("tf1-bilinear", (224, 224)), 4096


class _VGG16Features(nn.Module):
    """fc2_relu of torchvision's VGG-16 on a batch already resized to 224 (float32 in [0, 255])."""

    mean: torch.Tensor  # buffers
    std: torch.Tensor

    def __init__(self, net: Any):  # torchvision.models.VGG (torchvision ships no types)
        super().__init__()
        self.features, self.avgpool = net.features, net.avgpool
        self.fc = net.classifier[:4]  # Linear, ReLU, Dropout (identity in eval), Linear = fc2
        self.register_buffer("mean", torch.tensor(_VGG_MEAN, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_VGG_STD, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.float() - self.mean) / self.std
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return torch.relu(self.fc(x))


def _build_vgg16(option: str, device: torch.device, offline: bool | None) -> Extractor:
    import torchvision

    ext_id, preprocessing, dim = _vgg16_identity(option)
    path, digest = weights_store.require_verified("vgg16-imagenet1k-v1", offline=offline)
    net = torchvision.models.vgg16()
    net.load_state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
    forward = _VGG16Features(net).to(device).eval().requires_grad_(False)
    return Extractor(ext_id, digest, preprocessing, dim, forward, device)


register(ExtractorInfo(
    "vgg16", ("vgg16-imagenet1k-v1",),
    "torchvision VGG-16 fc2_relu (4096-d) as torch-fidelity computes it: TF1 bilinear to 224; precision/recall",
    _vgg16_identity, _build_vgg16,
))


# ----------------------------------------------------------------------------------------------- DINOv2 ViT-L/14
def _dinov2_identity(option: str) -> tuple[str, Preprocessing, int]:
    # dgm-eval dgm_eval/models/dinov2.py: Resize((224, 224), BICUBIC) on the uint8 PIL image, ToTensor, ImageNet
    # Normalize; the hub model's normalised CLS token, float32 (evalsuite.dinov2)
    if option:
        raise InputError(f"extractor 'dinov2-vitl14' takes no option, got 'dinov2-vitl14:{option}'",
                         "use dinov2-vitl14")
    return "dinov2-vitl14/cls", Preprocessing("pil-bicubic", (224, 224), "uint8"), 1024


def _build_dinov2(option: str, device: torch.device, offline: bool | None) -> Extractor:
    from evalsuite import dinov2

    ext_id, preprocessing, dim = _dinov2_identity(option)
    path, digest = weights_store.require_verified("dinov2-vitl14", offline=offline)
    model = dinov2.load_vitl14(str(path), device)
    return Extractor(ext_id, digest, preprocessing, model.net.num_features, model, device)


register(ExtractorInfo(
    "dinov2-vitl14", ("dinov2-vitl14",),
    "DINOv2 ViT-L/14 normalised CLS token (1024-d) for FD-DINOv2, as dgm-eval encodes: PIL bicubic to 224x224, "
    "ImageNet normalisation, float32",
    _dinov2_identity, _build_dinov2,
))


# ----------------------------------------------------------------------------------------------- user networks
def _declared_preprocessing(module: nn.Module) -> Preprocessing:
    """A user module declares `preprocessing`: a Preprocessing, a clean-fid mode name, or a dict of its fields."""
    declared = getattr(module, "preprocessing", None)
    if declared is None:
        raise InputError(
            f"extractor {type(module).__name__} does not declare its preprocessing",
            "set module.preprocessing = 'clean' (or 'legacy_pytorch', or "
            "{'resize': 'none', 'input_dtype': 'uint8'}) and module.input_size = 299 where a size applies",
        )
    if isinstance(declared, Preprocessing):
        return declared
    if isinstance(declared, str):
        return named(declared, int(getattr(module, "input_size", 299)))
    if isinstance(declared, dict):
        size = declared.get("size")
        return Preprocessing(declared.get("resize", "none"), tuple(size) if size else None,
                             declared.get("input_dtype", "float255"))
    raise InputError(f"extractor {type(module).__name__} has an unusable preprocessing {declared!r}",
                     "use a mode name, a dict, or evalsuite.preprocess.Preprocessing")


def _build_python(target: str, device: torch.device) -> Extractor:
    factory = load_object(target, "extractor")
    module = factory() if callable(factory) and not isinstance(factory, nn.Module) else factory
    if not isinstance(module, nn.Module):
        raise InputError(f"extractor factory python:{target} returned {type(module).__name__}, not an nn.Module",
                         "return a torch.nn.Module mapping an image batch to (N, d) features")
    preprocessing = _declared_preprocessing(module)
    module = module.to(device).eval()
    dim = getattr(module, "num_features", None)
    if dim is None:
        size = preprocessing.size or (299, 299)
        dummy = torch.zeros(1, 3, size[1], size[0], device=device)
        with torch.inference_mode():
            dim = module(dummy.to(torch.uint8) if preprocessing.input_dtype == "uint8" else dummy).shape[-1]
    return Extractor(f"python:{target}", sha256_state_dict(module), preprocessing, int(dim), module, device)
