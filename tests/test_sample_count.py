"""Sample-size honesty (issue 17 item 6): distribution metrics record their protocol's sample count, results from
fewer samples are "not comparable" everywhere they are shown, another count is another protocol (column), and FID's
optional sampling interval resamples the stored features (checked replicate by replicate against clean-fid's own
`frechet_distance` on the same resampled rows)."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
import torch

from evalsuite import bootstrap, metrics, sample_count, score
from evalsuite.errors import InputError
from evalsuite.leaderboard.compare import compare, to_markdown
from evalsuite.leaderboard.data import build_tables
from evalsuite.results import ResultsStore
from evalsuite.runner import RunSummary


@pytest.mark.parametrize("module", [sample_count, bootstrap, metrics])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("unbiased", [True, False])
@pytest.mark.parametrize("n,d", [(30, 48), (200, 16)])  # fewer rows than dimensions (Gram path) and more
def test_bootstrap_replicates_are_clean_fids_distance_of_the_resampled_rows(n, d, unbiased):
    from cleanfid.fid import frechet_distance as clean_frechet

    rng = np.random.default_rng(5)
    x = rng.normal(size=(n, d)) * 1.3 + 0.2
    y = rng.normal(size=(400, d))
    mu2, sigma2 = y.mean(0), np.cov(y, rowvar=False)
    reps = metrics.frechet_bootstrap(x, mu2, sigma2, n_boot=6, seed=11, unbiased=unbiased)
    draws = np.random.default_rng(11)  # the documented draw: integers(0, N, N) per replicate
    for rep in reps:
        rows = x[draws.integers(0, n, n)]
        expected = clean_frechet(rows.mean(0), np.cov(rows, rowvar=False, ddof=1 if unbiased else 0), mu2, sigma2)
        assert rep == pytest.approx(expected, rel=1e-6)


def test_bootstrap_rejects_too_few():
    with pytest.raises(ValueError):
        metrics.frechet_bootstrap(np.zeros((1, 3)), np.zeros(3), np.eye(3), n_boot=5)


def _net():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.GroupNorm(1, 3), torch.nn.Conv2d(3, 8, 3, stride=4), torch.nn.Tanh(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    net.preprocessing = {"resize": "none", "input_dtype": "float255"}
    return net


def test_results_below_the_protocol_count_are_not_comparable_everywhere(tmp_path):
    store = tmp_path / "store"
    small = score("demo", tasks=["fid", "kid"], num_samples=8, ref="model:demo", extractor=_net(), store=store,
                  progress=False, options={"kid.subsets": 3, "kid.subset_size": 4, "fid.bootstrap": 20})
    fid = small["fid"]
    assert fid["sample_count"] == {"protocol": 50000, "used": 8, "comparable": False}
    assert small["kid"]["sample_count"]["comparable"] is False
    space = fid["protocol"]  # a user's network is its own feature space, never the published FID's column
    assert space.startswith("fid-python:evalsuite.api:in_memory.Sequential_") and not space.endswith("-8")
    # the run's table (score / runs show) says so
    assert "not comparable: 8 samples, the protocol needs 50000" in \
        RunSummary(small.run_id, store, small.results).rows()[0]["note"]
    frame = small.metrics()
    assert list(frame["comparable"]) == [False] * 3 and list(frame["protocol_samples"]) == [50000] * 3

    # a count the run meets: comparable, and its own protocol (column)
    met = score("demo", tasks=["fid"], num_samples=8, ref="model:demo", extractor=_net(), store=store,
                progress=False, options={"fid.protocol_samples": 8, "fid.bootstrap": 20}, seed=1)
    doc = met["fid"]
    assert doc["sample_count"] == {"protocol": 8, "used": 8, "comparable": True}
    assert doc["protocol"] == f"{space}-8"

    tables = build_tables(ResultsStore(store), [])
    cells = {key: row.cells[key] for table in tables for row in table.rows for key in row.cells}
    below, met_key = f"fid [{space}]/fid", f"fid [{space}-8]/fid"
    assert cells[below].comparable is False and "not comparable" in cells[below].note
    assert "sampling 95% interval" in cells[below].note
    assert cells[met_key].comparable is True
    table = next(t for t in tables if t.family == "image-quality")
    assert below not in table.best()  # never ranked best
    assert table.best()[met_key]


def test_sampling_interval_in_the_result_and_the_comparison(tmp_path):
    store = tmp_path / "store"
    runs = [score("demo", tasks=["fid"], num_samples=8, ref="model:demo", extractor=_net(), store=store,
                  progress=False, seed=seed, options={"fid.bootstrap": 40}) for seed in (0, 7)]
    intervals = [r["fid"]["details"]["sampling_interval"] for r in runs]
    for interval in intervals:
        reps = np.asarray(interval["replicates"])
        assert interval["kind"] == "sampling" and len(reps) == 40
        assert interval["low"] == pytest.approx(np.percentile(reps, 2.5))
        assert interval["high"] == pytest.approx(np.percentile(reps, 97.5))
        assert interval["low"] <= interval["high"]
    report = compare(store, [r.run_id for r in runs])
    row = next(row for row in report.rows if row.task == "fid")
    other = row.cells[1]
    deltas = np.asarray(intervals[1]["replicates"]) - np.asarray(intervals[0]["replicates"])
    assert other.ci is not None
    assert (other.ci.low, other.ci.high) == pytest.approx(tuple(np.percentile(deltas, [2.5, 97.5])))
    assert other.delta == pytest.approx(runs[1].metrics()["value"].iloc[0] - runs[0].metrics()["value"].iloc[0])
    assert other.ci_text.startswith("sampling [") and "not comparable" in other.ci_text
    markdown = to_markdown(report)
    assert "sampling [" in markdown and "not comparable" in markdown
    json.dumps(report.to_json())


def test_only_one_run_with_an_interval_says_how_to_get_one(tmp_path):
    store = tmp_path / "store"
    a = score("demo", tasks=["fid"], num_samples=8, ref="model:demo", extractor=_net(), store=store, progress=False)
    b = score("demo", tasks=["fid"], num_samples=8, ref="model:demo", extractor=_net(), store=store, progress=False,
              seed=3, options={"fid.bootstrap": 10})
    cell = next(row for row in compare(store, [a.run_id, b.run_id]).rows if row.task == "fid").cells[1]
    assert cell.ci is None and "only one run has a sampling interval" in cell.ci_text


@pytest.mark.parametrize("bad", [{"fid.bootstrap": 1}, {"fid.bootstrap": -2}, {"protocol_samples": 1}])
def test_bad_values_are_refused_before_any_work(tmp_path, bad):
    with pytest.raises(InputError):
        score("demo", tasks=["fid"], num_samples=8, ref="model:demo", extractor=_net(), store=tmp_path / "s",
              progress=False, options=bad)


def test_cmmd_and_fd_dinov2_counts():
    from evalsuite.task_options import resolve
    from evalsuite.tasks import get

    assert resolve(get("cmmd"), {}).protocol_samples == 30000
    assert resolve(get("fd-dinov2"), {}).protocol_samples == 50000
    assert resolve(get("clip-fid"), {"*": {"protocol_samples": 10000}}).protocol_samples == 10000
    assert sample_count.protocol_name("cmmd-clip-l14-336-sigma10", "cmmd", 10000, 30000) == \
        "cmmd-clip-l14-336-sigma10-10k"
    assert sample_count.protocol_name("fd-dinov2-vitl14", "fd-dinov2", 50000, 50000) == "fd-dinov2-vitl14"


def test_the_site_marks_the_cell(tmp_path):
    from evalsuite.leaderboard.site import build

    store = tmp_path / "store"
    score("demo", tasks=["fid"], num_samples=8, ref="model:demo", extractor=_net(), store=store, progress=False)
    html = build(store, tmp_path / "site").read_text()
    cell = html[html.index('class=" not-comparable"'):]
    cell = cell[:cell.index("</td>")]
    assert '<span class="nc" title="not comparable: 8 samples, the protocol needs 50000">not comparable</span>' in cell


def test_the_command_line_tables_say_not_comparable(tmp_path):
    from typer.testing import CliRunner

    from evalsuite.cli import app

    cli = CliRunner()
    result = cli.invoke(app, ["score", "demo", "--num-samples", "8", "--extractor",
                              "python:tests.tiny_models:tiny_uint8", "--tasks", "fid", "--ref", "model:demo",
                              "--workers", "0", "--json"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert "not comparable: 8 samples" in run["results"][0]["note"]
    shown = cli.invoke(app, ["runs", "show", run["run_id"]], terminal_width=200)
    assert shown.exit_code == 0 and "ok, not comparable" in shown.stdout


def test_another_feature_space_is_another_protocol():
    from evalsuite.tasks import get

    fid, kid, clip_fid, dino = (get(n)() for n in ("fid", "kid", "clip-fid", "fd-dinov2"))
    assert fid.feature_protocol("inception") is None and fid.feature_protocol("inception:clean") is None
    assert fid.feature_protocol("inception:legacy_pytorch") == "fid-inception-pool3-legacy_pytorch"
    assert fid.feature_protocol("clip") == "fid-clip-vit-b-32"
    assert kid.feature_protocol("dinov2-vitl14") == "kid-dinov2-vitl14"  # KD on DINOv2 (Stein et al.) is named
    assert clip_fid.feature_protocol("clip") is None and dino.feature_protocol("dinov2-vitl14") is None
