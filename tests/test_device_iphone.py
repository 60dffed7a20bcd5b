"""The iPhone backend and the host<->app protocol, with a fake transport standing in for pymobiledevice3 and the app:
the install -> push -> launch -> pull sequence, result parsing into timing records, time-outs, crashes, malformed
results, device checks, and `ingest` of app and ExecuTorch result files (all or nothing)."""

from __future__ import annotations

import io
import json
import stat
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evalsuite.device import ingest, protocol, records
from evalsuite.device.backends import BACKENDS, DeviceError, TimingSettings, TimingTarget
from evalsuite.device.backends.iphone import IPhoneBackend, PyMobileDevice3Transport
from evalsuite.errors import InputError

IPHONE = {"udid": "00008140-000A", "name": "Test iPhone", "product_type": "iPhone17,2", "os_version": "18.1",
          "locked": False, "developer_mode": True}
SYSLOG = "Jan 1 12:00:00 EvalsuiteBench[311] <Notice>: loading model for CPU_AND_NE\nkernel[0]: unrelated line\n"
LAT = {"ALL": [4.0, 5.0, 6.0, 5.5, 4.5, 7.0, 5.0, 5.2], "CPU_AND_NE": [3.0, 3.5, 3.2, 3.1, 2.9, 3.3, 8.0, 3.0],
       "CPU_AND_GPU": [2.0, 2.1], "CPU_ONLY": [9.0, 9.5]}


def app_result(request: dict, **overrides) -> dict:
    """What the benchmark app writes for `request` (schema evalsuite.ios-result/1)."""
    units = []
    for unit in request["compute_units"]:
        units.append({"compute_unit": unit, "compile_ms": 812.5, "first_load_ms": 15234.0, "warm_load_ms": 210.0,
                      "first_predict_ms": 40.25, "latencies_ms": LAT[unit][: request["iterations"]],
                      "thermal_state": "fair"})
    result = {"schema": protocol.RESULT_SCHEMA, "request_id": request["request_id"], "status": "ok", "error": None,
              "device_model": "iPhone17,2", "os_version": "18.1", "thermal_state": "nominal",
              "app_version": "1.0 (1)", "timestamp": "2025-03-01T10:00:00Z", "iterations": request["iterations"],
              "warmup": request["warmup"], "meta": request["meta"], "compute_units": units}
    result.update(overrides)
    return result


class FakeTransport:
    """Records every call and simulates the app: on launch it reads the pushed request and package, then (after
    `delay_pulls` polls) the result appears in its Documents folder."""

    def __init__(self, mode: str = "ok", devices: list[dict] | None = None, delay_pulls: int = 1):
        self.mode = mode
        self._devices = [dict(IPHONE)] if devices is None else devices
        self.delay_pulls = delay_pulls
        self.calls: list[tuple] = []
        self.files: dict[str, bytes] = {}
        self.pending: tuple[str, bytes] | None = None
        self.request: dict | None = None
        self.polls = 0

    def devices(self):
        self.calls.append(("devices",))
        return [dict(d) for d in self._devices]

    def install(self, ipa):
        self.calls.append(("install", Path(ipa).name))

    def push(self, bundle_id, local, remote):
        self.calls.append(("push", bundle_id, remote))
        self.files[remote] = Path(local).read_bytes()

    def launch(self, bundle_id, args):
        self.calls.append(("launch", bundle_id, tuple(args)))
        assert args[0] == "--request"
        self.request = request = json.loads(self.files[args[1]])
        assert zipfile.is_zipfile(io.BytesIO(self.files["/Documents/" + request["package"]]))
        remote = "/Documents/" + request["result_file"]
        self.files["/Documents/" + request["log_file"]] = b"compiling\nloading CPU_AND_NE\n"
        if self.mode == "never":
            return
        body = {"ok": lambda: app_result(request),
                "error": lambda: app_result(request, status="error", compute_units=[],
                                            error="MLModel load failed: not enough memory for the ANE program"),
                "crash": lambda: {"schema": protocol.RESULT_SCHEMA, "request_id": request["request_id"],
                                  "status": "error", "error": "the app crashed (signal 11)", "crash": "SIGSEGV"},
                "v2": lambda: app_result(request, schema="evalsuite.ios-result/2"),
                "missing": lambda: {k: v for k, v in app_result(request).items() if k != "device_model"},
                }.get(self.mode)
        data = b'{"schema": "evalsuite.ios-res' if self.mode == "garbage" else json.dumps(body()).encode()
        self.pending = (remote, data)

    def pull(self, bundle_id, remote, local):
        self.calls.append(("pull", bundle_id, remote))
        if self.pending and remote == self.pending[0]:
            self.polls += 1
            if self.polls >= self.delay_pulls:
                self.files[remote] = self.pending[1]
        if remote not in self.files:
            return False
        Path(local).write_bytes(self.files[remote])
        return True

    def syslog(self, seconds):
        self.calls.append(("syslog", seconds))
        return SYSLOG


@pytest.fixture
def package(tmp_path) -> Path:
    pkg = tmp_path / "tiny_fp16.mlpackage"
    (pkg / "Data" / "com.apple.CoreML" / "weights").mkdir(parents=True)
    (pkg / "Manifest.json").write_text('{"fileFormatVersion": "1.0.0"}')
    (pkg / "Data" / "com.apple.CoreML" / "model.mlmodel").write_bytes(b"\x08\x07spec")
    (pkg / "Data" / "com.apple.CoreML" / "weights" / "weight.bin").write_bytes(bytes(range(256)) * 8)
    return pkg


def target(pkg) -> TimingTarget:
    return TimingTarget(model="tiny", variant="fp16", model_hash="abc123", package=pkg)


def settings(**kw) -> TimingSettings:
    base: dict[str, Any] = dict(iterations=8, warmup=2, compute_unit="ALL,CPU_AND_NE", release="v0.3",
                                git_sha="deadbeef", timeout_s=5.0,
                                extra={"inputs": [{"name": "x", "shape": [1, 3, 32, 32], "dtype": "float16"}]})
    base.update(kw)
    return TimingSettings(**base)


def backend(fake, **kw) -> IPhoneBackend:
    return IPhoneBackend(transport=fake, poll_s=0.01, syslog_s=0.1, **kw)


# ------------------------------------------------------------------------------------------------- good runs

def test_registered_as_iphone():
    assert BACKENDS.get("iphone") is IPhoneBackend


def test_protocol_and_ingest_are_apart():
    """The protocol module holds the host<->app schemas only; record ingestion lives in evalsuite.device.ingest, and
    the names that moved there still resolve through the protocol module for older callers."""
    assert protocol.ingest is ingest.ingest and protocol.convert is ingest.convert
    assert protocol.parse_executorch is ingest.parse_executorch
    assert "ingest" not in protocol.__all__ and {"make_request", "parse_result", "zip_package"} <= set(protocol.__all__)
    with pytest.raises(AttributeError):
        protocol.no_such_name  # noqa: B018


def test_sequence_and_records(package, tmp_path):
    ipa = tmp_path / "EvalsuiteBench.ipa"
    ipa.write_bytes(b"PK")
    fake = FakeTransport(delay_pulls=3)
    recs = backend(fake, ipa=ipa).time(target(package), settings())

    steps = [c[0] for c in fake.calls if c[0] != "devices"]
    assert steps == ["install", "push", "push", "launch", "pull", "pull", "pull"]
    request = fake.request
    rid = request["request_id"]
    pushes = [c[2] for c in fake.calls if c[0] == "push"]
    assert pushes == [f"/Documents/{rid}.mlpackage.zip", f"/Documents/{rid}.request.json"]
    assert ("launch", "org.evalsuite.bench", ("--request", f"/Documents/{rid}.request.json")) in fake.calls
    assert {c[2] for c in fake.calls if c[0] == "pull"} == {f"/Documents/{rid}.result.json"}

    assert request["schema"] == "evalsuite.ios-request/1"
    assert request["iterations"] == 8 and request["warmup"] == 2
    assert request["compute_units"] == ["ALL", "CPU_AND_NE"]
    assert request["inputs"] == [{"name": "x", "shape": [1, 3, 32, 32], "dtype": "float16"}]
    assert request["meta"] == {"model": "tiny", "variant": "fp16", "model_hash": "abc123", "release": "v0.3",
                               "git_sha": "deadbeef"}
    with zipfile.ZipFile(io.BytesIO(fake.files[f"/Documents/{rid}.mlpackage.zip"])) as zf:
        names = sorted(zf.namelist())
        assert names == ["tiny_fp16.mlpackage/Data/com.apple.CoreML/model.mlmodel",
                         "tiny_fp16.mlpackage/Data/com.apple.CoreML/weights/weight.bin",
                         "tiny_fp16.mlpackage/Manifest.json"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        assert zf.read(names[1]) == bytes(range(256)) * 8

    assert [r.compute_unit for r in recs] == ["ALL", "CPU_AND_NE"]
    for r in recs:
        lat = np.array(LAT[r.compute_unit])
        assert r.schema == records.SCHEMA and r.backend == "iphone"
        assert (r.model, r.variant, r.model_hash, r.release, r.git_sha) == ("tiny", "fp16", "abc123", "v0.3",
                                                                           "deadbeef")
        assert (r.device_model, r.os_version, r.thermal_state) == ("iPhone17,2", "18.1", "fair")
        assert r.latencies_ms == lat.tolist() and r.iterations == 8 and r.warmup == 2
        assert r.median_ms == pytest.approx(np.median(lat)) and r.p90_ms == pytest.approx(np.percentile(lat, 90))
        assert (r.compile_ms, r.load_ms, r.first_predict_ms) == (812.5, 15234.0, 40.25)
        assert "warm load 210.0 ms" in r.notes
        assert r.timestamp == "2025-03-01T10:00:00+00:00"
    # the caller stores them; they survive the round trip
    store = tmp_path / "store"
    for r in recs:
        records.write(store, r)
    assert sorted(r.compute_unit for r in records.load_all(store)) == ["ALL", "CPU_AND_NE"]


def test_each_means_all_four_units(package):
    fake = FakeTransport()
    recs = backend(fake).time(target(package), settings(compute_unit="each", iterations=2))
    assert [r.compute_unit for r in recs] == list(protocol.COMPUTE_UNITS)
    assert not any(c[0] == "install" for c in fake.calls)  # no .ipa given: the app is assumed installed



def test_zip_is_the_form_the_app_reads(package, tmp_path):
    """StoredZip.swift reads entries one after another from their local headers: method 0, sizes in the header
    (no data-descriptor flag), name then extra then data. Walk the host's zip the same way."""
    from evalsuite.device.protocol import zip_package

    raw = zip_package(package, tmp_path / "p.zip").read_bytes()
    offset, found = 0, {}
    while int.from_bytes(raw[offset:offset + 4], "little") == 0x04034B50:
        flags, method = (int.from_bytes(raw[offset + k:offset + k + 2], "little") for k in (6, 8))
        csize, size = (int.from_bytes(raw[offset + k:offset + k + 4], "little") for k in (18, 22))
        nlen, xlen = (int.from_bytes(raw[offset + k:offset + k + 2], "little") for k in (26, 28))
        assert flags & 0x9 == 0 and method == 0 and csize == size
        name = raw[offset + 30:offset + 30 + nlen].decode()
        start = offset + 30 + nlen + xlen
        found[name] = raw[start:start + size]
        offset = start + size
    assert int.from_bytes(raw[offset:offset + 4], "little") == 0x02014B50  # then the central directory
    assert found == {f"tiny_fp16.mlpackage/{p.relative_to(package).as_posix()}": p.read_bytes()
                     for p in package.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------------------------------------- failures

def test_timeout_raises_with_syslog(package):
    fake = FakeTransport(mode="never")
    t0 = time.monotonic()
    with pytest.raises(DeviceError) as err:
        backend(fake).time(target(package), settings(timeout_s=0.2))
    assert time.monotonic() - t0 < 3
    text = str(err.value)
    assert "time-out" in text and "0.2 s" in text
    assert "EvalsuiteBench[311] <Notice>: loading model for CPU_AND_NE" in text
    assert "compiling" in text  # the app's own progress log
    assert "--timeout" in err.value.fix
    assert sum(c[0] == "pull" for c in fake.calls) > 2


def test_app_error_status(package):
    with pytest.raises(DeviceError) as err:
        backend(FakeTransport(mode="error")).time(target(package), settings())
    assert "MLModel load failed: not enough memory for the ANE program" in str(err.value)


def test_app_crash_marker(package):
    with pytest.raises(DeviceError) as err:
        backend(FakeTransport(mode="crash")).time(target(package), settings())
    assert "crashed" in err.value.message and "SIGSEGV" in err.value.message
    assert "EvalsuiteBench[311]" in str(err.value)


def test_result_not_json(package):
    with pytest.raises(InputError, match="not valid JSON"):
        backend(FakeTransport(mode="garbage")).time(target(package), settings())


def test_result_missing_fields(package):
    with pytest.raises(InputError) as err:
        backend(FakeTransport(mode="missing")).time(target(package), settings())
    assert "device_model" in str(err.value)


def test_unknown_schema_version(package):
    with pytest.raises(InputError) as err:
        backend(FakeTransport(mode="v2")).time(target(package), settings())
    assert "evalsuite.ios-result/2" in str(err.value) and "evalsuite.ios-result/1" in str(err.value)


def test_parse_result_missing_unit_fields_named():
    request = protocol.make_request("p.mlpackage.zip", iterations=2, warmup=0, compute_units="ALL")
    data = app_result(request)
    del data["compute_units"][0]["latencies_ms"], data["compute_units"][0]["warm_load_ms"]
    with pytest.raises(InputError) as err:
        protocol.parse_result(data)
    assert "compute_units[0].warm_load_ms" in str(err.value) and "compute_units[0].latencies_ms" in str(err.value)


def test_parse_result_needs_model_and_rejects_bad_latencies():
    request = protocol.make_request("p.mlpackage.zip", iterations=2, warmup=0, compute_units="ALL")
    with pytest.raises(InputError, match="model"):
        protocol.parse_result(app_result(request, meta={}))
    data = app_result(request)
    data["compute_units"][0]["latencies_ms"] = [1.0, -2.0]
    with pytest.raises(InputError, match="unusable latencies"):
        protocol.parse_result(data, model="m", variant="fp16")
    with pytest.raises(InputError, match="stale"):
        protocol.parse_result(app_result(request), model="m", variant="fp16", request_id="another")
    recs = protocol.parse_result(json.dumps(app_result(request)).encode(), model="m", variant="fp16")
    assert recs[0].release == "unreleased" and recs[0].latencies_ms == LAT["ALL"][:2]


@pytest.mark.parametrize("device, message, fix", [
    (None, "no iPhone connected", "USB"),
    ({"locked": True}, "is locked", "unlock"),
    ({"developer_mode": False}, "Developer Mode is off", "mounter auto-mount"),
])
def test_device_checks(package, device, message, fix):
    fake = FakeTransport(devices=[] if device is None else [{**IPHONE, **device}])
    with pytest.raises(DeviceError) as err:
        backend(fake).time(target(package), settings())
    assert message in err.value.message and fix in err.value.fix
    assert not any(c[0] in ("push", "launch") for c in fake.calls)
    if device and "developer_mode" in device:
        assert "Developer Mode" in err.value.fix


def test_several_phones_need_a_choice():
    fake = FakeTransport(devices=[IPHONE, {**IPHONE, "udid": "other"}])
    with pytest.raises(DeviceError, match="2 iPhones") as err:
        backend(fake).check_available()
    assert "EVALSUITE_IPHONE_UDID" in err.value.fix


def test_missing_package(tmp_path):
    fake = FakeTransport()
    with pytest.raises(DeviceError, match="package") as err:
        backend(fake).time(TimingTarget(model="tiny"), settings())
    assert "evalsuite device build" in err.value.fix
    with pytest.raises(DeviceError, match="not an existing .mlpackage"):
        backend(fake).time(target(tmp_path / "nope.mlpackage"), settings())
    assert not any(c[0] in ("push", "launch") for c in fake.calls)


def test_unknown_compute_unit(package):
    with pytest.raises(InputError, match="NPU"):
        backend(FakeTransport()).time(target(package), settings(compute_unit="NPU"))


# ---------------------------------------------------------------------------------------------------- ingest

EXECUTORCH = [
    {"benchmarkModel": {"name": "tiny_unet", "backend": "xnnpack", "quantization": "q8"},
     "metric": "avg_inference_latency(ms)", "actualValue": 21.5, "targetValue": 0,
     "deviceInfo": {"arch": "iPhone 15 Pro", "device": "Apple", "os": "iOS 17.2", "availMem": 0, "totalMem": 0}},
    {"benchmarkModel": {"name": "tiny_unet", "backend": "xnnpack", "quantization": "q8"},
     "metric": "trimmean_inference_latency(ms)", "actualValue": 20.25, "targetValue": 0,
     "deviceInfo": {"arch": "iPhone 15 Pro", "device": "Apple", "os": "iOS 17.2", "availMem": 0, "totalMem": 0}},
    {"benchmarkModel": {"name": "tiny_unet", "backend": "xnnpack", "quantization": "q8"},
     "metric": "model_load_time(ms)", "actualValue": 130.0, "targetValue": 0,
     "deviceInfo": {"arch": "iPhone 15 Pro", "device": "Apple", "os": "iOS 17.2", "availMem": 0, "totalMem": 0}},
    {"benchmarkModel": {"name": "tiny_unet", "backend": "xnnpack", "quantization": "q8"},
     "metric": "load_status", "actualValue": 0, "targetValue": 0,
     "deviceInfo": {"arch": "iPhone 15 Pro", "device": "Apple", "os": "iOS 17.2", "availMem": 0, "totalMem": 0}},
    {"benchmarkModel": {"name": "tiny_vae", "backend": "coreml", "quantization": ""},
     "metric": "avg_inference_latency(ms)", "actualValue": 7.75, "targetValue": 0,
     "deviceInfo": {"arch": "iPhone 15 Pro", "device": "Apple", "os": "iOS 17.2", "availMem": 0, "totalMem": 0}},
    {"benchmarkModel": {"name": "broken", "backend": "mps", "quantization": ""},
     "metric": "avg_inference_latency(ms)", "actualValue": 0, "targetValue": 0,
     "deviceInfo": {"arch": "iPhone 15 Pro", "device": "Apple", "os": "iOS 17.2", "availMem": 0, "totalMem": 0}},
    {"benchmarkModel": {"name": "broken", "backend": "mps", "quantization": ""},
     "metric": "load_status", "actualValue": 3, "targetValue": 0,
     "deviceInfo": {"arch": "iPhone 15 Pro", "device": "Apple", "os": "iOS 17.2", "availMem": 0, "totalMem": 0}},
]


def test_ingest_app_result(tmp_path):
    request = protocol.make_request("p.mlpackage.zip", iterations=8, warmup=1, compute_units="ALL,CPU_AND_NE",
                                    meta={"model": "tiny", "variant": "fp16", "model_hash": "h", "release": "v1",
                                          "git_sha": "s"})
    path = tmp_path / "result.json"
    path.write_text(json.dumps(app_result(request)))
    store = tmp_path / "store"
    written = ingest.ingest(path, store)
    assert len(written) == 2 and all(p.parent == store / "device" for p in written)
    loaded = records.load_all(store)
    assert sorted(r.compute_unit for r in loaded) == ["ALL", "CPU_AND_NE"]
    assert {(r.model, r.variant, r.release, r.backend, r.device_model) for r in loaded} == {
        ("tiny", "fp16", "v1", "iphone", "iPhone17,2")}
    assert ingest.ingest(path, tmp_path / "other", release="v2") and \
        {r.release for r in records.load_all(tmp_path / "other")} == {"v2"}
    # the same file twice: refused, and nothing more is stored
    with pytest.raises(InputError, match="already ingested"):
        ingest.ingest(path, store)
    assert len(list((store / "device").glob("*.json"))) == 2


def test_ingested_records_carry_the_variant_id_so_they_join_quality_results(tmp_path):
    vid = "demo@1?compression=palettize4&steps=4#w=0123456789abcdef"
    request = protocol.make_request("p.mlpackage.zip", iterations=8, warmup=1, compute_units="ALL",
                                    meta={"model": "demo", "variant": "palettize4", "variant_id": vid})
    path = tmp_path / "result.json"
    path.write_text(json.dumps(app_result(request)))
    ingest.ingest(path, tmp_path / "a")  # the app echoes the request's meta, variant id included
    assert {r.variant_id for r in records.load_all(tmp_path / "a")} == {vid}
    with pytest.raises(InputError, match="measured variant .* not demo@1"):  # a file naming another variant
        ingest.ingest(path, tmp_path / "b", variant_id="demo@1")
    assert not (tmp_path / "b" / "device").exists() or not list((tmp_path / "b" / "device").glob("*.json"))
    et = tmp_path / "benchmark_results.json"  # ExecuTorch's JSON has no variant id: --variant-id stamps it
    et.write_text(json.dumps(EXECUTORCH))
    ingest.ingest(et, tmp_path / "c", release="et", variant_id=vid)
    assert {r.variant_id for r in records.load_all(tmp_path / "c")} == {vid}


def test_ingest_executorch(tmp_path):
    path = tmp_path / "benchmark_results.json"
    path.write_text(json.dumps(EXECUTORCH))
    store = tmp_path / "store"
    assert len(ingest.ingest(path, store, release="et-0.5")) == 2
    loaded = {r.model: r for r in records.load_all(store)}
    assert set(loaded) == {"tiny_unet", "tiny_vae"}  # `broken` failed to load and is left out
    unet, vae = loaded["tiny_unet"], loaded["tiny_vae"]
    assert unet.backend == "executorch" and unet.compute_unit == "xnnpack" and unet.variant == "q8"
    assert unet.latencies_ms == [20.25] and unet.median_ms == 20.25 and unet.load_ms == 130.0
    assert (unet.device_model, unet.os_version, unet.release) == ("iPhone 15 Pro", "iOS 17.2", "et-0.5")
    assert "aggregates only" in unet.notes and "trimmean_inference_latency(ms)" in unet.notes
    assert vae.latencies_ms == [7.75] and vae.variant == "fp32" and "avg_inference_latency(ms)" in vae.notes


@pytest.mark.parametrize("content", [
    "not json at all",
    json.dumps([{**EXECUTORCH[0], "actualValue": None}]),
    json.dumps([EXECUTORCH[0], {k: v for k, v in EXECUTORCH[1].items() if k != "deviceInfo"}]),
    json.dumps({"schema": "evalsuite.ios-result/9"}),
    json.dumps({"hello": "world"}),
])
def test_ingest_bad_file_stores_nothing(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    store = tmp_path / "store"
    with pytest.raises(InputError):
        ingest.ingest(path, store)
    assert not (store / "device").exists() or not any((store / "device").iterdir())


def test_ingest_validates_every_record_first(tmp_path):
    request = protocol.make_request("p.mlpackage.zip", iterations=8, warmup=1, compute_units="ALL,CPU_AND_NE",
                                    meta={"model": "tiny", "variant": "fp16"})
    data = app_result(request)
    data["compute_units"][1]["latencies_ms"] = [0.0] * 8  # the second unit is unusable: the first is not stored
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="compute_units\\[1\\]"):
        ingest.ingest(path, tmp_path / "store")
    assert not (tmp_path / "store" / "device").exists()
    # an app error result is a failed run: nothing stored either
    path.write_text(json.dumps(app_result(request, status="error", error="boom")))
    with pytest.raises(DeviceError, match="boom"):
        ingest.ingest(path, tmp_path / "store")
    assert not (tmp_path / "store" / "device").exists()


def test_make_request_validation():
    with pytest.raises(InputError, match="dtype"):
        protocol.make_request("p.zip", iterations=1, warmup=0, compute_units="ALL",
                              inputs=[{"name": "x", "shape": [1], "dtype": "bfloat16"}])
    with pytest.raises(InputError, match="plain file name"):
        protocol.make_request("../p.zip", iterations=1, warmup=0, compute_units="ALL")
    with pytest.raises(InputError, match="repeated"):
        protocol.make_request("p.zip", iterations=1, warmup=0, compute_units="ALL,all")


# ------------------------------------------------------------------------------------------ pymobiledevice3

def test_pymobiledevice3_missing():
    import importlib.util

    if importlib.util.find_spec("pymobiledevice3") is not None:
        pytest.skip("pymobiledevice3 is installed here")
    with pytest.raises(DeviceError) as err:
        PyMobileDevice3Transport().devices()
    assert "pip install pymobiledevice3" in err.value.fix
    with pytest.raises(DeviceError) as err:
        IPhoneBackend().check_available()
    assert "pip install pymobiledevice3" in err.value.fix


FAKE_PMD3 = r'''#!{python}
import json, sys
args = sys.argv[3:]  # after "-m pymobiledevice3"
open({log!r}, "a").write(json.dumps(args) + "\n")
if args[:2] == ["usbmux", "list"]:
    print("\x1b[1m" + json.dumps([{{"Identifier": "U1", "ProductType": "iPhone17,2", "ProductVersion": "18.1",
                                   "DeviceName": "Bench"}}]) + "\x1b[0m")
elif args[:2] == ["lockdown", "info"]:
    print(json.dumps({{"PasswordProtected": False, "ProductType": "iPhone17,2"}}))
elif args[:2] == ["amfi", "developer-mode-status"]:
    print("true")
elif args[:2] == ["apps", "pull"]:
    if args[3].endswith("missing.json"):
        sys.stderr.write("pymobiledevice3.exceptions.AfcFileNotFoundError: OBJECT_NOT_FOUND\n"); sys.exit(1)
    open(args[4], "w").write("{{}}")
elif args[:1] == ["nomodule"]:
    sys.stderr.write("/usr/bin/python3: No module named pymobiledevice3\n"); sys.exit(1)
'''


def test_pymobiledevice3_transport_commands(tmp_path):
    log = tmp_path / "calls.jsonl"
    script = tmp_path / "fakepython"
    script.write_text(FAKE_PMD3.format(python=sys.executable, log=str(log)))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    tr = PyMobileDevice3Transport(python=str(script), udid="U1")
    assert tr.devices() == [{"udid": "U1", "name": "Bench", "product_type": "iPhone17,2", "os_version": "18.1",
                             "locked": False, "developer_mode": True}]
    assert tr.pull("org.evalsuite.bench", "/Documents/missing.json", tmp_path / "m.json") is False
    assert tr.pull("org.evalsuite.bench", "/Documents/r.json", tmp_path / "r.json") is True
    tr.push("org.evalsuite.bench", tmp_path / "r.json", "/Documents/r2.json")
    tr.launch("org.evalsuite.bench", ["--request", "/Documents/a b.json"])
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls[0] == ["usbmux", "list"]
    assert ["apps", "push", "org.evalsuite.bench", str(tmp_path / "r.json"), "/Documents/r2.json", "--udid", "U1"] \
        in calls
    assert ["developer", "dvt", "launch", "org.evalsuite.bench --request '/Documents/a b.json'", "--udid", "U1"] \
        in calls
    with pytest.raises(DeviceError) as err:
        tr._run(["nomodule"])
    assert "pip install pymobiledevice3" in err.value.fix


def test_input_specs_from_package(tmp_path):
    """Multi-array inputs are read from the package's spec (coremltools reads specs on Linux); images are left to
    the app, which builds them from the compiled model's description."""
    pytest.importorskip("coremltools")
    from coremltools.models.utils import save_spec
    from coremltools.proto import FeatureTypes_pb2 as ft
    from coremltools.proto import Model_pb2

    from evalsuite.device.backends.iphone import input_specs

    spec = Model_pb2.Model(specificationVersion=7)
    arrays = (("x", [1, 3, 8, 8], ft.ArrayFeatureType.FLOAT16), ("t", [1, 4], ft.ArrayFeatureType.INT32))
    for name, shape, dtype in arrays:
        feature = spec.description.input.add()
        feature.name = name
        feature.type.multiArrayType.shape.extend(shape)
        feature.type.multiArrayType.dataType = dtype
    image = spec.description.input.add()
    image.name, image.type.imageType.width, image.type.imageType.height = "img", 8, 8
    spec.description.output.add().name = "y"
    spec.identity.SetInParent()
    save_spec(spec, str(tmp_path / "s.mlpackage"))
    assert input_specs(tmp_path / "s.mlpackage") == [{"name": "x", "shape": [1, 3, 8, 8], "dtype": "float16"},
                                                     {"name": "t", "shape": [1, 4], "dtype": "int32"}]
    assert input_specs(tmp_path / "absent.mlpackage") == []
