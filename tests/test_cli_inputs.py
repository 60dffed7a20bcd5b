"""Issue 14 item 12: sane CLI inputs, refused before any work: --num-samples beyond the store's free disk or above
10 million, `--tasks ,`, --store / EVALSUITE_HOME pointing at a file, a non-UTF-8 --prompts file; generation
requests are built lazily."""

from __future__ import annotations

import tracemalloc
from collections import namedtuple
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evalsuite import config, options
from evalsuite import runner as run
from evalsuite.cli import app
from evalsuite.errors import InputError
from evalsuite.samples import SampleRequest, make_requests

cli = CliRunner()


def _score(tmp_path: Path, *args: str):
    return cli.invoke(app, ["score", "demo", "--tasks", "fid", "--store", str(tmp_path / "store"), *args])


def _nothing_stored(tmp_path: Path) -> bool:
    runs = tmp_path / "store" / "runs"
    return not runs.exists() or not any(runs.iterdir())


def _clear_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for word in words:
        assert word in result.stderr, result.stderr


# ------------------------------------------------------------------------------------------------ --num-samples
def test_num_samples_above_ten_million_is_refused_before_any_work(tmp_path):
    result = _score(tmp_path, "--num-samples", "10000001")
    _clear_error(result, "--num-samples", "10000000")
    assert _nothing_stored(tmp_path)


def test_num_samples_beyond_free_disk_is_refused_before_any_work(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    seen = []

    def tiny_disk(path):
        seen.append(Path(path))
        return usage(10 << 20, 9 << 20, 1 << 20)  # 1 MiB free

    monkeypatch.setattr(options.shutil, "disk_usage", tiny_disk)
    result = _score(tmp_path, "--num-samples", "100000")
    _clear_error(result, "--num-samples 100000", "free", str(tmp_path / "store"))
    assert _nothing_stored(tmp_path)
    assert seen and all(p.is_dir() for p in seen)  # asked about the disk the (not yet created) store will be on


def test_num_samples_that_fit_are_accepted(tmp_path, monkeypatch):
    run.check_run_inputs(run.resolve_model("demo"), run.ScoreOptions(num_samples=50_000, store=tmp_path / "s"))
    run.check_run_inputs(run.resolve_model("demo"), run.ScoreOptions(num_samples=None, store=tmp_path / "s"))
    with pytest.raises(InputError, match="at least 1"):
        run.check_run_inputs(run.resolve_model("demo"), run.ScoreOptions(num_samples=0, store=tmp_path / "s"))


def test_generation_requests_are_lazy():
    prompts = ["a", "b", "c"]
    tracemalloc.start()
    requests = run.sample_requests(prompts, 10_000_000, seed=7)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1 << 20  # not a list of ten million requests
    assert len(requests) == 10_000_000
    assert requests[9_999_999] == SampleRequest(prompts[9_999_999 % 3], 7 + 9_999_999)
    assert requests[-1] == requests[9_999_999]
    # the documented assignment, written out: sample i uses prompt i mod P and seed SEED + i
    assert list(requests[:5]) == [SampleRequest(prompts[i % 3], 7 + i) for i in range(5)]
    assert list(run.sample_requests(prompts, 20, 3)[1::4]) == [SampleRequest(prompts[i % 3], 3 + i)
                                                               for i in range(1, 20, 4)]
    assert make_requests(prompts, 4, 1) == [SampleRequest(prompts[i % 3], 1 + i) for i in range(4)]
    with pytest.raises(IndexError):
        requests[10_000_000]
    with pytest.raises(InputError):
        run.sample_requests([], 3, 0)


# ------------------------------------------------------------------------------------------------ --tasks
@pytest.mark.parametrize("value", [",", "", " , ,"])
def test_empty_task_list_is_an_error(tmp_path, value):
    result = cli.invoke(app, ["score", "demo", "--tasks", value, "--store", str(tmp_path / "s")])
    _clear_error(result, "--tasks")
    with pytest.raises(InputError, match="--tasks"):
        run.resolve_tasks(run.resolve_model("demo"), run.ScoreOptions(tasks=[]))


# ------------------------------------------------------------------------------------------------ store and home
def test_store_that_is_a_file_is_a_clear_error(tmp_path):
    store = tmp_path / "store-file"
    store.write_text("not a folder")
    result = cli.invoke(app, ["score", "demo", "--tasks", "fid", "--store", str(store)])
    _clear_error(result, str(store), "not a folder")
    assert store.read_text() == "not a folder"
    for args in (["runs", "list"], ["leaderboard", "build", "--out", str(tmp_path / "site")]):
        _clear_error(cli.invoke(app, [*args, "--store", str(store)]), str(store))
    # a file above the store is the same error
    _clear_error(cli.invoke(app, ["runs", "list", "--store", str(store / "sub")]), str(store))


def test_evalsuite_store_env_that_is_a_file(tmp_path, monkeypatch):
    store = tmp_path / "store-file"
    store.write_text("x")
    monkeypatch.setenv("EVALSUITE_STORE", str(store))
    _clear_error(cli.invoke(app, ["runs", "list"]), "EVALSUITE_STORE", str(store))


def test_evalsuite_home_that_is_a_file_is_a_clear_error(tmp_path, monkeypatch):
    home = tmp_path / "home-file"
    home.write_text("x")
    monkeypatch.setenv("EVALSUITE_HOME", str(home))
    with pytest.raises(InputError, match="EVALSUITE_HOME"):
        config.home()
    result = cli.invoke(app, ["score", "demo", "--tasks", "fid", "--store", str(tmp_path / "store")])
    _clear_error(result, "EVALSUITE_HOME", str(home))
    _clear_error(cli.invoke(app, ["weights", "list"]), "EVALSUITE_HOME")
    assert home.read_text() == "x"


# ------------------------------------------------------------------------------------------------ --prompts
@pytest.mark.parametrize("content,words", [
    (b"a cat\n\xff\xfe a dog\n", ["UTF-8"]),
    (b"\n  \n", ["no prompts"]),
])
def test_bad_prompts_file_is_refused_before_any_work(tmp_path, content, words):
    path = tmp_path / "prompts.txt"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        run.read_prompts(path)
    assert str(path) in info.value.message
    result = _score(tmp_path, "--prompts", str(path), "--num-samples", "2")
    _clear_error(result, str(path), *words)
    assert _nothing_stored(tmp_path)


@pytest.mark.parametrize("line", ['{"prompt": 5}', '[1, 2]', '{"prompt": ' * 5000 + '"x"' + "}" * 5000])
def test_bad_jsonl_prompts(tmp_path, line):
    path = tmp_path / "prompts.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        run.read_prompts(path)
    assert str(path) in info.value.message


def test_prompts_files_still_read(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("a cat\n\nun chat été\n", encoding="utf-8")
    assert run.read_prompts(txt) == ["a cat", "un chat été"]
