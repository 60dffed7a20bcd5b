"""Weights store: a registry of known files (URL, sha256, size, licence) and a local, verified cache.

Nothing is ever replaced by random weights: a missing file raises MissingWeightsError with both fixing commands.
Where no digest has been published (`sha256=None`, e.g. StyleGAN-V's I3D), the first file fetched or imported is
pinned (trust on first use) in `weights/pins.json`; later files must match the pin, and every result records the
digest it used, so a changed file can never pass silently.

Files are verified when used, not only when fetched: `require` hashes the stored file once per process (cached by
the file's identity: path, device, inode, size, mtime_ns, ctime_ns) and refuses one that no longer matches, and
`require_verified` returns the digest of the file actually loaded, which keys the feature caches.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from evalsuite import config
from evalsuite.errors import InputError, MissingWeightsError, WeightsIntegrityError
from evalsuite.fsutil import atomic_write, atomic_write_bytes
from evalsuite.hashing import sha256_file, sha256_file_remembered
from evalsuite.registry import Registry


@dataclass(frozen=True)
class WeightsSpec:
    """One downloadable weights file; `sha256` is the full digest the downloaded bytes must have (None: no published
    digest, so the first copy is pinned)."""

    name: str
    filename: str
    url: str
    sha256: str | None
    size_bytes: int | None
    licence: str
    description: str


#: every known weights file by name (`REGISTRY[name]` reads like a dict; an unknown name lists the known ones)
REGISTRY: Registry[WeightsSpec] = Registry("weights", plural="weights", fix="see `evalsuite weights list`")


def register(spec: WeightsSpec) -> WeightsSpec:
    """Add a weights file to the registry (a plugin's extractor registers the weights it loads this way)."""
    return REGISTRY.register(spec.name, spec)


register(WeightsSpec(
    name="inception-2015-12-05",
    filename="inception-2015-12-05.pt",
    url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",
    sha256="f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4",
    size_bytes=None,
    licence="Apache-2.0 (TensorFlow inception-2015-12-05 graph; TorchScript port by NVIDIA, StyleGAN2-ADA)",
    description="FID Inception-v3, TorchScript (clean-fid / StyleGAN2-ADA / StyleGAN-V), 2048-d pool3",
))
register(WeightsSpec(
    name="clip-vit-b-32-openai",
    filename="ViT-B-32.pt",
    url="https://openaipublic.azureedge.net/clip/models/"
    "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
    sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
    size_bytes=None,
    licence="MIT (OpenAI CLIP)",
    description="OpenAI CLIP ViT-B/32 (open_clip 'ViT-B-32', pretrained='openai'), 512-d image embedding for CLIP-FID",
))
register(WeightsSpec(
    name="alexnet-imagenet",
    filename="alexnet-owt-7be5be79.pth",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
    size_bytes=244_408_911,
    licence="BSD-3-Clause (torchvision)",
    description="torchvision AlexNet ImageNet weights: the LPIPS v0.1 'alex' backbone "
                "(linear heads ship with torchmetrics)",
))
register(WeightsSpec(
    name="vgg16-imagenet1k-v1",
    filename="vgg16-397923af.pth",
    url="https://download.pytorch.org/models/vgg16-397923af.pth",
    # torchvision names files by their sha256 prefix (397923af); the full digest as published by several
    # independent checksum lists of this file
    sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
    size_bytes=553_433_881,
    licence="BSD-3-Clause (torchvision)",
    description="torchvision VGG-16 IMAGENET1K_V1, what torch-fidelity loads: fc2_relu features for precision/recall",
))
register(WeightsSpec(
    name="clip-vit-l-14-openai",
    filename="ViT-L-14.pt",
    url="https://openaipublic.azureedge.net/clip/models/"
    "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
    sha256="b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
    size_bytes=None,
    licence="MIT (OpenAI CLIP)",
    description="OpenAI CLIP ViT-L/14: GenEval's zero-shot colour classifier",
))
register(WeightsSpec(
    name="clip-vit-l-14-336-openai",
    filename="ViT-L-14-336px.pt",
    url="https://openaipublic.azureedge.net/clip/models/"
    "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt",
    # OpenAI's `clip` package names each file by its sha256 and checks it (clip/clip.py `_download`); scenic's
    # CLIP loader, which CMMD uses, downloads the same URL with expected_sha256 = that path segment
    sha256="3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
    size_bytes=None,
    licence="MIT (OpenAI CLIP)",
    description="OpenAI CLIP ViT-L/14@336px: CMMD's image embedding (768-d, L2-normalised)",
))
register(WeightsSpec(
    name="maskrcnn-v2-coco",
    filename="maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",
    url="https://download.pytorch.org/models/maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",
    sha256="73cbd0190fcbe3ba339921fbce2c3a0b6bb9126c9a133c85e43a2a8e060a109e",
    size_bytes=185_828_065,
    licence="BSD-3-Clause (torchvision)",
    description="torchvision Mask R-CNN ResNet-50 FPN v2, COCO: the installable GenEval/counting detector protocol",
))
register(WeightsSpec(
    name="i3d-torchscript",
    filename="i3d_torchscript.pt",
    url="https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
    sha256=None,  # no digest is published for StyleGAN-V's file: the first copy is pinned (trust on first use)
    size_bytes=None,
    licence="Apache-2.0 (DeepMind I3D Kinetics-400); TorchScript port distributed with StyleGAN-V",
    description="I3D Kinetics-400, TorchScript (StyleGAN-V fvd2048_16f), 400-d features for FVD",
))
register(WeightsSpec(
    name="videomae-v2-g-ssv2",
    filename="vit_g_hybrid_pt_1200e_ssv2_ft.pth",
    url="https://pjlab-gvm-data.oss-cn-shanghai.aliyuncs.com/internvideo/videomaev2/vit_g_hybrid_pt_1200e_ssv2_ft.pth",
    sha256=None,  # no published digest (cd-fvd downloads it unchecked): the first copy is pinned (trust on first use)
    size_bytes=None,
    licence="OpenGVLab VideoMAE V2 checkpoint, as cd-fvd fetches it (terms: github.com/OpenGVLab/VideoMAEv2)",
    description="VideoMAE-v2 ViT-g/14 fine-tuned on SSv2: cd-fvd's VideoMAE FVD network, 1408-d fc_norm features",
))
register(WeightsSpec(
    name="dino-vitb16",
    filename="dino_vitbase16_pretrain.pth",
    url="https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth",
    sha256=None,  # Meta publishes no digest for this file: the first copy is pinned (trust on first use)
    size_bytes=None,
    licence="Apache-2.0 (facebookresearch/dino)",
    description="DINO ViT-B/16 backbone (torch.hub dino_vitb16), 768-d CLS token: VBench subject_consistency",
))
register(WeightsSpec(
    name="dinov2-vitl14",
    filename="dinov2_vitl14_pretrain.pth",
    url="https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth",
    sha256=None,  # facebookresearch/dinov2 (hubconf, README) publishes no digest: the first copy is pinned (TOFU)
    size_bytes=None,
    licence="Apache-2.0 (facebookresearch/dinov2)",
    description="DINOv2 ViT-L/14 backbone (torch.hub dinov2_vitl14, what dgm-eval loads), 1024-d CLS token: "
                "FD-DINOv2",
))
register(WeightsSpec(
    name="hpsv2.1",
    filename="HPS_v2.1_compressed.pt",
    url="https://huggingface.co/xswu/HPSv2/resolve/main/HPS_v2.1_compressed.pt",
    sha256=None,  # tgxs002/HPSv2 and the hpsv2 package publish no digest (hf_hub_download, unchecked): TOFU pin
    size_bytes=None,
    licence="Apache-2.0 (tgxs002/HPSv2)",
    description="HPSv2.1: OpenCLIP ViT-H-14 fine-tuned on human preferences (hpsv2 hps_version v2.1), `hpsv2` task",
))
register(WeightsSpec(
    name="hpsv2.0",
    filename="HPS_v2_compressed.pt",
    url="https://huggingface.co/xswu/HPSv2/resolve/main/HPS_v2_compressed.pt",
    sha256=None,  # no published digest (as hpsv2.1): trust on first use
    size_bytes=None,
    licence="Apache-2.0 (tgxs002/HPSv2)",
    description="HPSv2.0: OpenCLIP ViT-H-14 fine-tuned on HPD v2 (hpsv2 hps_version v2.0), `hpsv2 -o version=v2.0`",
))
register(WeightsSpec(
    name="aesthetic-sac-logos-ava1-l14",
    filename="sac+logos+ava1-l14-linearMSE.pth",
    url="https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/"
    "sac%2Blogos%2Bava1-l14-linearMSE.pth",
    # the file as committed in christophschuhmann/improved-aesthetic-predictor (git blob 7c0d8aa2, 3,714,759 bytes)
    sha256="21dd590f3ccdc646f0d53120778b296013b096a035a2718c9cb0d511bff0f1e0",
    size_bytes=3_714_759,
    licence="Apache-2.0 (christophschuhmann/improved-aesthetic-predictor)",
    description="LAION improved aesthetic predictor head (MLP on OpenAI CLIP ViT-L/14 embeddings), `aesthetic` task",
))
register(WeightsSpec(
    name="imagereward-v1.0",
    filename="ImageReward.pt",
    url="https://huggingface.co/THUDM/ImageReward/resolve/main/ImageReward.pt",
    sha256=None,  # THUDM publishes no digest (the image-reward package's hf_hub_download is unchecked): TOFU pin
    size_bytes=None,
    licence="Apache-2.0 (THUDM/ImageReward)",
    description="ImageReward v1.0: BLIP ViT-L/16 + BERT cross-attention text encoder + reward MLP (image-reward "
                "1.5's ImageReward.load('ImageReward-v1.0')), `imagereward` task",
))
register(WeightsSpec(
    name="bert-base-uncased-vocab",
    filename="bert-base-uncased-vocab.txt",
    url="https://huggingface.co/google-bert/bert-base-uncased/resolve/main/vocab.txt",
    sha256=None,  # no published digest: the first copy is pinned (trust on first use)
    size_bytes=None,
    licence="Apache-2.0 (google-research/bert)",
    description="bert-base-uncased WordPiece vocabulary (30522 tokens): the tokenizer BLIP's init_tokenizer loads, "
                "`imagereward` task",
))
register(WeightsSpec(
    name="blip-vqa-capfilt-large",
    filename="model_base_vqa_capfilt_large.pth",
    url="https://storage.googleapis.com/sfr-vision-language-research/BLIP/models/model_base_vqa_capfilt_large.pth",
    sha256=None,  # no published digest: the first copy is pinned (trust on first use)
    size_bytes=None,
    licence="BSD-3-Clause (salesforce/BLIP)",
    description="BLIP VQA base (CapFilt-L, VQAv2 fine-tuned, 480 px): T2I-CompBench's BLIP-VQA "
                "(BLIPvqa_eval/configs/vqa.yaml), `t2i-compbench` colour/shape/texture",
))


def get_spec(name: str) -> WeightsSpec:
    return REGISTRY.get(name)


def local_path(name: str) -> Path:
    """Where the verified file lives in the store (it may not exist)."""
    spec = get_spec(name)
    return config.weights_dir() / spec.filename


def is_present(name: str) -> bool:
    return local_path(name).is_file()


def _pins_path() -> Path:
    return config.weights_dir() / "pins.json"


def _pins() -> dict[str, str]:
    """The trust-on-first-use pins; a damaged pins file is an error (never read as "nothing pinned")."""
    path = _pins_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise WeightsIntegrityError(f"cannot read the weights pins file {path}: {exc}", _PINS_FIX) from exc
    try:
        pins = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise WeightsIntegrityError(f"the weights pins file {path} is not valid JSON: {exc}", _PINS_FIX) from exc
    if not isinstance(pins, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in pins.items()):
        raise WeightsIntegrityError(f"the weights pins file {path} is not an object of name: sha256 strings",
                                    _PINS_FIX)
    return pins


_PINS_FIX = ("restore it, or delete it to trust the next copy of each unpublished file again "
             "(`evalsuite weights verify` shows what is stored)")


def expected_digest(name: str) -> str | None:
    """The digest a file must have: the registry's, else the pinned one (None until something is pinned)."""
    spec = get_spec(name)
    return spec.sha256 or _pins().get(name)


_DIGESTS: dict[tuple, str] = {}  # file identity -> sha256, for this process


def file_digest(path: str | Path) -> str:
    """sha256 of a file, hashed once while its identity (path, device, inode, size, mtime_ns, ctime_ns) is
    unchanged: per process, and across runs through `hashing.sha256_file_remembered`; a file modified while it is
    hashed is not cached."""

    def identity() -> tuple:
        st = os.stat(path)
        return (os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    key = identity()
    if key not in _DIGESTS:
        digest = sha256_file_remembered(path, hasher=lambda p: sha256_file(p))  # remembered across runs too
        if identity() != key:
            return digest
        _DIGESTS[key] = digest
    return _DIGESTS[key]


def _verify_digest(spec: WeightsSpec, path: Path, origin: str | Path | None = None, digest: str | None = None) -> str:
    """Check `path` against the registry (or the pin); the error names `origin` (the user's file or the URL) and
    the commands that install the right file."""
    digest = digest or sha256_file(path)
    expected = expected_digest(spec.name)
    if expected is None:
        return digest  # nothing published or pinned yet: the caller pins it
    if digest != expected:
        source = "registry" if spec.sha256 else f"pin in {_pins_path()} (no published digest; first copy trusted)"
        raise WeightsIntegrityError(
            f"{origin or path} has sha256 {digest}, but weights '{spec.name}' must have {expected} ({source})",
            f"this is not the file {spec.filename} from {spec.url}: `evalsuite weights fetch {spec.name}` (downloads "
            f"and verifies it) or `evalsuite weights import {spec.name} /path/to/{spec.filename}`"
            + ("" if spec.sha256 else f", or delete the '{spec.name}' entry of {_pins_path()} to trust a new copy"),
        )
    return digest


def _pin(spec: WeightsSpec, digest: str) -> None:
    if spec.sha256 is None and spec.name not in _pins():
        atomic_write_bytes(_pins_path(), json.dumps({**_pins(), spec.name: digest}, indent=1).encode())


def _install(spec: WeightsSpec, source: Path) -> Path:
    """Copy `source` into the store atomically; the copy's digest is checked before it is moved into place."""

    digest: list[str] = []

    def copy_and_verify(tmp: str) -> None:
        shutil.copyfile(source, tmp)
        digest.append(_verify_digest(spec, Path(tmp), origin=source))

    path = atomic_write(local_path(spec.name), copy_and_verify, suffix=".part")
    _pin(spec, digest[0])
    return path


def import_file(name: str, file: str | Path) -> Path:
    """Import a local copy (for machines without internet): checked against the registry's sha256 first."""
    spec = get_spec(name)
    src = Path(file)
    if not src.is_file():
        raise InputError(f"weights file {src} does not exist", f"pass the path of a downloaded {spec.filename}")
    return _install(spec, src)


def fetch(name: str, *, offline: bool | None = None, progress: bool = True) -> Path:
    """Download a registered file into the store (with a progress bar) and verify it; no-op when present."""
    spec = get_spec(name)
    dest = local_path(name)
    if dest.is_file():
        try:
            _check_stored(name)
            return dest
        except WeightsIntegrityError:
            if config.offline(offline):
                raise
            # damaged or replaced: download it again (the atomic rename replaces it only once verified)
    if config.offline(offline):
        raise MissingWeightsError(name, spec.filename, str(dest), offline=True)

    digest: list[str] = []

    def download_and_verify(tmp: str) -> None:
        with urllib.request.urlopen(spec.url, timeout=60) as resp, open(tmp, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or spec.size_bytes
            with tqdm(total=total, unit="B", unit_scale=True, desc=spec.filename, disable=not progress) as bar:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
        digest.append(_verify_digest(spec, Path(tmp), origin=spec.url))

    try:
        path = atomic_write(dest, download_and_verify, suffix=".download")
    except OSError as exc:
        raise MissingWeightsError(name, spec.filename, str(dest), offline=False) from exc
    _pin(spec, digest[0])
    return path


def _check_stored(name: str) -> str:
    """The stored file's digest, checked against the registry or the pin (an unpinned file is pinned now: trust
    on first use); a mismatch raises WeightsIntegrityError naming the file and the fixing commands."""
    spec, path = get_spec(name), local_path(name)
    digest = _verify_digest(spec, path, origin=f"weights file {path}", digest=file_digest(path))
    _pin(spec, digest)
    return digest


def require_verified(name: str, *, offline: bool | None = None) -> tuple[Path, str]:
    """(path, sha256) of a weights file, fetched on first use unless offline (then MissingWeightsError), and
    checked on every use (hashed once per process per file identity); the sha256 is that of the file actually
    loaded: record it and key caches by it."""
    path = local_path(name)
    if not path.is_file():
        fetch(name, offline=offline)
    return path, _check_stored(name)


def require(name: str, *, offline: bool | None = None) -> Path:
    """Path of a verified weights file (see `require_verified`)."""
    return require_verified(name, offline=offline)[0]


def verify(names: list[str] | None = None) -> list[dict]:
    """Check every present file (or the named ones) against the registry; returns one row per weights entry."""
    rows = []
    for name in names or REGISTRY.names():
        spec = get_spec(name)
        path = local_path(name)
        row = {"name": name, "file": str(path), "present": path.is_file(), "ok": None,
               "published_digest": spec.sha256 is not None}
        if path.is_file():
            digest = sha256_file(path)
            row["ok"] = digest == expected_digest(name)
            row["sha256"] = digest
        rows.append(row)
    return rows


def list_weights() -> list[dict]:
    return [{**asdict(spec), "present": is_present(spec.name), "path": str(local_path(spec.name)),
             "pinned_sha256": None if spec.sha256 else _pins().get(spec.name)}
            for spec in REGISTRY.values()]
