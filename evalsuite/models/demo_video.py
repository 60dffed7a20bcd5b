"""`demo-video[:SIZE]`: a weight-free, deterministic video generator (coloured shapes moving over a gradient), so
the video tasks run offline. The same prompt and seed always give the same clip."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw

from evalsuite.hashing import sha256_bytes
from evalsuite.models.base import ModelSource, register_scheme
from evalsuite.models.demo import COLOURS, DEMO_PROMPTS, DemoGenerator

DEMO_VIDEO_VERSION = "1"


class DemoVideoGenerator:
    """Each frame redraws the prompt's shapes shifted along seeded velocities; 16 frames at 8 fps by default.
    Streaming mode: `stream_video(prompt, seed)` yields chunks of `chunk_frames` (4) frames to play at `target_fps`
    (10), without end (`evalsuite device time-stream demo-video`)."""

    fps = 8
    chunk_frames = 4
    target_fps = 10.0

    def __init__(self, size: int = 64, frames: int = 16):
        self.size, self.frames = size, frames
        self.model_id = f"demo-video@{DEMO_VIDEO_VERSION}/{size}px/{frames}f"
        self._still = DemoGenerator(size)

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Image.Image]:
        """First frames as images (so image tasks can score the video model too)."""
        return [Image.fromarray(v[0]) for v in self.generate_video(prompts, seeds)]

    def generate_video(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[np.ndarray]:
        return [self._clip(p, int(s)) for p, s in zip(prompts, seeds)]

    def _clip(self, prompt: str, seed: int) -> np.ndarray:
        frames = self._frames(prompt, seed)
        return np.stack([next(frames) for _ in range(self.frames)])

    def stream_video(self, prompt: str, seed: int) -> Iterator[np.ndarray]:
        """Streaming mode (`evalsuite.device.streaming`'s protocol): the same clip, continued without end, in chunks
        of `chunk_frames` frames (C, H, W, 3) uint8, meant to play at `target_fps`. Its first `frames` frames are
        `generate_video`'s clip."""
        frames = self._frames(prompt, seed)
        while True:
            yield np.stack([next(frames) for _ in range(self.chunk_frames)])

    def _frames(self, prompt: str, seed: int) -> Iterator[np.ndarray]:
        """Every frame of the clip of (prompt, seed), without end: the shapes keep bouncing."""
        rng = np.random.default_rng(int(sha256_bytes(f"video\x00{prompt}\x00{seed}".encode())[:16], 16))
        background = np.asarray(self._still.generate([prompt], [seed])[0]).copy()
        words = prompt.lower().split()
        colours: list[tuple[int, ...]] = [COLOURS[w] for w in words if w in COLOURS] or [
            tuple(int(c) for c in rng.integers(0, 256, 3))]
        count = int(rng.integers(1, 4))
        s = self.size
        pos = rng.uniform(s * 0.2, s * 0.8, (count, 2))
        vel = rng.uniform(-2.5, 2.5, (count, 2))
        radius = rng.integers(max(2, s // 16), max(3, s // 6), count)
        while True:
            img = Image.fromarray(background)
            draw = ImageDraw.Draw(img)
            for k in range(count):
                x, y = pos[k]
                r = int(radius[k])
                draw.ellipse((x - r, y - r, x + r, y + r), fill=colours[k % len(colours)])
            yield np.asarray(img)
            pos = pos + vel
            bounce = (pos < 0) | (pos > s)
            vel[bounce] *= -1
            pos = np.clip(pos, 0, s)


def _resolve(arg: str) -> ModelSource:
    size = int(arg) if arg else 64
    gen = DemoVideoGenerator(size)
    return ModelSource(spec="demo-video" + (f":{arg}" if arg else ""), model_id=gen.model_id, kind="generator",
                       generator=gen, default_suite="video", prompts=DEMO_PROMPTS,
                       info={"weights": "none (procedural)", "size": size, "frames": gen.frames, "fps": gen.fps})


register_scheme("demo-video", _resolve)
