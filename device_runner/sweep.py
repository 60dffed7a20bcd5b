"""`evalsuite sweep`: score every variant of a knob grid, time each one end to end, and report quality against
latency (issue 16).

For every combination of the grid (`knobs.grid_variants`), the variant `knobs.variant_spec(model, values)` is

1. scored on the tasks through the runner (`evalsuite.api.score` into the store; reference statistics and cached
   features are reused across variants by the engine, samples are stored per variant id; an interrupted run is
   finished with the runner's resume), then
2. timed end to end on the backend from its `device_pipeline()`, the same modules it generates with (text encoder
   once + steps x denoise step + decoder, `evalsuite.device.generation.time_generation`); the record carries the
   variant id (checked against the weights: the pipeline's denoiser sha256 must be the id's `#w=`) and is stored in
   `<store>/device/`.

Progress goes to the sweep manifest `<store>/sweeps/<sweep_id>/sweep.json` after every step (its schema:
`evalsuite.device.sweep_manifest`), so `resume_sweep` (`evalsuite sweep --resume SWEEP_ID`) does only what is
missing. The frontier per device of each task's primary metric comes from `evalsuite.pareto` on the joined points
(`load_sweep_points`, in `evalsuite.device.sweep_points`, re-exported here).

Timing runs on `host-torch` here; Core ML / iPhone timings of a variant are made on that device and stored with
`evalsuite device ingest`: a record carrying the variant id joins the sweep's points like the sweep's own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from evalsuite import knobs, pareto
from evalsuite.device import records
from evalsuite.device import sweep_manifest as manifests
from evalsuite.device.sweep_points import (
    join_point,
    load_sweep_points,
    records_with_files,
    result_variant_id,
    sweep_reports,
)
from evalsuite.errors import InputError

__all__ = ["SweepResult", "SweepSettings", "check_backend", "join_point", "load_sweep_points", "resume_sweep",
           "run_sweep", "sweep_reports", "time_variant"]

Progress = Callable[[str], None]


@dataclass
class SweepSettings:
    """How every variant is scored (the runner's run-wide settings; `options`: task options as `TASK.NAME`: value)
    and timed (iterations, warmup, release and git sha recorded with each timing)."""

    num_samples: int | None = None
    seed: int = 0
    ref: str | None = None
    extractor: str | None = None
    batch_size: int = 32
    options: dict[str, Any] = field(default_factory=dict)
    iterations: int = 10
    warmup: int = 2
    release: str = "unreleased"
    git_sha: str = ""

    def score_options(self) -> dict[str, Any]:
        return {"num_samples": self.num_samples, "seed": self.seed, "ref": self.ref, "extractor": self.extractor,
                "batch_size": self.batch_size, "options": dict(self.options)}

    def timing(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "warmup": self.warmup, "release": self.release,
                "git_sha": self.git_sha}

    @classmethod
    def from_manifest(cls, manifest: dict) -> "SweepSettings":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in {**manifest["score_options"], **manifest["timing"]}.items() if k in known})


@dataclass
class SweepResult:
    """A finished sweep: its manifest and, per `TASK.METRIC`, the Pareto reports per device."""

    sweep_id: str
    store: Path
    manifest: dict
    reports: dict[str, tuple[pareto.DeviceReport, ...]]

    @property
    def manifest_path(self) -> Path:
        return manifests.sweep_path(self.store, self.sweep_id, manifests.MANIFEST)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the sweep id, manifest path, variants and `evalsuite.pareto.to_dict` per metric."""
        return {"sweep_id": self.sweep_id, "store": str(self.store), "manifest": str(self.manifest_path),
                "status": self.manifest["status"], "variants": self.manifest["variants"],
                "pareto": {metric: pareto.to_dict(reports) for metric, reports in self.reports.items()}}

    def to_markdown(self) -> str:
        """The frontier tables of every metric (`evalsuite.pareto.to_markdown`), or why a metric has none."""
        parts = [pareto.to_markdown(reports) if reports else f"## {metric}: no variant has both a result and a "
                 "timing record\n" for metric, reports in self.reports.items()]
        return "\n".join(parts)


def check_backend(backend: str, device: str) -> None:
    """The sweep times on host-torch (cpu or cuda); another registered backend is a clear 'not here' error naming
    `evalsuite device ingest`, an unknown one lists the known backends."""
    import torch

    from evalsuite.device import backends

    backends.BACKENDS.get(backend)
    if backend != "host-torch":
        raise InputError(f"evalsuite sweep times variants end to end on host-torch; timing on {backend} is not "
                         "supported here",
                         "sweep with --backend host-torch, then time the variants on the device and store those "
                         "records with `evalsuite device ingest`: records carrying a variant id join the sweep's "
                         "points by that id")
    if device != "cpu" and not device.startswith("cuda"):
        raise InputError(f"host-torch times on cpu or cuda, not {device!r}", "pass --device cpu or --device cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device} was asked for, but no CUDA device is available", "use --device cpu")


def time_variant(spec: str, variant_id: str, settings: SweepSettings, device: str = "cpu",
                 note: str = "") -> records.TimingRecord:
    """Time one variant end to end on host-torch from its generator's `device_pipeline()` (the modules it generates
    with) and return the record carrying `variant_id`; the pipeline's denoiser weights must be the id's `#w=`."""
    from evalsuite.device.backends import TimingSettings
    from evalsuite.device.generation import time_generation
    from evalsuite.hashing import sha256_state_dict
    from evalsuite.models import resolve_model

    source = resolve_model(spec)
    model = source.generator if source.generator is not None else source.autoencoder
    if model is None or not callable(getattr(model, "device_pipeline", None)):
        raise InputError(f"model {spec} has no device_pipeline(): the sweep cannot time what it scores",
                         "give its generator device_pipeline() returning evalsuite.device.models.GenerationPipeline "
                         "built from the modules it generates with")
    pipeline = model.device_pipeline()
    have = pipeline.denoiser.weights_sha256 or sha256_state_dict(pipeline.denoiser.module)
    _, _, want = variant_id.partition("#w=")
    if want and not have.startswith(want):
        raise InputError(f"the pipeline of {spec} runs weights {have[:16]}, but its variant id {variant_id} names "
                         f"{want}", "device_pipeline() must return the modules the generator generates with")
    variant = source.info.get("variant") or {}
    steps = pipeline.info.get("steps") or (variant.get("knobs") or {}).get("steps")
    if not isinstance(steps, int) or steps < 1:
        raise InputError(f"the pipeline of {spec} does not say how many steps it runs",
                         "set GenerationPipeline.info['steps'] (or declare a steps knob)")
    rec = time_generation(pipeline, steps, TimingSettings(iterations=settings.iterations, warmup=settings.warmup,
                                                          release=settings.release, git_sha=settings.git_sha,
                                                          device=device))
    label = pareto.knob_text(variant.get("knobs") or {}) or rec.variant
    return dataclasses.replace(rec, model=str(variant.get("base_model_id") or rec.model), variant=label,
                               model_hash=have, variant_id=variant_id, notes=f"{rec.notes}{note}")


def run_sweep(model: str, grid: Mapping[str, Sequence[str]], tasks: Sequence[str], *, store: str | Path,
              backend: str = "host-torch", device: str = "cpu", settings: SweepSettings | None = None,
              progress: bool = True, on_progress: Progress | None = None) -> SweepResult:
    """Score and time every variant of `grid` (knob -> values as strings) of `model` (a base spec; knob values in
    its `?query` hold for every variant), store both, and return the frontier of each task's primary metric.
    Everything is checked before any work: the backend, the tasks, every knob value of every variant."""
    from evalsuite import task as registry
    from evalsuite import task_options
    from evalsuite.models import resolve_model

    settings = settings or SweepSettings()
    check_backend(backend, device)
    tasks = list(dict.fromkeys(tasks))
    if not tasks:
        raise InputError("--tasks names no task", "pass comma-separated task names, e.g. --tasks variant-fidelity")
    classes = [registry.get(name) for name in tasks]
    given: dict[str, dict[str, Any]] = {}
    for key, value in settings.options.items():
        task, dot, name = str(key).rpartition(".")
        task_options.add(given, task if dot else task_options.ALL_TASKS, name, value)
    task_options.check(given, classes, registry.all_tasks())
    if not grid:
        raise InputError("the sweep has no grid", "pass --grid KNOB=V1,V2 (e.g. --grid steps=1,2,4)")
    base_spec, fixed = knobs.split_spec(model)
    both = sorted(set(fixed) & set(grid))
    if both:
        raise InputError(f"the knob(s) {', '.join(both)} are set both in {model} and by --grid",
                         "set each in one place")
    base = resolve_model(base_spec)
    target = base.generator if base.generator is not None else base.autoencoder
    if target is None or not knobs.declared(target):
        raise InputError(f"model {base_spec} declares no knobs: there is nothing to sweep",
                         "sweep a model with knobs (`demo`, or a generator declaring evalsuite.knobs.Knob)")
    if not callable(getattr(target, "device_pipeline", None)):
        raise InputError(f"model {base_spec} has no device_pipeline(): its variants cannot be timed",
                         "give its generator device_pipeline() (see evalsuite.models.demo.DemoGenerator)")
    variants: list[dict[str, Any]] = []
    seen: dict[str, dict[str, str]] = {}
    for combo in knobs.grid_variants(grid):
        values = {**fixed, **combo}
        full = knobs.resolve_values(target, values, base_spec)
        key = knobs.variant_spec("", full)
        if key in seen:
            raise InputError(f"--grid values {seen[key]} and {combo} are the same variant ({key[1:]})",
                             "list each value once")
        seen[key] = combo
        variants.append({"spec": knobs.variant_spec(base_spec, values), "knobs": full, "variant_id": None,
                         "run_id": None, "timing_record": None, "status": "pending"})
    manifest = {"schema": manifests.SCHEMA, "sweep_id": manifests.new_sweep_id(base_spec), "model": base_spec,
                "grid": {k: list(v) for k, v in grid.items()}, "tasks": tasks, "backend": backend, "device": device,
                "score_options": settings.score_options(), "timing": settings.timing(), "created_at": manifests.now(),
                "status": "running", "variants": variants}
    manifests.write(store, manifest, new=True)
    return _drive(Path(store), manifest, settings, progress, on_progress)


def resume_sweep(sweep_id: str, store: str | Path, *, progress: bool = True,
                 on_progress: Progress | None = None) -> SweepResult:
    """Finish an interrupted sweep with the settings stored in its manifest: only the variants (and, within a
    variant, the steps) not done yet."""
    manifest = manifests.read(store, sweep_id)
    if manifest["status"] == "complete" and all(v["status"] == "complete" for v in manifest["variants"]):
        raise InputError(f"sweep {sweep_id} is complete: every variant is scored and timed",
                         "nothing to resume; its points: evalsuite.device.sweep.load_sweep_points(store, sweep_id, "
                         "metric)")
    check_backend(manifest["backend"], manifest["device"])
    manifest["resumed_at"] = [*manifest.get("resumed_at", []), manifests.now()]
    return _drive(Path(store), manifest, SweepSettings.from_manifest(manifest), progress, on_progress)


def _drive(store: Path, manifest: dict, settings: SweepSettings, progress: bool,
           on_progress: Progress | None) -> SweepResult:
    """Take every variant to `complete`, writing the manifest after each step, under the sweep's lock."""
    say = on_progress or (lambda _msg: None)
    sweep_id = manifest["sweep_id"]
    with manifests.locked(store, sweep_id):
        manifests.write(store, manifest)
        total = len(manifest["variants"])
        for i, entry in enumerate(manifest["variants"], 1):
            if entry["status"] == "complete":
                continue
            if entry["status"] in ("pending", "scoring"):
                say(f"[{i}/{total}] scoring {entry['spec']}")
                _score(store, manifest, entry, settings, progress)
            say(f"[{i}/{total}] timing {entry['variant_id']} on {manifest['backend']} ({manifest['device']})")
            _time(store, manifest, entry, settings)
        manifest.update(status="complete", completed_at=manifests.now())
        manifests.write(store, manifest)
    return SweepResult(sweep_id, store, manifest, sweep_reports(store, sweep_id))


def _score(store: Path, manifest: dict, entry: dict, settings: SweepSettings, progress: bool) -> None:
    """pending/scoring -> scored: a new run, or the run an interruption left (finished with the runner's resume)."""
    from evalsuite import api
    from evalsuite.results import ResultsStore

    found = _find_run(store, entry, manifest) if entry["status"] == "scoring" else None
    if found is None:
        entry.update(status="scoring", scoring_since=manifests.now())
        manifests.write(store, manifest)
        so = settings.score_options()
        run = api.score(entry["spec"], manifest["tasks"], store=store, options=so.pop("options"), progress=progress,
                        **so)
        run_id, docs = run.run_id, run.results
    else:
        results = ResultsStore(store)
        docs = results.load_run(found)
        missing = results.run_state(found, results.read_manifest(found, required=True),
                                    [d["task"] for d in docs])["missing_tasks"]
        run_id, docs = (found, api.resume(found, store, progress=progress).results) if missing else (found, docs)
    ids = sorted({result_variant_id(d) or "" for d in docs})
    if len(ids) != 1 or not ids[0]:
        raise InputError(f"the results of {entry['spec']} (run {run_id}) carry the variant ids {ids}, not one",
                         "report this: every result of a variant's run carries its variant id")
    entry.update(status="scored", run_id=run_id, variant_id=ids[0])
    manifests.write(store, manifest)


def _find_run(store: Path, entry: dict, manifest: dict) -> str | None:
    """The run of this variant an interruption left: same spec and tasks, started at or after `scoring_since`."""
    from evalsuite.results import ResultsStore

    results = ResultsStore(store)
    since = str(entry.get("scoring_since", ""))
    stamp = since[:19].replace("-", "").replace(":", "") + "Z"  # run ids start with %Y%m%dT%H%M%SZ
    if not results.runs_dir.is_dir():
        return None
    for folder in sorted(results.runs_dir.iterdir(), reverse=True):
        if folder.is_symlink() or not folder.is_dir() or folder.name[:16] < stamp:
            continue
        run = results.read_manifest(folder.name)
        if (run and run["model"]["spec"] == entry["spec"] and run["tasks"] == manifest["tasks"]
                and str(run.get("created_at", "")) >= since
                and (run.get("options") or {}).get("num_samples") == manifest["score_options"].get("num_samples")):
            return folder.name
    return None


def _time(store: Path, manifest: dict, entry: dict, settings: SweepSettings) -> None:
    """scored/timing -> complete: a new timing record, or the one an interruption stored before the manifest knew."""
    note = f"; sweep {manifest['sweep_id']}"
    if entry["status"] == "timing":
        since = str(entry.get("timing_since", ""))
        for path, rec in records_with_files(store):
            if rec.variant_id == entry["variant_id"] and rec.notes.endswith(note) and rec.timestamp >= since:
                entry.update(status="complete", timing_record=path.name)
                manifests.write(store, manifest)
                return
    entry.update(status="timing", timing_since=manifests.now())
    manifests.write(store, manifest)
    rec = time_variant(entry["spec"], entry["variant_id"], settings, manifest["device"], note)
    path = records.write(store, rec)
    entry.update(status="complete", timing_record=path.name)
    manifests.write(store, manifest)
