"""The leaderboard's streaming video table: the latest `evalsuite.stream-timing/1` record per model, variant, device,
backend, chunk size and target FPS (columns TTFF, sustained FPS, p50/p99 chunk latency, jitter, deadline-miss
rate), and a chart of TTFF and sustained FPS across releases per series with the regression gate's marks. Rendered
by `templates/stream_section.html.j2` into index.html beside (never inside) the on-device table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from evalsuite.device import stream_history
from evalsuite.device.stream_records import StreamRecord, load_all
from evalsuite.leaderboard import charts
from evalsuite.leaderboard.data import Cell, Column, Row, Table

FAMILY = "video-stream"
TITLE = "Streaming video"
COLUMNS = [
    Column(FAMILY, "stream", "ttff_ms", "lower", "time to first frame: the first chunk's arrival (measured)", "ms"),
    Column(FAMILY, "stream", "sustained_fps", "higher", "frames after the first chunk over the time they took", "fps"),
    Column(FAMILY, "stream", "p50_ms", "lower", "median steady-state chunk latency", "ms"),
    Column(FAMILY, "stream", "p99_ms", "lower", "99th percentile steady-state chunk latency", "ms"),
    Column(FAMILY, "stream", "jitter_ms", "lower", "p99 − p50 of the steady-state chunk latency", "ms"),
    Column(FAMILY, "stream", "deadline_miss_rate", "lower",
           "share of chunks that arrived after their play time at the target FPS", "%"),
]


@dataclass
class StreamSection:
    table: Table | None = None
    charts: list[str] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)


def section(store: str | Path) -> StreamSection:
    """The table (None when the store holds no stream record), the charts and the regressed series' labels."""
    recs = load_all(store)
    if not recs:
        return StreamSection()
    latest: dict[tuple, StreamRecord] = {}
    for rec in recs:  # oldest first: the last one wins
        latest[(rec.model, rec.variant, rec.device_model, rec.backend, rec.compute_unit, rec.chunk_frames,
                rec.target_fps)] = rec
    rows = []
    for key, rec in sorted(latest.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        model, variant, device, backend, unit, frames, fps = key
        label = f"{model} · {variant} · {device} ({backend}/{unit}) · {frames} frames/chunk @ {fps:g} fps"
        n, note = rec.chunks, f"release {rec.release}; {rec.duration_s:.1f} s measured"
        values = {c.metric: float(getattr(rec, c.metric)) for c in COLUMNS}
        values["deadline_miss_rate"] *= 100.0
        rows.append(Row(f"stream:{'|'.join(str(k) for k in key)}", label, "measured", rec.model_hash,
                        cells={c.key: Cell(values[c.metric], n, note=_note(note, rec, c.metric)) for c in COLUMNS}))
    out = StreamSection(Table(FAMILY, TITLE, list(COLUMNS), rows))
    for model in sorted({r.model for r in recs}):
        for s in stream_history.series_for(recs, model):
            label = f"{model} · {s.label}"
            short = f"{model} · {s.variant} · {s.device} · {s.chunk_frames}f@{s.target_fps:g}"
            out.charts.append(charts.series_svg(f"TTFF: {short}", s.releases, s.ttff_ms, s.ttff_violations, "ms",
                                                s.ttff_regressed))
            out.charts.append(charts.series_svg(f"FPS: {short}", s.releases, s.sustained_fps, s.fps_violations,
                                                "fps", s.fps_regressed))
            if s.latest_is_regression:
                out.regressions.append(f"{label} ({', '.join(s.regressed())})")
    return out


def _note(note: str, rec: StreamRecord, metric: str) -> str:
    """A cell's hover text; p50 also states the run's spread (the median's 95% bootstrap CI)."""
    if metric == "p50_ms" and rec.p50_ci_ms:
        return f"{note}; 95% CI of p50 [{rec.p50_ci_ms[0]:.4g}, {rec.p50_ci_ms[1]:.4g}] ms"
    return note
