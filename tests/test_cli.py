"""The README's promises through the CLI: `score demo` offline, `fd --json`, `tasks`, concurrent scoring."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from evalsuite.cli import app
from evalsuite.metrics import frechet_distance

runner = CliRunner()


def test_score_demo_offline_lists_skips_with_fix(tmp_path):
    result = runner.invoke(app, ["score", "demo", "--num-samples", "8", "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.stdout
    assert "evalsuite weights import inception-2015-12-05" in result.stdout
    assert "results stored in" in result.stdout
    runs = json.loads(runner.invoke(app, ["runs", "list", "--json"]).stdout)
    assert len(runs) == 1
    assert runs[0]["tasks"] == {"fid": "skipped", "kid": "skipped", "clip-fid": "skipped", "ae-recon": "ok",
                                "spectral": "ok", "scale-equivariance": "ok", "fvd": "skipped",
                                "temporal-flickering": "ok", "video-speed": "ok"}


def test_score_demo_with_user_extractor_gives_numbers():
    result = runner.invoke(app, ["score", "demo", "--num-samples", "16", "--extractor",
                                 "python:tests.tiny_models:tiny_uint8", "--tasks", "fid,kid", "--ref", "model:demo",
                                 "--workers", "0", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["metric"]: r for r in json.loads(result.stdout)["results"]}
    assert rows["fid"]["status"] == "ok" and rows["fid"]["value"] > 0 and rows["fid"]["n"] == 16


def test_fd_json(tmp_path):
    rng = np.random.default_rng(0)
    stats = []
    for i in range(2):
        x = rng.normal(i * 0.5, 1.0, size=(50, 6))
        path = tmp_path / f"s{i}.npz"
        np.savez(path, mu=x.mean(0), sigma=np.cov(x, rowvar=False))
        stats.append((x.mean(0), np.cov(x, rowvar=False)))
    result = runner.invoke(app, ["fd", str(tmp_path / "s0.npz"), str(tmp_path / "s1.npz"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["fd"] == pytest.approx(frechet_distance(*stats[0], *stats[1]), rel=1e-12)
    plain = runner.invoke(app, ["fd", str(tmp_path / "s0.npz"), str(tmp_path / "s1.npz")])
    assert "Fréchet distance" in plain.stdout


def test_tasks_lists_needs():
    result = runner.invoke(app, ["tasks", "--json"])
    assert result.exit_code == 0
    rows = {r["task"]: r for r in json.loads(result.stdout)}
    assert {"fid", "kid", "clip-fid"} <= set(rows)
    assert rows["fid"]["weights"] == ["inception-2015-12-05"] and rows["fid"]["reference"]
    assert rows["fid"]["runnable"].startswith("no")  # offline, weights absent
    assert rows["fid"]["metrics"] == {"fid": "lower"}


def test_unknown_task_is_a_clear_error():
    result = runner.invoke(app, ["score", "demo", "--tasks", "nosuch"])
    assert result.exit_code == 2
    assert "unknown task 'nosuch'" in result.output and "fid" in result.output


def test_two_concurrent_score_processes_lose_nothing(tmp_path, image_folders):
    a, b = image_folders
    store = tmp_path / "shared-store"
    cmd = [sys.executable, "-m", "evalsuite", "score", f"folder:{a}", "--tasks", "fid,kid", "--extractor",
           "python:tests.tiny_models:tiny_uint8", "--ref", f"folder:{b}", "--store", str(store), "--workers", "0",
           "--json"]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1].decode()[-2000:] for o in outputs]
    run_ids = {json.loads(o[0])["run_id"] for o in outputs}
    assert len(run_ids) == 2
    listed = json.loads(runner.invoke(app, ["runs", "list", "--store", str(store), "--json"]).stdout)
    assert {r["run_id"] for r in listed} == run_ids
    assert len([p for p in (store / "runs").glob("*/*.json") if p.name != "run.json"]) == 4  # + each run's manifest
    values = [json.loads(o[0])["results"][0]["value"] for o in outputs]
    # same inputs, same FID; the two processes share the feature cache, so one may batch a mix of cached and fresh
    # images, and the float32 network's output depends slightly on batch composition
    assert values[0] == pytest.approx(values[1], rel=1e-6)
