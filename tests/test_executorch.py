"""ExecuTorch on this CPU (issue 19, item 4): `device build demo --runtime executorch --variants fp32,int8` writes
XNNPACK `.pte` programs with manifests; the fp32 program's output equals eager PyTorch (FP32_ATOL) and the int8
program's deviation is measured and reported; `device time demo --backend executorch-host` times both through the
ExecuTorch runtime's Python bindings; an ExecuTorch benchmark-app JSON naming the same `.pte` joins those records.

ExecuTorch is a dev dependency: under CI (`CI` set) a missing `executorch` fails these tests, elsewhere they skip
with the install command (as tests/official.py does for the official packages)."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest
import torch
from typer.testing import CliRunner

from evalsuite.cli import app
from evalsuite.device import backends, executorch_build, history, models, records
from evalsuite.device.ingest import convert
from evalsuite.errors import InputError
from evalsuite.hashing import sha256_file
from evalsuite.provenance import environment

runner = CliRunner()
FP32_ATOL = 1e-5  # XNNPACK fp32 against eager PyTorch fp32 (measured 7e-7 on the demo, outputs of magnitude ~1)
INT8_REL_L2_MAX = 0.1  # a sanity bound only: the measured int8 deviation is reported, not a tolerance (0.037)


def _require_executorch() -> None:
    try:
        import executorch.exir  # noqa: F401
        import executorch.runtime  # noqa: F401
        import torchao  # noqa: F401
    except ImportError as exc:
        message = f"executorch is not importable ({exc}): pip install -e '.[dev]' (or 'evalsuite[executorch]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The demo's fp32 and int8 builds, made through the CLI once for the module."""
    _require_executorch()
    out = tmp_path_factory.mktemp("executorch") / "builds"
    result = runner.invoke(app, ["device", "build", "demo", "--runtime", "executorch", "--variants", "fp32,int8",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"demo_xnnpack_fp32.pte", "demo_xnnpack_fp32.manifest.json",
                                               "demo_xnnpack_int8.pte", "demo_xnnpack_int8.manifest.json"}
    return out


def _manifest(folder, variant):
    return json.loads((folder / f"demo_xnnpack_{variant}.manifest.json").read_text())


def test_pte_output_equals_eager_fp32_and_int8_deviation_is_reported(built):
    demo = models.resolve("demo")
    cases = [demo.example_inputs, *executorch_build._draws(demo.example_inputs, 2, seed=7)]
    worst_fp32, int8_rel = 0.0, []
    for inputs in cases:
        with torch.no_grad():
            ref = demo.module(*inputs)
        fp32 = executorch_build.run_pte(built / "demo_xnnpack_fp32.pte", inputs)[0]
        int8 = executorch_build.run_pte(built / "demo_xnnpack_int8.pte", inputs)[0]
        assert fp32.shape == int8.shape == ref.shape
        worst_fp32 = max(worst_fp32, float((fp32 - ref).abs().max()))
        int8_rel.append(float((int8 - ref).norm() / ref.norm()))
    print(f"\nExecuTorch XNNPACK vs eager fp32 on the demo: fp32 max abs {worst_fp32:.3g}; int8 rel L2 "
          f"{', '.join(f'{r:.3g}' for r in int8_rel)}")
    assert worst_fp32 <= FP32_ATOL
    assert all(0 < r < INT8_REL_L2_MAX for r in int8_rel)  # quantised (not equal), and not broken

    fp32_m, int8_m = _manifest(built, "fp32"), _manifest(built, "int8")
    assert fp32_m["deviation"]["max_abs"] <= FP32_ATOL
    assert 0 < int8_m["deviation"]["rel_l2"] < INT8_REL_L2_MAX and int8_m["deviation"]["max_abs"] > FP32_ATOL
    print(f"build manifests: fp32 {executorch_build.deviation_text(fp32_m)}; int8 "
          f"{executorch_build.deviation_text(int8_m)}")
    for m in (fp32_m, int8_m):
        assert m["schema"] == executorch_build.SCHEMA and m["model"] == "demo" and m["runtime"] == "executorch"
        assert m["model_hash"] == sha256_file(built / m["package"]) and m["size_bytes"] > 0
        assert m["weights_sha256"] == demo.weights_sha256 and m["delegate_calls"] > 0
        assert m["inputs"] == [{"shape": [1, 4, 32, 32], "dtype": "float32"}, {"shape": [1], "dtype": "float32"}]
    assert int8_m["weight_bits"] == 8 and int8_m["calibration"]["samples"] == executorch_build.CALIBRATION_SAMPLES
    assert int8_m["size_bytes"] < 0.4 * fp32_m["size_bytes"]  # int8 weights: about a quarter of fp32's bytes


def test_pte_names_read_back_like_executorch_benchmark_app():
    """ExecuTorch's Android benchmark app (extension/benchmark/android/benchmark/app/src/main/java/org/pytorch/
    minibench/BenchmarkMetric.kt, extractBackendAndQuantization) matches the whole file name without `.pte`
    against `(?<name>\\w+)_(?<backend>[\\w+]+)_(?<quantization>\\w+)` (greedy; Java `\\w` is ASCII) and otherwise
    reports the whole name with empty backend and quantization. Worked by hand from that pattern."""
    assert executorch_build.pte_stem("demo", "int8") == "demo_xnnpack_int8"
    assert executorch_build.parse_app_name("demo_xnnpack_int8") == ("demo", "xnnpack", "int8")
    # the greedy name takes every underscore but the last two: a model name with underscores survives
    assert executorch_build.parse_app_name("my_dit_xnnpack_fp32") == ("my_dit", "xnnpack", "fp32")
    assert executorch_build.parse_app_name("tinyllama_xnnpack+custom_fp32") == ("tinyllama", "xnnpack+custom",
                                                                                 "fp32")
    assert executorch_build.parse_app_name("demo-net_xnnpack_fp32") is None  # '-' is not \w: the app would not split
    stem = executorch_build.pte_stem("python:my_pkg.nets:tiny-dit", "fp32")
    assert stem == "python_my_pkg_nets_tiny_dit_xnnpack_fp32"
    assert executorch_build.parse_app_name(stem) == ("python_my_pkg_nets_tiny_dit", "xnnpack", "fp32")


def test_executorch_host_times_every_build_and_history_shows_them(built, tmp_path):
    store = tmp_path / "store"
    result = runner.invoke(app, ["device", "time", "demo", "--backend", "executorch-host", "--package", str(built),
                                 "--iterations", "5", "--warmup", "1", "--release", "v1", "--store", str(store)])
    assert result.exit_code == 0, result.output
    recs = {r.variant: r for r in records.load_all(store)}
    assert set(recs) == {"fp32", "int8"}
    for variant, rec in recs.items():
        assert rec.backend == "executorch-host" and rec.compute_unit == "xnnpack" and rec.model == "demo"
        assert rec.device_model == environment("cpu")["cpu"] and rec.iterations == 5 and len(rec.latencies_ms) == 5
        assert rec.model_hash == sha256_file(built / f"demo_xnnpack_{variant}.pte")
        assert rec.load_ms and rec.load_ms > 0 and rec.first_predict_ms and rec.first_predict_ms > 0
        assert "rel L2" in rec.notes and f"demo_xnnpack_{variant}.pte" in rec.notes
    print(f"\nexecutorch-host on {recs['fp32'].device_model}: fp32 median {recs['fp32'].median_ms:.3g} ms, int8 "
          f"median {recs['int8'].median_ms:.3g} ms ({recs['int8'].notes.split('; ')[-1]})")

    one = runner.invoke(app, ["device", "time", "demo", "--backend", "executorch-host", "--package",
                              str(built / "demo_xnnpack_int8.pte"), "--iterations", "2", "--warmup", "0",
                              "--release", "v2", "--store", str(store)])
    assert one.exit_code == 0, one.output
    series = history.history(store, "demo", backend="executorch-host")
    assert {(s.variant, s.compute_unit, tuple(sorted(s.releases))) for s in series} == {
        ("fp32", "xnnpack", ("v1",)), ("int8", "xnnpack", ("v1", "v2"))}
    shown = runner.invoke(app, ["device", "history", "demo", "--backend", "executorch-host", "--store", str(store)])
    assert shown.exit_code == 0, shown.output


def test_executorch_host_uses_given_example_inputs(built):
    demo = models.resolve("demo")
    target = backends.TimingTarget(model="demo", variant="fp32", package=built / "demo_xnnpack_fp32.pte",
                                   example_inputs=demo.example_inputs)
    (rec,) = backends.get("executorch-host").time(target, backends.TimingSettings(iterations=2, warmup=0))
    assert rec.model_hash == sha256_file(built / "demo_xnnpack_fp32.pte") and len(rec.latencies_ms) == 2


def _android_json(stem: str, trimmean: float = 9.5) -> list[dict]:
    """What ExecuTorch's Android benchmark app (minibench ModelRunner.kt) writes for `<stem>.pte`."""
    name, backend, quant = executorch_build.parse_app_name(stem) or (stem, "", "")
    model = {"name": name, "backend": backend, "quantization": quant}
    device = {"device": "samsung", "arch": "SM-S928B", "os": "Android 14", "totalMem": 12 << 30,
              "availMem": 5 << 30}
    return [{"benchmarkModel": model, "metric": metric, "actualValue": value, "targetValue": 0.0,
             "deviceInfo": device}
            for metric, value in (("avg_inference_latency(ms)", trimmean + 0.8),
                                  ("trimmean_inference_latency(ms)", trimmean), ("model_load_time(ms)", 41.0),
                                  ("load_status", 0.0), ("ram_pss_usage(mb)", 23.5))]


def test_android_benchmark_json_joins_the_host_records(built, tmp_path):
    store = tmp_path / "store"
    timed = runner.invoke(app, ["device", "time", "demo", "--backend", "executorch-host", "--package", str(built),
                                "--variant", "int8", "--iterations", "3", "--warmup", "0", "--release", "v1",
                                "--store", str(store)])
    assert timed.exit_code == 0, timed.output
    (host,) = records.load_all(store)
    phone_file = tmp_path / "benchmark_results.json"
    phone_file.write_text(json.dumps(_android_json("demo_xnnpack_int8")))

    (bare,) = convert(phone_file, release="v1")  # without the builds: the names already match, the hash is unknown
    assert (bare.model, bare.variant, bare.compute_unit, bare.model_hash) == ("demo", "int8", "xnnpack", "")

    result = runner.invoke(app, ["device", "ingest", str(phone_file), "--builds", str(built), "--release", "v1",
                                 "--store", str(store)])
    assert result.exit_code == 0, result.output
    phone = next(r for r in records.load_all(store) if r.backend == "executorch")
    assert (phone.model, phone.variant, phone.compute_unit) == (host.model, host.variant, host.compute_unit)
    assert phone.model_hash == host.model_hash == sha256_file(built / "demo_xnnpack_int8.pte")
    assert phone.device_model == "SM-S928B" and phone.median_ms == 9.5 and phone.load_ms == 41.0
    series = {(s.device, s.backend, s.compute_unit, s.variant) for s in history.history(store, "demo")}
    assert series == {(host.device_model, "executorch-host", "xnnpack", "int8"), ("SM-S928B", "executorch", "xnnpack",
                                                                                  "int8")}

    other = tmp_path / "other.json"
    other.write_text(json.dumps(_android_json("demo_xnnpack_fp16")))
    with pytest.raises(InputError, match="no ExecuTorch build manifest demo_xnnpack_fp16.manifest.json"):
        convert(other, builds=built)


def test_unusable_inputs_are_one_line_errors(built, tmp_path):
    bad = runner.invoke(app, ["device", "build", "demo", "--runtime", "executorch", "--variants", "fp32,palettize4",
                              "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "palettize4" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "x").exists()  # checked before any work
    none = runner.invoke(app, ["device", "time", "demo", "--backend", "executorch-host", "--package",
                               str(tmp_path)])
    assert none.exit_code == 2 and "--runtime executorch" in none.output and "Traceback" not in none.output

    tampered = tmp_path / "t"
    shutil.copytree(built, tampered)
    with open(tampered / "demo_xnnpack_fp32.pte", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(InputError, match="does not match its build manifest"):
        executorch_build.timing_targets("demo", tampered, "fp32")
    garbage = tmp_path / "garbage.pte"
    garbage.write_bytes(b"not a program")
    broken = runner.invoke(app, ["device", "time", "demo", "--backend", "executorch-host", "--package", str(garbage),
                                 "--store", str(tmp_path / "store")])
    assert broken.exit_code == 2 and "could not run" in broken.output and "Traceback" not in broken.output


def test_missing_executorch_is_an_install_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "executorch.runtime", None)  # import of it now raises ImportError
    with pytest.raises(InputError, match="ExecuTorch is not usable here") as err:
        executorch_build.require_executorch()
    assert "pip install" in (err.value.fix or "")
    with pytest.raises(InputError):
        backends.get("executorch-host").check_available()
    result = runner.invoke(app, ["device", "build", "demo", "--runtime", "executorch", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "pip install" in result.output and "Traceback" not in result.output


def test_executorch_host_sustained_run_and_peak_memory(built):
    """--duration on executorch-host: predictions until the duration has passed, split into windows, with the
    peak memory of the timed calls, as host-torch does."""
    target = backends.TimingTarget(model="demo", variant="int8", package=built / "demo_xnnpack_int8.pte")
    settings = backends.TimingSettings(iterations=3, warmup=0)
    settings.extra.update(duration_s=0.5, window_s=0.1)
    (rec,) = backends.get("executorch-host").time(target, settings)
    assert rec.duration_s is not None and rec.duration_s >= 0.5 and rec.iterations == len(rec.latencies_ms) >= 3
    assert rec.windows and sum(w["end"] - w["start"] for w in rec.windows) == len(rec.latencies_ms)
    assert rec.peak_memory_mb is None or rec.peak_memory_mb > 0
    assert "peak memory:" in rec.notes
