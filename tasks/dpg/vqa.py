"""DPG-Bench's VQA models, registered as "vqa" backends (`evalsuite.tasks.t2i.backends.resolve("vqa", spec)`):
"mplug" is the official mPLUG-large through modelscope (needs `pip install modelscope`, best in its own
environment); "transformers:/path/to/folder" is an open VQA model (e.g. Salesforce/blip-vqa-base) loaded from a local
folder, never downloaded. Their protocols differ, so results of different VQA models never share a column."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

from PIL import Image

from evalsuite.errors import InputError
from evalsuite.tasks.t2i.backends import register

MPLUG_MODEL = "damo/mplug_visual-question-answering_coco_large_en"
MPLUG_PROTOCOL = "dpg-mplug-large-modelscope"


def _device(device: Any) -> str:
    if device:
        return str(device)
    try:
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


class MPLUGVQA:
    """DPG-Bench's official VQA: mPLUG-large (COCO VQA) through modelscope's pipeline."""

    def __init__(self, model: str = MPLUG_MODEL, device: Any = None):
        fix = ("`pip install modelscope` (best in its own environment: its pins clash with recent transformers); "
               f"its weights ({MPLUG_MODEL}) are fetched by modelscope on first use (needs internet once), or "
               "pass a local copy as mplug:/path/to/mplug_visual-question-answering_coco_large_en")
        if importlib.util.find_spec("modelscope") is None:
            raise InputError("the 'mplug' VQA backend (DPG-Bench's official mPLUG-large) needs modelscope, "
                             "which is not installed", fix)
        try:
            from modelscope.pipelines import pipeline
            from modelscope.utils.constant import Tasks
        except Exception as exc:  # a broken modelscope install raises all sorts
            raise InputError(f"modelscope is installed but cannot be imported: {exc}", fix) from None
        name = Path(model.rstrip("/")).name
        self.protocol = MPLUG_PROTOCOL if name == Path(MPLUG_MODEL).name else f"dpg-mplug-modelscope-{name}"
        dev = _device(device)
        self._pipeline = pipeline(Tasks.visual_question_answering, model=model,
                                  device="gpu" if dev == "cuda" else dev)

    def answer(self, image: Image.Image, question: str) -> str:
        return str(self._pipeline({"image": image, "question": question})["text"])


def _protocol_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "model"


class TransformersVQA:
    """An open VQA model (e.g. Salesforce/blip-vqa-base) through transformers, from a local folder only.
    BLIP-style models generate their answer; classifier VQA models (ViLT) answer their top label."""

    def __init__(self, folder: str, device: Any = None, max_new_tokens: int = 10):
        fix = ("download the model folder once where there is internet (e.g. "
               "`huggingface-cli download Salesforce/blip-vqa-base --local-dir blip-vqa-base`), then pass its path: "
               "transformers:/path/to/blip-vqa-base")
        if not folder:
            raise InputError("the 'transformers' VQA backend needs a local model folder", fix)
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise InputError(f"VQA model folder {path} does not exist", fix)
        if not (path / "config.json").is_file():
            raise InputError(f"VQA model folder {path} has no config.json (not a transformers model folder)", fix)
        if importlib.util.find_spec("transformers") is None:
            raise InputError("the 'transformers' VQA backend needs transformers, which is not installed",
                             "`pip install transformers`")
        import torch
        import transformers

        self.protocol = f"dpg-{_protocol_name(path.resolve().name)}-transformers"
        self.max_new_tokens = max_new_tokens
        self._device = _device(device)
        self._processor: Any  # a BlipProcessor or whatever AutoProcessor picks
        self._model: Any  # a BlipForQuestionAnswering or whatever VQA model the auto class picks
        try:
            model_type = json.loads((path / "config.json").read_text()).get("model_type", "")
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read {path / 'config.json'}: {exc}", fix) from None
        try:
            if model_type == "blip":
                self._processor = transformers.BlipProcessor.from_pretrained(path, local_files_only=True)
                self._model = transformers.BlipForQuestionAnswering.from_pretrained(path, local_files_only=True)
            else:
                self._processor = transformers.AutoProcessor.from_pretrained(path, local_files_only=True)
                self._model = transformers.AutoModelForVisualQuestionAnswering.from_pretrained(
                    path, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"cannot load a VQA model from {path}: {exc}", fix) from None
        self._model.to(self._device).eval()
        self._generative = hasattr(self._model, "generate") and not type(self._model).__name__.startswith("Vilt")
        self._torch = torch

    def answer(self, image: Image.Image, question: str) -> str:
        inputs = self._processor(images=image.convert("RGB"), text=question, return_tensors="pt").to(self._device)
        with self._torch.no_grad():
            if self._generative:
                out = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens)
                return self._processor.decode(out[0], skip_special_tokens=True).strip()
            logits = self._model(**inputs).logits
            return str(self._model.config.id2label[int(logits[0].argmax())])


def _mplug_factory(arg: str, device: Any = None, **_: Any) -> MPLUGVQA:
    return MPLUGVQA(arg or MPLUG_MODEL, device=device)


def _transformers_factory(arg: str, device: Any = None, **_: Any) -> TransformersVQA:
    return TransformersVQA(arg, device=device)


register("vqa", "mplug", _mplug_factory)
register("vqa", "transformers", _transformers_factory)
