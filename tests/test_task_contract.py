"""The task contract as the runner enforces it: returned metrics are the declared ones, and a third-party package
adds a task through the `evalsuite.tasks` entry-point group (installed like any plugin, then scored)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import evalsuite.task as registry
from evalsuite.errors import EvalsuiteError
from evalsuite.runner import ScoreOptions, score
from evalsuite.tasks.base import MetricInfo, Task, TaskOutput


class _Undeclared(Task):
    name = "contract-undeclared"
    version = "1"
    family = "image-quality"
    sample_kind = "image"
    description = "returns a metric it does not declare"
    metrics = {"declared": MetricInfo("higher", "a declared number", primary=True)}

    def run(self, ctx) -> TaskOutput:
        return TaskOutput(metrics={"declared": 1.0, "surprise": 2.0})


def test_undeclared_metric_is_an_error_and_nothing_is_stored(tmp_path, monkeypatch):
    registry.TASKS.load()
    monkeypatch.setitem(registry.TASKS._entries, _Undeclared.name, _Undeclared)
    with pytest.raises(EvalsuiteError, match="undeclared metrics surprise"):
        score("demo", ScoreOptions(tasks=[_Undeclared.name], num_samples=2, store=tmp_path / "s", progress=False))
    assert not list((tmp_path / "s").glob("runs/*/*.json"))


PLUGIN_TASK = '''
from evalsuite.tasks import register
from evalsuite.tasks.base import MetricInfo, Task, TaskOutput


@register
class SampleCount(Task):
    """Counts the run's sample files: a plugin task in one file."""

    name = "plugin-sample-count"
    version = "1"
    family = "image-quality"
    sample_kind = "image"
    description = "number of sample images (a third-party plugin task)"
    metrics = {"images": MetricInfo("higher", "sample images scored", primary=True)}

    def run(self, ctx) -> TaskOutput:
        files = ctx.sample_files()
        return TaskOutput(metrics={"images": float(len(files))}, num_samples=len(files))
'''


def test_plugin_package_adds_a_task_through_its_entry_point(tmp_path):
    source = tmp_path / "plugin"
    (source / "evalsuite_plugin_demo").mkdir(parents=True)
    (source / "evalsuite_plugin_demo" / "__init__.py").write_text("")
    (source / "evalsuite_plugin_demo" / "tasks.py").write_text(textwrap.dedent(PLUGIN_TASK))
    (source / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "evalsuite-plugin-demo"
        version = "0.0.1"

        [project.entry-points."evalsuite.tasks"]
        sample-count = "evalsuite_plugin_demo.tasks"

        [tool.setuptools]
        packages = ["evalsuite_plugin_demo"]
        '''))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(site), str(source)], check=True, capture_output=True, timeout=600, cwd=tmp_path)
    env = {**os.environ, "PYTHONPATH": str(site), "EVALSUITE_HOME": str(tmp_path / "home"),
           "EVALSUITE_OFFLINE": "1"}
    listed = subprocess.run([sys.executable, "-m", "evalsuite", "tasks", "--json"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "plugin-sample-count" in {row["task"] for row in json.loads(listed.stdout)}
    scored = subprocess.run([sys.executable, "-m", "evalsuite", "score", "demo", "--tasks", "plugin-sample-count",
                             "--num-samples", "3", "--workers", "0", "--store", str(tmp_path / "store"), "--json"],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert scored.returncode == 0, scored.stderr[-2000:]
    (doc,) = [json.loads(p.read_text()) for p in (tmp_path / "store" / "runs").glob("*/plugin-sample-count.json")]
    assert doc["status"] == "ok" and doc["metrics"] == {"images": 3.0}
