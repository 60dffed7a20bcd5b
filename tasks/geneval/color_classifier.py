"""GenEval's colour classifier: CLIP ViT-L/14 zero-shot over the 10 colours on the (masked) box crop of an object,
registered as the colour backend "clip-vit-l-14"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evalsuite import weights
from evalsuite.errors import InputError
from evalsuite.tasks.t2i.backends import Detection, default_device, register

GREY_BACKGROUND = (153, 153, 153)  # "#999": what the colour classifier sees around a masked object

COLOR_TEMPLATES: tuple[str, ...] = ("a photo of a {color} {object}", "a photo of a {color}-colored {object}",
                                    "a photo of a {color} object")


def color_crop(image: Image.Image, detection: Detection) -> Image.Image:
    """What the colour classifier sees, as GenEval's `ImageCrops` (evaluate_images.py L94-106) makes it: where the
    detection has a mask, pixels outside it become grey #999 (`Image.composite`); then PIL crops the box (PIL rounds
    the coordinates and pads outside the image with black). A box that rounds to no pixel keeps one."""
    rgb = image.convert("RGB")
    if detection.mask is not None:
        mask = np.asarray(detection.mask, dtype=bool)
        if mask.shape != (rgb.height, rgb.width):
            raise InputError(f"detection mask has shape {mask.shape}, image is {rgb.height}x{rgb.width}",
                             "the detector must return full-image HxW masks")
        rgb = Image.composite(rgb, Image.new("RGB", rgb.size, GREY_BACKGROUND), Image.fromarray(mask))
    x1, y1, x2, y2 = (int(round(float(v))) for v in detection.box[:4])
    return rgb.crop((x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)))


class CLIPColorClassifier:
    """GenEval's colour rule (evaluate_images.py L109-127): clip-benchmark 1.4.0's zero-shot classifier over the 10
    colours with GenEval's three templates, argmax of 100 x the cosine similarity of the (masked) crop.

    Precision as the official run: clip-benchmark's `zero_shot_classifier` and `run_classification` default to
    amp=True, i.e. `torch.cuda.amp.autocast` (float16) around the text and image towers and the logits; GenEval runs
    on CUDA only. So on a CUDA device we run the same operations under float16 autocast; on a CPU (where that
    autocast is a no-op) everything is float32. `precision` records which."""

    protocol = "geneval-clip-vit-l-14"

    def __init__(self, device: str | None = None, offline: bool | None = None, *, model: Any = None,
                 tokenizer: Any = None, preprocess: Any = None):
        path: Path | None = None
        self.weights_sha256: str | None = None  # an in-memory model: no digest, never cached
        if model is None:
            path, self.weights_sha256 = weights.require_verified("clip-vit-l-14-openai", offline=offline)
        import open_clip

        self.device = device or default_device()
        if model is None:
            model = open_clip.load_openai_model(str(path), precision="fp32", device=self.device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer or open_clip.get_tokenizer("ViT-L-14")
        if preprocess is None:
            size = getattr(self.model.visual, "image_size", 224)
            preprocess = open_clip.image_transform(size, is_train=False, mean=open_clip.OPENAI_DATASET_MEAN,
                                                   std=open_clip.OPENAI_DATASET_STD)
        self.preprocess = preprocess
        self.amp = str(self.device).startswith("cuda")
        self.precision = "float16 autocast (clip-benchmark amp=True)" if self.amp else "float32"
        self._text: dict[tuple[str, tuple[str, ...]], Any] = {}

    def _autocast(self) -> Any:
        import contextlib

        import torch

        return torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext()

    def _class_weights(self, classname: str, colors: tuple[str, ...]):
        """(dim, colours) text weights, the operations of clip-benchmark's `zero_shot_classifier`."""
        import torch
        import torch.nn.functional as F

        key = (classname, colors)
        if key not in self._text:
            columns = []
            with torch.no_grad(), self._autocast():
                for color in colors:
                    texts = self.tokenizer([t.format(color=color, object=classname) for t in COLOR_TEMPLATES])
                    mean = F.normalize(self.model.encode_text(texts.to(self.device)), dim=-1).mean(dim=0)
                    columns.append(mean / mean.norm())
                self._text[key] = torch.stack(columns, dim=1)
        return self._text[key]

    def logits(self, image: Image.Image, detection: Detection, classname: str, colors: list[str]):
        """(1, colours) logits of one crop, the operations of clip-benchmark's `run_classification`."""
        import torch
        import torch.nn.functional as F

        text = self._class_weights(classname, tuple(colors))
        pixels = self.preprocess(color_crop(image, detection)).unsqueeze(0).to(self.device)
        with torch.no_grad(), self._autocast():
            logits = 100.0 * F.normalize(self.model.encode_image(pixels), dim=-1) @ text
        return logits.float().cpu()

    def classify(self, image: Image.Image, detection: Detection, classname: str, colors: list[str]) -> str:
        """The colour with the largest logit (the first on a tie, as `argmax`)."""
        return colors[int(self.logits(image, detection, classname, colors).argmax(dim=1)[0])]


def _clip_color_factory(arg: str = "", device: str | None = None, offline: bool | None = None,
                        **_ignored: Any) -> CLIPColorClassifier:
    if arg:
        raise InputError(f"colour backend 'clip-vit-l-14' takes no argument, got 'clip-vit-l-14:{arg}'",
                         "use --color clip-vit-l-14")
    return CLIPColorClassifier(device=device, offline=offline)


register("color", "clip-vit-l-14", _clip_color_factory)
