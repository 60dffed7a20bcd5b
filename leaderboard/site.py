"""`evalsuite leaderboard build`: every stored result, the published figures and the on-device history as one
static folder (index.html + provenance pages), CSS and JS inlined, no external assets: it opens from file://."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

import evalsuite
from evalsuite.device import records as device_records
from evalsuite.device import regression
from evalsuite.fsutil import atomic_write_bytes
from evalsuite.leaderboard import charts
from evalsuite.leaderboard.data import Cell, Column, Row, build_tables, load_published, measured, provenance_href
from evalsuite.leaderboard.pareto_page import store_sections
from evalsuite.leaderboard.stream_section import section as stream_section
from evalsuite.results import ResultsStore, encode_nonfinite

HERE = Path(__file__).resolve().parent


def fmt(value: float) -> str:
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.1f}"
    return f"{value:.3e}"


def sortkey(value: float) -> str:
    """data-v attribute: parseFloat-able (Infinity included)."""
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["j2", "html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = fmt
    env.filters["sortkey"] = sortkey
    return env


def static(name: str) -> str:
    return (HERE / "static" / name).read_text()


def _device_section(store: Path) -> tuple[list[Row], list[Column], list[str], list[str]]:
    """Rows for the on-device table (latest record per model/variant/device) and one chart per series."""
    recs = device_records.load_all(store)
    series: dict[tuple, list] = defaultdict(list)
    for rec in recs:
        series[(rec.device_model, rec.model, rec.variant, rec.backend)].append(rec)
    rows, chart_svgs, flagged = [], [], []
    cols = [Column("on-device", "on-device", "median_ms", "lower", "median latency of one call (measured)", "ms"),
            Column("on-device", "on-device", "throughput", "higher", "throughput (measured)", "")]
    for (device, model, variant, backend), items in sorted(series.items()):
        latest = items[-1]
        key = f"device:{device}|{model}|{variant}|{backend}"
        label = f"{model} · {variant} · {device} ({backend})"
        rows.append(Row(key, label, "measured", latest.model_hash, cells={
            "on-device/median_ms": Cell(latest.median_ms, latest.iterations, note=f"release {latest.release}"),
            "on-device/throughput": Cell(float(latest.throughput or 0.0), latest.iterations,
                                         note=latest.throughput_unit)}))
        values = [r.median_ms for r in items]
        flags = regression.violations(values)
        regressed = regression.is_regression(values)
        if regressed:
            flagged.append(label)
        chart_svgs.append(charts.series_svg(label, [r.release for r in items], values, flags, "ms", regressed))
    return rows, cols, chart_svgs, flagged


def build(store_dir: str | Path, out_dir: str | Path, published_path: str | Path | None = None) -> Path:
    """Write the site into `out_dir` (created); returns the path of index.html."""
    store = ResultsStore(store_dir)
    out = Path(out_dir)
    published = load_published(Path(published_path) if published_path else None)
    dev_rows, dev_cols, chart_svgs, flagged = _device_section(store.root)
    tables = build_tables(store, published, dev_rows, dev_cols)
    env = environment()
    css, js = static("site.css"), static("site.js")
    docs, _ = measured(store)
    page = env.get_template("provenance.html.j2")
    for doc in docs:
        html = page.render(title=f"{doc['task']} · {doc['model']['spec']}", css=css, js=None, doc=doc,
                           metrics=_pretty(doc.get("metrics", {})), provenance=_pretty(doc.get("provenance", {})),
                           details=_pretty(doc.get("details", {})))
        atomic_write_bytes(out / provenance_href(doc["run_id"], doc["task"]), html.encode(), root=out)
    index = env.get_template("index.html.j2").render(
        title="evalsuite leaderboard", css=css, js=js, tables=tables, charts=chart_svgs, regressions=flagged,
        pareto=store_sections(store.root),
        stream=stream_section(store.root),
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), version=evalsuite.__version__,
        n_results=len(docs), n_published=len(published), threshold=regression.DEFAULT_THRESHOLD,
        window=regression.DEFAULT_WINDOW, consecutive=regression.DEFAULT_CONSECUTIVE)
    return atomic_write_bytes(out / "index.html", index.encode(), root=out)


def _pretty(obj) -> str:
    return json.dumps(encode_nonfinite(obj), indent=1, default=str)
