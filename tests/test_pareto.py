"""The Pareto report (issue 16): frontier and iso-tables against brute-force definitions on random points, the rules
(directions, devices, reported points, ties), the Markdown/JSON output and the figure (PNG, SVG, HTML fragment)."""

from __future__ import annotations

import doctest
import io
import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from evalsuite import pareto, pareto_plot
from evalsuite.pareto import (
    ParetoError,
    Point,
    frontier,
    iso_latency_table,
    iso_quality_table,
    report,
    to_json,
    to_markdown,
)
from evalsuite.pareto_plot import html_fragment, pareto_figure, render

# ---- brute force, written from the definitions (O(n^2)), independent of evalsuite.pareto ----


def at_least_as_good(a: float, b: float, direction: str) -> bool:
    return a <= b if direction == "lower" else a >= b


def strictly_better(a: float, b: float, direction: str) -> bool:
    return a < b if direction == "lower" else a > b


def dominates(a: Point, b: Point, direction: str) -> bool:
    return (a.latency_ms <= b.latency_ms and at_least_as_good(a.quality, b.quality, direction)
            and (a.latency_ms < b.latency_ms or strictly_better(a.quality, b.quality, direction)))


def brute_frontier(pts: list[Point], direction: str) -> set[str]:
    return {p.variant_id for p in pts if not any(dominates(o, p, direction) for o in pts)}


def cost(q: float, direction: str) -> float:
    return q if direction == "lower" else -q


def brute_iso_latency(pts: list[Point], budget: float, direction: str) -> str | None:
    fits = [p for p in pts if p.latency_ms <= budget]
    if not fits:
        return None
    return min(fits, key=lambda p: (cost(p.quality, direction), p.latency_ms, p.variant_id)).variant_id


def brute_iso_quality(pts: list[Point], level: float, direction: str) -> str | None:
    reach = [p for p in pts if at_least_as_good(p.quality, level, direction)]
    if not reach:
        return None
    return min(reach, key=lambda p: (p.latency_ms, cost(p.quality, direction), p.variant_id)).variant_id


def random_points(rng: np.random.Generator, device: str = "phone", reported: bool = True) -> list[Point]:
    """1-30 points; small integer grids make ties and duplicate latencies common; some exact duplicates."""
    n = int(rng.integers(1, 31))
    grid = rng.random() < 0.7
    pts: list[Point] = []
    for i in range(n):
        if grid:
            lat, q = float(rng.integers(1, 8)) * 10.0, float(rng.integers(0, 6)) / 2
        else:
            lat, q = float(rng.uniform(1, 100)), float(rng.normal(10, 3))
        if pts and rng.random() < 0.15:  # an exact duplicate of an earlier point
            src = pts[int(rng.integers(0, len(pts)))]
            lat, q = src.latency_ms, src.quality
        source = "reported" if reported and rng.random() < 0.15 else "measured"
        pts.append(Point(f"v{int(rng.integers(0, 10**6)):06d}-{i}", f"variant {i}", q, lat, device,
                         knobs={"steps": i}, source=source))
    rng.shuffle(pts)  # type: ignore[arg-type]
    return pts


SEEDS = range(300)


@pytest.mark.parametrize("direction", ["lower", "higher"])
def test_frontier_matches_brute_force(direction):
    for seed in SEEDS:
        pts = random_points(np.random.default_rng(seed))
        measured = [p for p in pts if p.source == "measured"]
        for include, pool in ((False, measured), (True, pts)):
            fr = frontier(pts, direction, include_reported=include)
            on = [p.variant_id for p in fr.frontier]
            assert set(on) == brute_frontier(pool, direction), seed
            assert len(on) == len(set(on))
            expected_order = sorted(fr.frontier, key=lambda p: (p.latency_ms, cost(p.quality, direction),
                                                                p.variant_id))
            assert list(fr.frontier) == expected_order
            assert sorted(e.point.variant_id for e in fr.entries) == sorted(p.variant_id for p in pts)
            frontier_pts = list(fr.frontier)
            for e in fr.entries:
                if e.on_frontier:
                    assert e.status == "frontier" and e.dominated_by is None
                elif e.point.source == "reported" and not include:
                    assert e.status == "reported" and e.dominated_by is None
                else:
                    assert e.status == "dominated"
                    d = e.dominated_by
                    assert d is not None and dominates(d, e.point, direction)
                    best = min((f for f in frontier_pts if at_least_as_good(f.quality, e.point.quality, direction)),
                               key=lambda f: (f.latency_ms, cost(f.quality, direction), f.variant_id))
                    assert d is best


@pytest.mark.parametrize("direction", ["lower", "higher"])
def test_iso_tables_match_brute_force(direction):
    for seed in SEEDS:
        rng = np.random.default_rng(10_000 + seed)
        pts = random_points(rng)
        measured = [p for p in pts if p.source == "measured"]
        lats = [p.latency_ms for p in pts]
        qs = [p.quality for p in pts]
        budgets = [min(lats) - 1, max(lats) + 1, *rng.uniform(0, 110, 5).tolist(), *lats[:3]]
        levels = [min(qs) - 1, max(qs) + 1, *rng.normal(10, 4, 5).tolist(), *qs[:3]]
        for include, pool in ((False, measured), (True, pts)):
            table = iso_latency_table(pts, budgets, direction, include_reported=include)
            assert [r.threshold for r in table] == budgets
            assert [r.point.variant_id if r.point else None for r in table] == \
                [brute_iso_latency(pool, b, direction) for b in budgets], seed
            table = iso_quality_table(pts, levels, direction, include_reported=include)
            assert [r.threshold for r in table] == levels
            assert [r.point.variant_id if r.point else None for r in table] == \
                [brute_iso_quality(pool, lv, direction) for lv in levels], seed
            # defaults: the distinct latencies (ascending) and qualities (easiest level first)
            default = iso_latency_table(pts, None, direction, include_reported=include)
            assert [r.threshold for r in default] == sorted({p.latency_ms for p in pool})
            assert all(r.point is not None for r in default)
            default = iso_quality_table(pts, None, direction, include_reported=include)
            assert [r.threshold for r in default] == sorted({p.quality for p in pool}, reverse=direction == "lower")
            assert [r.point.variant_id if r.point else None for r in default] == \
                [brute_iso_quality(pool, r.threshold, direction) for r in default]


def test_ties_equal_points_are_all_on_the_frontier_in_id_order():
    pts = [Point("b", "b", 5.0, 10.0, "d"), Point("a", "a", 5.0, 10.0, "d"), Point("c", "c", 5.0, 20.0, "d"),
           Point("e", "e", 4.0, 10.0, "d")]
    fr = frontier(pts, "higher")
    assert [p.variant_id for p in fr.frontier] == ["a", "b"]
    assert {e.point.variant_id: e.dominated_by.variant_id for e in fr.entries if e.dominated_by} == {"c": "a",
                                                                                                    "e": "a"}
    assert [r.point.variant_id for r in iso_latency_table(pts, [10, 25], "higher")] == ["a", "a"]
    assert [r.point.variant_id for r in iso_quality_table(pts, [5], "higher")] == ["a"]
    assert frontier(list(reversed(pts)), "higher") == fr  # input order never matters


@pytest.mark.parametrize("bad", ["up", "Lower", "", None, 1, "min"])
def test_direction_is_never_guessed(bad):
    pts = [Point("a", "a", 1.0, 1.0, "d")]
    for call in (lambda: frontier(pts, bad), lambda: iso_latency_table(pts, None, bad),
                 lambda: iso_quality_table(pts, None, bad), lambda: report(pts, bad, "fid"),
                 lambda: render(pts, bad, "fid"), lambda: pareto.check_direction(bad)):
        with pytest.raises(ParetoError, match="'lower' or 'higher'"):
            call()


def test_devices_are_never_mixed():
    a = random_points(np.random.default_rng(1), "iphone")
    b = random_points(np.random.default_rng(2), "mac")
    for call in (lambda: frontier(a + b, "lower"), lambda: iso_latency_table(a + b, None, "lower"),
                 lambda: iso_quality_table(a + b, None, "lower")):
        with pytest.raises(ParetoError, match="2 devices") as info:
            call()
        assert "report" in str(info.value)
    reports = report(b + a, "lower", "fid")
    assert [r.device for r in reports] == ["iphone", "mac"]
    for r, own in zip(reports, (a, b)):
        assert r.frontier == frontier(own, "lower")
        assert r.iso_latency == iso_latency_table(own, None, "lower")
        assert r.iso_quality == iso_quality_table(own, None, "lower")
        assert all(e.point.device == r.device for e in r.frontier.entries)


def test_reported_points_are_listed_but_not_on_the_frontier():
    pts = [Point("m1", "m1", 10.0, 100.0, "iphone"), Point("m2", "m2", 20.0, 50.0, "iphone"),
           Point("paper", "SnapGen", 2.0, 10.0, "iphone", source="reported")]
    fr = frontier(pts, "lower")
    assert [p.variant_id for p in fr.frontier] == ["m2", "m1"]
    assert [(e.point.variant_id, e.status) for e in fr.entries][-1] == ("paper", "reported")
    assert iso_latency_table(pts, [10, 1000], "lower")[0].point is None
    assert iso_quality_table(pts, [2.0], "lower")[0].point is None
    with_reported = frontier(pts, "lower", include_reported=True)
    assert [p.variant_id for p in with_reported.frontier] == ["paper"]
    only_reported = frontier(pts[2:], "lower")
    assert only_reported.frontier == () and iso_latency_table(pts[2:], None, "lower") == ()


def test_point_validation_and_duplicate_ids():
    for kwargs in ({"quality": math.nan}, {"quality": math.inf}, {"latency_ms": 0.0}, {"latency_ms": math.nan},
                   {"source": "paper"}, {"quality_ci": (2.0, 1.0)}, {"latency_p10_p90": (1.0, math.inf)},
                   {"quality": "12"}):
        args = {"variant_id": "x", "label": "x", "quality": 1.0, "latency_ms": 1.0, "device": "d", **kwargs}
        with pytest.raises(ParetoError):
            Point(**args)
    p = Point("x", "x", np.float32(1.5), np.int64(3), "d", quality_ci=(np.float32(1), 2))
    assert type(p.quality) is float and type(p.latency_ms) is float and p.quality_ci == (1.0, 2.0)
    with pytest.raises(ParetoError, match="appears twice"):
        frontier([Point("x", "x", 1.0, 1.0, "d"), Point("x", "y", 2.0, 2.0, "d")], "lower")
    with pytest.raises(ParetoError, match="latency budget"):
        iso_latency_table([p], [math.nan], "lower")
    with pytest.raises(ParetoError, match="no points"):
        frontier([], "lower")
    assert report([], "lower", "fid") == ()


def sample_points() -> list[Point]:
    return [Point("d-s4", "steps=4 fp16", 10.0, 120.0, "iPhone 16 Pro Max", knobs={"steps": 4, "compression": "fp16"},
                  quality_ci=(9.0, 11.5), latency_p10_p90=(110.0, 140.0)),
            Point("d-s2", "<script>alert('x')</script>", 14.0, 60.0, "iPhone 16 Pro Max",
                  knobs={"steps": 2, "note": "<b>&"}, quality_ci=(13.0, 15.0)),
            Point("d-s2-p4", "steps=2 palettize4 $x$ -->", 15.0, 70.0, "iPhone 16 Pro Max", knobs={"steps": 2}),
            Point("snapgen", "SnapGen", 8.0, 90.0, "iPhone 16 Pro Max", source="reported"),
            Point("d-s1", "steps=1 | fast", 25.0, 20.0, "host-torch", knobs={"steps": 1})]


def test_json_and_markdown():
    reports = report(sample_points(), "lower", "fid")
    text = to_json(reports)
    assert text == to_json(report(list(reversed(sample_points())), "lower", "fid"))
    doc = json.loads(text)
    assert doc["schema"] == "evalsuite.pareto/1"
    iphone = doc["devices"][1]
    assert iphone["device"] == "iPhone 16 Pro Max" and iphone["frontier"] == ["d-s2", "d-s4"]
    status = {p["variant_id"]: (p["status"], p["dominated_by"]) for p in iphone["points"]}
    assert status == {"d-s2": ("frontier", None), "d-s4": ("frontier", None), "d-s2-p4": ("dominated", "d-s2"),
                      "snapgen": ("reported", None)}
    assert iphone["iso_latency"][0] == {"budget_ms": 60.0, "variant_id": "d-s2"}
    md = to_markdown(reports)
    assert "(lower is better)" in md and "steps=1 \\| fast" in md and "dominated by" in md
    assert md.count("### Best quality within a latency budget") == 2
    hostile = [Point("<img src=x onerror=alert(1)>", "v<1>", 10.0, 120.0, "d & e")]
    md = to_markdown(report(hostile, "lower", "fid"))
    assert "<img" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md and "d &amp; e" in md


@pytest.mark.parametrize("module", [pareto, pareto_plot])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_png_and_svg():
    pts = sample_points()
    out = render(pts, "lower", "FID", log_x=True)
    img = Image.open(io.BytesIO(out.png))
    img.load()
    assert img.format == "PNG" and img.size == (2 * 640, 480)  # two devices, 6.4 x 4.8 in at 100 dpi
    root = ET.fromstring(out.svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    again = render(pts, "lower", "FID", log_x=True)
    assert again.svg == out.svg and again.png == out.png
    assert b"<dc:date>" not in out.svg
    one = render([p for p in pts if p.device == "host-torch"], "higher", "CLIPScore", dpi=50)
    assert Image.open(io.BytesIO(one.png)).size == (320, 240)
    fig = pareto_figure(pts, "lower", "FID")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "FID (lower is better)" and ax.get_title() == "host-torch"
    iphone = fig.axes[1]
    legend = [t.get_text() for t in iphone.get_legend().get_texts()]
    assert legend == ["Pareto frontier", "dominated", "SnapGen (reported)"]
    with pytest.raises(ParetoError, match="nothing to plot"):
        render([], "lower", "FID")


def test_html_fragment_escapes_and_has_tooltips():
    pts = sample_points()
    frag = html_fragment(pts, "lower", "FID <i>", id_prefix="cmp 1")
    assert "<script" not in frag.lower() and "&lt;script&gt;" in frag
    assert "<i>" not in frag and "&lt;b&gt;&amp;" in frag
    assert "<!--" not in frag and "<?xml" not in frag and "DOCTYPE" not in frag
    root = ET.fromstring(f"<div>{frag}</div>")  # well-formed: every tag closed, the inline SVG's namespaces declared
    ns = {"svg": "http://www.w3.org/2000/svg"}
    titles = {g.get("id"): g.find("svg:title", ns).text for g in root.iter("{http://www.w3.org/2000/svg}g")
              if g.find("svg:title", ns) is not None}
    assert len(titles) == len(pts) and all(k.startswith("cmp-1-") for k in titles)
    tip = next(t for t in titles.values() if t.startswith("steps=4 fp16"))
    assert "compression=fp16" in tip and "steps=4" in tip and "CI 9 to 11.5" in tip
    tables = root.findall(".//table")
    assert [t.get("class") for t in tables] == ["pareto-iso-latency", "pareto-iso-quality"] * 2
    assert frag == html_fragment(pts, "lower", "FID <i>", id_prefix="cmp 1")
