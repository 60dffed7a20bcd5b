"""The Pareto report page (issue 16): `evalsuite pareto` (HTML page, PNG/SVG, --json, --markdown, --published), the
section of the static leaderboard for a store with a sweep and of `compare` reports for timed variants; opened in
headless Chromium (Debian's chromium driven by playwright, as tests/test_leaderboard.py does): the frontier, the
error bars (SVG elements), both tables, tooltips holding the knobs, a malicious label shown as text. The direction
of quality comes from the metric's declaration: declaring a metric higher-is-better flips the frontier."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from evalsuite import knobs
from evalsuite.cli import app
from evalsuite.device.records import TimingRecord
from evalsuite.device.records import write as write_record
from evalsuite.leaderboard import compare as cmp
from evalsuite.leaderboard import pareto_data
from evalsuite.leaderboard.data import load_published
from evalsuite.leaderboard.pareto_data import Quality
from evalsuite.leaderboard.pareto_page import ParetoView, from_store, view_of, write_page
from evalsuite.leaderboard.site import build
from evalsuite.pareto import ParetoError, Point, knob_text
from evalsuite.results import ResultsStore

XSS = "<img src=x onerror=alert(1)>"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
PSNR_INFO = {"psnr": {"direction": "higher", "description": "PSNR to the reference", "primary": True, "unit": "dB",
                      "per_sample": "mse", "aggregate": "psnr_of_mean"}}
DEVICE = "Test CPU"
# (steps, compression, psnr, median ms): (1, fp32) is dominated by (1, fp16), (2, fp16) by (2, fp32); the rest is the
# frontier
GRID = [(1, "fp32", 15.0, 10.0), (1, "fp16", 15.0, 9.0), (2, "fp32", 21.0, 20.0), (2, "fp16", 20.5, 21.0),
        (4, "fp32", 29.0, 40.0), (4, "fp16", 28.9, 38.0)]


def _variant_doc(run_id: str, values: dict[str, Any], psnr: float, info: dict | None, task: str = "variant-fidelity",
                 metric: str = "psnr", seed: int = 0) -> dict:
    vid = knobs.variant_id("demo@1", values, "ab" * 32)
    mse = (10 ** (-psnr / 10)) * np.random.default_rng(seed).uniform(0.8, 1.2, 8)
    doc = {"run_id": run_id, "task": task, "status": "ok", "family": "image-quality", "metrics": {metric: psnr},
           "model": {"spec": knobs.variant_spec("demo", values), "id": vid,
                     "info": {"variant": {"id": vid, "knobs": values, "base_model_id": "demo@1",
                                          "weights_sha256": "ab" * 32}}},
           "num_samples": 8, "created_at": "2026-01-01T00:00:00+00:00",
           "per_sample": {"name": [f"s{i}" for i in range(8)], "mse": mse.tolist()},
           "provenance": {"evalsuite_version": "0.1.0", "seeds": {"sample_seed_start": 0}}}
    if info is not None:
        doc["metric_info"] = info
    return doc


def make_store(root: Path, grid: list = GRID, info: dict | None = PSNR_INFO, sweep: bool = True, **doc_kw: Any
               ) -> tuple[ResultsStore, list[str], str]:
    """A store holding one result and one timing record per variant (same variant id), and, with `sweep`, the
    sweep manifest that lists them (written as `evalsuite sweep` writes it: schema evalsuite.sweep/1)."""
    store = ResultsStore(root)
    run_ids, entries = [], []
    for i, (steps, compression, psnr, ms) in enumerate(grid):
        values = {"compression": compression, "steps": steps}
        run_id = f"run-{i}"
        doc = _variant_doc(run_id, values, psnr, info, seed=i, **doc_kw)
        store.write(doc)
        vid = doc["model"]["info"]["variant"]["id"]
        rec = TimingRecord(model="demo", variant=compression, backend="host-torch", device_model=DEVICE,
                           compute_unit="cpu", latencies_ms=[ms * f for f in (0.8, 0.95, 1.0, 1.05, 1.3)],
                           release="test", variant_id=vid, timestamp=f"2026-01-01T00:00:0{i}+00:00")
        path = write_record(root, rec)
        run_ids.append(run_id)
        entries.append({"spec": doc["model"]["spec"], "knobs": values, "variant_id": vid, "run_id": run_id,
                        "timing_record": path.name, "status": "complete"})
    sweep_id = "20260101T000000Z-demo-sweep-abc123"
    if sweep:
        manifest = {"schema": "evalsuite.sweep/1", "sweep_id": sweep_id, "model": "demo",
                    "grid": {"steps": ["1", "2", "4"], "compression": ["fp32", "fp16"]},
                    "tasks": ["variant-fidelity"], "backend": "host-torch", "device": "cpu", "score_options": {},
                    "timing": {"iterations": 5, "warmup": 1}, "created_at": "2026-01-01T00:00:00+00:00",
                    "status": "complete", "variants": entries}
        (root / "sweeps" / sweep_id).mkdir(parents=True)
        (root / "sweeps" / sweep_id / "sweep.json").write_text(json.dumps(manifest))
    return store, run_ids, sweep_id


def demo_points(label: str = "") -> list[Point]:
    """Points built directly: two devices, CIs and p10-p90 on some, one dominated per device."""
    pts = []
    for device, scale in (("iPhone17,2", 1.0), ("Apple M3 (coreml-mac, ALL)", 0.5)):
        for steps, compression, psnr, ms in GRID:
            values = {"compression": compression, "steps": steps}
            pts.append(Point(knobs.variant_id("demo@1", values), label or knob_text(values), psnr, ms * scale,
                             device, knobs=values, quality_ci=(psnr - 0.3, psnr + 0.2) if steps > 1 else None,
                             latency_p10_p90=(ms * scale * 0.9, ms * scale * 1.2)))
    return pts


# ------------------------------------------------------------------ the browser

def _open(browser: Any, path: Path) -> tuple[Any, list[str], list[str], list[str]]:
    """The page, its console errors, dialogs, and every request that left file:// (none may)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    dialogs: list[str] = []
    remote: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def on_dialog(d: Any) -> None:
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    page.on("request", lambda r: remote.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, errors, dialogs, remote


def _bars(page: Any) -> tuple[int, int]:
    """(vertical, horizontal) error-bar paths of the figure (matplotlib's LineCollection groups)."""
    ds = page.eval_on_selector_all('figure.evalsuite-pareto g[id^="LineCollection"] path',
                                   "ps => ps.map(p => p.getAttribute('d'))")
    vertical = horizontal = 0
    for d in ds:
        (x0, y0), (x1, y1) = [tuple(map(float, xy)) for xy in re.findall(r"([-\d.]+) ([-\d.]+)", d)[:2]]
        vertical += x0 == x1 and y0 != y1
        horizontal += y0 == y1 and x0 != x1
    return vertical, horizontal


def test_page_in_chromium_shows_frontier_error_bars_tables_and_knob_tooltips(tmp_path, browser):
    points = demo_points()
    view = ParetoView(Quality("psnr", "higher", "variant-fidelity", "dB"), points, notes=["one note"])
    path = write_page(view, tmp_path / "pareto.html")
    html = path.read_text()
    assert "<script" not in html and "<link" not in html and not re.search(r"(src|href)=\"https?:", html)
    page, errors, dialogs, remote = _open(browser, path)
    assert page.locator("figure.evalsuite-pareto svg").count() == 1
    # frontier: filled markers (and the step line), dominated: hollow grey markers
    fills = page.eval_on_selector_all('figure.evalsuite-pareto g[id^="pareto-"] use',
                                      "us => us.map(u => u.getAttribute('style'))")
    assert len(fills) == len(points)
    n_frontier = sum(len(r.frontier.frontier) for r in view.reports())
    assert 0 < n_frontier < len(points)
    assert sum("fill: #1f77b4" in s for s in fills) == n_frontier
    assert sum("fill-opacity: 0" in s for s in fills) == len(points) - n_frontier
    steps = page.eval_on_selector_all('figure.evalsuite-pareto g[id^="line2d"] path',
                                      "ps => ps.map(p => p.getAttribute('style') + '|' + p.getAttribute('d'))")
    assert any("stroke: #1f77b4" in s and s.count("L") >= 3 for s in steps)  # the frontier's step line
    # error bars: one vertical per quality CI, one horizontal per p10-p90
    assert _bars(page) == (sum(p.quality_ci is not None for p in points),
                           sum(p.latency_p10_p90 is not None for p in points))
    # both tables, per device
    assert page.locator("table.pareto-iso-latency").count() == 2
    assert page.locator("table.pareto-iso-quality").count() == 2
    iphone = page.locator('section.evalsuite-pareto-tables[data-device="iPhone17,2"]')
    assert "compression=fp32, steps=4" in iphone.locator("table.pareto-iso-latency").inner_text()
    status = page.eval_on_selector_all("table.pareto-points tbody tr", "rs => rs.map(r => r.className)")
    assert status.count("frontier") == sum(len(r.frontier.frontier) for r in view.reports())
    assert "dominated" in status
    # tooltips: each point's <title> holds its knobs
    tips = page.eval_on_selector_all('figure.evalsuite-pareto g[id^="pareto-"] > title',
                                     "ts => ts.map(t => t.textContent)")
    assert len(tips) == len(points) and all("steps=" in t and "compression=" in t for t in tips)
    assert any("CI 28.7 to 29.2" in t and "p10-p90" in t for t in tips)
    assert "one note" in page.inner_text("ul.pareto-notes")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "evalsuite.pareto_page.png"), full_page=True)
    assert errors == [] and dialogs == [] and remote == []
    page.close()


def test_malicious_label_and_knob_are_text(tmp_path, browser):
    bad = [Point("v-" + XSS, XSS, 1.0, 5.0, "dev</title><script>alert(2)</script>", knobs={"k": XSS}),
           Point("v2", "ok", 2.0, 9.0, "dev</title><script>alert(2)</script>", knobs={XSS: 1})]
    view = ParetoView(Quality("m" + XSS, "higher"), bad, notes=[XSS], sources=[XSS])
    path = write_page(view, tmp_path / "bad.html")
    html = path.read_text()
    assert XSS not in html and "<script>alert(2)" not in html
    page, errors, dialogs, remote = _open(browser, path)
    page.wait_for_timeout(200)
    assert page.locator('img[src="x"]').count() == 0 and page.locator("script").count() == 0
    assert dialogs == [] and errors == [] and remote == []
    assert XSS in page.text_content("table.pareto-points") and XSS in page.inner_text("ul.pareto-notes")
    tips = page.eval_on_selector_all('g[id^="pareto-"] > title', "ts => ts.map(t => t.textContent)")
    assert any(f"k={XSS}" in t for t in tips)
    page.close()


def test_leaderboard_includes_the_sweep_section(tmp_path, browser):
    store, _, sweep_id = make_store(tmp_path / "store")
    index = build(store.root, tmp_path / "site")
    html = index.read_text()
    assert 'id="pareto"' in html and sweep_id in html and "evalsuite-pareto" in html
    page, errors, dialogs, remote = _open(browser, index)
    section = page.locator("section.pareto")
    assert section.count() == 1 and "variant-fidelity.psnr" in section.locator("h3").inner_text()
    assert section.locator("table.pareto-iso-latency").count() == 1
    assert section.locator("table.pareto-iso-quality").count() == 1
    assert _bars(page) == (len(GRID), len(GRID))  # CI from per-sample values; p10-p90 from the records
    assert errors == [] and dialogs == [] and remote == []
    page.close()
    empty, _, _ = make_store(tmp_path / "plain", sweep=False)
    assert 'id="pareto"' not in build(empty.root, tmp_path / "site2").read_text()


# ------------------------------------------------------------------ the joins, the declaration, the CLI
def test_sweep_and_runs_give_the_same_points(tmp_path):
    store, run_ids, sweep_id = make_store(tmp_path / "store")
    by_sweep = pareto_data.gather(store.root, [sweep_id], "psnr")
    by_runs = pareto_data.gather(store.root, run_ids, "variant-fidelity.psnr")
    assert by_sweep.quality == by_runs.quality == Quality("psnr", "higher", "variant-fidelity", "dB")
    key = sorted((p.variant_id, p.quality, p.latency_ms, p.device) for p in by_sweep.points)
    assert key == sorted((p.variant_id, p.quality, p.latency_ms, p.device) for p in by_runs.points)
    assert len(key) == len(GRID) and all(p.quality_ci and p.latency_p10_p90 for p in by_runs.points)
    assert by_sweep.points[0].knobs == {"compression": "fp32", "steps": 1}
    assert pareto_data.gather(store.root, [sweep_id], "variant-fidelity").quality.metric == "psnr"  # a task: primary


def _frontier_ids(root: Path, run_ids: list[str], quality: str) -> set[str]:
    view = from_store(root, run_ids, quality)
    return {p.variant_id for r in view.reports() for p in r.frontier.frontier}


def test_direction_comes_from_the_declaration(tmp_path):
    grid = [(1, "fp32", 10.0, 10.0), (2, "fp32", 20.0, 20.0), (4, "fp32", 30.0, 40.0)]
    higher = dict(PSNR_INFO["psnr"], direction="higher")
    lower = dict(PSNR_INFO["psnr"], direction="lower")
    _, runs_h, _ = make_store(tmp_path / "h", grid, {"psnr": higher}, sweep=False)
    _, runs_l, _ = make_store(tmp_path / "l", grid, {"psnr": lower}, sweep=False)
    ids = [knobs.variant_id("demo@1", {"compression": "fp32", "steps": s}, "ab" * 32) for s in (1, 2, 4)]
    assert _frontier_ids(tmp_path / "h", runs_h, "psnr") == set(ids)  # more quality costs latency: all optimal
    assert _frontier_ids(tmp_path / "l", runs_l, "psnr") == {ids[0]}  # lower is better: the fastest wins all
    # no metric_info: the installed task's MetricInfo (variant-fidelity psnr: higher), never the name
    _, runs_r, _ = make_store(tmp_path / "r", grid, None, sweep=False)
    assert from_store(tmp_path / "r", runs_r, "psnr").quality.direction == "higher"
    # a metric named like a lower-is-better one but declared higher is higher
    _, runs_f, _ = make_store(tmp_path / "f", grid, {"fid": higher}, sweep=False, task="custom", metric="fid")
    assert from_store(tmp_path / "f", runs_f, "fid").quality.direction == "higher"
    # nothing declares it: refused, not guessed
    _, runs_n, _ = make_store(tmp_path / "n", grid, None, sweep=False, task="custom", metric="fid")
    with pytest.raises(ParetoError, match="declares no direction"):
        from_store(tmp_path / "n", runs_n, "fid")


def test_runs_without_timing_or_variant_are_notes_not_points(tmp_path):
    store, run_ids, _ = make_store(tmp_path / "store", sweep=False)
    for rec in (tmp_path / "store" / "device").glob("*.json"):
        data = json.loads(rec.read_text())
        if data["variant_id"].endswith(("fp16&steps=1#w=abababababababab",)):
            rec.unlink()
    got = pareto_data.gather(store.root, run_ids, "psnr")
    assert len(got.points) == len(GRID) - 1
    assert any("no timing record carries this variant id" in n for n in got.notes)
    with pytest.raises(Exception, match="no point was timed on a device named 'phone'"):
        pareto_data.gather(store.root, run_ids, "psnr", device="phone")
    assert len(pareto_data.gather(store.root, run_ids, "psnr", device="test cpu").points) == len(GRID) - 1


def test_cli_json_markdown_page_and_figures(tmp_path):
    store, run_ids, sweep_id = make_store(tmp_path / "store")
    runner = CliRunner()
    res = runner.invoke(app, ["pareto", sweep_id, "--quality", "psnr", "--store", str(store.root), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["schema"] == "evalsuite.pareto/1" and data["devices"][0]["direction"] == "higher"
    dominated = {p["variant_id"] for p in data["devices"][0]["points"] if p["status"] == "dominated"}
    assert dominated == {knobs.variant_id("demo@1", {"compression": c, "steps": s}, "ab" * 32)
                         for s, c in ((1, "fp32"), (2, "fp16"))}
    res = runner.invoke(app, ["pareto", *run_ids, "--quality", "variant-fidelity.psnr", "--store",
                              str(store.root), "--markdown"])
    assert res.exit_code == 0, res.output
    assert "| budget ms | variant |" in res.stdout and "dominated by compression=fp32, steps=2" in res.stdout
    out = tmp_path / "out"
    res = runner.invoke(app, ["pareto", sweep_id, "--quality", "psnr", "--store", str(store.root), "--out",
                              str(out / "p.html"), "--png", str(out / "p.png"), "--svg", str(out / "p.svg")])
    assert res.exit_code == 0, res.output
    assert (out / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in (out / "p.svg").read_bytes()
    assert "pareto-iso-quality" in (out / "p.html").read_text()
    res = runner.invoke(app, ["pareto", sweep_id, "--quality", "nope", "--store", str(store.root)])
    assert res.exit_code == 2 and "no successful result reports the metric 'nope'" in res.output


def test_compare_report_has_the_pareto_section(tmp_path):
    store, run_ids, _ = make_store(tmp_path / "store", sweep=False)
    report = cmp.compare(store.root, run_ids[:4], n_boot=200)
    assert len(report.pareto) == 1 and report.pareto[0].view is not None
    assert len(report.pareto[0].view.points) == 4
    html = cmp.write_html(report, tmp_path / "cmp.html").read_text()
    assert "evalsuite-pareto" in html and "pareto-iso-latency" in html
    assert "Best quality within a latency budget" in cmp.to_markdown(report)
    assert report.to_json()["pareto"][0]["report"]["devices"][0]["device"] == f"{DEVICE} (host-torch, cpu)"
    for rec in (tmp_path / "store" / "device").glob("*.json"):
        rec.unlink()
    assert cmp.compare(store.root, run_ids[:2], n_boot=200).pareto == []  # no timings: no section


# ------------------------------------------------------------------ published pairs
def test_published_pairs_come_from_the_files_results():
    results = load_published()
    pairs = pareto_data.load_pairs()
    assert {(p["model"], p["task"]) for p in pairs} == {("SnapGen", "geneval"), ("SnapGen++", "geneval"),
                                                        ("SnapGen++", "dpg-bench")}
    for p in pairs:
        q = next(e for e in results if (e["model"], e["citation"], e["task"]) == (p["model"], p["citation"], p["task"]))
        lat = next(e for e in results if (e["model"], e["citation"], e["metric"]) == (p["model"], p["citation"],
                                                                                       "latency_s"))
        assert p["value"] == q["value"] and p["latency_ms"] == lat["value"] * 1000
        assert re.fullmatch(r"arXiv:\d{4}\.\d{5}", p["citation"]) and p["source"].startswith(p["citation"])


def test_published_overlay_is_reported_and_never_on_the_frontier(tmp_path):
    quality = Quality("overall", "higher", "geneval")
    measured = [Point("a", "a", 0.50, 900.0, "iPhone17,2"), Point("b", "b", 0.60, 2500.0, "iPhone17,2")]
    view = view_of(pareto_data.Gathered(quality, measured), published=True)
    reported = [p for p in view.points if p.source == "reported"]
    assert {p.label for p in reported} == {"SnapGen [arXiv:2412.09619]", "SnapGen++ [arXiv:2601.08303]"}
    assert {p.device for p in reported} == {"iPhone17,2"}  # the phone the papers timed: the same panel
    (r,) = view.reports()
    assert {p.variant_id for p in r.frontier.frontier} == {"a", "b"}
    assert {e.status for e in r.frontier.entries if e.point.source == "reported"} == {"reported"}
    assert "arXiv:2412.09619" in view.fragment() and "reported" in view.markdown()
    other = view_of(pareto_data.Gathered(Quality("psnr", "higher", "variant-fidelity"), measured), published=True)
    assert all(p.source == "measured" for p in other.points) and any("no published pair" in n for n in other.notes)
    flipped = view_of(pareto_data.Gathered(Quality("overall", "lower", "geneval"), measured), published=True)
    assert not any(p.source == "reported" for p in flipped.points)
    assert any("left out" in n for n in flipped.notes)
