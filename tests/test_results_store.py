"""Results store: immutable JSON documents per (run, task), the SQLite index, the pandas table, concurrency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evalsuite.errors import InputError
from evalsuite.results import SCHEMA, ResultsStore, new_run_id

REPO_ROOT = Path(__file__).resolve().parent.parent


def _doc(run_id: str, task: str, metrics: dict | None = None, status: str = "ok",
         created: str = "2024-01-01T00:00:00+00:00",
         **extra) -> dict:
    return {"run_id": run_id, "task": task, "status": status,
            "model": {"spec": "folder:/data/samples", "id": "folder:/data/samples"},
            "created_at": created, "metrics": {} if metrics is None else metrics, **extra}


def _all_files(folder: Path) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder) for f in files)


def _assert_no_temp_files(store: ResultsStore) -> None:
    leftovers = [f for f in _all_files(store.runs_dir) if not f.endswith(".json") or Path(f).name.startswith(".")]
    assert leftovers == []


def test_new_run_id_is_unique_and_readable():
    ids = {new_run_id("My Model/v2") for _ in range(50)}
    assert len(ids) == 50
    assert all("-my-model-v2-" in i for i in ids)


def test_write_and_read_back(tmp_path):
    store = ResultsStore(tmp_path / "store")
    doc = _doc("run-1", "fid", {"fid": 12.5}, num_samples=40, details={"arr": np.arange(3)})
    path = store.write(doc)
    assert path == tmp_path / "store" / "runs" / "run-1" / "fid.json"
    on_disk = json.loads(path.read_text())
    assert on_disk["schema"] == SCHEMA
    assert on_disk["details"]["arr"] == [0, 1, 2]  # numpy arrays are stored as lists

    store.write(_doc("run-1", "kid", {"kid": 0.01, "kid_std": 0.002}))
    store.write(_doc("run-2", "fid", {"fid": 20.0}, created="2024-02-01T00:00:00+00:00"))
    store.write(_doc("run-2", "clip-fid", status="skipped", created="2024-02-01T00:00:00+00:00",
                     reason="missing weights ViT-B-32.pt", fix="`evalsuite weights fetch clip-vit-b-32-openai`"))

    docs = store.load_run("run-1")
    assert [d["task"] for d in docs] == ["fid", "kid"]
    assert docs[0]["metrics"] == {"fid": 12.5} and docs[0]["num_samples"] == 40
    assert docs[1]["metrics"] == {"kid": 0.01, "kid_std": 0.002}
    assert [d["task"] for d in store.load_run("run-2")] == ["clip-fid", "fid"]

    rows = store.rows()
    assert len(rows) == 4
    assert [r["run_id"] for r in rows[:2]] == ["run-2", "run-2"]  # newest first
    by_key = {(r["run_id"], r["task"]): r for r in rows}
    assert by_key[("run-1", "fid")]["metrics"] == {"fid": 12.5}
    assert by_key[("run-1", "fid")]["model_spec"] == "folder:/data/samples"
    assert by_key[("run-1", "fid")]["path"] == str(Path("runs") / "run-1" / "fid.json")
    assert by_key[("run-2", "clip-fid")]["status"] == "skipped"
    assert [r["task"] for r in store.rows("run-1")] == ["fid", "kid"]

    runs = {r["run_id"]: r for r in store.runs()}
    assert runs["run-1"]["tasks"] == {"fid": "ok", "kid": "ok"}
    assert runs["run-2"]["tasks"] == {"clip-fid": "skipped", "fid": "ok"}
    assert list(runs) == ["run-2", "run-1"]

    table = store.table()
    assert isinstance(table, pd.DataFrame)
    assert len(table) == 4  # one row per metric of the ok results: fid, kid, kid_std, fid
    assert sorted(zip(table["run_id"], table["task"], table["metric"], table["value"])) == [
        ("run-1", "fid", "fid", 12.5), ("run-1", "kid", "kid", 0.01), ("run-1", "kid", "kid_std", 0.002),
        ("run-2", "fid", "fid", 20.0)]
    assert list(table.columns) == ["run_id", "task", "model_spec", "model_id", "created_at", "metric", "value"]
    assert len(store.table(status=None)) == 4  # the skipped result has no metrics
    assert store.table(status="skipped").empty
    _assert_no_temp_files(store)


def test_empty_store(tmp_path):
    store = ResultsStore(tmp_path / "never-written")
    assert store.rows() == [] and store.runs() == []
    assert store.table().empty
    with pytest.raises(InputError) as info:
        store.load_run("nope")
    assert "nope" in info.value.message and "runs list" in info.value.fix
    assert not store.root.exists()  # reading creates nothing


def test_load_run_by_unique_prefix(tmp_path):
    store = ResultsStore(tmp_path)
    store.write(_doc("20240101T000000Z-model-abc123", "fid", {"fid": 1.0}))
    store.write(_doc("20240101T000000Z-model-def456", "fid", {"fid": 2.0}))
    assert store.load_run("20240101T000000Z-model-abc")[0]["metrics"] == {"fid": 1.0}
    with pytest.raises(InputError):
        store.load_run("20240101T000000Z-model")  # ambiguous


def test_results_are_never_overwritten(tmp_path):
    store = ResultsStore(tmp_path)
    path = store.write(_doc("run-1", "fid", {"fid": 1.0}))
    before = path.read_bytes()
    with pytest.raises(InputError) as info:
        store.write(_doc("run-1", "fid", {"fid": 999.0}))
    assert str(path) in info.value.message
    assert path.read_bytes() == before
    assert store.rows() == [dict(store.rows()[0], metrics={"fid": 1.0})]
    assert store.load_run("run-1")[0]["metrics"] == {"fid": 1.0}
    _assert_no_temp_files(store)


def test_invalid_documents_are_refused(tmp_path):
    store = ResultsStore(tmp_path)
    with pytest.raises(ValueError):
        store.write({"run_id": "r", "task": "fid"})
    with pytest.raises(ValueError):
        store.write(_doc("r", "fid", {"fid": float("nan")}))  # JSON has no NaN: refused, not written
    assert not (store.runs_dir / "r" / "fid.json").exists()
    _assert_no_temp_files(store)


def test_reindex_after_losing_the_index(tmp_path):
    store = ResultsStore(tmp_path)
    for i in range(3):
        for task in ("fid", "kid"):
            store.write(_doc(f"run-{i}", task, {task: float(i)}, created=f"2024-01-0{i + 1}T00:00:00+00:00"))
    before = store.rows()
    table_before = store.table()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store.index_path}{suffix}").unlink(missing_ok=True)
    assert store.rows() == before  # rows() notices the index misses documents and rebuilds it from the files
    assert store.reindex() == 6
    assert store.rows() == before
    pd.testing.assert_frame_equal(store.table(), table_before)
    assert store.reindex() == 6  # idempotent
    assert store.rows() == before


_WRITER = """
import sys, time
from pathlib import Path
from evalsuite.results import ResultsStore
root, worker, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
store = ResultsStore(root)
deadline = time.time() + 60
while not go.exists() and time.time() < deadline:
    time.sleep(0.005)
for i in range(count):
    run = f"run-w{worker}-{i // 3}"
    store.write({"run_id": run, "task": f"task{i % 3}", "status": "ok", "created_at": f"2024-01-01T00:00:{i:02d}",
                 "model": {"spec": f"worker:{worker}", "id": worker}, "metrics": {"value": i, "worker": int(worker)}})
"""


def test_concurrent_writers_lose_nothing(tmp_path):
    root = tmp_path / "shared-store"
    go = tmp_path / "go"
    workers, count = 3, 30
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(root), str(w), str(count), str(go)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for w in range(workers)]
    time.sleep(0.5)  # let every process import before they all start writing at once
    go.touch()
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr.decode()

    store = ResultsStore(root)
    files = sorted(store.runs_dir.glob("*/*.json"))
    assert len(files) == workers * count
    rows = store.rows()
    assert len(rows) == workers * count
    got = {(r["model_id"], r["metrics"]["value"]) for r in rows}
    assert got == {(str(w), i) for w in range(workers) for i in range(count)}
    for path in files:
        doc = json.loads(path.read_text())
        assert doc["task"] == path.stem and doc["run_id"] == path.parent.name
    _assert_no_temp_files(store)
    assert len(store.table()) == 2 * workers * count  # two metrics per result
