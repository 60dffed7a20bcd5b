"""`diffusers:PATH[?key=value&...]`: a local diffusers pipeline folder (optional extra `evalsuite[diffusers]`,
imported lazily). Weights load from safetensors only; nothing is downloaded. Query keys are passed to the
pipeline call, e.g. `diffusers:/ckpt/snapgen?num_inference_steps=4&guidance_scale=0`, except the knobs:

- `steps` (num_inference_steps; default the pipeline's own default, or the query's `num_inference_steps`),
- `guidance` (guidance_scale, for pipelines that take it; default likewise),
- `compression` (`fp32` default; `fp16`, `palettizeN`, `int8`: the denoiser's weights compressed on the host as
  `evalsuite device build` compresses them, `evalsuite.knobs.compress`),

so `diffusers:PATH?steps=4&guidance=1.5` is a variant whose id names them and the sha256 of the denoiser it runs
(`evalsuite.knobs`). At the defaults the pipeline is called exactly as without knobs. `device_pipeline()` gives the
device runner the very modules the generator samples with (`evalsuite sweep diffusers:PATH --grid steps=1,2`)."""

from __future__ import annotations

import copy
import inspect
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence
from urllib.parse import parse_qsl

from evalsuite.errors import InputError
from evalsuite.hashing import sha256_json
from evalsuite.knobs import COMPRESSION_VARIANTS, Knob
from evalsuite.models.base import ModelSource, register_scheme

if TYPE_CHECKING:
    from evalsuite.device.models import GenerationPipeline
    from evalsuite.models.diffusers_parts import Captured

#: knob -> the pipeline call's argument it sets
KNOB_ARGUMENTS = {"steps": "num_inference_steps", "guidance": "guidance_scale"}
KNOB_NAMES = (*KNOB_ARGUMENTS, "compression")


def folder_fingerprint(folder: Path) -> str:
    """Identity of a pipeline folder without hashing gigabytes: its JSON configs' content plus every file's size."""
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            rel = str(path.relative_to(folder))
            entries.append([rel, path.stat().st_size, path.read_text() if path.suffix == ".json" else None])
    return sha256_json(entries)


class DiffusersGenerator:
    """Runs a local pipeline once per (prompt, seed) with a seeded torch.Generator. `knobs` are read from the
    pipeline's call signature; `with_knobs` returns a variant sharing every component but a compressed denoiser."""

    def __init__(self, folder: Path, device: str | None = None, **call_kwargs):
        try:
            import diffusers
            import torch
        except ImportError as exc:
            raise InputError("diffusers is not installed", "pip install 'evalsuite[diffusers]'") from exc
        from evalsuite.models.diffusers_parts import denoiser_name

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.pipe = diffusers.DiffusionPipeline.from_pretrained(
            str(folder), use_safetensors=True, local_files_only=True).to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self._fp32_pipe = self.pipe  # every variant's components but the compressed denoiser
        params = inspect.signature(self.pipe.__call__).parameters
        self.takes_prompt = "prompt" in params
        # a class-conditional pipeline (DiTPipeline: class_labels) implements generate_class (evalsuite.models.
        # class_conditional); num_classes from its transformer's label embedding (DiT: num_embeds_ada_norm)
        self.class_conditional = "class_labels" in params
        denoiser_config = getattr(getattr(self.pipe, "transformer", None), "config", None)
        self.num_classes = int(getattr(denoiser_config, "num_embeds_ada_norm", None) or 1000)
        self.call_kwargs = call_kwargs
        settings = f"?{sorted(call_kwargs.items())}" if call_kwargs else ""
        self.model_id = f"diffusers:{folder.name}@{folder_fingerprint(folder)[:16]}{settings}"
        self.denoiser_name = denoiser_name(self.pipe)
        knobs = []
        for knob, arg in KNOB_ARGUMENTS.items():
            if arg in params:
                default = call_kwargs.get(arg, params[arg].default)
                default = None if default is inspect.Parameter.empty else default
                kind: Any = int if knob == "steps" else float
                default = kind(default) if default is not None else None
                knobs.append(Knob(knob, kind if default is not None else kind | None, default,
                                  help=f"the pipeline's {arg} (default: {default})"))
        if self.denoiser_name is not None:
            knobs.append(Knob("compression", str, "fp32", COMPRESSION_VARIANTS,
                              f"weight compression of the {self.denoiser_name}"))
        self.knobs = tuple(knobs)
        self.values: dict[str, Any] = {k.name: k.default for k in self.knobs}
        self._sha: str | None = None
        self._captured: dict[Any, Captured] = {}  # by guidance: what one sampling step calls

    # -------------------------------------------------------------------------------------------------- variants
    def with_knobs(self, **values: Any) -> "DiffusersGenerator":
        """The variant with these knob values (a new generator; this one is untouched). Only `compression` builds
        anything: a compressed copy of the denoiser, given one denoising step's inputs as its example inputs."""
        defaults = {k.name: k.default for k in self.knobs}
        unknown = sorted(set(values) - set(defaults))
        if unknown:
            raise InputError(f"diffusers pipeline {self.model_id} has no knob {', '.join(unknown)}",
                             f"its knobs: {', '.join(defaults) or 'none'}")
        full = {**self.values, **values}
        if full.get("steps") is not None and full["steps"] < 1:
            raise InputError(f"diffusers knob steps={full['steps']}", "pass steps=1 or more")
        variant = copy.copy(self)
        variant.values, variant._captured = full, dict(self._captured)
        compression = full.get("compression", "fp32")
        if compression != self.values.get("compression", "fp32"):
            variant.pipe, variant._sha = self._fp32_pipe, None
            if compression != "fp32":
                from evalsuite.knobs import compress
                from evalsuite.models.diffusers_parts import Call

                assert self.denoiser_name is not None  # the compression knob exists only with a denoiser
                step = Call(getattr(self._fp32_pipe, self.denoiser_name), variant._capture().denoiser)
                denoiser = compress(step, compression).inner  # a compressed copy; the fp32 one is untouched
                variant.pipe = type(self.pipe).from_pipe(self._fp32_pipe, **{self.denoiser_name: denoiser})
                variant.pipe.set_progress_bar_config(disable=True)
        return variant

    @property
    def denoiser(self) -> Any:
        """The module run once per sampling step (`unet`/`transformer`) this generator samples with, or None."""
        return getattr(self.pipe, self.denoiser_name) if self.denoiser_name else None

    @property
    def weights_sha256(self) -> str | None:
        """sha256_state_dict of the (compressed) denoiser: the `#w=` of the variant id (computed once)."""
        if self._sha is None and self.denoiser is not None:
            from evalsuite.hashing import sha256_state_dict

            self._sha = sha256_state_dict(self.denoiser)
        return self._sha

    def _pipeline_kwargs(self, **override: Any) -> dict[str, Any]:
        """The call's arguments: the query's, then every knob not at its default (none at the defaults, so the
        default variant calls the pipeline exactly as the adapter without knobs did), then `override`."""
        kwargs = dict(self.call_kwargs)
        for knob in self.knobs:
            if knob.name in KNOB_ARGUMENTS and self.values[knob.name] != knob.default:
                kwargs[KNOB_ARGUMENTS[knob.name]] = self.values[knob.name]
        return {**kwargs, **override}

    # ------------------------------------------------------------------------------------------------ generation
    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list:
        images = []
        for prompt, seed in zip(prompts, seeds):
            gen = self.torch.Generator(self.device).manual_seed(int(seed))
            kwargs = {"prompt": prompt} if self.takes_prompt else {}  # unconditional pipelines ignore prompts
            images.append(self.pipe(generator=gen, **kwargs, **self._pipeline_kwargs()).images[0])
        return images

    def generate_class(self, labels: Sequence[int], seeds: Sequence[int]) -> list:
        """One image per (class label, seed) of a class-conditional pipeline: `pipe(class_labels=[label],
        generator=seeded)` with the knobs' arguments (DiT's guidance_scale: the `guidance` knob)."""
        if not self.class_conditional:
            raise InputError(f"pipeline {self.model_id} takes no class_labels", "score a class-conditional pipeline "
                                                                               "(DiTPipeline) with the ADM tasks")
        images = []
        for label, seed in zip(labels, seeds):
            gen = self.torch.Generator(self.device).manual_seed(int(seed))
            images.append(self.pipe(class_labels=[int(label)], generator=gen, **self._pipeline_kwargs()).images[0])
        return images

    # ----------------------------------------------------------------------------------------- the device's view
    def _capture(self) -> "Captured":
        """What one sampling step of this variant's pipeline calls (cached by guidance, which sets the batch)."""
        from evalsuite.models.diffusers_parts import capture

        key = self.values.get("guidance")
        if key not in self._captured:
            kwargs = {"prompt": ""} if self.takes_prompt else {}
            one_step = {"num_inference_steps": 1} if "steps" in self.values else {}
            gen = self.torch.Generator(self.device).manual_seed(0)
            self._captured[key] = capture(self.pipe, lambda: self.pipe(generator=gen, **kwargs,
                                                                       **self._pipeline_kwargs(**one_step)))
        return self._captured[key]

    def device_pipeline(self) -> "GenerationPipeline":
        """The networks this variant generates with, as the device runner times them end to end (`evalsuite sweep`,
        `evalsuite.device.generation.time_generation`): the text encoder(s) (every `text_encoder*`, one after the
        other), one denoising step (the generator's own, possibly compressed, unet/transformer called as the
        pipeline calls it in one step: its latents, timestep and text embeddings at the configured resolution and
        guidance) and the decoder (`vae.decode`; `PixelOutput`, no weights, for a pixel-space pipeline). Example
        inputs come from one real sampling step (`diffusers_parts.capture`). The denoiser's sha256 is the variant
        id's `#w=`; `info["steps"]` is the step count to time. Not timed: the scheduler's update between steps."""
        from evalsuite.device.models import DeviceModel, GenerationPipeline
        from evalsuite.hashing import sha256_state_dict
        from evalsuite.models.diffusers_parts import Call, Chain, PixelOutput, decoder_name

        denoiser, steps = self.denoiser, self.values.get("steps")
        if denoiser is None or not isinstance(steps, int):
            raise InputError(f"{self.model_id}: no unet/transformer or no step count: there is nothing to time",
                             "time a pipeline with a unet or transformer, with steps set (diffusers:PATH?steps=N)")
        got = self._capture()
        if not got.denoiser:
            raise InputError(f"{self.model_id}: one sampling step never called its {self.denoiser_name}",
                             "report this pipeline class: its denoiser is not where evalsuite looks")
        name = self.model_id
        step = Call(denoiser, got.denoiser)  # every call of one step (one, batched, for most pipelines)
        vname = decoder_name(self.pipe)
        if vname is not None and got.decoder is not None:
            decode: Any = Call(getattr(self.pipe, vname), [got.decoder], method="decode")
        else:
            decode = PixelOutput(self.torch.zeros_like(step.example_inputs()[0]))
        encoders = [Call(getattr(self.pipe, n), [c]) for n, c in got.text_encoders.items()]
        text = Chain(encoders) if encoders else None

        def part(suffix: str, module: Any, sha: str | None = None) -> DeviceModel:
            return DeviceModel(f"{name}/{suffix}", module, tuple(module.example_inputs()),
                               sha or sha256_state_dict(module))
        return GenerationPipeline(
            name, part("denoiser", step, self.weights_sha256), part("decoder", decode),
            part("text-encoder", text) if text is not None else None, frames=1,
            info={"steps": steps, **{k: v for k, v in self.values.items() if k != "steps"},
                  "weights_sha256": self.weights_sha256, "denoiser_calls_per_step": len(got.denoiser),
                  "pieces": f"denoise step: the pipeline's {self.denoiser_name} (this variant's); decoder: "
                            f"{f'{vname}.decode' if vname else 'PixelOutput (no weights)'}; text encoder: "
                            f"{', '.join(got.text_encoders) or 'none'}"})


def _parse_value(text: str) -> int | float | str | bool:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _resolve(arg: str) -> ModelSource:
    from evalsuite import knobs

    path_part, _, query = arg.partition("?")
    pairs = parse_qsl(query)
    knob_values = {k: v for k, v in pairs if k in KNOB_NAMES}
    call_kwargs: dict[str, Any] = {k: _parse_value(v) for k, v in pairs if k not in KNOB_NAMES}  # may name device=
    for knob, argument in KNOB_ARGUMENTS.items():
        if knob in knob_values and argument in call_kwargs:
            raise InputError(f"diffusers:{arg} sets both {knob} and {argument}", f"set {knob} only")
    folder = Path(path_part).expanduser()
    if not (folder / "model_index.json").is_file():
        raise InputError(f"{folder} is not a diffusers pipeline folder (no model_index.json)",
                         "pass the folder written by pipeline.save_pretrained()")
    gen = DiffusersGenerator(folder, **call_kwargs)
    index = json.loads((folder / "model_index.json").read_text())
    source = ModelSource(spec=f"diffusers:{arg}", model_id=gen.model_id, kind="generator", generator=gen,
                         info={"folder": str(folder.resolve()), "pipeline": index.get("_class_name"),
                               "call_kwargs": call_kwargs})
    import dataclasses

    return dataclasses.replace(knobs.apply(source, knob_values), spec=f"diffusers:{arg}")


_resolve.reads_query = True  # type: ignore[attr-defined]  # its query is the pipeline call's arguments (and knobs)
register_scheme("diffusers", _resolve)
