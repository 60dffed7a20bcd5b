"""`evalsuite pareto`: quality against on-device latency for sweeps and runs (the page is built by
evalsuite.leaderboard.pareto_page; this module only parses and prints)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from evalsuite.cli.common import JsonOpt, StoreOpt, _store, _table, app, err, friendly, out


@app.command()
@friendly
def pareto(
    sources: list[str] = typer.Argument(..., metavar="SWEEP_OR_RUN...",
                                        help="Sweep ids (<store>/sweeps/) and/or run ids."),
    quality: str = typer.Option(..., "--quality", help="METRIC, TASK.METRIC or TASK (its primary "
                                "metric), e.g. psnr or variant-fidelity.psnr; better is the direction the task "
                                "declares."),
    latency: str = typer.Option("median_ms", "--latency", help="Latency statistic of the timing records: "
                                "median_ms or trimmed_mean_ms."),
    device: Optional[str] = typer.Option(None, "--device", help="Only this device (its name, or part of it)."),
    store: Optional[Path] = StoreOpt,
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write a standalone HTML report here."),
    png: Optional[Path] = typer.Option(None, "--png", help="Write the figure as PNG here."),
    svg: Optional[Path] = typer.Option(None, "--svg", help="Write the figure as SVG here."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the report as Markdown."),
    published: bool = typer.Option(False, "--published", help="Overlay the papers' reported (quality, latency) "
                                   "pairs of published.yaml (drawn as reported, never on the frontier)."),
    published_file: Optional[Path] = typer.Option(None, "--published-file", help="Another published.yaml."),
    log_x: bool = typer.Option(False, "--log-latency", help="Latency on a log scale."),
    as_json: bool = JsonOpt,
) -> None:
    """The Pareto frontier of quality against latency per device, with the iso-latency and iso-quality tables."""
    from evalsuite.leaderboard.pareto_page import from_store, write_figure, write_page

    view = from_store(_store(store), sources, quality, latency=latency, device=device,
                      published=published or published_file is not None, published_path=published_file,
                      log_x=log_x)
    for note in view.notes:
        err.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    written = ([write_page(view, out_file)] if out_file else []) + write_figure(view, png, svg)
    for path in written:
        err.print(f"written: {path}", markup=False, highlight=False, soft_wrap=True)
    if as_json:
        sys.stdout.write(view.json())
    elif markdown:
        sys.stdout.write(view.markdown())
    elif not written:
        for r in view.reports():
            _table(f"{r.metric} ({r.direction} is better) against {latency} on {r.device}",
                   ["variant", "knobs", r.metric, "ms", "status"],
                   [[e.point.label, ", ".join(f"{k}={v}" for k, v in sorted(e.point.knobs.items())),
                     e.point.quality, e.point.latency_ms,
                     f"dominated by {e.dominated_by.label}" if e.dominated_by else e.status]
                    for e in r.frontier.entries])
        out.print("write the page with --out report.html, the figure with --png/--svg", soft_wrap=True)
