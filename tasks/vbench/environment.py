"""VBench's own Python environment: its interpreter (`find_python`), the probe that checks it (`check_env`), and
`evalsuite vbench setup` (`setup_env`, `setup_command`: a separate virtualenv with vbench==0.1.5 and its pins).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

from evalsuite import config
from evalsuite.errors import InputError, TaskSkipped

VBENCH_VERSION = "0.1.5"
VBENCH_PINS = ("transformers==4.33.2", "numpy<2", "timm<=1.0.12")

SETUP_FIX = ("create it with `evalsuite vbench setup` (a separate virtualenv with vbench==0.1.5), or pass "
             "--vbench-python PATH to an environment's interpreter")
ENV_MARKER = "EVALSUITE_VBENCH_ENV "
_PROBE = r"""
import importlib.util, json, os, sys
import vbench
info = {"python": sys.version.split()[0], "vbench_dir": os.path.dirname(os.path.abspath(vbench.__file__))}
try:
    import importlib.metadata as _md
    info["vbench"] = _md.version("vbench")
except Exception:
    info["vbench"] = getattr(vbench, "__version__", None)
_full = os.path.join(info["vbench_dir"], "VBench_full_info.json")
info["full_info"] = _full if os.path.isfile(_full) else None
try:
    import torch
    info["torch"] = torch.__version__
    info["cuda"] = bool(torch.cuda.is_available())
except Exception:
    info["torch"], info["cuda"] = None, False
info["detectron2"] = importlib.util.find_spec("detectron2") is not None
print("EVALSUITE_VBENCH_ENV " + json.dumps(info))
"""
# the outer run's torchrun variables must not leak into VBench's own torchrun
_DIST_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "ROLE_WORLD_SIZE",
              "GROUP_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT",
              "TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_USE_AGENT_STORE", "PYTHONPATH", "PYTHONHOME")


def default_env_dir() -> Path:
    return config.home() / "vbench-env"


def _env_python(env_dir: Path) -> Path:
    return env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def find_python(given: str | Path | None) -> Path:
    """The VBench environment's interpreter: `given` (an interpreter, or a virtualenv folder; the task's `python`
    option, --vbench-python), else `$EVALSUITE_HOME/vbench-env/bin/python`. A missing default environment skips the
    task with the fix; a given path that does not exist is an input error. The path is not resolved (a venv's
    python is a symlink)."""
    if given:
        path = Path(given).expanduser().absolute()
        if path.is_dir():
            path = _env_python(path)
        if not path.is_file():
            raise InputError(f"--vbench-python {given}: no interpreter at {path}",
                             "pass the python of a VBench environment (e.g. /path/to/vbench-env/bin/python), or "
                             "create one with `evalsuite vbench setup`")
        return path
    path = _env_python(default_env_dir()).absolute()
    if not path.is_file():
        raise TaskSkipped(f"no VBench environment at {default_env_dir()} (VBench needs its own: it pins "
                          f"{', '.join(VBENCH_PINS)})", SETUP_FIX)
    return path


def _subprocess_env(python: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DIST_VARS}
    env["PATH"] = str(python.parent) + os.pathsep + env.get("PATH", "")  # anything VBench spawns uses its python
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _tail(text: str, lines: int = 30, chars: int = 4000) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])[-chars:]


def check_env(python: str | Path, timeout: float = 300) -> dict[str, Any]:
    """Import vbench in the environment and report {"python", "vbench" (version), "vbench_dir", "full_info" (path
    of its VBench_full_info.json or None), "torch", "cuda", "detectron2"}. vbench 0.1.5 has no `__version__`, so
    the version comes from the installed distribution's metadata. An unusable environment skips the task."""
    python = Path(python)
    if not python.is_file():
        raise TaskSkipped(f"VBench interpreter {python} does not exist", SETUP_FIX)
    try:
        proc = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True, timeout=timeout,
                              env=_subprocess_env(python), check=False)
    except subprocess.TimeoutExpired:
        raise TaskSkipped(f"importing vbench with {python} took longer than {timeout:.0f} s",
                          "check the environment (`PYTHON -c 'import vbench'`), or recreate it with "
                          "`evalsuite vbench setup --force`") from None
    except OSError as exc:
        raise TaskSkipped(f"cannot run VBench interpreter {python}: {exc}", SETUP_FIX) from exc
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(ENV_MARKER)]
    if proc.returncode != 0 or not lines:
        raise TaskSkipped(f"vbench cannot be imported with {python} (exit {proc.returncode}):\n"
                          f"{_tail(proc.stderr or proc.stdout, 12)}",
                          "recreate the environment with `evalsuite vbench setup --force`, or pass --vbench-python "
                          "PATH to a working one")
    info = json.loads(lines[-1][len(ENV_MARKER):])
    info["executable"] = str(python)
    return info


def setup_commands(path: str | Path, python: str = "python3", torch_index_url: str | None = None) -> list[list[str]]:
    """The commands `setup_env` runs: a virtualenv, torch, then vbench with its pins."""
    env_python = str(_env_python(Path(path)))
    pip = [env_python, "-m", "pip", "install"]
    torch_cmd = pip + ["torch", "torchvision"] + (["--index-url", torch_index_url] if torch_index_url else [])
    return [[python, "-m", "venv", str(path)],
            pip + ["--upgrade", "pip"],
            torch_cmd,
            pip + [f"vbench=={VBENCH_VERSION}", *VBENCH_PINS]]


SETUP_NOTES = f"""\
VBench {VBENCH_VERSION} notes:
  * object_class, multiple_objects, color and spatial_relationship need detectron2, which is not on PyPI: install
    it into this environment from source, e.g.
      {{python}} -m pip install 'git+https://github.com/facebookresearch/detectron2.git'
    (see https://detectron2.readthedocs.io/en/latest/tutorials/install.html); without it those dimensions are
    not run and VBench's Semantic and Total scores are not computed.
  * VBench downloads its model weights at run time into ~/.cache/vbench ($VBENCH_CACHE_DIR), so the first run
    needs network access.
  * vbench.launch.evaluate runs on CUDA only."""


def _python_version(python: str) -> tuple[int, int]:
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d %d' % sys.version_info[:2])"], capture_output=True,
                             text=True, timeout=60, check=False)
        major, minor = (int(x) for x in out.stdout.split())
        return major, minor
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"cannot run {python} to create the VBench environment: {exc}",
                         "pass --python with a Python 3.9-3.11 interpreter") from None


def setup_env(path: str | Path, python: str = "python3", *, torch_index_url: str | None = None,
              echo: Callable[[str], None] = print) -> Path:
    """Create a virtualenv at `path` and pip-install torch and `vbench==0.1.5` with its pins (transformers==4.33.2,
    numpy<2, timm<=1.0.12). Needs network access; takes minutes. detectron2 is not installed (see SETUP_NOTES).
    Python 3.12+ is refused: transformers 4.33.2 needs tokenizers<0.14, which has no wheels for it."""
    path = Path(path).expanduser().absolute()
    if (3, 12) <= _python_version(python):
        raise InputError(f"{python} is Python 3.12 or newer; VBench's pin transformers==4.33.2 needs tokenizers<0.14, "
                         "which has no wheels for it", "pass --python python3.10 (or 3.9-3.11)")
    if path.exists() and any(path.iterdir()):
        raise InputError(f"{path} already exists", "remove it, or pass --force to recreate it")
    for cmd in setup_commands(path, python, torch_index_url):
        echo("$ " + " ".join(cmd))
        rc = subprocess.run(cmd, check=False).returncode
        if rc != 0:
            raise InputError(f"VBench environment setup failed (exit {rc}) at: {' '.join(cmd)}",
                             "read pip's output above; the index must be reachable (torch wheels for your CUDA: "
                             "--torch-index-url https://download.pytorch.org/whl/cu121)")
    return _env_python(path)


def setup_command(path: str | Path | None = None, python: str = "python3", force: bool = False,
                  torch_index_url: str | None = None, echo: Callable[[str], None] = print) -> Path:
    """`evalsuite vbench setup`: create (or with `force`, recreate) the VBench environment, default
    `$EVALSUITE_HOME/vbench-env`, check it, print the notes (detectron2, weights), and return its interpreter.
    An environment that already works is left alone."""
    target = Path(path).expanduser().absolute() if path else default_env_dir().absolute()
    env_python = _env_python(target)
    if target.exists() and not force:
        if env_python.is_file():
            try:
                info = check_env(env_python)
            except TaskSkipped as skip:
                raise InputError(f"{target} exists but does not work: {skip.reason}",
                                 "recreate it with `evalsuite vbench setup --force`") from None
            echo(f"VBench {info.get('vbench')} environment already set up: {env_python}")
            return env_python
        if any(target.iterdir()):
            raise InputError(f"{target} exists and is not a virtualenv", "pass another path, or --force")
    if target.exists() and force:
        if not (target / "pyvenv.cfg").is_file() and any(target.iterdir()):
            raise InputError(f"{target} is not a virtualenv (no pyvenv.cfg); refusing to delete it",
                             "remove it yourself, or pass another path")
        shutil.rmtree(target)
    env_python = setup_env(target, python, torch_index_url=torch_index_url, echo=echo)
    info = check_env(env_python)
    echo(f"VBench {info.get('vbench')} environment ready: {env_python} (torch {info.get('torch')}, "
         f"CUDA {'available' if info.get('cuda') else 'NOT available'}, detectron2 "
         f"{'installed' if info.get('detectron2') else 'not installed'})")
    echo(SETUP_NOTES.format(python=env_python))
    echo(f"Use it: evalsuite score MODEL --tasks vbench (or --vbench-python {env_python})")
    return env_python
