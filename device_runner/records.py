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
| thermal_state | str | nominal, fair, serious, critical, unknown |
| warmup, iterations | int | counts |
| latencies_ms | list[float] | every steady-state iteration |
| median_ms, p90_ms, trimmed_mean_ms | float | derived from latencies_ms (80% trimmed mean) |
| throughput, throughput_unit | float, str | images/s, or video frames per second of wall time |
| load_ms, compile_ms, first_predict_ms | float or null | |
| release, git_sha | str | the release tag and code revision measured |
| timestamp | str | ISO 8601, UTC |
| steps, frames | int or null | end-to-end generation timing: denoising steps, frames per sample (video) |
| components_ms | dict or null | end-to-end generation timing: median ms of text_encoder, denoise_step, decoder |
| notes | str | free text (e.g. "aggregates only" for ExecuTorch imports) |
| variant_id | str or null | optional: the variant id (`evalsuite.knobs.variant_id`: model id, knob values, \
`#w=` weights sha256) of what was timed; `evalsuite sweep` sets it, and quality results join timing records on it \
exactly. Records written before it existed load with null |
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
    trimmed_mean_ms: float = 0.0
    throughput: float | None = None
    throughput_unit: str = "images/s"
    load_ms: float | None = None
    compile_ms: float | None = None
    first_predict_ms: float | None = None
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
        self.trimmed_mean_ms = trimmed_mean(lat, 0.1)
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
                         "dict | None": (dict, type(None)),
                         "str | None": (str, type(None))}[str(f.type)] for f in fields(TimingRecord)}


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
