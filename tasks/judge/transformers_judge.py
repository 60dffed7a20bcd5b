"""The `transformers:PATH` judge: a local vision-language model folder (Qwen2-VL / Qwen2.5-VL / Qwen3-VL, InternVL's
transformers-native `-hf` checkpoints, LLaVA / LLaVA-NeXT / LLaVA-OneVision ...) loaded with transformers, never
downloaded and never with remote code. One forward pass per batch (no generation, no sampling): the next-token logits
at the last prompt position, reduced to the log-sum-exp over every vocabulary token that spells "yes" (resp. "no").

Its identity is the sha256 of the folder's weight files (`fingerprint`); `details` records what ran (dtype, device,
video input, the yes/no tokens) for provenance.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evalsuite.errors import InputError
from evalsuite.hashing import files_digest, sha256_bytes

#: the files whose bytes are the judge's identity (searched recursively; hidden folders such as .cache skipped)
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth")

DTYPES = ("float32", "float16", "bfloat16")

FOLDER_FIX = ("download the model folder once where there is internet, e.g. `huggingface-cli download "
              "Qwen/Qwen2.5-VL-7B-Instruct --local-dir Qwen2.5-VL-7B-Instruct`, then pass "
              "--judge transformers:/path/to/Qwen2.5-VL-7B-Instruct")


def _protocol_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "model"


def weight_files(folder: str | Path) -> list[Path]:
    """The weight files of a model folder (WEIGHT_PATTERNS, recursively, hidden folders skipped), sorted by their
    path relative to the folder."""
    root = Path(folder)
    found: set[Path] = set()
    for pattern in WEIGHT_PATTERNS:
        for p in root.rglob(pattern):
            rel = p.relative_to(root)
            if p.is_file() and not any(part.startswith(".") for part in rel.parts):
                found.add(p)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def folder_fingerprint(folder: str | Path) -> tuple[str, dict[str, str]]:
    """(fingerprint, {relative path: sha256}) of a model folder's weight files (`evalsuite.hashing.files_digest`)."""
    return files_digest(folder, weight_files(folder))


def yes_no_token_ids(tokenizer: Any) -> tuple[list[int], list[int]]:
    """Every token id whose decoded text, stripped and lower-cased, is "yes" (resp. "no"): all case and
    leading-space variants ("yes", "Yes", "ĠYes", "▁YES", ...). Found once from the vocabulary (added tokens
    included); raises InputError when either word has no token."""
    yes: set[int] = set()
    no: set[int] = set()
    for token, idx in tokenizer.get_vocab().items():
        low = str(token).lower()
        if "yes" not in low and "no" not in low:  # cheap prefilter: a token that spells the word contains it
            continue
        text = tokenizer.decode([int(idx)], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        word = text.strip().lower()
        if word == "yes":
            yes.add(int(idx))
        elif word == "no":
            no.add(int(idx))
    if not yes or not no:
        missing = " and ".join(w for w, ids in (("yes", yes), ("no", no)) if not ids)
        raise InputError(f"the judge's tokenizer has no token that spells {missing!r}, so its yes/no logits "
                         "cannot be read", "use a vision-language model whose vocabulary has the words yes and no")
    return sorted(yes), sorted(no)


def _default_device(torch: Any) -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _read_folder(folder: str) -> tuple[Path, dict[str, Any]]:
    """The model folder's path and config.json, after checking it can be a local transformers model."""
    if not folder:
        raise InputError("the 'transformers' judge needs a local vision-language model folder", FOLDER_FIX)
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise InputError(f"judge model folder {path} does not exist", FOLDER_FIX)
    if not (path / "config.json").is_file():
        raise InputError(f"judge model folder {path} has no config.json (not a transformers model folder)",
                         FOLDER_FIX)
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path / 'config.json'}: {exc}", FOLDER_FIX) from None
    if not isinstance(config, dict):
        raise InputError(f"{path / 'config.json'} is not a JSON object", FOLDER_FIX)
    if not weight_files(path):
        raise InputError(f"judge model folder {path} has no weight files ({', '.join(WEIGHT_PATTERNS)})",
                         FOLDER_FIX)
    return path, config


def _number(value: Any, kind: type, name: str, fix: str) -> Any:
    """A positive int/float option (given as a number or its text), or InputError."""
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise InputError(f"judge option {name} is {value!r}, not a number", fix) from None
    if not number > 0:
        raise InputError(f"judge option {name} must be positive, got {value!r}", fix)
    return number


class TransformersJudge:
    """A frozen local vision-language model answering yes/no questions at the logit level.

    folder: the model folder (config.json, weights, processor files with a chat template). device: "cuda", "cpu",
    ... (default: cuda when available). dtype: float32 (default), float16 or bfloat16. batch_size: the most pairs per
    forward pass (default: all the pairs of one call; left padding, so the result does not depend on it beyond float
    rounding). video: "auto" passes a video's frames as the processor's native video input where it has one
    (Qwen2-VL / Qwen2.5-VL / Qwen3-VL, LLaVA-OneVision, InternVL), else as several images in order; "frames" always
    passes images (the protocol then ends in -videoframes). video_fps: the frame rate of the frames as given
    (default 2.0, the rate of Qwen's reference sampling), passed as the video's metadata to native video input
    (Qwen2.5-VL's temporal positions and Qwen3-VL's timestamps use it).
    """

    #: options a caller may pass that this backend has no use for (it never downloads anything)
    IGNORED_OPTIONS = ("offline",)

    def __init__(self, folder: str, device: Any = None, dtype: str = "float32", batch_size: int | None = None,
                 video: str = "auto", video_fps: float = 2.0, **options: Any):
        unknown = sorted(k for k in options if k not in self.IGNORED_OPTIONS)
        if unknown:
            raise InputError(f"unknown option(s) for the transformers judge: {', '.join(unknown)}",
                             "use device, dtype (float32|float16|bfloat16), batch_size, video (auto|frames), "
                             "video_fps")
        path, config = _read_folder(folder)
        if dtype not in DTYPES:
            raise InputError(f"unknown judge dtype {dtype!r}", f"use one of {', '.join(DTYPES)}")
        if video not in ("auto", "frames"):
            raise InputError(f"unknown judge video mode {video!r}", "use video=auto (native video input where the "
                             "model has one) or video=frames (frames as several images)")
        fps = _number(video_fps, float, "video_fps", "pass video_fps=2.0 (frames per second of the frames given)")
        size = None if batch_size is None else _number(batch_size, int, "batch_size", "pass batch_size=8")
        if importlib.util.find_spec("transformers") is None:
            raise InputError("the 'transformers' judge needs transformers, which is not installed",
                             "`pip install transformers`")
        import torch
        import transformers

        self._torch = torch
        self.folder = path.resolve()
        self.batch_size = size
        self.video_fps = fps
        self._device = str(device) if device else _default_device(torch)
        self._dtype = getattr(torch, dtype)
        model_type = str(config.get("model_type") or "unknown")
        if config.get("auto_map"):
            fix = ("this folder needs remote code, which is never run: use the model's transformers-native "
                   "checkpoint, e.g. `huggingface-cli download OpenGVLab/InternVL3-1B-hf --local-dir "
                   "InternVL3-1B-hf` rather than OpenGVLab/InternVL3-1B")
        else:
            fix = FOLDER_FIX
        self._processor: Any  # e.g. a Qwen2VLProcessor, LlavaOnevisionProcessor
        self._model: Any  # e.g. a Qwen2VLForConditionalGeneration
        try:
            self._processor = transformers.AutoProcessor.from_pretrained(path, local_files_only=True)
            self._model = transformers.AutoModelForImageTextToText.from_pretrained(
                path, local_files_only=True, dtype=self._dtype)
        except Exception as exc:  # a folder that does not load raises anything from OSError to KeyError
            raise InputError(f"cannot load a vision-language model from {path}: {type(exc).__name__}: {exc}",
                             fix) from None
        tokenizer = getattr(self._processor, "tokenizer", None)
        if tokenizer is None or not hasattr(self._processor, "image_processor"):
            raise InputError(f"the processor in {path} ({type(self._processor).__name__}) has no tokenizer or "
                             "image processor, so it is not a vision-language model's", fix)
        template = getattr(self._processor, "chat_template", None)
        if isinstance(template, dict):
            template = template.get("default")
        # older folders keep the template in tokenizer_config.json only: the processor does not load it there
        self._template_override = None if template else getattr(tokenizer, "chat_template", None)
        template = template or self._template_override
        if not isinstance(template, str) or not template:
            raise InputError(f"the model folder {path} has no chat template (chat_template.jinja/.json or "
                             "tokenizer_config.json's chat_template)",
                             "use the instruction-tuned (chat) model's folder, which ships its chat template: "
                             + FOLDER_FIX)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._model.to(self._device).eval()
        self._yes_ids, self._no_ids = yes_no_token_ids(tokenizer)
        self._native_video = video == "auto" and self._has_native_video()
        self._video_kwargs = self._native_video_kwargs() if self._native_video else {}
        self._forward_params = set(inspect.signature(self._model.forward).parameters)
        inner = getattr(self._model, "model", self._model)
        # Qwen-VL models build their multimodal (M-RoPE) positions from the attention mask themselves
        self._model_positions = hasattr(inner, "get_rope_index")
        self.fingerprint, weights = folder_fingerprint(path)
        has_video = self._has_native_video() if video == "frames" else self._native_video
        self.protocol = f"judge-{_protocol_name(model_type)}-{_protocol_name(self.folder.name)}" + (
            "-videoframes" if video == "frames" and has_video else "")
        self.video_input = "native" if self._native_video else "frames"
        self.details: dict[str, Any] = {
            "backend": "transformers", "folder": str(self.folder), "model_type": model_type,
            "model_class": type(self._model).__name__, "processor_class": type(self._processor).__name__,
            "transformers_version": transformers.__version__, "dtype": dtype, "device": self._device,
            "video_input": self.video_input, "video_kwargs": dict(self._video_kwargs),
            "video_fps": self.video_fps if self._native_video else None, "batch_size": self.batch_size,
            "weight_files": weights,
            "yes_tokens": [tokenizer.convert_ids_to_tokens(i) for i in self._yes_ids],
            "no_tokens": [tokenizer.convert_ids_to_tokens(i) for i in self._no_ids],
            "chat_template_sha256": sha256_bytes(template.encode()),
            "readout": "log-sum-exp of the next-token logits over the yes (no) tokens, one forward pass",
        }

    @property
    def yes_token_ids(self) -> list[int]:
        """Every token id that spells "yes"."""
        return list(self._yes_ids)

    @property
    def no_token_ids(self) -> list[int]:
        """Every token id that spells "no"."""
        return list(self._no_ids)

    def _has_native_video(self) -> bool:
        """Whether the processor takes videos= and its chat template renders a video placeholder."""
        proc = self._processor
        token = getattr(proc, "video_token", None)
        if getattr(proc, "video_processor", None) is None or not token:
            return False
        try:
            text = self._render([{"type": "video"}, {"type": "text", "text": "?"}])
        except Exception:  # a template that cannot render a video entry: frames as images instead
            return False
        return token in text

    def _native_video_kwargs(self) -> dict[str, Any]:
        """Video-processor settings passed with every native video: never resample the frames (the caller chose
        them); where the processor offers it and the folder leaves it unset, cap each frame's pixels as the
        reference pipeline (qwen-vl-utils) does, so the result does not follow a transformers default change."""
        vp = self._processor.video_processor
        kwargs: dict[str, Any] = {}
        if hasattr(vp, "do_sample_frames"):
            kwargs["do_sample_frames"] = False
        if hasattr(vp, "cap_pixels_per_frame"):
            setting = vp.cap_pixels_per_frame
            kwargs["cap_pixels_per_frame"] = True if setting is None else bool(setting)
        return kwargs

    def _render(self, content: list[dict[str, Any]]) -> str:
        conversation = [{"role": "user", "content": content}]
        return str(self._processor.apply_chat_template(conversation, chat_template=self._template_override,
                                                       tokenize=False, add_generation_prompt=True))

    def prompt(self, media: Image.Image | list[Image.Image], question: str) -> str:
        """The chat-template text of one pair (the user turn: the image, or the video / its frames, then the
        question; the generation prompt added), before the processor expands the media placeholders."""
        if isinstance(media, Image.Image):
            entries: list[dict[str, Any]] = [{"type": "image"}]
        elif self._native_video:
            entries = [{"type": "video"}]
        else:
            entries = [{"type": "image"} for _ in media]
        return self._render(entries + [{"type": "text", "text": question}])

    def processor_inputs(self, media: Sequence[Image.Image | list[Image.Image]], questions: Sequence[str]) -> Any:
        """The processor's batch (left-padded, on the judge's device; floats in its dtype) for pairs that are all
        images or all native videos."""
        texts = [self.prompt(m, q) for m, q in zip(media, questions)]
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        videos = [list(m) for m in media if not isinstance(m, Image.Image)] if self._native_video else []
        if videos:
            kwargs["videos"] = [[f.convert("RGB") for f in v] for v in videos]
            kwargs.update(self._video_kwargs)
            from transformers.video_utils import VideoMetadata

            # the frames as given, at video_fps: Qwen2.5-VL's temporal positions and Qwen3-VL's timestamps use it
            kwargs["video_metadata"] = [VideoMetadata(total_num_frames=len(v), fps=self.video_fps,
                                                      frames_indices=list(range(len(v)))) for v in videos]
        images = [[m.convert("RGB")] if isinstance(m, Image.Image) else [f.convert("RGB") for f in m]
                  for m in media if isinstance(m, Image.Image) or not self._native_video]
        if images:
            kwargs["images"] = images
        inputs = self._processor(**kwargs)
        torch = self._torch
        return {k: (v.to(self._device, dtype=self._dtype) if torch.is_floating_point(v) else v.to(self._device))
                if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}

    def _forward(self, media: Sequence[Image.Image | list[Image.Image]], questions: Sequence[str]) -> np.ndarray:
        torch = self._torch
        inputs = self.processor_inputs(media, questions)
        inputs = {k: v for k, v in inputs.items() if k in self._forward_params or "kwargs" in self._forward_params}
        mask = inputs.get("attention_mask")
        if mask is not None and not self._model_positions and "position_ids" in self._forward_params:
            # as generate() does: positions count real tokens only, so a left-padded row equals the row alone
            inputs["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)
        if "logits_to_keep" in self._forward_params:
            inputs["logits_to_keep"] = 1
        if "use_cache" in self._forward_params:
            inputs["use_cache"] = False
        with torch.inference_mode():
            logits = self._model(**inputs).logits[:, -1, :].double()
        width = logits.shape[-1]
        out = np.empty((logits.shape[0], 2), dtype=np.float64)
        for col, ids in enumerate((self._yes_ids, self._no_ids)):
            keep = [i for i in ids if i < width]
            if not keep:
                raise InputError(f"the judge's yes/no tokens {ids} lie outside its output vocabulary ({width})",
                                 "use a folder whose tokenizer matches its model")
            out[:, col] = torch.logsumexp(logits[:, keep], dim=-1).cpu().numpy()
        return out

    def yes_no_logits(self, media: Sequence[Image.Image | list[Image.Image]], questions: Sequence[str]) -> np.ndarray:
        """(n, 2) float64: for pair i, the log-sum-exp of the next-token logits over the "yes" tokens and over the
        "no" tokens after the chat prompt asking `questions[i]` about `media[i]` (an image, or a video's frames).
        Pairs go batch_size at a time (all at once by default), images and native videos in separate passes;
        deterministic."""
        if len(media) != len(questions):
            raise InputError(f"the judge got {len(media)} media for {len(questions)} questions",
                             "pass one question per media item")
        n = len(media)
        for i, m in enumerate(media):
            if not isinstance(m, Image.Image) and (not isinstance(m, (list, tuple)) or not m
                                                   or not all(isinstance(f, Image.Image) for f in m)):
                raise InputError(f"judge media item {i} is neither a PIL image nor a non-empty list of PIL frames",
                                 "pass images as PIL.Image and videos as lists of PIL frames")
        out = np.empty((n, 2), dtype=np.float64)
        kinds = ["video" if self._native_video and not isinstance(m, Image.Image) else "image" for m in media]
        for kind in ("image", "video"):
            rows = [i for i in range(n) if kinds[i] == kind]
            step = self.batch_size or max(1, len(rows))
            for start in range(0, len(rows), step):
                chunk = rows[start:start + step]
                out[chunk] = self._forward([media[i] for i in chunk], [questions[i] for i in chunk])
        return out
