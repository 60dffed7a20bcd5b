"""Fuzz the public commands with a few hundred generated malformed inputs: statistics files, result documents,
device records and generator outputs. Every command ends with exit code 0 or a clear error (exit 2 with
`error:`), never a traceback, and nothing is written outside the store and the home folder."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from evalsuite.cli import app

runner = CliRunner()
SEED = 20261202


def _snapshot(root: Path, skip: tuple[Path, ...]) -> dict[str, tuple[int, int]]:
    """Every file under `root` outside `skip`, with its size and mtime."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if any(Path(dirpath).is_relative_to(s) for s in skip):
            dirnames[:] = []
            continue
        for name in filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            found[str(path)] = (st.st_size, st.st_mtime_ns)
    return found


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A store, a home, a working folder and an `outside` folder with a file that must never change."""
    store, home, cwd, outside = (tmp_path / n for n in ("store", "home", "cwd", "outside"))
    for d in (store, home, cwd, outside):
        d.mkdir()
    (outside / "precious.npz").write_bytes(b"do not touch")
    monkeypatch.setenv("EVALSUITE_STORE", str(store))
    monkeypatch.setenv("EVALSUITE_HOME", str(home))
    monkeypatch.chdir(cwd)
    before = _snapshot(tmp_path, (store, home, tmp_path / "inputs"))
    yield {"store": store, "home": home, "cwd": cwd, "outside": outside, "inputs": tmp_path / "inputs"}
    assert _snapshot(tmp_path, (store, home, tmp_path / "inputs")) == before, "a file outside the store changed"


def _invoke(args: list[str]):
    result = runner.invoke(app, [str(a) for a in args])
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), (
        f"{args}: raised {type(exc).__name__}: {exc}\n{result.output[-2000:]}")
    assert result.exit_code in (0, 2), f"{args}: exit {result.exit_code}\n{result.output[-2000:]}"
    assert "Traceback" not in result.output, f"{args}: traceback\n{result.output[-2000:]}"
    if result.exit_code == 2:
        assert "error" in result.output.lower() or "usage" in result.output.lower(), result.output
    return result


# ----------------------------------------------------------------------------------------------- .npz files
def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _malformed_npz(rng: np.random.Generator, i: int) -> bytes:
    d = int(rng.integers(1, 6))
    good = {"mu": rng.normal(size=d), "sigma": np.eye(d)}
    kind = i % 12
    if kind == 0:
        return rng.bytes(int(rng.integers(0, 400)))
    if kind == 1:
        data = _npz_bytes(**good)
        return data[: int(rng.integers(1, len(data)))]
    if kind == 2:
        return _npz_bytes(mu=np.array(["a"] * d), sigma=np.eye(d))
    if kind == 3:
        return _npz_bytes(mu=rng.normal(size=(d, 2)), sigma=np.eye(d))
    if kind == 4:
        return _npz_bytes(mu=rng.normal(size=d) + 1j, sigma=np.eye(d))
    if kind == 5:
        return _npz_bytes(mu=np.array([object()] * d, dtype=object), sigma=np.eye(d))
    if kind == 6:
        return _npz_bytes(**good, meta=np.array(rng.bytes(20).hex()))
    if kind == 7:
        return _npz_bytes(**good, meta=np.array(json.dumps([1, 2, 3])))
    if kind == 8:
        return _npz_bytes(mu=rng.normal(size=d), sigma=np.full((d, d), np.nan))
    if kind == 9:
        return _npz_bytes(sigma=np.eye(d))
    if kind == 10:  # an absurd array header inside a valid zip
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("mu.npy", b"\x93NUMPY\x01\x00\xff\xff{'descr': '<f8', 'fortran_order': False, 'shape': (99999"
                                  b"99999999,), }" + b" " * 40 + b"\n")
            zf.writestr("sigma.npy", rng.bytes(64))
        return buf.getvalue()
    return _npz_bytes(mu=rng.normal(size=d), sigma=np.eye(d + 1), n=np.array(-5))


def test_malformed_statistics_files(world):
    rng = np.random.default_rng(SEED)
    folder = world["inputs"] / "npz"
    folder.mkdir(parents=True)
    good = folder / "good.npz"
    good.write_bytes(_npz_bytes(mu=np.zeros(3), sigma=np.eye(3)))
    for i in range(120):
        path = folder / f"bad{i:03d}.npz"
        path.write_bytes(_malformed_npz(rng, i))
        _invoke(["fd", path, good])
        _invoke(["ref", "show", path])
        if i % 4 == 0:
            _invoke(["ref", "import", f"fuzz{i}", path])


# ------------------------------------------------------------------------------------------ result documents
def _deep(n: int):
    value: object = 0
    for _ in range(n):
        value = [value]
    return value


def _malformed_result(rng: np.random.Generator, i: int, run_id: str) -> bytes:
    doc = {"schema": "evalsuite.result/1", "run_id": run_id, "task": "fid", "status": "ok", "family": "image-quality",
           "metrics": {"fid": 1.0}, "metric_info": {"fid": {"direction": "lower"}},
           "model": {"spec": "demo", "id": "demo@1", "info": {}}, "num_samples": 2,
           "created_at": "2026-01-01T00:00:00+00:00", "provenance": {}}
    kind = i % 10
    if kind == 0:
        return rng.bytes(int(rng.integers(1, 200)))
    if kind == 1:
        data = json.dumps(doc).encode()
        return data[: int(rng.integers(1, len(data)))]
    if kind == 2:
        return json.dumps({**doc, "metrics": "fast"}).encode()
    if kind == 3:
        return json.dumps({**doc, "model": None}).encode()
    if kind == 4:
        return json.dumps({**doc, "metrics": {"fid": _deep(50)}}).encode()
    if kind == 5:
        return b"[" * 100_000 + b"]" * 100_000
    if kind == 6:
        return json.dumps([doc]).encode()
    if kind == 7:
        return json.dumps({**doc, "created_at": 7, "num_samples": "many"}).encode()
    if kind == 8:
        return json.dumps({**doc, "metric_info": {"fid": "lower"}, "per_sample": {"fid": "x"}}).encode()
    return json.dumps({**doc, "task": "../../escape", "run_id": "../../x"}).encode()


def test_malformed_result_documents(world):
    rng = np.random.default_rng(SEED + 1)
    runs = world["store"] / "runs"
    good = {"schema": "evalsuite.result/1", "task": "fid", "status": "ok", "family": "image-quality",
            "metrics": {"fid": 2.0}, "metric_info": {"fid": {"direction": "lower", "description": "d"}},
            "model": {"spec": "demo", "id": "demo@1", "info": {}}, "num_samples": 2,
            "created_at": "2026-01-01T00:00:00+00:00", "provenance": {}}
    for r in ("good-a", "good-b"):
        (runs / r).mkdir(parents=True)
        (runs / r / "fid.json").write_text(json.dumps({**good, "run_id": r}))
    for i in range(90):
        run_id = f"fuzz-{i:03d}"
        (runs / run_id).mkdir()
        (runs / run_id / "fid.json").write_bytes(_malformed_result(rng, i, run_id))
        if i % 6 == 0:
            _invoke(["runs", "list"])
            _invoke(["runs", "show", run_id])
            _invoke(["compare", "good-a", run_id])
    _invoke(["runs", "list", "--json"])
    _invoke(["compare", "good-a", "good-b"])
    _invoke(["leaderboard", "build", "--out", world["store"] / "site"])
    for hostile in ("../../outside", "/etc", "..", "a/../../b"):
        _invoke(["runs", "show", hostile])
        _invoke(["compare", "good-a", hostile])


# ------------------------------------------------------------------------------------------- device records
def _malformed_record(rng: np.random.Generator, i: int) -> bytes:
    record = {"schema": "evalsuite.timing/1", "model": "m", "variant": "fp16", "backend": "iphone",
              "device_model": "iPhone17,2", "latencies_ms": [10.0, 11.0], "release": "v1",
              "timestamp": "2026-01-01T00:00:00+00:00"}
    kind = i % 8
    if kind == 0:
        return rng.bytes(int(rng.integers(1, 200)))
    if kind == 1:
        data = json.dumps(record).encode()
        return data[: int(rng.integers(1, len(data)))]
    if kind == 2:
        return json.dumps({**record, "latencies_ms": "fast"}).encode()
    if kind == 3:
        return json.dumps({**record, "latencies_ms": _deep(40)}).encode()
    if kind == 4:
        return b"{\"a\":" * 50_000
    if kind == 5:
        return json.dumps({**record, "model": {"x": 1}, "release": None}).encode()
    if kind == 6:
        return json.dumps({**record, "latencies_ms": [-1, float("nan")]}).encode().replace(b"NaN", b"1e999")
    return json.dumps([record]).encode()


def test_malformed_device_records(world):
    rng = np.random.default_rng(SEED + 2)
    device = world["store"] / "device"
    device.mkdir(parents=True)
    inbox = world["inputs"] / "records"
    inbox.mkdir(parents=True)
    for i in range(64):
        data = _malformed_record(rng, i)
        (device / f"fuzz-{i:03d}.json").write_bytes(data)
        (inbox / f"in-{i:03d}.json").write_bytes(data)
        _invoke(["device", "ingest", inbox / f"in-{i:03d}.json"])
        if i % 8 == 0:
            _invoke(["device", "history", "m"])
    _invoke(["leaderboard", "build", "--out", world["store"] / "site"])


# ------------------------------------------------------------------------------------------ generator outputs
BAD_OUTPUTS = {
    "raises": "raise RuntimeError('boom')",
    "none": "return None",
    "strings": "return ['not an image' for _ in prompts]",
    "too_few": "return []",
    "empty_array": "return [np.zeros((0, 0, 3), np.uint8) for _ in prompts]",
    "one_d": "return [np.zeros(12, np.uint8) for _ in prompts]",
    "int64": "return [np.full((16, 16, 3), 7, np.int64) for _ in prompts]",
    "float_200": "return [np.full((16, 16, 3), 200.0, np.float32) for _ in prompts]",
    "negative": "return [np.full((16, 16, 3), -0.5, np.float32) for _ in prompts]",
    "four_d": "return [np.zeros((1, 16, 16, 3), np.uint8) for _ in prompts]",
    "nan": "return [np.full((16, 16, 3), np.nan, np.float32) for _ in prompts]",
    "dict": "return [{'image': 1} for _ in prompts]",
}


@pytest.mark.parametrize("case", sorted(BAD_OUTPUTS))
def test_malformed_generator_outputs(world, case, monkeypatch):
    package = world["inputs"] / "fuzzmodels"
    package.mkdir(parents=True, exist_ok=True)
    (package / f"gen_{case}.py").write_text(
        "import numpy as np\n\n"
        "class Gen:\n"
        f"    model_id = 'fuzz-{case}@1'\n\n"
        "    def generate(self, prompts, seeds):\n"
        f"        {BAD_OUTPUTS[case]}\n\n"
        "def load():\n"
        "    return Gen()\n")
    monkeypatch.syspath_prepend(str(package))
    result = _invoke(["score", f"python:gen_{case}:load", "--tasks", "fid", "--num-samples", "2", "--workers", "0",
                      "--extractor", "python:tests.tiny_models:tiny_clean", "--ref", "model:demo"])
    assert result.exit_code == 2 and f"gen_{case}" in result.output  # the error names the model
