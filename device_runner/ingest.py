"""Timing records from result files produced elsewhere (`evalsuite device ingest`): the iPhone app's result
(`evalsuite.device.protocol`), or the JSON list ExecuTorch's benchmark apps write (`parse_executorch`), read,
checked, and stored all or nothing (`convert`, `ingest`).

ExecuTorch benchmark JSON (what ExecuTorch's Android/iOS benchmark apps upload; `parse_executorch`): a list of
entries `{"benchmarkModel": {"name", "backend", "quantization"}, "metric", "actualValue", "deviceInfo": {"arch",
"device", "os", "availMem", "totalMem"}}`. Entries are grouped per model, backend, quantization and device into one
record: model = name, variant = quantization (`fp32` when empty), compute_unit = the ExecuTorch backend (e.g.
xnnpack, coreml, mps), device_model = deviceInfo.arch (the phone model), else deviceInfo.device, os_version =
deviceInfo.os as given (e.g. `iOS 17.2`). ExecuTorch reports aggregates, not every iteration: latencies_ms holds the
`trimmean_inference_latency(ms)` value(s) (else `avg_inference_latency(ms)`), one per run in the file, so median_ms
and p90_ms are over runs; the record's notes say so. load_ms = mean `model_load_time(ms)`. Groups whose
`load_status` is non-zero (the model failed to load) are left out; a file with no usable group is an error.

`convert` tells the two formats apart (a JSON list is ExecuTorch's; an object with a schema is the app's) and checks
that every record survives the store's strict JSON round trip; `ingest` writes them (`evalsuite.device.records`), and
a failed write (e.g. a file ingested twice) removes the records written before it.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalsuite.device import records
from evalsuite.device.protocol import PROTOCOL_DOC, REQUEST_SCHEMA, RESULT_SCHEMA, load_json, make_record, parse_result
from evalsuite.device.records import TimingRecord
from evalsuite.errors import InputError

ET_LATENCY_METRICS = ("trimmean_inference_latency(ms)", "avg_inference_latency(ms)")
ET_LOAD_METRIC = "model_load_time(ms)"
ET_STATUS_METRIC = "load_status"


# --------------------------------------------------------------------------------------------------- ExecuTorch

def parse_executorch(data: Any, *, model: str | None = None, variant: str | None = None, model_hash: str = "",
                     release: str | None = None, git_sha: str = "", source: str = "ExecuTorch benchmark results",
                     timestamp: str | None = None) -> list[TimingRecord]:
    """Records from an ExecuTorch benchmark JSON (a list of metric entries), one per model/backend/quantization/
    device group. Aggregates only: see the module docstring for what latencies_ms then holds."""
    data = load_json(data, source)
    if not isinstance(data, list):
        raise InputError(f"{source} is not a list of ExecuTorch benchmark entries",
                         "ExecuTorch benchmark files are JSON lists of {benchmarkModel, metric, actualValue, "
                         "deviceInfo}")
    if not data:
        raise InputError(f"{source} is an empty list", "pass a file with benchmark entries")
    groups: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for i, entry in enumerate(data):
        where = f"{source}: entry #{i}"
        if not isinstance(entry, dict):
            raise InputError(f"{where} is not an object", "each entry is {benchmarkModel, metric, actualValue, "
                                                          "deviceInfo}")
        missing = [k for k in ("benchmarkModel", "metric", "actualValue", "deviceInfo") if k not in entry]
        bm, dev = entry.get("benchmarkModel"), entry.get("deviceInfo")
        if isinstance(bm, dict):
            missing += [f"benchmarkModel.{k}" for k in ("name", "backend") if k not in bm]
        elif bm is not None:
            missing.append("benchmarkModel (not an object)")
        if isinstance(dev, dict):
            if not (dev.get("arch") or dev.get("device")):
                missing.append("deviceInfo.arch or deviceInfo.device")
            if "os" not in dev:
                missing.append("deviceInfo.os")
        elif dev is not None:
            missing.append("deviceInfo (not an object)")
        if missing:
            raise InputError(f"{where} lacks the field(s) {', '.join(missing)}",
                             "ExecuTorch entries carry benchmarkModel{name, backend, quantization}, metric, "
                             "actualValue, deviceInfo{arch, device, os}")
        if not isinstance(bm, dict) or not isinstance(dev, dict):  # present, but null
            raise InputError(f"{where}: benchmarkModel and deviceInfo must be objects", "fix or remove the entry")
        value = entry["actualValue"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"{where}: actualValue is {value!r}, not a finite number", "fix or remove the entry")
        key = (str(bm["name"]), str(bm["backend"]), str(bm.get("quantization") or ""),
               str(dev.get("arch") or dev.get("device")), str(dev["os"]))
        groups[key][str(entry["metric"])].append(float(value))

    out, skipped = [], []
    for (name, backend, quant, device, os_name), metrics in groups.items():
        label = f"{name} ({backend}{', ' + quant if quant else ''}) on {device}"
        if any(v != 0 for v in metrics.get(ET_STATUS_METRIC, [])):
            skipped.append(f"{label}: load_status {metrics[ET_STATUS_METRIC]}")
            continue
        metric = next((m for m in ET_LATENCY_METRICS if metrics.get(m)), None)
        if metric is None:
            skipped.append(f"{label}: no latency metric")
            continue
        loads = [v for v in metrics.get(ET_LOAD_METRIC, []) if v > 0]
        kwargs: dict[str, Any] = dict(
            model=model or name, variant=variant or quant or "fp32", backend="executorch", device_model=device,
            latencies_ms=metrics[metric], release=release or "unreleased", model_hash=model_hash,
            compute_unit=backend, os_version=os_name, load_ms=sum(loads) / len(loads) if loads else None,
            git_sha=git_sha,
            notes=f"ExecuTorch aggregates only: latencies_ms holds the reported {metric} value(s), one per run, "
                  f"not per-iteration samples")
        if timestamp:
            kwargs["timestamp"] = timestamp
        out.append(make_record(kwargs, f"{source}, {label}"))
    if not out:
        raise InputError(f"{source} has no usable timing: {'; '.join(skipped)}",
                         f"a group needs one of {', '.join(ET_LATENCY_METRICS)} and load_status 0")
    return out


# ------------------------------------------------------------------------------------------------------- ingest

def _validate(record: TimingRecord, source: str) -> None:
    """Everything `records.write` and `records.load_all` will need: strict JSON and a clean round trip."""
    try:
        data = asdict(record)
        json.dumps(data, allow_nan=False)
        TimingRecord.from_dict(json.loads(json.dumps(data)), source)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source}: a record for {record.model}/{record.compute_unit} is not storable ({exc})",
                         f"see {PROTOCOL_DOC}") from exc


def convert(path: str | Path, release: str | None = None, variant_id: str | None = None,
            builds: str | Path | None = None) -> list[TimingRecord]:
    """Read and convert a result file (our app's, or ExecuTorch's) into validated records; stores nothing.
    `variant_id` stamps every record with the variant id of the quality results it belongs to (the app echoes one
    given in the request's meta; ExecuTorch's JSON has none); a file naming another variant id is refused.
    `builds`: the folder of `device build --runtime executorch`; ExecuTorch records then take the model name and
    `.pte` hash of the build they timed (`executorch_build.attach_builds`)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file {path}", "pass the app's result JSON or an ExecuTorch benchmark JSON")
    data = load_json(path.read_bytes(), str(path))
    if isinstance(data, list):
        stamp = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
        recs = parse_executorch(data, release=release, source=str(path), timestamp=stamp)
        if builds is not None:
            from evalsuite.device.executorch_build import attach_builds

            recs = attach_builds(recs, builds)
    elif isinstance(data, dict) and data.get("schema") == REQUEST_SCHEMA:
        raise InputError(f"{path} is a benchmark request, not a result", "ingest the app's <id>.result.json")
    elif isinstance(data, dict) and ("schema" in data or "compute_units" in data):
        recs = parse_result(data, release=release, source=str(path))
    else:
        raise InputError(f"{path} is neither an {RESULT_SCHEMA} result nor an ExecuTorch benchmark list",
                         f"see {PROTOCOL_DOC} for both formats")
    for rec in recs:
        if variant_id is not None:
            if rec.variant_id and rec.variant_id != variant_id:
                raise InputError(f"{path} measured variant {rec.variant_id}, not {variant_id}",
                                 "ingest it without --variant-id, or with the id it names")
            rec.variant_id = variant_id
        _validate(rec, str(path))
    return recs


def ingest(path: str | Path, store: str | Path, release: str | None = None,
           variant_id: str | None = None, builds: str | Path | None = None) -> list[Path]:
    """Convert `path` and store every record, all or nothing: everything is validated before anything is written,
    and records written before a failing write (e.g. a file ingested twice) are removed again."""
    recs = convert(path, release, variant_id, builds)
    written: list[Path] = []
    try:
        for rec in recs:
            written.append(records.write(store, rec))
    except FileExistsError as exc:
        _remove(written)
        raise InputError(f"{path} was already ingested ({exc.filename or exc} exists); nothing stored",
                         "each result is stored once") from exc
    except BaseException:
        _remove(written)
        raise
    return written


def _remove(paths: list[Path]) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except OSError:
            pass


__all__ = ["parse_executorch", "convert", "ingest", "ET_LATENCY_METRICS", "ET_LOAD_METRIC", "ET_STATUS_METRIC"]
