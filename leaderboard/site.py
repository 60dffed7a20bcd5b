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
from evalsuite.leaderboard import charts, device_detail
from evalsuite.leaderboard.data import (
    Cell,
    Column,
    Row,
    build_tables,
    load_claims,
    load_published,
    measured,
    provenance_href,
)
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


DEVICE_COLUMNS = [
    Column("on-device", "on-device", "median_ms", "lower", "median latency of one call (measured); the cell's note "
           "holds its 95% bootstrap CI", "ms"),
    Column("on-device", "on-device", "p90_ms", "lower", "90th percentile latency (measured)", "ms"),
    Column("on-device", "on-device", "p99_ms", "lower", "99th percentile latency (measured)", "ms"),
    Column("on-device", "on-device", "throughput", "higher", "throughput (measured)", ""),
    Column("on-device", "on-device", "cold_start_ms", "lower", "compile + first load + first prediction, the parts "
           "measured (the iPhone app measures all three)", "ms"),
    Column("on-device", "on-device", "peak_memory_mb", "lower", "peak memory of the process while predicting", "MiB"),
    Column("on-device", "on-device", "last_window_ms", "lower", "sustained runs: median latency of the last window",
           "ms"),
]


def _device_section(store: Path) -> tuple[list[Row], list[Column], list[str], list[str]]:
    """Rows for the on-device table (latest record per model/variant/device) and one chart per series; a point is
    red (and a series a regression) only beyond the threshold and the records' bootstrap CIs (`regression`)."""
    recs = device_records.load_all(store)
    series: dict[tuple, list] = defaultdict(list)
    for rec in recs:
        series[(rec.device_model, rec.model, rec.variant, rec.backend)].append(rec)
    rows, chart_svgs, flagged = [], [], []
    for (device, model, variant, backend), items in sorted(series.items()):
        latest = items[-1]
        key = f"device:{device}|{model}|{variant}|{backend}"
        label = f"{model} · {variant} · {device} ({backend})"
        lo, hi = latest.median_ci_ms or (latest.median_ms, latest.median_ms)
        n, rel = latest.iterations, f"release {latest.release}"
        cells = {
            "on-device/median_ms": Cell(latest.median_ms, n, note=f"95% CI [{lo:.4g}, {hi:.4g}] ms; {rel}"),
            "on-device/p90_ms": Cell(latest.p90_ms, n, note=rel),
            "on-device/p99_ms": Cell(latest.p99_ms, n, note=rel),
            "on-device/throughput": Cell(float(latest.throughput or 0.0), n, note=latest.throughput_unit)}
        cold = [v for v in (latest.compile_ms, latest.load_ms, latest.first_predict_ms) if v is not None]
        if cold:
            cells["on-device/cold_start_ms"] = Cell(sum(cold), None, note=(
                f"compile {latest.compile_ms}, first load {latest.load_ms}, first prediction "
                f"{latest.first_predict_ms} ms; {rel}"))
        if latest.peak_memory_mb is not None:
            cells["on-device/peak_memory_mb"] = Cell(latest.peak_memory_mb, None, note=rel)
        if latest.windows:
            cells["on-device/last_window_ms"] = Cell(latest.windows[-1]["median_ms"],
                                                     latest.windows[-1]["end"] - latest.windows[-1]["start"],
                                                     note=f"{latest.duration_s or 0:.0f} s sustained; {rel}")
        rows.append(Row(key, label, "measured", latest.model_hash, cells=cells))
        values = [r.median_ms for r in items]
        cis = [r.median_ci_ms or (r.median_ms, r.median_ms) for r in items]
        flags = regression.violations(values, cis=cis)
        regressed = regression.is_regression(values, cis=cis)
        if regressed:
            flagged.append(label)
        chart_svgs.append(charts.series_svg(label, [r.release for r in items], values, flags, "ms", regressed))
    used = {key for row in rows for key in row.cells}  # a column no record fills (no sustained run yet) is left out
    return rows, [c for c in DEVICE_COLUMNS if c.key in used], chart_svgs, flagged


def build(store_dir: str | Path, out_dir: str | Path, published_path: str | Path | None = None) -> Path:
    """Write the site into `out_dir` (created); returns the path of index.html."""
    store = ResultsStore(store_dir)
    out = Path(out_dir)
    published = load_published(Path(published_path) if published_path else None)
    claims = load_claims(Path(published_path) if published_path else None)
    dev_rows, dev_cols, chart_svgs, flagged = _device_section(store.root)
    tables = build_tables(store, published, dev_rows, dev_cols, claims)
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
        device_detail=device_detail.section(store.root), device_columns=device_detail.COLUMNS,
        stream=stream_section(store.root),
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), version=evalsuite.__version__,
        n_results=len(docs), n_published=len(published), threshold=regression.DEFAULT_THRESHOLD,
        window=regression.DEFAULT_WINDOW, consecutive=regression.DEFAULT_CONSECUTIVE)
    return atomic_write_bytes(out / "index.html", index.encode(), root=out)


def _pretty(obj) -> str:
    return json.dumps(encode_nonfinite(obj), indent=1, default=str)
