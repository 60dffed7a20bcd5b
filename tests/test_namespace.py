"""One import name: evalsuite's folders install as `evalsuite.tasks`, `evalsuite.leaderboard`, `evalsuite.device` and
`evalsuite.reference_stats`, so a user's own `tasks.py`, `tasks/`, `leaderboard.py` or `device_runner/` never
shadows them (issue 15: `python -m evalsuite score` from such a folder crashed with "module 'tasks' has no
attribute 'get'")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def user_project(tmp_path):
    """A project folder holding every name evalsuite used to install top-level; importing any of them fails."""
    project = tmp_path / "project"
    (project / "tasks").mkdir(parents=True)
    (project / "device_runner").mkdir()
    (project / "tasks" / "__init__.py").write_text("raise SystemExit('the user tasks/ package was imported')\n")
    (project / "tasks.py").write_text("raise SystemExit('the user tasks.py was imported')\n")
    (project / "leaderboard.py").write_text("raise SystemExit('the user leaderboard.py was imported')\n")
    (project / "device_runner" / "__init__.py").write_text("raise SystemExit('the user device_runner was imported')\n")
    return project


def _env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # what a user's shell has: no repo on the path
    env.update(EVALSUITE_HOME=str(tmp_path / "home"), EVALSUITE_OFFLINE="1", EVALSUITE_STORE=str(tmp_path / "store"))
    return env


def test_tasks_command_from_a_folder_that_shadows_every_old_name(user_project, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "evalsuite", "tasks", "--json"], cwd=user_project,
                          env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {row["task"] for row in json.loads(proc.stdout)} >= {"fid", "geneval", "fvd", "ae-recon"}


def test_two_rank_torchrun_score_from_that_folder(user_project, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    assert torchrun, "torchrun ships with torch"
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "evalsuite", "score", "demo",
                           "--tasks", "spectral", "--autoencoder", "demo-ae", "--num-samples", "4", "--json"],
                          cwd=user_project, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    assert "user" not in proc.stdout + proc.stderr
    assert list((tmp_path / "store" / "runs").glob("*/spectral.json"))


def test_the_wheel_installs_only_evalsuite(tmp_path):
    """`pip install .` puts only `evalsuite/` and its dist-info into site-packages: the wheel holds nothing else,
    and the shipped data (prompts, templates, reference manifest) is inside the package."""
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    for name in ("evalsuite", "tasks", "leaderboard", "device_runner", "reference_stats"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=600,
                   cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("evalsuite-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"evalsuite", next(t for t in top if t.endswith(".dist-info"))}, top
    for shipped in ("evalsuite/tasks/data/image_prompts.txt", "evalsuite/leaderboard/templates/index.html.j2",
                    "evalsuite/leaderboard/published.yaml", "evalsuite/reference_stats/manifest.json",
                    "evalsuite/device/ios/PROTOCOL.md", "evalsuite/tasks/geneval/prompts.py",
                    "evalsuite/tasks/dpg/scoring.py"):
        assert shipped in names, shipped
