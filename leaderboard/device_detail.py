"""The leaderboard's on-device detail: per model, variant, device, backend and compute unit (the latest record),
the tails (p50 with its 95% bootstrap CI, p90, p99), cold start (compile, first load, warm load, first prediction),
peak memory and thermal state, and the sustained numbers (first and last window); and one latency-over-time chart
per sustained record (`device time --duration`). Rendered by `templates/device_detail.html.j2`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from evalsuite.device import records as device_records
from evalsuite.leaderboard.sustained_chart import sustained_svg

MAX_SUSTAINED_CHARTS = 24


@dataclass
class DetailRow:
    label: str
    values: dict  # column key -> float or None
    ci: tuple[float, float]
    thermal: str
    release: str
    sustained: str = ""  # e.g. "600 s, 10 windows"


@dataclass
class DeviceDetail:
    rows: list[DetailRow] = field(default_factory=list)
    sustained_charts: list[str] = field(default_factory=list)


# (key, header, unit, description); values lower is better; median_ms first (the CI column follows it)
COLUMNS = [
    ("median_ms", "p50", "ms", "median latency of one call"),
    ("p90_ms", "p90", "ms", "90th percentile latency"),
    ("p99_ms", "p99", "ms", "99th percentile latency"),
    ("compile_ms", "compile", "ms", "compiling the model (Core ML on the phone)"),
    ("load_ms", "first load", "ms", "first load (device specialisation)"),
    ("warm_load_ms", "warm load", "ms", "a second load of the compiled model"),
    ("first_predict_ms", "first prediction", "ms", "the first call after loading"),
    ("peak_memory_mb", "peak memory", "MiB", "peak memory of the process while predicting"),
    ("first_window_ms", "first window", "ms", "sustained runs: median latency of the first window"),
    ("last_window_ms", "last window", "ms", "sustained runs: median latency of the last window (after heating)"),
]


def section(store: str | Path) -> DeviceDetail:
    recs = device_records.load_all(store)
    latest: dict[tuple, device_records.TimingRecord] = {}
    for rec in recs:  # oldest first: the last one wins
        latest[(rec.model, rec.variant, rec.device_model, rec.backend, rec.compute_unit)] = rec
    out = DeviceDetail()
    for (model, variant, device, backend, unit), rec in sorted(latest.items()):
        values = {key: getattr(rec, key, None) for key, *_ in COLUMNS}
        if rec.windows:
            values["first_window_ms"] = rec.windows[0]["median_ms"]
            values["last_window_ms"] = rec.windows[-1]["median_ms"]
        lo, hi = rec.median_ci_ms or device_records.median_ci(rec.latencies_ms)
        sustained = f"{rec.duration_s or 0:.0f} s, {len(rec.windows)} windows" if rec.windows else ""
        out.rows.append(DetailRow(f"{model} · {variant} · {device} ({backend}/{unit})", values, (lo, hi),
                                  rec.thermal_state, rec.release, sustained))
    sustained_recs = [r for r in recs if r.windows][-MAX_SUSTAINED_CHARTS:]
    for rec in sustained_recs:
        title = (f"{rec.model} · {rec.variant} · {rec.device_model} ({rec.backend}/{rec.compute_unit}) · "
                 f"{rec.release} · {rec.duration_s or 0:.0f} s")
        out.sustained_charts.append(sustained_svg(title, rec.windows or []))
    return out
