"""Autoencoder adapters: `demo-ae[:f=8,c=4]` (built in, weight-free), `diffusers-ae:PATH`, and `python:module:factory`
returning an object with `encode`/`decode`.

Tensor layouts (the protocol every autoencoder follows):

* images: `encode(x)` takes float32 `(N, 3, H, W)` in [-1, 1] and returns a latent tensor `(N, C, h, w)`;
  `decode(z)` returns `(N, 3, H, W)` in [-1, 1] (values outside are clamped before metrics).
* videos: `x` is `(N, 3, T, H, W)` in [-1, 1], `z` is `(N, C, t, h, w)`; declare `kind = "video"`.
  An image autoencoder (`kind = "image"`, the default) given video data is applied frame by frame.

Optional attributes: `model_id` (names the checkpoint; used for stored reconstructions), `weights_sha256`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F

from evalsuite.errors import InputError
from evalsuite.models.base import ModelSource, register_scheme


@runtime_checkable
class Autoencoder(Protocol):
    def encode(self, x: torch.Tensor) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


class DemoAE:
    """Weight-free baseline: area downsampling by `f`, a fixed 3->C linear map, and its pseudo-inverse followed by
    bicubic upsampling. Deterministic; the offline default for the autoencoder tasks."""

    kind = "image"

    def __init__(self, f: int = 8, c: int = 4):
        if f < 1 or c < 3:
            raise InputError(f"demo-ae needs f >= 1 and c >= 3, got f={f}, c={c}", "write e.g. demo-ae:f=8,c=4")
        self.f, self.c = f, c
        self.model_id = f"demo-ae@1/f{f}c{c}"
        extra = torch.tensor([[0.299, 0.587, 0.114], [0.5, -0.5, 0.0], [0.25, 0.25, -0.5]])
        rows = [torch.eye(3)] + [extra[i % 3:i % 3 + 1] * (1 + i // 3) for i in range(c - 3)]
        self.mix = torch.cat(rows)[:c]  # (C, 3)
        self.unmix = torch.linalg.pinv(self.mix)  # (3, C)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        z = F.avg_pool2d(x, self.f) if self.f > 1 else x
        return torch.einsum("ck,nkhw->nchw", self.mix.to(x), z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.einsum("kc,nchw->nkhw", self.unmix.to(z), z)
        if self.f > 1:
            x = F.interpolate(x, scale_factor=self.f, mode="bicubic", align_corners=False)
        return x


def _parse_options(arg: str) -> dict[str, int]:
    out = {}
    for part in filter(None, arg.split(",")):
        key, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise InputError(f"cannot parse demo-ae option '{part}'", "write e.g. demo-ae:f=8,c=4")
        out[key.strip()] = int(value)
    return out


def _resolve_demo(arg: str) -> ModelSource:
    opts = _parse_options(arg)
    unknown = set(opts) - {"f", "c"}
    if unknown:
        raise InputError(f"unknown demo-ae option(s) {sorted(unknown)}", "demo-ae takes f (factor) and c (channels)")
    ae = DemoAE(**opts)
    return ModelSource(spec="demo-ae" + (f":{arg}" if arg else ""), model_id=ae.model_id, kind="autoencoder",
                       autoencoder=ae, default_suite="autoencoder",
                       info={"weights": "none (area downsampling + bicubic upsampling)", "f": ae.f, "c": ae.c})


class DiffusersAE:
    """A local diffusers autoencoder (AutoencoderKL, a video AE, ...): encode returns the posterior mode."""

    def __init__(self, folder: Path, device: str = "cpu"):
        try:
            import diffusers
        except ImportError as exc:
            raise InputError("diffusers is not installed", "pip install 'evalsuite[diffusers]'") from exc
        config = json.loads((folder / "config.json").read_text())
        cls_name = config.get("_class_name", "AutoencoderKL")
        cls = getattr(diffusers, cls_name, None)
        if cls is None:
            raise InputError(f"{folder}/config.json names {cls_name}, which this diffusers does not have",
                             "upgrade diffusers or check the folder")
        self.model = cls.from_pretrained(str(folder), use_safetensors=True, local_files_only=True).eval().to(device)
        self.kind = "video" if any(k in cls_name.lower() for k in ("video", "wan", "ltx", "mochi", "hunyuan",
                                                                    "cogvideo", "temporal", "3d")) else "image"
        from evalsuite.models.diffusers_model import folder_fingerprint

        self.model_id = f"diffusers-ae:{folder.name}@{folder_fingerprint(folder)[:16]}"

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model.encode(x)
        latent = getattr(out, "latent_dist", None)  # `or` would ask a latents tensor for its truth value
        latent = getattr(out, "latents", None) if latent is None else latent
        latent = out[0] if latent is None else latent
        return latent if isinstance(latent, torch.Tensor) else latent.mode()  # a Tensor's .mode() is statistics

    @torch.inference_mode()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.model.decode(z)
        return out.sample if hasattr(out, "sample") else out[0]


def _resolve_diffusers(arg: str) -> ModelSource:
    folder = Path(arg).expanduser()
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder} is not a diffusers autoencoder folder (no config.json)",
                         "pass the folder written by autoencoder.save_pretrained()")
    ae = DiffusersAE(folder)
    return ModelSource(spec=f"diffusers-ae:{arg}", model_id=ae.model_id, kind="autoencoder", autoencoder=ae,
                       default_suite="autoencoder", info={"folder": str(folder.resolve()), "kind": ae.kind})


def autoencoder_source(spec: str, obj: Any, info: dict, model_id: str) -> ModelSource:
    """A ModelSource for a `python:` factory that returned an autoencoder (`model_id`: its own or its fingerprint)."""
    return ModelSource(spec=spec, model_id=model_id, kind="autoencoder", autoencoder=obj, default_suite="autoencoder",
                       info={**info, "kind": getattr(obj, "kind", "image")})


register_scheme("demo-ae", _resolve_demo)
register_scheme("diffusers-ae", _resolve_diffusers)
