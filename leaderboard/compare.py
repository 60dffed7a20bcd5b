"""`evalsuite compare`: per-task deltas between runs (the first is the baseline) with 95% bootstrap confidence
intervals wherever per-sample results exist, plots, samples of the same prompt and seed side by side, and quality
against latency where the compared variants were timed (evalsuite.leaderboard.pareto_page)."""

from __future__ import annotations

import base64
import io
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evalsuite import sample_count
from evalsuite.bootstrap import STATISTICS, DeltaCI, bootstrap_ci, bootstrap_delta, replicate_delta
from evalsuite.errors import InputError
from evalsuite.fsutil import atomic_write_bytes, inside
from evalsuite.leaderboard.pareto_page import Section, runs_sections, sections_json, sections_markdown
from evalsuite.results import ResultsStore, StoreWarning, encode_nonfinite
from evalsuite.samples import SampleStore

NO_CI = "no CI: aggregate only"


@dataclass
class CompareCell:
    run_id: str
    value: float | None
    delta: float | None = None
    ci: DeltaCI | None = None
    ci_text: str = ""

    @property
    def significant(self) -> bool:
        return self.ci is not None and self.ci.excludes_zero


@dataclass
class CompareRow:
    task: str
    metric: str
    direction: str
    cells: list[CompareCell]


@dataclass
class Report:
    run_ids: list[str]
    models: dict[str, str]
    rows: list[CompareRow]
    plots: dict[str, bytes] = field(default_factory=dict)
    samples: list[dict] = field(default_factory=list)
    n_boot: int = 2000
    seed: int = 0
    pareto: list[Section] = field(default_factory=list)  # quality against latency, where variants were timed

    def to_json(self) -> dict:
        return encode_nonfinite({
            "runs": [{"run_id": r, "model": self.models[r]} for r in self.run_ids], "n_boot": self.n_boot,
            "seed": self.seed,
            "rows": [{"task": row.task, "metric": row.metric, "direction": row.direction,
                      "cells": [{"run_id": c.run_id, "value": c.value, "delta": c.delta,
                                 "ci": [c.ci.low, c.ci.high] if c.ci else None, "paired": c.ci.paired if c.ci else None,
                                 "significant": c.significant, "note": c.ci_text} for c in row.cells]}
                     for row in self.rows], "pareto": sections_json(self.pareto)})


def _per_sample(doc: dict, metric: str) -> tuple[np.ndarray | None, list | None, str]:
    """(values, sample names, why-not) for the metric's declared per-sample list."""
    info = doc.get("metric_info", {}).get(metric, {})
    per = doc.get("per_sample") or {}
    key = info.get("per_sample") or (metric if metric in per else None)
    if not isinstance(key, str) or key not in per:
        return None, None, NO_CI
    try:
        values = np.asarray([float(v) for v in per[key]], dtype=np.float64)
    except (TypeError, ValueError):
        return None, None, "no CI: per-sample values are not numbers"
    if not np.isfinite(values).all():
        return None, None, "no CI: non-finite per-sample values"
    names = per.get("name")
    if isinstance(names, list) and len(names) == len(values) and all(isinstance(n, str) for n in names):
        return values, list(names), ""
    return values, None, ""


def _statistic(doc: dict, metric: str):
    info = doc.get("metric_info", {}).get(metric, {})
    return STATISTICS[info.get("aggregate", "mean")](data_range=info.get("data_range", 1.0))


def _sampling_replicates(doc: dict) -> np.ndarray | None:
    """The bootstrap replicates a result stored for its sampling interval (FID's `-o fid.bootstrap=N`), or None."""
    interval = (doc.get("details") or {}).get("sampling_interval")
    reps = interval.get("replicates") if isinstance(interval, dict) else None
    if not isinstance(reps, list):
        return None
    try:
        values = np.asarray([float(v) for v in reps], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return values if len(values) >= 2 and np.isfinite(values).all() else None


def _sampling_delta_ci(base: dict, other: dict, metric: str) -> tuple[DeltaCI | None, str]:
    """A difference's sampling interval from both runs' stored replicates (a metric without per-sample values)."""
    a, b = _sampling_replicates(base), _sampling_replicates(other)
    if a is None and b is None:
        return None, NO_CI
    if a is None or b is None:
        return None, "no CI: only one run has a sampling interval (score both with -o bootstrap=N)"
    delta = float(other["metrics"][metric]) - float(base["metrics"][metric])
    return replicate_delta(a, b, delta), ""


def _delta_ci(base: dict, other: dict, metric: str, n_boot: int, seed: int) -> tuple[DeltaCI | None, str]:
    a, names_a, why_a = _per_sample(base, metric)
    b, names_b, why_b = _per_sample(other, metric)
    if a is None and b is None and why_a == NO_CI and why_b == NO_CI:
        return _sampling_delta_ci(base, other, metric)
    if a is None or b is None:
        return None, why_a or why_b
    if len(a) < 2 or len(b) < 2:
        return None, "no CI: fewer than 2 samples"
    try:
        stat = _statistic(base, metric)
    except (KeyError, TypeError, ValueError):
        return None, "no CI: unknown aggregate"
    if names_a and names_b and sorted(names_a) == sorted(names_b) and len(set(names_a)) == len(names_a):
        order = {n: i for i, n in enumerate(names_b)}
        b = b[[order[n] for n in names_a]]  # same samples: paired resampling
        return bootstrap_delta(a, b, stat, paired=True, n_boot=n_boot, seed=seed), ""
    return bootstrap_delta(a, b, stat, paired=False, n_boot=n_boot, seed=seed), ""


def compare(store_dir: str | Path, run_ids: list[str], *, n_boot: int = 2000, seed: int = 0) -> Report:
    store = ResultsStore(store_dir)
    runs = {}
    for rid in run_ids:
        docs = store.load_run(rid)
        runs[docs[0]["run_id"] if docs else rid] = {d["task"]: d for d in docs if d["status"] == "ok"}
    ids = list(runs)
    models = {rid: store.run_info(rid)["model_spec"] or "?" for rid in ids}  # the run's model, from its manifest
    rows: list[CompareRow] = []
    tasks = [t for t in dict.fromkeys(t for rid in ids for t in runs[rid]) if sum(t in runs[r] for r in ids) >= 2]
    if not tasks:
        raise InputError(f"runs {', '.join(run_ids)} share no successfully scored task",
                         "compare runs that scored the same tasks (see `evalsuite runs show RUN_ID`)")
    for task in tasks:
        with_task = [r for r in ids if task in runs[r]]
        base = runs[with_task[0]][task]
        for metric, info in base.get("metric_info", {}).items():
            if metric not in base["metrics"]:
                continue
            cells = []
            for rid in ids:
                doc = runs[rid].get(task)
                value = doc["metrics"].get(metric) if doc else None
                cell = CompareCell(rid, value)
                if doc is None or value is None:
                    cell.ci_text = "not scored"
                elif rid != with_task[0] and doc.get("task_version") != base.get("task_version"):
                    cell.ci_text = (f"not comparable: task version {doc.get('task_version')} vs "
                                    f"{base.get('task_version')}")
                elif rid != with_task[0] and doc.get("protocol") != base.get("protocol"):
                    cell.ci_text = f"not comparable: protocol {doc.get('protocol')} vs {base.get('protocol')}"
                elif rid != with_task[0]:
                    cell.delta = value - base["metrics"][metric] if math.isfinite(value) and math.isfinite(
                        base["metrics"][metric]) else None
                    cell.ci, why = _delta_ci(base, doc, metric, n_boot, seed)
                    kind = "sampling " if cell.ci and _sampling_replicates(doc) is not None \
                        and _per_sample(doc, metric)[0] is None else ""
                    cell.ci_text = f"{kind}[{cell.ci.low:+.4g}, {cell.ci.high:+.4g}]" if cell.ci else why
                else:
                    cell.ci_text = "baseline"
                if doc is not None and sample_count.note(doc):
                    cell.ci_text = "; ".join(filter(None, [cell.ci_text, sample_count.note(doc)]))
                cells.append(cell)
            rows.append(CompareRow(task, metric, info.get("direction", "lower"), cells))
    report = Report(ids, models, rows, n_boot=n_boot, seed=seed)
    report.plots = _plots(runs, ids, n_boot, seed)
    report.samples = _samples(store, runs, ids)
    report.pareto = runs_sections(store.root, ids)
    return report


# ------------------------------------------------------------------------------------------------ plots
def _plots(runs: dict, ids: list[str], n_boot: int, seed: int) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = {}
    for task in dict.fromkeys(t for rid in ids for t in runs[rid]):
        docs = [(rid, runs[rid][task]) for rid in ids if task in runs[rid]]
        try:
            plots.update(_task_plots(task, docs, n_boot, seed, plt))
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            plt.close("all")
            warnings.warn(f"no plot of task {task}: a compared result's stored details are unusable ({exc})",
                          StoreWarning, stacklevel=2)
    return plots


def _task_plots(task: str, docs: list[tuple[str, dict]], n_boot: int, seed: int, plt: Any) -> dict[str, bytes]:
    """Bar charts with bootstrap CIs, latent spectra and per-count accuracy of one task across the runs."""
    plots = {}
    metrics = [m for m in docs[0][1].get("metric_info", {}) if _per_sample(docs[0][1], m)[0] is not None]
    if metrics:
        fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2), squeeze=False)
        for ax, metric in zip(axes[0], metrics):
            means: list[float] = []
            errs: list[list[float]] = [[], []]
            for _rid, doc in docs:
                values, _, _ = _per_sample(doc, metric)
                stat = _statistic(doc, metric)
                center = stat(values) if values is not None else float("nan")
                lo, hi = bootstrap_ci(values, stat, n_boot=min(n_boot, 1000), seed=seed) if values is not None \
                    else (center, center)
                means.append(center)
                errs[0].append(max(center - lo, 0))
                errs[1].append(max(hi - center, 0))
            ax.bar(range(len(docs)), means, yerr=errs, capsize=4, color="#0969da")
            ax.set_xticks(range(len(docs)), [rid[-14:] for rid, _ in docs], rotation=30, ha="right", fontsize=7)
            ax.set_title(f"{metric} (95% CI)", fontsize=9)
        fig.suptitle(task, fontsize=10)
        fig.tight_layout()
        plots[task] = _png(fig)
    spectra = [(rid, d["details"]["latent"]) for rid, d in docs if "latent" in d.get("details", {})]
    if spectra:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
        for rid, curve in spectra:
            if "dct_profile" in curve:
                a1.plot(curve["dct_profile"], label=rid[-14:])
            a2.loglog(curve["radial_freq"], np.maximum(curve["radial_power"], 1e-30), label=rid[-14:])
        a1.set(yscale="log", title="latent DCT profile", xlabel="zigzag index")
        a2.set(title="latent radial power", xlabel="frequency (Nyquist = 1)")
        for ax in (a1, a2):
            ax.legend(fontsize=7)
        fig.tight_layout()
        plots[f"{task} spectra"] = _png(fig)
    counts = [(rid, d["details"]["per_count"]) for rid, d in docs if isinstance(d.get("details", {}).get(
        "per_count"), dict)]
    if counts:
        keys = sorted({k for _, pc in counts for k in pc}, key=lambda k: float(k))
        fig, ax = plt.subplots(figsize=(6, 3.2))
        width = 0.8 / len(counts)
        for j, (rid, pc) in enumerate(counts):
            ax.bar(np.arange(len(keys)) + j * width, [pc.get(k, 0.0) for k in keys], width, label=rid[-14:])
        ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, keys)
        ax.set(xlabel="requested count", ylabel="accuracy", title=f"{task}: per-count accuracy")
        ax.legend(fontsize=7)
        fig.tight_layout()
        plots[f"{task} per count"] = _png(fig)
    return plots


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ samples
def _thumb(path: Path, root: Path, size: int = 160) -> str | None:
    """A PNG data URL of a sample; None when unreadable or outside the store `root` (paths come from documents)."""
    try:
        inside(root, path)
        with Image.open(path) as opened:
            img = opened.convert("RGB")
            img.thumbnail((size, size))
            buf = io.BytesIO()
            img.save(buf, format="PNG")
    except (OSError, InputError):
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _samples(store: ResultsStore, runs: dict, ids: list[str], limit: int = 6) -> list[dict]:
    """Generated samples of the same (prompt, seed), or reconstructions of the same data item, side by side."""
    by_run: dict[str, dict] = {}
    for rid in ids:
        found: dict = {}
        for doc in runs[rid].values():
            if doc.get("family") == "autoencoder" and doc.get("details", {}).get("reconstructions_dir"):
                folder = store.root / doc["details"]["reconstructions_dir"]
                names = (doc.get("per_sample") or {}).get("name", [])
                for i, name in enumerate(names):
                    found.setdefault(("data item", name), folder / f"{i:05d}.png")
            elif doc.get("model", {}).get("id"):
                sample_store = SampleStore(store.root / "samples", doc["model"]["id"])
                for entry in sample_store.entries():
                    found.setdefault((entry["prompt"], entry["seed"]), sample_store.dir / entry["file"])
        by_run[rid] = found
    common = [k for k in by_run[ids[0]] if all(k in by_run[r] for r in ids)]
    out = []
    for key in common[:limit]:
        images = [_thumb(by_run[r][key], store.root) for r in ids]
        if all(images):
            caption = f"{key[0]}: {key[1]}" if key[0] == "data item" else f"prompt {key[0]!r}, seed {key[1]}"
            out.append({"caption": caption, "images": images})
    return out


# ------------------------------------------------------------------------------------------------ rendering
def write_html(report: Report, path: str | Path) -> Path:
    from evalsuite.leaderboard.site import environment, static

    plots = {name: "data:image/png;base64," + base64.b64encode(png).decode() for name, png in report.plots.items()}
    html = environment().get_template("compare.html.j2").render(
        title="evalsuite comparison", css=static("site.css"), js=None, report=report, plots=plots, fmt=_fmt)
    return atomic_write_bytes(Path(path), html.encode())


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.5g}"


def _md(text: str) -> str:
    """Escape a string from a result file for a Markdown table cell: no HTML, no table breaks."""
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
            .replace("\n", " "))


def to_markdown(report: Report) -> str:
    lines = ["# evalsuite comparison", "",
             "Baseline: " + _md(f"{report.run_ids[0]} ({report.models[report.run_ids[0]]})"),
             f"95% bootstrap CIs of the difference to the baseline ({report.n_boot} resamples, seed {report.seed}); "
             "**bold** where the interval excludes zero. \"sampling\" intervals (FID with -o bootstrap=N) come from "
             "each run's stored resamples of its generated features. \"not comparable\": fewer samples than the "
             "protocol's count.", "",
             "| task | metric | " + " | ".join(_md(f"{r} ({report.models[r]})") for r in report.run_ids) + " |",
             "|---|---|" + "---|" * len(report.run_ids)]
    for row in report.rows:
        cells = []
        for c in row.cells:
            text = _fmt(c.value)
            if c.delta is not None:
                delta = f"Δ {c.delta:+.4g} {c.ci_text}"
                text += f" ({'**' + delta + '**' if c.significant else delta})"
            elif c.ci_text and c.ci_text != "baseline":
                text += f" ({_md(c.ci_text)})"
            cells.append(text)
        arrow = "↓" if row.direction == "lower" else "↑"
        lines.append(f"| {_md(row.task)} | {_md(row.metric)} {arrow} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + sections_markdown(report.pareto)
