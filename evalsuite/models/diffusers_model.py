"""`diffusers:PATH[?key=value&...]`: a local diffusers pipeline folder (optional extra `evalsuite[diffusers]`,
imported lazily). Weights load from safetensors only; nothing is downloaded. Query keys are passed to the
pipeline call, e.g. `diffusers:/ckpt/snapgen?num_inference_steps=4&guidance_scale=0`."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import parse_qsl

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
        self.pipe.set_progress_bar_config(disable=True)
        self.takes_prompt = "prompt" in inspect.signature(self.pipe.__call__).parameters
        self.call_kwargs = call_kwargs
        settings = f"?{sorted(call_kwargs.items())}" if call_kwargs else ""
        self.model_id = f"diffusers:{folder.name}@{folder_fingerprint(folder)[:16]}{settings}"

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list:
        images = []
        for prompt, seed in zip(prompts, seeds):
            gen = self.torch.Generator(self.device).manual_seed(int(seed))
            kwargs = {"prompt": prompt} if self.takes_prompt else {}  # unconditional pipelines ignore prompts
            images.append(self.pipe(generator=gen, **kwargs, **self.call_kwargs).images[0])
        return images


def _parse_value(text: str) -> int | float | str | bool:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _resolve(arg: str) -> ModelSource:
    path_part, _, query = arg.partition("?")
    call_kwargs: dict[str, Any] = {k: _parse_value(v) for k, v in parse_qsl(query)}  # may name device= too
    folder = Path(path_part).expanduser()
    if not (folder / "model_index.json").is_file():
        raise InputError(f"{folder} is not a diffusers pipeline folder (no model_index.json)",
                         "pass the folder written by pipeline.save_pretrained()")
    gen = DiffusersGenerator(folder, **call_kwargs)
    index = json.loads((folder / "model_index.json").read_text())
    return ModelSource(spec=f"diffusers:{arg}", model_id=gen.model_id, kind="generator", generator=gen,
                       info={"folder": str(folder.resolve()), "pipeline": index.get("_class_name"),
                             "call_kwargs": call_kwargs})


_resolve.reads_query = True  # type: ignore[attr-defined]  # its query is the pipeline call's arguments
register_scheme("diffusers", _resolve)
