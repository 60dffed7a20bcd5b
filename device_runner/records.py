"""The on-device timing record: one JSON document per measurement, validated on write, stored under
`<store>/device/`. The leaderboard's on-device section reads these; the device runner (and `device ingest`) writes
them. Schema `evalsuite.timing/1`:

| field | type | meaning |
|---|---|---|
| model, model_hash | str | model name; hash of the package's `Data/` (Core ML) or of the weights |
| variant | str | e.g. fp16, palettize4, int8 |
| backend | str | host-torch, coreml-mac, iphone, executorch |
| compute_unit | str | ALL, CPU_AND_NE, CPU_AND_GPU, CPU_ONLY, cpu, cuda |
| device_model, os_version | str | e.g. iPhone17,2 and 18.1 |
| thermal_state | str | nominal, fair, serious, critical, unknown (the worst seen while measuring) |
| warmup, iterations | int | counts |
| latencies_ms | list[float] | every steady-state iteration |
| median_ms, p90_ms, p99_ms, trimmed_mean_ms | float | derived from latencies_ms (80% trimmed mean); median_ms \
is the p50. Records written before p99_ms existed load with it derived |
| median_ci_ms | [float, float] | derived: 95% percentile-bootstrap CI of the median of latencies_ms (`median_ci`: \
1000 resamples, NumPy `default_rng(0)`, the algorithm of `evalsuite.bootstrap.bootstrap_ci`): the record's \
run-to-run spread; the history flags a change only beyond it |
| throughput, throughput_unit | float, str | images/s, or video frames per second of wall time |
| load_ms, compile_ms, first_predict_ms | float or null | cold start: compile (Core ML on the phone), first load \
(device specialisation), first prediction |
| warm_load_ms | float or null | optional: a second load of the same compiled model (null when not measured) |
| peak_memory_mb | float or null | optional: peak memory of the process while predicting (MiB): the app's \
`phys_footprint` (`task_info`), host-torch's `torch.cuda.max_memory_allocated` on CUDA or peak RSS (VmHWM, reset \
before the run) on CPU; how it was taken is in notes |
| duration_s | float or null | optional: a sustained run (`device time --duration`): seconds of timed predictions |
| windows | list or null | optional, sustained runs: consecutive time windows `{t_s, start, end, median_ms, \
thermal_state}`: t_s seconds from the first timed prediction to the window's end, latencies_ms[start:end] the \
window's predictions, median_ms derived from them, thermal_state the worst seen in the window |
| release, git_sha | str | the release tag and code revision measured |
| timestamp | str | ISO 8601, UTC |
| steps, frames | int or null | end-to-end generation timing: denoising steps, frames per sample (video) |
| components_ms | dict or null | end-to-end generation timing: median ms of text_encoder, denoise_step, decoder |
| notes | str | free text (e.g. "aggregates only" for ExecuTorch imports) |
| variant_id | str or null | optional: the variant id (`evalsuite.knobs.variant_id`: model id, knob values, \
`#w=` weights sha256) of what was timed; `evalsuite sweep` sets it, and quality results join timing records on it \
exactly. Records written before it existed load with null |

Derived fields (median_ms, p90_ms, p99_ms, trimmed_mean_ms, median_ci_ms, each window's median_ms, and throughput
when not given) are computed from latencies_ms in `TimingRecord.__post_init__` only; stored values are recomputed
on load, so a record can never disagree with its own latencies. `metric_value(record, metric)` and
`metric_latencies` give the number a gate compares (`median`: the whole run; `last-window`: a sustained run's last
window, the number after the device has heated up).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from evalsuite.errors import InputError
from evalsuite.fsutil import atomic_write_bytes, check_name
from evalsuite.hashing import sha256_json

SCHEMA = "evalsuite.timing/1"
THERMAL_STATES = ("nominal", "fair", "serious", "critical", "unknown")
CI_BOOT = 1000
CI_SEED = 0
CI_LEVEL = 0.95
METRICS = ("median", "last-window")


@dataclass
class TimingRecord:
    model: str
    variant: str
    backend: str
    device_model: str
    latencies_ms: list[float]
    release: str
    model_hash: str = ""
    compute_unit: str = ""
    os_version: str = ""
    thermal_state: str = "unknown"
    warmup: int = 0
    iterations: int = 0
    median_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    trimmed_mean_ms: float = 0.0
    median_ci_ms: list[float] | None = None
    throughput: float | None = None
    throughput_unit: str = "images/s"
    load_ms: float | None = None
    compile_ms: float | None = None
    first_predict_ms: float | None = None
    warm_load_ms: float | None = None
    peak_memory_mb: float | None = None
    duration_s: float | None = None
    windows: list | None = None
    git_sha: str = ""
    steps: int | None = None
    frames: int | None = None
    components_ms: dict | None = None
    notes: str = ""
    variant_id: str | None = None
    timestamp: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        lat = np.asarray(self.latencies_ms, dtype=np.float64)
        if lat.ndim != 1 or len(lat) == 0 or not np.isfinite(lat).all() or (lat <= 0).any():
            raise InputError(f"timing record for {self.model}/{self.variant} has unusable latencies "
                             f"({len(self.latencies_ms)} values; all must be finite and > 0)",
                             "record every steady-state iteration in milliseconds")
        self.latencies_ms = lat.tolist()
        self.iterations = self.iterations or len(lat)
        self.median_ms = float(np.median(lat))
        self.p90_ms = float(np.percentile(lat, 90))
        self.p99_ms = float(np.percentile(lat, 99))
        self.trimmed_mean_ms = trimmed_mean(lat, 0.1)
        self.median_ci_ms = list(median_ci(lat))
        for name in ("load_ms", "compile_ms", "first_predict_ms", "warm_load_ms", "peak_memory_mb", "duration_s"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value >= 0):
                raise InputError(f"timing record for {self.model}/{self.variant}: {name} is {value!r}",
                                 "a finite number >= 0, or null when not measured")
        if self.windows is not None:
            self.windows = check_windows(self.windows, lat, f"timing record for {self.model}/{self.variant}")
        if self.throughput is None:
            self.throughput = 1000.0 / self.median_ms

    @classmethod
    def from_dict(cls, data: Any, source: str = "record") -> "TimingRecord":
        """A record from its JSON form. Not an object, missing fields, or a field of the wrong type (a list for a
        name, a string or bool for a number) is an InputError naming `source` and the field; nothing is converted."""
        fix = f"see the schema {SCHEMA} in device_runner/records.py"
        if not isinstance(data, dict):
            raise InputError(f"{source} holds a JSON {type(data).__name__}, not a timing record object", fix)
        missing = [k for k in ("model", "variant", "backend", "device_model", "latencies_ms", "release")
                   if k not in data]
        if missing:
            raise InputError(f"{source} lacks the field(s) {', '.join(missing)}",
                             f"a timing record needs model, variant, backend, device_model, latencies_ms, release "
                             f"(schema {SCHEMA})")
        for f in fields(cls):
            value = data.get(f.name)
            if f.name in data and (isinstance(value, bool) or not isinstance(value, _FIELD_KINDS[f.name])):
                raise InputError(f"{source}: field {f.name} is {value!r:.60}, not {f.type}", fix)
        numbers = list(data["latencies_ms"]) + list((data.get("components_ms") or {}).values())
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in numbers):
            raise InputError(f"{source}: latencies_ms and components_ms must hold numbers only", fix)
        return cls(**{k: v for k, v in data.items() if k in _FIELD_KINDS})


_FIELD_KINDS = {f.name: {"str": (str,), "int": (int,), "float": (int, float), "list[float]": (list,),
                         "float | None": (int, float, type(None)), "int | None": (int, type(None)),
                         "dict | None": (dict, type(None)), "list | None": (list, type(None)),
                         "list[float] | None": (list, type(None)),
                         "str | None": (str, type(None))}[str(f.type)] for f in fields(TimingRecord)}


def median_ci(latencies: Any, n_boot: int = CI_BOOT, seed: int = CI_SEED,
              level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile-bootstrap CI of the median: `n_boot` resamples drawn with `default_rng(seed).integers(0, n, n)`
    each, in order (drawn in blocks of rows, which gives the same numbers as `evalsuite.bootstrap.bootstrap_ci(x,
    np.median, n_boot=..., seed=...)`), and `np.percentile` at (1 - level)/2 and 1 - (1 - level)/2."""
    x = np.asarray(latencies, dtype=np.float64)
    n = len(x)
    if n == 0:
        raise ValueError("a CI needs at least one value")
    rng = np.random.default_rng(seed)
    rows = max(1, min(n_boot, 2_000_000 // n))  # bounded memory on long sustained runs
    medians = []
    for start in range(0, n_boot, rows):
        idx = rng.integers(0, n, (min(rows, n_boot - start), n))
        medians.append(np.median(x[idx], axis=1))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(np.concatenate(medians), [tail, 100 - tail])
    return float(low), float(high)


def check_windows(windows: list, latencies: np.ndarray, where: str) -> list[dict]:
    """Validated sustained-run windows (consecutive slices that together hold every latency), each with its
    median_ms (re)derived from latencies[start:end]."""
    out: list[dict] = []
    previous_end, previous_t = 0, 0.0
    for i, w in enumerate(windows):
        fix = "windows are consecutive {t_s, start, end, thermal_state} slices of latencies_ms"
        if not isinstance(w, dict) or any(k not in w for k in ("t_s", "start", "end")):
            raise InputError(f"{where}: windows[{i}] is not an object with t_s, start, end", fix)
        start, end, t_s = w["start"], w["end"], w["t_s"]
        if (any(isinstance(v, bool) or not isinstance(v, int) for v in (start, end))
                or isinstance(t_s, bool) or not isinstance(t_s, (int, float)) or not np.isfinite(t_s)):
            raise InputError(f"{where}: windows[{i}] has ill-typed t_s/start/end", fix)
        if start != previous_end or end <= start or end > len(latencies) or t_s < previous_t:
            raise InputError(f"{where}: windows[{i}] covers latencies [{start}:{end}] at {t_s} s, not the next "
                             f"slice after [{previous_end}] of {len(latencies)}", fix)
        state = str(w.get("thermal_state", "unknown"))
        if state not in THERMAL_STATES:
            raise InputError(f"{where}: windows[{i}].thermal_state is {state!r}", f"one of {', '.join(THERMAL_STATES)}")
        out.append({"t_s": float(t_s), "start": start, "end": end,
                    "median_ms": float(np.median(latencies[start:end])), "thermal_state": state})
        previous_end, previous_t = end, float(t_s)
    if previous_end != len(latencies):
        raise InputError(f"{where}: the windows cover {previous_end} of {len(latencies)} latencies",
                         "windows are consecutive slices of latencies_ms that together hold all of them")
    return out


def make_windows(end_times_s: list[float], window_s: float, thermal: Any = None) -> list[dict]:
    """Split timed predictions into consecutive windows of `window_s` seconds by each prediction's end time (seconds
    from the first timed prediction's start); `thermal(i)` names the thermal state of window i (default unknown).
    The last window holds the remainder."""
    out: list[dict] = []
    start, edge = 0, window_s
    for i, t in enumerate(end_times_s):
        if t >= edge or i == len(end_times_s) - 1:
            out.append({"t_s": float(t), "start": start, "end": i + 1,
                        "thermal_state": thermal(len(out)) if thermal else "unknown"})
            start = i + 1
            while edge <= t:
                edge += window_s
    return out


def metric_latencies(record: "TimingRecord", metric: str = "median") -> list[float]:
    """The latencies behind a gate's number: all of them (`median`) or the last window's (`last-window`; a record
    without windows uses all)."""
    if metric not in METRICS:
        raise InputError(f"unknown latency metric {metric!r}", f"use one of {', '.join(METRICS)}")
    if metric == "last-window" and record.windows:
        w = record.windows[-1]
        return record.latencies_ms[w["start"]:w["end"]]
    return record.latencies_ms


def metric_value(record: "TimingRecord", metric: str = "median") -> tuple[float, tuple[float, float]]:
    """(median, its bootstrap CI) of `metric_latencies(record, metric)`."""
    if metric == "median" or not record.windows:
        metric_latencies(record, metric)  # checks the name
        lo, hi = record.median_ci_ms or median_ci(record.latencies_ms)
        return record.median_ms, (lo, hi)
    lat = metric_latencies(record, metric)
    return float(np.median(lat)), median_ci(lat)


def trimmed_mean(values: np.ndarray, cut: float) -> float:
    """Mean after dropping the lowest and highest `cut` fraction (0.1 each side: the 80% trimmed mean)."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    k = int(len(v) * cut)
    return float(v[k: len(v) - k].mean()) if len(v) > 2 * k else float(v.mean())


def write(store: str | Path, record: TimingRecord) -> Path:
    """Store one record (validated by construction), atomically, never overwriting, never outside
    `<store>/device` (the file name keeps only the timestamp's safe characters: it may come from an ingested file)."""
    data = asdict(record)
    stamp = "".join(c if c.isascii() and (c.isalnum() or c in "-.") else "_"
                    for c in str(record.timestamp).replace(":", ""))[:40]
    name = check_name(f"{stamp.lstrip('.-_') or 'record'}-{sha256_json(data)[:12]}.json", "timing record file")
    folder = Path(store) / "device"
    atomic_write_bytes(folder / name, json.dumps(data, indent=1).encode(), overwrite=False, durable=True,
                       root=folder)
    return folder / name


def load_all(store: str | Path) -> list[TimingRecord]:
    """Every usable record in the store, oldest first. A file that cannot be read or is not a valid record (not
    JSON, binary, too deeply nested, wrong types) is skipped with a warning naming it: one bad file never hides the
    others, and is never silently dropped."""
    from evalsuite.results import StoreWarning

    folder = Path(store) / "device"
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            records.append(TimingRecord.from_dict(json.loads(path.read_bytes()), f"timing record {path}"))
            continue
        except InputError as exc:
            problem = exc.message
        except UnicodeDecodeError:
            problem = f"timing record {path} is not UTF-8 text"
        except RecursionError:
            problem = f"timing record {path} is nested too deeply"
        except (OSError, ValueError) as exc:
            problem = f"timing record {path} cannot be read ({exc})"
        warnings.warn(f"skipped {problem}; fix or remove the file", StoreWarning, stacklevel=2)
    return sorted(records, key=lambda r: r.timestamp)
