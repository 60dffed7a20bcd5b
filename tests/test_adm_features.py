"""The ADM tasks' TorchScript features through evalsuite's feature engine (issue 21): a second run reads the samples'
features and the reference batch's from the cache (no image reaches the network), under torchrun each rank
featurises its shard of the samples and of the reference images, and the sharded run's numbers are the
single-process ones. Network: tests/test_adm_tasks.py's stand-in with the interface of inception-2015-12-05.pt
(random weights, fixed seed: wiring, not the real network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evalsuite import adm_metrics
from evalsuite import features as feature_engine
from evalsuite.models import resolve_model
from evalsuite.models.class_conditional import class_labels
from evalsuite.results import ResultsStore
from evalsuite.runner import ScoreOptions, score
from tests.conftest import install_standin_weights
from tests.test_adm_tasks import _reference, _StandIn

REPO = Path(__file__).resolve().parent.parent
TASKS = ("adm-is", "adm-fid", "adm-precision", "adm-recall")


class _NoOutputStandIn(nn.Module):
    """The stand-in with its last layer under another name: no `output.weight`, so the no-bias softmax comes from
    the network's own no_output_bias forward (the fallback extractor)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.Sequential(nn.AdaptiveAvgPool2d(6), nn.Conv2d(3, 2048, 3), nn.Tanh(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(2048, 1008)

    def forward(self, img: torch.Tensor, return_features: bool = False, use_fp16: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        x = F.interpolate(img, size=(299, 299), mode="bilinear", align_corners=False)
        features = self.layers((x - 128.0) / 128.0).reshape(x.shape[0], -1)
        if return_features:
            return features
        return F.softmax(F.linear(features, self.head.weight, None if no_output_bias else self.head.bias), 1)


def _install(tmp_path, monkeypatch, module: nn.Module, name: str = "inception-2015-12-05.pt") -> Path:
    path = tmp_path / name
    torch.jit.script(module).save(str(path))
    install_standin_weights(monkeypatch, "inception-2015-12-05", path)
    return path


@pytest.fixture
def counted(monkeypatch):
    """The number of images the feature engine's network calls featurise (samples and reference batch alike)."""
    count = [0]
    run_network = feature_engine.run_network

    def counting(extractor, inputs, layout="image"):
        count[0] += len(inputs)
        return run_network(extractor, inputs, layout)

    monkeypatch.setattr(feature_engine, "run_network", counting)
    return count


def _opts(ref_path, store, **kw):
    return ScoreOptions(**{"tasks": list(TASKS), "ref": f"adm:{ref_path}", "num_samples": 20, "batch_size": 8,
                           "num_workers": 0, "progress": False, "store": store, **kw})


def test_second_run_reads_cached_features(tmp_path, monkeypatch, counted):
    _install(tmp_path, monkeypatch, _StandIn())
    ref_path, _ = _reference(tmp_path)
    first = {d["task"]: d for d in score("demo-class", _opts(ref_path, tmp_path / "store")).results}
    assert all(first[t]["status"] == "ok" for t in TASKS), {t: first[t].get("reason") for t in TASKS}
    assert counted[0] == 20 + 12  # every sample and every reference image once, shared by the four tasks
    assert first["adm-fid"]["details"]["n_computed_features"] == 20
    assert first["adm-precision"]["details"]["reference_features"] == "computed"

    counted[0] = 0
    second = {d["task"]: d for d in score("demo-class", _opts(ref_path, tmp_path / "store2")).results}
    assert counted[0] == 0  # nothing reached the network: samples' and reference batch's features from the cache
    assert second["adm-fid"]["details"]["n_cached_features"] == 20
    assert second["adm-fid"]["details"]["n_computed_features"] == 0
    assert second["adm-recall"]["details"]["reference_features"] == "cached"
    for task in TASKS:
        assert second[task]["metrics"] == first[task]["metrics"], task  # the same float32 features, bit for bit


def test_softmax_fallback_without_output_weight(tmp_path, monkeypatch, counted):
    net = _NoOutputStandIn()
    _install(tmp_path, monkeypatch, net)
    opts = ScoreOptions(tasks=["adm-is"], num_samples=12, batch_size=8, num_workers=0, progress=False,
                        store=tmp_path / "store")
    (doc,) = score("demo-class", opts).results
    assert doc["status"] == "ok", doc.get("reason")
    assert counted[0] == 2 * 12  # pool3, then the network's own no-bias softmax
    images = np.stack(resolve_model("demo-class").generator.generate_class(
        list(class_labels(12)), [opts.seed + i for i in range(12)]))
    with torch.inference_mode():
        probs = net(torch.from_numpy(images).permute(0, 3, 1, 2).float(), no_output_bias=True).numpy()
    assert doc["metrics"]["is"] == pytest.approx(adm_metrics.inception_score_adm(probs), rel=1e-5)
    counted[0] = 0
    (again,) = score("demo-class", opts).results
    assert counted[0] == 0 and again["metrics"] == doc["metrics"]  # both passes cached


def test_two_ranks_split_the_work_and_equal_one_process(tmp_path, monkeypatch, counted):
    standin = _install(tmp_path, monkeypatch, _StandIn())
    ref_path, _ = _reference(tmp_path)
    counts = tmp_path / "counts"
    counts.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "tests.adm_torchrun_entry", "score", "demo-class", "--tasks", ",".join(TASKS), "--ref",
           f"adm:{ref_path}", "--num-samples", "20", "--batch-size", "8", "--store", str(tmp_path / "dist"),
           "--json", "--workers", "0"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "ADM_TEST_STANDIN": str(standin),
           "ADM_TEST_COUNTS": str(counts)}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # each rank featurised its half: 10 of the 20 samples and 6 of the 12 reference images
    assert [json.loads((counts / f"rank{r}.json").read_text())["images"] for r in (0, 1)] == [16, 16]
    store = ResultsStore(tmp_path / "dist")
    (run,) = store.runs()  # one result per task, written once
    dist = {d["task"]: d for d in store.load_run(run["run_id"])}
    assert all(dist[t]["status"] == "ok" for t in TASKS), {t: dist[t].get("reason") for t in TASKS}
    assert dist["adm-fid"]["provenance"]["hardware"]["distributed"]["world_size"] == 2
    assert dist["adm-fid"]["details"]["n_computed_features"] == 20 and dist["adm-fid"]["num_samples"] == 20

    # one process, same cache: everything the two ranks computed is found (both shards, the whole reference); the
    # same features, so the same numbers up to the float64 sums and sqrtm of another process's BLAS threads
    cached = {d["task"]: d for d in score("demo-class", _opts(ref_path, tmp_path / "single")).results}
    assert counted[0] == 0
    for task in TASKS:
        assert cached[task]["metrics"] == pytest.approx(dist[task]["metrics"], rel=1e-9), task

    # one process, its own cache: computed afresh, the same numbers (float32 features, another batch composition)
    monkeypatch.setenv("EVALSUITE_HOME", str(tmp_path / "home2"))
    install_standin_weights(monkeypatch, "inception-2015-12-05", standin)
    fresh = {d["task"]: d for d in score("demo-class", _opts(ref_path, tmp_path / "fresh")).results}
    assert counted[0] == 20 + 12
    assert fresh["adm-fid"]["metrics"]["fid"] == pytest.approx(dist["adm-fid"]["metrics"]["fid"], rel=1e-5)
    assert fresh["adm-is"]["metrics"]["is"] == pytest.approx(dist["adm-is"]["metrics"]["is"], rel=1e-6)
    for task in ("adm-precision", "adm-recall"):
        assert fresh[task]["metrics"] == pytest.approx(dist[task]["metrics"], abs=1e-12), task
