"""Regression rule for speed series (after PyTorch's benchmark checker), made honest about noise: a point is
*slow* when its latency exceeds `threshold` (1.15) × the median of the `window` (5) points before it **and** the
change exceeds the run-to-run noise; a *regression* is flagged when the latest `consecutive` (2) releases are all
slow against the window before them. Phones swing >10% run to run, so one slow point is not a regression.

Noise (`noise=`), given each point's 95% bootstrap CI of the median (`TimingRecord.median_ci_ms`): the baseline's
interval is [median of the window's CI lows, median of the window's CI highs]; `disjoint` (default): the point's CI
lies wholly above the baseline's (the intervals do not overlap); `outside`: the point's median lies above the
baseline's interval; `off`: the threshold alone (also what happens when no CIs are given)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

DEFAULT_THRESHOLD = 1.15
DEFAULT_WINDOW = 5
DEFAULT_CONSECUTIVE = 2
NOISE_RULES = ("disjoint", "outside", "off")
DEFAULT_NOISE = "disjoint"

CIs = Sequence[Sequence[float]] | None


@dataclass(frozen=True)
class Verdict:
    """Why one point is or is not slow against the points before it."""

    value: float
    ci: tuple[float, float] | None
    baseline: float | None  # median of the window; None for the first point
    baseline_ci: tuple[float, float] | None
    limit: float | None  # threshold × baseline
    over_threshold: bool
    beyond_noise: bool
    noise: str

    @property
    def slow(self) -> bool:
        return self.over_threshold and self.beyond_noise

    def reason(self, threshold: float) -> str:
        ci = f" [{self.ci[0]:.4g}, {self.ci[1]:.4g}]" if self.ci else ""
        if self.baseline is None or self.limit is None:
            return f"{self.value:.4g} ms{ci}: first point, no baseline"
        base_ci = f" [{self.baseline_ci[0]:.4g}, {self.baseline_ci[1]:.4g}]" if self.baseline_ci else ""
        head = (f"{self.value:.4g} ms{ci} vs baseline {self.baseline:.4g} ms{base_ci}: "
                f"{self.value / self.baseline:.3f}× ")
        if not self.over_threshold:
            return head + f"within the {threshold:g}× threshold ({self.limit:.4g} ms): not slow"
        head += f"over the {threshold:g}× threshold ({self.limit:.4g} ms)"
        if self.noise == "off" or self.ci is None or self.baseline_ci is None:
            return head + " (noise not checked): slow"
        if self.noise == "disjoint":
            test = f"CI low {self.ci[0]:.4g} {'>' if self.beyond_noise else '<='} baseline CI high " \
                   f"{self.baseline_ci[1]:.4g}"
        else:
            test = f"median {self.value:.4g} {'>' if self.beyond_noise else '<='} baseline CI high " \
                   f"{self.baseline_ci[1]:.4g}"
        return head + (f" and beyond the noise ({test}): slow" if self.beyond_noise
                       else f" but within the noise ({test}): not slow")


def assess(values: Sequence[float], i: int, threshold: float = DEFAULT_THRESHOLD, window: int = DEFAULT_WINDOW,
           cis: CIs = None, noise: str = DEFAULT_NOISE, base_end: int | None = None) -> Verdict:
    """Point i against the median of up to `window` points ending before `base_end` (default i)."""
    if noise not in NOISE_RULES:
        raise ValueError(f"unknown noise rule {noise!r} (use one of {', '.join(NOISE_RULES)})")
    end = i if base_end is None else base_end
    start = max(0, end - window)
    ci = (float(cis[i][0]), float(cis[i][1])) if cis is not None else None
    if end < 1:
        return Verdict(float(values[i]), ci, None, None, None, False, False, noise)
    base = float(np.median(values[start:end]))
    base_ci = None
    if cis is not None:
        base_ci = (float(np.median([c[0] for c in cis[start:end]])), float(np.median([c[1] for c in cis[start:end]])))
    limit = threshold * base
    over = float(values[i]) > limit
    if noise == "off" or ci is None or base_ci is None:
        beyond = True
    elif noise == "disjoint":
        beyond = ci[0] > base_ci[1]
    else:
        beyond = float(values[i]) > base_ci[1]
    return Verdict(float(values[i]), ci, base, base_ci, limit, over, beyond, noise)


def violations(latencies: Sequence[float], threshold: float = DEFAULT_THRESHOLD, window: int = DEFAULT_WINDOW,
               cis: CIs = None, noise: str = DEFAULT_NOISE) -> list[bool]:
    """Per point: slow against up to `window` previous points (the first point never is)."""
    return [assess(latencies, i, threshold, window, cis, noise).slow for i in range(len(latencies))]


def regression_at(latencies: Sequence[float], i: int, threshold: float = DEFAULT_THRESHOLD,
                  window: int = DEFAULT_WINDOW, consecutive: int = DEFAULT_CONSECUTIVE, cis: CIs = None,
                  noise: str = DEFAULT_NOISE) -> bool:
    """The `consecutive` points ending at i are all slow against the `window` points before them (the earlier
    window)."""
    start = i - consecutive + 1
    if start < 1:
        return False
    return all(assess(latencies, j, threshold, window, cis, noise, base_end=start).slow for j in range(start, i + 1))


def is_regression(latencies: Sequence[float], threshold: float = DEFAULT_THRESHOLD, window: int = DEFAULT_WINDOW,
                  consecutive: int = DEFAULT_CONSECUTIVE, cis: CIs = None, noise: str = DEFAULT_NOISE) -> bool:
    """Is the latest release a regression?"""
    return regression_at(latencies, len(latencies) - 1, threshold, window, consecutive, cis, noise)


def regression_events(latencies: Sequence[float], threshold: float = DEFAULT_THRESHOLD, window: int = DEFAULT_WINDOW,
                      consecutive: int = DEFAULT_CONSECUTIVE, cis: CIs = None,
                      noise: str = DEFAULT_NOISE) -> list[int]:
    """Indices where a regression is first flagged (a slow stretch counts once, at its `consecutive`-th point)."""
    flagged = [regression_at(latencies, i, threshold, window, consecutive, cis, noise)
               for i in range(len(latencies))]
    return [i for i, f in enumerate(flagged) if f and not (i > 0 and flagged[i - 1])]


def explain(latencies: Sequence[float], threshold: float = DEFAULT_THRESHOLD, window: int = DEFAULT_WINDOW,
            consecutive: int = DEFAULT_CONSECUTIVE, cis: CIs = None, noise: str = DEFAULT_NOISE) -> list[str]:
    """Per point, one line: against the window before it (slow or not, and why), and whether the regression rule
    flags it (its run of `consecutive` slow points, judged against the window before the run)."""
    out = []
    for i in range(len(latencies)):
        line = assess(latencies, i, threshold, window, cis, noise).reason(threshold)
        if regression_at(latencies, i, threshold, window, consecutive, cis, noise):
            line += f"; REGRESSION: the last {consecutive} point(s) are all slow against the window before them"
        elif consecutive > 1 and i >= 1:
            line += f"; no regression (needs {consecutive} slow points in a row)"
        out.append(line)
    return out
