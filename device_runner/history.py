"""Speed history across releases: one series per (device, backend, compute unit, variant) of a model, the median
latency per release (several measurements of one release are pooled by their median), violations and regressions
by the rule in `evalsuite.device.regression`, and a plot."""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evalsuite.device import regression
from evalsuite.device.records import TimingRecord, load_all


@dataclass
class Series:
    device: str
    backend: str
    compute_unit: str
    variant: str
    releases: list[str] = field(default_factory=list)
    median_ms: list[float] = field(default_factory=list)
    measurements: list[int] = field(default_factory=list)
    violations: list[bool] = field(default_factory=list)
    regression_events: list[int] = field(default_factory=list)
    latest_is_regression: bool = False

    @property
    def label(self) -> str:
        return f"{self.variant} · {self.device} · {self.backend}/{self.compute_unit}"


def series_for(records: list[TimingRecord], model: str, device: str | None = None, backend: str | None = None,
               threshold: float = regression.DEFAULT_THRESHOLD, window: int = regression.DEFAULT_WINDOW,
               consecutive: int = regression.DEFAULT_CONSECUTIVE) -> list[Series]:
    groups: dict[tuple, dict[str, list[TimingRecord]]] = defaultdict(lambda: defaultdict(list))
    for rec in sorted(records, key=lambda r: r.timestamp):
        if rec.model != model or (device and rec.device_model != device) or (backend and rec.backend != backend):
            continue
        groups[(rec.device_model, rec.backend, rec.compute_unit, rec.variant)][rec.release].append(rec)
    out = []
    for key, by_release in sorted(groups.items()):
        s = Series(*key)
        for release, recs in by_release.items():  # insertion order = first measurement's time
            s.releases.append(release)
            s.median_ms.append(float(np.median([r.median_ms for r in recs])))
            s.measurements.append(len(recs))
        s.violations = regression.violations(s.median_ms, threshold, window)
        s.regression_events = regression.regression_events(s.median_ms, threshold, window, consecutive)
        s.latest_is_regression = regression.is_regression(s.median_ms, threshold, window, consecutive)
        out.append(s)
    return out


def history(store: str | Path, model: str, **kwargs) -> list[Series]:
    return series_for(load_all(store), model, **kwargs)


def plot(series: list[Series], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for s in series:
        x = np.arange(len(s.releases))
        ax.plot(x, s.median_ms, marker="o", label=s.label)
        bad = [i for i, v in enumerate(s.violations) if v]
        ax.scatter(bad, [s.median_ms[i] for i in bad], color="red", zorder=3, s=60)
        for i in s.regression_events:
            ax.annotate("regression", (i, s.median_ms[i]), textcoords="offset points", xytext=(0, 8), color="red",
                        ha="center", fontsize=8)
    longest = max(series, key=lambda s: len(s.releases))
    ax.set_xticks(range(len(longest.releases)), longest.releases, rotation=30, ha="right")
    ax.set(ylabel="median latency (ms)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
