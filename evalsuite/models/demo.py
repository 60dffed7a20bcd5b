"""`demo`: a weight-free, deterministic procedural text-to-image generator (coloured shapes drawn from the prompt).

It exists so the whole pipeline runs offline; its images are not meant to look like anything but shapes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

from evalsuite.errors import InputError
from evalsuite.hashing import sha256_bytes
from evalsuite.knobs import COMPRESSION_VARIANTS, Knob, compress
from evalsuite.models.base import ModelSource, register_scheme

if TYPE_CHECKING:
    from evalsuite.device.models import GenerationPipeline

COLOURS = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (240, 210, 40),
    "orange": (245, 140, 30), "purple": (140, 60, 180), "pink": (240, 130, 180), "brown": (130, 80, 40),
    "black": (20, 20, 20), "white": (245, 245, 245),
}
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
           "ten": 10}
SHAPES = ("circle", "square", "triangle")
DEMO_VERSION = "1"


class DemoGenerator:
    """Draws `count` shapes of the prompt's colour(s) and shape(s) on a seeded gradient background."""

    model_id = f"demo@{DEMO_VERSION}"
    #: what a variant may change: `steps` unset draws the ideal image (the reference variant); `steps=N` runs the
    #: few-step sampler of `demo_sampler` through its small denoiser, whose weights `compression` compresses
    knobs = (Knob("steps", int | None, None, help="sampling steps (unset: the ideal image, no sampler)"),
             Knob("compression", str, "fp32", COMPRESSION_VARIANTS, "the denoiser's weight compression"))

    def __init__(self, size: int = 128, steps: int | None = None, compression: str = "fp32"):
        self.size = size
        if size != 128:
            self.model_id = f"demo@{DEMO_VERSION}/{size}px"
        self.steps, self.compression = steps, compression
        self.denoiser: Any = None
        self.weights_sha256: str | None = None
        if steps is not None:
            from evalsuite.hashing import sha256_state_dict
            from evalsuite.models.demo_sampler import DemoDenoiser

            self.denoiser = compress(DemoDenoiser().eval(), compression)
            self.weights_sha256 = sha256_state_dict(self.denoiser)

    def with_knobs(self, steps: int | None = None, compression: str = "fp32") -> "DemoGenerator":
        """The variant with these knob values (a new generator)."""
        if steps is not None and steps < 1:
            raise InputError(f"demo knob steps={steps}", "pass steps=1 or more, or leave it unset (the ideal image)")
        if steps is None and compression != "fp32":
            raise InputError(f"demo knob compression={compression} needs steps: without steps the demo runs no "
                             "network to compress", "add steps=N (e.g. demo?steps=4&compression=palettize4)")
        return DemoGenerator(self.size, steps, compression)

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Image.Image]:
        if len(prompts) != len(seeds):
            raise ValueError(f"got {len(prompts)} prompts but {len(seeds)} seeds")
        images = [self._draw(p, int(s)) for p, s in zip(prompts, seeds)]
        if self.steps is None:
            return images
        from evalsuite.models.demo_sampler import sample

        return [Image.fromarray(sample(np.asarray(img), self.steps, int(s), self.denoiser))
                for img, s in zip(images, seeds)]

    def device_pipeline(self) -> "GenerationPipeline":
        """The networks this variant generates with, as the device runner times them end to end (`evalsuite sweep`,
        `evalsuite.device.generation.time_generation`): the denoise step is this generator's own (compressed)
        `DemoDenoiser`, the very module `generate` runs, so its weights sha256 is the variant id's `#w=`; the
        decoder is `PixelDecoder` (the sampler's last operation, no weights: the demo works in pixel space); there is
        no text encoder (the demo reads its prompt procedurally, with no network). Not timed: the procedural drawing
        of the ideal image and the sampler's elementwise update between steps (no network runs there).
        `info["steps"]` is the step count to time. The demo without steps runs no network: an InputError."""
        if self.denoiser is None or self.steps is None:
            raise InputError("demo without steps runs no network (it draws the ideal image): there is nothing to time",
                             "time a variant with steps, e.g. demo?steps=4")
        import torch

        from evalsuite.device.models import DeviceModel, GenerationPipeline
        from evalsuite.hashing import sha256_state_dict
        from evalsuite.models.demo_sampler import PixelDecoder

        s = self.size
        denoiser = DeviceModel(f"{self.model_id}/denoiser", self.denoiser, (torch.zeros(1, 3, s, s), torch.ones(1)),
                               self.weights_sha256 or sha256_state_dict(self.denoiser))
        decoder = PixelDecoder().eval()
        return GenerationPipeline(self.model_id, denoiser,
                                  DeviceModel(f"{self.model_id}/decoder", decoder, (torch.zeros(1, 3, s, s),),
                                              sha256_state_dict(decoder)),
                                  text_encoder=None, frames=1,
                                  info={"steps": self.steps, "compression": self.compression,
                                        "weights_sha256": denoiser.weights_sha256,
                                        "pieces": "denoise step: DemoDenoiser (this variant's); decoder: PixelDecoder "
                                                  "(no weights); no text encoder"})

    def _draw(self, prompt: str, seed: int) -> Image.Image:
        words = re.findall(r"[a-z]+|\d+", prompt.lower())
        digest = sha256_bytes(f"{prompt}\x00{seed}".encode())
        rng = np.random.default_rng(int(digest[:16], 16))
        colours: list[tuple[int, ...]] = [COLOURS[w] for w in words if w in COLOURS] or [
            tuple(int(c) for c in rng.integers(0, 256, 3))]
        shapes = [w.rstrip("s") for w in words if w.rstrip("s") in SHAPES] or [SHAPES[int(rng.integers(0, 3))]]
        counts = [NUMBERS[w] for w in words if w in NUMBERS] + [int(w) for w in words if w.isdigit()]
        count = max(1, min(counts[0] if counts else int(rng.integers(1, 5)), 12))

        s = self.size
        top, bottom = rng.integers(60, 230, 3), rng.integers(20, 200, 3)
        ramp = np.linspace(0.0, 1.0, s)[:, None, None]
        background = (top * (1 - ramp) + bottom * ramp).repeat(s, axis=1)
        background += rng.normal(0.0, 6.0, background.shape)
        img = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(img)
        for i in range(count):
            colour = colours[i % len(colours)]
            shape = shapes[i % len(shapes)]
            r = int(rng.integers(s // 12, s // 5))
            cx, cy = (int(v) for v in rng.integers(r, s - r, 2))
            box = (cx - r, cy - r, cx + r, cy + r)
            if shape == "circle":
                draw.ellipse(box, fill=colour)
            elif shape == "square":
                draw.rectangle(box, fill=colour)
            else:
                draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
        return img


DEMO_PROMPTS = [
    "a red circle", "two blue squares", "three green triangles", "a yellow square and a purple circle",
    "four orange circles", "a pink triangle", "five white squares", "a black circle on a gradient",
    "two brown triangles and a red square", "six blue circles", "a green square", "seven yellow triangles",
]


def _resolve(arg: str) -> ModelSource:
    size = int(arg) if arg else 128
    gen = DemoGenerator(size)
    return ModelSource(spec="demo" + (f":{arg}" if arg else ""), model_id=gen.model_id, kind="generator",
                       generator=gen, default_suite="demo", info={"weights": "none (procedural)", "size": size},
                       prompts=DEMO_PROMPTS)


register_scheme("demo", _resolve)
