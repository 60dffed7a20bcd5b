"""The `video-stream` timing record: one JSON document per measured stream, validated on write and on load, stored
under `<store>/device/stream/` (apart from the `evalsuite.timing/1` records in `<store>/device/`). The host
(`evalsuite.device.streaming`) and the iPhone app (`protocol.parse_stream_result`) write them; the leaderboard's
streaming table and `device stream-history` read them. Schema `evalsuite.stream-timing/1`:

| field | type | meaning |
|---|---|---|
| model, model_hash | str | model name; hash of the weights or packages ('' when unknown) |
| variant | str | e.g. fp32, fp16, palettize4 |
| backend | str | host, iphone |
| compute_unit | str | cpu, cuda (host); ALL, CPU_AND_NE, CPU_AND_GPU, CPU_ONLY (iphone) |
| device_model, os_version | str | e.g. iPhone17,2 and 18.1, or the host's CPU/GPU name and platform |
| chunk_frames | int | frames per chunk |
| target_fps | float | the frame rate the stream plays at (deadlines) |
| warmup_chunks | int | chunks of an untimed stream before the measured one |
| chunk_latencies_ms | list[float] | every chunk of the measured stream: l_k = a_k − a_(k−1), a_(−1) = 0 (l_0 = TTFF) |
| chunks | int | number of chunks measured (derived) |
| duration_s | float | the measured stream's wall time, a_(N−1) (derived) |
| ttff_ms | float | time to first frame, a_0 (derived) |
| sustained_fps | float | frames after the first chunk over the time they took (derived) |
| p50_ms, p90_ms, p99_ms | float | steady-state chunk latency percentiles, l_1 … (derived) |
| jitter_ms | float | p99 − p50 (derived) |
| p50_ci_ms | [float, float] or null | 95% percentile-bootstrap CI of p50 (`records.median_ci`, seed 0, 1000 resamples \
of l_1 …): the run's spread; null with fewer than 2 steady-state chunks (derived) |
| deadline_misses, deadline_miss_rate | int, float | chunks later than their play time at target_fps (derived) |
| stall_ms | float | total time playback waited for late chunks (derived) |
| thermal_state | str | nominal, fair, serious, critical, unknown (the worst seen on the phone) |
| steps | int or null | denoising steps per chunk of a device pipeline |
| release, git_sha | str | the release tag and code revision measured |
| timestamp | str | ISO 8601, UTC |
| notes | str | free text (requested duration, threads, app version) |
| variant_id | str or null | the variant id (`evalsuite.knobs.variant_id`) of what was timed, when known |

The derived fields are always recomputed from `chunk_latencies_ms`, `chunk_frames` and `target_fps` with
`evalsuite.device.streaming.stream_stats` (the definitions are there); a stored file whose derived values disagree
with that recomputation is refused on load (edited, or written under other definitions).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from evalsuite.errors import InputError
from evalsuite.fsutil import atomic_write_bytes, check_name
from evalsuite.hashing import sha256_json

SCHEMA = "evalsuite.stream-timing/1"
FOLDER = ("device", "stream")
DERIVED = ("chunks", "duration_s", "ttff_ms", "sustained_fps", "p50_ms", "p90_ms", "p99_ms", "jitter_ms",
           "deadline_misses", "deadline_miss_rate", "stall_ms")
REQUIRED = ("model", "variant", "backend", "device_model", "chunk_frames", "target_fps", "chunk_latencies_ms",
            "release")


@dataclass
class StreamRecord:
    model: str
    variant: str
    backend: str
    device_model: str
    chunk_frames: int
    target_fps: float
    chunk_latencies_ms: list[float]
    release: str
    model_hash: str = ""
    compute_unit: str = ""
    os_version: str = ""
    thermal_state: str = "unknown"
    warmup_chunks: int = 0
    steps: int | None = None
    chunks: int = 0
    duration_s: float = 0.0
    ttff_ms: float = 0.0
    sustained_fps: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    jitter_ms: float = 0.0
    deadline_misses: int = 0
    deadline_miss_rate: float = 0.0
    stall_ms: float = 0.0
    p50_ci_ms: list[float] | None = None
    git_sha: str = ""
    notes: str = ""
    variant_id: str | None = None
    timestamp: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        from evalsuite.device.streaming import stream_stats

        lat = np.asarray(self.chunk_latencies_ms, dtype=np.float64)
        if lat.ndim != 1 or len(lat) == 0 or not np.isfinite(lat).all() or (lat <= 0).any():
            raise InputError(f"stream record for {self.model}/{self.variant} has unusable chunk latencies "
                             f"({len(self.chunk_latencies_ms)} values; all must be finite and > 0)",
                             "record every chunk's latency in milliseconds, the first being the time to first frame")
        self.chunk_latencies_ms = lat.tolist()
        stats = stream_stats(np.cumsum(lat).tolist(), self.chunk_frames, float(self.target_fps))
        for name in DERIVED:
            setattr(self, name, stats[name])
        self.target_fps = float(self.target_fps)
        from evalsuite.device.records import median_ci

        steady = lat[1:]  # l_1 …, as the percentiles
        self.p50_ci_ms = [float(v) for v in median_ci(steady)] if len(steady) >= 2 else None

    @property
    def arrivals_ms(self) -> list[float]:
        """Chunk arrival times since the stream's start."""
        return np.cumsum(self.chunk_latencies_ms).tolist()

    @property
    def frame_period_ms(self) -> float:
        """1000 / sustained FPS: the sustained time per frame (lower is better; what the regression rule gates)."""
        return 1000.0 / self.sustained_fps

    @classmethod
    def from_arrivals(cls, arrivals_ms: list[float], **kwargs: Any) -> "StreamRecord":
        """A record from chunk arrival times (ms since the stream's start)."""
        a = np.asarray(arrivals_ms, dtype=np.float64)
        return cls(chunk_latencies_ms=np.diff(a, prepend=0.0).tolist(), **kwargs)

    @classmethod
    def from_dict(cls, data: Any, source: str = "stream record") -> "StreamRecord":
        """A record from its JSON form. Not an object, another schema, missing fields, a field of the wrong type, or
        derived values that disagree with the recomputation from the chunk latencies are an InputError naming
        `source` and the field; nothing is converted."""
        fix = f"see the schema {SCHEMA} in device_runner/stream_records.py"
        if not isinstance(data, dict):
            raise InputError(f"{source} holds a JSON {type(data).__name__}, not a stream record object", fix)
        if data.get("schema", SCHEMA) != SCHEMA:
            raise InputError(f"{source} has schema {data.get('schema')!r}, not {SCHEMA!r}", fix)
        missing = [k for k in REQUIRED if k not in data]
        if missing:
            raise InputError(f"{source} lacks the field(s) {', '.join(missing)}",
                             f"a stream record needs {', '.join(REQUIRED)} (schema {SCHEMA})")
        for f in fields(cls):
            value = data.get(f.name)
            if f.name in data and (isinstance(value, bool) or not isinstance(value, _FIELD_KINDS[f.name])):
                raise InputError(f"{source}: field {f.name} is {value!r:.60}, not {f.type}", fix)
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in data["chunk_latencies_ms"]):
            raise InputError(f"{source}: chunk_latencies_ms must hold numbers only", fix)
        record = cls(**{k: v for k, v in data.items() if k in _FIELD_KINDS})
        for name in DERIVED:
            if name in data and not _close(data[name], getattr(record, name)):
                raise InputError(f"{source}: {name} is {data[name]!r} but its chunk latencies give "
                                 f"{getattr(record, name)!r}",
                                 "the derived fields follow from chunk_latencies_ms (device_runner/streaming.py); "
                                 "the file was edited or written under other definitions: remeasure")
        return record


def _close(a: float, b: float) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


_FIELD_KINDS = {f.name: {"str": (str,), "int": (int,), "float": (int, float), "list[float]": (list,),
                         "int | None": (int, type(None)), "str | None": (str, type(None)),
                         "list[float] | None": (list, type(None))}[str(f.type)]
                for f in fields(StreamRecord)}


def folder(store: str | Path) -> Path:
    return Path(store).joinpath(*FOLDER)


def write(store: str | Path, record: StreamRecord) -> Path:
    """Store one record (validated by construction), atomically, never overwriting, never outside
    `<store>/device/stream`."""
    data = asdict(record)
    stamp = "".join(c if c.isascii() and (c.isalnum() or c in "-.") else "_"
                    for c in str(record.timestamp).replace(":", ""))[:40]
    name = check_name(f"{stamp.lstrip('.-_') or 'stream'}-{sha256_json(data)[:12]}.json", "stream record file")
    where = folder(store)
    atomic_write_bytes(where / name, json.dumps(data, indent=1).encode(), overwrite=False, durable=True, root=where)
    return where / name


def load_all(store: str | Path) -> list[StreamRecord]:
    """Every usable stream record in the store, oldest first. A file that cannot be read or is not a valid record is
    skipped with a warning naming it (one bad file never hides the others, and is never silently dropped)."""
    from evalsuite.results import StoreWarning

    records = []
    for path in sorted(folder(store).glob("*.json")):
        try:
            records.append(StreamRecord.from_dict(json.loads(path.read_bytes()), f"stream record {path}"))
            continue
        except InputError as exc:
            problem = exc.message
        except UnicodeDecodeError:
            problem = f"stream record {path} is not UTF-8 text"
        except RecursionError:
            problem = f"stream record {path} is nested too deeply"
        except (OSError, ValueError, TypeError) as exc:
            problem = f"stream record {path} cannot be read ({exc})"
        warnings.warn(f"skipped {problem}; fix or remove the file", StoreWarning, stacklevel=2)
    return sorted(records, key=lambda r: r.timestamp)
