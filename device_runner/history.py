"""Speed history across releases: one series per (device, backend, compute unit, variant) of a model, the median
latency per release (several measurements of one release are pooled by their median), violations and regressions
by the rule in `evalsuite.device.regression` (threshold and noise), and a plot.

`metric` picks the number gated: `median` (each record's whole-run median) or `last-window` (a sustained run's
last window, `device time --duration`; records without windows use their median). Each release's interval is the
span of its records' bootstrap CIs of that number ([lowest low, highest high]: one record's CI, widened by
measurement-to-measurement spread when a release was measured several times). Cold start (compile, first load,
warm load, first prediction), p90/p99 and peak memory per release are the medians over its records (None when no
record has them)."""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from evalsuite.device import regression
from evalsuite.device.records import TimingRecord, load_all, metric_value


class _Record(Protocol):
    """What `by_release` reads of a timing or streaming record."""

    model: str
    device_model: str
    backend: str
    release: str
    timestamp: Any


R = TypeVar("R", bound=_Record)


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
    metric: str = "median"
    noise: str = regression.DEFAULT_NOISE
    median_ci_ms: list[list[float]] = field(default_factory=list)
    p90_ms: list[float | None] = field(default_factory=list)
    p99_ms: list[float | None] = field(default_factory=list)
    compile_ms: list[float | None] = field(default_factory=list)
    load_ms: list[float | None] = field(default_factory=list)
    warm_load_ms: list[float | None] = field(default_factory=list)
    first_predict_ms: list[float | None] = field(default_factory=list)
    peak_memory_mb: list[float | None] = field(default_factory=list)
    thermal_state: list[str] = field(default_factory=list)
    explanations: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.variant} · {self.device} · {self.backend}/{self.compute_unit}"


def _pooled(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.median(known)) if known else None


def by_release(records: Iterable[R], model: str, device: str | None, backend: str | None,
               key: Callable[[R], tuple]) -> list[tuple[tuple, dict[str, list[R]]]]:
    """A model's records (of one device / backend when given) grouped by series `key`, then by release in the
    order of each release's first measurement; series sorted by key. Timing and streaming records share it."""
    groups: dict[tuple, dict[str, list[R]]] = defaultdict(lambda: defaultdict(list))
    for rec in sorted(records, key=lambda r: r.timestamp):
        if rec.model != model or (device and rec.device_model != device) or (backend and rec.backend != backend):
            continue
        groups[key(rec)][rec.release].append(rec)
    return sorted(groups.items())


def draw_series(ax: Any, x: Any, values: list[float], violations: list[bool], events: list[int], label: str) -> Any:
    """One series on a panel: the line, its violations as red dots, its regression events annotated."""
    line = ax.plot(x, values, marker="o", label=label)[0]
    bad = [i for i, v in enumerate(violations) if v]
    ax.scatter(bad, [values[i] for i in bad], color="red", zorder=3, s=60)
    for i in events:
        ax.annotate("regression", (i, values[i]), textcoords="offset points", xytext=(0, 8), color="red",
                    ha="center", fontsize=8)
    return line


def series_for(records: list[TimingRecord], model: str, device: str | None = None, backend: str | None = None,
               threshold: float = regression.DEFAULT_THRESHOLD, window: int = regression.DEFAULT_WINDOW,
               consecutive: int = regression.DEFAULT_CONSECUTIVE, metric: str = "median",
               noise: str = regression.DEFAULT_NOISE) -> list[Series]:
    out = []
    for key, by_rel in by_release(records, model, device, backend,
                                  lambda r: (r.device_model, r.backend, r.compute_unit, r.variant)):
        s = Series(*key)
        s.metric, s.noise = metric, noise
        for release, recs in by_rel.items():  # insertion order = first measurement's time
            pairs = [metric_value(r, metric) for r in recs]
            s.releases.append(release)
            s.median_ms.append(float(np.median([v for v, _ in pairs])))
            s.median_ci_ms.append([min(ci[0] for _, ci in pairs), max(ci[1] for _, ci in pairs)])
            s.measurements.append(len(recs))
            for name in ("p90_ms", "p99_ms", "compile_ms", "load_ms", "warm_load_ms", "first_predict_ms",
                         "peak_memory_mb"):
                getattr(s, name).append(_pooled([getattr(r, name) for r in recs]))
            s.thermal_state.append(recs[-1].thermal_state)
        cis, values = s.median_ci_ms, s.median_ms
        s.violations = regression.violations(values, threshold, window, cis, noise)
        s.regression_events = regression.regression_events(values, threshold, window, consecutive, cis, noise)
        s.latest_is_regression = regression.is_regression(values, threshold, window, consecutive, cis, noise)
        s.explanations = regression.explain(values, threshold, window, consecutive, cis, noise)
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
        line = draw_series(ax, x, s.median_ms, s.violations, s.regression_events, s.label)
        if s.median_ci_ms:
            lo = [m - c[0] for m, c in zip(s.median_ms, s.median_ci_ms)]
            hi = [c[1] - m for m, c in zip(s.median_ms, s.median_ci_ms)]
            ax.errorbar(x, s.median_ms, yerr=[lo, hi], fmt="none", ecolor=line.get_color(), capsize=3, alpha=0.6)
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
