"""The prompt-grid sample layout of the text-image tasks, GenEval's folder layout (used by GenEval, counting and
DPG-Bench; it lives in the core because the run context builds it): `<dir>/<NNNNN>/metadata.jsonl` +
`<dir>/<NNNNN>/samples/<jjjj>.png`, written from the sample store (N images per prompt, seeds recorded) or read from a
folder made elsewhere, so one scorer serves both.

Seeds: image j of prompt i uses `seed + i * N + j`. Files are hard links to the content-addressed samples (copies
where links are impossible), so a layout costs no extra disk and regenerates nothing."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from evalsuite.errors import InputError
from evalsuite.fsutil import atomic_write, atomic_write_bytes
from evalsuite.hashing import sha256_json
from evalsuite.samples import SampleRequest, SampleStore


@dataclass
class PromptSamples:
    """One prompt's metadata and its images; `missing` counts expected images that do not exist."""

    index: int
    metadata: dict
    images: list[Path]
    seeds: list[int | None]
    missing: int = 0


def is_layout(folder: Path) -> bool:
    return (Path(folder) / "00000" / "metadata.jsonl").is_file()


def read_layout(folder: str | Path, expected_per_prompt: int | None = None) -> list[PromptSamples]:
    """Every `<NNNNN>/` prompt folder in order; prompts with fewer images than expected record how many miss."""
    folder = Path(folder)
    dirs = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()) if folder.is_dir() else []
    if not dirs:
        raise InputError(f"{folder} is not in GenEval's layout (no 00000/metadata.jsonl)",
                         "point at a folder with <NNNNN>/metadata.jsonl and <NNNNN>/samples/*.png, or generate one")
    out = []
    for d in dirs:
        meta_file = d / "metadata.jsonl"
        try:
            metadata = json.loads(meta_file.read_text().splitlines()[0])
        except (OSError, IndexError, json.JSONDecodeError) as exc:
            raise InputError(f"{meta_file} is missing or not JSON: {exc}", "write the prompt's metadata line") from exc
        images = sorted((d / "samples").glob("*.png")) if (d / "samples").is_dir() else []
        seeds = metadata.get("seeds") or [None] * len(images)
        missing = max(0, (expected_per_prompt or 0) - len(images))
        out.append(PromptSamples(int(d.name), metadata, images, list(seeds)[:len(images)], missing))
    return out


def write_layout(root: Path, generator: Any, model_id: str, prompts: list[dict], per_prompt: int, seed: int,
                 sample_store: SampleStore, batch_size: int = 8, progress: bool = True,
                 ensure: Callable[[list[SampleRequest]], tuple[list[Path], int]] | None = None) -> tuple[Path, int]:
    """Generate what is missing through the sample store (or `ensure`, e.g. the run's sharded generation) and link
    it into a GenEval-layout folder."""
    requests = [SampleRequest(meta["prompt"], seed + i * per_prompt + j)
                for i, meta in enumerate(prompts) for j in range(per_prompt)]
    if ensure is None:
        paths, generated = sample_store.ensure(generator, requests, batch_size=batch_size, progress=progress)
    else:
        paths, generated = ensure(requests)
    key = sha256_json({"model_id": model_id, "prompts": prompts, "n": per_prompt, "seed": seed})[:16]
    folder = Path(root) / key
    for i, meta in enumerate(prompts):
        d = folder / f"{i:05d}"
        seeds = [seed + i * per_prompt + j for j in range(per_prompt)]
        atomic_write_bytes(d / "metadata.jsonl", (json.dumps({**meta, "seeds": seeds}) + "\n").encode())
        for j in range(per_prompt):
            dest = d / "samples" / f"{j:04d}.png"
            if not dest.exists():
                _link(paths[i * per_prompt + j], dest)
    return folder, generated


def _link(src: Path, dest: Path) -> None:
    def place(tmp: str) -> None:
        os.unlink(tmp)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)

    atomic_write(dest, place, suffix=".png.tmp")
