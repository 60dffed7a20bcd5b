"""Sample store: each generated sample is written once, as PNG, at a path derived from (model id, prompt, seed).

`<store>/samples/<model hash>/<aa>/<request hash>.png` plus `manifest.jsonl` (model id, prompt, seed, file, sha256).
A rerun finds the files and generates nothing; an interrupted run resumes and generates only what is missing.
Files are written to a temporary name and renamed, so a crash never leaves a half-written PNG behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from evalsuite.errors import InputError
from evalsuite.fsutil import append_line, atomic_write, atomic_write_bytes, remove_temp_files
from evalsuite.hashing import sha256_file, sha256_json
from evalsuite.imageio import frames_from_model, image_from_model


@dataclass(frozen=True)
class SampleRequest:
    prompt: str
    seed: int


class SampleRequests(Sequence[SampleRequest]):
    """Sample i uses prompt i mod P and seed `seed + i`: a fixed, documented assignment, computed when indexed, so
    ten million requests take no memory; a slice is a lazy view."""

    def __init__(self, prompts: Sequence[str], num_samples: int, seed: int):
        if not prompts:
            raise InputError("the prompt list is empty", "pass a prompts file with at least one prompt")
        self.prompts, self.range, self.seed = list(prompts), range(num_samples), seed

    def __len__(self) -> int:
        return len(self.range)

    def __getitem__(self, index):  # int -> SampleRequest, slice -> a lazy view
        if isinstance(index, slice):
            view = SampleRequests(self.prompts, 0, self.seed)
            view.range = self.range[index]
            return view
        i = self.range[index]
        return SampleRequest(self.prompts[i % len(self.prompts)], self.seed + i)


def sample_requests(prompts: Sequence[str], num_samples: int, seed: int) -> SampleRequests:
    """The generation requests of a run, built lazily (see SampleRequests)."""
    return SampleRequests(prompts, num_samples, seed)


def make_requests(prompts: Sequence[str], num_samples: int, seed: int) -> list[SampleRequest]:
    """The same assignment as a list (small request sets: references, tests)."""
    return list(SampleRequests(prompts, num_samples, seed))


class SampleStore:
    """Samples of one model under `<root>/<sha256(model_id)[:16]>/`."""

    def __init__(self, root: Path, model_id: str):
        self.model_id = model_id
        self.root = Path(root)
        self.dir = self.root / sha256_json({"model_id": model_id})[:16]
        self.manifest = self.dir / "manifest.jsonl"

    def path_for(self, req: SampleRequest, media: str = "image") -> Path:
        key = sha256_json({"model_id": self.model_id, "prompt": req.prompt, "seed": req.seed})[:24]
        return self.dir / key[:2] / f"{key}.{'mp4' if media == 'video' else 'png'}"

    def missing(self, requests: Sequence[SampleRequest], media: str = "image") -> list[SampleRequest]:
        return [r for r in requests if not self.path_for(r, media).is_file()]

    def ensure(self, generator: Any, requests: Sequence[SampleRequest], *, batch_size: int = 8,
               progress: bool = True, media: str = "image") -> tuple[list[Path], int]:
        """Generate what is missing (in batches, resumable) and return (paths in request order, number generated).
        `media="video"` calls `generator.generate_video` and stores lossless MP4s (decoded frames are exact)."""
        todo = self.missing(requests, media)
        if todo:
            remove_temp_files(self.dir)  # half-written samples of a killed run (an hour old: no live writer's)
            atomic_write_bytes(self.dir / "model.json", (json.dumps({"model_id": self.model_id}) + "\n").encode(),
                               root=self.root)
        with tqdm(total=len(todo), desc="generating", unit="img", disable=not progress or not todo) as bar:
            for start in range(0, len(todo), batch_size):
                chunk = todo[start:start + batch_size]
                produce = generator.generate_video if media == "video" else generator.generate
                images = produce([r.prompt for r in chunk], [r.seed for r in chunk])
                if len(images) != len(chunk):
                    raise InputError(f"model {self.model_id} returned {len(images)} samples for {len(chunk)} requests",
                                     "the generator must return one sample per (prompt, seed) pair")
                for req, image in zip(chunk, images):
                    self._write(req, image, media, getattr(generator, "fps", 8))
                bar.update(len(chunk))
        return [self.path_for(r, media) for r in requests], len(todo)

    def _write(self, req: SampleRequest, image: Any, media: str = "image", fps: int = 8) -> None:
        path = self.path_for(req, media)
        if media == "video":
            from evalsuite.videoio import write_video

            frames = _to_frames(image, self.model_id)
            atomic_write(path, lambda tmp: write_video(tmp, frames, fps=fps, lossless=True), suffix=".mp4",
                         root=self.root)
        else:
            pil = _to_pil(image, self.model_id)
            atomic_write(path, lambda tmp: pil.save(tmp, format="PNG"), suffix=".png.tmp", root=self.root)
        line = json.dumps({"model_id": self.model_id, "prompt": req.prompt, "seed": req.seed,
                           "file": str(path.relative_to(self.dir)), "sha256": sha256_file(path)})
        append_line(self.manifest, line, root=self.root)  # one O_APPEND write per line, never through a link

    def entries(self) -> list[dict]:
        """Manifest rows, last one per file wins (a regenerated file appends a new row)."""
        if not self.manifest.is_file():
            return []
        rows: dict[str, dict] = {}
        for line in self.manifest.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a killed process; the PNG check decides what exists
            rows[row["file"]] = row
        return list(rows.values())


def _to_frames(video: Any, model_id: str) -> np.ndarray:
    """(T, H, W, 3) uint8 by the one documented rule (evalsuite.imageio.frames_from_model); anything else is refused."""
    return frames_from_model(video, f"model {model_id}: a generated video")


def _to_pil(image: Any, model_id: str) -> Image.Image:
    """An RGB PIL image by the one documented rule (evalsuite.imageio.image_from_model); anything else is refused."""
    return Image.fromarray(image_from_model(image, f"model {model_id}: a generated image"))
