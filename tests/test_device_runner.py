"""Device runner: Core ML builds (Linux), the host-torch backend, end-to-end generation timing, the regression
rule on synthetic histories, and the history command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from evalsuite.cli import app
from evalsuite.device import backends, build, history, models, records, regression
from evalsuite.device.backends import DeviceError, TimingSettings, TimingTarget
from evalsuite.errors import UnknownNameError

ct = pytest.importorskip("coremltools")
runner = CliRunner()


class TinyDiT(nn.Module):
    """Attention + convolution, small enough to convert in a second."""

    def __init__(self, seed=0, bump=0.0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(4, 64, 3, padding=1)
        self.qkv = nn.Linear(64, 192)
        self.mlp = nn.Linear(64, 64)
        self.out = nn.Conv2d(64, 4, 3, padding=1)
        with torch.no_grad():
            self.mlp.weight[0, 0] += bump

    def forward(self, x):
        h = self.conv(x)
        b, c, hh, ww = h.shape
        t = h.flatten(2).transpose(1, 2)
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        t = t + torch.softmax(q @ k.transpose(1, 2) / 8.0, dim=-1) @ v
        t = t + self.mlp(t)
        return self.out(t.transpose(1, 2).reshape(b, c, hh, ww))

    def example_inputs(self):
        return (torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0)),)


def tiny_dit():
    return TinyDiT()


def tiny_dit_changed():
    return TinyDiT(bump=0.5)


class Unconvertible(nn.Module):
    def forward(self, x):
        return torch.linalg.svd(x)[0]  # no Core ML translation

    def example_inputs(self):
        return (torch.randn(1, 4, 4),)


def unconvertible():
    return Unconvertible()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("coreml")
    results = build.build(models.resolve("python:tests.test_device_runner:tiny_dit"), ["fp16", "palettize4", "int8"],
                          out)
    return out, {r.variant: r for r in results}


def test_builds_variants_with_manifests(built):
    out, results = built
    assert all(r.error is None for r in results.values()), [r.error for r in results.values()]
    fp16, pal, int8 = results["fp16"].manifest, results["palettize4"].manifest, results["int8"].manifest
    assert pal["size_bytes"] < int8["size_bytes"] < fp16["size_bytes"]
    assert (fp16["weight_bits"], pal["weight_bits"], int8["weight_bits"]) == (16, 4, 8)
    assert fp16["inputs"][0]["shape"] == [1, 4, 16, 16] and fp16["outputs"][0]["shape"] == [1, 4, 16, 16]
    assert fp16["op_histogram"]["conv"] == 2 and fp16["op_histogram"]["softmax"] == 1
    assert pal["op_histogram"].get("constexpr_lut_to_dense", 0) > 0
    assert fp16["parameter_count"] == sum(p.numel() for p in TinyDiT().parameters())
    assert fp16["deployment_target"] == "iOS17" and fp16["coremltools"] == ct.__version__
    (manifest_file,) = out.glob("*-fp16.manifest.json")
    saved = json.loads(manifest_file.read_text())
    assert saved["model_hash"] == fp16["model_hash"]
    model = ct.models.MLModel(str(results["palettize4"].package), skip_model_load=True)
    assert model.get_spec().WhichOneof("Type") == "mlProgram"


def test_hash_covers_data_only_and_tracks_weights(built, tmp_path):
    _, results = built
    again = build.build(models.resolve("python:tests.test_device_runner:tiny_dit"), ["fp16"], tmp_path / "a")[0]
    assert again.manifest["model_hash"] == results["fp16"].manifest["model_hash"]  # stable across builds
    manifest_json = again.package / "Manifest.json"
    manifest_json.write_text(manifest_json.read_text().replace("{", "{ ", 1))  # Manifest.json is not hashed
    assert build.package_hash(again.package) == again.manifest["model_hash"]
    changed = build.build(models.resolve("python:tests.test_device_runner:tiny_dit_changed"), ["fp16"],
                          tmp_path / "b")[0]
    assert changed.manifest["model_hash"] != again.manifest["model_hash"]


def test_failing_variant_names_op_and_others_still_build(tmp_path, monkeypatch):
    bad = build.build(models.resolve("python:tests.test_device_runner:unconvertible"), ["fp16"], tmp_path / "u")[0]
    assert bad.package is None and "variant fp16" in bad.error and "svd" in bad.error
    assert not list((tmp_path / "u").glob("*.mlpackage"))  # nothing half-saved
    real = build.compress

    def flaky(mlmodel, spec):
        if spec.int8:
            raise RuntimeError("simulated int8 failure")
        return real(mlmodel, spec)

    monkeypatch.setattr(build, "compress", flaky)
    results = build.build(models.resolve("python:tests.test_device_runner:tiny_dit"), ["int8", "fp16"], tmp_path / "f")
    assert "variant int8" in results[0].error and results[0].package is None
    assert results[1].error is None and results[1].package.is_dir()


def test_unknown_variant_fails_before_any_work(tmp_path):
    result = runner.invoke(app, ["device", "build", "demo", "--variants", "fp16,palettize5", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "palettize5" in result.output
    assert not list(tmp_path.glob("*.mlpackage"))


# ------------------------------------------------------------------ timing
def test_host_torch_record_is_schema_valid(tmp_path):
    model = models.resolve("demo")
    recs = backends.get("host-torch").time(
        TimingTarget("demo", "fp32", model.weights_sha256, module=model.module, example_inputs=model.example_inputs),
        TimingSettings(iterations=5, warmup=1, release="v1"))
    (rec,) = recs
    assert len(rec.latencies_ms) == 5 and rec.median_ms == pytest.approx(np.median(rec.latencies_ms))
    assert rec.p90_ms >= rec.median_ms > 0 and rec.throughput == pytest.approx(1000 / rec.median_ms)
    path = records.write(tmp_path, rec)
    (loaded,) = records.load_all(tmp_path)
    assert loaded.latencies_ms == rec.latencies_ms and path.name.endswith(".json")
    assert records.trimmed_mean(np.arange(1, 11), 0.1) == pytest.approx(np.mean(np.arange(2, 10)))


def test_bad_records_are_refused(tmp_path):
    with pytest.raises(Exception, match="latencies"):
        records.TimingRecord(model="m", variant="v", backend="b", device_model="d", latencies_ms=[], release="r")
    with pytest.raises(Exception, match="lacks"):
        records.TimingRecord.from_dict({"model": "m"})
    assert not (tmp_path / "device").exists()


def test_generation_timing_has_components_and_steps():
    from evalsuite.device.generation import time_generation

    rec = time_generation(models.resolve_pipeline("demo"), 3, TimingSettings(iterations=2, warmup=0))
    assert rec.steps == 3 and set(rec.components_ms) == {"text_encoder", "denoise_step", "decoder"}
    assert all(v > 0 for v in rec.components_ms.values()) and rec.median_ms > 0  # no timing assertions: load varies
    assert len(rec.latencies_ms) == 2 and rec.throughput == pytest.approx(1000 / rec.median_ms)
    assert rec.throughput_unit == "images/s"


def test_coreml_mac_is_macos_only():
    if sys.platform == "darwin":
        pytest.skip("on macOS this backend runs")
    with pytest.raises(DeviceError, match="macOS"):
        backends.get("coreml-mac").check_available()
    result = runner.invoke(app, ["device", "time", "demo", "--backend", "coreml-mac"])
    assert result.exit_code == 2 and "macOS" in result.output


def test_backends_are_one_registry_with_plugins(tmp_path):
    """The built-in backends are found by name; an unknown name lists them; a plugin package's entry point in the
    group `evalsuite.device_backends` adds a backend `get` makes and `device time` lists."""
    assert {"host-torch", "coreml-mac", "iphone"} <= set(backends.BACKENDS.names())
    with pytest.raises(UnknownNameError, match="unknown timing backend 'no-such'") as err:
        backends.get("no-such")
    assert "coreml-mac, executorch-host, host-torch, iphone" in err.value.fix
    result = runner.invoke(app, ["device", "time", "demo", "--backend", "no-such"])
    assert result.exit_code != 0 and "unknown timing backend 'no-such'" in result.output

    site = tmp_path / "site"
    (site / "demo_timer_plugin.py").parent.mkdir()
    (site / "demo_timer_plugin.py").write_text("class DemoTimer:\n    name = 'demo-timer'\n")
    dist = site / "demo_timer_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-timer-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[evalsuite.device_backends]\ndemo-timer = demo_timer_plugin:DemoTimer\n")
    code = ("from evalsuite.device import backends\n"
            "print(type(backends.get('demo-timer')).__name__, ' '.join(backends.BACKENDS.names()))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["DemoTimer", "coreml-mac", "demo-timer", "executorch-host", "host-torch", "iphone"]


# ------------------------------------------------------------------ regression rule and history
def test_regression_rule_on_synthetic_histories():
    steady = [100, 101, 99, 102, 100, 98, 101, 100]
    assert regression.regression_events(steady) == [] and not regression.is_regression(steady)
    noisy = [100, 101, 99, 130, 100, 101, 99, 100]  # one slow release
    assert regression.regression_events(noisy) == []
    assert regression.violations(noisy)[3]
    slow = [100, 101, 99, 102, 100, 125, 127]  # two consecutive slow releases
    assert regression.regression_events(slow) == [6] and regression.is_regression(slow)
    longer = slow + [126, 128]  # still slow: one regression, not three
    assert regression.regression_events(longer) == [6]
    assert not regression.is_regression([100, 114, 114])  # under the 15% threshold
    assert regression.is_regression([100, 114, 114], threshold=1.1)


def _store_history(store, values, model="m"):
    for i, ms in enumerate(values):
        records.write(store, records.TimingRecord(
            model=model, variant="fp16", backend="iphone", device_model="iPhone17,2", compute_unit="ALL",
            latencies_ms=[ms, ms * 1.01, ms * 0.99], release=f"v{i}", timestamp=f"2026-01-{i + 1:02d}T00:00:00+00:00"))


def test_history_cli_flags_and_gates(tmp_path):
    store = tmp_path / "store"
    _store_history(store, [100, 101, 99, 102, 125, 127])
    result = runner.invoke(app, ["device", "history", "m", "--store", str(store), "--fail-on-regression"])
    assert result.exit_code == 1 and "REGRESSION" in result.stdout
    assert (store / "device" / "m-history.png").is_file()
    relaxed = runner.invoke(app, ["device", "history", "m", "--store", str(store), "--threshold", "1.5",
                                  "--fail-on-regression", "--json"])
    assert relaxed.exit_code == 0
    (series,) = json.loads(relaxed.stdout)["series"]
    assert series["releases"] == [f"v{i}" for i in range(6)] and series["regression_events"] == []
    missing = runner.invoke(app, ["device", "history", "nosuch", "--store", str(store)])
    assert missing.exit_code == 2 and "no timing records" in missing.output


def test_history_pools_repeated_measurements_of_a_release(tmp_path):
    store = tmp_path / "s"
    for i, ms in enumerate([100, 300, 110]):  # three measurements of one release
        records.write(store, records.TimingRecord(model="m", variant="v", backend="b", device_model="d",
                                                  latencies_ms=[ms], release="v1",
                                                  timestamp=f"2026-01-0{i + 1}T00:00:00+00:00"))
    (s,) = history.history(store, "m")
    assert s.releases == ["v1"] and s.median_ms == [110.0] and s.measurements == [3]
