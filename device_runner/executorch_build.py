"""`evalsuite device build MODEL --runtime executorch`: export a torch model to ExecuTorch `.pte` programs with the
XNNPACK delegate (the CPU runtime Android apps ship), one file and one build manifest per variant, and find those
builds again for timing (`executorch-host`) and for joining ExecuTorch benchmark-app results (`device ingest
--builds`).

Variants: `fp32` (torch.export -> `to_edge_transform_and_lower(partitioner=[XnnpackPartitioner()])` ->
`to_executorch()`) and `int8` (PT2E static quantisation first: `XNNPACKQuantizer` with
`get_symmetric_quantization_config(is_per_channel=True)`, i.e. per-channel symmetric int8 weights and per-tensor
int8 activations, calibrated on `CALIBRATION_SAMPLES` seeded inputs; ExecuTorch's own "q8" XNNPACK recipe).

Names follow ExecuTorch's benchmark app, which reads the model name, backend and quantisation from the `.pte` file
name with the pattern `(?<name>\\w+)_(?<backend>[\\w+]+)_(?<quantization>\\w+)`
(extension/benchmark/android/benchmark/app/.../minibench/BenchmarkMetric.kt): a build is
`<model>_xnnpack_<variant>.pte` (the model name with every non-word character made `_`), so a phone's result names
model, `xnnpack` and the variant exactly as the host's records do. The model hash is the sha256 of the `.pte` file
(the program is the whole deliverable: graph, weights and delegate blobs). Each manifest also records the
program's deviation from eager fp32 PyTorch on the example inputs and on held-out seeded inputs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from evalsuite.device.build import BuildError, BuildResult
from evalsuite.device.models import DeviceModel
from evalsuite.errors import InputError
from evalsuite.fsutil import atomic_write_bytes
from evalsuite.hashing import sha256_file

SCHEMA = "evalsuite.executorch-build/1"
VARIANTS = ("fp32", "int8")
DELEGATE = "xnnpack"  # the backend part of the .pte name (ExecuTorch's benchmark naming)
CALIBRATION_SAMPLES = 16
CALIBRATION_SEED = 0
HELD_OUT_SAMPLES = 2
HELD_OUT_SEED = 1
DEFAULT_DIR = Path("executorch-builds")
INSTALL_FIX = "pip install 'evalsuite[executorch]' (executorch 1.5.1 with torchao 0.18; keeps your torch)"
# ExecuTorch's benchmark app: BenchmarkMetric.extractBackendAndQuantization (a whole-name match, Java \w = ASCII)
APP_NAME_PATTERN = re.compile(r"(?P<name>\w+)_(?P<backend>[\w+]+)_(?P<quantization>\w+)", re.ASCII)


def require_executorch() -> str:
    """ExecuTorch's version; an InputError naming the install command when it (or torchao) is missing."""
    try:
        import executorch.exir  # noqa: F401
        import executorch.runtime  # noqa: F401
        import torchao  # noqa: F401
        from executorch.version import __version__
    except ImportError as exc:
        raise InputError(f"ExecuTorch is not usable here ({exc})", INSTALL_FIX) from exc
    return str(__version__)


def slug(name: str) -> str:
    """The model name as the word characters ExecuTorch's benchmark app parses (`\\w`, ASCII)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "model"


def pte_stem(model: str, variant: str) -> str:
    """`<model>_xnnpack_<variant>`: what the benchmark app reads back as name, backend and quantization."""
    return f"{slug(model)}_{DELEGATE}_{variant}"


def parse_app_name(stem: str) -> tuple[str, str, str] | None:
    """(name, backend, quantization) as ExecuTorch's benchmark app reads a `.pte` file name without its suffix;
    None where the app would report the whole name with empty backend and quantization."""
    m = APP_NAME_PATTERN.fullmatch(stem)
    return (m["name"], m["backend"], m["quantization"]) if m else None


def parse_variant(name: str) -> str:
    name = name.strip()
    if name not in VARIANTS:
        raise InputError(f"variant '{name}' is not built for ExecuTorch",
                         f"use {' or '.join(VARIANTS)} with --runtime executorch (the Core ML variants need "
                         f"--runtime coreml)")
    return name


@dataclass
class Exported:
    program: Any  # ExecutorchProgramManager
    delegated_calls: int
    portable_ops: dict[str, int]


def _draws(example_inputs: tuple, n: int, seed: int) -> list[tuple]:
    """`n` seeded input tuples shaped like the example: each floating input drawn from a normal with that input's
    own mean and std (a constant input, e.g. a timestep, stays constant); other inputs as given."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        row = []
        for x in example_inputs:
            if isinstance(x, torch.Tensor) and torch.is_floating_point(x):
                std = float(x.float().std()) if x.numel() > 1 else 0.0
                noise = torch.randn(x.shape, generator=gen, dtype=torch.float32).to(x.dtype)
                row.append(x.mean() + std * noise if std > 0 else x.clone())
            else:
                row.append(x)
        out.append(tuple(row))
    return out


def calibration_inputs(model: DeviceModel, n: int = CALIBRATION_SAMPLES, seed: int = CALIBRATION_SEED) -> list[tuple]:
    """The int8 calibration set: the module's own `calibration_inputs(n, seed)` when it has one, else the example
    inputs followed by n - 1 seeded draws (`_draws`)."""
    own = getattr(model.module, "calibration_inputs", None)
    if callable(own):
        return [tuple(x) for x in own(n, seed)]
    return [tuple(model.example_inputs)] + _draws(model.example_inputs, n - 1, seed)


def _quantize(model: DeviceModel) -> torch.nn.Module:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    graph = torch.export.export(model.module, model.example_inputs).module()
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for inputs in calibration_inputs(model):
            prepared(*inputs)
    return convert_pt2e(prepared)


def export(model: DeviceModel, variant: str) -> Exported:
    """The lowered ExecuTorch program of one variant; any failure is a BuildError naming the variant and stage."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    stage = "quantization" if variant == "int8" else "torch.export"
    try:
        module = _quantize(model) if variant == "int8" else model.module
        stage = "torch.export"
        exported = torch.export.export(module, model.example_inputs)
        stage = "XNNPACK lowering"
        edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
        calls = 0
        ops: dict[str, int] = {}  # ops left outside the delegate
        for node in edge.exported_program().graph_module.graph.nodes:
            if node.op != "call_function":
                continue
            name = getattr(node.target, "__name__", str(node.target))
            if "call_delegate" in name:
                calls += 1
            elif not name.startswith("getitem"):
                ops[name] = ops.get(name, 0) + 1
        stage = "to_executorch"
        return Exported(edge.to_executorch(), calls, dict(sorted(ops.items())))
    except Exception as exc:  # noqa: BLE001 (any export/lowering failure is reported per variant)
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        raise BuildError(f"{model.name}: {variant} failed at {stage} ({type(exc).__name__}: {first})",
                         "replace or decompose the op it names, or build the other variants") from exc


def run_pte(path: str | Path, inputs: tuple) -> list[torch.Tensor]:
    """One `forward` of a `.pte` through the ExecuTorch runtime's Python bindings."""
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(Path(path)).load_method("forward")
    if method is None:
        raise InputError(f"{path} has no forward method", "build it with `evalsuite device build --runtime executorch`")
    return [t for t in method.execute(list(inputs)) if isinstance(t, torch.Tensor)]


def _flat(outputs: Any) -> torch.Tensor:
    items = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return torch.cat([t.detach().float().reshape(-1) for t in items if isinstance(t, torch.Tensor)])


def deviation(path: str | Path, model: DeviceModel) -> dict:
    """The `.pte`'s output against eager fp32 PyTorch, over the example inputs and `HELD_OUT_SAMPLES` held-out
    seeded draws: the largest absolute difference, the mean absolute difference, and the relative L2 error
    ||pte - eager|| / ||eager|| (over all of them together)."""
    cases = [tuple(model.example_inputs)] + _draws(model.example_inputs, HELD_OUT_SAMPLES, HELD_OUT_SEED)
    got, ref = [], []
    with torch.no_grad():
        for inputs in cases:
            ref.append(_flat(model.module(*inputs)))
            got.append(_flat(run_pte(path, inputs)))
    a, b = torch.cat(got), torch.cat(ref)
    if a.shape != b.shape:
        raise BuildError(f"{path}: output has {a.numel()} values, eager PyTorch {b.numel()}",
                         "check the model's outputs")
    diff = (a - b).abs()
    return {"reference": f"eager PyTorch fp32 (torch {torch.__version__})",
            "inputs": f"example inputs + {HELD_OUT_SAMPLES} held-out draws (seed {HELD_OUT_SEED})",
            "max_abs": float(diff.max()), "mean_abs": float(diff.mean()),
            "rel_l2": float((a - b).norm() / b.norm().clamp_min(1e-30)), "reference_max_abs": float(b.abs().max())}


def _io(inputs: Any) -> list[dict]:
    return [{"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", "")}
            for t in (inputs if isinstance(inputs, (list, tuple)) else [inputs]) if isinstance(t, torch.Tensor)]


def build_variant(model: DeviceModel, variant: str, out_dir: Path) -> BuildResult:
    """Export, lower, save and describe one variant; errors become BuildResult.error (nothing half-saved)."""
    version = require_executorch()
    stem = pte_stem(model.name, variant)
    dest = Path(out_dir) / f"{stem}.pte"
    try:
        exported = export(model, variant)
        atomic_write_bytes(dest, exported.program.buffer)
        try:
            dev = deviation(dest, model)
        except Exception as exc:  # noqa: BLE001 (a program the runtime cannot run is not kept)
            dest.unlink(missing_ok=True)
            if isinstance(exc, BuildError):
                raise
            first = str(exc).splitlines()[0][:300] if str(exc) else ""
            raise BuildError(f"{model.name}: the {variant} .pte does not run in the ExecuTorch runtime "
                             f"({type(exc).__name__}: {first})", "build the other variants") from exc
    except BuildError as exc:
        return BuildResult(variant, error=f"variant {variant}: {exc.message}")
    with torch.no_grad():
        outputs = model.module(*model.example_inputs)
    import torchao

    manifest = {
        "schema": SCHEMA, "model": model.name, "variant": variant, "runtime": "executorch", "delegate": DELEGATE,
        "package": dest.name, "model_hash": sha256_file(dest), "weights_sha256": model.weights_sha256,
        "benchmark_app_name": dict(zip(("name", "backend", "quantization"), parse_app_name(stem) or ("", "", ""))),
        "conversion": "torch.export", "delegate_calls": exported.delegated_calls,
        "portable_ops": exported.portable_ops,  # ops left outside the XNNPACK delegate (run by portable kernels)
        "inputs": _io(model.example_inputs), "outputs": _io(outputs),
        "parameter_count": int(sum(p.numel() for p in model.module.parameters())),
        "size_bytes": dest.stat().st_size, "weight_bits": 8 if variant == "int8" else 32,
        "precision": "fp32", "quantization": (
            "PT2E static int8: XNNPACKQuantizer, get_symmetric_quantization_config(is_per_channel=True) "
            "(per-channel symmetric int8 weights, per-tensor int8 activations)") if variant == "int8" else None,
        "calibration": ({"samples": CALIBRATION_SAMPLES, "seed": CALIBRATION_SEED,
                         "source": "module.calibration_inputs" if hasattr(model.module, "calibration_inputs")
                         else "example inputs + seeded draws with each float input's mean and std"}
                        if variant == "int8" else None),
        "deviation": dev, "executorch": version, "torchao": torchao.__version__, "torch": torch.__version__,
    }
    atomic_write_bytes(Path(out_dir) / f"{stem}.manifest.json", json.dumps(manifest, indent=1).encode())
    return BuildResult(variant, dest, manifest)


def build(model: DeviceModel, variants: list[str], out_dir: str | Path) -> list[BuildResult]:
    """Every variant, independently; variant names are checked and ExecuTorch imported before any work."""
    names = [parse_variant(v) for v in variants]
    require_executorch()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [build_variant(model, v, out) for v in names]


# ------------------------------------------------------------------------------------------ finding builds again

def read_manifest(pte: Path) -> dict | None:
    """The build manifest beside a `.pte` (`<stem>.manifest.json`), or None."""
    path = pte.with_name(pte.name[: -len(".pte")] + ".manifest.json") if pte.name.endswith(".pte") else None
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is not a readable build manifest ({exc})", "rebuild, or remove the file") from exc
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None


def find_builds(folder: Path, model: str, variant: str | None = None) -> list[tuple[Path, dict]]:
    """The `.pte` builds of `model` (its manifest's model name) in `folder`, fp32 first."""
    found = []
    for pte in sorted(Path(folder).glob("*.pte")):
        manifest = read_manifest(pte)
        if manifest and manifest.get("model") == model and (variant is None or manifest.get("variant") == variant):
            found.append((pte, manifest))
    order = {v: i for i, v in enumerate(VARIANTS)}
    return sorted(found, key=lambda pm: order.get(str(pm[1].get("variant")), len(order)))


def timing_targets(model: str, package: Path | None = None, variant: str | None = None) -> list:
    """What `device time MODEL --backend executorch-host` times: `package` a `.pte` (its manifest names model and
    variant), or a folder of builds (default `executorch-builds/`) whose builds of `model` are all timed. The model
    hash is the `.pte`'s sha256, checked against its manifest."""
    from evalsuite.device.backends import TimingTarget

    folder = package if package is not None and package.is_dir() else None
    if package is None:
        folder = DEFAULT_DIR
    if folder is not None:
        builds = find_builds(folder, model, variant)
        if not builds:
            raise InputError(f"no ExecuTorch build of {model}{f' ({variant})' if variant else ''} in {folder}",
                             f"run `evalsuite device build {model} --runtime executorch --variants fp32,int8 "
                             f"--out {folder}` first, or pass --package FILE.pte")
    else:
        assert package is not None
        if not package.is_file() or package.suffix != ".pte":
            raise InputError(f"{package} is not an ExecuTorch .pte file or a folder of builds",
                             "pass --package with a .pte built by `evalsuite device build --runtime executorch`")
        builds = [(package, read_manifest(package) or {})]
    targets = []
    for pte, manifest in builds:
        digest = sha256_file(pte)
        if manifest.get("model_hash") not in (None, digest):
            raise InputError(f"{pte} does not match its build manifest (sha256 {digest[:12]}, manifest "
                             f"{str(manifest['model_hash'])[:12]})",
                             "rebuild it with `evalsuite device build --runtime executorch`")
        parsed = parse_app_name(pte.stem)
        name = manifest.get("model") or model
        chosen = variant or manifest.get("variant") or (parsed[2] if parsed else "fp32")
        targets.append(TimingTarget(model=str(name), variant=str(chosen), model_hash=digest, package=pte))
    return targets


def deviation_text(manifest: dict) -> str:
    """A build manifest's deviation from eager fp32 in a few words ('' where it recorded none, e.g. Core ML)."""
    dev = manifest.get("deviation") or {}
    if not dev:
        return ""
    return f"max abs {dev['max_abs']:.3g}, mean abs {dev['mean_abs']:.3g}, rel L2 {dev['rel_l2']:.3g}"


def manifest_notes(manifest: dict) -> str:
    """The deviation a build manifest recorded, as one phrase for a timing record's notes."""
    text = deviation_text(manifest)
    return f"output vs eager fp32 (build manifest): {text}" if text else ""


def attach_builds(recs: list, folder: str | Path) -> list:
    """Join ExecuTorch benchmark-app records (backend `executorch`) with the builds they timed: the app names a
    record `<name>_<backend>_<quantization>`, the `.pte` stem, so its manifest in `folder` gives the model name and
    the `.pte`'s hash. A record without a build there is an InputError (nothing is stored)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"no builds folder {folder}", "pass the --out folder of `evalsuite device build --runtime "
                                                       "executorch`")
    for rec in recs:
        if rec.backend != "executorch":
            continue
        stem = f"{rec.model}_{rec.compute_unit}_{rec.variant}"
        manifest = read_manifest(folder / f"{stem}.pte")
        if manifest is None:
            raise InputError(f"no ExecuTorch build manifest {stem}.manifest.json in {folder} for the timed "
                             f"{stem}.pte", "pass the folder the .pte was built into, or ingest without --builds")
        rec.model, rec.model_hash = str(manifest["model"]), str(manifest["model_hash"])
        rec.notes = f"{rec.notes}; the .pte is {stem}.pte of {folder} (sha256 from its build manifest)"
    return recs
