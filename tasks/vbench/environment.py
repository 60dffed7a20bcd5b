"""VBench's own Python environment: its interpreter (`find_python`), the probe that checks it (`check_env`), and
`evalsuite vbench setup` (`setup_env`, `setup_command`: a separate virtualenv with vbench==0.1.5 and its pins).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from evalsuite import config
from evalsuite.errors import InputError, TaskSkipped
from evalsuite.fsutil import atomic_write_bytes

VBENCH_VERSION = "0.1.5"
VBENCH_PINS = ("transformers==4.33.2", "numpy<2", "timm<=1.0.12")
# evalsuite's addition to VBench's pins: openai-clip 1.0.1 (VBench's `clip`, imported by background_consistency,
# aesthetic_quality, appearance_style, human_action, temporal_style and overall_consistency) does
# `from pkg_resources import packaging`, and setuptools 81+ has no pkg_resources (torch 2.14 asks for >=77.0.3)
ENV_EXTRA_PINS = ("setuptools<81",)

SETUP_FIX = ("create it with `evalsuite vbench setup` (a separate virtualenv with vbench==0.1.5), or pass "
             "--vbench-python PATH to an environment's interpreter")
ENV_MARKER = "EVALSUITE_VBENCH_ENV "
_PROBE = r"""
import importlib.util, json, os, sys
import vbench
info = {"python": sys.version.split()[0], "vbench_dir": os.path.dirname(os.path.abspath(vbench.__file__))}
import importlib.metadata as _md
try:
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
info["pkg_resources"] = importlib.util.find_spec("pkg_resources") is not None
try:  # where VBench 0.1.5 looks for its weights (vbench/utils.py CACHE_DIR), torch.hub's folder, clip.load's default
    import vbench.utils as _vu
    info["cache_dir"] = os.path.abspath(_vu.CACHE_DIR)
except Exception:
    info["cache_dir"] = None
try:
    info["torch_hub_dir"] = os.path.abspath(torch.hub.get_dir())
except Exception:
    info["torch_hub_dir"] = None
info["clip_dir"] = os.path.abspath(os.path.expanduser("~/.cache/clip"))
try:
    from huggingface_hub import constants as _hc
    info["hf_hub_cache"] = os.path.abspath(_hc.HF_HUB_CACHE)
except Exception:
    info["hf_hub_cache"] = None
info["packages"] = {}
for _name in ("vbench", "torch", "torchvision", "transformers", "tokenizers", "numpy", "timm", "openai-clip", "pyiqa",
              "decord", "opencv-python", "detectron2"):
    try:
        info["packages"][_name] = _md.version(_name)
    except Exception:
        info["packages"][_name] = None
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


def _torch_requirements(torch_spec: str | None) -> list[str]:
    return torch_spec.split() if torch_spec else ["torch", "torchvision"]


def setup_steps(path: str | Path, python: str = "python3", torch_index_url: str | None = None,
                torch_spec: str | None = None) -> list[tuple[str, list[str]]]:
    """(label, command) of each step `setup_env` runs: a virtualenv, pip, torch (`torch_spec`, e.g.
    "torch==2.14.1 torchvision==0.29.1"; default the newest "torch torchvision"), then vbench==0.1.5 with its pins
    (and the torch pins again, so that resolving vbench's requirements keeps that torch build), and
    `ENV_EXTRA_PINS` (setuptools<81: openai-clip 1.0.1 imports pkg_resources)."""
    env_python = str(_env_python(Path(path)))
    pip = [env_python, "-m", "pip", "install"]
    torch_reqs = _torch_requirements(torch_spec)
    torch_cmd = pip + torch_reqs + (["--index-url", torch_index_url] if torch_index_url else [])
    keep_torch = torch_reqs if torch_spec else []
    return [("creating the virtualenv", [python, "-m", "venv", str(path)]),
            ("upgrading pip", pip + ["--upgrade", "pip"]),
            ("installing " + " ".join(torch_reqs), torch_cmd),
            (f"installing vbench=={VBENCH_VERSION} with its pins ({', '.join(VBENCH_PINS)}) and "
             + ", ".join(ENV_EXTRA_PINS),
             pip + [f"vbench=={VBENCH_VERSION}", *VBENCH_PINS, *ENV_EXTRA_PINS, *keep_torch])]


def setup_commands(path: str | Path, python: str = "python3", torch_index_url: str | None = None,
                   torch_spec: str | None = None) -> list[list[str]]:
    """The commands `setup_env` runs (see `setup_steps`)."""
    return [cmd for _, cmd in setup_steps(path, python, torch_index_url, torch_spec)]


# pip's messages that name what failed (the package, and why), newest pip wording
_PIP_FAILURES = (
    (r"No matching distribution found for (\S+)", "no matching distribution on the index"),
    (r"Could not find a version that satisfies the requirement (\S+)", "no version satisfies the requirement"),
    (r"Failed building wheel for (\S+)", "its wheel failed to build"),
    (r"Failed to build (?:installable wheels for some pyproject\.toml based projects \()?([^)\n]+)",
     "failed to build"),
    (r"Cannot install (.+?) because these package versions have conflicting dependencies",
     "conflicting dependencies"),
    (r"ERROR: (Could not install packages due to an OSError.*)", "an OS error"),
    (r"(No space left on device)", "the disk is full"),
)


def pip_failure(lines: list[str]) -> str | None:
    """What pip's output says failed ("PACKAGE: why"), or None when it names nothing."""
    import re

    text = "\n".join(lines)
    found = []
    for pattern, why in _PIP_FAILURES:
        for match in re.finditer(pattern, text):
            found.append(f"{match.group(1).strip()}: {why}")
    return "; ".join(dict.fromkeys(found)) or None


def _step_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PIP_TARGET", "PIP_PREFIX")}
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _run_step(cmd: list[str], output: Callable[[str], None]) -> tuple[int, list[str]]:
    """Run one setup command, its output (pip's own) passed line by line to `output`; (exit status, last lines)."""
    import collections

    tail: collections.deque[str] = collections.deque(maxlen=400)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                text=True, errors="replace", env=_step_env())
    except OSError as exc:
        return 127, [f"cannot run {cmd[0]}: {exc}"]
    assert proc.stdout is not None
    for line in proc.stdout:
        tail.append(line.rstrip("\n"))
        output(line)
    return proc.wait(), list(tail)


def _print_raw(line: str) -> None:
    sys.stdout.write(line)
    sys.stdout.flush()


SETUP_RECORD = "evalsuite-setup.json"


SETUP_NOTES = f"""\
VBench {VBENCH_VERSION} notes:
  * object_class, multiple_objects, color and spatial_relationship need detectron2, which is not on PyPI: install
    it into this environment from source, e.g.
      {{python}} -m pip install 'git+https://github.com/facebookresearch/detectron2.git'
    (see https://detectron2.readthedocs.io/en/latest/tutorials/install.html); without it those dimensions are
    not run and VBench's Semantic and Total scores are not computed.
  * VBench loads its model weights from ~/.cache/vbench ($VBENCH_CACHE_DIR), ~/.cache/clip and torch.hub's folder,
    and downloads missing ones itself (network). evalsuite skips a dimension whose weights are missing, naming the
    file, unless -o vbench.download=true lets VBench fetch them; `evalsuite vbench check` lists them.
  * vbench.launch.evaluate runs on CUDA only; without CUDA evalsuite runs that script's main() on the CPU (VBench's
    own VBench(device="cpu") class, see the task's details)."""


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
              torch_spec: str | None = None, echo: Callable[[str], None] = print,
              output: Callable[[str], None] = _print_raw, skip_venv: bool = False) -> Path:
    """Create a virtualenv at `path` and pip-install torch (`torch_spec`, e.g. "torch==2.14.1 torchvision==0.29.1")
    and `vbench==0.1.5` with its pins (transformers==4.33.2, numpy<2, timm<=1.0.12), echoing "[k/n] step" before
    each step and pip's own output (`output`) during it. A failing step raises InputError naming the step and what
    pip says failed (the package, and why). With `skip_venv`, an existing virtualenv is completed (the pip steps
    are idempotent). Needs the package registries; takes minutes. detectron2 is not installed (see SETUP_NOTES).
    Python 3.12+ is refused: transformers 4.33.2 needs tokenizers<0.14, which has no wheels for it."""
    path = Path(path).expanduser().absolute()
    version = _python_version(python) if not skip_venv else (3, 0)
    if (3, 12) <= version:
        raise InputError(f"{python} is Python 3.12 or newer; VBench's pin transformers==4.33.2 needs tokenizers<0.14, "
                         "which has no wheels for it", "pass --python python3.11 (or 3.9-3.11)")
    if not skip_venv and path.exists() and any(path.iterdir()):
        raise InputError(f"{path} already exists", "remove it, or pass --force to recreate it")
    steps = setup_steps(path, python, torch_index_url, torch_spec)
    started = time.monotonic()
    for k, (label, cmd) in enumerate(steps, 1):
        if skip_venv and k == 1:
            echo(f"[1/{len(steps)}] {label}: {path} exists, kept")
            continue
        echo(f"[{k}/{len(steps)}] {label} ({time.monotonic() - started:.0f} s so far)")
        echo("$ " + " ".join(cmd))
        rc, tail = _run_step(cmd, output)
        if rc != 0:
            failed = pip_failure(tail) if k > 1 else None
            raise InputError(f"VBench environment setup failed at step {k}/{len(steps)} ({label}), exit {rc}"
                             + (f": {failed}" if failed else "") + f"\n$ {' '.join(cmd)}\n"
                             + _tail("\n".join(tail), 15),
                             "read pip's output above; the index must be reachable (torch wheels for your CUDA: "
                             "--torch-index-url https://download.pytorch.org/whl/cu121, or pin a build with --torch "
                             "'torch==X torchvision==Y'); rerun `evalsuite vbench setup`: finished steps are kept")
    echo(f"installed in {time.monotonic() - started:.0f} s")
    return _env_python(path)


def _torch_pin(torch_spec: str | None) -> str | None:
    """The version `torch==V` pins in a spec, or None."""
    for req in _torch_requirements(torch_spec):
        if req.startswith("torch=="):
            return req.split("==", 1)[1]
    return None


def _env_state(env_python: Path, torch_spec: str | None) -> tuple[dict[str, Any] | None, str]:
    """(check_env's report or None, why the environment needs (re)installing, or "" when it is ready)."""
    if not env_python.is_file():
        return None, "no interpreter"
    try:
        info = check_env(env_python)
    except TaskSkipped as skip:
        return None, f"vbench does not import ({skip.reason.splitlines()[0]})"
    if info.get("vbench") != VBENCH_VERSION:
        return info, f"vbench {info.get('vbench')} is installed, not {VBENCH_VERSION}"
    if info.get("pkg_resources") is False:
        return info, "pkg_resources is missing (setuptools 81+; openai-clip 1.0.1 imports it): setuptools<81 needed"
    pin = _torch_pin(torch_spec)
    if pin and (info.get("torch") or "").split("+")[0] != pin.split("+")[0]:
        return info, f"torch {info.get('torch')} is installed, not {pin}"
    return info, ""


def default_base_python() -> str:
    """The interpreter a new VBench environment is made with: the first of python3.11, python3.10, python3.9 on
    PATH (VBench's pins need Python <= 3.11), else python3."""
    for name in ("python3.11", "python3.10", "python3.9"):
        found = shutil.which(name)
        if found:
            return found
    return "python3"


def setup_command(path: str | Path | None = None, python: str | None = None, force: bool = False,
                  torch_index_url: str | None = None, echo: Callable[[str], None] = print,
                  torch_spec: str | None = None, output: Callable[[str], None] = _print_raw) -> Path:
    """`evalsuite vbench setup`: create the VBench environment (default `$EVALSUITE_HOME/vbench-env`), check it,
    record how it was made (`evalsuite-setup.json` in it), print the notes (detectron2, weights) and return its
    interpreter. Idempotent: an environment that works (vbench 0.1.5, and the torch `torch_spec` pins) is left
    alone; a virtualenv whose setup was interrupted, or that has another torch than pinned, is completed in place;
    `force` recreates it from nothing."""
    target = Path(path).expanduser().absolute() if path else default_env_dir().absolute()
    python = python or default_base_python()
    env_python = _env_python(target)
    resume = False
    if target.exists() and not force:
        info, why = _env_state(env_python, torch_spec)
        if info is not None and not why:
            echo(f"VBench {info.get('vbench')} environment already set up: {env_python} (torch {info.get('torch')}); "
                 "nothing to do")
            return env_python
        if (target / "pyvenv.cfg").is_file() and env_python.is_file():
            echo(f"{target} exists but is not ready ({why}): completing it")
            resume = True
        elif any(target.iterdir()):
            raise InputError(f"{target} exists and is not a virtualenv", "pass another path, or --force")
    if target.exists() and force:
        if not (target / "pyvenv.cfg").is_file() and any(target.iterdir()):
            raise InputError(f"{target} is not a virtualenv (no pyvenv.cfg); refusing to delete it",
                             "remove it yourself, or pass another path")
        shutil.rmtree(target)
    started = time.monotonic()
    env_python = setup_env(target, python, torch_index_url=torch_index_url, torch_spec=torch_spec, echo=echo,
                           output=output, skip_venv=resume)
    info, why = _env_state(env_python, torch_spec)
    if info is None or why:
        raise InputError(f"the VBench environment {target} was installed but is not usable: {why}",
                         "read pip's output above; recreate it with `evalsuite vbench setup --force`")
    record = {"vbench": info.get("vbench"), "torch_spec": torch_spec, "torch_index_url": torch_index_url,
              "python": info.get("python"), "packages": info.get("packages"), "resumed": resume,
              "seconds": round(time.monotonic() - started, 1),
              "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    atomic_write_bytes(target / SETUP_RECORD, (json.dumps(record, indent=1) + "\n").encode("utf-8"), root=target)
    echo(f"VBench {info.get('vbench')} environment ready: {env_python} (torch {info.get('torch')}, "
         f"CUDA {'available' if info.get('cuda') else 'NOT available: evalsuite runs VBench on the CPU'}, detectron2 "
         f"{'installed' if info.get('detectron2') else 'not installed'})")
    echo(SETUP_NOTES.format(python=env_python))
    echo(f"Which dimensions can run offline: evalsuite vbench check --vbench-python {env_python}")
    echo(f"Use it: evalsuite score MODEL --tasks vbench (or --vbench-python {env_python})")
    return env_python


def check_report(python: str | Path) -> dict[str, Any]:
    """`evalsuite vbench check`: `check_env`'s report, how the environment was made (its `evalsuite-setup.json`,
    when evalsuite made it), and per dimension whether it can run offline (`checkpoints.offline_report`: the
    files VBench expects and whether each is present)."""
    from evalsuite.tasks.vbench.checkpoints import offline_report

    info = check_env(python)
    record = Path(python).parent.parent / SETUP_RECORD
    if record.is_file():
        try:
            info["setup"] = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info["setup"] = None
    dims = offline_report(info)
    info["dimensions"] = dims
    info["offline"] = [d for d, row in dims.items() if row["offline"]]
    info["needs_weights"] = [d for d, row in dims.items() if not row["offline"]]
    return info
