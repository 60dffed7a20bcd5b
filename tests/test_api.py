"""The Python API (evalsuite.api): its doctests run offline; compute_fid/kid/fvd give the CLI's numbers on the same
folders, whatever form the images take; frechet_distance is the engine's; score() stores nothing unless asked;
load_results() reads a stored run back as the same DataFrame; bad inputs are one-line evalsuite errors."""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import evalsuite
from evalsuite import api, api_inputs, metrics, refstats, result_frames
from evalsuite.cli import app
from evalsuite.errors import InputError, MissingWeightsError, UnknownNameError
from evalsuite.runner import ScoreOptions
from evalsuite.runner import score as run_score
from evalsuite.videoio import write_video
from tests.tiny_models import tiny_clean

EXTRACTOR = "python:tests.tiny_models:tiny_clean"
VIDEO_EXTRACTOR = "python:tests.test_fvd:tiny_video_net"


def _arrays(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(f).convert("RGB")) for f in sorted(folder.glob("*.png"))]


def _cli_json(args: list[str]) -> dict:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _temp_leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob(f"{api._TMP_PREFIX}*")}


# ------------------------------------------------------------------------------------------------ doctests, exports
@pytest.mark.parametrize("module", [api, api_inputs, result_frames])
def test_doctests_run_offline(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_public_functions_have_examples():
    public = [api.compute_fid, api.compute_kid, api.compute_fvd, api.frechet_distance, api.score, api.load_results,
              api.RunResult.metrics]
    assert all(">>> " in (fn.__doc__ or "") for fn in public)


def test_exported_from_evalsuite_and_import_stays_light():
    assert evalsuite.compute_fid is api.compute_fid and evalsuite.load_results is api.load_results
    assert {"compute_fid", "score", "RunResult"} <= set(evalsuite.__all__)
    with pytest.raises(AttributeError):
        evalsuite.no_such_thing  # noqa: B018
    code = "import sys, evalsuite; assert 'torch' not in sys.modules and 'pandas' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


# ------------------------------------------------------------------------------------------------ FID / KID
def test_compute_fid_on_folders_equals_the_cli(image_folders, tmp_path):
    a, b = image_folders
    fid = api.compute_fid(a, b, extractor=EXTRACTOR, num_workers=0, progress=False)
    out = _cli_json(["score", f"folder:{a}", "--tasks", "fid", "--ref", f"folder:{b}", "--extractor", EXTRACTOR,
                     "--workers", "0", "--store", str(tmp_path / "cli-store"), "--json"])
    (row,) = out["results"]
    assert row["metric"] == "fid" and fid == row["value"] and fid > 1.0
    # the same with Path and str arguments, and a biased covariance as --biased-cov gives it
    assert api.compute_fid(str(a), Path(b), extractor=EXTRACTOR, progress=False) == fid
    (doc,) = run_score(f"folder:{a}", ScoreOptions.with_legacy(tasks=["fid"], ref=f"folder:{b}", extractor=EXTRACTOR,
                                                   biased_cov=True, progress=False, store=tmp_path / "s2")).results
    assert api.compute_fid(a, b, extractor=EXTRACTOR, biased_cov=True, progress=False) == doc["metrics"]["fid"]


def test_list_and_tensor_inputs_equal_folder_inputs(image_folders):
    a, b = image_folders
    fid = api.compute_fid(a, b, extractor=EXTRACTOR, progress=False)
    arrays_a, arrays_b = _arrays(a), _arrays(b)
    nchw_a = torch.from_numpy(np.stack(arrays_a)).permute(0, 3, 1, 2)
    forms = [
        (arrays_a, b),  # list of HxWx3 uint8 arrays
        ([Image.fromarray(x) for x in arrays_a], arrays_b),  # list of PIL images
        (nchw_a, np.stack(arrays_b)),  # uint8 tensor (N, 3, H, W); uint8 array (N, H, W, 3)
        (nchw_a.float() / 255, b),  # float tensor in [0, 1]
        ([x.float() / 255 for x in nchw_a], b),  # list of 3xHxW float tensors
    ]
    for form_a, form_b in forms:
        assert api.compute_fid(form_a, form_b, extractor=EXTRACTOR, progress=False) == fid
    assert not _temp_leftovers()


def test_module_object_is_the_python_extractor_path(image_folders):
    a, b = image_folders
    by_spec = api.compute_fid(a, b, extractor=EXTRACTOR, progress=False)
    net = tiny_clean()
    assert api.compute_fid(a, b, extractor=net, progress=False) == by_spec
    with api_inputs.as_spec(net) as first, api_inputs.as_spec(tiny_clean()) as second:
        assert first == second  # same class and weights: same spec, so the feature cache is shared
        assert first.startswith("python:evalsuite.api:in_memory.TinyExtractor_")
    assert not vars(api.in_memory)  # released after use


def test_statistics_inputs(image_folders, tmp_path):
    a, b = image_folders
    fid = api.compute_fid(a, b, extractor=EXTRACTOR, progress=False)
    entry = refstats.build("b-stats", b, EXTRACTOR, num_workers=0, progress=False)
    by_name = api.compute_fid(a, "b-stats", extractor=EXTRACTOR, progress=False)
    npz = Path(refstats.config.user_reference_dir()) / entry["file"]
    by_file = api.compute_fid(a, npz, extractor=EXTRACTOR, progress=False)
    assert by_name == by_file == pytest.approx(fid, rel=1e-12)
    assert api.compute_fid(npz, a, extractor=EXTRACTOR, progress=False) == pytest.approx(fid, rel=1e-9)  # swapped
    refstats.build("a-stats", a, EXTRACTOR, num_workers=0, progress=False)
    assert api.compute_fid("a-stats", "b-stats") == pytest.approx(fid, rel=1e-9)
    assert api.compute_fid(refstats.load("a-stats"), refstats.load("b-stats")) == pytest.approx(fid, rel=1e-9)
    # KID against statistics that keep features equals KID against the folder
    kid = api.compute_kid(a, b, extractor=EXTRACTOR, num_subsets=5, subset_size=20, progress=False)
    assert api.compute_kid(a, "b-stats", extractor=EXTRACTOR, num_subsets=5, subset_size=20,
                           progress=False) == pytest.approx(kid, rel=1e-12)
    # statistics made by another network are refused, naming the difference
    with pytest.raises(refstats.IncompatibleStatsError, match="extractor"):
        api.compute_fid(a, "b-stats", extractor="python:tests.tiny_models:tiny_uint8", progress=False)


def test_compute_kid_equals_the_cli(image_folders, tmp_path):
    a, b = image_folders
    kid = api.compute_kid(a, b, extractor=EXTRACTOR, num_subsets=10, subset_size=30, seed=3, progress=False)
    out = _cli_json(["score", f"folder:{a}", "--tasks", "kid", "--ref", f"folder:{b}", "--extractor", EXTRACTOR,
                     "--seed", "3", "--store", str(tmp_path / "cli-store"), "--json"])
    (doc,) = run_score(f"folder:{a}", ScoreOptions.with_legacy(tasks=["kid"], ref=f"folder:{b}", extractor=EXTRACTOR,
                                                               seed=3,
                                                   kid_subsets=10, kid_subset_size=30, progress=False,
                                                   store=tmp_path / "s")).results
    assert isinstance(kid, api.KID) and kid == (doc["metrics"]["kid"], doc["metrics"]["kid_std"])
    mean, std = kid
    assert mean > 0 and std > 0
    assert {r["metric"] for r in out["results"]} == {"kid", "kid_std"}  # the CLI's defaults: 100 subsets


# ------------------------------------------------------------------------------------------------ FVD
def _videos(folder: Path, count: int, seed: int, frames: int = 6) -> list[np.ndarray]:
    folder.mkdir()
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(count):
        clip = np.clip(rng.uniform(0, 255, 3) + rng.normal(0, 30, (frames, 16, 16, 3)), 0, 255).astype(np.uint8)
        write_video(folder / f"{i:03d}.mp4", clip, lossless=True)
        clips.append(clip)
    return clips


def test_compute_fvd_equals_the_cli_and_takes_arrays(tmp_path):
    clips_a = _videos(tmp_path / "va", 5, seed=1)
    _videos(tmp_path / "vb", 5, seed=2)
    fvd = api.compute_fvd(tmp_path / "va", tmp_path / "vb", extractor=VIDEO_EXTRACTOR, frames=4, num_workers=0,
                          progress=False)
    out = _cli_json(["score", f"folder:{tmp_path / 'va'}", "--tasks", "fvd", "--video-ref",
                     f"folder:{tmp_path / 'vb'}", "--extractor", VIDEO_EXTRACTOR, "--frames", "4", "--workers", "0",
                     "--store", str(tmp_path / "cli-store"), "--json"])
    (row,) = out["results"]
    assert row["value"] == fvd and fvd > 0
    as_list = api.compute_fvd(clips_a, tmp_path / "vb", extractor=VIDEO_EXTRACTOR, frames=4, num_workers=0,
                              progress=False)
    batch = torch.from_numpy(np.stack(clips_a)).permute(0, 1, 4, 2, 3)  # (N, T, 3, H, W) uint8
    as_tensor = api.compute_fvd(batch, tmp_path / "vb", extractor=VIDEO_EXTRACTOR, frames=4, num_workers=0,
                                progress=False)
    assert as_list == as_tensor == fvd
    with pytest.raises(InputError, match="not a video network"):
        api.compute_fvd(clips_a, tmp_path / "vb", extractor=EXTRACTOR.replace("python:", ""), progress=False)


# ------------------------------------------------------------------------------------------------ Fréchet distance
def test_frechet_distance_is_the_engines(tmp_path):
    rng = np.random.default_rng(0)
    d = 5
    x, y = rng.normal(size=(40, d)), rng.normal(1.0, 2.0, size=(30, d))
    mu1, s1, mu2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    expected = metrics.frechet_distance(mu1, s1, mu2, s2)
    assert api.frechet_distance((mu1, s1), (mu2, s2)) == expected
    assert api.frechet_distance({"mu": mu1, "sigma": s1}, (mu2, s2)) == expected
    np.savez(tmp_path / "a.npz", mu=mu1, sigma=s1)
    np.savez(tmp_path / "b.npz", mu=mu2, sigma=s2)
    assert api.frechet_distance(tmp_path / "a.npz", str(tmp_path / "b.npz")) == expected
    out = _cli_json(["fd", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--json"])
    assert out["fd"] == expected
    assert api.compute_fid(tmp_path / "a.npz", tmp_path / "b.npz") == expected  # two statistics: their distance


# ------------------------------------------------------------------------------------------------ score, results
def test_score_without_store_writes_nothing(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    store_env = Path(os.environ["EVALSUITE_STORE"])
    run = api.score("demo", tasks="fid,kid", num_samples=6, ref="model:demo", extractor=tiny_clean(),
                    progress=False)
    assert run.store is None and not list(work.iterdir()) and not store_env.exists()
    assert not _temp_leftovers()
    assert [d["task"] for d in run.results] == ["fid", "kid"] and run["fid"]["status"] == "ok"
    df = run.metrics()
    assert list(df.columns) == api.RESULT_COLUMNS
    assert list(df["metric"]) == ["fid", "kid", "kid_std"] and (df["status"] == "ok").all()
    assert df["extractor"].str.startswith("python:evalsuite.api:in_memory.TinyExtractor_").all()
    assert (df["model_spec"] == "demo").all() and (df["num_samples"] == 6).all()
    assert df["evalsuite_version"].eq(evalsuite.__version__).all() and df["reference"].notna().all()


def test_score_with_store_then_load_results(tmp_path):
    store = tmp_path / "results"
    run = api.score("demo", ["fid", "clip-fid"], store=store, num_samples=6, ref="model:demo", extractor=EXTRACTOR,
                    progress=False)
    assert run.store == store and (store / "runs" / run.run_id / "fid.json").is_file()
    loaded = api.load_results(store)
    pd.testing.assert_frame_equal(loaded, run.metrics())
    assert list(loaded.columns) == api.RESULT_COLUMNS
    fid_row, skipped = loaded.iloc[0], loaded.iloc[1]
    assert (fid_row["task"], fid_row["metric"], fid_row["direction"], fid_row["primary"]) == ("fid", "fid", "lower",
                                                                                              True)
    assert fid_row["value"] == run["fid"]["metrics"]["fid"] and fid_row["seed"] == 0
    # clip-fid needs the CLIP weights, absent offline: a skipped row with the reason, dropped on request
    assert skipped["status"] == "skipped" and pd.isna(skipped["metric"]) and "missing weights" in skipped["reason"]
    assert list(api.load_results(store, include_skipped=False)["task"]) == ["fid"]
    # a second run: rows of both, oldest first; one run by its id prefix
    second = api.score("demo", "fid", store=store, num_samples=6,
                       seed=1, ref="model:demo", extractor=EXTRACTOR, progress=False)
    both = api.load_results(store)
    assert list(both["run_id"].drop_duplicates()) == [run.run_id, second.run_id]
    assert list(api.load_results(store, runs=second.run_id[:-2])["run_id"].unique()) == [second.run_id]
    cli = _cli_json(["runs", "show", second.run_id, "--store", str(store), "--json"])
    assert cli  # the CLI reads the same store


def test_score_takes_a_generator_object():
    from tests.tiny_models import noise_generator

    run = api.score(noise_generator(), "fid", num_samples=4, ref="model:demo", extractor=EXTRACTOR, progress=False)
    assert run.metrics()["model_id"].tolist() == ["test-noise@1"]


# ------------------------------------------------------------------------------------------------ errors
def test_bad_inputs_are_evalsuite_errors(image_folders, tmp_path):
    a, b = image_folders
    (tmp_path / "notes.txt").write_text("x")
    rgba = np.zeros((3, 8, 8, 4), dtype=np.uint8)
    cases = [
        (lambda: api.compute_fid(tmp_path / "missing", b, extractor=EXTRACTOR), "neither a folder"),
        (lambda: api.compute_fid("no-such-reference", b, extractor=EXTRACTOR), "registered reference name"),
        (lambda: api.compute_fid(tmp_path / "notes.txt", b, extractor=EXTRACTOR), "is a file"),
        (lambda: api.compute_fid([np.zeros((8, 8, 3), np.uint8)], b, extractor=EXTRACTOR), "at least 2"),
        (lambda: api.compute_fid(rgba, b, extractor=EXTRACTOR), "colour channels"),
        (lambda: api.compute_fid(np.zeros((8, 8, 3), np.uint8), b, extractor=EXTRACTOR), "batch of shape"),
        (lambda: api.compute_fid(torch.full((2, 3, 8, 8), 2.0), b, extractor=EXTRACTOR), r"\[0, 1\]"),
        (lambda: api.compute_fid([np.zeros((8, 8, 3), np.int64)] * 2, b, extractor=EXTRACTOR), "dtype int64"),
        (lambda: api.compute_fid(42, b, extractor=EXTRACTOR), "is a int"),
        (lambda: api.compute_fid(a, b, extractor=EXTRACTOR, mode="legacy_pytorch"), "inception extractor only"),
        (lambda: api.compute_fid(a, b, extractor="inception:clean", mode="legacy_pytorch"), "disagree"),
        (lambda: api.compute_kid("b-none.npz", b), "neither a folder"),
        (lambda: api.frechet_distance((np.zeros(2), np.eye(2)), (np.zeros(3), np.eye(3))), "dimension"),
        (lambda: api.frechet_distance("x", [1, 2]), "is a list"),
        (lambda: api.score("demo", "fid", num_sample=3), "unknown option"),
        (lambda: api.score("demo", [], num_samples=3), "names no task"),
        (lambda: api.load_results(tmp_path / "nowhere"), "does not exist"),
    ]
    for call, match in cases:
        with pytest.raises(InputError, match=match):
            call()
    with pytest.raises(UnknownNameError, match="unknown extractor"):
        api.compute_fid(a, b, extractor="nosuchnet")
    with pytest.raises(MissingWeightsError, match="inception"):  # offline, no weights: an error, not a skip
        api.compute_fid(a, b)
    with pytest.raises(InputError, match="needs images as a"):
        np.savez(tmp_path / "s.npz", mu=np.zeros(16), sigma=np.eye(16))
        api.compute_kid(tmp_path / "s.npz", b, extractor=EXTRACTOR)
    assert not _temp_leftovers()
