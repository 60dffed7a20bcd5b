"""The timing loop of the host backends, for a count of predictions or a sustained run (`device time --duration
10m`): predictions are timed back to back until the duration has passed (and at least `iterations` of them), then
split into consecutive windows by their end times (`records.make_windows`), so a record shows latency against time
and the gate can judge the last window, after the device has heated up, rather than the first minute."""

from __future__ import annotations

import re
import time
from typing import Callable

from evalsuite.device.records import make_windows
from evalsuite.errors import InputError

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str | float | None) -> float | None:
    """'10m', '90s', '1.5h', '45' (seconds) -> seconds; None or '' -> None."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*", str(text).lower())
        if not match:
            raise InputError(f"duration {text!r} is not a number of seconds, minutes or hours",
                             "write e.g. 10m, 90s, 1.5h or 45 (seconds)")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or ""]
    if not seconds > 0:
        raise InputError(f"duration {text!r} is not positive", "give a duration above zero, e.g. 10m")
    return seconds


def default_window_s(duration_s: float) -> float:
    """One-minute windows for runs of five minutes or more, else a tenth of the run."""
    return 60.0 if duration_s >= 300 else duration_s / 10


def timed_loop(call: Callable[[], object], iterations: int, duration_s: float | None = None,
               window_s: float | None = None, thermal: Callable[[], str] | None = None,
               sync: Callable[[], None] = lambda: None) -> tuple[list[float], list[dict] | None, float | None]:
    """(latencies ms, windows or None, seconds timed or None): `iterations` timed calls, or with `duration_s`
    calls until that many seconds have passed (at least `iterations`). `thermal()` is sampled after every call and
    each window keeps the worst state seen in it (order nominal < fair < serious < critical; unknown when never
    known)."""
    order = ("unknown", "nominal", "fair", "serious", "critical")
    latencies: list[float] = []
    ends: list[float] = []
    states: list[str] = []
    t_start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        call()
        sync()
        t1 = time.perf_counter()
        latencies.append((t1 - t0) * 1000)
        ends.append(t1 - t_start)
        states.append(thermal() if thermal else "unknown")
        if len(latencies) >= iterations and (duration_s is None or ends[-1] >= duration_s):
            break
    if duration_s is None:
        return latencies, None, None
    windows = make_windows(ends, window_s or default_window_s(duration_s))
    for w in windows:
        w["thermal_state"] = max(states[w["start"]:w["end"]], key=order.index)
    return latencies, windows, ends[-1]
