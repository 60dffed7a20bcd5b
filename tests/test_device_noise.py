"""Noise honesty and cold start/memory in timing records (issue 19, items 2 and 5): every record states the
median's bootstrap CI (fixed seed; the same numbers as evalsuite.bootstrap.bootstrap_ci and as a hand-written
loop), p99, cold start and peak memory; old records still load; the history flags a change only beyond both the
threshold and the noise, and `device history --explain` says why for every point."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from evalsuite.bootstrap import bootstrap_ci
from evalsuite.cli import app
from evalsuite.device import history, records, regression
from evalsuite.device.backends import TimingSettings, TimingTarget, get
from evalsuite.errors import InputError

runner = CliRunner()


def _hand_median_ci(x, n_boot=1000, seed=0):
    """The documented algorithm, one resample at a time."""
    x = np.asarray(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    meds = [np.median(x[rng.integers(0, len(x), len(x))]) for _ in range(n_boot)]
    return tuple(np.percentile(meds, [2.5, 97.5]))


@pytest.mark.parametrize("n", [1, 2, 7, 50, 3001])
def test_median_ci_is_the_documented_bootstrap(n):
    x = np.random.default_rng(n).gamma(4.0, 3.0, n)
    ours = records.median_ci(x)
    assert ours == pytest.approx(_hand_median_ci(x), abs=0, rel=0)
    assert ours == bootstrap_ci(x, lambda a: float(np.median(a)), n_boot=1000, seed=0)
    assert ours[0] <= np.median(x) <= ours[1]


def test_record_states_tails_ci_and_old_records_load(tmp_path):
    lat = np.random.default_rng(3).normal(20, 2, 200).clip(1).tolist()
    rec = records.TimingRecord(model="m", variant="v", backend="b", device_model="d", latencies_ms=lat, release="r",
                               warm_load_ms=3.5, peak_memory_mb=812.0)
    assert rec.p99_ms == pytest.approx(np.percentile(lat, 99)) and rec.p99_ms >= rec.p90_ms >= rec.median_ms
    assert rec.median_ci_ms == list(_hand_median_ci(lat))
    # an old record (schema evalsuite.timing/1 before these fields): loads, derived fields filled in
    old = {"model": "m", "variant": "v", "backend": "iphone", "device_model": "iPhone17,2", "latencies_ms": [5.0, 6.0,
           7.0], "release": "v1", "median_ms": 6.0, "p90_ms": 6.8, "load_ms": 100.0, "schema": records.SCHEMA,
           "timestamp": "2025-01-01T00:00:00+00:00"}
    (tmp_path / "device").mkdir()
    (tmp_path / "device" / "old.json").write_text(json.dumps(old))
    (loaded,) = records.load_all(tmp_path)
    assert loaded.p99_ms == pytest.approx(np.percentile([5, 6, 7], 99)) and loaded.median_ci_ms == [5.0, 7.0]
    assert (loaded.warm_load_ms, loaded.peak_memory_mb, loaded.windows, loaded.duration_s) == (None,) * 4
    # derived fields are recomputed: a stored CI that disagrees with the latencies is replaced
    forged = dict(old, median_ci_ms=[0.1, 0.2], p99_ms=1.0)
    assert records.TimingRecord.from_dict(forged).median_ci_ms == [5.0, 7.0]
    with pytest.raises(InputError, match="peak_memory_mb"):
        records.TimingRecord.from_dict(dict(old, peak_memory_mb=-1))
    with pytest.raises(InputError, match="median_ci_ms"):
        records.TimingRecord.from_dict(dict(old, median_ci_ms="narrow"))


def test_host_torch_measures_peak_memory():
    module = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 64))
    (rec,) = get("host-torch").time(TimingTarget("tiny", module=module, example_inputs=(torch.randn(8, 64),)),
                                    TimingSettings(iterations=6, warmup=1))
    assert rec.peak_memory_mb is not None and rec.peak_memory_mb > 1  # a Python process holding torch: > 1 MiB
    assert "peak memory: peak RSS" in rec.notes
    assert rec.load_ms is not None and rec.first_predict_ms is not None and rec.windows is None


# ---------------------------------------------------------------------------------------- the noise-aware gate

def test_change_within_noise_is_not_a_regression():
    values = [100.0, 101.0, 99.0, 100.0, 120.0, 121.0]  # +20%: over the 1.15× threshold
    wide = [(80.0, 125.0)] * 4 + [(95.0, 140.0), (96.0, 141.0)]  # but the runs are noisy: the CIs overlap
    tight = [(v - 1, v + 1) for v in values]
    assert regression.is_regression(values)  # no CIs: the threshold alone, as before
    assert not regression.is_regression(values, cis=wide)
    assert regression.violations(values, cis=wide) == [False] * 6
    assert regression.is_regression(values, cis=wide, noise="off")
    assert regression.is_regression(values, cis=tight) and regression.regression_events(values, cis=tight) == [5]
    # 'outside': the new median above the baseline's CI high (125 from the window) -> still not flagged at 120/121
    assert not regression.is_regression(values, cis=wide, noise="outside")
    shifted = values[:4] + [130.0, 131.0]
    assert regression.is_regression(shifted, cis=wide, noise="outside")
    assert not regression.is_regression(shifted, cis=wide, noise="disjoint")  # 95 <= 125: intervals overlap
    # beyond the noise but under the threshold: not slow either
    assert not regression.is_regression([100.0, 100, 100, 110, 111], cis=[(99.9, 100.1)] * 5)


def test_explain_says_why_for_each_point():
    values = [100.0, 101.0, 99.0, 100.0, 120.0, 121.0]
    wide = [(80.0, 125.0)] * 4 + [(95.0, 140.0), (96.0, 141.0)]
    lines = regression.explain(values, cis=wide)
    assert len(lines) == 6 and "first point, no baseline" in lines[0]
    assert "within the 1.15× threshold" in lines[1] and "not slow" in lines[1]
    assert "over the 1.15× threshold" in lines[4] and "but within the noise" in lines[4]
    assert "CI low 95 <= baseline CI high 125" in lines[4]
    tight = regression.explain(values, cis=[(v - 1, v + 1) for v in values])
    assert "beyond the noise" in tight[4] and "REGRESSION" in tight[5] and "REGRESSION" not in tight[4]
    with pytest.raises(ValueError, match="noise rule"):
        regression.explain(values, noise="loud")


def _write(store, release, latencies, day, **kw):
    records.write(store, records.TimingRecord(
        model="m", variant="fp16", backend="iphone", device_model="iPhone17,2", compute_unit="ALL",
        latencies_ms=latencies, release=release, timestamp=f"2026-01-{day:02d}T00:00:00+00:00", **kw))


def test_history_gates_on_noise_and_explains(tmp_path):
    store = tmp_path / "store"
    # noisy runs (9 predictions spread 0.5x to 1.9x around the median): the last two medians are ~20% up, over
    # the threshold but within the noise
    spread = [0.5, 0.6, 0.7, 0.85, 1.0, 1.2, 1.4, 1.6, 1.9]
    for i, ms in enumerate([100, 101, 99, 100, 120, 121]):
        _write(store, f"v{i}", [ms * f for f in spread], i + 1, compile_ms=800.0, warm_load_ms=200.0,
               peak_memory_mb=512.0)
    (s,) = history.history(store, "m")
    assert s.median_ms == [100, 101, 99, 100, 120, 121]
    assert not s.latest_is_regression and s.regression_events == []
    assert all(lo <= m <= hi for m, (lo, hi) in zip(s.median_ms, s.median_ci_ms))
    assert s.compile_ms == [800.0] * 6 and s.peak_memory_mb == [512.0] * 6 and s.warm_load_ms == [200.0] * 6
    assert history.history(store, "m", noise="off")[0].latest_is_regression

    gate = runner.invoke(app, ["device", "history", "m", "--store", str(store), "--fail-on-regression", "--explain"],
                         env={"COLUMNS": "200"})
    assert gate.exit_code == 0, gate.output
    assert "within the noise" in gate.stdout and "95% CI" in gate.stdout and "p99 ms" in gate.stdout
    assert "cold start and memory" in gate.stdout and "v5:" in gate.stdout
    off = runner.invoke(app, ["device", "history", "m", "--store", str(store), "--fail-on-regression",
                              "--noise", "off", "--json"])
    assert off.exit_code == 1
    (series,) = json.loads(off.stdout)["series"]
    assert series["noise"] == "off" and len(series["median_ci_ms"]) == 6 and len(series["explanations"]) == 6
    bad = runner.invoke(app, ["device", "history", "m", "--store", str(store), "--noise", "loud"])
    assert bad.exit_code == 2 and "unknown --noise" in bad.output


def test_release_measured_twice_spans_both_intervals(tmp_path):
    store = tmp_path / "s"
    _write(store, "v1", [10.0, 10.5, 11.0], 1)
    _write(store, "v1", [12.0, 12.5, 13.0], 2)
    (s,) = history.history(store, "m")
    assert s.median_ms == [11.5] and s.measurements == [2] and s.median_ci_ms == [[10.0, 13.0]]


def test_device_time_table_shows_tails_ci_cold_start_memory(tmp_path, monkeypatch):
    store = tmp_path / "store"
    result = runner.invoke(app, ["device", "time", "python:tests.test_device_sustained:tiny_model", "--iterations",
                                 "5", "--warmup", "1", "--store", str(store), "--release", "v1"],
                           env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for header in ("p50 ms", "95% CI", "p90 ms", "p99 ms", "first load ms", "first pred ms", "peak MiB"):
        assert header in result.stdout
    (rec,) = records.load_all(store)
    assert rec.median_ci_ms is not None and rec.peak_memory_mb
