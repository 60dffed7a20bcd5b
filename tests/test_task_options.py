"""Options that belong to tasks: declared once as a typed dataclass on the task, set with `-o TASK.NAME=VALUE` or
`-o NAME=VALUE` (every task of the run declaring NAME), the old flags kept as aliases, listed by `evalsuite tasks
--options`, recorded in each result; `--strict` applied once by the runner to whatever a task skipped."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from typer.testing import CliRunner

import evalsuite.task as registry
from evalsuite.cli import app
from evalsuite.errors import InputError
from evalsuite.runner import ScoreOptions, _options_from_json, score
from evalsuite.task import MetricInfo, Task, TaskOutput
from evalsuite.task_options import convert, parse_assignments, resolve

runner = CliRunner()


class _Echo(Task):
    """Reports its options as metrics and skips what it is told to: no samples, no weights, instant."""

    name = "options-echo"
    version = "1"
    family = "image-quality"
    sample_kind = "image"
    description = "echoes its options"
    metrics = {"level": MetricInfo("higher", "the level option", primary=True),
               "scale": MetricInfo("higher", "the scale option")}

    @dataclass(frozen=True)
    class Options:
        level: int = field(default=1, metadata={"help": "a whole number"})
        scale: float = 0.5
        skips: int = 0  # inputs reported as skipped
        resolution: int = 256  # shares its name with the autoencoder tasks' option
        label: str | None = None

    def run(self, ctx) -> TaskOutput:
        o = self.options
        return TaskOutput(metrics={"level": float(o.level), "scale": o.scale}, num_samples=1,
                          skipped_samples=[{"file": f"in{i}.png", "reason": "unreadable"} for i in range(o.skips)])


class _Other(_Echo):
    name = "options-echo-2"


@pytest.fixture
def echo_tasks(monkeypatch):
    registry.TASKS.load()
    monkeypatch.setitem(registry.TASKS._entries, _Echo.name, _Echo)
    monkeypatch.setitem(registry.TASKS._entries, _Other.name, _Other)


def _run(tmp_path, settings=None, tasks=(_Echo.name,), **kw):
    opts = ScoreOptions(tasks=list(tasks), num_samples=2, store=tmp_path / "s", progress=False,
                        task_options=settings or {}, **kw)
    return {d["task"]: d for d in score("demo", opts).results}


# ------------------------------------------------------------------------------------------------ parsing, types
def test_assignments_parse_into_task_and_every_task_settings():
    assert parse_assignments(["precision-recall.k=5", "frames=8", "geneval.detector=a=b"]) == {
        "precision-recall": {"k": "5"}, "*": {"frames": "8"}, "geneval": {"detector": "a=b"}}
    with pytest.raises(InputError, match="is not NAME=VALUE"):
        parse_assignments(["frames"])
    with pytest.raises(InputError, match="given twice"):
        parse_assignments(["kid.subsets=5", "kid.subsets=6"])


@pytest.mark.parametrize("value, kind, expected", [
    ("3", int, 3), ("0.25", float, 0.25), (2, float, 2.0), ("yes", bool, True), ("off", bool, False),
    ("none", int | None, None), (None, str | None, None), ("x", str | None, "x"), (True, bool, True)])
def test_values_convert_to_the_declared_type(value, kind, expected):
    got = convert(value, kind, "t.o")
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("value, kind", [("three", int), ("maybe", bool), (True, int), (1.5, int), (3, str)])
def test_a_value_of_the_wrong_type_is_an_error_naming_the_option(value, kind):
    with pytest.raises(InputError, match=r"option t\.o is .* not of type"):
        convert(value, kind, "t.o")


def test_named_settings_override_every_task_settings_which_override_defaults():
    opts = resolve(_Echo, {"*": {"level": "2", "scale": "0.75"}, _Echo.name: {"level": 7}, "other": {"level": 9}})
    assert (opts.level, opts.scale, opts.skips) == (7, 0.75, 0)
    assert resolve(_Echo, {}) == _Echo.Options()


# ------------------------------------------------------------------------------------------------ runs
def test_options_reach_the_task_and_are_recorded_in_its_result(tmp_path, echo_tasks):
    docs = _run(tmp_path, {"*": {"scale": "2"}, _Echo.name: {"level": "5"}}, tasks=(_Echo.name, _Other.name))
    assert docs[_Echo.name]["metrics"] == {"level": 5.0, "scale": 2.0}
    assert docs[_Other.name]["metrics"] == {"level": 1.0, "scale": 2.0}  # the named setting was not for it
    assert docs[_Echo.name]["provenance"]["task_options"] == {"level": 5, "scale": 2.0, "skips": 0,
                                                              "resolution": 256, "label": None}
    assert docs[_Echo.name]["provenance"]["options"]["task_options"] == {"*": {"scale": "2"},
                                                                         _Echo.name: {"level": "5"}}


@pytest.mark.parametrize("settings, message", [
    ({"options-echo": {"levle": "1"}}, "task options-echo has no option levle"),
    ({"nosuchtask": {"level": "1"}}, "there is no task named 'nosuchtask'"),
    ({"*": {"nosuchoption": "1"}}, "no task has an option named nosuchoption"),
    ({"options-echo": {"level": "high"}}, "option options-echo.level is 'high', which is not of type int"),
])
def test_bad_settings_are_refused_before_any_work(tmp_path, echo_tasks, settings, message):
    with pytest.raises(InputError, match=message):
        _run(tmp_path, settings)
    assert not (tmp_path / "s" / "runs").exists() or not list((tmp_path / "s" / "runs").glob("*/*.json"))


def test_strict_is_applied_once_by_the_runner_to_what_any_task_skipped(tmp_path, echo_tasks):
    doc = _run(tmp_path, {_Echo.name: {"skips": "2"}})[_Echo.name]
    assert doc["status"] == "ok" and doc["skipped_samples"]["count"] == 2
    with pytest.raises(InputError, match=r"2 input\(s\) of task options-echo could not be used, e\.g\. in0\.png"):
        _run(tmp_path / "strict", {_Echo.name: {"skips": "2"}}, strict=True)
    assert _run(tmp_path / "clean", strict=True)[_Echo.name]["status"] == "ok"


def test_legacy_names_map_to_task_settings_and_old_manifests_resume():
    opts = ScoreOptions.with_legacy(kid_subsets=10, detector="x", geneval_missing_as_failure=True, seed=3)
    assert opts.seed == 3
    assert opts.task_options == {"kid": {"subsets": 10}, "*": {"detector": "x"},
                                 "geneval": {"missing_as_failure": True}}
    # a run manifest written before options belonged to tasks holds them flat
    old = {"seed": 1, "num_samples": 4, "resolution": 64, "frames": 4, "fvd_max_real": 2048, "biased_cov": False,
           "store": "/elsewhere", "progress": True, "retired_option": 1}
    back = _options_from_json(old, "/here", progress=False)
    assert (back.seed, str(back.store)) == (1, "/here")
    assert back.task_options == {"*": {"resolution": 64, "frames": 4, "biased_cov": False},
                                 "fvd": {"max_real": 2048}}
    with pytest.raises(InputError, match="unknown option"):
        ScoreOptions.with_legacy(no_such=1)


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_lists_every_task_option_with_its_alias():
    result = runner.invoke(app, ["tasks", "--options", "--json"])
    assert result.exit_code == 0, result.output
    rows = {(r["task"], r["option"]): r for r in json.loads(result.output)}
    assert rows[("geneval", "detector")]["default"] == "torchvision-maskrcnn"
    assert rows[("geneval", "detector")]["aliases"] == ["--detector"]
    assert rows[("precision-recall", "k")]["aliases"] == ["--pr-k"]
    assert rows[("kid", "subsets")] | {"help": ""} == {"task": "kid", "option": "subsets", "type": "int",
                                                        "default": 100, "help": "", "aliases": []}
    assert rows[("fvd", "max_real")]["aliases"] == ["--fvd-max-real"]
    # every option of every registered task is listed; every old flag is the alias of at least one option
    from evalsuite.task_options import LEGACY_ALIASES, legacy_flag

    aliased = {a for r in rows.values() for a in r["aliases"]}
    assert {legacy_flag(k) for k in LEGACY_ALIASES} - {None} <= aliased


def test_cli_o_and_the_old_flag_give_the_same_settings(tmp_path, echo_tasks, monkeypatch):
    seen = []
    import evalsuite.api as api

    real = api.score

    def spy(*args, **kwargs):
        seen.append(kwargs["options"])
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "score", spy)
    base = ["score", "demo", "--tasks", _Echo.name, "--num-samples", "2", "--store", str(tmp_path / "s"), "--json"]
    new = runner.invoke(app, base + ["-o", "resolution=64", "-o", "options-echo.level=3"])
    assert new.exit_code == 0, new.output
    old = runner.invoke(app, base + ["--resolution", "64", "--option", "options-echo.level=3"])
    assert old.exit_code == 0, old.output
    assert seen == [{"resolution": "64", "options-echo.level": "3"}, {"resolution": 64, "options-echo.level": "3"}]
    rows = json.loads(new.output)["results"]
    assert {r["metric"]: r["value"] for r in rows} == {"level": 3.0, "scale": 0.5}
    # a flag left at its default sets nothing: the task's own default applies
    runner.invoke(app, base)
    assert seen[-1] == {}
    bad = runner.invoke(app, base + ["-o", "options-echo.level=high"])
    assert bad.exit_code != 0 and "options-echo.level is 'high'" in bad.output and "Traceback" not in bad.output


@pytest.mark.parametrize("module", ["evalsuite.task", "evalsuite.task_options", "evalsuite.registry"])
def test_doctests_of_the_task_contract_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_a_run_of_a_model_object_cannot_be_resumed_and_says_so(tmp_path, echo_tasks, monkeypatch):
    import evalsuite
    from tests.tiny_models import noise_generator

    def interrupted(self, ctx):
        raise KeyboardInterrupt

    monkeypatch.setattr(_Other, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        evalsuite.score(noise_generator(), tasks=[_Echo.name, _Other.name], store=tmp_path / "s", num_samples=2,
                        progress=False)
    (run_id,) = [p.name for p in (tmp_path / "s" / "runs").iterdir()]
    with pytest.raises(InputError, match="model object that lived in the memory") as info:
        evalsuite.resume(run_id, tmp_path / "s")
    assert "python:module:factory" in info.value.fix


@pytest.mark.parametrize("task, settings, message", [
    ("kid", {"subsets": "0"}, "kid.subsets=0"), ("precision-recall", {"k": "0"}, "precision-recall.k is 0"),
    ("fvd", {"max_real": "1"}, "fvd.max_real is 1"), ("spectral", {"dct_block": "1"}, "spectral.dct_block is 1"),
    ("geneval", {"images_per_prompt": "0"}, "images_per_prompt is 0")])
def test_out_of_range_task_options_are_refused_before_any_sample_is_made(tmp_path, task, settings, message):
    opts = ScoreOptions(tasks=[task], num_samples=2, store=tmp_path / "s", progress=False,
                        task_options={task: settings})
    with pytest.raises(InputError, match=message):
        score("demo", opts)
    assert not (tmp_path / "s" / "samples").exists()
