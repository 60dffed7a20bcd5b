"""`diffusers:PATH`: a local diffusers pipeline folder (optional extra `evalsuite[diffusers]`, imported lazily).
Weights load from safetensors only; nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from evalsuite.errors import InputError
from evalsuite.hashing import sha256_json
from evalsuite.models.base import ModelSource, register_scheme


def folder_fingerprint(folder: Path) -> str:
    """Identity of a pipeline folder without hashing gigabytes: its JSON configs' content plus every file's size."""
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            rel = str(path.relative_to(folder))
            entries.append([rel, path.stat().st_size, path.read_text() if path.suffix == ".json" else None])
    return sha256_json(entries)


class DiffusersGenerator:
    """Runs a local pipeline once per (prompt, seed) with a seeded torch.Generator."""

    def __init__(self, folder: Path, device: str | None = None, **call_kwargs):
        try:
            import diffusers
            import torch
        except ImportError as exc:
            raise InputError("diffusers is not installed", "pip install 'evalsuite[diffusers]'") from exc
        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.pipe = diffusers.DiffusionPipeline.from_pretrained(
            str(folder), use_safetensors=True, local_files_only=True).to(self.device)
        self.call_kwargs = call_kwargs
        self.model_id = f"diffusers:{folder.name}@{folder_fingerprint(folder)[:16]}"

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list:
        images = []
        for prompt, seed in zip(prompts, seeds):
            gen = self.torch.Generator(self.device).manual_seed(int(seed))
            images.append(self.pipe(prompt=prompt, generator=gen, **self.call_kwargs).images[0])
        return images


def _resolve(arg: str) -> ModelSource:
    folder = Path(arg).expanduser()
    if not (folder / "model_index.json").is_file():
        raise InputError(f"{folder} is not a diffusers pipeline folder (no model_index.json)",
                         "pass the folder written by pipeline.save_pretrained()")
    gen = DiffusersGenerator(folder)
    index = json.loads((folder / "model_index.json").read_text())
    return ModelSource(spec=f"diffusers:{arg}", model_id=gen.model_id, kind="generator", generator=gen,
                       info={"folder": str(folder.resolve()), "pipeline": index.get("_class_name")})


register_scheme("diffusers", _resolve)
