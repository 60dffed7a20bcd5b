"""Weight-compression variants applied to torch modules on the host, with the weights the phone runs (issue 16).

`compress_module(module, variant)` returns a compressed copy of `module` (the input is never touched) whose floating
parameters and buffers are the values the Core ML package of that variant holds:

- `fp32`: an unchanged copy.
- `fp16`: every floating tensor rounded to float16 (round-to-nearest-even, the cast `ct.convert` applies with
  `compute_precision=FLOAT16`), kept in the module's own dtype (float32 storage, so host code runs unchanged).
- `palettizeN`, `palettizeN-kmeans`, `int8`: the module is converted and compressed by `device build`'s own code
  (`build.convert` + `build.compress`, i.e. `build.parse_variant` and `build.optimization_config`: per-tensor
  palettisation / per-channel linear-symmetric int8, weight_threshold 512, fp16 precision); the compressed ML
  program is read back from the model's spec and weight files, each `constexpr_*` op (palette lookup, affine
  dequantisation, ...) is decompressed by coremltools' own op definition, and the dense values are loaded into the
  copy. A host tensor is paired with a program weight only when the converted program holds it bit for bit (see
  `_match`); tensors the program does not hold as such (a BatchNorm folded into its conv, a weight transposed by
  the converter, an unused one) cannot carry the phone's values: they are rounded to float16 like the rest of the
  program and listed in `CompressedModule.host_rounded` (fold BatchNorm into the module first to make them exact).

Converting needs example inputs: pass them, or give the module an `example_inputs()` method (the device-model
protocol). Core ML conversion runs on Linux; nothing here predicts with Core ML.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from evalsuite.device import build
from evalsuite.device.models import DeviceModel
from evalsuite.errors import InputError
from evalsuite.hashing import sha256_state_dict

SCHEMA = "evalsuite.compression/1"
# name decorations ct.convert and coremltools.optimize add to a torch tensor's name (torch.export lifts parameters
# as p_*, buffers as b_*, constants as c_*; the fp16 cast adds _to_fp16; compression adds _palettized/_quantized)
_NAME_PATTERN = r"(?:[pbc]_)?{}(?:_to_fp(?:16|32))?(?:_(?:palettized|quantized))?"


@dataclass
class CompressedModule:
    """A compressed copy and where its weights came from."""

    module: nn.Module
    variant: str
    weights_sha256: str
    info: dict = field(default_factory=dict)
    from_coreml: dict[str, str] = field(default_factory=dict)  # host tensor name -> Core ML weight (op) name
    host_rounded: list[str] = field(default_factory=list)  # floating tensors not found in the ML program


def weights_sha256(module: nn.Module) -> str:
    """sha256 of a module's parameters and buffers (evalsuite.hashing.sha256_state_dict)."""
    return sha256_state_dict(module)


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "name") and hasattr(value, "value"):  # an enum (mode, granularity)
        return str(value.name).lower()
    try:
        from coremltools.converters.mil.mil import types

        return types.builtin_to_string(value)  # a MIL dtype (int8, uint8, fp16)
    except Exception:  # noqa: BLE001 (anything else is described by its text)
        return str(value)


def compression_info(variant: str) -> dict:
    """What a variant applies, for provenance: precision, weight bits, the coremltools call and its configuration."""
    spec = build.parse_variant(variant)
    info: dict[str, Any] = {"schema": SCHEMA, "variant": spec.name, "precision": spec.precision,
                            "weight_bits": spec.weight_bits}
    if spec.name == "fp32":
        return {**info, "method": "none (fp32 weights unchanged)"}
    if spec.name == "fp16":
        return {**info, "method": "float16 round-to-nearest-even on the host (ct.convert compute_precision=FLOAT16)"}
    import attrs
    import coremltools as ct

    op_config = build.optimization_config(spec).global_config
    config = {k: _json_safe(v) for k, v in attrs.asdict(op_config, recurse=False).items()}
    config["mode"] = str(config["mode"]).lower()  # coremltools upper-cases the mode it was given
    return {**info,
            "method": "coremltools.optimize.coreml." + ("palettize_weights" if spec.palette_bits
                                                        else "linear_quantize_weights"),
            "config_class": type(op_config).__name__, "config": config,
            "route": "device build's convert + compress, dense weights read back from the ML program",
            "deployment_target": build.DEPLOYMENT_TARGET, "coremltools": ct.__version__}


def _ops(block: Any) -> list[Any]:
    out = []
    for op in block.operations:
        out.append(op)
        for inner in op.blocks:
            out.extend(_ops(inner))
    return out


def coreml_dense_weights(mlmodel: Any) -> dict[str, np.ndarray]:
    """Every floating weight tensor of an ML program as the phone materialises it: `const` values as stored and
    each final `constexpr_*` op decompressed by coremltools' op definition (palette lookup, dequantisation).
    Read from the model's spec and weight files (what the saved package holds), keyed by op name."""
    from coremltools.converters.mil.frontend.milproto.load import load as milproto_load
    from coremltools.converters.mil.mil import types

    spec = mlmodel.get_spec()
    prog = milproto_load(model_spec=spec, specification_version=spec.specificationVersion,
                         file_weights_dir=mlmodel.weights_dir)
    dense: dict[str, np.ndarray] = {}
    for function in prog.functions.values():
        for op in _ops(function):
            out = op.outputs[0] if op.outputs else None
            if out is None or not types.is_tensor(out.sym_type) or not types.is_float(out.dtype):
                continue
            if any(child.op_type.startswith("constexpr_") for child in out.child_ops):
                continue  # an input of a compressed weight (a palette, scales), not a weight itself
            if op.op_type == "const":
                dense[op.name] = np.asarray(op.val.val)
            elif op.op_type.startswith("constexpr_"):
                dense[op.name] = np.asarray(op.materialized_val_inference())
    return dense


def _host_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = dict(module.named_parameters())
    tensors.update(module.named_buffers())
    return {name: t for name, t in tensors.items() if torch.is_floating_point(t)}


def _digest(array: np.ndarray) -> tuple[str, int, str]:
    a = np.ascontiguousarray(array)
    return str(a.dtype), int(a.size), hashlib.sha256(a.tobytes()).hexdigest()


def _match(host: dict[str, torch.Tensor], converted: dict[str, np.ndarray],
           compressed: dict[str, np.ndarray]) -> dict[str, str]:
    """host name -> name of its weight in the compressed program, only where that is provably the same tensor.

    A host tensor is a const of the converted (uncompressed) program whose values are the tensor's, bit for bit, in
    the const's dtype (fp16 or fp32; a reshape of the same size counts, a transpose or a fold never does); among
    several, the one named like the tensor. Its compressed form is what coremltools made of that const: the same
    op name (left uncompressed), else the one op named with the const's name plus a suffix (_palettized, ...)."""
    index: dict[tuple[str, int, str], list[str]] = defaultdict(list)
    for key, value in converted.items():
        index[_digest(value)].append(key)
    matched: dict[str, str] = {}
    for name, tensor in host.items():
        t = tensor.detach().cpu()
        found = {k for dtype in (torch.float16, torch.float32) for k in index.get(_digest(t.to(dtype).numpy()), [])}
        if not found:
            continue  # folded into another weight (a BatchNorm into its conv), transposed, or unused
        pattern = re.compile(_NAME_PATTERN.format(re.escape(re.sub(r"\W", "_", name))))
        const = min(found, key=lambda k: (not pattern.fullmatch(k), k))
        derived = [k for k in compressed if k.startswith(const + "_") and k not in converted]
        target = const if const in compressed else (derived[0] if len(derived) == 1 else None)
        if target is not None and compressed[target].size == t.numel():
            matched[name] = target
    return matched


def _example_inputs(module: nn.Module, example_inputs: tuple | None) -> tuple:
    if example_inputs is None:
        factory = getattr(module, "example_inputs", None)
        if not callable(factory):
            raise InputError(f"{type(module).__name__} has no example inputs to convert it with",
                             "pass example_inputs=(...) or give the module an example_inputs() method")
        example_inputs = tuple(factory())
    return tuple(x.detach().cpu() if isinstance(x, torch.Tensor) else x for x in example_inputs)


def _coreml_weights(module: nn.Module, spec: build.VariantSpec,
                    inputs: tuple) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Build the variant exactly as `device build` does (convert, then compress): the dense weights before and
    after compression."""
    device_model = DeviceModel(type(module).__name__, module, inputs)
    mlmodel, _, _ = build.convert(device_model, spec.precision)
    converted = coreml_dense_weights(mlmodel)
    try:
        mlmodel = build.compress(mlmodel, spec)
    except Exception as exc:  # noqa: BLE001 (the same wording as device build)
        raise build.BuildError(f"{device_model.name}: {spec.name} compression failed "
                               f"({type(exc).__name__}: {str(exc)[:300]})",
                               "try another variant, or exclude that op from compression") from exc
    return converted, coreml_dense_weights(mlmodel)


def compress(module: nn.Module, variant: str, example_inputs: tuple | None = None) -> CompressedModule:
    """A compressed copy of `module` with the weights `device build` gives the phone, and where each came from."""
    spec = build.parse_variant(variant)
    out = copy.deepcopy(module)
    host = _host_tensors(out)
    from_coreml: dict[str, str] = {}
    host_rounded: list[str] = []
    if spec.name == "fp16":
        host_rounded = sorted(host)
    elif spec.palette_bits or spec.int8:  # fp16 programs whose large weights coremltools compresses
        inputs = _example_inputs(module, example_inputs)
        was_training = out.training
        devices = {t.device for t in host.values()}
        device = devices.pop() if len(devices) == 1 else None
        out = out.cpu().eval()
        host = _host_tensors(out)
        try:
            converted, dense = _coreml_weights(out, spec, inputs)
        finally:
            out.train(was_training)
        from_coreml = _match(host, converted, dense)
        with torch.no_grad():
            for name, key in from_coreml.items():
                value = torch.from_numpy(dense[key].astype(np.float32).reshape(tuple(host[name].shape)))
                host[name].copy_(value.to(host[name].dtype))
        host_rounded = sorted(set(host) - set(from_coreml))
        if device is not None:
            out = out.to(device)
            host = _host_tensors(out)
    with torch.no_grad():
        for name in host_rounded:
            host[name].copy_(host[name].to(torch.float16).to(host[name].dtype))
    return CompressedModule(out, spec.name, weights_sha256(out), compression_info(spec.name),
                            dict(sorted(from_coreml.items())), host_rounded)


def compress_module(module: nn.Module, variant: str, example_inputs: tuple | None = None) -> nn.Module:
    """A compressed copy of `module` whose floating weights are what the phone runs for `variant` (fp32, fp16,
    palettizeN[-kmeans], int8); `module` is untouched. See `compress` for the provenance of each weight."""
    return compress(module, variant, example_inputs).module


from evalsuite.knobs import COMPRESSORS  # noqa: E402  (the knob registry; importing this module fills it)

COMPRESSORS.register("coreml", compress_module)
