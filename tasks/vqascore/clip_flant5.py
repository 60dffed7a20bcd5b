"""CLIP-FlanT5 (Lin et al. 2024, t2v-metrics' default VQAScore model), rebuilt on transformers' T5 and CLIP vision
classes from local folders (never downloaded): the checkpoint folder (zhiqiulin/clip-flant5-xxl or -xl), the CLIP
vision tower (openai/clip-vit-large-patch14-336, with its image processor) and the FlanT5 tokenizer
(google/flan-t5-xxl / -xl).

t2v-metrics' own loader cannot run on transformers 5: its CLIPT5ForConditionalGeneration.__init__ calls
CLIPVisionModel.from_pretrained inside the outer from_pretrained, which transformers 5 builds on the meta device and
refuses. Its modules are LLaVA-style: the T5 model, `vision_tower.vision_tower` (a CLIPVisionModel, hidden states of
layer -2 without the CLS token) and `mm_projector` (Linear, GELU, Linear); `load_pretrained_model` then shrinks the
embeddings and the LM head to len(tokenizer) (32100 of 32128 rows for FlanT5), casts everything to bfloat16, and
`forward` runs under CUDA bfloat16 autocast. This module does the same with the same weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from evalsuite.errors import InputError, TaskSkipped
from evalsuite.hashing import files_digest, sha256_file, sha256_json
from evalsuite.score_cache import ScorerInfo
from evalsuite.tasks.vqascore import scoring

MODELS = {"clip-flant5-xxl": ("zhiqiulin/clip-flant5-xxl", "google/flan-t5-xxl"),
          "clip-flant5-xl": ("zhiqiulin/clip-flant5-xl", "google/flan-t5-xl")}
VISION_TOWER = "openai/clip-vit-large-patch14-336"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def _download(repo: str, option: str) -> str:
    return (f"download it once where there is internet (`huggingface-cli download {repo} --local-dir "
            f"{repo.split('/')[-1]}`), then pass -o vqascore.{option}=/path/to/{repo.split('/')[-1]}")


def weight_files(folder: Path) -> list[Path]:
    """The weight files of a transformers-style folder: those its index names, else every *.safetensors, else
    every *.bin (a training_args.bin excepted)."""
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (folder / index).is_file():
            names = sorted(set(json.loads((folder / index).read_text())["weight_map"].values()))
            return [folder / n for n in names]
    found = sorted(folder.glob("*.safetensors")) or sorted(p for p in folder.glob("*.bin")
                                                            if p.name != "training_args.bin")
    return found


def folder_digest(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of the folder's weight files (`evalsuite.hashing.files_digest`)."""
    return files_digest(folder, weight_files(folder))[1]


def load_state(files: list[Path], dtype: Any = None) -> dict[str, Any]:
    """One state dict from safetensors / torch weight files (torch files read with weights_only), floating tensors
    cast to `dtype` file by file (t2v-metrics casts the loaded model to bfloat16: the same rounding, less memory)."""
    import torch

    state: dict[str, Any] = {}
    for f in files:
        if f.suffix == ".safetensors":
            from safetensors.torch import load_file

            part = load_file(str(f))
        else:
            part = torch.load(f, map_location="cpu", weights_only=True, mmap=True)
        state.update({k: v.to(dtype) if dtype is not None and v.is_floating_point() else v for k, v in part.items()})
    return state


def model_name(folder: Path) -> str:
    """Which CLIP-FlanT5 a checkpoint folder holds, from its config's width (FlanT5-XXL 4096, -XL 2048)."""
    try:
        width = json.loads((folder / "config.json").read_text()).get("d_model")
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {folder / 'config.json'}: {exc}", _download(MODELS["clip-flant5-xxl"][0],
                                                                                  "checkpoint")) from None
    names = {4096: "clip-flant5-xxl", 2048: "clip-flant5-xl"}
    if width not in names:
        raise InputError(f"{folder} is neither CLIP-FlanT5-XXL nor -XL (d_model {width})",
                         "pass -o vqascore.model=clip-flant5-xxl (or -xl) -o vqascore.checkpoint=PATH")
    return names[width]


def resolve_folders(name: str, model: str | None, vision_tower: str | None, tokenizer: str | None
                    ) -> tuple[Path, Path, Path]:
    """The checkpoint, vision tower and tokenizer folders, or a skip naming the download for the missing one."""
    if name not in MODELS:
        raise InputError(f"unknown CLIP-FlanT5 model {name}", f"one of {', '.join(MODELS)}")
    repo, tok_repo = MODELS[name]
    if not model:
        raise TaskSkipped(f"VQAScore's {name} needs its local checkpoint folder ({repo})",
                          _download(repo, "checkpoint"))
    path = Path(model).expanduser()
    if not (path / "config.json").is_file() or not weight_files(path):
        raise TaskSkipped(f"{path} is not a {repo} folder (config.json and weight files)",
                          _download(repo, "checkpoint"))
    config = json.loads((path / "config.json").read_text())
    if vision_tower:
        vt = Path(vision_tower).expanduser()
    else:  # the checkpoint's own setting, where it is a local folder
        vt = Path(str(config.get("mm_vision_tower", VISION_TOWER))).expanduser()
    if not (vt / "config.json").is_file() or not (vt / "preprocessor_config.json").is_file():
        raise TaskSkipped(f"the CLIP vision tower folder {vt} is missing (or has no config/preprocessor)",
                          _download(VISION_TOWER, "vision_tower"))
    tok = Path(tokenizer).expanduser() if tokenizer else path
    if not any((tok / f).is_file() for f in ("tokenizer.json", "spiece.model")):
        raise TaskSkipped(f"no FlanT5 tokenizer in {tok} (tokenizer.json / spiece.model)",
                          _download(tok_repo, "tokenizer"))
    return path, vt, tok


class CLIPFlanT5:
    """VQAScore with CLIP-FlanT5: `score(images, prompts)` -> P("Yes") per pair, t2v-metrics' rule.

    dtype "bfloat16" is t2v-metrics' (weights cast to bfloat16, CUDA bfloat16 autocast; on CPU, CPU autocast);
    "float32" keeps the weights as stored (a different protocol)."""

    max_tokens = scoring.CONTEXT_LEN

    @staticmethod
    def describe(name: str, model: Path, vision_tower: Path, tokenizer: Path, dtype: str = "bfloat16",
                 question_template: str = scoring.QUESTION_TEMPLATE,
                 answer_template: str = scoring.ANSWER_TEMPLATE) -> ScorerInfo:
        """Protocol, weights sha256 and per-file digests (details["files"]) of this scorer, without loading it (the
        weight files' digests are remembered across runs)."""
        if dtype not in ("bfloat16", "float32"):
            raise InputError(f"dtype {dtype}", "bfloat16 (t2v-metrics) or float32")
        files = {"model": folder_digest(model), "vision_tower": folder_digest(vision_tower),
                 "tokenizer": {f.name: sha256_file(f) for f in sorted(tokenizer.iterdir())
                               if f.name in ("tokenizer.json", "spiece.model")}}
        suffix = "" if dtype == "bfloat16" else "-fp32"
        if (question_template, answer_template) != (scoring.QUESTION_TEMPLATE, scoring.ANSWER_TEMPLATE):
            suffix += "-q" + sha256_json([question_template, answer_template])[:8]
        return ScorerInfo(f"vqascore-{name}-t2v-metrics{suffix}", sha256_json(files),
                          {"files": files, "max_tokens": CLIPFlanT5.max_tokens})

    def __init__(self, name: str, model: Path, vision_tower: Path, tokenizer: Path, device: str = "cpu",
                 dtype: str = "bfloat16", question_template: str = scoring.QUESTION_TEMPLATE,
                 answer_template: str = scoring.ANSWER_TEMPLATE):
        import torch
        import transformers

        info = self.describe(name, model, vision_tower, tokenizer, dtype, question_template, answer_template)
        self.torch, self.device, self.dtype = torch, device, dtype
        self.question_template, self.answer_template = question_template, answer_template
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(tokenizer), local_files_only=True,
                                                                        model_max_length=scoring.CONTEXT_LEN)
        except Exception as exc:  # a folder without tokenizer.json needs sentencepiece/protobuf to convert, etc.
            raise InputError(f"cannot load the FlanT5 tokenizer from {tokenizer}: {exc}",
                             _download(MODELS[name][1], "tokenizer") + " (its tokenizer.json is read)") from None
        self.image_config = json.loads((vision_tower / "preprocessor_config.json").read_text())
        config = json.loads((model / "config.json").read_text())
        t5_config = transformers.T5Config(**{k: v for k, v in config.items()
                                             if k not in ("model_type", "architectures")})
        t5_config._attn_implementation = "eager"  # T5 attention as transformers 4.49 has it (no SDPA there)
        files = weight_files(model)
        weight_dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float32
        state = load_state(files, weight_dtype)
        with torch.device("meta"):
            self.t5 = transformers.T5ForConditionalGeneration(t5_config)
        shared = next(state[k] for k in ("shared.weight", "encoder.embed_tokens.weight", "embed_tokens.weight")
                      if k in state)
        t5_state = {k: v for k, v in state.items() if not k.startswith(("vision_tower.", "mm_projector.",
                                                                         "embed_tokens.", "encoder.embed_tokens.",
                                                                         "decoder.embed_tokens."))}
        t5_state["shared.weight"] = shared
        missing, unexpected = self.t5.load_state_dict(t5_state, strict=False, assign=True)
        missing = [k for k in missing if k not in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")]
        if missing or unexpected:
            raise InputError(f"{model} does not fit a T5 of its config (missing {missing[:5]}, unexpected "
                             f"{unexpected[:5]})", _download(MODELS[name][0], "checkpoint"))
        self.t5.encoder.set_input_embeddings(self.t5.shared)
        self.t5.decoder.set_input_embeddings(self.t5.shared)
        vocab = len(self.tokenizer)  # load_pretrained_model: model.resize_token_embeddings(len(tokenizer))
        rows = self.t5.shared.weight.shape[0]
        if vocab > rows:
            raise InputError(f"the tokenizer has {vocab} tokens, the model {rows} embeddings",
                             _download(MODELS[name][1], "tokenizer"))
        if vocab < rows:
            self.t5.shared = torch.nn.Embedding.from_pretrained(self.t5.shared.weight[:vocab].clone(), freeze=True)
            self.t5.encoder.set_input_embeddings(self.t5.shared)
            self.t5.decoder.set_input_embeddings(self.t5.shared)
            head = torch.nn.Linear(t5_config.d_model, vocab, bias=False)
            head.weight = torch.nn.Parameter(self.t5.lm_head.weight[:vocab].clone(), requires_grad=False)
            self.t5.lm_head = head
            self.t5.config.vocab_size = vocab
        self.vision = transformers.CLIPVisionModel.from_pretrained(str(vision_tower), local_files_only=True)
        own = {k[len("vision_tower.vision_tower."):]: v for k, v in state.items()
               if k.startswith("vision_tower.vision_tower.")}
        if own:  # the checkpoint's copy of the tower takes precedence, as in from_pretrained
            ours = self.vision.state_dict()
            own = {(k[len("vision_model."):] if k.startswith("vision_model.") and k not in ours else k): v
                   for k, v in own.items()}
            missing, unexpected = self.vision.load_state_dict(own, strict=False)
            if unexpected:
                raise InputError(f"{model}: its vision tower does not fit {vision_tower} (unexpected "
                                 f"{unexpected[:5]})", _download(VISION_TOWER, "vision_tower"))
        self.vision_from_checkpoint = bool(own)
        self.select_layer = int(config.get("mm_vision_select_layer", -2))
        if config.get("mm_vision_select_feature", "patch") != "patch" or \
                config.get("mm_projector_type", "mlp2x_gelu") != "mlp2x_gelu":
            raise InputError(f"{model}: only the patch features and the mlp2x_gelu projector of CLIP-FlanT5 are "
                             "supported", _download(MODELS[name][0], "checkpoint"))
        hidden = int(config.get("mm_hidden_size", self.vision.config.hidden_size))
        self.projector = torch.nn.Sequential(torch.nn.Linear(hidden, t5_config.d_model), torch.nn.GELU(),
                                             torch.nn.Linear(t5_config.d_model, t5_config.d_model))
        self.projector.load_state_dict({k[len("mm_projector."):]: v for k, v in state.items()
                                        if k.startswith("mm_projector.")})
        modules: list[Any] = [self.t5, self.vision, self.projector]
        for module in modules:
            module.to(device=device, dtype=weight_dtype).eval().requires_grad_(False)
        self.files = info.details["files"]
        self.weights_sha256 = info.weights_sha256
        self.protocol = info.protocol

    def encode(self, prompt: str) -> list[int]:
        """The input ids of a prompt's question, image marker included (before the 2048 cut)."""
        return scoring.tokenize_with_image(scoring.t5_chat(self.question_template.format(prompt)), self.tokenizer)

    def pixels(self, images: list[Image.Image]) -> Any:
        """The images padded to squares and through transformers 4's CLIP processing (a float32 batch)."""
        mean = tuple(self.image_config["image_mean"])
        return self.torch.stack([scoring.clip_pixels(scoring.pad_to_square(im.convert("RGB"), mean),
                                                     self.image_config) for im in images])

    def score(self, images: list[Image.Image], prompts: list[str]) -> dict[str, Any]:
        """{"vqascore": P("Yes") per pair, "tokens": question length in tokens, "truncated": cut at 2048}."""
        torch = self.torch
        ids = [torch.tensor(self.encode(p)) for p in prompts]
        labels = [torch.tensor(scoring.tokenize_with_image(self.answer_template.format(p), self.tokenizer))
                  for p in prompts]
        pad = self.tokenizer.pad_token_id
        input_ids = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=pad)[:, :scoring.CONTEXT_LEN]
        label_ids = torch.nn.utils.rnn.pad_sequence(labels, batch_first=True,
                                                    padding_value=scoring.IGNORE_INDEX)[:, :scoring.CONTEXT_LEN]
        device_type = "cuda" if str(self.device).startswith("cuda") else "cpu"
        with torch.no_grad(), torch.autocast(device_type=device_type, dtype=torch.bfloat16,
                                             enabled=self.dtype == "bfloat16"):
            logits = self._logits(self.pixels(images).to(self.device), input_ids.to(self.device),
                                  label_ids.to(self.device))
            values = scoring.answer_likelihood(logits, label_ids.to(self.device))
        return {"vqascore": values, "tokens": [len(i) for i in ids],
                "truncated": [len(i) > scoring.CONTEXT_LEN for i in ids]}

    def _logits(self, pixels: Any, input_ids: Any, labels: Any) -> Any:
        torch = self.torch
        out = self.vision(pixels.to(dtype=self.vision.dtype), output_hidden_states=True)
        features = self.projector(out.hidden_states[self.select_layer][:, 1:].to(pixels.dtype))
        embed = self.t5.get_input_embeddings()
        rows = []
        for row, feats in zip(input_ids, features):
            at = torch.where(row == scoring.IMAGE_TOKEN_INDEX)[0]
            if at.numel() != 1:
                raise InputError("a question must hold exactly one <image> marker", "check the question template")
            p = int(at[0])
            rows.append(torch.cat([embed(row[:p]), feats, embed(row[p + 1:])]).to(self.device))
        embeds = torch.stack(rows)
        mask = input_ids.ne(self.tokenizer.pad_token_id)
        mask = torch.cat([torch.ones(mask.shape[0], embeds.shape[1] - input_ids.shape[1], dtype=mask.dtype,
                                     device=mask.device), mask], dim=1)
        return self.t5(inputs_embeds=embeds, attention_mask=mask,
                       decoder_attention_mask=labels.ne(scoring.IGNORE_INDEX), labels=labels, use_cache=False,
                       return_dict=True).logits
