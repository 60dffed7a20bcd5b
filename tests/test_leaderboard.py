"""Leaderboard site and comparison reports: built from a store, checked in headless Chromium (Debian's chromium
driven by playwright), escaping of untrusted strings, published rows kept apart, and the bootstrap checked
against a hand-written loop."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from evalsuite.device.records import TimingRecord
from evalsuite.device.records import write as write_record
from evalsuite.leaderboard import compare as cmp
from evalsuite.leaderboard.data import build_tables, load_published
from evalsuite.leaderboard.site import build
from evalsuite.results import ResultsStore

XSS = "<img src=x onerror=alert(1)>"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

FID_INFO = {"fid": {"direction": "lower", "description": "Fréchet distance", "unit": ""}}
RECON_INFO = {"ssim": {"direction": "higher", "description": "mean SSIM", "per_sample": "ssim"},
              "psnr": {"direction": "higher", "description": "pooled PSNR", "per_sample": "mse",
                       "aggregate": "psnr_of_mean"}}


def _doc(run_id, model, task, metrics, info, family, per_sample=None, created="2026-01-01T00:00:00+00:00"):
    doc = {"run_id": run_id, "task": task, "status": "ok", "family": family, "metrics": metrics,
           "metric_info": info, "model": {"spec": model, "id": f"{model}@1", "info": {}}, "num_samples": 10,
           "created_at": created, "provenance": {"evalsuite_version": "0.1.0", "seeds": {"sample_seed_start": 0}}}
    if per_sample:
        doc["per_sample"] = per_sample
    return doc


@pytest.fixture
def store(tmp_path):
    s = ResultsStore(tmp_path / "store")
    for i, (model, fid) in enumerate([("alpha", 5.0), ("beta", 3.0), ("gamma", 9.0), (XSS, 4.0)]):
        s.write(_doc(f"run-{i}", model, "fid", {"fid": fid}, FID_INFO, "image-quality"))
    s.write(_doc("run-old", "beta", "fid", {"fid": 30.0}, FID_INFO, "image-quality",
                 created="2025-01-01T00:00:00+00:00"))  # an older run of beta: the latest one is shown
    rng = np.random.default_rng(0)
    for i, (model, quality) in enumerate([("ae-small", 0.7), ("ae-big", 0.9)]):
        ssim = np.clip(rng.normal(quality, 0.05, 12), 0, 1).tolist()
        s.write(_doc(f"ae-{i}", model, "ae-recon", {"ssim": float(np.mean(ssim)), "psnr": 20.0 + 5 * i},
                     RECON_INFO, "autoencoder", {"name": [f"img{k}" for k in range(12)], "ssim": ssim,
                                                 "mse": rng.uniform(0.001, 0.01, 12).tolist()}))
    for release, ms in [("v1", 100), ("v2", 102), ("v3", 99), ("v4", 130), ("v5", 133)]:
        write_record(s.root, TimingRecord(model="snapgen", variant="fp16", backend="iphone", device_model="iPhone17,2",
                                          latencies_ms=[ms, ms + 1, ms - 1], release=release,
                                          timestamp=f"2026-0{int(release[1])}-01T00:00:00+00:00"))
    return s


@pytest.fixture
def published(tmp_path):
    path = tmp_path / "published.yaml"
    path.write_text("schema: evalsuite.published/1\nresults:\n"
                    "  - {model: beta, task: fid, metric: fid, value: 3.5, direction: lower, family: image-quality,\n"
                    "     setting: 'paper setting', citation: 'arXiv:0000.00001'}\n")
    return path


def test_published_rows_never_merge_with_measured(store, published):
    tables = {t.family: t for t in build_tables(store, load_published(published))}
    rows = [r for r in tables["image-quality"].rows if r.label == "beta"]
    assert sorted(r.kind for r in rows) == ["measured", "reported"]
    measured_row = next(r for r in rows if r.kind == "measured")
    reported_row = next(r for r in rows if r.kind == "reported")
    assert measured_row.cells["fid/fid"].value == 3.0 and measured_row.cells["fid/fid"].run_id == "run-1"
    assert reported_row.cells["fid/fid"].value == 3.5 and reported_row.cells["fid/fid"].run_id is None
    assert tables["image-quality"].best()["fid/fid"] == measured_row.key  # reported values are never "best"


def test_results_of_another_task_version_keep_their_own_column(tmp_path, published):
    import evalsuite.tasks as task_registry

    current = task_registry.get("fid").version
    s = ResultsStore(tmp_path / "s")
    s.write({**_doc("r-new", "beta", "fid", {"fid": 3.0}, FID_INFO, "image-quality"), "task_version": current})
    s.write({**_doc("r-old", "beta", "fid", {"fid": 7.0}, FID_INFO, "image-quality",
                    created="2027-01-01T00:00:00+00:00"), "task_version": "0"})  # newer, but an older task
    table = {t.family: t for t in build_tables(s, load_published(published))}["image-quality"]
    measured_row = next(r for r in table.rows if r.kind == "measured")
    assert measured_row.cells["fid/fid"].value == 3.0  # the current version's column, beside the paper's number
    assert measured_row.cells["fid v0/fid"].value == 7.0  # the old version's number, apart
    reported_row = next(r for r in table.rows if r.kind == "reported")
    assert "fid v0/fid" not in reported_row.cells
    report = cmp.compare(s.root, ["r-new", "r-old"], n_boot=50)
    cell = report.rows[0].cells[1]
    assert cell.delta is None and cell.ci_text == f"not comparable: task version 0 vs {current}"


def test_shipped_published_file_cites_every_row():
    entries = load_published()
    assert {e["model"] for e in entries} >= {"SnapGen", "SnapGen++", "SnapGen-V", "Mobile video DiT"}
    assert all(re.fullmatch(r"arXiv:\d{4}\.\d{5}", e["citation"]) for e in entries)
    snapgen_fid = next(e for e in entries if e["model"] == "SnapGen" and e["metric"] == "fid")
    assert snapgen_fid["value"] == 2.06


def test_site_is_self_contained_and_escaped(store, published, tmp_path):
    index = build(store.root, tmp_path / "site", published)
    html = index.read_text()
    assert "<script src" not in html and "<link" not in html and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "reported, not reproduced" in html and "REGRESSION" in html
    pages = list((tmp_path / "site" / "provenance").glob("*.html"))
    assert len(pages) == 6  # latest doc per (model, task)
    assert 'href="provenance/run-1__fid.html"' in html



def _open(browser, index: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    dialogs: list[str] = []

    def on_console(m) -> None:
        if m.type == "error":
            errors.append(m.text)

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def on_dialog(d) -> None:
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    page.goto(index.as_uri())
    page.wait_for_load_state("load")
    return page, errors, dialogs


def _first_column(page, family):
    return page.eval_on_selector_all(f'table[data-family="{family}"] tbody tr',
                                     "rows => rows.map(r => r.dataset.model)")


def test_browser_sorts_without_errors_and_saves_screenshot(store, published, tmp_path, browser):
    index = build(store.root, tmp_path / "site", published)
    page, errors, dialogs = _open(browser, index)
    header = page.locator('table[data-family="image-quality"] th[data-col]', has_text="fid").first
    header.click()
    order = _first_column(page, "image-quality")
    assert order[0] == "beta" and order[1] == "beta"  # measured 3.0, then reported 3.5
    assert order[-1] == "gamma"
    header.click()  # second click: worst first
    assert _first_column(page, "image-quality")[0] == "gamma"
    ssim = page.locator('table[data-family="autoencoder"] th[data-col]', has_text="ssim").first
    ssim.click()  # higher is better: the bigger SSIM first
    assert _first_column(page, "autoencoder")[0] == "ae-big"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "evalsuite.leaderboard.png"), full_page=True)
    assert (ARTIFACTS / "evalsuite.leaderboard.png").stat().st_size > 10_000
    page.locator("a.prov").first.click()
    page.wait_for_load_state("load")
    assert "Provenance" in page.content()
    assert errors == [] and dialogs == []
    page.close()


def test_browser_xss_model_name_is_text(store, published, tmp_path, browser):
    index = build(store.root, tmp_path / "site", published)
    page, errors, dialogs = _open(browser, index)
    page.wait_for_timeout(300)
    assert dialogs == [] and errors == []
    assert XSS in page.inner_text('table[data-family="image-quality"]')
    assert page.locator('table img[src="x"]').count() == 0
    page.close()


# ------------------------------------------------------------------ compare
def _hand_bootstrap(a, b, paired, n_boot, seed):
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(n_boot):
        if paired:
            idx = rng.integers(0, len(a), len(a))
            deltas.append(np.mean(b[idx]) - np.mean(a[idx]))
        else:
            ia = rng.integers(0, len(a), len(a))
            ib = rng.integers(0, len(b), len(b))
            deltas.append(np.mean(b[ib]) - np.mean(a[ia]))
    return np.percentile(deltas, [2.5, 97.5])


def test_compare_bootstrap_matches_hand_computed(store):
    report = cmp.compare(store.root, ["ae-0", "ae-1"], n_boot=500, seed=3)
    row = next(r for r in report.rows if r.metric == "ssim")
    docs = [store.load_run(r)[0] for r in ("ae-0", "ae-1")]
    a, b = (np.array(d["per_sample"]["ssim"]) for d in docs)
    lo, hi = _hand_bootstrap(a, b, paired=True, n_boot=500, seed=3)
    cell = row.cells[1]
    assert cell.ci.paired
    assert cell.ci.low == pytest.approx(lo, abs=1e-12) and cell.ci.high == pytest.approx(hi, abs=1e-12)
    assert cell.delta == pytest.approx(b.mean() - a.mean())
    assert cell.significant  # 0.7 vs 0.9 on 12 samples
    psnr_row = next(r for r in report.rows if r.metric == "psnr")
    assert psnr_row.cells[1].ci is not None  # bootstrapped from per-sample MSE


def test_compare_unpaired_and_aggregate_only(tmp_path):
    s = ResultsStore(tmp_path / "s")
    a = np.array([0.1, 0.5, 0.3, 0.4, 0.2])
    b = np.array([0.6, 0.7, 0.4, 0.9])
    s.write(_doc("r-a", "m<b>a</b>", "ae-recon", {"ssim": a.mean()}, RECON_INFO, "autoencoder",
                 {"name": list("abcde"), "ssim": a.tolist()}))
    s.write(_doc("r-b", "m-b", "ae-recon", {"ssim": b.mean()}, RECON_INFO, "autoencoder",
                 {"name": list("vwxy"), "ssim": b.tolist()}))
    s.write(_doc("r-a", "m<b>a</b>", "fid", {"fid": 3.0}, FID_INFO, "image-quality"))
    s.write(_doc("r-b", "m-b", "fid", {"fid": 2.0}, FID_INFO, "image-quality"))
    report = cmp.compare(s.root, ["r-a", "r-b"], n_boot=300, seed=1)
    ssim = next(r for r in report.rows if r.metric == "ssim").cells[1]
    lo, hi = _hand_bootstrap(a, b, paired=False, n_boot=300, seed=1)
    assert not ssim.ci.paired and (ssim.ci.low, ssim.ci.high) == pytest.approx((lo, hi), abs=1e-12)
    fid = next(r for r in report.rows if r.metric == "fid").cells[1]
    assert fid.ci is None and fid.ci_text == "no CI: aggregate only" and fid.delta == -1.0
    md = cmp.to_markdown(report)
    assert "<b>" not in md and "m&lt;b&gt;a&lt;/b&gt;" in md and "no CI: aggregate only" in md
    html = cmp.write_html(report, tmp_path / "report.html").read_text()
    assert "<b>a</b>" not in html and "data:image/png;base64," in html
    assert json.loads(json.dumps(report.to_json()))["rows"][0]["cells"][1]["ci"] is not None


def test_compare_shows_same_prompt_and_seed_side_by_side(tmp_path):
    from evalsuite.runner import ScoreOptions, score

    opts = dict(tasks=["fid"], extractor="python:tests.tiny_models:tiny_uint8", ref="model:demo", num_samples=6,
                num_workers=0, progress=False, store=tmp_path / "st")
    r1 = score("demo", ScoreOptions.with_legacy(**opts)).run_id
    r2 = score("demo:96", ScoreOptions.with_legacy(**opts)).run_id
    report = cmp.compare(tmp_path / "st", [r1, r2], n_boot=200)
    assert len(report.samples) == 6
    assert all(len(s["images"]) == 2 and s["images"][0].startswith("data:image/png") for s in report.samples)
    assert "seed 0" in report.samples[0]["caption"]
