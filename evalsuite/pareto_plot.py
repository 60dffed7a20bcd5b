"""The Pareto figure of quality against latency (issue 16): one panel per device, as PNG and SVG bytes for papers and
as an HTML fragment (inline SVG with tooltips, plus the iso-latency and iso-quality tables) for the leaderboard and
`compare` pages.

What is drawn (rules from evalsuite.pareto): every point at (median latency, quality); a vertical bar for the
quality CI and a horizontal bar for the p10-p90 latency where known; the frontier as a step line (the best quality
reachable within each latency); frontier points filled, dominated points hollow and grey, reported (published)
points as stars named "(reported)" in the legend. The y label names the metric and its direction.

Output is deterministic: a fixed size (6.4 x 4.8 inches per device) and dpi, no date in the SVG, a fixed SVG hash
salt (matplotlib's element ids are otherwise random), text drawn as paths (no font needed to view it).
"""

from __future__ import annotations

import html
import io
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from evalsuite.pareto import DeviceReport, IsoRow, ParetoError, Point, fmt_number, knob_text, report

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

PANEL_INCHES = (6.4, 4.8)
DPI = 100
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
RC: dict[RcKeyType, Any] = {"svg.hashsalt": "evalsuite-pareto", "svg.fonttype": "path", "font.family": "DejaVu Sans",
      "axes.unicode_minus": True, "text.usetex": False}
COLORS = {"frontier": "#1f77b4", "dominated": "#9e9e9e", "reported": "#d62728"}


@dataclass(frozen=True)
class Rendered:
    """The figure as PNG and SVG bytes."""

    png: bytes
    svg: bytes


def _text(s: object) -> str:
    """A user string as matplotlib shows it literally (a `$` would otherwise start mathtext)."""
    return str(s).replace("$", r"\$")


def _gid(prefix: str, panel: int, index: int) -> str:
    return f"{prefix}-{panel}-{index}"


def _reports(points: Iterable[Point], direction: str, metric: str, include_reported: bool,
             budgets: Iterable[float] | None = None,
             levels: Iterable[float] | None = None) -> tuple[DeviceReport, ...]:
    reports = report(points, direction, metric, budgets=budgets, levels=levels, include_reported=include_reported)
    if not reports:
        raise ParetoError("nothing to plot: no points given")
    return reports


def _draw_panel(ax: Axes, r: DeviceReport, panel: int, log_x: bool, prefix: str) -> None:
    handles: list[Line2D] = []
    labels: list[str] = []
    front = r.frontier.frontier
    if front:
        ax.step([p.latency_ms for p in front], [p.quality for p in front], where="post", color=COLORS["frontier"],
                linewidth=1.5, zorder=2)
        handles.append(Line2D([], [], color=COLORS["frontier"], linewidth=1.5, marker="o", markersize=6))
        labels.append("Pareto frontier")
    seen_dominated = False
    for i, e in enumerate(r.frontier.entries):
        p = e.point
        kind = e.status if e.point.source == "measured" else "reported"
        color = COLORS[kind]
        if p.quality_ci:
            ax.vlines(p.latency_ms, p.quality_ci[0], p.quality_ci[1], colors=color, linewidth=1, zorder=1)
        if p.latency_p10_p90:
            ax.hlines(p.quality, p.latency_p10_p90[0], p.latency_p10_p90[1], colors=color, linewidth=1, zorder=1)
        style = _marker(kind)
        (mark,) = ax.plot([p.latency_ms], [p.quality], linestyle="none", gid=_gid(prefix, panel, i), zorder=3,
                          **style)
        if kind == "reported":
            handles.append(mark)
            labels.append(f"{_text(p.label)} (reported)")
        elif kind == "dominated" and not seen_dominated:
            seen_dominated = True
            handles.append(mark)
            labels.append("dominated")
        if e.on_frontier or kind == "reported":
            ax.annotate(_text(p.label), (p.latency_ms, p.quality), xytext=(4, 4), textcoords="offset points",
                        fontsize=7, color=color)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("latency, median ms (bars: p10-p90)")
    ax.set_ylabel(f"{_text(r.metric)} ({r.direction} is better)")
    ax.set_title(_text(r.device))
    ax.grid(True, alpha=0.3)
    if handles:
        ax.legend(handles, labels, fontsize=7, loc="best")


def _marker(kind: str) -> dict[str, Any]:
    color = COLORS[kind]
    if kind == "reported":
        return {"marker": "*", "markersize": 11, "color": color, "markeredgecolor": "black", "markeredgewidth": 0.5}
    if kind == "dominated":
        return {"marker": "o", "markersize": 6, "color": color, "markerfacecolor": "none"}
    return {"marker": "o", "markersize": 6, "color": color}


def _figure(reports: Sequence[DeviceReport], log_x: bool, prefix: str, dpi: int) -> Figure:
    fig = Figure(figsize=(PANEL_INCHES[0] * len(reports), PANEL_INCHES[1]), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(reports), squeeze=False)[0]
    for panel, (ax, r) in enumerate(zip(axes, reports)):
        _draw_panel(ax, r, panel, log_x, prefix)
    return fig


def pareto_figure(points: Iterable[Point], direction: str, metric: str, *, log_x: bool = False,
                  include_reported: bool = False, dpi: int = DPI) -> Figure:
    """The figure (a matplotlib `Figure` on the Agg canvas; pyplot is never used), one panel per device in device
    name order. Draw it inside `matplotlib.rc_context(RC)` for the same look as `render`."""
    with matplotlib.rc_context(RC):
        return _figure(_reports(points, direction, metric, include_reported), log_x, "pareto", dpi)


def _save(fig: Figure, fmt: str, dpi: int) -> bytes:
    buf = io.BytesIO()
    metadata: dict[str, str | None] = {"Date": None} if fmt == "svg" else {"Software": None}
    fig.savefig(buf, format=fmt, dpi=dpi, metadata=metadata)
    return buf.getvalue()


def render(points: Iterable[Point], direction: str, metric: str, *, log_x: bool = False,
           include_reported: bool = False, dpi: int = DPI) -> Rendered:
    """The figure as PNG and SVG bytes: 640 x 480 pixels per device at the default dpi; the same input gives the
    same bytes."""
    reports = _reports(points, direction, metric, include_reported)
    with matplotlib.rc_context(RC):
        fig = _figure(reports, log_x, "pareto", dpi)
        return Rendered(png=_save(fig, "png", dpi), svg=_save(fig, "svg", dpi))


def tooltip(p: Point, metric: str) -> str:
    """The hover text of a point: label, variant id, quality (CI), latency (p10-p90), knobs one per line.

    >>> print(tooltip(Point("v1", "4 steps", 12.5, 80.0, "iphone", knobs={"steps": 4}), "fid"))
    4 steps (measured)
    variant: v1
    fid: 12.5
    latency: 80 ms
    steps=4
    """
    q = fmt_number(p.quality)
    if p.quality_ci:
        q += f" (CI {fmt_number(p.quality_ci[0])} to {fmt_number(p.quality_ci[1])})"
    lat = f"{fmt_number(p.latency_ms)} ms"
    if p.latency_p10_p90:
        lat += f" (p10-p90 {fmt_number(p.latency_p10_p90[0])} to {fmt_number(p.latency_p10_p90[1])})"
    lines = [f"{p.label} ({p.source})", f"variant: {p.variant_id}", f"{metric}: {q}", f"latency: {lat}"]
    return "\n".join(lines + [f"{k}={v}" for k, v in sorted(p.knobs.items())])


def _inline_svg(svg: bytes, reports: Sequence[DeviceReport], prefix: str) -> str:
    """The SVG re-serialised for inlining in HTML: no XML declaration, doctype, metadata or comments (matplotlib
    writes the drawn text as comments), and a `<title>` tooltip on each point's group."""
    root = ET.fromstring(svg)  # the default parser drops comments; XML escaping is ElementTree's on the way out
    tips = {_gid(prefix, panel, i): tooltip(e.point, r.metric)
            for panel, r in enumerate(reports) for i, e in enumerate(r.frontier.entries)}
    for el in root.iter(f"{{{SVG_NS}}}g"):
        tip = tips.get(el.get("id", ""))
        if tip is not None:
            title = ET.Element(f"{{{SVG_NS}}}title")
            title.text = tip
            el.insert(0, title)
    for meta in root.findall(f"{{{SVG_NS}}}metadata"):
        root.remove(meta)
    root.set("class", "evalsuite-pareto-plot")
    root.set("style", "max-width: 100%; height: auto")
    root.set("role", "img")
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    return ET.tostring(root, encoding="unicode")


def _table(caption: str, head: Sequence[str], rows: Sequence[Sequence[str]], cls: str) -> str:
    e = html.escape
    out = [f'<table class="{e(cls)}">', f"<caption>{e(caption)}</caption>",
           "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead>", "<tbody>"]
    out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
    return "\n".join(out + ["</tbody>", "</table>"])


def _iso_rows(table: Sequence[IsoRow]) -> list[list[str]]:
    return [[fmt_number(r.threshold)] + ([r.point.label, r.point.variant_id, knob_text(r.point.knobs),
                                          fmt_number(r.point.quality), fmt_number(r.point.latency_ms)]
                                         if r.point else ["none", "", "", "", ""]) for r in table]


def html_fragment(points: Iterable[Point], direction: str, metric: str, *, log_x: bool = False,
                  include_reported: bool = False, budgets: Iterable[float] | None = None,
                  levels: Iterable[float] | None = None, id_prefix: str = "pareto") -> str:
    """A self-contained HTML fragment: `<figure>` with the inline SVG (hover a point for its knobs) and, per device,
    the iso-latency and iso-quality tables. Every user string is escaped; `id_prefix` keeps element ids unique when
    a page holds several fragments."""
    reports = _reports(points, direction, metric, include_reported, budgets, levels)
    prefix = "".join(c if c.isalnum() or c in "-_" else "-" for c in id_prefix) or "pareto"
    with matplotlib.rc_context(RC):
        svg = _save(_figure(reports, log_x, prefix, DPI), "svg", DPI)
    e = html.escape
    parts = [f'<figure class="evalsuite-pareto" id="{e(prefix)}">', _inline_svg(svg, reports, prefix),
             f"<figcaption>{e(metric)} ({e(direction)} is better) against median latency; lines: Pareto frontier; "
             "hollow grey: dominated; stars: reported (published, not measured here)</figcaption>", "</figure>"]
    head = ["variant", "id", "knobs", metric, "median ms"]
    for r in reports:
        parts.append(f'<section class="evalsuite-pareto-tables" data-device="{e(r.device)}">')
        parts.append(f"<h4>{e(r.device)}</h4>")
        parts.append(_table(f"Best {metric} within a latency budget on {r.device}", ["budget ms"] + head,
                            _iso_rows(r.iso_latency), "pareto-iso-latency"))
        parts.append(_table(f"Fastest variant reaching a {metric} level on {r.device}", [f"{metric} level"] + head,
                            _iso_rows(r.iso_quality), "pareto-iso-quality"))
        parts.append("</section>")
    return "\n".join(parts) + "\n"
