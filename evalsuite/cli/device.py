"""On-device speed: Core ML builds, timing backends, ingestion and history."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Optional

import typer

from evalsuite.cli.common import (
    JsonOpt,
    StoreOpt,
    _print_json,
    _store,
    _table,
    device_app,
    err,
    friendly,
    out,
)
from evalsuite.errors import InputError


# ------------------------------------------------------------------------------------------------ device runner
def _git(*args: str) -> str:

    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _release(release: Optional[str]) -> tuple[str, str]:
    """--release, else `git describe` of the working directory, else 'unreleased'; and the git sha."""
    return release or _git("describe", "--tags", "--always", "--dirty") or "unreleased", _git("rev-parse", "HEAD")


def _ms(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.4g}"


def _records_table(records: list) -> None:
    """Tails, noise, cold start and memory of each record; then the windows of sustained runs."""
    _table("timing", ["model", "variant", "backend", "unit", "device", "p50 ms", "95% CI", "p90 ms", "p99 ms",
                      "throughput", "release"],
           [[r.model, r.variant, r.backend, r.compute_unit, r.device_model, _ms(r.median_ms),
             "[{}, {}]".format(*(_ms(v) for v in r.median_ci_ms)), _ms(r.p90_ms), _ms(r.p99_ms),
             f"{r.throughput:.4g} {r.throughput_unit}", r.release] for r in records])
    _table("cold start and memory", ["model", "variant", "unit", "compile ms", "first load ms", "warm load ms",
                                     "first pred ms", "peak MiB", "thermal"],
           [[r.model, r.variant, r.compute_unit, _ms(r.compile_ms), _ms(r.load_ms), _ms(r.warm_load_ms),
             _ms(r.first_predict_ms), _ms(r.peak_memory_mb), r.thermal_state] for r in records])
    for r in records:
        if r.windows:
            _table(f"sustained {r.duration_s:.0f} s: {r.model} {r.variant} {r.backend}/{r.compute_unit}",
                   ["until s", "predictions", "median ms", "vs first window", "thermal"],
                   [[f"{w['t_s']:.1f}", w["end"] - w["start"], _ms(w["median_ms"]),
                     f"{w['median_ms'] / r.windows[0]['median_ms']:.3f}×", w["thermal_state"]] for w in r.windows])


@device_app.command("build")
@friendly
def device_build(
    model: str = typer.Argument(..., help="demo | python:package.module:factory"),
    variants: Optional[str] = typer.Option(None, "--variants", help="coreml: default fp16,palettize4,palettize6,int8;"
                                           " executorch: fp32,int8 (the default)."),
    runtime: str = typer.Option("coreml", "--runtime", help="coreml (.mlpackage) | executorch (.pte, XNNPACK)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Default coreml-builds/ or executorch-builds/."),
    as_json: bool = JsonOpt,
) -> None:
    """Convert to Core ML ML programs (or ExecuTorch .pte programs with --runtime executorch) and build each
    variant; one manifest per variant. Exit 1 if any failed."""
    from evalsuite.device import build, executorch_build, models

    if runtime not in ("coreml", "executorch"):
        raise InputError(f"unknown --runtime {runtime!r}", "use coreml or executorch")
    lib = executorch_build if runtime == "executorch" else build
    names = [v for v in (variants or ("fp32,int8" if runtime == "executorch" else
                                      "fp16,palettize4,palettize6,int8")).split(",") if v.strip()]
    out_dir = out_dir or (executorch_build.DEFAULT_DIR if runtime == "executorch" else Path("coreml-builds"))
    results = lib.build(models.resolve(model), names, out_dir)
    if as_json:
        _print_json([{"variant": r.variant, "package": str(r.package) if r.package else None, "error": r.error,
                      "manifest": r.manifest} for r in results])
    else:
        _table(f"{'ExecuTorch' if runtime == 'executorch' else 'Core ML'} builds in {out_dir}",
               ["variant", "size (bytes)", "weight bits", "model hash", "conversion", "vs eager fp32", "error"],
               [[r.variant, r.manifest.get("size_bytes"), r.manifest.get("weight_bits"),
                 (r.manifest.get("model_hash") or "")[:16], r.manifest.get("conversion"),
                 executorch_build.deviation_text(r.manifest), r.error] for r in results])
    if any(r.error for r in results):
        raise typer.Exit(1)


@device_app.command("time")
@friendly
def device_time(
    model: str = typer.Argument(..., help="demo | python:package.module:factory"),
    backend: str = typer.Option("host-torch", "--backend", help="host-torch | coreml-mac | iphone | executorch-host"),
    package: Optional[Path] = typer.Option(None, "--package", help=".mlpackage for coreml-mac / iphone; a .pte or a "
                                           "builds folder for executorch-host (default executorch-builds/)."),
    variant: Optional[str] = typer.Option(None, "--variant", help="Variant name recorded (default: from the "
                                          "package's manifest, else fp32)."),
    iterations: int = typer.Option(50, "--iterations", min=1),
    warmup: int = typer.Option(5, "--warmup", min=0),
    compute_unit: str = typer.Option("ALL", "--compute-unit", help="ALL | CPU_AND_NE | CPU_AND_GPU | CPU_ONLY | each"),
    device: str = typer.Option("cpu", "--device", help="host-torch: cpu or cuda"),
    release: Optional[str] = typer.Option(None, "--release", help="Release tag (default: git describe)."),
    timeout: float = typer.Option(600.0, "--timeout", help="iphone: seconds to wait for the app's result."),
    duration: Optional[str] = typer.Option(None, "--duration", help="A sustained run: time predictions back to "
                                           "back for this long (10m, 90s, 1h; at least --iterations of them) and "
                                           "record latency and thermal state per window."),
    window: Optional[str] = typer.Option(None, "--window", help="Sustained runs: window length (default 1m for "
                                         "runs of 5m or more, else a tenth of the run)."),
    store: Optional[Path] = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Time a model with one backend and store the timing records (p50/p90/p99, the median's bootstrap CI, cold
    start, peak memory; with --duration, latency and thermal state over time)."""
    from evalsuite.device import backends, build, models, records
    from evalsuite.device.sustained import parse_duration

    tag, sha = _release(release)
    duration_s, window_s = parse_duration(duration), parse_duration(window)
    if window_s is not None and duration_s is None:
        raise InputError("--window needs --duration", "add e.g. --duration 10m")
    if window_s is not None and duration_s is not None and window_s > duration_s:
        raise InputError(f"--window {window} is longer than --duration {duration}", "use a shorter window")
    settings = backends.TimingSettings(iterations=iterations, warmup=warmup, compute_unit=compute_unit,
                                       release=tag, git_sha=sha, timeout_s=timeout, device=device)
    if duration_s is not None:
        settings.extra.update(duration_s=duration_s, window_s=window_s)
        units = 4 if compute_unit.strip().lower() == "each" else len(compute_unit.split(","))
        settings.timeout_s = timeout + duration_s * units  # the app runs the duration once per compute unit
    chosen = backends.get(backend)
    chosen.check_available()
    target = backends.TimingTarget(model=model, variant=variant or "fp32")
    targets = [target]
    if backend == "executorch-host":
        from evalsuite.device.executorch_build import timing_targets

        targets = timing_targets(model, package, variant)
    elif package is not None:
        manifest_file = package.with_name(package.name.replace(".mlpackage", ".manifest.json"))
        manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
        target.package, target.model_hash = package, build.package_hash(package)
        target.variant = variant or manifest.get("variant", "fp32")
        target.model = manifest.get("model", model)
    if backend == "host-torch":
        resolved = models.resolve(model)
        target.module, target.example_inputs = resolved.module, resolved.example_inputs
        target.model_hash = target.model_hash or resolved.weights_sha256
    recs = [rec for t in targets for rec in chosen.time(t, settings)]
    if duration_s is not None and any(r.windows is None for r in recs):
        err.print(f"warning: the {backend} backend does not run sustained measurements; --duration was ignored "
                  f"(host-torch, coreml-mac, executorch-host and iphone do)", markup=False, highlight=False)
    paths = [records.write(_store(store), r) for r in recs]
    if as_json:
        _print_json([{**r.__dict__, "path": str(p)} for r, p in zip(recs, paths)])
    else:
        _records_table(recs)
        out.print(f"{len(paths)} record(s) stored in {_store(store) / 'device'}", soft_wrap=True)


@device_app.command("time-generation")
@friendly
def device_time_generation(
    model: str = typer.Argument("demo", help="demo | python:package.module:factory (a GenerationPipeline)"),
    steps: int = typer.Option(4, "--steps", min=1),
    iterations: int = typer.Option(10, "--iterations", min=1),
    warmup: int = typer.Option(2, "--warmup", min=0),
    device: str = typer.Option("cpu", "--device"),
    release: Optional[str] = typer.Option(None, "--release"),
    store: Optional[Path] = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """End-to-end generation time on the host: text encoder + steps × denoiser + decoder."""
    from evalsuite.device import backends, models, records
    from evalsuite.device.generation import time_generation

    tag, sha = _release(release)
    rec = time_generation(models.resolve_pipeline(model), steps, backends.TimingSettings(
        iterations=iterations, warmup=warmup, release=tag, git_sha=sha, device=device))
    path = records.write(_store(store), rec)
    if as_json:
        _print_json({**rec.__dict__, "path": str(path)})
    else:
        _records_table([rec])
        parts = ", ".join(f"{k} {v:.3g} ms" for k, v in (rec.components_ms or {}).items())
        out.print(f"{rec.median_ms / 1000:.3f} s per sample at {steps} steps ({parts})", soft_wrap=True)


@device_app.command("ingest")
@friendly
def device_ingest(
    file: Path = typer.Argument(..., help="The benchmark app's result JSON, or an ExecuTorch benchmark JSON."),
    release: Optional[str] = typer.Option(None, "--release"),
    variant_id: Optional[str] = typer.Option(None, "--variant-id", help="The variant id of the quality results "
                                             "these timings belong to (see `evalsuite sweep`), so they join them."),
    builds: Optional[Path] = typer.Option(None, "--builds", help="ExecuTorch JSON: the folder the timed .pte files "
                                          "were built into (`device build --runtime executorch`), so each record "
                                          "takes its build's model name and .pte hash."),
    store: Optional[Path] = StoreOpt,
) -> None:
    """Store timing records produced elsewhere (all or nothing)."""
    from evalsuite.device.ingest import ingest

    paths = ingest(file, _store(store), release=release, variant_id=variant_id, builds=builds)
    out.print(f"{len(paths)} record(s) ingested into {_store(store) / 'device'}", soft_wrap=True)


@device_app.command("history")
@friendly
def device_history(
    model: str,
    device: Optional[str] = typer.Option(None, "--device", help="Device model code, e.g. iPhone17,2."),
    backend: Optional[str] = typer.Option(None, "--backend"),
    threshold: float = typer.Option(1.15, "--threshold", min=1.0, help="Slower than this × the window median."),
    window: int = typer.Option(5, "--window", min=1, help="Earlier releases whose median is the baseline."),
    consecutive: int = typer.Option(2, "--consecutive", min=1, help="Latest releases that must all be slow."),
    metric: str = typer.Option("median", "--metric", help="median (each record's whole run) | last-window (a "
                               "sustained run's last window: the number after the device heats up)."),
    noise: str = typer.Option("disjoint", "--noise", help="disjoint: slow only when the median's 95% bootstrap CI "
                              "lies above the baseline's | outside: the median lies above the baseline's CI | off: "
                              "the threshold alone."),
    explain: bool = typer.Option(False, "--explain", help="Print why each point is or is not flagged."),
    plot_file: Optional[Path] = typer.Option(None, "--out",
                                             help="Plot file (default: <store>/device/<model>-history.png)."),
    fail_on_regression: bool = typer.Option(False, "--fail-on-regression",
                                            help="Exit 1 if the latest release regressed."),
    store: Optional[Path] = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Latency across releases per device/backend/variant (p50 with its bootstrap CI, p90, p99, cold start, peak
    memory); flags regressions beyond threshold and noise and writes a plot."""
    from evalsuite.device import history as hist
    from evalsuite.device import regression
    from evalsuite.device.records import METRICS
    from evalsuite.fsutil import atomic_write_bytes

    if metric not in METRICS:
        raise InputError(f"unknown --metric {metric!r}", f"use one of {', '.join(METRICS)}")
    if noise not in regression.NOISE_RULES:
        raise InputError(f"unknown --noise {noise!r}", f"use one of {', '.join(regression.NOISE_RULES)}")
    series = hist.history(_store(store), model, device=device, backend=backend, threshold=threshold, window=window,
                          consecutive=consecutive, metric=metric, noise=noise)
    if not series:
        raise InputError(f"no timing records for model '{model}' in {_store(store) / 'device'}",
                         "time it with `evalsuite device time` or import records with `evalsuite device ingest`")
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in model)
    path = plot_file or _store(store) / "device" / f"{slug}-history.png"
    what = "median latency" if metric == "median" else "last-window median latency"
    atomic_write_bytes(path, hist.plot(series, f"{model}: {what} across releases (95% CI)"))
    regressed = [s for s in series if s.latest_is_regression]
    if as_json:
        _print_json({"plot": str(path), "series": [s.__dict__ | {"label": s.label} for s in series]})
    else:
        p50 = "p50 ms" if metric == "median" else "last-window p50 ms"
        for s in series:
            _table(s.label, ["release", p50, "95% CI", "p90 ms", "p99 ms", "n", "vs window", "flag"],
                   [[rel, _ms(ms), "[{}, {}]".format(*(_ms(v) for v in s.median_ci_ms[i])), _ms(s.p90_ms[i]),
                     _ms(s.p99_ms[i]), n, "slow" if bad else "", "REGRESSION" if i in s.regression_events else ""]
                    for i, (rel, ms, n, bad) in enumerate(zip(s.releases, s.median_ms, s.measurements, s.violations))])
            cold = [s.compile_ms, s.load_ms, s.warm_load_ms, s.first_predict_ms, s.peak_memory_mb]
            if any(v is not None for values in cold for v in values):
                _table(f"{s.label}: cold start and memory", ["release", "compile ms", "first load ms",
                                                             "warm load ms", "first pred ms", "peak MiB", "thermal"],
                       [[rel, *(_ms(values[i]) for values in cold), s.thermal_state[i]]
                        for i, rel in enumerate(s.releases)])
            if explain:
                for rel, line in zip(s.releases, s.explanations):
                    out.print(f"  {rel}: {line}", markup=False, highlight=False, soft_wrap=True)
        out.print(f"plot: {path}", soft_wrap=True)
        for s in regressed:
            err.print(f"regression: {s.label} at {s.releases[-1]}", markup=False, highlight=False)
    if regressed and fail_on_regression:
        raise typer.Exit(1)
