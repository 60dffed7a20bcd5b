"""A sweep's points: each variant's quality result joined with its timing records by variant id, for
`evalsuite.pareto` (the sweep's frontier, and the `evalsuite pareto` report page).

The manifest (`device_runner/sweep_manifest.py`, `<store>/sweeps/<sweep_id>/sweep.json`) lists every variant with
its `variant_id`, the results-store `run_id` holding its quality results and the `timing_record` file the sweep made.
A point is one (variant, device): the variant's result for the metric, and the latest timing record in
`<store>/device/` carrying the same variant id on that device, the sweep's own and any stored later (a phone's, from
`evalsuite device ingest`). The join is exact: a result and a record whose variant ids differ are refused
(`join_point`), never matched by name.

- quality: the result's metric; its 95% CI by `evalsuite.bootstrap.bootstrap_ci` over the per-sample values the
  metric declares (`MetricInfo.per_sample`, statistic `MetricInfo.aggregate`; 1000 resamples, seed 0), as `compare`
  draws its error bars; None without per-sample values.
- latency: the record's `median_ms`, with the 10th and 90th percentiles of its `latencies_ms`.
- device: the record's device model, backend and compute unit (`Apple M3 (coreml-mac, CPU_AND_NE)`).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from evalsuite import pareto
from evalsuite.device import records
from evalsuite.device import sweep_manifest as manifests
from evalsuite.errors import InputError
from evalsuite.fsutil import refuse_symlink

CI_RESAMPLES = 1000


def device_label(record: records.TimingRecord) -> str:
    """The device a record was timed on, as points group by it: device model (backend[, compute unit])."""
    where = ", ".join(x for x in (record.backend, record.compute_unit) if x)
    return f"{record.device_model} ({where})"


def primary_metric(task: str) -> tuple[str, str]:
    """(metric, direction) of a task's primary metric, from its MetricInfo (the first declared if none is primary)."""
    from evalsuite import task as registry

    metrics = registry.get(task).metrics
    name = next((m for m, info in metrics.items() if info.primary), next(iter(metrics)))
    return name, metrics[name].direction


def resolve_metric(tasks: list[str], metric: str) -> tuple[str, str, str]:
    """(task, metric, direction) for `TASK.METRIC`, a task name (its primary metric) or a metric name that exactly
    one of `tasks` declares; the direction is the task's declaration, never guessed."""
    from evalsuite import task as registry

    task, dot, name = metric.rpartition(".")
    if dot and task in tasks:
        declared = registry.get(task).metrics
        if name not in declared:
            raise InputError(f"task {task} has no metric {name}", f"its metrics: {', '.join(declared)}")
        return task, name, declared[name].direction
    if metric in tasks:
        return (metric, *primary_metric(metric))
    owners = [t for t in tasks if metric in registry.get(t).metrics]
    if len(owners) == 1:
        return owners[0], metric, registry.get(owners[0]).metrics[metric].direction
    raise InputError(f"the sweep's tasks ({', '.join(tasks)}) " + ("each declare" if owners else "declare no") +
                     f" the metric {metric!r}", "name it as TASK.METRIC, or a task for its primary metric")


def quality_ci(doc: dict, metric: str) -> tuple[float, float] | None:
    """The 95% bootstrap CI of a result's metric from its per-sample values, or None where there are none (or
    fewer than 2, or the interval is not finite)."""
    from evalsuite.bootstrap import STATISTICS, bootstrap_ci

    info = (doc.get("metric_info") or {}).get(metric) or {}
    per = doc.get("per_sample") or {}
    key = info.get("per_sample") or (metric if metric in per else None)
    if not isinstance(key, str) or not isinstance(per.get(key), list):
        return None
    try:
        values = np.asarray([float(v) for v in per[key]], dtype=np.float64)
        stat = STATISTICS[info.get("aggregate", "mean")](data_range=info.get("data_range", 1.0))
    except (TypeError, ValueError, KeyError):
        return None
    if len(values) < 2 or not np.isfinite(values).all():
        return None
    low, high = bootstrap_ci(values, stat, n_boot=CI_RESAMPLES, seed=0)
    return (low, high) if math.isfinite(low) and math.isfinite(high) else None


def result_variant_id(doc: dict) -> str | None:
    """The variant id a quality result carries (`model.info.variant.id`), or None for a model without knobs."""
    info = (doc.get("model") or {}).get("info") or {}
    variant = info.get("variant") if isinstance(info, dict) else None
    return variant.get("id") if isinstance(variant, dict) else None


def join_point(doc: dict, metric: str, record: records.TimingRecord, label: str | None = None) -> pareto.Point:
    """One point from a quality result and a timing record of the same variant (`label`: default, its knobs).
    Different variant ids (or a side without one) are refused with a one-line InputError naming both: the join is
    exact or it is not made."""
    ours, theirs = result_variant_id(doc), record.variant_id
    if not ours or not theirs or ours != theirs:
        raise InputError(f"refusing to join the quality result of variant {ours or '(none)'} (task {doc.get('task')}, "
                         f"run {doc.get('run_id')}) with the timing record of variant {theirs or '(none)'}",
                         "a result and a timing record join only when they carry the same variant id: time that "
                         "variant (evalsuite sweep), or remove the record that names the wrong one")
    if metric not in (doc.get("metrics") or {}):
        have = ", ".join(doc.get("metrics") or {}) or f"none (status {doc.get('status')})"
        raise InputError(f"the result of task {doc.get('task')} in run {doc.get('run_id')} has no metric {metric}",
                         f"its metrics: {have}")
    knobs = (doc["model"]["info"]["variant"] or {}).get("knobs") or {}
    lat = np.asarray(record.latencies_ms, dtype=np.float64)
    return pareto.Point(ours, label or pareto.knob_text(knobs), doc["metrics"][metric], record.median_ms,
                        device_label(record), knobs=knobs, quality_ci=quality_ci(doc, metric),
                        latency_p10_p90=(float(np.percentile(lat, 10)), float(np.percentile(lat, 90))))


def _latest_per_device(found: list[records.TimingRecord]) -> list[records.TimingRecord]:
    latest: dict[str, records.TimingRecord] = {}
    for rec in sorted(found, key=lambda r: r.timestamp):
        latest[device_label(rec)] = rec
    return [latest[d] for d in sorted(latest)]


def load_sweep_points(store: str | Path, sweep_id: str, metric: str) -> list[pareto.Point]:
    """Every (variant, device) point of a sweep for `metric` (`TASK.METRIC`, a task name for its primary metric, or
    a metric one task of the sweep declares), in the manifest's variant order, then by device.

    Per variant: its stored result of the metric's task (run `run_id` of the manifest) joined with the latest timing
    record carrying its variant id on each device; the record the manifest names must carry that id (else the
    InputError of `join_point`). Variants not yet scored or timed, skipped tasks, and qualities a point cannot hold
    (+inf: identical to the reference) are left out with a warning naming them."""
    from evalsuite.results import ResultsStore

    manifest = manifests.read(store, sweep_id)
    task, name, _ = resolve_metric(list(manifest["tasks"]), metric)
    results = ResultsStore(store)
    by_id: dict[str, list[records.TimingRecord]] = {}
    named: dict[str, records.TimingRecord] = {}
    for path, rec in records_with_files(store):
        if rec.variant_id:
            by_id.setdefault(rec.variant_id, []).append(rec)
        named[path.name] = rec
    points, missing = [], []
    for entry in manifest["variants"]:
        doc = _result(results, entry.get("run_id"), task) if entry.get("run_id") else None
        if doc is None or doc.get("status") != "ok":
            missing.append(f"{entry['spec']} (no {task} result)")
            continue
        own = named.get(entry.get("timing_record") or "")
        if own is not None:
            join_point(doc, name, own)  # the manifest's own pairing must be exact
        elif entry.get("timing_record"):
            missing.append(f"{entry['spec']} (timing record {entry['timing_record']} is not in the store)")
        found = _latest_per_device(by_id.get(result_variant_id(doc) or "", []))
        if not found:
            missing.append(f"{entry['spec']} (no timing record)")
        label = pareto.knob_text({k: v for k, v in entry["knobs"].items() if k in manifest["grid"]}) or None
        for rec in found:
            point = None
            try:
                point = join_point(doc, name, rec, label)
            except pareto.ParetoError as exc:
                missing.append(f"{entry['spec']} ({exc.message})")
            if point is not None:
                points.append(point)
    if missing:
        warnings.warn(f"sweep {sweep_id}, {task}.{name}: left out {'; '.join(missing)}", stacklevel=2)
    return points


def _result(results: Any, run_id: str, task: str) -> dict | None:
    try:
        docs = results.load_run(run_id)
    except InputError:
        return None
    return next((d for d in docs if d.get("task") == task), None)


def records_with_files(store: str | Path) -> list[tuple[Path, records.TimingRecord]]:
    """(file, record) of every usable record in `<store>/device` (unusable ones warn, as `records.load_all`)."""
    import json

    from evalsuite.results import StoreWarning

    folder = Path(store) / "device"
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            refuse_symlink(path)
            out.append((path, records.TimingRecord.from_dict(json.loads(path.read_bytes()), f"timing record {path}")))
        except InputError as exc:
            warnings.warn(f"skipped {exc.message}; fix or remove the file", StoreWarning, stacklevel=3)
        except (OSError, ValueError, RecursionError) as exc:
            warnings.warn(f"skipped timing record {path}: it cannot be read ({type(exc).__name__}); fix or remove "
                          "the file", StoreWarning, stacklevel=3)
    return out


def sweep_reports(store: str | Path, sweep_id: str, metrics: list[str] | None = None
                  ) -> dict[str, tuple[pareto.DeviceReport, ...]]:
    """`{TASK.METRIC: evalsuite.pareto.report(...)}` for each metric (default: every task's primary metric), the
    direction from the task's MetricInfo; a metric without points has an empty tuple."""
    manifest = manifests.read(store, sweep_id)
    out: dict[str, tuple[pareto.DeviceReport, ...]] = {}
    for wanted in metrics or list(manifest["tasks"]):
        task, name, direction = resolve_metric(list(manifest["tasks"]), wanted)
        points = load_sweep_points(store, sweep_id, f"{task}.{name}")
        out[f"{task}.{name}"] = pareto.report(points, direction, f"{task}.{name}") if points else ()
    return out
