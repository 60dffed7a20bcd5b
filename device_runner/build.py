"""`evalsuite device build`: convert a torch model to Core ML ML programs (torch.export where it works, tracing
otherwise), compress each variant with `coremltools.optimize.coreml`, and write a build manifest per variant.

Variants: `fp32`, `fp16`, `palettize{1,2,3,4,6,8}` (uniform palettisation; `palettizeN-kmeans` for k-means, which
needs scikit-learn), `int8` (linear symmetric weight quantisation). Each variant converts on its own, so one that
fails (an unsupported op, a compression error) is reported with the op and variant while the others still build.
The model hash covers the package's `Data/` (spec and weights), not `Manifest.json`, whose identifiers are random.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evalsuite.device.models import DeviceModel
from evalsuite.errors import EvalsuiteError, InputError
from evalsuite.fsutil import atomic_write_bytes

DEPLOYMENT_TARGET = "iOS17"
PALETTE_BITS = (1, 2, 3, 4, 6, 8)
WEIGHT_THRESHOLD = 512  # coremltools' weight_threshold: smaller weight tensors stay uncompressed


class BuildError(EvalsuiteError):
    """A variant that did not build: the message names the variant and, when known, the op."""


@dataclass(frozen=True)
class VariantSpec:
    name: str
    precision: str  # "fp32" or "fp16"
    palette_bits: int | None = None
    palette_mode: str = "uniform"
    int8: bool = False

    @property
    def weight_bits(self) -> int:
        return self.palette_bits or (8 if self.int8 else (16 if self.precision == "fp16" else 32))


def parse_variant(name: str) -> VariantSpec:
    name = name.strip()
    if name in ("fp32", "fp16"):
        return VariantSpec(name, name)
    if name == "int8":
        return VariantSpec(name, "fp16", int8=True)
    m = re.fullmatch(r"palettize(\d)(-kmeans)?", name)
    if m and int(m.group(1)) in PALETTE_BITS:
        return VariantSpec(name, "fp16", palette_bits=int(m.group(1)),
                           palette_mode="kmeans" if m.group(2) else "uniform")
    raise InputError(f"unknown variant '{name}'",
                     "use fp32, fp16, int8 or palettizeN[-kmeans] with N in " + ", ".join(map(str, PALETTE_BITS)))


@dataclass
class BuildResult:
    variant: str
    package: Path | None = None
    manifest: dict = field(default_factory=dict)
    error: str | None = None


def _coremltools():
    try:
        import coremltools as ct
    except ImportError as exc:
        raise InputError("coremltools is not installed",
                         "pip install 'evalsuite[coreml]' (coremltools 9.0, numpy<2.3)") \
            from exc
    return ct


def _unsupported_op(exc: BaseException) -> str | None:
    text = str(exc)
    for pattern in (r"convert function for op '([^']+)'", r"op '([^']+)' not implemented",
                    r"Unsupported (?:fx )?node[^']*'([^']+)'",
                    r"aten\.([A-Za-z0-9_]+)"):
        m = re.search(pattern, text)
        if m:
            return m.group(1)
    return None


def convert(model: DeviceModel, precision: str) -> tuple[Any, str, str | None]:
    """(mlmodel, method, why export was not used) — torch.export first, tracing as the fallback."""
    ct = _coremltools()
    target = getattr(ct.target, DEPLOYMENT_TARGET)
    ct_precision = ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32
    inputs = model.example_inputs
    export_error = None
    try:
        exported = torch.export.export(model.module, inputs).run_decompositions({})
        return ct.convert(exported, convert_to="mlprogram", minimum_deployment_target=target,
                          compute_precision=ct_precision), "torch.export", None
    except Exception as exc:  # noqa: BLE001 (any export/convert failure falls back to tracing)
        export_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
    try:
        with torch.no_grad():
            traced = torch.jit.trace(model.module, inputs)
        ct_inputs = [ct.TensorType(name=f"input_{i}", shape=tuple(x.shape),
                                   dtype=np.int32 if not torch.is_floating_point(x) else np.float32)
                     for i, x in enumerate(inputs)]
        return ct.convert(traced, inputs=ct_inputs, convert_to="mlprogram", minimum_deployment_target=target,
                          compute_precision=ct_precision), "torch.jit.trace", export_error
    except Exception as exc:  # noqa: BLE001
        op = _unsupported_op(exc) or (_unsupported_op(Exception(export_error)) if export_error else None)
        raise BuildError(f"{model.name}: conversion failed{f' at op {op!r}' if op else ''} "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''})",
                         "replace or decompose that op in the model, or register a coremltools op translation") \
            from exc


def optimization_config(spec: VariantSpec) -> Any:
    """The `coremltools.optimize.coreml` OptimizationConfig of a variant (None for fp32/fp16); shared with the
    host-side compression (`evalsuite.device.compression`) so quality is measured on the weights built here."""
    from coremltools.optimize.coreml import OpLinearQuantizerConfig, OpPalettizerConfig, OptimizationConfig

    if spec.palette_bits:
        return OptimizationConfig(global_config=OpPalettizerConfig(mode=spec.palette_mode, nbits=spec.palette_bits,
                                                                   weight_threshold=WEIGHT_THRESHOLD))
    if spec.int8:
        return OptimizationConfig(global_config=OpLinearQuantizerConfig(mode="linear_symmetric",
                                                                        weight_threshold=WEIGHT_THRESHOLD))
    return None


def compress(mlmodel: Any, spec: VariantSpec) -> Any:
    from coremltools.optimize.coreml import linear_quantize_weights, palettize_weights

    config = optimization_config(spec)
    if config is None:
        return mlmodel
    return (palettize_weights if spec.palette_bits else linear_quantize_weights)(mlmodel, config)


def package_hash(package: Path) -> str:
    """sha256 over every file under `Data/` (relative path and bytes, in sorted order)."""
    data = Path(package) / "Data"
    h = hashlib.sha256()
    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(data)).encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def _ops(spec: Any) -> Counter:
    counts: Counter = Counter()

    def walk(block: Any) -> None:
        for op in block.operations:
            counts[op.type] += 1
            for inner in op.blocks:
                walk(inner)

    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            walk(block)
    return counts


def _features(items: Any) -> list[dict]:
    import coremltools as ct

    out = []
    for f in items:
        arr = f.type.multiArrayType
        dtype = ct.proto.FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(arr.dataType)
        out.append({"name": f.name, "shape": list(arr.shape), "dtype": dtype})
    return out


def build_variant(model: DeviceModel, variant: str, out_dir: Path) -> BuildResult:
    """Convert, compress, save and describe one variant; errors become BuildResult.error (nothing half-saved)."""
    import coremltools as ct

    spec = parse_variant(variant)
    dest = Path(out_dir) / f"{_slug(model.name)}-{spec.name}.mlpackage"
    try:
        mlmodel, method, export_error = convert(model, spec.precision)
        try:
            mlmodel = compress(mlmodel, spec)
        except Exception as exc:  # noqa: BLE001
            op = _unsupported_op(exc)
            raise BuildError(f"{model.name}: {spec.name} compression failed{f' at op {op!r}' if op else ''} "
                             f"({type(exc).__name__}: {str(exc)[:300]})",
                             "try another variant, or exclude that op from compression") from exc
        with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
            staged = Path(tmp) / dest.name
            mlmodel.save(str(staged))
            if dest.exists():
                shutil.rmtree(dest)
            staged.rename(dest)
    except BuildError as exc:
        return BuildResult(spec.name, error=f"variant {spec.name}: {exc.message}")
    mlspec = mlmodel.get_spec()
    manifest = {
        "schema": "evalsuite.coreml-build/1", "model": model.name, "variant": spec.name,
        "package": dest.name, "model_hash": package_hash(dest), "weights_sha256": model.weights_sha256,
        "conversion": method, "export_error": export_error,
        "inputs": _features(mlspec.description.input), "outputs": _features(mlspec.description.output),
        "op_histogram": dict(sorted(_ops(mlspec).items())),
        "parameter_count": int(sum(p.numel() for p in model.module.parameters())),
        "size_bytes": _size(dest), "weight_bits": spec.weight_bits, "precision": spec.precision,
        "palettization": {"nbits": spec.palette_bits, "mode": spec.palette_mode} if spec.palette_bits else None,
        "quantization": "linear_symmetric int8" if spec.int8 else None,
        "deployment_target": DEPLOYMENT_TARGET, "coremltools": ct.__version__, "torch": torch.__version__,
        "numpy": np.__version__,
    }
    atomic_write_bytes(Path(out_dir) / f"{_slug(model.name)}-{spec.name}.manifest.json",
                       json.dumps(manifest, indent=1).encode())
    return BuildResult(spec.name, dest, manifest)


def build(model: DeviceModel, variants: list[str], out_dir: str | Path) -> list[BuildResult]:
    """Every variant, independently; parse all variant names first so a typo fails before any work."""
    specs = [parse_variant(v).name for v in variants]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [build_variant(model, v, out) for v in specs]


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_") or "model"
