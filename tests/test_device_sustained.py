"""Sustained runs (issue 19, item 3): `device time --duration` times predictions back to back for a duration and
records latency and thermal state per window; the iPhone app's windows (fake transport) become the same record
fields; the gate can judge the last window instead of the whole run; the site draws latency against time per
sustained record, checked in headless Chromium."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from evalsuite.cli import app
from evalsuite.device import history, protocol, records
from evalsuite.device.backends import TimingSettings, TimingTarget, get
from evalsuite.device.sustained import default_window_s, parse_duration, timed_loop
from evalsuite.errors import InputError
from tests.test_device_iphone import FakeTransport, app_result, backend, package, settings, target  # noqa: F401

runner = CliRunner()
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def tiny_model():
    """A device model for the CLI (`python:tests.test_device_sustained:tiny_model`): fast on any CPU."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.Linear(64, 8)), (torch.randn(4, 32),)


def test_parse_duration_and_default_windows():
    assert parse_duration("10m") == 600 and parse_duration("90s") == 90 and parse_duration("1.5h") == 5400
    assert parse_duration("45") == 45 and parse_duration(None) is None and parse_duration(2) == 2
    for bad in ("ten minutes", "-1m", "0"):
        with pytest.raises(InputError):
            parse_duration(bad)
    assert default_window_s(600) == 60 and default_window_s(20) == 2


def test_make_windows_tiles_the_run():
    ends = [0.4, 0.9, 1.2, 1.9, 2.05, 2.6, 3.3, 3.31]
    w = records.make_windows(ends, 1.0)
    assert [(x["start"], x["end"]) for x in w] == [(0, 3), (3, 5), (5, 7), (7, 8)]
    assert [x["t_s"] for x in w] == [1.2, 2.05, 3.3, 3.31]
    rec = records.TimingRecord(model="m", variant="v", backend="b", device_model="d", release="r",
                               latencies_ms=[1, 2, 3, 4, 5, 6, 7, 8], windows=w, duration_s=3.31)
    assert [x["median_ms"] for x in rec.windows] == [2.0, 4.5, 6.5, 8.0]
    assert records.metric_latencies(rec, "last-window") == [8.0]
    assert records.metric_value(rec, "last-window")[0] == 8.0 and records.metric_value(rec)[0] == 4.5
    gap = [dict(w[0]), dict(w[2])]
    with pytest.raises(InputError, match="windows"):
        records.TimingRecord(model="m", variant="v", backend="b", device_model="d", release="r",
                             latencies_ms=[1, 2, 3, 4, 5, 6, 7, 8], windows=gap)
    with pytest.raises(InputError, match="thermal_state"):
        records.TimingRecord(model="m", variant="v", backend="b", device_model="d", release="r", latencies_ms=[1],
                             windows=[{"t_s": 1.0, "start": 0, "end": 1, "thermal_state": "hot"}])


def test_timed_loop_runs_for_the_duration_with_thermal_per_window():
    start = time.perf_counter()  # the phone heats up after 0.2 s

    def thermal() -> str:
        return "nominal" if time.perf_counter() - start < 0.2 else "serious"

    lat, windows, elapsed = timed_loop(lambda: time.sleep(0.01), 3, duration_s=0.3, window_s=0.1, thermal=thermal)
    assert elapsed >= 0.3 and len(lat) >= 3 and windows is not None and len(windows) >= 3
    assert windows[0]["start"] == 0 and windows[-1]["end"] == len(lat)
    assert all(a["end"] == b["start"] for a, b in zip(windows, windows[1:]))
    assert windows[0]["thermal_state"] == "nominal" and windows[-1]["thermal_state"] == "serious"
    lat, windows, elapsed = timed_loop(lambda: None, 4)
    assert len(lat) == 4 and windows is None and elapsed is None


def test_host_torch_sustained_record(tmp_path):
    module, inputs = tiny_model()
    (rec,) = get("host-torch").time(TimingTarget("tiny", module=module, example_inputs=inputs),
                                    TimingSettings(iterations=5, warmup=1, extra={"duration_s": 0.4, "window_s": 0.1}))
    assert rec.duration_s is not None and rec.duration_s >= 0.4 and rec.iterations == len(rec.latencies_ms) >= 5
    assert rec.windows and rec.windows[-1]["end"] == len(rec.latencies_ms) and len(rec.windows) >= 4
    assert all(w["median_ms"] == pytest.approx(np.median(rec.latencies_ms[w["start"]:w["end"]])) for w in rec.windows)
    records.write(tmp_path, rec)
    (loaded,) = records.load_all(tmp_path)
    assert loaded.windows == rec.windows and loaded.duration_s == rec.duration_s


def test_cli_duration(tmp_path):
    store = tmp_path / "store"
    result = runner.invoke(app, ["device", "time", "python:tests.test_device_sustained:tiny_model", "--duration",
                                 "0.5s", "--window", "0.1", "--iterations", "3", "--warmup", "1", "--store", str(store),
                                 "--json"])
    assert result.exit_code == 0, result.output
    (data,) = json.loads(result.stdout)
    assert data["duration_s"] >= 0.5 and len(data["windows"]) >= 4 and data["peak_memory_mb"] > 0
    table = runner.invoke(app, ["device", "time", "python:tests.test_device_sustained:tiny_model", "--duration",
                                "0.2", "--store", str(store)], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "sustained" in table.stdout and "vs first window" in table.stdout
    bad = runner.invoke(app, ["device", "time", "python:tests.test_device_sustained:tiny_model", "--window", "1s",
                              "--store", str(store)])
    assert bad.exit_code == 2 and "--window needs --duration" in bad.output


# ------------------------------------------------------------------------------------- the app, through the fake

class SustainedFake(FakeTransport):
    """The app on a phone that heats up: windows of 4 predictions, the last ones slower and serious."""

    def launch(self, bundle_id, args):
        super().launch(bundle_id, args)
        request = self.request
        assert request["duration_s"] == 120.0 and request["window_s"] == 30.0
        lat = [5.0, 5.1, 4.9, 5.0, 5.2, 5.3, 5.1, 5.2, 6.5, 6.6, 6.4, 6.7, 7.5, 7.4, 7.6, 7.7]
        units = [{"compute_unit": u, "compile_ms": 800.0, "first_load_ms": 1500.0, "warm_load_ms": 90.0,
                  "first_predict_ms": 12.0, "latencies_ms": lat, "thermal_state": "serious",
                  "peak_memory_mb": 431.5, "duration_s": 121.0,
                  "windows": [{"t_s": 30.2, "end": 4, "thermal_state": "nominal"},
                              {"t_s": 60.1, "end": 8, "thermal_state": "fair"},
                              {"t_s": 90.4, "end": 12, "thermal_state": "serious"},
                              {"t_s": 121.0, "end": 16, "thermal_state": "serious"}]}
                 for u in request["compute_units"]]
        self.pending = (self.pending[0], json.dumps(app_result(request, compute_units=units)).encode())


def test_iphone_sustained_run_through_the_fake_app(package):  # noqa: F811
    fake = SustainedFake()
    recs = backend(fake).time(target(package), settings(extra={
        "inputs": [{"name": "x", "shape": [1, 4], "dtype": "float32"}], "duration_s": 120.0, "window_s": 30.0}))
    assert [r.compute_unit for r in recs] == ["ALL", "CPU_AND_NE"]
    r = recs[0]
    assert len(r.latencies_ms) == 16 > 8  # a sustained run times more than `iterations`
    assert (r.compile_ms, r.load_ms, r.warm_load_ms, r.first_predict_ms) == (800.0, 1500.0, 90.0, 12.0)
    assert r.peak_memory_mb == 431.5 and r.duration_s == 121.0
    assert [w["thermal_state"] for w in r.windows] == ["nominal", "fair", "serious", "serious"]
    assert [w["median_ms"] for w in r.windows] == [5.0, pytest.approx(5.2), pytest.approx(6.55), pytest.approx(7.55)]
    assert [(w["start"], w["end"]) for w in r.windows] == [(0, 4), (4, 8), (8, 12), (12, 16)]


def test_app_windows_that_do_not_tile_are_refused():
    request = protocol.make_request("p.mlpackage.zip", iterations=2, warmup=0, compute_units="ALL",
                                    request_id="r1", duration_s=10, meta={"model": "m", "variant": "v"})
    assert request["duration_s"] == 10.0 and request["window_s"] == 1.0
    assert "duration_s" not in protocol.make_request("p.zip", iterations=2, warmup=0, compute_units="ALL")
    unit = {"compute_unit": "ALL", "compile_ms": 1.0, "first_load_ms": 1.0, "warm_load_ms": 1.0,
            "first_predict_ms": 1.0, "latencies_ms": [1.0, 2.0, 3.0], "duration_s": 10.0,
            "windows": [{"t_s": 5.0, "end": 1, "thermal_state": "nominal"}, {"t_s": 10.0, "end": 2}]}
    with pytest.raises(InputError, match="windows"):
        protocol.parse_result(app_result(request, compute_units=[unit]))
    unit["windows"][1]["end"] = 3
    (rec,) = protocol.parse_result(app_result(request, compute_units=[unit]))
    assert rec.windows[-1]["thermal_state"] == "unknown" and len(rec.latencies_ms) == 3
    unit["latencies_ms"] = [1.0]  # fewer than `iterations` even in a sustained run
    unit["windows"] = [{"t_s": 10.0, "end": 1}]
    with pytest.raises(InputError, match="iterations"):
        protocol.parse_result(app_result(request, compute_units=[unit]))


# ------------------------------------------------------------------------------- gating on the sustained number

def _sustained(store, release, first, last, day):
    lat = [first] * 6 + [last] * 6
    lat = [v * (1 + 0.01 * (i % 3 - 1)) for i, v in enumerate(lat)]
    records.write(store, records.TimingRecord(
        model="m", variant="fp16", backend="iphone", device_model="iPhone17,2", compute_unit="ALL",
        latencies_ms=lat, release=release, timestamp=f"2026-02-{day:02d}T00:00:00+00:00", duration_s=600.0,
        windows=[{"t_s": 300.0, "start": 0, "end": 6, "thermal_state": "nominal"},
                 {"t_s": 600.0, "start": 6, "end": 12, "thermal_state": "serious"}]))


def test_gate_on_the_last_window(tmp_path):
    store = tmp_path / "store"
    # the first minutes stay at 10 ms; after heating, the last window goes from 12 ms to 16 ms in v4 and v5
    for i, last in enumerate([12, 12, 12, 12, 16, 16]):
        _sustained(store, f"v{i}", 10.0, float(last), i + 1)
    whole = history.history(store, "m")[0]
    assert not whole.latest_is_regression  # the whole-run median (between the windows) moves under 15%
    hot = history.history(store, "m", metric="last-window")[0]
    assert hot.latest_is_regression and hot.median_ms[-1] == pytest.approx(16.0)
    result = runner.invoke(app, ["device", "history", "m", "--store", str(store), "--metric", "last-window",
                                 "--fail-on-regression", "--explain"], env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "last-window p50 ms" in result.stdout and "REGRESSION" in result.stdout
    assert runner.invoke(app, ["device", "history", "m", "--store", str(store), "--fail-on-regression"]).exit_code == 0
    bad = runner.invoke(app, ["device", "history", "m", "--store", str(store), "--metric", "p42"])
    assert bad.exit_code == 2 and "unknown --metric" in bad.output


# ------------------------------------------------------------------------------------------------------ the site

@pytest.fixture
def site(tmp_path):
    from evalsuite.leaderboard.site import build

    store = tmp_path / "store"
    for i, last in enumerate([12, 12, 13]):
        _sustained(store, f"v{i}", 10.0, float(last), i + 1)
    records.write(store, records.TimingRecord(
        model="m", variant="fp32", backend="host-torch", device_model="cpu", latencies_ms=[3.0, 3.2, 3.1],
        release="v2", load_ms=1.0, first_predict_ms=9.0, peak_memory_mb=300.0))
    return build(store, tmp_path / "site")


def test_site_shows_new_columns_and_latency_over_time(site):
    html = site.read_text()
    assert 'id="on-device-detail"' in html and 'id="on-device-sustained"' in html
    assert html.count('class="chart sustained"') == 3
    for text in ("95% CI of p50", "warm load", "peak memory", "last window", "p99", "cold_start_ms"):
        assert text in html


def test_browser_draws_the_sustained_charts(site, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site.as_uri())
    page.wait_for_load_state("load")
    charts = page.locator("svg.sustained")
    assert charts.count() == 3
    box = charts.first.bounding_box()
    assert box and box["width"] > 400 and box["height"] > 150
    assert charts.first.locator("circle.window").count() == 2
    assert page.locator('svg.sustained circle[data-thermal="serious"]').count() == 3
    # the detail table sorts by p99 (cells after the CI column stay aligned)
    page.locator('table[data-family="on-device-detail"] th[data-col]', has_text="p99").first.click()
    first = page.eval_on_selector('table[data-family="on-device-detail"] tbody tr', "r => r.dataset.model")
    assert first.startswith("m · fp32 · cpu")
    ci = page.inner_text('table[data-family="on-device-detail"] tbody tr td.ci')
    assert ci.startswith("[") and ci.endswith("]")
    page.locator("#on-device-sustained").scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "evalsuite.device-sustained.png"), full_page=True)
    assert errors == []
    page.close()


def test_coreml_mac_sustained_with_a_stand_in_coremltools(monkeypatch, tmp_path):
    """coreml-mac runs only on macOS: here coremltools is a stand-in (an MLModel whose predict sleeps), enough to
    check the loads, the sustained loop, peak memory and the record it makes."""
    import sys
    import types

    from evalsuite.device.backends import coreml_mac

    loads: list[str] = []

    class FakeModel:
        def __init__(self, path, compute_units):
            loads.append(compute_units)

        def get_spec(self):
            feature = types.SimpleNamespace(name="x", type=types.SimpleNamespace(
                multiArrayType=types.SimpleNamespace(shape=[1, 4])))
            return types.SimpleNamespace(description=types.SimpleNamespace(input=[feature]))

        def predict(self, inputs):
            assert inputs["x"].shape == (1, 4)
            time.sleep(0.005)

    fake_ct = types.SimpleNamespace(models=types.SimpleNamespace(MLModel=FakeModel),
                                    ComputeUnit=types.SimpleNamespace(ALL="all", CPU_ONLY="cpu"))
    monkeypatch.setitem(sys.modules, "coremltools", fake_ct)
    monkeypatch.setattr(coreml_mac.sys, "platform", "darwin")
    pkg = tmp_path / "m.mlpackage"
    pkg.mkdir()
    (rec,) = coreml_mac.CoreMLMacBackend().time(
        TimingTarget("m", "fp16", package=pkg),
        TimingSettings(iterations=3, warmup=1, compute_unit="CPU_ONLY", extra={"duration_s": 0.2, "window_s": 0.05}))
    assert loads == ["cpu", "cpu"]  # a first and a warm load
    assert rec.load_ms is not None and rec.warm_load_ms is not None and rec.first_predict_ms is not None
    assert rec.windows and rec.duration_s is not None and rec.duration_s >= 0.2 and rec.peak_memory_mb
    assert rec.thermal_state == "unknown" and rec.compute_unit == "CPU_ONLY"
