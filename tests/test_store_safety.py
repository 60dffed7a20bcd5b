"""Issue 14, items 1, 2 and 13: store writes never go through planted symbolic links, names and ids never reach
outside their store, and provenance counts the samples a run generated (videos included)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from evalsuite import config, fsutil
from evalsuite.cli import app
from evalsuite.device import records
from evalsuite.errors import InputError
from evalsuite.features import FeatureCache
from evalsuite.results import ResultsStore
from evalsuite.samples import SampleStore, make_requests
from tests.conftest import write_images

runner = CliRunner()
TINY_UINT8 = "python:tests.tiny_models:tiny_uint8"
PRECIOUS = b"precious data outside the store\n"


class _Gen:
    model_id = "test-gen"

    def generate(self, prompts, seeds):
        return [np.full((8, 8, 3), s % 256, dtype=np.uint8) for s in seeds]


def _victim(tmp_path: Path, name: str = "victim.txt") -> Path:
    """A file outside every store that a planted link points to; it must never change."""
    path = tmp_path / "outside" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PRECIOUS)
    return path


def _plant(link: Path, target: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return link


def _doc(run_id: str, task: str = "fid", model: str = "demo@1", value: float = 1.0) -> dict:
    return {"run_id": run_id, "task": task, "status": "ok", "family": "image-quality", "task_version": "1",
            "metrics": {"fid": value}, "metric_info": {"fid": {"direction": "lower", "description": "d"}},
            "model": {"spec": model, "id": model, "info": {}}, "num_samples": 2,
            "created_at": "2026-01-01T00:00:00+00:00", "provenance": {}}


def _clear_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


# ------------------------------------------------------------------------------------------------ item 1: links
@pytest.mark.parametrize("planted", ["model.json", "manifest.jsonl"])
def test_sample_store_never_writes_through_a_planted_link(tmp_path, planted):
    victim = _victim(tmp_path)
    store = SampleStore(tmp_path / "store" / "samples", _Gen.model_id)
    if planted == "manifest.jsonl":
        store.dir.mkdir(parents=True)
        (store.dir / "model.json").write_text(json.dumps({"model_id": _Gen.model_id}) + "\n")
    _plant(store.dir / planted, victim)
    with pytest.raises(InputError, match="symbolic link") as info:
        store.ensure(_Gen(), make_requests(["a"], 2, 0), progress=False)
    assert planted in info.value.message
    assert victim.read_bytes() == PRECIOUS
    assert (store.dir / planted).is_symlink()  # refused, not silently replaced


def test_sample_store_refuses_a_linked_folder_pointing_outside(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    store = SampleStore(tmp_path / "store" / "samples", _Gen.model_id)
    _plant(store.dir, outside)
    with pytest.raises(InputError, match="outside"):
        store.ensure(_Gen(), make_requests(["a"], 2, 0), progress=False)
    assert list(outside.iterdir()) == []


def test_score_with_a_planted_manifest_link_is_a_clear_error(tmp_path):
    from evalsuite.models import resolve_model

    victim = _victim(tmp_path)
    store_dir = tmp_path / "store"
    samples = SampleStore(store_dir / "samples", resolve_model("demo-video").model_id)
    _plant(samples.manifest, victim)
    result = runner.invoke(app, ["score", "demo-video", "--tasks", "temporal-flickering", "--num-samples", "2",
                                 "--store", str(store_dir)])
    _clear_error(result, "manifest.jsonl", "symbolic link")
    assert victim.read_bytes() == PRECIOUS


def test_append_line_refuses_links_and_fifos(tmp_path):
    victim = _victim(tmp_path)
    with pytest.raises(InputError, match="symbolic link"):
        fsutil.append_line(_plant(tmp_path / "log.jsonl", victim), "{}")
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        fsutil.append_line(fifo, "{}")
    assert victim.read_bytes() == PRECIOUS
    fsutil.append_line(tmp_path / "ok.jsonl", "a")
    fsutil.append_line(tmp_path / "ok.jsonl", "b\n")
    assert (tmp_path / "ok.jsonl").read_text() == "a\nb\n"


def test_results_store_refuses_linked_result_files_and_run_folders(tmp_path):
    store = ResultsStore(tmp_path / "store")
    victim = _victim(tmp_path, "fid.json")
    _plant(store.runs_dir / "r1" / "fid.json", victim)
    with pytest.raises(InputError, match="symbolic link"):
        store.write(_doc("r1"))
    outside = tmp_path / "outside-run"
    outside.mkdir()
    _plant(store.runs_dir / "r2", outside)
    with pytest.raises(InputError, match="outside"):
        store.write(_doc("r2"))
    with pytest.raises(InputError, match="outside"):
        store.write_artifact("r2", "plot.png", b"png")
    assert list(outside.iterdir()) == []
    assert victim.read_bytes() == PRECIOUS


@pytest.mark.parametrize("suffix", ["", "-wal"])
def test_index_sqlite_link_is_refused(tmp_path, suffix):
    store = ResultsStore(tmp_path / "store")
    victim = _victim(tmp_path, "victim.db")
    victim.write_bytes(b"")  # sqlite would happily initialise an empty file as a database
    _plant(Path(f"{store.index_path}{suffix}"), victim)
    try:  # the document is the truth: it may be stored with a warning that the index could not take it
        store.write(_doc("r1"))
    except InputError as exc:
        assert "index.sqlite" in exc.message
    assert victim.read_bytes() == b""
    result = runner.invoke(app, ["runs", "list", "--store", str(store.root)])
    _clear_error(result, "symbolic link")


def test_feature_cache_refuses_links(tmp_path):
    key = {"extractor": "x", "dim": 4}
    cache = FeatureCache(key, tmp_path / "features")
    victim = _victim(tmp_path, "feat.npy")
    sha = "ab" + "0" * 62
    _plant(cache._path(sha), victim)
    assert cache.get(sha) is None  # never read through a link
    with pytest.raises(InputError, match="symbolic link"):
        cache.put(sha, np.ones(4, dtype=np.float32))
    outside = tmp_path / "outside-cache"
    outside.mkdir()
    _plant(cache.dir / "cd", outside)
    with pytest.raises(InputError, match="outside"):
        cache.put("cd" + "0" * 62, np.ones(4, dtype=np.float32))
    assert list(outside.iterdir()) == []
    assert victim.read_bytes() == PRECIOUS


def _stats_npz(path: Path, dim: int = 2048) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, mu=rng.normal(size=dim), sigma=np.eye(dim))
    return path


def test_reference_files_are_never_written_through_links(tmp_path):
    stats = _stats_npz(tmp_path / "stats.npz")
    ref_dir = config.user_reference_dir()
    victim = _victim(tmp_path, "victim.npz")
    _plant(ref_dir / "coco.npz", victim)
    result = runner.invoke(app, ["ref", "import", "coco", str(stats), "--extractor", "inception"])
    _clear_error(result, "coco.npz", "symbolic link")
    assert victim.read_bytes() == PRECIOUS
    (ref_dir / "coco.npz").unlink()
    _plant(ref_dir / "manifest.json", victim)
    result = runner.invoke(app, ["ref", "import", "coco", str(stats), "--extractor", "inception"])
    _clear_error(result, "manifest.json", "symbolic link")
    assert victim.read_bytes() == PRECIOUS


def _record(**kw) -> records.TimingRecord:
    return records.TimingRecord(model="m", variant="fp16", backend="host-torch", device_model="cpu",
                                latencies_ms=[1.0, 2.0], release="v1", **kw)


def test_device_records_stay_inside_the_store(tmp_path):
    store = tmp_path / "store"
    (store / "device").mkdir(parents=True)
    path = records.write(store, _record(timestamp="../../escaped/evil"))
    assert path.parent == store / "device"
    assert not (tmp_path / "escaped").exists()
    assert records.load_all(store)[0].timestamp == "../../escaped/evil"  # the record itself is kept as given
    record = _record()
    victim = _victim(tmp_path, "victim.json")
    name = records.write(store, record).name
    (store / "device" / name).unlink()
    _plant(store / "device" / name, victim)
    with pytest.raises(InputError, match="symbolic link"):
        records.write(store, record)
    assert victim.read_bytes() == PRECIOUS


def test_site_and_report_outputs_refuse_links(tmp_path):
    store = ResultsStore(tmp_path / "store")
    store.write(_doc("run-a", value=1.0))
    store.write(_doc("run-b", value=2.0))
    victim = _victim(tmp_path, "index.html")
    site = tmp_path / "site"
    _plant(site / "index.html", victim)
    result = runner.invoke(app, ["leaderboard", "build", "--store", str(store.root), "--out", str(site)])
    _clear_error(result, "index.html", "symbolic link")
    report = _plant(tmp_path / "report.html", victim)
    result = runner.invoke(app, ["compare", "run-a", "run-b", "--store", str(store.root), "--out", str(report),
                                 "--n-boot", "100"])
    _clear_error(result, "report.html", "symbolic link")
    assert victim.read_bytes() == PRECIOUS


# ------------------------------------------------------------------------------------------------ item 2: traversal
def _outside_run(tmp_path: Path) -> Path:
    """A folder outside the store holding a result-shaped JSON (what a traversal would read)."""
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "fid.json").write_text(json.dumps(_doc("SECRET-RUN", model="SECRET")))
    return folder


@pytest.mark.parametrize("how", ["relative", "absolute"])
def test_runs_show_never_reads_outside_the_store(tmp_path, how):
    outside = _outside_run(tmp_path)
    store = ResultsStore(tmp_path / "store")
    store.write(_doc("run-a"))
    run_id = "../../x" if how == "relative" else str(outside)
    for extra in ([], ["--json"]):
        result = runner.invoke(app, ["runs", "show", run_id, "--store", str(store.root), *extra])
        _clear_error(result, "not a valid name")
        assert "SECRET" not in result.output


def test_compare_never_reads_outside_the_store(tmp_path):
    outside = _outside_run(tmp_path)
    store = ResultsStore(tmp_path / "store")
    store.write(_doc("run-a"))
    result = runner.invoke(app, ["compare", str(outside), "run-a", "--store", str(store.root), "--json",
                                 "--n-boot", "100"])
    _clear_error(result, "not a valid name")
    assert "SECRET" not in result.output


def test_load_run_refuses_a_linked_run_folder_and_keeps_prefixes(tmp_path):
    outside = _outside_run(tmp_path)
    store = ResultsStore(tmp_path / "store")
    store.write(_doc("20260101T000000Z-demo-abc123"))
    _plant(store.runs_dir / "linked", outside)
    with pytest.raises(InputError, match="outside"):
        store.load_run("linked")
    assert store.load_run("20260101T000000Z-demo")[0]["run_id"] == "20260101T000000Z-demo-abc123"
    for bad in ("..", ".", "", "a/b", "*", "run?"):
        with pytest.raises(InputError, match="not a valid name"):
            store.load_run(bad)


@pytest.mark.parametrize("how", ["relative", "absolute"])
def test_ref_import_name_never_writes_outside_home(tmp_path, how):
    stats = _stats_npz(tmp_path / "stats.npz")
    victim = _victim(tmp_path, "name.npz")
    name = "../../outside/name" if how == "relative" else str(tmp_path / "outside" / "name")
    result = runner.invoke(app, ["ref", "import", name, str(stats), "--extractor", "inception"])
    _clear_error(result, "reference name", "not a valid name")
    assert victim.read_bytes() == PRECIOUS


def test_ref_build_name_is_checked_before_any_work(tmp_path):
    folder = tmp_path / "imgs"
    write_images(folder, 4)
    victim = _victim(tmp_path, "name.npz")
    for name in ("../../outside/name", str(tmp_path / "outside" / "name")):
        result = runner.invoke(app, ["ref", "build", name, "--from", str(folder), "--extractor", TINY_UINT8,
                                     "--workers", "0", "--device", "cpu"])
        _clear_error(result, "not a valid name")
    assert victim.read_bytes() == PRECIOUS
    assert not config.features_dir().exists()  # refused before any feature was computed


def test_reference_manifest_entry_cannot_point_outside(tmp_path):
    stats = _stats_npz(tmp_path / "stats.npz")
    assert runner.invoke(app, ["ref", "import", "coco", str(stats), "--extractor", "inception"]).exit_code == 0
    manifest = config.user_reference_dir() / "manifest.json"
    data = json.loads(manifest.read_text())
    data["stats"][0]["file"] = str(_stats_npz(tmp_path / "elsewhere.npz"))
    manifest.write_text(json.dumps(data))
    result = runner.invoke(app, ["ref", "show", "coco"])
    _clear_error(result, "outside")


def test_leaderboard_never_opens_an_index_path_outside_the_store(tmp_path):
    outside = _outside_run(tmp_path)
    store = ResultsStore(tmp_path / "store")
    store.write(_doc("run-a"))
    with sqlite3.connect(store.index_path) as con:
        for hostile in (str(outside / "fid.json"), "runs/../../x/fid.json"):
            con.execute("UPDATE results SET path = ?", (hostile,))
            con.commit()
            result = runner.invoke(app, ["leaderboard", "build", "--store", str(store.root),
                                         "--out", str(tmp_path / "site")])
            assert result.exit_code in (0, 2) and "Traceback" not in result.output, result.output
            site = tmp_path / "site" / "index.html"
            assert not (site.exists() and "SECRET" in site.read_text())


def test_names_and_inside():
    for good in ("coco30k", "fid", "20260101T000000Z-demo-abc123", "spectral.spectrum.png", "a..b", "A_b-1",
                 "20260101T000000Z-modèle-abc123", "_x"):
        assert fsutil.check_name(good) == good
    for bad in ("", ".", "..", ".hidden", "a/b", "/abs", "../x", "a\\b", "x" * 129, "a b", "-x", "a\nb", None):
        with pytest.raises(InputError):
            fsutil.check_name(bad)


def test_inside(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    assert fsutil.inside(root, root / "a" / "new.json") == root / "a" / "new.json"
    _plant(root / "link", tmp_path)
    for bad in (root / ".." / "x", tmp_path / "x", root / "link" / "x"):
        with pytest.raises(InputError, match="outside"):
            fsutil.inside(root, bad)
    linked_root = _plant(tmp_path / "root-link", root)  # the store itself may be a link
    assert fsutil.inside(linked_root, linked_root / "a") == linked_root / "a"


# ------------------------------------------------------------------------------------------------ item 13
@pytest.mark.parametrize("model, extra", [("demo-video", []), ("demo", ["--video-model", "demo-video"])])
def test_samples_generated_this_run_counts_videos(tmp_path, model, extra):
    store = tmp_path / "store"
    counts = []
    for _ in range(2):
        result = runner.invoke(app, ["score", model, "--tasks", "temporal-flickering", "--num-samples", "3",
                                     "--store", str(store), "--json", *extra])
        assert result.exit_code == 0, result.output
        run_id = json.loads(result.stdout)["run_id"]
        (doc,) = ResultsStore(store).load_run(run_id)
        assert doc["model"]["spec"] == "demo-video"
        counts.append(doc["provenance"]["samples_generated_this_run"])
    assert counts == [3, 0]


def test_geneval_outputs_and_vbench_log_never_write_through_links(tmp_path):
    """GenEval's results.jsonl / metadata and VBench's streamed log in a store: a planted link is refused and the
    file it points to is untouched."""
    from evalsuite.fsutil import open_for_writing
    from evalsuite.tasks.geneval.prompts import write_prompts
    from evalsuite.tasks.geneval.scoring import write_results

    target = tmp_path / "outside.txt"
    target.write_text("precious")
    for name, write in [("results.jsonl", lambda p: write_results([{"a": 1}], p)),
                        ("metadata.jsonl", lambda p: write_prompts([{"prompt": "x"}], p)),
                        ("vbench.log", lambda p: open_for_writing(p).close())]:
        link = tmp_path / "store" / name
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(target)
        with pytest.raises(InputError, match=name):
            write(link)
        assert target.read_text() == "precious"
    with open_for_writing(tmp_path / "store" / "fresh.log") as fh:  # an ordinary file is written
        fh.write(b"ok")
    assert (tmp_path / "store" / "fresh.log").read_bytes() == b"ok"
