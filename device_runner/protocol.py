"""The versioned protocol between the host and the iPhone benchmark app (`device_runner/ios/`): the request the host
writes (`make_request`), the package zip it pushes (`zip_package`), and the result the app writes, checked and turned
into timing records (`parse_result`; schema `evalsuite.timing/1`, `evalsuite.device.records`).
`device_runner/ios/PROTOCOL.md` documents the same schemas for the Swift side. Reading result files produced elsewhere
(ExecuTorch's benchmark JSON too) and storing their records (`evalsuite device ingest`) is `evalsuite.device.ingest`.
Streaming runs (`make_stream_request`, `parse_stream_result`: schemas `evalsuite.ios-stream-request/1` and
`evalsuite.ios-stream-result/1`, into `evalsuite.stream-timing/1` records) are at the end of this module.

Transport (see `evalsuite.device.backends.iphone`): the host pushes files into the app's `Documents/` folder over
house_arrest (`pymobiledevice3 apps push`), launches the app with `--request /Documents/<request_id>.request.json`,
and polls (`apps pull`) for `/Documents/<result_file>`. Remote paths are relative to the app container, which is what
house_arrest exposes; the app resolves them against `NSHomeDirectory()`.

Request, schema `evalsuite.ios-request/1` (host -> app):

| field | type | meaning |
|---|---|---|
| schema | str | `evalsuite.ios-request/1` |
| request_id | str | unique per run (UTC time + random suffix); names every file of the run |
| package | str | file in Documents: `<request_id>.mlpackage.zip` (see below) or a `X.mlpackage` folder already there |
| result_file | str | file in Documents the app writes its result to: `<request_id>.result.json` |
| log_file | str | file in Documents the app appends progress lines to: `<request_id>.log` |
| iterations | int | steady-state predictions timed, >= 1 |
| warmup | int | untimed predictions before them, >= 0 |
| compute_units | list[str] | ALL, CPU_AND_NE, CPU_AND_GPU, CPU_ONLY (no repeats), measured in this order |
| inputs | list[{name, shape, dtype}] | random inputs to build; dtype float32, float16, float64 or int32 |
| meta | {model, variant, model_hash, release, git_sha, variant_id} | opaque to the app; echoed in the result |
| duration_s | float, optional | a sustained run (`device time --duration`): time predictions for this many seconds \
per compute unit (at least `iterations` of them); absent or 0: exactly `iterations` |
| window_s | float, optional | sustained runs: the length of a window (latency and thermal state per window) |

The package zip is *stored* (uncompressed) and holds one `X.mlpackage/` folder. Inputs the request leaves out are
built from the compiled model's own description (multi-arrays and images). `meta` is echoed so that a result file
alone can be ingested.

Result, schema `evalsuite.ios-result/1` (app -> host):

| field | type | meaning |
|---|---|---|
| schema | str | `evalsuite.ios-result/1` |
| request_id | str | the request's |
| status | str | `ok` or `error` |
| error | str or null | the app's message when status is `error` |
| crash | str, optional | only when the app's signal handler wrote the file (e.g. `SIGSEGV`): the app crashed |
| device_model | str | `utsname.machine`, e.g. `iPhone17,2` |
| os_version | str | `UIDevice.current.systemVersion`, e.g. `18.1` |
| thermal_state | str | `ProcessInfo.thermalState` at start: nominal, fair, serious, critical, unknown |
| app_version | str, optional | `CFBundleShortVersionString (CFBundleVersion)` |
| timestamp | str, optional | ISO 8601 UTC time the run finished |
| iterations, warmup | int | as run |
| meta | object | the request's, echoed |
| compute_units | list[object] | status ok: one per compute unit, fields below |

Per compute unit: compute_unit; compile_ms, first_load_ms, warm_load_ms, first_predict_ms (numbers, or null);
latencies_ms (every steady-state prediction, ms); thermal_state (optional: the worst seen while measuring the unit);
peak_memory_mb (optional: the largest `phys_footprint` of `task_info(TASK_VM_INFO)` sampled after the first
prediction and after every timed one, in MiB: what jetsam judges the app by); sustained runs only: duration_s (seconds
of timed predictions) and windows, a list of {t_s, end, thermal_state}: t_s seconds from the first timed prediction
to the window's last one, end the number of timed predictions so far (the window holds latencies_ms[previous end:
end]), thermal_state the worst seen in the window. Results without these fields still read (older apps).

compile_ms is `MLModel.compileModel(at:)` on the phone (the app compiles a fresh copy per compute unit, so every
first load is a first load); first_load_ms is the first `MLModel.load` of that copy (device specialisation; the
record's `load_ms`); warm_load_ms a second load (kept in the record's `notes`); first_predict_ms the first prediction.
All times use `mach_absolute_time` converted with `mach_timebase_info`.
"""

from __future__ import annotations

import json
import math
import uuid
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from evalsuite.device.backends import DeviceError
from evalsuite.device.records import TimingRecord
from evalsuite.errors import InputError
from evalsuite.results import MAX_JSON_DEPTH, too_deep

REQUEST_SCHEMA = "evalsuite.ios-request/1"
RESULT_SCHEMA = "evalsuite.ios-result/1"
COMPUTE_UNITS = ("ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY")
DTYPES = ("float32", "float16", "float64", "int32")
THERMAL_STATES = ("nominal", "fair", "serious", "critical", "unknown")
UNIT_FIELDS = ("compute_unit", "compile_ms", "first_load_ms", "warm_load_ms", "first_predict_ms", "latencies_ms")
META_FIELDS = ("model", "variant", "model_hash", "release", "git_sha", "variant_id")
PROTOCOL_DOC = "device_runner/ios/PROTOCOL.md"


# ----------------------------------------------------------------------------------------------------- requests

def new_request_id() -> str:
    return f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


def normalise_compute_units(value: str | Iterable[str]) -> list[str]:
    """`"ALL"`, `"cpu_and_ne,cpu_only"`, `"each"` (all four) or a list of names -> validated upper-case names."""
    if isinstance(value, str):
        if value.strip().lower() in ("each", "every", "all-units"):
            return list(COMPUTE_UNITS)
        value = [v for v in value.split(",") if v.strip()]
    units = [str(v).strip().upper() for v in value]
    unknown = [u for u in units if u not in COMPUTE_UNITS]
    if unknown or not units:
        raise InputError(f"unknown compute unit(s) {', '.join(unknown) or '(none given)'}",
                         f"use one or more of {', '.join(COMPUTE_UNITS)} (comma-separated), or 'each'")
    if len(set(units)) != len(units):
        raise InputError(f"compute unit repeated in {', '.join(units)}", "name each compute unit once")
    return units


def _check_input_specs(inputs: Sequence[dict]) -> list[dict]:
    out = []
    for i, spec in enumerate(inputs):
        if not isinstance(spec, dict):
            raise InputError(f"input spec #{i} is not an object: {spec!r}", "give {name, shape, dtype} per input")
        missing = [k for k in ("name", "shape", "dtype") if k not in spec]
        if missing:
            raise InputError(f"input spec #{i} lacks {', '.join(missing)}", "give {name, shape, dtype} per input")
        shape = spec["shape"]
        if (not isinstance(shape, (list, tuple)) or not shape
                or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
            raise InputError(f"input {spec['name']!r} has an unusable shape {shape!r}",
                             "give a non-empty list of positive integers")
        dtype = str(spec["dtype"]).lower()
        if dtype not in DTYPES:
            raise InputError(f"input {spec['name']!r} has dtype {spec['dtype']!r}", f"use one of {', '.join(DTYPES)}")
        out.append({"name": str(spec["name"]), "shape": [int(d) for d in shape], "dtype": dtype})
    if len({s["name"] for s in out}) != len(out):
        raise InputError("input specs name an input twice", "give each input once")
    return out


def make_request(package: str, *, iterations: int, warmup: int, compute_units: str | Iterable[str],
                 inputs: Sequence[dict] = (), request_id: str | None = None, meta: dict | None = None,
                 duration_s: float | None = None, window_s: float | None = None) -> dict:
    """A request document (schema `evalsuite.ios-request/1`); `package` is the file name in the app's Documents.
    `duration_s` (and `window_s`) ask for a sustained run; without them the request is as before."""
    if not package or "/" in package or package in (".", ".."):
        raise InputError(f"package name {package!r} is not a plain file name",
                         "pass the name of the file pushed into the app's Documents folder")
    if not isinstance(iterations, int) or iterations < 1:
        raise InputError(f"iterations must be a positive integer, not {iterations!r}", "time at least 1 iteration")
    if not isinstance(warmup, int) or warmup < 0:
        raise InputError(f"warmup must be a non-negative integer, not {warmup!r}", "use 0 or more warmup runs")
    request_id = request_id or new_request_id()
    if "/" in request_id:
        raise InputError(f"request id {request_id!r} contains '/'", "use letters, digits, '-' and '_'")
    meta = {k: ("" if v is None else str(v)) for k, v in (meta or {}).items()}
    sustained: dict[str, float] = {}
    if duration_s:
        window = window_s or (60.0 if duration_s >= 300 else duration_s / 10)
        if not (math.isfinite(duration_s) and duration_s > 0 and 0 < window <= duration_s):
            raise InputError(f"sustained run of {duration_s!r} s in windows of {window!r} s",
                             "a positive duration and a window no longer than it")
        sustained = {"duration_s": float(duration_s), "window_s": float(window)}
    return {
        **sustained,
        "schema": REQUEST_SCHEMA,
        "request_id": request_id,
        "package": package,
        "result_file": f"{request_id}.result.json",
        "log_file": f"{request_id}.log",
        "iterations": iterations,
        "warmup": warmup,
        "compute_units": normalise_compute_units(compute_units),
        "inputs": _check_input_specs(inputs),
        "meta": meta,
    }


def zip_package(package: Path, dest: Path) -> Path:
    """`dest`: a stored (uncompressed) zip whose entries are `<package name>/<relative path>`, the one form the app's
    reader accepts (local headers carry the sizes; zip64 extras for files over 4 GiB)."""
    package = Path(package)
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for path in sorted(p for p in package.rglob("*") if p.is_file()):
            zf.write(path, f"{package.name}/{path.relative_to(package).as_posix()}")
    return dest


# ------------------------------------------------------------------------------------------------------ results

def load_json(data: Any, source: str) -> Any:
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{source} is not UTF-8 text ({exc})", "pass the JSON file the app wrote") from exc
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source} is not valid JSON ({exc})",
                             "pass the JSON file the app wrote (a crash can leave a truncated file; rerun)") from exc
        except RecursionError:
            raise InputError(f"{source} is nested too deeply to be a benchmark result",
                             "pass the JSON file the app wrote") from None
    if too_deep(data):
        raise InputError(f"{source} is nested more than {MAX_JSON_DEPTH} levels deep; no benchmark result is",
                         "pass the JSON file the app wrote")
    return data


def _number(value: Any, where: str, nullable: bool = True) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InputError(f"{where} is {value!r}, not a finite non-negative number", f"see {PROTOCOL_DOC}")
    return float(value)


def _thermal(value: Any, where: str) -> str:
    state = str(value).lower()
    if state not in THERMAL_STATES:
        raise InputError(f"{where} is {value!r}", f"use one of {', '.join(THERMAL_STATES)}")
    return state


def _timestamp(value: Any, where: str) -> str | None:
    if value in (None, ""):
        return None
    try:
        stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"{where} {value!r} is not an ISO 8601 time", "write e.g. 2025-01-31T12:00:00Z") from exc
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.astimezone(timezone.utc).isoformat(timespec="seconds")


def check_schema(data: Any, source: str) -> dict:
    """The result document as a dict, or InputError naming the schema it has and the one this code reads."""
    if not isinstance(data, dict):
        raise InputError(f"{source} is a JSON {type(data).__name__}, not an {RESULT_SCHEMA} object",
                         f"see {PROTOCOL_DOC}")
    schema = data.get("schema")
    if schema is None:
        raise InputError(f"{source} lacks the field schema", f"an app result carries schema {RESULT_SCHEMA!r}")
    if schema != RESULT_SCHEMA:
        if isinstance(schema, str) and schema.startswith("evalsuite.ios-result/"):
            raise InputError(f"{source} uses result schema version {schema!r}; this evalsuite supports only "
                             f"{RESULT_SCHEMA!r}",
                             "use the evalsuite release that matches the benchmark app, or rebuild the app from "
                             "device_runner/ios/ of this checkout")
        raise InputError(f"{source} has schema {schema!r}, not an app result ({RESULT_SCHEMA!r})",
                         f"see {PROTOCOL_DOC}")
    return data


def parse_result(data: Any, *, model: str | None = None, variant: str | None = None, model_hash: str | None = None,
                 release: str | None = None, git_sha: str | None = None, source: str = "iPhone result",
                 request_id: str | None = None, variant_id: str | None = None) -> list[TimingRecord]:
    """One TimingRecord per compute unit of an `evalsuite.ios-result/1` document (a dict, or its JSON text/bytes).

    Keyword values win over the result's echoed `meta`. Unknown schema, a request id other than `request_id`,
    missing or ill-typed fields -> InputError; status `error` or a crash marker -> DeviceError with the app's message.
    """
    data = check_schema(load_json(data, source), source)
    if request_id is not None and data.get("request_id") != request_id:
        raise InputError(f"{source} answers request {data.get('request_id')!r}, not {request_id!r}",
                         "a stale result from another run; rerun")
    if data.get("crash"):
        raise DeviceError(f"the benchmark app crashed on the iPhone ({data['crash']})"
                          + (f": {data['error']}" if data.get("error") else ""),
                          "see the log below; a crash in prediction often means an input the model cannot take or "
                          "too little memory: try a smaller variant or another compute unit")
    status = data.get("status")
    if status == "error":
        raise DeviceError(f"the benchmark app reported an error: {data.get('error') or '(no message)'}",
                          "fix what the app reports (the package, the inputs, the compute unit) and rerun")
    if status != "ok":
        raise InputError(f"{source} has status {status!r}", "status is 'ok' or 'error'")

    missing = [k for k in ("request_id", "device_model", "os_version", "thermal_state", "compute_units")
               if k not in data]
    units = data.get("compute_units")
    if isinstance(units, list):
        for i, unit in enumerate(units):
            if not isinstance(unit, dict):
                missing.append(f"compute_units[{i}] (not an object)")
                continue
            missing += [f"compute_units[{i}].{k}" for k in UNIT_FIELDS if k not in unit]
    elif "compute_units" in data:
        raise InputError(f"{source}: compute_units is not a list", f"see {PROTOCOL_DOC}")
    if missing:
        raise InputError(f"{source} lacks the field(s) {', '.join(missing)}",
                         f"an {RESULT_SCHEMA} result with status ok needs them all (see {PROTOCOL_DOC})")
    if not units:
        raise InputError(f"{source} has no compute unit results", "the request named at least one compute unit")

    meta = data.get("meta") or {}
    if not isinstance(meta, dict):
        raise InputError(f"{source}: meta is not an object", f"see {PROTOCOL_DOC}")
    model = model or meta.get("model")
    variant = variant or meta.get("variant")
    lacking = [name for name, value in (("model", model), ("variant", variant)) if not value]
    if lacking:
        raise InputError(f"{source} does not say which {' and '.join(lacking)} it measured (no meta.{lacking[0]})",
                         f"pass {', '.join(lacking)} explicitly")
    model_hash = model_hash if model_hash is not None else str(meta.get("model_hash") or "")
    release = release or meta.get("release") or "unreleased"
    git_sha = git_sha if git_sha is not None else str(meta.get("git_sha") or "")
    variant_id = variant_id or (str(meta["variant_id"]) if meta.get("variant_id") else None)
    warmup = data.get("warmup", 0)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise InputError(f"{source}: warmup is {warmup!r}", "a non-negative integer")
    iterations = data.get("iterations")
    top_thermal = _thermal(data["thermal_state"], f"{source}: thermal_state")
    stamp = _timestamp(data.get("timestamp"), f"{source}: timestamp")
    device_model, os_version = str(data["device_model"]), str(data["os_version"])
    if not device_model:
        raise InputError(f"{source}: device_model is empty", "the app records utsname.machine, e.g. iPhone17,2")

    out, seen = [], set()
    for i, unit in enumerate(units):
        where = f"{source}: compute_units[{i}]"
        name = str(unit["compute_unit"]).upper()
        if name not in COMPUTE_UNITS:
            raise InputError(f"{where}.compute_unit is {unit['compute_unit']!r}", f"one of {', '.join(COMPUTE_UNITS)}")
        if name in seen:
            raise InputError(f"{where} repeats compute unit {name}", "one result per compute unit")
        seen.add(name)
        lat = unit["latencies_ms"]
        if not isinstance(lat, list):
            raise InputError(f"{where}.latencies_ms is not a list", "every steady-state iteration in ms")
        sustained = unit.get("duration_s") is not None or unit.get("windows") is not None
        if isinstance(iterations, int) and (len(lat) < iterations if sustained else iterations != len(lat)):
            raise InputError(f"{where} has {len(lat)} latencies but the run asked for {iterations} iterations",
                             "the app records every steady-state iteration; rerun")
        timings = {k: _number(unit[k], f"{where}.{k}") for k in UNIT_FIELDS[1:5]}
        thermal = _thermal(unit["thermal_state"], f"{where}.thermal_state") if "thermal_state" in unit \
            else top_thermal
        notes = [f"warm load {timings['warm_load_ms']:.1f} ms" if timings["warm_load_ms"] is not None else "",
                 f"app {data['app_version']}" if data.get("app_version") else "",
                 "peak memory: phys_footprint" if unit.get("peak_memory_mb") is not None else ""]
        kwargs: dict[str, Any] = dict(
            model=str(model), variant=str(variant), backend="iphone", device_model=device_model, latencies_ms=lat,
            release=str(release), model_hash=model_hash, compute_unit=name, os_version=os_version,
            thermal_state=thermal, warmup=warmup, iterations=len(lat), load_ms=timings["first_load_ms"],
            compile_ms=timings["compile_ms"], first_predict_ms=timings["first_predict_ms"], git_sha=git_sha,
            notes="; ".join(n for n in notes if n), variant_id=variant_id, warm_load_ms=timings["warm_load_ms"],
            peak_memory_mb=_number(unit.get("peak_memory_mb"), f"{where}.peak_memory_mb"),
            duration_s=_number(unit.get("duration_s"), f"{where}.duration_s"),
            windows=_windows(unit.get("windows"), f"{where}.windows"))
        if stamp:
            kwargs["timestamp"] = stamp
        out.append(make_record(kwargs, where))
    return out


def _windows(value: Any, where: str) -> list[dict] | None:
    """The app's sustained-run windows {t_s, end, thermal_state} as record windows {t_s, start, end, thermal_state}
    (the record checks that they tile latencies_ms)."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(w, dict) and "t_s" in w and "end" in w for w in value):
        raise InputError(f"{where} is not a list of {{t_s, end, thermal_state}}", f"see {PROTOCOL_DOC}")
    out, start = [], 0
    for i, w in enumerate(value):
        end = w["end"]
        if isinstance(end, bool) or not isinstance(end, int):
            raise InputError(f"{where}[{i}].end is {end!r}, not an integer", f"see {PROTOCOL_DOC}")
        out.append({"t_s": _number(w["t_s"], f"{where}[{i}].t_s", nullable=False), "start": start, "end": end,
                    "thermal_state": _thermal(w.get("thermal_state", "unknown"), f"{where}[{i}].thermal_state")})
        start = end
    return out


def make_record(kwargs: dict, where: str) -> TimingRecord:
    """A validated TimingRecord; a validation error names where the values came from."""
    try:
        return TimingRecord(**kwargs)
    except InputError as exc:
        raise InputError(f"{where}: {exc.message}", exc.fix) from exc
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {exc}", f"see {PROTOCOL_DOC}") from exc


__all__ = ["REQUEST_SCHEMA", "RESULT_SCHEMA", "COMPUTE_UNITS", "DTYPES", "make_request", "zip_package", "parse_result",
           "normalise_compute_units", "new_request_id"]

_MOVED_TO_INGEST = ("ingest", "convert", "parse_executorch")


def __getattr__(name: str) -> Any:
    """`protocol.ingest`, `protocol.convert` and `protocol.parse_executorch` from before they moved to
    `evalsuite.device.ingest` (imported on use: that module imports this one)."""
    if name in _MOVED_TO_INGEST:
        from evalsuite.device import ingest as ingest_module

        return getattr(ingest_module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------------------------------------- streaming
# A streaming run (`evalsuite device time-stream MODEL --backend iphone`, evalsuite.device.backends.iphone_stream):
# request `evalsuite.ios-stream-request/1`, launched with `--stream-request PATH`, and result
# `evalsuite.ios-stream-result/1` (fields in device_runner/ios/PROTOCOL.md, "Streaming"), turned into one
# `evalsuite.stream-timing/1` record (evalsuite.device.stream_records) with the definitions of
# evalsuite.device.streaming.stream_stats; the app's own summary must agree with them.

STREAM_REQUEST_SCHEMA = "evalsuite.ios-stream-request/1"
STREAM_RESULT_SCHEMA = "evalsuite.ios-stream-result/1"
STREAM_PER = ("chunk", "stream")
STREAM_SUMMARY = ("ttff_ms", "sustained_fps", "p50_ms", "p90_ms", "p99_ms", "jitter_ms", "deadline_misses",
                  "deadline_miss_rate", "stall_ms")


def make_stream_request(stages: Sequence[dict], *, chunk_frames: int, target_fps: float, duration_s: float,
                        max_chunks: int = 0, warmup_chunks: int = 2, compute_unit: str = "ALL",
                        request_id: str | None = None, meta: dict | None = None) -> dict:
    """A streaming request: per chunk, each `per: chunk` stage's package predicted `calls` times in order (a chunk
    denoiser `steps` times, then a decoder once); `per: stream` stages (a text encoder) once before the first chunk.
    Each stage: {name, package (file name in Documents), calls, per, inputs}."""
    if not stages:
        raise InputError("a streaming request needs at least one stage", "give a denoiser and/or decoder package")
    checked = []
    for i, stage in enumerate(stages):
        name, package, calls = stage.get("name"), stage.get("package"), stage.get("calls", 1)
        per = stage.get("per", "chunk")
        if not name or not package or "/" in str(package) or str(package) in (".", ".."):
            raise InputError(f"stream stage #{i} needs a name and a plain package file name, not {stage!r:.80}",
                             "e.g. {'name': 'denoiser', 'package': '<id>.denoiser.mlpackage.zip', 'calls': 4}")
        if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1 or per not in STREAM_PER:
            raise InputError(f"stream stage {name!r}: calls {calls!r}, per {per!r}",
                             f"calls is a positive integer, per one of {', '.join(STREAM_PER)}")
        checked.append({"name": str(name), "package": str(package), "calls": calls, "per": per,
                        "inputs": _check_input_specs(stage.get("inputs") or ())})
    if not any(s["per"] == "chunk" for s in checked):
        raise InputError("no stage runs per chunk", "a stream needs a per-chunk stage (the chunk denoiser/decoder)")
    if isinstance(chunk_frames, bool) or not isinstance(chunk_frames, int) or chunk_frames < 1:
        raise InputError(f"chunk_frames must be a positive integer, not {chunk_frames!r}", "e.g. 4")
    if not (isinstance(target_fps, (int, float)) and math.isfinite(target_fps) and target_fps > 0):
        raise InputError(f"target_fps must be > 0, not {target_fps!r}", "e.g. 10")
    if not (isinstance(duration_s, (int, float)) and duration_s >= 0) or max_chunks < 0 or \
            (duration_s == 0 and max_chunks == 0):
        raise InputError(f"duration {duration_s!r} s and max_chunks {max_chunks!r} do not bound the stream",
                         "give a duration > 0 or a chunk count")
    if not isinstance(warmup_chunks, int) or warmup_chunks < 0:
        raise InputError(f"warmup_chunks must be a non-negative integer, not {warmup_chunks!r}", "e.g. 2")
    request_id = request_id or new_request_id()
    return {"schema": STREAM_REQUEST_SCHEMA, "request_id": request_id, "result_file": f"{request_id}.result.json",
            "log_file": f"{request_id}.log", "compute_unit": normalise_compute_units(compute_unit)[0],
            "chunk_frames": chunk_frames, "target_fps": float(target_fps), "duration_s": float(duration_s),
            "max_chunks": int(max_chunks), "warmup_chunks": warmup_chunks, "stages": checked,
            "meta": {k: ("" if v is None else str(v)) for k, v in (meta or {}).items()}}


def parse_stream_result(data: Any, *, model: str | None = None, variant: str | None = None,
                        model_hash: str | None = None, release: str | None = None, git_sha: str | None = None,
                        source: str = "iPhone stream result", request_id: str | None = None) -> Any:
    """The `evalsuite.stream-timing/1` record (StreamRecord) of an `evalsuite.ios-stream-result/1` document. A crash
    marker (the app's crash file, schema `evalsuite.ios-result/1`) or status error -> DeviceError; another schema,
    missing or ill-typed fields, or an app summary that disagrees with `stream_stats` of its own arrivals ->
    InputError."""
    from evalsuite.device.stream_records import StreamRecord
    from evalsuite.device.streaming import stream_stats

    data = load_json(data, source)
    if isinstance(data, dict) and data.get("crash"):
        raise DeviceError(f"the benchmark app crashed on the iPhone ({data['crash']}) during the stream",
                          "see the log below; a model too big for the phone is killed by iOS (jetsam)")
    if not isinstance(data, dict) or data.get("schema") != STREAM_RESULT_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise InputError(f"{source} has schema {found!r}; this evalsuite reads {STREAM_RESULT_SCHEMA!r}",
                         "rebuild the app from device_runner/ios/ of this checkout (see " + PROTOCOL_DOC + ")")
    if request_id is not None and data.get("request_id") != request_id:
        raise InputError(f"{source} answers request {data.get('request_id')!r}, not {request_id!r}",
                         "a stale result from another run; rerun")
    if data.get("status") == "error":
        raise DeviceError(f"the benchmark app reported an error: {data.get('error') or '(no message)'}",
                          "fix what the app reports (the packages, the inputs, the compute unit) and rerun")
    if data.get("status") != "ok":
        raise InputError(f"{source} has status {data.get('status')!r}", "status is 'ok' or 'error'")
    needed = ("request_id", "device_model", "os_version", "thermal_state", "compute_unit", "chunk_frames",
              "target_fps", "chunk_arrivals_ms", "summary")
    missing = [k for k in needed if k not in data]
    summary = data.get("summary")
    if isinstance(summary, dict):
        missing += [f"summary.{k}" for k in STREAM_SUMMARY if k not in summary]
    if missing:
        raise InputError(f"{source} lacks the field(s) {', '.join(missing)}", f"see {PROTOCOL_DOC}")
    arrivals = data["chunk_arrivals_ms"]
    if not isinstance(arrivals, list) or not isinstance(summary, dict):
        raise InputError(f"{source}: chunk_arrivals_ms must be a list and summary an object", f"see {PROTOCOL_DOC}")
    for i, v in enumerate(arrivals):
        _number(v, f"{source}: chunk_arrivals_ms[{i}]", nullable=False)
    frames, fps = data["chunk_frames"], data["target_fps"]
    try:
        stats = stream_stats(arrivals, frames, fps)
    except InputError as exc:
        raise InputError(f"{source}: {exc.message}", exc.fix) from exc
    for key in STREAM_SUMMARY:
        theirs = _number(summary[key], f"{source}: summary.{key}", nullable=False)
        if not math.isclose(float(theirs or 0), stats[key], rel_tol=1e-6, abs_tol=1e-6):
            raise InputError(f"{source}: the app's {key} is {theirs!r} but its arrivals give {stats[key]!r}",
                             "the app and this evalsuite define the stream measurements differently: rebuild the "
                             "app from device_runner/ios/ of this checkout")
    meta: dict = data["meta"] if isinstance(data.get("meta"), dict) else {}
    model, variant = model or meta.get("model"), variant or meta.get("variant")
    if not model or not variant:
        raise InputError(f"{source} does not say which model and variant it measured", "pass them explicitly")
    stages: list = data["stages"] if isinstance(data.get("stages"), list) else []
    loads = [f"{s.get('name')}: compile {s.get('compile_ms', 0):.1f} ms, load {s.get('load_ms', 0):.1f} ms"
             for s in stages if isinstance(s, dict) and isinstance(s.get("compile_ms", 0), (int, float))
             and isinstance(s.get("load_ms", 0), (int, float))]
    notes = [f"requested {data.get('duration_s')} s" if data.get("duration_s") is not None else "",
             f"app {data['app_version']}" if data.get("app_version") else "", *loads]
    steps = next((s.get("calls") for s in stages if isinstance(s, dict) and s.get("name") == "denoiser"), None)
    kwargs: dict[str, Any] = dict(
        chunk_frames=frames, target_fps=fps, model=str(model), variant=str(variant), backend="iphone",
        device_model=str(data["device_model"]), os_version=str(data["os_version"]),
        compute_unit=str(data["compute_unit"]), thermal_state=_thermal(data["thermal_state"], f"{source}: thermal"),
        warmup_chunks=data.get("warmup_chunks", 0) if isinstance(data.get("warmup_chunks"), int) else 0,
        steps=steps if isinstance(steps, int) and not isinstance(steps, bool) else None,
        model_hash=model_hash if model_hash is not None else str(meta.get("model_hash") or ""),
        release=release or meta.get("release") or "unreleased",
        git_sha=git_sha if git_sha is not None else str(meta.get("git_sha") or ""),
        variant_id=str(meta["variant_id"]) if meta.get("variant_id") else None, notes="; ".join(n for n in notes if n))
    stamp = _timestamp(data.get("timestamp"), f"{source}: timestamp")
    if stamp:
        kwargs["timestamp"] = stamp
    try:
        return StreamRecord.from_arrivals(arrivals, **kwargs)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source}: {exc}", f"see {PROTOCOL_DOC}") from exc
