"""`score`: resolve a model and tasks, run each task through one shared context, store one result per task."""

from __future__ import annotations

import dataclasses
import functools
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

import evalsuite
from evalsuite import distributed, sample_count, task_options
from evalsuite import task as registry
from evalsuite.api_inputs import SPEC_MODULE as IN_MEMORY_SPEC_MODULE
from evalsuite.context import RunContext, measure_fast_deviation
from evalsuite.errors import EvalsuiteError, InputError, MissingWeightsError, TaskSkipped, refuse_skipped
from evalsuite.fsutil import remove_temp_files
from evalsuite.models import ModelSource, resolve_model
from evalsuite.options import (
    DEFAULT_NUM_SAMPLES,
    DEFAULT_PROMPTS_FILE,
    MAX_NUM_SAMPLES,
    MIN_SAMPLE_BYTES,
    REFERENCE_SEED_OFFSET,
    ScoreOptions,
    check_run_inputs,
    read_prompts,
    resolve_device,
)
from evalsuite.provenance import environment
from evalsuite.results import ResultsStore, new_run_id
from evalsuite.samples import sample_requests

# names other modules and users import from here (the engine's one entry point)
__all__ = ["DEFAULT_NUM_SAMPLES", "DEFAULT_PROMPTS_FILE", "MAX_NUM_SAMPLES", "MIN_SAMPLE_BYTES",
           "REFERENCE_SEED_OFFSET", "RunContext", "RunSummary", "ScoreOptions", "check_run_inputs",
           "measure_fast_deviation", "read_prompts", "resolve_device", "resolve_model", "resolve_tasks", "resume",
           "sample_requests", "score"]


@dataclass
class RunSummary:
    run_id: str
    store: Path
    results: list[dict]

    def rows(self) -> list[dict]:
        """Flat rows (task, metric, value, status, note) for tables and --json."""
        out = []
        for doc in self.results:
            model = doc["model"]["spec"]
            if doc["status"] == "ok":
                for metric, value in doc["metrics"].items():
                    out.append({"task": doc["task"], "model": model, "metric": metric, "value": value,
                                "status": "ok", "n": doc.get("num_samples"), "note": _skip_note(doc)})
            else:
                out.append({"task": doc["task"], "model": model, "metric": None, "value": None,
                            "status": doc["status"], "n": None, "note": doc.get("reason"), "fix": doc.get("fix")})
        return out

    def artifacts(self) -> list[str]:
        """Files stored beside the results (plots), relative to the store."""
        return [a for doc in self.results for a in doc.get("artifacts", [])]


def _skip_note(doc: dict) -> str:
    """A sample count below the protocol's, counted sample skips, and parts of a task that could not run (e.g. LPIPS
    without its weights)."""
    notes = [sample_count.note(doc)] if sample_count.note(doc) else []
    n = doc.get("skipped_samples", {}).get("count", 0)
    if n:
        notes.append(f"{n} sample(s) skipped")
    parts = [k[: -len("_skipped")] for k in doc.get("details", {}) if k.endswith("_skipped")]
    if parts:
        notes.append(f"not computed: {', '.join(parts)} (see details)")
    return "; ".join(notes)


def resolve_tasks(source: ModelSource, options: ScoreOptions) -> tuple[list[str], dict]:
    """Task names to run, and the suite's default options (filled in where the user gave none)."""
    if options.tasks is not None and not options.tasks:
        raise InputError("--tasks names no task", "pass comma-separated task names, e.g. --tasks fid,kid "
                         "(see `evalsuite tasks`), or leave --tasks out for the model's suite")
    if options.tasks and options.suite:
        raise InputError("--tasks and --suite were both given", "pass one of them")
    if options.tasks:
        names, defaults = options.tasks, {}
    else:
        suite = registry.get_suite(options.suite or source.default_suite)
        names, defaults = suite["tasks"], suite["options"]
    for name in names:
        registry.get(name)  # unknown names fail before any work
    return list(dict.fromkeys(names)), defaults


def score(model_spec: str, options: ScoreOptions | None = None) -> RunSummary:
    """Score a model on the requested tasks; returns the stored result documents. The run's manifest
    (`runs/<run_id>/run.json`: model, tasks, options) is written before the first task and marked complete after
    the last, so an interrupted run is listed as incomplete and `resume` finishes it."""
    options = options or ScoreOptions()
    source = resolve_model(model_spec)
    names, defaults = resolve_tasks(source, options)
    for key, value in defaults.items():
        if getattr(options, key) is None:
            setattr(options, key, value)
    check_run_inputs(source, options)
    task_options.check(options.task_options, [registry.get(n) for n in names], registry.all_tasks())
    run_id = distributed.current().broadcast(
        new_run_id(source.spec.split(":")[0] if source.kind != "folder" else Path(str(source.folder)).name))
    manifest = {"run_id": run_id, "model": {"spec": source.spec, "id": source.model_id}, "tasks": names,
                "options": _options_json(options), "created_at": _now(), "status": "running"}
    return _execute(source, names, options, ResultsStore(options.store), manifest)


def resume(run_id: str, store_dir: str | Path, model_spec: str | None = None, progress: bool = True) -> RunSummary:
    """Finish an interrupted run: the tasks of its manifest without a result, for the same model, with the options
    stored in the manifest, under the same run id; results already stored stay as they are."""
    store = ResultsStore(store_dir)
    stored = store.load_run(run_id)  # an unknown id is an error; a unique prefix names the run
    run_id = stored[0]["run_id"] if stored else run_id
    manifest = store.read_manifest(run_id, required=True)
    spec = manifest["model"]["spec"]
    if model_spec is not None and model_spec != spec:
        raise InputError(f"run {run_id} scored {spec}, not {model_spec}", f"resume it without MODEL, or as {spec}")
    state = store.run_state(run_id, manifest, [d["task"] for d in stored])
    if not state["missing_tasks"]:
        raise InputError(f"run {run_id} is complete: every task of its manifest has a result",
                         f"nothing to resume; start a new run with `evalsuite score {spec}`")
    damaged = [str(store.run_path(run_id, f"{t}.json")) for t in state["missing_tasks"]
               if store.run_path(run_id, f"{t}.json").exists()]
    if damaged:
        raise InputError(f"run {run_id} holds result files that cannot be read: {', '.join(damaged)}",
                         "move them out of the store, then resume to score those tasks again")
    if spec.startswith(f"python:{IN_MEMORY_SPEC_MODULE}:in_memory."):
        raise InputError(f"run {run_id} scored a model object that lived in the memory of the call that started it "
                         f"({spec}); it cannot be rebuilt to resume the run",
                         "score the object again, or pass the model as a python:module:factory spec (a factory "
                         "evalsuite can call again) so that its runs can be resumed")
    source = resolve_model(spec)
    if source.model_id != manifest["model"]["id"]:
        raise InputError(f"model {spec} now identifies as {source.model_id!r}, but run {run_id} scored "
                         f"{manifest['model']['id']!r}", "the checkpoint changed: score it in a new run")
    return _execute(source, state["missing_tasks"], _options_from_json(manifest["options"], store_dir, progress),
                    store, manifest, stored)


def _execute(source: ModelSource, names: list[str], options: ScoreOptions, store: ResultsStore, manifest: dict,
             stored: list[dict] | None = None) -> RunSummary:
    """Run `names` in the run `manifest` describes, storing each result as soon as it is done, under the run's
    lock; `stored`: the run's results already in the store when resuming (None: a new run). Returns every result
    of the run."""
    dist = distributed.current()
    run_id = manifest["run_id"]
    with ExitStack() as held:
        def start() -> None:
            if dist.is_main:
                held.enter_context(store.run_lock(run_id))
                if stored is not None:
                    remove_temp_files(store.run_path(run_id), older_than_s=0)  # we hold the lock: a dead writer's
                    manifest["resumed_at"] = [*manifest.get("resumed_at", []), _now()]
                    store.write_manifest(manifest, new=False)
                else:
                    store.write_manifest(manifest, new=True)

        dist.collectively(start, "starting the run")
        if dist.is_main and stored is None:  # a new run that ends before its first result (bad input) leaves nothing
            held.callback(store.discard_run, run_id)
        ctx = RunContext(source, options, store)
        ctx.keep_features = any(registry.get(n).needs_all_features for n in names)
        env = environment(ctx.device)
        if dist.enabled:
            env["distributed"] = {"world_size": dist.world, "backend": torch.distributed.get_backend()}
        docs, pending_artifacts = [], []
        for name in names:
            cls = registry.get(name)
            task = cls(task_options.resolve(cls, options.task_options))
            started = time.perf_counter()
            doc: dict[str, Any] = {
                "run_id": run_id, "task": name, "task_version": task.version, "family": task.family,
                "metric_info": {k: asdict(v) for k, v in task.metrics.items()},
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            try:
                out = dist.collectively(functools.partial(task.run, ctx), f"task {name}")
            except TaskSkipped as skip:
                doc.update(status="skipped", reason=skip.reason, fix=skip.fix, metrics={})
            except MissingWeightsError as exc:
                doc.update(status="skipped", reason=exc.message, fix=exc.fix, metrics={})
            else:
                _check_metrics(task, out.metrics)
                if options.strict:
                    refuse_skipped(out.skipped_samples, f"input(s) of task {name}")
                doc["family"] = task.family  # a task may choose its table by what it scored (images or videos)
                doc.update(status="ok", metrics=out.metrics, details=out.details, num_samples=out.num_samples,
                           skipped_samples={"count": len(out.skipped_samples), "files": out.skipped_samples[:100]})
                if out.per_sample is not None:
                    doc["per_sample"] = out.per_sample
                if out.protocol:
                    doc["protocol"] = out.protocol
                if out.protocol_samples:
                    doc["sample_count"] = sample_count.record(out.num_samples or 0, out.protocol_samples)
                if out.artifacts:
                    doc["artifacts"] = [str((store.runs_dir / run_id / f"{name}.{fname}").relative_to(store.root))
                                        for fname in out.artifacts]
                    pending_artifacts += [(f"{name}.{fname}", data) for fname, data in out.artifacts.items()]
            model = ctx.source_for(task)
            doc["model"] = {"spec": model.spec, "id": model.model_id, "info": model.info}
            doc["provenance"] = _provenance(ctx, task, env, time.perf_counter() - started)
            if not dist.enabled:
                _write(store, run_id, doc, pending_artifacts)
                pending_artifacts = []
            docs.append(doc)
        if dist.enabled:  # all ranks finished every task: rank 0 stores the one result
            dist.collectively(lambda: None, "the run")
            if dist.is_main:
                for i, doc in enumerate(docs):
                    _write(store, run_id, doc, pending_artifacts if i == len(docs) - 1 else [])
        if dist.is_main:
            store.write_manifest({**manifest, "status": "complete", "completed_at": _now()}, new=False)
    order = {task: i for i, task in enumerate(manifest["tasks"])}
    return RunSummary(run_id, store.root, sorted((stored or []) + docs, key=lambda d: order.get(d["task"], len(order))))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _options_json(options: ScoreOptions) -> dict:
    """The options as stored in results' provenance and run manifests."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()}


def _options_from_json(data: dict, store: str | Path, progress: bool) -> ScoreOptions:
    """Options stored by `_options_json`, for the store they are in now (a store may have been moved)."""
    known = {f.name for f in dataclasses.fields(ScoreOptions)} | set(task_options.LEGACY_ALIASES)
    kwargs = {k: v for k, v in data.items() if k in known}  # a manifest written before options belonged to tasks
    kwargs.update(store=Path(store), progress=progress)     # holds them flat: their old names still map
    if kwargs.get("prompts") is not None:
        kwargs["prompts"] = Path(kwargs["prompts"])
    return ScoreOptions.with_legacy(**kwargs)


def _write(store: ResultsStore, run_id: str, doc: dict, artifacts: list[tuple[str, bytes]]) -> None:
    """Artifacts first, then the document that lists them."""
    for fname, data in artifacts:
        store.write_artifact(run_id, fname, data)
    store.write(doc)


def _check_metrics(task: Any, metrics: dict[str, float]) -> None:
    """Every returned metric is declared in the task's `metrics` (its direction is what ranks it: an undeclared
    number would be stored without one); NaN is never stored; +inf only where the metric declares it meaningful
    (PSNR of identical images)."""
    undeclared = sorted(set(metrics) - set(task.metrics))
    if undeclared:
        raise EvalsuiteError(f"task {task.name} returned undeclared metrics {', '.join(undeclared)}; nothing was "
                             "stored", f"declare them in {type(task).__name__}.metrics (MetricInfo with a direction)")
    bad = [k for k, v in metrics.items()
           if not np.isfinite(v) and not (v == np.inf and k in task.metrics and task.metrics[k].allow_inf)]
    if bad:
        raise EvalsuiteError(f"task {task.name} produced non-finite {', '.join(bad)}; nothing was stored",
                             "report this with the run's inputs; check for degenerate features")


def _provenance(ctx: RunContext, task: Any, env: dict, wall_time: float) -> dict:
    refs = [{"spec": r.name, "id": r.id, "n": r.n, "source": r.meta.get("source"),
             "covariance": r.meta.get("covariance")}
            for r in ctx._refs.values()]
    prov = {
        "evalsuite_version": evalsuite.__version__,
        "task_version": task.version,
        "weights_sha256": dict(ctx.weights_used),
        "extractors": {spec: ext.key for spec, ext in ctx._extractors.items()},
        "reference_stats": refs,
        "seeds": {"sample_seed_start": ctx.options.seed, "kid_seed": ctx.options.seed},
        "num_samples_requested": ctx.options.num_samples,
        "samples_generated_this_run": ctx.generated.get(ctx.source_for(task).model_id, 0),
        "preprocessing": {spec: ext.preprocessing.id for spec, ext in ctx._extractors.items()},
        "fast_mode": ctx.fast_mode or None,
        "inference_graph": {spec: ext.graph_report() for spec, ext in ctx._extractors.items()
                            if ext.graph_report() is not None},
        "hardware": env,
        "wall_time_s": round(wall_time, 3),
        "options": _options_json(ctx.options),
        "task_options": task_options.as_json(task.options),
    }
    data = getattr(task, "prepared_data", lambda ctx: None)(ctx)
    if task.sample_kind == "autoencoder" and data is not None:
        prov["data"] = data.describe()
        prov["seeds"] = {}  # autoencoder tasks are deterministic given the data
    return prov
