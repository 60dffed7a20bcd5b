"""Points for the Pareto report (issue 16): quality results joined with on-device timing records by variant id.

Where the points come from:

- a **sweep** (`<store>/sweeps/<sweep_id>/sweep.json`, schema `evalsuite.sweep/1`): its variants' results and
  timing records, joined by `evalsuite.device.sweep.load_sweep_points` (the sweep's own, exact join);
- **runs**: each run's result documents name their variant (`model.info.variant.id`) and a
  timing record names the variant it timed (`variant_id`); equal ids join, nothing else does. A run whose variant
  has no timing record is left out with a note, never paired with another variant's timing.
- **published pairs** (`pairs:` in leaderboard/published.yaml): a paper's quality number and its on-device
  latency, read from two of the file's `results` entries of the same model and citation; drawn as "reported".

Which quality is better comes from the metric's declaration (the result documents' `metric_info`, else the
installed task's `MetricInfo`), never from its name: a metric that declares no direction is an error.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite.errors import InputError, UnknownNameError
from evalsuite.pareto import ParetoError, Point, check_direction
from evalsuite.results import ResultsStore, StoreWarning

LATENCIES = ("median_ms", "trimmed_mean_ms")


@dataclass(frozen=True)
class Quality:
    """The quality axis: a metric (of one task, when known) and its declared direction."""

    metric: str
    direction: str
    task: str | None = None
    unit: str = ""

    @property
    def label(self) -> str:
        """`TASK.METRIC` (as `evalsuite sweep` names it), or the metric alone when no task is known."""
        return f"{self.task}.{self.metric}" if self.task else self.metric


@dataclass
class Gathered:
    """Points on one quality axis, and a note for every variant left out (and why)."""

    quality: Quality
    points: list[Point] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def parse_quality(text: str) -> tuple[str | None, str]:
    """`--quality` as (task or None, name): `psnr`, `variant-fidelity.psnr` or `variant-fidelity/psnr` (a task
    name alone stands for its primary metric; see `declared_quality`).

    >>> parse_quality("variant-fidelity.psnr"), parse_quality("geneval/overall"), parse_quality("fid")
    (('variant-fidelity', 'psnr'), ('geneval', 'overall'), (None, 'fid'))
    """
    text = text.strip()
    cut = max(text.rfind("/"), text.rfind("."))
    task, metric = (text[:cut], text[cut + 1:]) if cut >= 0 else ("", text)
    if not metric or (cut >= 0 and not task):
        raise InputError(f"--quality {text!r} is not METRIC, TASK.METRIC or TASK", "write e.g. --quality psnr or "
                         "--quality variant-fidelity.psnr")
    return (task or None), metric


def _matches(doc: dict, task: str | None, metric: str) -> bool:
    return doc.get("status") == "ok" and metric in (doc.get("metrics") or {}) and task in (None, doc.get("task"))


def _primary(doc: dict) -> str | None:
    info = doc.get("metric_info") or {}
    names = [m for m in info if m in (doc.get("metrics") or {})]
    return next((m for m in names if (info[m] or {}).get("primary")), names[0] if names else None)


def declared_quality(docs: Iterable[dict], text: str) -> Quality:
    """The quality axis of `--quality` for these result documents: the metric's direction as the documents'
    `metric_info` declares it (else the installed task's MetricInfo). Several tasks reporting the metric, or
    documents declaring different directions, are errors that say how to pick one."""
    docs = list(docs)
    task, metric = parse_quality(text)
    if task is None and not any(_matches(d, None, metric) for d in docs):
        primary = next((_primary(d) for d in docs if d.get("task") == metric and d.get("status") == "ok"), None)
        task, metric = (metric, primary) if primary else (None, metric)  # a task name: its primary metric
    found = [d for d in docs if _matches(d, task, metric)]
    tasks = sorted({str(d["task"]) for d in found})
    if not found:
        raise InputError(f"no successful result reports the metric {text!r}",
                         "pick a metric the runs scored (`evalsuite runs show RUN_ID` lists them)")
    if len(tasks) > 1:
        raise InputError(f"the metric {metric!r} is reported by several tasks ({', '.join(tasks)})",
                         f"name one: --quality {tasks[0]}.{metric}")
    directions = set()
    unit = ""
    for d in found:
        info = (d.get("metric_info") or {}).get(metric) or {}
        if info.get("direction") is not None:
            directions.add(info["direction"])
            unit = unit or str(info.get("unit", ""))
    if not directions:
        directions.add(registry_direction(tasks[0], metric))
    if len(directions) > 1:
        raise InputError(f"results of {tasks[0]}.{metric} declare different directions ({sorted(directions)})",
                         "compare results of one task version")
    return Quality(metric, check_direction(directions.pop()), tasks[0], unit)


def registry_direction(task: str, metric: str) -> str:
    """The direction the installed task declares for `metric` (its MetricInfo), or a ParetoError: never a guess."""
    import evalsuite.tasks as registry

    try:
        info = registry.get(task).metrics.get(metric)
    except UnknownNameError:
        info = None
    if info is None:
        raise ParetoError(f"{task}.{metric} declares no direction (its results carry no metric_info and no "
                          "installed task declares it)", "score it with a task that declares its metrics")
    return str(info.direction)


def _notes_of(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught]


# ------------------------------------------------------------------------------------------------ sweeps
def sweep_ids(store: str | Path) -> list[str]:
    """The sweeps in a store (folders of `<store>/sweeps/` holding a sweep.json), sorted."""
    folder = Path(store) / "sweeps"
    if not folder.is_dir():
        return []
    return sorted(p.parent.name for p in folder.glob("*/sweep.json") if not p.parent.name.startswith("."))


def sweep_run_ids(store: str | Path, sweep_id: str) -> list[str]:
    """The run ids a sweep's variants were scored in (variants not scored yet have none)."""
    from evalsuite.device import sweep_manifest

    manifest = sweep_manifest.read(store, sweep_id)
    return [str(v["run_id"]) for v in manifest["variants"] if v.get("run_id")]


def sweep_points(store: str | Path, sweep_id: str, quality_text: str, latency: str = "median_ms") -> Gathered:
    """The points of one sweep, joined by the sweep's own loader (`evalsuite.device.sweep.load_sweep_points`: the
    exact variant-id join); the direction as its results declare it; variants left out become notes."""
    from evalsuite.device.sweep import load_sweep_points

    if latency != "median_ms":
        raise InputError(f"a sweep's points are at the median latency, not {latency}", "use --latency median_ms")
    rs = ResultsStore(store)
    docs = [d for rid in sweep_run_ids(store, sweep_id) for d in _run_docs(rs, rid)]
    quality = declared_quality(docs, quality_text)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        points = list(load_sweep_points(Path(store), sweep_id, f"{quality.task}.{quality.metric}"))
    return Gathered(quality, points, _notes_of(caught), [f"sweep {sweep_id}"])


# ------------------------------------------------------------------------------------------------ runs
def _run_docs(rs: ResultsStore, run_id: str) -> list[dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)  # a damaged file is named when the run itself is listed
        return [d for d in rs.load_run(run_id) if d.get("status") == "ok"]


def _check_latency(latency: str) -> None:
    if latency not in LATENCIES:
        raise InputError(f"--latency {latency!r} is not one of {', '.join(LATENCIES)}",
                         "use median_ms (the median of the timed iterations)")


def run_points(store: str | Path, run_ids: Sequence[str], quality_text: str, latency: str = "median_ms") -> Gathered:
    """Points of runs whose results carry variant ids (`model.info.variant.id`) with timing records of the same ids
    in `<store>/device/`: per variant its latest result, per device its latest record (the join of
    `evalsuite.device.sweep_points.join_point`, exact or refused)."""
    from evalsuite.device.sweep_points import device_label, join_point, records_with_files, result_variant_id

    _check_latency(latency)
    rs = ResultsStore(store)
    by_run = {rid: _run_docs(rs, rid) for rid in run_ids}
    quality = declared_quality([d for docs in by_run.values() for d in docs], quality_text)
    gathered = Gathered(quality, sources=[f"run {rid}" for rid in run_ids])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        timings: dict[str, dict[str, Any]] = {}
        for _, rec in sorted(records_with_files(store), key=lambda pr: pr[1].timestamp):
            if rec.variant_id:
                timings.setdefault(rec.variant_id, {})[device_label(rec)] = rec
    gathered.notes += _notes_of(caught)
    latest: dict[str, dict] = {}
    for rid, docs in by_run.items():
        doc = next((d for d in docs if _matches(d, quality.task, quality.metric)), None)
        vid = result_variant_id(doc) if doc else None
        if doc is None or vid is None:
            gathered.notes.append(f"run {rid}: " + ("no result of " + quality.label if doc is None else
                                                    "its model has no variant id (no knobs): nothing to join"))
        elif vid in latest and (latest[vid].get("created_at") or "") >= (doc.get("created_at") or ""):
            gathered.notes.append(f"run {rid}: variant {vid} has a newer result; that one is used")
        else:
            latest[vid] = doc
    for vid, doc in latest.items():
        value = doc["metrics"][quality.metric]
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            gathered.notes.append(f"variant {vid}: {quality.label} is {value} (not plotted: not a finite number)")
        elif vid not in timings:
            gathered.notes.append(f"variant {vid} (run {doc['run_id']}): no timing record carries this variant "
                                  "id (time it with `evalsuite sweep`, or ingest the phone's records)")
        else:
            for _, rec in sorted(timings[vid].items()):
                point = join_point(doc, quality.metric, rec)
                gathered.points.append(point if latency == "median_ms" else
                                       dataclasses.replace(point, latency_ms=float(getattr(rec, latency))))
    return gathered


# ------------------------------------------------------------------------------------------------ any source
def gather(store: str | Path, names: Sequence[str], quality_text: str, latency: str = "median_ms",
           device: str | None = None) -> Gathered:
    """Points of sweeps and runs named on the command line (a sweep id, else a run id), on one quality axis,
    optionally of one device (`device` matches a device name exactly, or as a case-insensitive part of it)."""
    sweeps = set(sweep_ids(store))
    runs = [n for n in names if n not in sweeps]
    parts = [sweep_points(store, n, quality_text, latency) for n in names if n in sweeps]
    if runs:
        parts.append(run_points(store, runs, quality_text, latency))
    if not parts:
        raise InputError("no sweep or run given", "name a sweep id (see <store>/sweeps/) or run ids")
    quality = parts[0].quality
    for p in parts[1:]:
        if (p.quality.task, p.quality.metric) != (quality.task, quality.metric):
            raise InputError(f"the sources give {quality.label} and {p.quality.label}",
                             "name the metric with its task: --quality TASK.METRIC")
    out = Gathered(quality, [p for g in parts for p in g.points], [n for g in parts for n in g.notes],
                   [s for g in parts for s in g.sources])
    if device is not None:
        out.points = filter_device(out.points, device)
    if not out.points:
        raise InputError(f"nothing to plot for {quality.label}: no variant has both a result and a timing record",
                         "; ".join(out.notes[:3]) or "time the variants (evalsuite sweep ... --backend ...)")
    return out


def filter_device(points: Sequence[Point], device: str) -> list[Point]:
    """The points of one device: its exact name, else every device whose name contains `device` (any case)."""
    exact = [p for p in points if p.device == device]
    found = exact or [p for p in points if device.lower() in p.device.lower()]
    if not found:
        have = sorted({p.device for p in points})
        raise InputError(f"no point was timed on a device named {device!r}", f"devices: {', '.join(have) or 'none'}")
    return found


# ------------------------------------------------------------------------------------------------ published pairs
def load_pairs(path: Path | None = None) -> list[dict[str, Any]]:
    """The papers' (quality, latency) pairs of published.yaml: each `pairs` entry names a quality and a latency
    entry of `results` (same model and citation) as TASK/METRIC; the numbers are those entries' values."""
    import yaml

    from evalsuite.leaderboard.data import PUBLISHED_FILE, load_published

    path = path or PUBLISHED_FILE
    results = load_published(path)
    data = yaml.safe_load(path.read_text())
    out = []
    for i, pair in enumerate((data.get("pairs") if isinstance(data, dict) else None) or []):
        where = f"{path}: pair {i}"
        if not isinstance(pair, dict) or any(k not in pair for k in ("model", "citation", "quality", "latency",
                                                                        "device", "source")):
            raise InputError(f"{where} lacks fields", "a pair needs model, citation, quality, latency, device, source")

        def entry(ref: str, where: str = where, pair: dict = pair) -> dict:
            task, _, metric = str(ref).rpartition("/")
            hits = [e for e in results if (e["model"], e["citation"], e["task"], e["metric"]) ==
                    (pair["model"], pair["citation"], task, metric)]
            if len(hits) != 1:
                raise InputError(f"{where} names {ref} of {pair['model']} ({pair['citation']}), which "
                                 f"{'is not' if not hits else 'is more than once'} in results", "fix the pair")
            return hits[0]

        q, lat = entry(pair["quality"]), entry(pair["latency"])
        scale = {"s": 1000.0, "ms": 1.0}.get(str(lat.get("unit", "ms")))
        if scale is None:
            raise InputError(f"{where}: latency unit {lat.get('unit')!r} is not s or ms", "pair a latency entry")
        out.append({**pair, "task": q["task"], "metric": q["metric"], "value": float(q["value"]),
                    "direction": q["direction"], "latency_ms": float(lat["value"]) * scale,
                    "setting": "; ".join(filter(None, [str(q.get("setting", "")), str(lat.get("setting", ""))])),
                    "bound": lat.get("bound") or q.get("bound") or ""})
    return out


def published_points(quality: Quality, devices: Iterable[str] = (), path: Path | None = None,
                     notes: list[str] | None = None) -> list[Point]:
    """The published pairs on this quality axis as reported points. A pair sits on a measured device's panel when
    that device is the one the paper timed (its name or model identifier), else on a panel of its own. A pair whose
    declared direction differs from the metric's is left out with a note."""
    measured = {d.lower(): d for d in devices}
    points = []
    for pair in load_pairs(path):
        if pair["metric"] != quality.metric or (quality.task and pair["task"] != quality.task):
            continue
        if pair["direction"] != quality.direction:
            if notes is not None:
                notes.append(f"published {pair['model']}: {pair['task']}/{pair['metric']} is declared "
                             f"{pair['direction']} is better there, {quality.direction} here; left out")
            continue
        names = [str(pair["device"]), str(pair.get("device_model", ""))]
        device = next((measured[n.lower()] for n in names if n.lower() in measured), names[0])
        knobs = {"citation": pair["citation"], "setting": pair["setting"], "source": pair["source"]}
        if pair["bound"]:
            knobs["bound"] = pair["bound"]
        points.append(Point(f"reported:{pair['model']}|{pair['citation']}|{pair['task']}/{pair['metric']}",
                            f"{pair['model']} [{pair['citation']}]",
                            pair["value"], pair["latency_ms"], device, knobs=knobs, source="reported"))
    return points
