"""Knobs: the settings a variant of a model may change (sampling steps, guidance, resolution, a sub-network's width,
a caching schedule, weight compression), declared by the model with their types and defaults, and the variant id
that names one setting of them exactly.

A generator declares `knobs` (a sequence of `Knob`) and `with_knobs(**values)` returning the variant (a new
object; the original is untouched). A spec selects a variant with a query: `demo?steps=2&compression=palettize4`.
The variant's id is its model id, the sha256 of the weights it runs (when it has weights) and every knob value,
so a quality result and a timing record of the same variant carry the same id and join exactly.

>>> from evalsuite.knobs import Knob, split_spec, variant_id
>>> split_spec("demo?steps=2&compression=fp16")
('demo', {'steps': '2', 'compression': 'fp16'})
>>> variant_id("demo@1", {"steps": 2, "compression": "fp16"}, weights_sha256="ab" * 32)
'demo@1?compression=fp16&steps=2#w=abababababababab'
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from evalsuite.errors import InputError
from evalsuite.registry import Registry

_QUERY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=[^&=?#]*(&[A-Za-z_][A-Za-z0-9_]*=[^&=?#]*)*")


@dataclass(frozen=True)
class Knob:
    """One setting a variant may change: its name, type (int, float, str or bool), default and, optionally, the
    values it may take."""

    name: str
    kind: Any  # int, float, str, bool, or one of them | None
    default: Any
    choices: tuple | None = None
    help: str = ""

    def convert(self, value: Any, model: str) -> Any:
        """`value` (a string from a spec or a grid, or a Python value) as this knob's type, checked against its
        choices; a bad value is an InputError naming the model and the knob."""
        from evalsuite.task_options import convert

        try:
            got = convert(value, self.kind, f"{model} knob {self.name}")
        except InputError as exc:
            raise InputError(exc.message.replace("option ", "", 1), self._fix()) from None
        if self.choices is not None and got not in self.choices:
            raise InputError(f"{model} knob {self.name}={value!r} is not one of its values", self._fix())
        return got

    def _fix(self) -> str:
        from evalsuite.task_options import _type_name

        values = f"one of {', '.join(map(str, self.choices))}" if self.choices else \
            f"a value of type {_type_name(self.kind)}"
        return f"set {self.name} to {values} (default {self.default}); `evalsuite knobs MODEL` lists the knobs"


def declared(generator: Any) -> dict[str, Knob]:
    """The knobs a generator (or autoencoder) declares, by name (none: {})."""
    knobs = getattr(generator, "knobs", None) or ()
    out = {}
    for knob in knobs:
        if not isinstance(knob, Knob):
            raise InputError(f"{type(generator).__name__}.knobs holds {knob!r}, not a Knob",
                             "declare knobs as evalsuite.knobs.Knob(name, type, default, choices, help)")
        out[knob.name] = knob
    return out


def split_spec(spec: str) -> tuple[str, dict[str, str]]:
    """(base spec, {knob: value}) of `spec?k=v&k2=v2`; a spec without a query has no knob values. Only a trailing
    query of `name=value` pairs counts (a folder path with a `?` elsewhere stays a path)."""
    base, sep, query = spec.rpartition("?")
    if not sep or not _QUERY.fullmatch(query):
        return spec, {}
    values: dict[str, str] = {}
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name in values:
            raise InputError(f"model spec {spec!r} sets the knob {name} twice", "set each knob once")
        values[name] = value
    return base, values


def resolve_values(generator: Any, values: Mapping[str, Any], model: str) -> dict[str, Any]:
    """Every declared knob's value for a variant: the given ones (converted and checked), the defaults for the
    rest. An undeclared knob is an error listing the declared ones."""
    knobs = declared(generator)
    unknown = sorted(set(values) - set(knobs))
    if unknown:
        from evalsuite.task_options import _type_name

        have = ", ".join(f"{k.name} ({_type_name(k.kind)}, default {k.default})" for k in knobs.values()) or "none"
        raise InputError(f"model {model} has no knob {', '.join(unknown)}", f"its knobs: {have}")
    return {name: knob.convert(values[name], model) if name in values else knob.default
            for name, knob in knobs.items()}


def variant_id(model_id: str, values: Mapping[str, Any], weights_sha256: str | None = None) -> str:
    """`MODEL_ID?k1=v1&k2=v2#w=SHA16`: the model id, every knob value (sorted by name) and the first 16 hex digits
    of the sha256 of the weights the variant runs (left out for a weight-free model)."""
    query = "&".join(f"{k}={_text(values[k])}" for k in sorted(values))
    return model_id + (f"?{query}" if query else "") + (f"#w={weights_sha256[:16]}" if weights_sha256 else "")


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) or value is None else str(value)


def parse_grid(items: Iterable[str]) -> dict[str, list[str]]:
    """`--grid steps=1,2,4 --grid compression=fp16,int8` as {knob: [values]} (in the order given)."""
    grid: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            raise InputError(f"--grid {item!r} is not KNOB=V1,V2,...", "write e.g. --grid steps=1,2,4")
        if name in grid:
            raise InputError(f"--grid names the knob {name} twice", "give all its values in one --grid")
        grid[name] = [v.strip() for v in values.split(",") if v.strip()]
        if len(set(grid[name])) != len(grid[name]):
            raise InputError(f"--grid {item!r} repeats a value", "list each value once")
    return grid


def grid_variants(grid: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """Every combination of a grid, the last knob varying fastest."""
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def variant_spec(base: str, values: Mapping[str, Any]) -> str:
    """The spec of one variant: `base?k=v&...` (sorted), or `base` without knob values."""
    if not values:
        return base
    return base + "?" + "&".join(f"{k}={_text(values[k])}" for k in sorted(values))


def apply(source: Any, values: Mapping[str, Any]) -> Any:
    """The variant of a resolved model (`ModelSource`) with these knob values: its generator's (or autoencoder's)
    `with_knobs(**all values)`, its model id (the base id at the defaults, so the default variant shares the
    base model's samples; the variant id otherwise), and `info["variant"]` (id, knobs, base model id, weights
    sha256) recorded with every result. A model without knobs and no values is returned as it is."""
    import dataclasses

    model = source.generator if source.generator is not None else source.autoencoder
    if source.kind == "folder" or model is None:
        if values:
            raise InputError(f"model {source.spec} is a folder of samples; it has no knobs",
                             "set knobs on a generator spec (demo?steps=2, python:...?steps=2)")
        return source
    knobs = declared(model)
    if not knobs and not values:
        return source
    full = resolve_values(model, values, source.spec)
    if not hasattr(model, "with_knobs"):
        raise InputError(f"model {source.spec} declares knobs but has no with_knobs(**values)",
                         "add with_knobs(**values) returning the variant")
    variant = model.with_knobs(**full)
    sha = getattr(variant, "weights_sha256", None) or None
    vid = variant_id(source.model_id, full, sha)
    at_defaults = all(full[k] == knob.default for k, knob in knobs.items())
    info = {**source.info, "variant": {"id": vid, "knobs": full, "base_model_id": source.model_id,
                                       "weights_sha256": sha}}
    field = "generator" if source.generator is not None else "autoencoder"
    return dataclasses.replace(source, **{field: variant}, info=info,
                               model_id=source.model_id if at_defaults else vid,
                               spec=variant_spec(split_spec(source.spec)[0], values) if values else source.spec)


# ------------------------------------------------------------------------------------------------ weight compression
#: Weight compression as a knob value (`fp16`, `palettizeN`, `int8`) applied to a torch module on the host exactly as
#: `evalsuite device build` compresses it for the phone. The implementation lives with the device code (it uses the
#: build's coremltools configuration) and registers itself as "coreml" when its module is imported.
COMPRESSORS: Registry[Callable[[Any, str], Any]] = Registry(
    "weight compressor", builtin_modules=["evalsuite.device.compression"], group="evalsuite.weight_compressors")
COMPRESSION_VARIANTS = ("fp32", "fp16", "int8", *(f"palettize{n}" for n in (1, 2, 3, 4, 6, 8)))


def compress(module: Any, variant: str) -> Any:
    """`module` with its weights compressed as `variant` (a copy; `fp32` returns the module itself)."""
    if variant == "fp32":
        return module
    return COMPRESSORS.get("coreml")(module, variant)


def describe(spec: str) -> list[dict]:
    """The knobs of the model a spec names (`evalsuite knobs MODEL`): name, type, default, allowed values, help."""
    from evalsuite.models import resolve_model
    from evalsuite.task_options import _type_name

    source = resolve_model(split_spec(spec)[0])
    model = source.generator if source.generator is not None else source.autoencoder
    return [{"knob": k.name, "type": _type_name(k.kind), "default": k.default,
             "values": list(k.choices) if k.choices is not None else None, "help": k.help}
            for k in declared(model).values()] if model is not None else []
