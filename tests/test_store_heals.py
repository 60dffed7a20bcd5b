"""The store heals instead of crashing (issue 14, items 4-7): a damaged index is moved aside and rebuilt from the
result files; the index follows the files one by one, not by counting them; one malformed result or timing file is
skipped with a warning naming it (and refused by `device ingest`); an interrupted run is listed as incomplete,
`score --resume` finishes it, and a run is listed with its own model; half-written files of a killed writer are
never read as samples and are cleaned."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from evalsuite.cli import app
from evalsuite.device import records
from evalsuite.errors import InputError
from evalsuite.results import RUN_MANIFEST, ResultsStore, StoreWarning

REPO_ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _doc(run_id: str, task: str = "fid", value: float = 1.0, created: str = "2024-01-01T00:00:00+00:00") -> dict:
    return {"run_id": run_id, "task": task, "status": "ok", "family": "image-quality",
            "model": {"spec": f"folder:/data/{run_id}", "id": f"model-{run_id}"}, "created_at": created,
            "metrics": {task: value}, "metric_info": {task: {"direction": "lower"}}, "num_samples": 10}


def _put(store: ResultsStore, doc: dict) -> Path:
    """A result file as another process or a copy would leave it (no index update)."""
    path = store.runs_dir / doc["run_id"] / f"{doc['task']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema": "evalsuite.result/1", **doc}, indent=1))
    return path


def _cli(*args: object):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def _checkpoint(store: ResultsStore) -> None:
    """Move everything from the WAL into index.sqlite, so damage to the main file is damage to the data."""
    with sqlite3.connect(store.index_path) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("-wal", "-shm"):
        Path(f"{store.index_path}{suffix}").unlink(missing_ok=True)


def _warned(record, *needles: object) -> None:
    messages = [str(w.message) for w in record if issubclass(w.category, StoreWarning)]
    for needle in needles:
        assert any(str(needle) in m for m in messages), (needle, messages)


# ------------------------------------------------------------------------------------------------ item 4
def test_an_index_of_random_bytes_is_moved_aside_and_rebuilt(tmp_path):
    store = ResultsStore(tmp_path / "store")
    for i in range(3):
        store.write(_doc(f"run-{i}", value=float(i), created=f"2024-01-0{i + 1}T00:00:00+00:00"))
    before = store.rows()
    _checkpoint(store)
    store.index_path.write_bytes(np.random.default_rng(0).bytes(8192))
    with pytest.warns(StoreWarning, match="damaged .* moved aside to index.sqlite.damaged-.* rebuilt from the 3"):
        result = _cli("runs", "list", "--store", store.root, "--json")
    assert result.exit_code == 0, result.output
    assert [r["run_id"] for r in json.loads(result.stdout)] == ["run-2", "run-1", "run-0"]
    assert ResultsStore(store.root).rows() == before
    assert len(list(store.root.glob("index.sqlite.damaged-*"))) == 1  # kept for inspection, never deleted


@pytest.mark.parametrize("page", [2, 3], ids=["table-page", "key-index-page"])
def test_an_index_with_one_damaged_page_is_rebuilt(tmp_path, page):
    store = ResultsStore(tmp_path / "store")
    for i in range(80):  # several pages of rows
        _put(store, _doc(f"run-{i:03d}", value=float(i), created=f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00"))
    before = store.rows()
    assert len(before) == 80
    _checkpoint(store)
    data = bytearray(store.index_path.read_bytes())
    data[4096 * (page - 1):4096 * page] = np.random.default_rng(page).bytes(4096)
    store.index_path.write_bytes(bytes(data))
    with pytest.warns(StoreWarning, match="damaged"):
        assert ResultsStore(store.root).rows() == before
    with sqlite3.connect(store.index_path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_score_stores_every_task_on_a_damaged_index(tmp_path):
    store = ResultsStore(tmp_path / "store")
    store.write(_doc("run-old"))
    _checkpoint(store)
    store.index_path.write_bytes(b"SQLite format 3\x00" + np.random.default_rng(1).bytes(4080))
    with pytest.warns(StoreWarning, match="damaged"):
        result = _cli("score", "demo-ae", "--tasks", "ae-recon,spectral", "--num-samples", "2", "--resolution", "64",
                      "--workers", "0", "--store", store.root, "--json")
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run_id"]
    assert sorted(p.name for p in (store.runs_dir / run_id).glob("*.json")) == ["ae-recon.json", "run.json",
                                                                                "spectral.json"]
    assert {(r["run_id"], r["task"]) for r in ResultsStore(store.root).rows()} == {
        ("run-old", "fid"), (run_id, "ae-recon"), (run_id, "spectral")}


# ------------------------------------------------------------------------------------------------ item 5
def test_the_index_follows_the_files_even_when_the_counts_match(tmp_path):
    store = ResultsStore(tmp_path / "store")
    store.write(_doc("run-a", value=1.0))
    store.write(_doc("run-b", value=2.0))
    assert {r["run_id"] for r in store.rows()} == {"run-a", "run-b"}
    shutil.rmtree(store.runs_dir / "run-a")  # a deleted result
    other = ResultsStore(tmp_path / "other")
    other.write(_doc("run-c", value=3.0))
    shutil.copytree(other.runs_dir / "run-c", store.runs_dir / "run-c")  # a run copied in: still two files
    path = store.runs_dir / "run-b" / "fid.json"  # a result replaced by another version of the same size
    replaced = path.read_text().replace('"fid": 2.0', '"fid": 7.0')
    path.with_name("new").write_text(replaced)
    os.replace(path.with_name("new"), path)
    rows = ResultsStore(store.root).rows()
    assert sorted((r["run_id"], r["metrics"]["fid"]) for r in rows) == [("run-b", 7.0), ("run-c", 3.0)]
    assert ResultsStore(store.root).rows() == rows  # stable


def test_stale_index_rows_never_crash_the_leaderboard(tmp_path):
    store = ResultsStore(tmp_path / "store")
    store.write(_doc("run-a", value=1.0))
    store.write(_doc("run-b", value=2.0))
    store.rows()
    with sqlite3.connect(store.index_path) as con:  # a row whose file is gone (deleted, or a half-finished write)
        con.execute("INSERT INTO results (run_id, task, status, model_spec, model_id, created_at, path, metrics) "
                    "VALUES ('run-gone', 'fid', 'ok', 'folder:/x', 'model-gone', '2030-01-01', "
                    "'runs/run-gone/fid.json', '{\"fid\": 5.0}')")
    (store.runs_dir / "run-a" / "fid.json").unlink()
    result = _cli("leaderboard", "build", "--store", store.root, "--out", tmp_path / "site")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "site" / "index.html").read_text()
    assert "folder:/data/run-b" in html and "run-gone" not in html and "folder:/data/run-a" not in html
    assert [r["run_id"] for r in ResultsStore(store.root).rows()] == ["run-b"]


# ------------------------------------------------------------------------------------------------ item 6
def _malformed_results(store: ResultsStore) -> list[Path]:
    bad: dict[str, str | bytes] = {
        "truncated": b'{"schema": "evalsuite.result/1", "run_id": "bad-truncated", "task": "fid", "sta',
        "binary": bytes(range(256)) * 8,
        "wrong-types": json.dumps({**_doc("bad-wrong-types"), "model": ["folder:/x"], "metrics": {"fid": "low"}}),
        "metric-text": json.dumps({**_doc("bad-metric-text"), "metrics": {"fid": "12.5"}}),
        "nested": b"[" * 100_000 + b"]" * 100_000,
        "nested-details": json.dumps({**_doc("bad-nested-details"), "details": _nest(200)}),
        "list": b"[1, 2, 3]",
        "nan": json.dumps({**_doc("bad-nan"), "metrics": {"fid": float("nan")}}),
        "elsewhere": json.dumps(_doc("run-0")),  # names another run than its folder
    }
    paths = []
    for name, data in bad.items():
        path = store.runs_dir / f"bad-{name}" / "fid.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        paths.append(path)
    return paths


def _nest(depth: int) -> dict:
    out: dict = {}
    for _ in range(depth):
        out = {"x": out}
    return out


def test_malformed_result_files_are_skipped_with_a_warning_naming_them(tmp_path):
    store = ResultsStore(tmp_path / "store")
    for i in range(2):
        store.write({**_doc(f"run-{i}", value=float(i + 1)), "per_sample": {"fid": [1.0, 2.0, float(i)]}})
    bad = _malformed_results(store)
    broken_in_good_run = store.runs_dir / "run-1" / "kid.json"
    broken_in_good_run.write_text('{"run_id": "run-1", "task": "kid", "status": "ok", "metr')

    with pytest.warns(StoreWarning) as record:
        listed = _cli("runs", "list", "--store", store.root, "--json")
    assert listed.exit_code == 0, listed.output
    assert sorted(r["run_id"] for r in json.loads(listed.stdout)) == ["run-0", "run-1"]
    _warned(record, *bad, broken_in_good_run)
    assert any("not valid JSON" in str(w.message) for w in record)
    assert any("nested more than" in str(w.message) for w in record)

    with pytest.warns(StoreWarning) as record:
        site = _cli("leaderboard", "build", "--store", store.root, "--out", tmp_path / "site")
    assert site.exit_code == 0, site.output
    _warned(record, *bad)

    with pytest.warns(StoreWarning) as record:
        shown = _cli("runs", "show", "run-1", "--store", store.root)
    assert shown.exit_code == 0, shown.output
    _warned(record, broken_in_good_run)

    with pytest.warns(StoreWarning) as record:
        compared = _cli("compare", "run-0", "run-1", "--store", store.root, "--json", "--n-boot", "100")
    assert compared.exit_code == 0, compared.output
    _warned(record, broken_in_good_run)
    assert [row["task"] for row in json.loads(compared.stdout)["rows"]] == ["fid"]


def test_compare_survives_unusable_per_sample_values_and_details(tmp_path):
    store = ResultsStore(tmp_path / "store")
    store.write({**_doc("run-0"), "per_sample": {"fid": ["a", "b"], "name": [[1], [2]]},
                 "metric_info": {"fid": {"direction": "lower", "aggregate": "no-such-statistic"}},
                 "details": {"latent": {"radial_freq": "x", "radial_power": None}}})
    store.write({**_doc("run-1"), "per_sample": {"fid": [1.0, 2.0]},
                 "metric_info": {"fid": {"direction": "lower", "aggregate": "no-such-statistic"}}})
    result = _cli("compare", "run-0", "run-1", "--store", store.root, "--json", "--n-boot", "100")
    assert result.exit_code == 0, result.output
    [cell_0, cell_1] = json.loads(result.stdout)["rows"][0]["cells"]
    assert cell_1["note"].startswith("no CI")


def _good_record(**changes) -> records.TimingRecord:
    return records.TimingRecord(**{"model": "tiny", "variant": "fp32", "backend": "host-torch",
                                   "device_model": "cpu-x", "latencies_ms": [2.0, 2.5, 3.0], "release": "v1",
                                   **changes})


def test_malformed_timing_records_are_skipped_by_history_and_the_leaderboard(tmp_path):
    store = tmp_path / "store"
    records.write(store, _good_record(timestamp="2025-01-01T00:00:00+00:00"))
    records.write(store, _good_record(release="v2", timestamp="2025-02-01T00:00:00+00:00"))
    good = json.loads(next((store / "device").glob("*.json")).read_text())
    bad = {
        "truncated": b'{"model": "tiny", "variant": "fp32", "lat',
        "binary": bytes(range(256)) * 8,
        "wrong-types": json.dumps({**good, "release": ["v3"], "timestamp": 5}),
        "text-latencies": json.dumps({**good, "latencies_ms": ["1.0", "2.0"]}),
        "nested": b"[" * 100_000 + b"]" * 100_000,
        "list": b"[]",
    }
    paths = []
    for name, data in bad.items():
        path = store / "device" / f"zz-{name}.json"
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        paths.append(path)

    with pytest.warns(StoreWarning) as record:
        history = _cli("device", "history", "tiny", "--store", store, "--json")
    assert history.exit_code == 0, history.output
    assert json.loads(history.stdout)["series"][0]["releases"] == ["v1", "v2"]
    _warned(record, *paths)

    with pytest.warns(StoreWarning) as record:
        site = _cli("leaderboard", "build", "--store", store, "--out", tmp_path / "site")
    assert site.exit_code == 0, site.output
    _warned(record, *paths)

    for path in paths:  # ingest refuses each with a clear error (no RecursionError, no traceback)
        result = _cli("device", "ingest", path, "--store", tmp_path / "other-store")
        assert result.exit_code == 2, (path.name, result.output)
        assert "error:" in result.output and "RecursionError" not in result.output
    assert not (tmp_path / "other-store" / "device").exists()


# ------------------------------------------------------------------------------------------------ item 7
def _evalsuite(*args: object, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evalsuite", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env})


def test_a_killed_run_is_listed_incomplete_and_resume_finishes_it(tmp_path):
    store = tmp_path / "store"
    # ae-recon decodes once; the 2nd decode is scale-equivariance's first: the process dies inside that task
    killed = _evalsuite("score", "python:tests.kill_models:ae", "--tasks", "ae-recon,spectral,scale-equivariance",
                        "--num-samples", "2", "--resolution", "64", "--workers", "0", "--store", store,
                        EVALSUITE_TEST_KILL="decode:2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    [run_dir] = (store / "runs").iterdir()
    run_id = run_dir.name
    kept = {p.name: p.read_bytes() for p in run_dir.glob("*.json") if p.name != RUN_MANIFEST}
    assert sorted(kept) == ["ae-recon.json", "spectral.json"]

    [run] = json.loads(_cli("runs", "list", "--store", store, "--json").stdout)
    assert (run["run_id"], run["model_spec"], run["state"], run["missing_tasks"], run["tasks"]) == (
        run_id, "python:tests.kill_models:ae", "incomplete", ["scale-equivariance"],
        {"ae-recon": "ok", "spectral": "ok"})
    table = _cli("runs", "list", "--store", store)
    assert "incomplete" in table.stdout and "scale-equivariance" in table.stdout and "--resume" in table.stdout

    refused = _cli("score", "--resume", run_id, "--store", store, "--num-samples", "5")
    assert refused.exit_code == 2 and "--num-samples" in refused.output
    refused = _cli("score", "demo", "--resume", run_id, "--store", store)
    assert refused.exit_code == 2 and "python:tests.kill_models:ae" in refused.output

    half_written = run_dir / ".scale-equivariance.json.k1ll3d00.tmp"  # as atomic_write leaves it when killed
    half_written.write_text('{"run_id": "')
    resumed = _cli("score", "--resume", run_id, "--store", store, "--json")
    assert resumed.exit_code == 0, resumed.output
    out = json.loads(resumed.stdout)
    assert out["run_id"] == run_id
    assert {r["task"] for r in out["results"]} == {"ae-recon", "spectral", "scale-equivariance"}
    assert all((run_dir / name).read_bytes() == data for name, data in kept.items())  # untouched
    new = json.loads((run_dir / "scale-equivariance.json").read_text())
    assert new["provenance"]["options"]["num_samples"] == 2 and new["provenance"]["task_options"]["resolution"] == 64
    assert new["model"]["spec"] == "python:tests.kill_models:ae"
    assert not half_written.exists()

    [run] = json.loads(_cli("runs", "list", "--store", store, "--json").stdout)
    assert (run["state"], run["missing_tasks"]) == ("complete", [])
    manifest = json.loads((run_dir / RUN_MANIFEST).read_text())
    assert manifest["status"] == "complete" and len(manifest["resumed_at"]) == 1
    again = _cli("score", "--resume", run_id, "--store", store)
    assert again.exit_code == 2 and "is complete" in again.output


def test_a_run_is_listed_with_its_own_model_not_its_newest_result(tmp_path):
    result = _cli("score", "demo", "--tasks", "ae-recon", "--autoencoder", "demo-ae", "--num-samples", "2",
                  "--resolution", "64", "--workers", "0", "--json")
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run_id"]
    assert json.loads(result.stdout)["results"][0]["model"] == "demo-ae"  # the result belongs to the autoencoder
    [run] = json.loads(_cli("runs", "list", "--json").stdout)
    assert (run["run_id"], run["model_spec"], run["state"]) == (run_id, "demo", "complete")
    assert f"run {run_id} · demo · complete" in _cli("runs", "show", run_id).stdout


def test_run_states_running_and_killed_before_its_first_result(tmp_path):
    store = ResultsStore(tmp_path / "store")
    manifest = {"run_id": "run-x", "model": {"spec": "demo", "id": "demo@1"}, "tasks": ["fid", "kid"],
                "options": {}, "created_at": "2025-01-01T00:00:00+00:00", "status": "running"}
    store.write_manifest(manifest, new=True)
    [run] = store.runs()
    assert (run["state"], run["missing_tasks"], run["tasks"]) == ("incomplete", ["fid", "kid"], {})
    with store.run_lock("run-x"):
        assert store.runs()[0]["state"] == "running"
        with pytest.raises(InputError, match="being scored by another process"):
            with ResultsStore(store.root).run_lock("run-x"):
                pass
    assert store.runs()[0]["state"] == "incomplete"
    (store.runs_dir / "run-x" / RUN_MANIFEST).write_text("{not json")
    with pytest.warns(StoreWarning, match="run manifest .* is damaged"):
        assert store.runs() == []
    with pytest.raises(InputError, match="damaged"):
        store.read_manifest("run-x", required=True)


_KILL_IN_ATOMIC_WRITE = """
import os, sys
from evalsuite.fsutil import atomic_write

def write(tmp):
    with open(tmp, "wb") as fh:
        fh.write(b"\\x00\\x00\\x00\\x18ftypisom")  # the first bytes of an MP4, then the process dies
    os.kill(os.getpid(), 9)

atomic_write(sys.argv[1], write, suffix=".mp4")
"""


class _Frames:
    model_id = "frames@1"
    fps = 8

    def generate_video(self, prompts, seeds):
        return [np.full((2, 16, 16, 3), 40 * (s % 5), dtype=np.uint8) for s in seeds]


def test_half_written_samples_of_a_killed_writer_are_never_read_and_are_cleaned(tmp_path):
    from evalsuite.samples import SampleStore, make_requests
    from evalsuite.videoio import list_videos

    store = SampleStore(tmp_path / "samples", _Frames.model_id)
    requests = make_requests(["a", "b"], 2, 0)
    target = store.path_for(requests[0], "video")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-c", _KILL_IN_ATOMIC_WRITE, str(target)], env=env, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    [left] = [p for p in target.parent.iterdir()]
    assert left.name.startswith(f".{target.name}.") and left.suffix == ".mp4"  # the killed writer's temp file
    assert not target.exists()
    with pytest.raises(InputError, match="holds no videos"):
        list_videos(store.dir)  # never read as a sample, e.g. by folder:PATH over a sample store

    fresh = target.parent / f".{target.name}.l1ve0000.mp4"  # a live writer's temp file (just written): kept
    fresh.write_bytes(b"\x00")
    two_hours_ago = time.time() - 7200
    os.utime(left, (two_hours_ago, two_hours_ago))
    paths, generated = store.ensure(_Frames(), requests, progress=False, media="video")
    assert generated == 2 and all(p.is_file() for p in paths)
    assert not left.exists() and fresh.exists()
    assert list_videos(store.dir) == sorted(paths)
