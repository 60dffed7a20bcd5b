"""The Pareto report of quality against on-device latency (issue 16): a standalone HTML page (`evalsuite pareto
--out`), the same figure as PNG/SVG, Markdown/JSON, and the sections the leaderboard (one per sweep and primary
metric) and `evalsuite compare` (runs with variant ids and timing records) show.

The page is one file that opens from file:// with no network: CSS inline, the figure an inline SVG (hover a point
for its knobs), no script. Every string from results, timing records or published.yaml is escaped (Jinja's
autoescape, and `evalsuite.pareto_plot.html_fragment` for the figure and the iso-tables).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite.errors import EvalsuiteError
from evalsuite.fsutil import atomic_write_bytes
from evalsuite.leaderboard import pareto_data
from evalsuite.leaderboard.pareto_data import Gathered, Quality
from evalsuite.pareto import DeviceReport, Point, fmt_number, knob_text, report, to_dict, to_json, to_markdown
from evalsuite.pareto_plot import Rendered, html_fragment, render


@dataclass
class ParetoView:
    """One quality axis against latency: the points (measured and, with --published, reported), per device."""

    quality: Quality
    points: list[Point]
    notes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    title: str = ""
    log_x: bool = False  # latency on a log scale (for variants orders of magnitude apart)

    @property
    def heading(self) -> str:
        """What the view shows, in words."""
        return self.title or f"{self.quality.label} against latency"

    def reports(self) -> tuple[DeviceReport, ...]:
        """Frontier and iso-tables per device (reported points drawn, never part of the frontier)."""
        return report(self.points, self.quality.direction, self.quality.label)

    def fragment(self, id_prefix: str = "pareto") -> str:
        """The figure (inline SVG with tooltips) and both tables per device, as escaped HTML."""
        return html_fragment(self.points, self.quality.direction, self.quality.label, id_prefix=id_prefix,
                             log_x=self.log_x)

    def figure(self) -> Rendered:
        """The figure as PNG and SVG bytes (for papers)."""
        return render(self.points, self.quality.direction, self.quality.label, log_x=self.log_x)

    def markdown(self) -> str:
        """Per device: every point with its status, and both tables; then the notes."""
        notes = "".join(f"- {n}\n" for n in self.notes)
        return to_markdown(self.reports()) + (f"\nLeft out:\n\n{notes}" if notes else "")

    def json(self) -> str:
        """`evalsuite.pareto/1` JSON (evalsuite.pareto.to_json)."""
        return to_json(self.reports())

    def to_dict(self) -> dict[str, Any]:
        """The JSON document as data, with the notes and sources."""
        return {**to_dict(self.reports()), "quality": self.quality.label, "notes": self.notes,
                "sources": self.sources}


def view_of(gathered: Gathered, *, published: bool = False, published_path: Path | None = None,
            device: str | None = None, title: str = "") -> ParetoView:
    """A view of gathered points; `published` overlays the papers' pairs on the same quality axis."""
    points = list(gathered.points)
    notes = list(gathered.notes)
    if published:
        reported = pareto_data.published_points(gathered.quality, {p.device for p in points}, published_path, notes)
        if device is not None:
            reported = [p for p in reported if p.device in {q.device for q in points}]
        if not reported:
            notes.append(f"no published pair reports {gathered.quality.label} (see pairs: in published.yaml)")
        points += reported
    return ParetoView(gathered.quality, points, notes, list(gathered.sources), title)


def from_store(store: str | Path, names: Sequence[str], quality: str, *, latency: str = "median_ms",
               device: str | None = None, published: bool = False, published_path: Path | None = None,
               log_x: bool = False) -> ParetoView:
    """The view `evalsuite pareto` shows: sweeps and runs of a store on one quality axis."""
    gathered = pareto_data.gather(store, names, quality, latency, device)
    view = view_of(gathered, published=published, published_path=published_path, device=device)
    view.log_x = log_x
    return view


# ------------------------------------------------------------------------------------------------ HTML
def _rows(view: ParetoView) -> list[dict[str, str]]:
    out = []
    for r in view.reports():
        for e in r.frontier.entries:
            p = e.point
            out.append({
                "device": p.device, "label": p.label, "variant_id": p.variant_id, "knobs": knob_text(p.knobs),
                "quality": fmt_number(p.quality), "latency": fmt_number(p.latency_ms),
                "ci": f"{fmt_number(p.quality_ci[0])} to {fmt_number(p.quality_ci[1])}" if p.quality_ci else "",
                "p10_p90": (f"{fmt_number(p.latency_p10_p90[0])} to {fmt_number(p.latency_p10_p90[1])}"
                            if p.latency_p10_p90 else ""),
                "status": (f"dominated by {e.dominated_by.label}" if e.dominated_by else
                           "reported, not reproduced" if p.source == "reported" else e.status),
                "kind": "reported" if p.source == "reported" else e.status})
    return out


def section_html(view: ParetoView, id_prefix: str, level: int = 2) -> str:
    """The view as a page section: heading, the figure with both tables, every point, and the notes."""
    from evalsuite.leaderboard.site import environment

    return environment().get_template("pareto_section.html.j2").render(
        view=view, fragment=view.fragment(id_prefix), rows=_rows(view), level=level, anchor=id_prefix)


def page_html(view: ParetoView, title: str = "evalsuite Pareto report") -> str:
    """A standalone page (CSS inline, no script, no network)."""
    from evalsuite.leaderboard.site import environment, static

    return environment().get_template("pareto.html.j2").render(
        title=title, css=static("site.css"), js=None, view=view, section=section_html(view, "pareto", level=2))


def write_page(view: ParetoView, path: str | Path, title: str = "evalsuite Pareto report") -> Path:
    """Write the standalone page atomically; returns its path."""
    return atomic_write_bytes(Path(path), page_html(view, title).encode())


def write_figure(view: ParetoView, png: str | Path | None = None, svg: str | Path | None = None) -> list[Path]:
    """Write the figure as PNG and/or SVG; returns the paths written."""
    rendered = view.figure()
    return [atomic_write_bytes(Path(p), data) for p, data in ((png, rendered.png), (svg, rendered.svg)) if p]


# ------------------------------------------------------------------------------------------------ sections
def primary_metrics(store: str | Path, run_ids: Sequence[str]) -> list[str]:
    """TASK.METRIC of each task's primary metric in these runs (as their results declare; else the first)."""
    from evalsuite.results import ResultsStore

    rs = ResultsStore(store)
    out: dict[str, str] = {}
    for rid in run_ids:
        try:
            docs = pareto_data._run_docs(rs, rid)
        except EvalsuiteError:
            continue
        for d in docs:
            primary = pareto_data._primary(d)
            if primary and d["task"] not in out:
                out[d["task"]] = f"{d['task']}.{primary}"
    return list(out.values())


@dataclass
class Section:
    """A Pareto section of the leaderboard or a comparison: its anchor, the view, or why there is none."""

    anchor: str
    heading: str
    view: ParetoView | None = None
    problem: str = ""

    def html(self, level: int = 2) -> str:
        """The rendered section (escaped; heading level `level`), or an empty string when there is nothing to
        draw."""
        return section_html(self.view, self.anchor, level) if self.view else ""

    def to_dict(self) -> dict[str, Any]:
        """The section as data (the view's JSON document, or the problem)."""
        return {"heading": self.heading, **({"report": self.view.to_dict()} if self.view else {}),
                **({"problem": self.problem} if self.problem else {})}


def _anchor(*parts: str) -> str:
    return "pareto-" + "-".join("".join(c if c.isalnum() else "-" for c in p) for p in parts)


def store_sections(store: str | Path) -> list[Section]:
    """One section per sweep of the store and primary metric of its tasks (a sweep with nothing to plot yet
    says why)."""
    out = []
    for sid in pareto_data.sweep_ids(store):
        try:
            runs = pareto_data.sweep_run_ids(store, sid)
        except EvalsuiteError as exc:
            out.append(Section(_anchor(sid), f"sweep {sid}", problem=exc.message))
            continue
        for metric in primary_metrics(store, runs) or ["(no results yet)"]:
            heading = f"sweep {sid}: {metric} against latency"
            try:
                view = view_of(pareto_data.sweep_points(store, sid, metric), title=heading)
                view.reports()  # a view with no points fails here, not while rendering
                out.append(Section(_anchor(sid, metric), heading, view))
            except (EvalsuiteError, ValueError, ImportError) as exc:
                out.append(Section(_anchor(sid, metric), heading, problem=getattr(exc, "message", str(exc))))
    return out


def runs_sections(store: str | Path, run_ids: Sequence[str]) -> list[Section]:
    """Sections for compared runs whose results carry variant ids with timing records of those ids (one per
    primary metric); none when fewer than two compared variants were timed."""
    out = []
    for metric in primary_metrics(store, run_ids):
        try:
            gathered = pareto_data.run_points(store, run_ids, metric)
        except EvalsuiteError:
            continue
        if len({p.variant_id for p in gathered.points}) >= 2:
            heading = f"{metric} against latency"
            out.append(Section(_anchor(metric), heading, view_of(gathered, title=heading)))
    return out


def sections_markdown(sections: Sequence[Section]) -> str:
    """Markdown of sections under one heading (empty when there are none)."""
    if not sections:
        return ""
    return "\n## Quality at a latency\n\n" + "".join(
        s.view.markdown() if s.view else f"{s.heading}: nothing to draw yet ({s.problem})\n\n" for s in sections)


def sections_json(sections: Sequence[Section]) -> list[dict[str, Any]]:
    """JSON-ready data of sections."""
    return [json.loads(json.dumps(s.to_dict(), default=str)) for s in sections]
