"""Quality against on-device latency: the Pareto frontier and the iso-latency / iso-quality tables (issue 16).

A `Point` is one variant's quality number joined with its latency on one device. Lower latency is always better;
which quality is better comes from the metric's declaration (`MetricInfo.direction`, "lower" or "higher") and is
never guessed: anything else is a `ParetoError`.

Rules (each one tested in tests/test_pareto.py against brute-force definitions):

- *Dominance*: a dominates b when a's latency <= b's, a's quality is at least as good, and a is strictly better in
  one of the two. Values are compared exactly (no tolerance).
- *Ties*: points equal in both latency and quality do not dominate each other, so all of them are on the frontier.
  Frontier order is latency, then quality (best first), then variant id: the same input gives the same output.
- *Dominated points* name one dominating frontier point: the fastest frontier point whose quality is at least as
  good (the earliest in frontier order when several are equally fast).
- *Devices* never mix: `frontier` and the tables refuse points from more than one device; `report` gives one
  result per device.
- *Reported points* (source "reported": published paper numbers) are listed with the result but take no part in
  the frontier or the tables unless `include_reported=True`.
- *Tables*: for a latency budget, the best quality with latency <= budget (ties: the faster, then the smaller
  variant id); for a quality level, the fastest variant reaching it (ties: the better quality, then the smaller
  variant id). Both answers are always frontier points; None where nothing qualifies.

>>> pts = [Point("a", "4 steps", 10.0, 120.0, "iphone"), Point("b", "2 steps", 14.0, 60.0, "iphone"),
...        Point("c", "2 steps int8", 15.0, 70.0, "iphone")]
>>> f = frontier(pts, "lower")
>>> [p.variant_id for p in f.frontier]
['b', 'a']
>>> [(e.point.variant_id, e.dominated_by.variant_id) for e in f.entries if e.dominated_by]
[('c', 'b')]
"""

from __future__ import annotations

import bisect
import html
import json
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalsuite.errors import InputError

DIRECTIONS = ("lower", "higher")
SOURCES = ("measured", "reported")


class ParetoError(InputError, ValueError):
    """Points or options a Pareto report cannot use (unknown direction, devices mixed, bad values)."""


@dataclass(frozen=True)
class Point:
    """One variant: its quality on a metric and its latency on a device.

    `quality_ci` is the (low, high) bootstrap interval where per-sample values exist; `latency_p10_p90` the 10th
    and 90th percentiles of the timed runs. `source` is "measured" or "reported" (a published paper number).

    >>> Point("demo-s4", "steps=4", 0.91, 35.2, "host-torch", knobs={"steps": 4}).knobs
    {'steps': 4}
    >>> Point("x", "x", 1.0, -3.0, "cpu")
    Traceback (most recent call last):
    ...
    evalsuite.pareto.ParetoError: point 'x': latency must be a positive finite number of ms, not -3.0
    """

    variant_id: str
    label: str
    quality: float
    latency_ms: float
    device: str
    knobs: Mapping[str, Any] = field(default_factory=dict, hash=False)
    quality_ci: tuple[float, float] | None = None
    latency_p10_p90: tuple[float, float] | None = None
    source: str = "measured"

    def __post_init__(self) -> None:
        name = f"point {self.variant_id!r}"
        if not (_is_number(self.quality) and math.isfinite(self.quality)):
            raise ParetoError(f"{name}: quality must be a finite number, not {self.quality!r}")
        if not (_is_number(self.latency_ms) and math.isfinite(self.latency_ms) and self.latency_ms > 0):
            raise ParetoError(f"{name}: latency must be a positive finite number of ms, not {self.latency_ms!r}")
        object.__setattr__(self, "quality", float(self.quality))
        object.__setattr__(self, "latency_ms", float(self.latency_ms))
        if self.source not in SOURCES:
            raise ParetoError(f"{name}: source must be one of {SOURCES}, not {self.source!r}")
        for what, pair in (("quality_ci", self.quality_ci), ("latency_p10_p90", self.latency_p10_p90)):
            if pair is None:
                continue
            if not (len(pair) == 2 and all(_is_number(v) and math.isfinite(v) for v in pair) and pair[0] <= pair[1]):
                raise ParetoError(f"{name}: {what} must be a finite (low, high) pair with low <= high, not {pair!r}")
            object.__setattr__(self, what, (float(pair[0]), float(pair[1])))
        object.__setattr__(self, "knobs", dict(self.knobs))


@dataclass(frozen=True)
class Entry:
    """A point's place in a frontier: on it, dominated (and by which frontier point), or left out (reported)."""

    point: Point
    on_frontier: bool
    dominated_by: Point | None = None

    @property
    def status(self) -> str:
        """ "frontier", "dominated" or "reported" (a reported point left out of the frontier)."""
        return "frontier" if self.on_frontier else "dominated" if self.dominated_by else "reported"


@dataclass(frozen=True)
class Frontier:
    """One device's frontier: `entries` holds every point given (frontier first, in frontier order)."""

    device: str
    direction: str
    entries: tuple[Entry, ...]

    @property
    def frontier(self) -> tuple[Point, ...]:
        """The Pareto-optimal points, sorted by latency (then quality, best first, then variant id)."""
        return tuple(e.point for e in self.entries if e.on_frontier)


@dataclass(frozen=True)
class IsoRow:
    """A table row: the threshold (latency budget in ms, or quality level) and the chosen point, or None."""

    threshold: float
    point: Point | None


@dataclass(frozen=True)
class DeviceReport:
    """Everything the report shows for one device: the frontier and both tables."""

    device: str
    metric: str
    direction: str
    frontier: Frontier
    iso_latency: tuple[IsoRow, ...]
    iso_quality: tuple[IsoRow, ...]


def check_direction(direction: object) -> str:
    """The metric's declared direction, or a `ParetoError` saying what is allowed (never a guess).

    >>> check_direction("higher")
    'higher'
    >>> check_direction("up")
    Traceback (most recent call last):
    ...
    evalsuite.pareto.ParetoError: quality direction must be 'lower' or 'higher' (from the metric's ...), not 'up'
      fix: pass the direction declared in the task's MetricInfo (FID: 'lower', CLIPScore: 'higher')
    """
    if direction not in DIRECTIONS:
        raise ParetoError(f"quality direction must be 'lower' or 'higher' (from the metric's declaration), "
                          f"not {direction!r}",
                          "pass the direction declared in the task's MetricInfo (FID: 'lower', CLIPScore: 'higher')")
    return str(direction)


def _score(quality: float, direction: str) -> float:
    """Quality as a cost: smaller is better in both directions."""
    return quality if direction == "lower" else -quality


def _order(p: Point, direction: str) -> tuple[float, float, str, str]:
    return (p.latency_ms, _score(p.quality, direction), p.variant_id, p.label)


def _one_device(points: Sequence[Point], what: str) -> str:
    devices = sorted({p.device for p in points})
    if not devices:
        raise ParetoError(f"{what}: no points given")
    if len(devices) > 1:
        raise ParetoError(f"{what}: points from {len(devices)} devices ({', '.join(map(repr, devices))}) are never "
                          "mixed in one frontier", "group them with evalsuite.pareto.report (one result per device)")
    seen: set[str] = set()
    for p in points:
        if p.variant_id in seen:
            raise ParetoError(f"{what}: variant {p.variant_id!r} appears twice on device {devices[0]!r}",
                              "keep one timing per variant and device (the join must be exact)")
        seen.add(p.variant_id)
    return devices[0]


def _eligible(points: Iterable[Point], include_reported: bool) -> list[Point]:
    return [p for p in points if include_reported or p.source == "measured"]


def frontier(points: Iterable[Point], quality_direction: str, *, include_reported: bool = False) -> Frontier:
    """The Pareto frontier of one device's points (O(n log n); see the module docstring for the rules).

    >>> fr = frontier([Point("a", "a", 0.30, 50.0, "mac"), Point("b", "b", 0.30, 50.0, "mac"),
    ...                Point("p", "paper", 0.90, 10.0, "mac", source="reported")], "higher")
    >>> [(e.point.variant_id, e.status) for e in fr.entries]
    [('a', 'frontier'), ('b', 'frontier'), ('p', 'reported')]
    """
    direction = check_direction(quality_direction)
    pts = list(points)
    device = _one_device(pts, "frontier")
    ranked = sorted(_eligible(pts, include_reported), key=lambda p: _order(p, direction))
    on: list[Point] = []
    best_before = math.inf  # best score among strictly faster points
    i = 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j].latency_ms == ranked[i].latency_ms:
            j += 1
        group_best = _score(ranked[i].quality, direction)  # the group is sorted best first
        if group_best < best_before:
            on.extend(p for p in ranked[i:j] if _score(p.quality, direction) == group_best)
            best_before = group_best
        i = j
    on_ids = {p.variant_id for p in on}
    entries = [Entry(p, True) for p in on]
    for p in ranked:
        if p.variant_id not in on_ids:
            s = _score(p.quality, direction)
            entries.append(Entry(p, False, next(f for f in on if _score(f.quality, direction) <= s)))
    entries += [Entry(p, False) for p in sorted(pts, key=lambda p: _order(p, direction))
                if p.source == "reported" and not include_reported]
    return Frontier(device, direction, tuple(entries))


def _distinct_frontier(points: Sequence[Point], direction: str, include_reported: bool) -> list[Point]:
    """The frontier with exact duplicates dropped (the first in frontier order kept): along it latency strictly
    increases and quality strictly improves."""
    out: list[Point] = []
    for p in frontier(points, direction, include_reported=include_reported).frontier:
        if not out or out[-1].latency_ms != p.latency_ms:
            out.append(p)
    return out


def iso_latency_table(points: Iterable[Point], budgets: Iterable[float] | None, direction: str, *,
                      include_reported: bool = False) -> tuple[IsoRow, ...]:
    """For each latency budget (ms), the best-quality variant with latency <= budget (None where nothing fits).

    Budgets keep the order given; None means the distinct latencies of the points, ascending.

    >>> pts = [Point("a", "a", 10.0, 120.0, "d"), Point("b", "b", 14.0, 60.0, "d")]
    >>> [(r.threshold, r.point and r.point.variant_id) for r in iso_latency_table(pts, [50, 100, 200], "lower")]
    [(50.0, None), (100.0, 'b'), (200.0, 'a')]
    """
    pts = list(points)
    direction = check_direction(direction)
    front = _distinct_frontier(pts, direction, include_reported)
    if budgets is None:
        budgets = sorted({p.latency_ms for p in _eligible(pts, include_reported)})
    latencies = [p.latency_ms for p in front]
    rows = []
    for b in budgets:
        b = _threshold(b, "latency budget")
        k = bisect.bisect_right(latencies, b)
        rows.append(IsoRow(b, front[k - 1] if k else None))
    return tuple(rows)


def iso_quality_table(points: Iterable[Point], levels: Iterable[float] | None, direction: str, *,
                      include_reported: bool = False) -> tuple[IsoRow, ...]:
    """For each quality level, the fastest variant reaching it (quality <= level when lower is better, >= when
    higher is better; None where nothing does). Levels keep the order given; None means the distinct qualities of
    the points, from the easiest level to the hardest.

    >>> pts = [Point("a", "a", 10.0, 120.0, "d"), Point("b", "b", 14.0, 60.0, "d")]
    >>> [(r.threshold, r.point and r.point.variant_id) for r in iso_quality_table(pts, [20, 12, 5], "lower")]
    [(20.0, 'b'), (12.0, 'a'), (5.0, None)]
    """
    pts = list(points)
    direction = check_direction(direction)
    front = _distinct_frontier(pts, direction, include_reported)
    if levels is None:
        levels = sorted({p.quality for p in _eligible(pts, include_reported)}, reverse=direction == "lower")
    neg_scores = [-_score(p.quality, direction) for p in front]  # strictly increasing along the frontier
    rows = []
    for level in levels:
        level = _threshold(level, "quality level")
        k = bisect.bisect_left(neg_scores, -_score(level, direction))
        rows.append(IsoRow(level, front[k] if k < len(front) else None))
    return tuple(rows)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _threshold(value: float, what: str) -> float:
    if not _is_number(value) or math.isnan(value):
        raise ParetoError(f"{what} must be a number, not {value!r}")
    return float(value)


def report(points: Iterable[Point], direction: str, metric: str, *, budgets: Iterable[float] | None = None,
           levels: Iterable[float] | None = None, include_reported: bool = False) -> tuple[DeviceReport, ...]:
    """One `DeviceReport` per device (sorted by device name): the frontier and both tables of its points."""
    direction = check_direction(direction)
    by_device: dict[str, list[Point]] = {}
    for p in points:
        by_device.setdefault(p.device, []).append(p)
    budgets = None if budgets is None else list(budgets)
    levels = None if levels is None else list(levels)
    return tuple(DeviceReport(device, metric, direction,
                              frontier(pts, direction, include_reported=include_reported),
                              iso_latency_table(pts, budgets, direction, include_reported=include_reported),
                              iso_quality_table(pts, levels, direction, include_reported=include_reported))
                 for device, pts in sorted(by_device.items()))


def point_dict(p: Point) -> dict[str, Any]:
    """A point as JSON-ready data."""
    return {"variant_id": p.variant_id, "label": p.label, "knobs": dict(p.knobs), "quality": p.quality,
            "quality_ci": list(p.quality_ci) if p.quality_ci else None, "latency_ms": p.latency_ms,
            "latency_p10_p90": list(p.latency_p10_p90) if p.latency_p10_p90 else None, "device": p.device,
            "source": p.source}


def to_dict(reports: Sequence[DeviceReport]) -> dict[str, Any]:
    """The reports as one JSON-ready document (schema `evalsuite.pareto/1`)."""
    def rows(table: tuple[IsoRow, ...], key: str) -> list[dict[str, Any]]:
        return [{key: r.threshold, "variant_id": r.point.variant_id if r.point else None} for r in table]

    return {"schema": "evalsuite.pareto/1", "devices": [
        {"device": r.device, "metric": r.metric, "direction": r.direction,
         "points": [{**point_dict(e.point), "status": e.status,
                     "dominated_by": e.dominated_by.variant_id if e.dominated_by else None}
                    for e in r.frontier.entries],
         "frontier": [p.variant_id for p in r.frontier.frontier],
         "iso_latency": rows(r.iso_latency, "budget_ms"), "iso_quality": rows(r.iso_quality, "level")}
        for r in reports]}


def to_json(reports: Sequence[DeviceReport]) -> str:
    """`to_dict` as JSON text: sorted keys, two-space indent (byte-identical for the same input); knob values that
    are not JSON types are written with str()."""
    return json.dumps(to_dict(reports), indent=2, sort_keys=True, default=str) + "\n"


def fmt_number(x: float) -> str:
    """Four significant digits, as the tables print numbers.

    >>> fmt_number(1234.5678), fmt_number(0.066149), fmt_number(2.0)
    ('1235', '0.06615', '2')
    """
    return f"{x:.4g}"


def knob_text(knobs: Mapping[str, Any]) -> str:
    """Knobs as `name=value` pairs, in name order.

    >>> knob_text({"steps": 4, "compression": "int8"})
    'compression=int8, steps=4'
    """
    return ", ".join(f"{k}={v}" for k, v in sorted(knobs.items()))


def _md(text: str) -> str:
    """A table cell's text: one line, `|` and `\\` escaped, and HTML escaped (Markdown renders raw HTML: a variant
    label must never become markup)."""
    return html.escape(" ".join(str(text).split()), quote=False).replace("\\", "\\\\").replace("|", "\\|")


def to_markdown(reports: Sequence[DeviceReport]) -> str:
    """The reports as Markdown: per device, the points (frontier first) and both tables.

    >>> pts = [Point("a", "a", 10.0, 120.0, "d"), Point("b", "b|x", 14.0, 60.0, "d")]
    >>> print(to_markdown(report(pts, "lower", "fid")).splitlines()[4])
    | b\\|x | b |  | 14 |  | 60 |  | frontier |
    """
    out: list[str] = []
    for r in reports:
        metric = _md(r.metric)
        out += [f"## {metric} against latency on {_md(r.device)} ({r.direction} is better)", "",
                f"| variant | id | knobs | {metric} | {metric} CI | median ms | p10-p90 ms | status |",
                "|---|---|---|---|---|---|---|---|"]
        for e in r.frontier.entries:
            p = e.point
            ci = f"{fmt_number(p.quality_ci[0])}-{fmt_number(p.quality_ci[1])}" if p.quality_ci else ""
            lat = (f"{fmt_number(p.latency_p10_p90[0])}-{fmt_number(p.latency_p10_p90[1])}"
                   if p.latency_p10_p90 else "")
            status = f"dominated by {_md(e.dominated_by.label)}" if e.dominated_by else e.status
            out.append(f"| {_md(p.label)} | {_md(p.variant_id)} | {_md(knob_text(p.knobs))} | "
                       f"{fmt_number(p.quality)} | {ci} | {fmt_number(p.latency_ms)} | {lat} | {status} |")
        for title, head, table in (("Best quality within a latency budget", "budget ms", r.iso_latency),
                                   (f"Fastest variant reaching a {metric} level", f"{metric} level", r.iso_quality)):
            out += ["", f"### {title}", "", f"| {head} | variant | {metric} | median ms |", "|---|---|---|---|"]
            for row in table:
                q = row.point
                out.append(f"| {fmt_number(row.threshold)} | " + (
                    f"{_md(q.label)} | {fmt_number(q.quality)} | {fmt_number(q.latency_ms)} |" if q else
                    "none | | |"))
        out.append("")
    return "\n".join(out)
