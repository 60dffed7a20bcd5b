"""Streaming video timing (issue 19, item 1): the definitions on a hand-worked stream, the host measurement against a
scripted clock, demo-video's streaming mode, the `evalsuite.stream-timing/1` record (validated on write and load,
bad files skipped by name), history and the regression gate on TTFF and sustained FPS, the iPhone stream path with a
fake transport standing in for pymobiledevice3 and the app, the CLI, and the Swift source carrying the same
fields and definitions."""

from __future__ import annotations

import io
import json
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from evalsuite.cli import app
from evalsuite.device import protocol, stream_history, stream_records, streaming
from evalsuite.device.backends import DeviceError
from evalsuite.device.backends.iphone_stream import IPhoneStreamBackend
from evalsuite.device.models import DeviceModel
from evalsuite.device.stream_records import StreamRecord
from evalsuite.errors import InputError
from evalsuite.models.demo_video import DemoVideoGenerator
from evalsuite.results import StoreWarning

runner = CliRunner()
SWIFT = Path(__file__).resolve().parent.parent / "device_runner" / "ios" / "EvalsuiteBench" / "StreamBenchmark.swift"
PROTOCOL_MD = Path(__file__).resolve().parent.parent / "device_runner" / "ios" / "PROTOCOL.md"

# a hand-worked stream: 5 chunks of 2 frames at 10 fps (a chunk plays for 200 ms)
ARRIVALS = [100.0, 300.0, 450.0, 900.0, 1000.0]
EXPECTED = {
    "ttff_ms": 100.0,
    "chunk_latencies_ms": [100.0, 200.0, 150.0, 450.0, 100.0],
    # steady state l_1..l_4 sorted: 100, 150, 200, 450; linear interpolation at (n-1)q
    "p50_ms": 175.0, "p90_ms": 200.0 + 0.7 * 250.0, "p99_ms": 200.0 + 0.97 * 250.0,
    "jitter_ms": 200.0 + 0.97 * 250.0 - 175.0,
    "sustained_fps": 2 * 4 * 1000.0 / 900.0,  # 8 frames after the first chunk in 900 ms
    # playback from 100: chunk 1 due 300 (arrives 300: on time), chunk 2 due 500 (450: on time), chunk 3 due 700
    # (900: late by 200, playback resumes at 900), chunk 4 due 1100 (1000: on time)
    "deadline_misses": 1, "deadline_miss_rate": 0.25, "stall_ms": 200.0, "duration_s": 1.0, "chunks": 5,
}


def record(**kw) -> StreamRecord:
    base: dict[str, Any] = dict(model="demo", variant="fp32", backend="host", device_model="cpu-x", chunk_frames=2,
                                target_fps=10.0, release="v1", timestamp="2026-01-01T00:00:00+00:00")
    base.update(kw)
    arrivals = base.pop("arrivals", ARRIVALS)
    return StreamRecord.from_arrivals(arrivals, **base)


# ------------------------------------------------------------------------------------------------ definitions

def test_stream_stats_hand_worked():
    stats = streaming.stream_stats(ARRIVALS, 2, 10.0)
    for key, value in EXPECTED.items():
        assert stats[key] == pytest.approx(value), key


def test_stream_stats_single_chunk_and_fixed_schedule_edges():
    one = streaming.stream_stats([250.0], 4, 10.0)
    assert one["ttff_ms"] == 250.0 and one["sustained_fps"] == pytest.approx(16.0)
    assert one["deadline_miss_rate"] == 0.0 and one["jitter_ms"] == 0.0 and one["p50_ms"] == 250.0
    # a steady generator exactly at the target never misses; one a little slower misses every chunk
    assert streaming.stream_stats([50.0 + 400.0 * k for k in range(6)], 4, 10.0)["deadline_misses"] == 0
    slow = streaming.stream_stats([50.0 + 410.0 * k for k in range(6)], 4, 10.0)
    assert slow["deadline_misses"] == 5 and slow["stall_ms"] == pytest.approx(50.0)  # 10 ms per chunk, no cascade
    # a burst ahead builds a buffer that absorbs a later slow chunk
    assert streaming.stream_stats([10.0, 20.0, 30.0, 700.0], 4, 10.0)["deadline_misses"] == 0


@pytest.mark.parametrize("arrivals", [[], [0.0, 1.0], [10.0, 5.0], [1.0, float("nan")], [[1.0]]])
def test_stream_stats_refuses_unusable_arrivals(arrivals):
    with pytest.raises(InputError):
        streaming.stream_stats(arrivals, 2, 10.0)
    with pytest.raises(InputError):
        streaming.stream_stats([1.0, 2.0], 0, 10.0)
    with pytest.raises(InputError):
        streaming.stream_stats([1.0, 2.0], 2, 0.0)


# ------------------------------------------------------------------------------------------------ host measurement

class ScriptedSource:
    """A stream whose chunks each take a scripted number of ms on a fake clock; start-up costs `startup_ms`."""

    chunk_frames = 2
    target_fps = 10.0

    def __init__(self, clock, costs, startup_ms=0.0):
        self.clock, self.costs, self.startup_ms, self.streams = clock, costs, startup_ms, 0

    def stream_video(self, prompt, seed):
        self.streams += 1
        self.clock.advance(self.startup_ms)
        k = 0
        while True:
            self.clock.advance(self.costs[min(k, len(self.costs) - 1)])
            k += 1
            yield np.zeros((2, 4, 4, 3), np.uint8)


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def advance(self, ms):
        self.t += ms / 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(streaming.time, "perf_counter", c)
    return c


def test_measure_arrivals_on_a_scripted_clock(clock):
    source = ScriptedSource(clock, [80.0, 200.0, 150.0, 450.0, 100.0, 100.0], startup_ms=20.0)
    arrivals = streaming.measure_arrivals(source, "p", 0, duration_s=0.95, max_chunks=None, warmup_chunks=2)
    assert source.streams == 2  # the warm-up stream, then the measured one
    assert arrivals == pytest.approx(ARRIVALS)  # stops at the first chunk at or after 950 ms
    assert streaming.measure_arrivals(source, "p", 0, duration_s=0, max_chunks=3, warmup_chunks=0) == \
        pytest.approx(ARRIVALS[:3])
    with pytest.raises(InputError, match="neither a duration nor a chunk count"):
        streaming.measure_arrivals(source, "p", 0, duration_s=0, max_chunks=None, warmup_chunks=0)


def test_time_stream_record_from_the_scripted_clock(clock, tmp_path):
    source = ScriptedSource(clock, [80.0, 200.0, 150.0, 450.0, 100.0], startup_ms=20.0)
    rec = streaming.time_stream(source, model="scripted", duration_s=0.95, warmup_chunks=1, release="v9")
    assert rec.backend == "host" and rec.compute_unit == "cpu" and rec.warmup_chunks == 1
    for key, value in EXPECTED.items():
        assert getattr(rec, key) == pytest.approx(value), key
    assert "requested 0.95 s" in rec.notes
    path = stream_records.write(tmp_path, rec)
    assert path.parent == tmp_path / "device" / "stream"
    assert stream_records.load_all(tmp_path)[0].ttff_ms == pytest.approx(100.0)


def test_stream_must_yield_chunks_of_chunk_frames(clock):
    class Wrong(ScriptedSource):
        def stream_video(self, prompt, seed):
            yield np.zeros((3, 4, 4, 3), np.uint8)

    with pytest.raises(InputError, match="holds 3 frames, not chunk_frames=2"):
        streaming.measure_arrivals(Wrong(clock, [1.0]), "p", 0, duration_s=1, max_chunks=None, warmup_chunks=0)

    class Empty(ScriptedSource):
        def stream_video(self, prompt, seed):
            return iter(())

    with pytest.raises(InputError, match="ended during the warm-up"):
        streaming.measure_arrivals(Empty(clock, [1.0]), "p", 0, duration_s=1, max_chunks=None, warmup_chunks=1)


def test_demo_video_streaming_mode_continues_the_clip():
    gen = DemoVideoGenerator(32)
    clip = gen.generate_video(["a red circle"], [3])[0]
    stream = gen.stream_video("a red circle", 3)
    chunks = [next(stream) for _ in range(6)]
    assert all(c.shape == (gen.chunk_frames, 32, 32, 3) and c.dtype == np.uint8 for c in chunks)
    frames = np.concatenate(chunks)
    assert np.array_equal(frames[: len(clip)], clip)  # the first 16 frames are the clip
    assert not np.array_equal(frames[16], frames[0])  # and it keeps moving
    again = np.concatenate([next(gen.stream_video("a red circle", 3)) for _ in range(1)])
    assert np.array_equal(again, chunks[0])  # deterministic


def test_host_stream_of_demo_video_end_to_end(tmp_path):
    source = streaming.resolve_stream("demo-video:32", chunk_frames=2, target_fps=12.0)
    rec = streaming.time_stream(source, model="demo-video:32", duration_s=0, max_chunks=12, warmup_chunks=1)
    assert rec.chunks == 12 and rec.chunk_frames == 2 and rec.target_fps == 12.0
    assert rec.ttff_ms > 0 and rec.sustained_fps > 12.0 and rec.deadline_miss_rate == 0.0
    assert rec.jitter_ms == pytest.approx(rec.p99_ms - rec.p50_ms)


class PySource:
    """A third-party stream source for `python:tests.test_streaming:PySource`."""

    chunk_frames = 3
    target_fps = 24.0

    def stream_video(self, prompt, seed):
        while True:
            yield np.zeros((self.chunk_frames, 2, 2, 3), np.uint8)


def test_python_stream_source():
    source = streaming.resolve_stream("python:tests.test_streaming:PySource", chunk_frames=2)
    assert isinstance(source, PySource) and source.chunk_frames == 2 and source.target_fps == 24.0
    rec = streaming.time_stream(source, model="py", duration_s=0, max_chunks=4, warmup_chunks=1)
    assert rec.chunks == 4 and rec.chunk_frames == 2 and rec.target_fps == 24.0 and rec.steps is None
    with pytest.raises(InputError, match="not a stream source"):
        streaming.resolve_stream("python:tests.test_streaming:record")


def test_device_pipeline_stream_runs_denoiser_steps_and_decoder():
    calls: list[str] = []

    class Part(torch.nn.Module):
        def __init__(self, name, out):
            super().__init__()
            self.name, self.out = name, out

        def forward(self, x):
            calls.append(self.name)
            return self.out(x)

        def example_inputs(self, batch=1):
            return (torch.zeros(batch, 4, 2, 2),)

    den = Part("denoiser", lambda x: x)
    dec = Part("decoder", lambda x: torch.zeros(x.shape[0], 3, 8, 8))
    enc = Part("text", lambda x: x)
    pipe = streaming.StreamPipeline("tiny", DeviceModel("d", den, ()), DeviceModel("v", dec, ()),
                                    DeviceModel("t", enc, ()), chunk_frames=3, steps=2, target_fps=8.0)
    stream = pipe.stream_video("p", 0)
    chunk = next(stream)
    assert chunk.shape == (3, 8, 8, 3) and chunk.dtype == np.uint8
    next(stream)
    assert calls == ["text", "denoiser", "denoiser", "decoder", "denoiser", "denoiser", "decoder"]
    assert isinstance(pipe, streaming.StreamSource)
    demo = streaming.resolve_stream("demo", chunk_frames=1, steps=1, target_fps=5.0)
    assert (demo.chunk_frames, demo.steps, demo.target_fps) == (1, 1, 5.0)
    rec = streaming.time_stream(pipe, model="tiny", duration_s=0, max_chunks=3, warmup_chunks=0)
    assert rec.steps == 2 and rec.chunks == 3 and rec.chunk_frames == 3 and rec.target_fps == 8.0
    with pytest.raises(InputError, match="unknown stream source"):
        streaming.resolve_stream("nope")


# ------------------------------------------------------------------------------------------------ records

def test_record_round_trip_and_validation(tmp_path):
    rec = record()
    for key, value in EXPECTED.items():
        assert getattr(rec, key) == pytest.approx(value), key
    path = stream_records.write(tmp_path, rec)
    data = json.loads(path.read_text())
    assert data["schema"] == "evalsuite.stream-timing/1"
    loaded = stream_records.load_all(tmp_path)
    assert len(loaded) == 1 and loaded[0].chunk_latencies_ms == rec.chunk_latencies_ms
    with pytest.raises(FileExistsError):
        stream_records.write(tmp_path, rec)  # never overwritten
    with pytest.raises(InputError, match="unusable chunk latencies"):
        record(arrivals=[100.0, 100.0])
    # the timing records' loader does not see stream records, and vice versa
    from evalsuite.device import records as timing_records

    assert timing_records.load_all(tmp_path) == []


def test_unusable_files_are_skipped_by_name(tmp_path):
    good = stream_records.write(tmp_path, record())
    folder = good.parent
    edited = json.loads(good.read_text())
    edited["sustained_fps"] = 99.0  # a hand-edited number that its latencies do not give
    (folder / "edited.json").write_text(json.dumps(edited))
    (folder / "broken.json").write_text("{not json")
    (folder / "types.json").write_text(json.dumps({**edited, "chunk_frames": "2"}))
    (folder / "other.json").write_text(json.dumps({**edited, "schema": "evalsuite.timing/1"}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = stream_records.load_all(tmp_path)
    assert len(loaded) == 1
    text = "\n".join(str(w.message) for w in caught if issubclass(w.category, StoreWarning))
    for name in ("edited.json", "broken.json", "types.json", "other.json"):
        assert name in text
    assert "sustained_fps is 99.0" in text


# ------------------------------------------------------------------------------------------------ history + gate

def _history_store(tmp_path, ttff, fps):
    for i, (t, f) in enumerate(zip(ttff, fps)):
        # steady chunks of 2 frames at f fps after a first chunk of t ms
        arrivals = [t + k * 2000.0 / f for k in range(8)]
        stream_records.write(tmp_path, record(arrivals=arrivals, release=f"v{i + 1}",
                                              timestamp=f"2026-01-0{i + 1}T00:00:00+00:00"))
    return tmp_path


def test_history_flags_ttff_and_fps_regressions(tmp_path):
    store = _history_store(tmp_path, [100, 102, 98, 101, 140, 150], [10, 10, 10, 10, 10, 10])
    (s,) = stream_history.history(store, "demo")
    assert s.releases == [f"v{i}" for i in range(1, 7)]
    assert s.ttff_ms == pytest.approx([100, 102, 98, 101, 140, 150])
    assert s.sustained_fps == pytest.approx([10] * 6)
    assert s.ttff_regressed and not s.fps_regressed and s.regressed() == ["ttff"]
    assert s.ttff_events == [5] and s.ttff_violations == [False] * 4 + [True, True]

    store2 = _history_store(tmp_path / "b", [100] * 6, [10, 10.2, 9.9, 10, 8.5, 8.4])
    (s2,) = stream_history.history(store2, "demo")
    # 8.5 fps = 117.6 ms per frame > 1.15 × 100 ms: a regression; 9 fps (111 ms) would not be
    assert s2.fps_regressed and not s2.ttff_regressed and s2.fps_events == [5]


def test_stream_history_cli_gates(tmp_path):
    _history_store(tmp_path, [100, 102, 98, 101, 140, 150], [10] * 6)
    args = ["device", "stream-history", "demo", "--store", str(tmp_path)]
    result = runner.invoke(app, [*args, "--fail-on-regression"])
    assert result.exit_code == 1, result.output
    assert "TTFF-REGRESSION" in result.output and (tmp_path / "device" / "stream" / "demo-stream-history.png").is_file()
    assert runner.invoke(app, [*args, "--fail-on-regression", "--gate", "fps"]).exit_code == 0
    doc = json.loads(runner.invoke(app, [*args, "--json"]).output)
    assert doc["series"][0]["regressed"] == ["ttff"]
    bad = runner.invoke(app, [*args, "--gate", "latency"])
    assert bad.exit_code == 2
    none = runner.invoke(app, ["device", "stream-history", "other", "--store", str(tmp_path)])
    assert none.exit_code == 2 and "device time-stream" in none.output


def test_time_stream_cli_host(tmp_path):
    result = runner.invoke(app, ["device", "time-stream", "demo-video:32", "--duration", "0", "--chunks", "6",
                                 "--warmup-chunks", "1", "--target-fps", "8", "--release", "v1", "--store",
                                 str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["chunks"] == 6 and doc["target_fps"] == 8.0 and doc["release"] == "v1"
    assert Path(doc["path"]).is_file() and doc["backend"] == "host"
    table = runner.invoke(app, ["device", "time-stream", "demo-video:32", "--duration", "0", "--chunks", "3",
                                "--store", str(tmp_path)])
    assert table.exit_code == 0 and "TTFF" in table.output and "deadline miss" in table.output
    bad = runner.invoke(app, ["device", "time-stream", "demo-video", "--backend", "android", "--store", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown stream backend" in bad.output
    nopkg = runner.invoke(app, ["device", "time-stream", "demo", "--backend", "iphone", "--store", str(tmp_path)])
    assert nopkg.exit_code == 2 and "--package denoiser=" in nopkg.output


# ------------------------------------------------------------------------------------------------ iPhone (fake)

IPHONE = {"udid": "00008140-000A", "name": "Test iPhone", "product_type": "iPhone17,2", "os_version": "18.1",
          "locked": False, "developer_mode": True}
PHONE_ARRIVALS = [180.0, 260.0, 330.0, 420.0, 520.0, 575.0, 700.0]


def app_stream_result(request: dict, arrivals=PHONE_ARRIVALS, **overrides) -> dict:
    """What StreamBenchmark.swift writes for `request`: arrivals and its own summary of them."""
    stats = streaming.stream_stats(arrivals, request["chunk_frames"], request["target_fps"])
    result = {"schema": protocol.STREAM_RESULT_SCHEMA, "request_id": request["request_id"], "status": "ok",
              "error": None, "device_model": "iPhone17,2", "os_version": "18.1", "app_version": "1.1 (2)",
              "thermal_state": "fair", "thermal_start": "nominal", "timestamp": "2026-03-01T10:00:00Z",
              "meta": request["meta"], "compute_unit": request["compute_unit"],
              "chunk_frames": request["chunk_frames"], "target_fps": request["target_fps"],
              "duration_s": request["duration_s"], "warmup_chunks": request["warmup_chunks"],
              "chunk_arrivals_ms": arrivals,
              "stages": [{"name": s["name"], "calls": s["calls"], "per": s["per"], "compile_ms": 500.0,
                          "load_ms": 900.0, "first_predict_ms": 30.0} for s in request["stages"]],
              "summary": {k: stats[k] for k in protocol.STREAM_SUMMARY}}
    result.update(overrides)
    return result


class FakeTransport:
    """Records every call and plays the app: on launch it reads the pushed stream request and stage zips; the
    result appears after `delay_pulls` polls."""

    def __init__(self, mode="ok", delay_pulls=1):
        self.mode, self.delay_pulls = mode, delay_pulls
        self.calls: list[tuple] = []
        self.files: dict[str, bytes] = {}
        self.pending: tuple[str, bytes] | None = None
        self.request: dict | None = None
        self.polls = 0

    def devices(self):
        self.calls.append(("devices",))
        return [dict(IPHONE)]

    def install(self, ipa):
        self.calls.append(("install", Path(ipa).name))

    def push(self, bundle_id, local, remote):
        self.calls.append(("push", bundle_id, remote))
        self.files[remote] = Path(local).read_bytes()

    def launch(self, bundle_id, args):
        self.calls.append(("launch", bundle_id, tuple(args)))
        assert args[0] == "--stream-request"
        self.request = request = json.loads(self.files[args[1]])
        for stage in request["stages"]:
            assert zipfile.is_zipfile(io.BytesIO(self.files["/Documents/" + stage["package"]]))
        self.files["/Documents/" + request["log_file"]] = b"[denoiser] compiled\nstreaming\n"
        if self.mode == "never":
            return
        body = {"ok": lambda: app_stream_result(request),
                "error": lambda: app_stream_result(request, status="error", error="MLModel load failed",
                                                   summary=None, chunk_arrivals_ms=[]),
                "crash": lambda: {"schema": protocol.RESULT_SCHEMA, "request_id": request["request_id"],
                                  "status": "error", "crash": "SIGSEGV", "error": "crashed"},
                "disagree": lambda: app_stream_result(
                    request, summary={**app_stream_result(request)["summary"], "jitter_ms": 1.0}),
                "v2": lambda: app_stream_result(request, schema="evalsuite.ios-stream-result/2"),
                "missing": lambda: {k: v for k, v in app_stream_result(request).items() if k != "chunk_frames"},
                }[self.mode]
        self.pending = ("/Documents/" + request["result_file"], json.dumps(body()).encode())

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
        return "EvalsuiteBench[12] <Notice>: streaming\n"


def _package(tmp_path, name) -> Path:
    pkg = tmp_path / f"{name}.mlpackage"
    (pkg / "Data" / "com.apple.CoreML").mkdir(parents=True)
    (pkg / "Manifest.json").write_text("{}")
    (pkg / "Data" / "com.apple.CoreML" / "model.mlmodel").write_bytes(name.encode())
    return pkg


def _run(fake, tmp_path, **kw):
    packages = {"denoiser": _package(tmp_path, "den"), "decoder": _package(tmp_path, "dec")}
    args = dict(model="demo", variant="fp16", steps=3, chunk_frames=4, target_fps=10.0, duration_s=5.0,
                warmup_chunks=1, compute_unit="CPU_AND_NE", release="v0.4", git_sha="abc", timeout_s=2.0,
                inputs={"denoiser": [{"name": "x", "shape": [4, 4, 32, 32], "dtype": "float16"}], "decoder": []})
    args.update(kw)
    return IPhoneStreamBackend(transport=fake, poll_s=0.01, syslog_s=0.1).time_stream(packages, **args)


def test_iphone_stream_sequence_and_record(tmp_path):
    fake = FakeTransport(delay_pulls=2)
    rec = _run(fake, tmp_path)
    rid = fake.request["request_id"]
    steps = [c[0] for c in fake.calls if c[0] != "devices"]
    assert steps == ["push", "push", "push", "launch", "pull", "pull"]
    pushes = [c[2] for c in fake.calls if c[0] == "push"]
    assert pushes == [f"/Documents/{rid}.denoiser.mlpackage.zip", f"/Documents/{rid}.decoder.mlpackage.zip",
                      f"/Documents/{rid}.stream-request.json"]
    request = fake.request
    assert request["schema"] == "evalsuite.ios-stream-request/1"
    assert [(s["name"], s["calls"], s["per"]) for s in request["stages"]] == [("denoiser", 3, "chunk"),
                                                                              ("decoder", 1, "chunk")]
    assert request["stages"][0]["inputs"] == [{"name": "x", "shape": [4, 4, 32, 32], "dtype": "float16"}]
    assert (request["chunk_frames"], request["target_fps"], request["duration_s"], request["warmup_chunks"],
            request["compute_unit"]) == (4, 10.0, 5.0, 1, "CPU_AND_NE")

    expected = streaming.stream_stats(PHONE_ARRIVALS, 4, 10.0)
    assert rec.backend == "iphone" and rec.device_model == "iPhone17,2" and rec.compute_unit == "CPU_AND_NE"
    assert (rec.model, rec.variant, rec.release, rec.git_sha, rec.steps) == ("demo", "fp16", "v0.4", "abc", 3)
    assert rec.thermal_state == "fair" and rec.timestamp == "2026-03-01T10:00:00+00:00"
    for key in ("ttff_ms", "sustained_fps", "p50_ms", "p99_ms", "jitter_ms", "deadline_misses", "stall_ms"):
        assert getattr(rec, key) == pytest.approx(expected[key]), key
    assert rec.chunks == 7 and "app 1.1 (2)" in rec.notes and "denoiser: compile 500.0 ms" in rec.notes
    stream_records.write(tmp_path / "store", rec)
    assert stream_records.load_all(tmp_path / "store")[0].deadline_misses == expected["deadline_misses"]


def test_ingest_stream_result_file(tmp_path):
    request = protocol.make_stream_request([{"name": "denoiser", "package": "d.zip", "calls": 2}], chunk_frames=4,
                                           target_fps=10.0, duration_s=1.0, request_id="r9",
                                           meta={"model": "m", "variant": "fp16", "release": "v2"})
    path = tmp_path / "r9.result.json"
    path.write_text(json.dumps(app_stream_result(request)))
    result = runner.invoke(app, ["device", "ingest-stream", str(path), "--store", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    (rec,) = stream_records.load_all(tmp_path / "s")
    assert (rec.model, rec.variant, rec.release, rec.steps, rec.backend) == ("m", "fp16", "v2", 2, "iphone")
    path.write_text("{}")
    bad = runner.invoke(app, ["device", "ingest-stream", str(path), "--store", str(tmp_path / "s")])
    assert bad.exit_code == 2 and "evalsuite.ios-stream-result/1" in bad.output


@pytest.mark.parametrize("mode,error,match", [
    ("error", DeviceError, "MLModel load failed"),
    ("crash", DeviceError, "crashed on the iPhone .SIGSEGV."),
    ("disagree", InputError, "the app's jitter_ms is 1.0"),
    ("v2", InputError, "evalsuite.ios-stream-result/2"),
    ("missing", InputError, "chunk_frames"),
])
def test_iphone_stream_failures(tmp_path, mode, error, match):
    with pytest.raises(error, match=match) as info:
        _run(FakeTransport(mode), tmp_path)
    if error is DeviceError:
        assert "app log (tail)" in info.value.message and "streaming" in info.value.message


def test_iphone_stream_time_out_and_bad_stages(tmp_path):
    fake = FakeTransport("never")
    with pytest.raises(DeviceError, match="wrote no stream result") as info:
        _run(fake, tmp_path, timeout_s=0.05)
    assert "app log (tail)" in info.value.message
    backend = IPhoneStreamBackend(transport=FakeTransport(), poll_s=0.01)
    with pytest.raises(DeviceError, match="unknown vae"):
        backend.time_stream({"vae": _package(tmp_path, "v")}, model="demo")
    with pytest.raises(DeviceError, match="not an existing .mlpackage"):
        backend.time_stream({"denoiser": tmp_path / "missing.mlpackage"}, model="demo")
    with pytest.raises(InputError, match="no stage runs per chunk"):
        protocol.make_stream_request([{"name": "t", "package": "t.zip", "per": "stream"}], chunk_frames=1,
                                     target_fps=1.0, duration_s=1.0)
    with pytest.raises(InputError, match="do not bound"):
        protocol.make_stream_request([{"name": "d", "package": "d.zip"}], chunk_frames=1, target_fps=1.0,
                                     duration_s=0.0)


# ------------------------------------------------------------------------------------------------ app source

def test_swift_source_carries_the_same_fields_and_definitions():
    """No Swift compiler here: the app's stream code is checked for the protocol's field names and the same
    definitions (and PROTOCOL.md documents every field)."""
    swift = SWIFT.read_text()
    doc = PROTOCOL_MD.read_text()
    request = protocol.make_stream_request([{"name": "denoiser", "package": "d.zip", "calls": 2}], chunk_frames=4,
                                           target_fps=10.0, duration_s=10.0, request_id="r1")
    result_fields = set(app_stream_result(request)) | set(protocol.STREAM_SUMMARY) | {"compile_ms", "load_ms",
                                                                                         "first_predict_ms"}
    for name in sorted(set(request) | set(request["stages"][0]) | result_fields):
        if name in ("schema", "status", "error", "meta", "stages", "summary", "name", "package", "calls", "per",
                    "inputs", "timestamp"):
            assert re.search(rf"\b{name}\b", swift), name  # Swift case names equal to the JSON keys
        else:
            assert f'"{name}"' in swift, name
        assert f"`{name}`" in doc, name
    assert protocol.STREAM_REQUEST_SCHEMA in swift and protocol.STREAM_RESULT_SCHEMA in swift
    assert "--stream-request" in (SWIFT.parent / "EvalsuiteBenchApp.swift").read_text()
    assert f"maxStreamChunks = {streaming.MAX_CHUNKS:_}" in swift
    # the miss rule and the FPS formula, as in stream_stats
    assert "if a[k] > due + 1e-6" in swift and "c * Double(n - 1) * 1000 / (a[n - 1] - a[0])" in swift
    assert "Double(sorted.count - 1) * q" in swift  # numpy's linear percentile


def test_stream_records_state_their_spread():
    """Noise honesty for streams too: the median chunk latency's 95% bootstrap CI, the same rule as timing records."""
    from evalsuite.device.records import median_ci
    from evalsuite.device.stream_records import StreamRecord

    lat = [120.0, 50.0, 52.0, 49.0, 70.0, 51.0, 48.0, 90.0]
    rec = StreamRecord(model="m", variant="fp32", backend="host", device_model="cpu", chunk_frames=4,
                       target_fps=10.0, chunk_latencies_ms=lat, release="v1")
    assert rec.p50_ci_ms == list(median_ci(lat[1:]))
    assert rec.p50_ci_ms[0] <= rec.p50_ms <= rec.p50_ci_ms[1]
    assert StreamRecord.from_dict({**rec.__dict__, "p50_ci_ms": [0.0, 1.0]}).p50_ci_ms == rec.p50_ci_ms  # derived
    one = StreamRecord(model="m", variant="fp32", backend="host", device_model="cpu", chunk_frames=4,
                       target_fps=10.0, chunk_latencies_ms=[100.0, 50.0], release="v1")
    assert one.p50_ci_ms is None
