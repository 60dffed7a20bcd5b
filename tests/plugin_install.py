"""Build and install a tiny third-party plugin package, as a user would (`pip install`, offline, no dependencies), for
tests that check what its entry points register (tests/test_task_contract.py, tests/test_plugins.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def install_plugin(tmp_path: Path, package: str, modules: dict[str, str],
                   entry_points: dict[str, dict[str, str]]) -> dict[str, str]:
    """Write `package` (its `modules`: name -> source) with `entry_points` (group -> {name: value}) under tmp_path,
    install it with pip into a `--target` folder, and return the environment for a subprocess that sees it (the
    folder on PYTHONPATH, its own EVALSUITE_HOME, offline)."""
    source = tmp_path / "plugin"
    (source / package).mkdir(parents=True)
    (source / package / "__init__.py").write_text("")
    for name, text in modules.items():
        (source / package / f"{name}.py").write_text(textwrap.dedent(text))
    groups = "".join(f'\n[project.entry-points."{group}"]\n' + "".join(f'{name} = "{value}"\n'
                                                                       for name, value in eps.items())
                     for group, eps in entry_points.items())
    (source / "pyproject.toml").write_text(textwrap.dedent(f'''
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{package.replace("_", "-")}"
        version = "0.0.1"

        [tool.setuptools]
        packages = ["{package}"]
        ''') + groups)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(site), str(source)], check=True, capture_output=True, timeout=600, cwd=tmp_path)
    return {**os.environ, "PYTHONPATH": str(site), "EVALSUITE_HOME": str(tmp_path / "home"), "EVALSUITE_OFFLINE": "1"}
