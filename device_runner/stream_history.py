"""Streaming history across releases and its regression gate: one series per (device, backend, compute unit,
variant, chunk size, target FPS) of a model, with per release the median TTFF and the median sustained FPS of its
streams (several streams of one release pooled by their median), plus the median deadline-miss rate and jitter.

The gate is `evalsuite.device.regression`'s rule, unchanged, on two lower-is-better series: TTFF (ms), and the
sustained frame period 1000 / FPS (ms per frame), so "FPS regressed" means the frame period grew by more than the
threshold (1.15: FPS fell below 1 / 1.15 ≈ 87% of the window's median) on the latest `consecutive` releases."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evalsuite.device import regression
from evalsuite.device.history import by_release, draw_series
from evalsuite.device.stream_records import StreamRecord, load_all

METRICS = ("ttff", "fps")


@dataclass
class StreamSeries:
    device: str
    backend: str
    compute_unit: str
    variant: str
    chunk_frames: int
    target_fps: float
    releases: list[str] = field(default_factory=list)
    ttff_ms: list[float] = field(default_factory=list)
    sustained_fps: list[float] = field(default_factory=list)
    deadline_miss_rate: list[float] = field(default_factory=list)
    jitter_ms: list[float] = field(default_factory=list)
    measurements: list[int] = field(default_factory=list)
    ttff_violations: list[bool] = field(default_factory=list)
    fps_violations: list[bool] = field(default_factory=list)
    ttff_events: list[int] = field(default_factory=list)
    fps_events: list[int] = field(default_factory=list)
    ttff_regressed: bool = False
    fps_regressed: bool = False

    @property
    def label(self) -> str:
        return (f"{self.variant} · {self.device} · {self.backend}/{self.compute_unit} · "
                f"{self.chunk_frames} frames/chunk @ {self.target_fps:g} fps")

    @property
    def latest_is_regression(self) -> bool:
        return self.ttff_regressed or self.fps_regressed

    def regressed(self, metrics: tuple[str, ...] = METRICS) -> list[str]:
        """Which of `metrics` ('ttff', 'fps') regressed at the latest release."""
        return [m for m in metrics if (self.ttff_regressed if m == "ttff" else self.fps_regressed)]


def series_for(records: list[StreamRecord], model: str, device: str | None = None, backend: str | None = None,
               threshold: float = regression.DEFAULT_THRESHOLD, window: int = regression.DEFAULT_WINDOW,
               consecutive: int = regression.DEFAULT_CONSECUTIVE) -> list[StreamSeries]:
    """The model's streaming series, releases in the order of their first measurement."""
    out = []
    for key, by_rel in by_release(records, model, device, backend, lambda r: (
            r.device_model, r.backend, r.compute_unit, r.variant, r.chunk_frames, r.target_fps)):
        s = StreamSeries(*key)
        for release, recs in by_rel.items():
            s.releases.append(release)
            s.ttff_ms.append(float(np.median([r.ttff_ms for r in recs])))
            s.sustained_fps.append(float(np.median([r.sustained_fps for r in recs])))
            s.deadline_miss_rate.append(float(np.median([r.deadline_miss_rate for r in recs])))
            s.jitter_ms.append(float(np.median([r.jitter_ms for r in recs])))
            s.measurements.append(len(recs))
        period = [1000.0 / f for f in s.sustained_fps]
        t, w, c = threshold, window, consecutive
        s.ttff_violations = regression.violations(s.ttff_ms, threshold=t, window=w)
        s.fps_violations = regression.violations(period, threshold=t, window=w)
        s.ttff_events = regression.regression_events(s.ttff_ms, threshold=t, window=w, consecutive=c)
        s.fps_events = regression.regression_events(period, threshold=t, window=w, consecutive=c)
        s.ttff_regressed = regression.is_regression(s.ttff_ms, threshold=t, window=w, consecutive=c)
        s.fps_regressed = regression.is_regression(period, threshold=t, window=w, consecutive=c)
        out.append(s)
    return out


def history(store: str | Path, model: str, **kwargs) -> list[StreamSeries]:
    return series_for(load_all(store), model, **kwargs)


def plot(series: list[StreamSeries], title: str) -> bytes:
    """Two panels: TTFF and sustained FPS across releases, violations in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for s in series:
        x = np.arange(len(s.releases))
        for ax, values, bad, events in ((ax1, s.ttff_ms, s.ttff_violations, s.ttff_events),
                                        (ax2, s.sustained_fps, s.fps_violations, s.fps_events)):
            draw_series(ax, x, values, bad, events, s.label)
    longest = max(series, key=lambda s: len(s.releases))
    for ax, label in ((ax1, "time to first frame (ms)"), (ax2, "sustained FPS")):
        ax.set_xticks(range(len(longest.releases)), longest.releases, rotation=30, ha="right")
        ax.set(ylabel=label)
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
