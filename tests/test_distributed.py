"""torchrun with 2 gloo processes on the CPU: the sharded run stores exactly one result, equal to the single-process
one; a rank that raises ends the run everywhere with a clear error and stores nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evalsuite.results import ResultsStore
from evalsuite.runner import ScoreOptions, score

REPO = Path(__file__).resolve().parent.parent
EXTRACTOR = "python:tests.tiny_models:tiny_uint8"


def _torchrun(args, store, timeout=180):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "evalsuite", "score", *args, "--store", str(store), "--json", "--workers", "0"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def test_two_ranks_equal_one_process(image_folders, tmp_path):
    a, b = image_folders
    args = [f"folder:{a}", "--tasks", "fid,kid", "--extractor", EXTRACTOR, "--ref", f"folder:{b}"]
    proc = _torchrun(args, tmp_path / "dist")
    assert proc.returncode == 0, proc.stderr[-3000:]
    dist_store = ResultsStore(tmp_path / "dist")
    (run,) = dist_store.runs()  # exactly one result, written once
    docs = {d["task"]: d for d in dist_store.load_run(run["run_id"])}
    assert docs["fid"]["provenance"]["hardware"]["distributed"]["world_size"] == 2
    single = {d["task"]: d for d in score(f"folder:{a}", ScoreOptions(
        tasks=["fid", "kid"], extractor=EXTRACTOR, ref=f"folder:{b}", num_workers=0, progress=False,
        store=tmp_path / "single")).results}
    # float64 sums in another order: equal to ~1e-15; the bar is 1e-10 relative
    assert docs["fid"]["metrics"]["fid"] == pytest.approx(single["fid"]["metrics"]["fid"], rel=1e-10)
    assert docs["kid"]["metrics"]["kid"] == pytest.approx(single["kid"]["metrics"]["kid"], rel=1e-10)
    assert docs["fid"]["num_samples"] == single["fid"]["num_samples"] == 40
    assert docs["fid"]["details"]["n_computed_features"] + docs["fid"]["details"]["n_cached_features"] == 40


class FailsOnRankOne:
    pass


def test_a_failing_rank_stores_nothing(image_folders, tmp_path):
    a, b = image_folders
    proc = _torchrun([f"folder:{a}", "--tasks", "fid", "--extractor", "python:tests.test_distributed:rank_one_fails",
                      "--ref", f"folder:{b}"], tmp_path / "store")
    assert proc.returncode != 0
    assert "rank 1" in proc.stderr and "simulated failure on rank 1" in proc.stderr
    assert not list((tmp_path / "store").glob("runs/*/*.json"))


def rank_one_fails():
    """The tiny extractor, but rank 1 raises in its forward pass."""
    import torch

    from tests.tiny_models import TinyExtractor

    class Failing(TinyExtractor):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if os.environ.get("RANK") == "1":
                raise RuntimeError("simulated failure on rank 1")
            return super().forward(x)

    return Failing("none")


def test_shard_and_unshard_round_trip():
    from evalsuite.distributed import Dist

    items = list(range(11))
    parts = [Dist(r, 3).shard(items) for r in range(3)]
    assert parts[1] == [1, 4, 7, 10] and Dist(0, 3).unshard(parts) == items
    assert np.concatenate([np.array(p) for p in parts]).sum() == sum(items)


def test_every_rank_skipping_alike_is_a_stored_skip(image_folders, tmp_path):
    a, b = image_folders
    proc = _torchrun([f"folder:{a}", "--tasks", "fid", "--ref", f"folder:{b}"], tmp_path / "store")  # no weights
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = json.loads(proc.stdout)["results"]
    assert row["status"] == "skipped" and "inception-2015-12-05.pt" in row["note"]
    assert len(list((tmp_path / "store").glob("runs/*/fid.json"))) == 1


def test_per_sample_tasks_are_sharded_and_equal_one_process(image_folders, tmp_path):
    """Precision/recall, the autoencoder tasks and a per-video task under 2 ranks: each rank scores its shard, the
    gathered per-sample results come back in order, and the one stored result equals the single-process run."""
    a, b = image_folders
    tasks = ["precision-recall", "ae-recon", "spectral", "scale-equivariance", "temporal-flickering"]
    common = dict(extractor=EXTRACTOR, pr_extractor=EXTRACTOR, ref=f"folder:{b}", num_samples=8,
                  autoencoder="demo-ae", resolution=64, video_model="demo-video", frames=4)
    args = [f"folder:{a}", "--tasks", ",".join(tasks), "--extractor", EXTRACTOR, "--pr-extractor", EXTRACTOR,
            "--ref", f"folder:{b}",
            "--num-samples", "8", "--autoencoder", "demo-ae", "--resolution", "64", "--video-model", "demo-video",
            "--frames", "4"]
    proc = _torchrun(args, tmp_path / "dist", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dist_store = ResultsStore(tmp_path / "dist")
    (run,) = dist_store.runs()
    dist_docs = {d["task"]: d for d in dist_store.load_run(run["run_id"])}
    single = {d["task"]: d for d in score(f"folder:{a}", ScoreOptions.with_legacy(
        tasks=tasks, num_workers=0, progress=False, store=tmp_path / "single", **common)).results}
    for task in tasks:
        ours, theirs = dist_docs[task], single[task]
        assert ours["status"] == theirs["status"] == "ok", (task, ours.get("reason"))
        assert ours["num_samples"] == theirs["num_samples"], task
        for metric, value in theirs["metrics"].items():
            if metric.endswith("_ms") or metric == "peak_memory_mb":
                continue  # timings and memory are per process
            # rFID here is a Fréchet distance of 8 samples in 16 dimensions (N < d): it magnifies the float32
            # differences a different network batch composition gives (a single process with --batch-size 4 moves
            # it by the same 1e-6); every other number is the same arithmetic in another order
            tolerance = 1e-5 if metric == "rfid" else 1e-10
            assert ours["metrics"][metric] == pytest.approx(value, rel=tolerance, abs=1e-12), (task, metric)
        if theirs.get("per_sample"):
            names = [Path(n).name for n in theirs["per_sample"]["name"]]  # store paths differ, contents do not
            assert [Path(n).name for n in ours["per_sample"]["name"]] == names, task  # gathered in order


def test_map_samples_in_one_process_keeps_order_and_checks_counts(tmp_path):
    from evalsuite.errors import EvalsuiteError
    from evalsuite.models import resolve_model
    from evalsuite.results import ResultsStore as Store
    from evalsuite.runner import RunContext

    ctx = RunContext(resolve_model("demo"), ScoreOptions(store=tmp_path, progress=False), Store(tmp_path))
    assert ctx.map_samples(list(range(5)), lambda shard: [i * i for i in shard], "squares") == [0, 1, 4, 9, 16]
    assert ctx.map_shards(list(range(5)), len, "count") == [5]
    with pytest.raises(EvalsuiteError, match="returned 1 results for 5 samples"):
        ctx.map_samples(list(range(5)), lambda shard: [0], "broken")


def test_fvd_two_ranks_equal_one_process(tmp_path):
    """FVD's sample and model: reference clips are generated and featurised sharded; one result, as one process."""
    spec = "python:tests.test_fvd:tiny_video_net"
    proc = _torchrun(["demo-video", "--tasks", "fvd", "--extractor", spec, "--ref", "model:demo-video",
                      "--num-samples", "6", "--frames", "4"], tmp_path / "dist", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    store = ResultsStore(tmp_path / "dist")
    (run,) = store.runs()
    (doc,) = store.load_run(run["run_id"])
    (single,) = score("demo-video", ScoreOptions.with_legacy(tasks=["fvd"], extractor=spec, ref="model:demo-video",
                                                 num_samples=6, frames=4, num_workers=0, progress=False,
                                                 store=tmp_path / "single")).results
    assert doc["status"] == single["status"] == "ok"
    assert doc["num_samples"] == single["num_samples"] == 6 and doc["details"]["n_reference"] == 6
    assert doc["metrics"]["fvd"] == pytest.approx(single["metrics"]["fvd"], rel=1e-10)
    assert doc["details"]["resolutions"] == single["details"]["resolutions"]
