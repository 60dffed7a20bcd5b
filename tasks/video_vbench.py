"""VBench (Vchitect/VBench, PyPI `vbench==0.1.5`) run in its own Python environment, scored as VBench does.

VBench pins transformers==4.33.2, numpy<2 and timm<=1.0.12, so it cannot share evalsuite's environment: it lives in
a separate virtual environment (default `$EVALSUITE_HOME/vbench-env`, made on request by `setup_env` /
`evalsuite vbench setup`, or any interpreter passed as `--vbench-python`). The task lays the videos out under
VBench's names (`{prompt}-{i}.mp4`), runs VBench in a subprocess, reads its `<name>_eval_results.json`
(`{dimension: [score, [{"video_path", "video_results", ...}, ...]]}`) and aggregates the way VBench's
`scripts/cal_final_score.py` does:

* each dimension is normalised `(x − Min) / (Max − Min)` with the published bounds (`NORMALIZE`, from VBench's
  `scripts/constant.py`; values are not clipped, as in VBench);
* Quality = Σ w_d·norm_d / Σ w_d over `QUALITY_LIST` (dynamic_degree has weight 0.5, every other dimension 1),
  Semantic likewise over `SEMANTIC_LIST`, Total = (4·Quality + 1·Semantic) / 5.

Unlike `cal_final_score.py`, which silently scores a missing dimension as 0, a group is only computed when all of
its dimensions are present; the missing ones are reported, and Total needs both groups.

How VBench is invoked (checked against the vbench 0.1.5 wheel): `vbench evaluate` (`vbench/cli/evaluate.py`) takes a
single `--dimension` string, launches `python -m torch.distributed.run ... vbench/launch/evaluate.py` through a
shell with whatever `python` is first on PATH, and drops that process's exit status. evalsuite therefore runs the
module the CLI launches, with the environment's own interpreter, so failures are seen::

    PYTHON -m torch.distributed.run --standalone --nproc_per_node 1 -m vbench.launch.evaluate \
        --videos_path DIR --dimension DIM [DIM ...] --output_path OUT --mode MODE \
        [--full_json_dir VBench_full_info.json] [--prompt_file PROMPTS.json]

(`--standalone` lets torchrun pick a free port; `vbench.launch.evaluate` itself hard-codes CUDA and NCCL.) The
results land in `OUT/results_<time>_eval_results.json`.

Modes. `vbench_standard` looks up, for every prompt of `VBench_full_info.json` tagged with a dimension, the files
`{prompt}-{i}.mp4` for i = 0..4 (only those five; more videos are not read). It is used when every prompt of the
run is a VBench prompt: pass `--prompts` with VBench's prompts, or score a generator without prompts of its own and
the prompt list is read from the environment's `VBench_full_info.json` (944 distinct prompts; the full suite is
5 videos each, `--num-samples 4720`; a run that does not cover every prompt of a dimension 5 times is marked
`-partial` in its protocol). Any other prompts run in `custom_input` mode, where VBench supports only
prompt-independent dimensions; evalsuite runs the seven Quality dimensions there (Semantic is then missing).
The object_class, multiple_objects, color and spatial_relationship dimensions need detectron2 in the environment;
without it they are not run (recorded in the details).

File names: VBench 1 does not sanitise prompts (none of its prompts contains '/'); a '/' (impossible in a file
name) becomes '_', and a name longer than the 255-byte limit keeps the first 180 characters of the prompt (VBench
2.0's rule). Such names occur only outside VBench's prompt list, i.e. in custom_input mode, where the true prompts
are passed to VBench with `--prompt_file`.

During a run the layout (hard links into the sample store, copies across file systems) and VBench's output live in
`<store>/vbench-work/`; both are removed afterwards. VBench's raw results are stored beside the result document
(`vbench.eval_results.json`); a failed run stores nothing and keeps only its log, in the system's temp folder.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

from evalsuite import config
from evalsuite.errors import EvalsuiteError, InputError, TaskSkipped
from evalsuite.fsutil import atomic_write, atomic_write_bytes, open_for_writing, refuse_symlink
from evalsuite.tasks import register
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput

VBENCH_VERSION = "0.1.5"
VBENCH_PINS = ("transformers==4.33.2", "numpy<2", "timm<=1.0.12")

# --------------------------------------------------------------------------- VBench's constants (scripts/constant.py)
DIMENSIONS = (
    "subject_consistency", "background_consistency", "temporal_flickering", "motion_smoothness", "dynamic_degree",
    "aesthetic_quality", "imaging_quality", "object_class", "multiple_objects", "human_action", "color",
    "spatial_relationship", "scene", "appearance_style", "temporal_style", "overall_consistency",
)
DIM_WEIGHT = {d: (0.5 if d == "dynamic_degree" else 1.0) for d in DIMENSIONS}
NORMALIZE: dict[str, tuple[float, float]] = {  # (Min, Max)
    "subject_consistency": (0.1462, 1.0),
    "background_consistency": (0.2615, 1.0),
    "temporal_flickering": (0.6293, 1.0),
    "motion_smoothness": (0.706, 0.9975),
    "dynamic_degree": (0.0, 1.0),
    "aesthetic_quality": (0.0, 1.0),
    "imaging_quality": (0.0, 1.0),
    "object_class": (0.0, 1.0),
    "multiple_objects": (0.0, 1.0),
    "human_action": (0.0, 1.0),
    "color": (0.0, 1.0),
    "spatial_relationship": (0.0, 1.0),
    "scene": (0.0, 0.8222),
    "appearance_style": (0.0009, 0.2855),
    "temporal_style": (0.0, 0.364),
    "overall_consistency": (0.0, 0.364),
}
QUALITY_LIST = ("subject_consistency", "background_consistency", "temporal_flickering", "motion_smoothness",
                "aesthetic_quality", "imaging_quality", "dynamic_degree")
SEMANTIC_LIST = ("object_class", "multiple_objects", "human_action", "color", "spatial_relationship", "scene",
                 "appearance_style", "temporal_style", "overall_consistency")
QUALITY_WEIGHT = 4.0
SEMANTIC_WEIGHT = 1.0

MODES = ("vbench_standard", "custom_input")
# vbench/__init__.py (check_dimension_requires_extra_info): refused in custom_input mode
CUSTOM_UNSUPPORTED = frozenset({"object_class", "multiple_objects", "scene", "appearance_style", "color",
                                "spatial_relationship"})
# what evalsuite runs in custom_input mode: the prompt-independent Quality dimensions
CUSTOM_DIMENSIONS = QUALITY_LIST
DETECTRON2_DIMENSIONS = frozenset({"object_class", "multiple_objects", "color", "spatial_relationship"})  # GRiT
VIDEOS_PER_PROMPT = 5  # vbench_standard reads {prompt}-0 .. {prompt}-4
LAYOUT_SUFFIXES = (".mp4", ".gif")  # what VBench's folder scan accepts as videos
NAME_MAX_BYTES = 255
LONG_PROMPT_CHARS = 180  # VBench 2.0's truncation of over-long prompts in file names

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


def _canonical(dim: str) -> str:
    """VBench's result keys use underscores; cal_final_score's use spaces: accept both."""
    return str(dim).strip().replace(" ", "_")


# --------------------------------------------------------------------------- scoring
def normalize(scores: dict[str, float]) -> dict[str, float]:
    """(x − Min) / (Max − Min) per known dimension (unweighted, not clipped); unknown dimensions are left out."""
    out = {}
    for dim, value in scores.items():
        key = _canonical(dim)
        if key in NORMALIZE:
            lo, hi = NORMALIZE[key]
            out[key] = (float(value) - lo) / (hi - lo)
    return out


def _group(normalized: dict[str, float], dims: Sequence[str]) -> float:
    return sum(DIM_WEIGHT[d] * normalized[d] for d in dims) / sum(DIM_WEIGHT[d] for d in dims)


def aggregate(scores: dict[str, float]) -> dict[str, Any]:
    """VBench's Quality, Semantic and Total scores (cal_final_score.py), each only when its dimensions are all
    present: {"quality", "semantic", "total" (float or None), "normalized": {dim: value}, "missing": {"quality":
    [...], "semantic": [...]}}."""
    normalized = normalize(scores)
    missing = {"quality": [d for d in QUALITY_LIST if d not in normalized],
               "semantic": [d for d in SEMANTIC_LIST if d not in normalized]}
    quality = None if missing["quality"] else _group(normalized, QUALITY_LIST)
    semantic = None if missing["semantic"] else _group(normalized, SEMANTIC_LIST)
    total = None
    if quality is not None and semantic is not None:
        total = (QUALITY_WEIGHT * quality + SEMANTIC_WEIGHT * semantic) / (QUALITY_WEIGHT + SEMANTIC_WEIGHT)
    return {"quality": quality, "semantic": semantic, "total": total, "normalized": normalized, "missing": missing}


# --------------------------------------------------------------------------- results files
class VBenchResults(NamedTuple):
    """`scores`: {dimension: VBench's score}; `videos`: {dimension: [{"video_path", "value"}, ...]} where value is
    the per-video result as a float (bools as 0/1), or None when it is not a number; `raw`: the merged JSON."""

    scores: dict[str, float]
    videos: dict[str, list[dict]]
    raw: dict[str, Any]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    return None


def _parse_one(path: Path) -> dict[str, tuple[float, list[dict], Any]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"VBench results {path} cannot be read as JSON: {exc}",
                         "pass the <name>_eval_results.json files VBench wrote") from exc
    fmt = 'VBench writes {"dimension": [score, [{"video_path": ..., "video_results": ...}, ...]], ...}'
    if not isinstance(doc, dict) or not doc:
        raise InputError(f"VBench results {path} are not a non-empty JSON object", fmt)
    out = {}
    for key, entry in doc.items():
        dim = _canonical(key)
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list)):
            raise InputError(f"VBench results {path}: '{key}' is not a [score, [per-video results]] pair", fmt)
        score = _number(entry[0])
        if score is None or isinstance(entry[0], bool):
            raise InputError(f"VBench results {path}: the score of '{key}' is {entry[0]!r}, not a finite number", fmt)
        videos = []
        for i, item in enumerate(entry[1]):
            if not isinstance(item, dict) or not isinstance(item.get("video_path"), str) or "video_results" not in item:
                raise InputError(f"VBench results {path}: per-video entry {i} of '{key}' lacks video_path or "
                                 "video_results", fmt)
            videos.append({"video_path": item["video_path"], "value": _number(item["video_results"])})
        out[dim] = (score, videos, entry)
    return out


def parse_results(path_or_dir: str | Path | Sequence[str | Path]) -> VBenchResults:
    """Read one `*_eval_results.json`, every such file in a folder, or a list of files, and merge them. A dimension
    found twice with different scores is an error (the files come from different runs)."""
    if isinstance(path_or_dir, (str, Path)):
        target = Path(path_or_dir)
        if target.is_dir():
            files = sorted(target.glob("*_eval_results.json"))
            if not files:
                raise InputError(f"no *_eval_results.json in {target}",
                                 "point at the output folder of a VBench run (its --output_path)")
        elif target.is_file():
            files = [target]
        else:
            raise InputError(f"VBench results {target} do not exist", "pass a *_eval_results.json file or its folder")
    else:
        files = [Path(p) for p in path_or_dir]
    scores: dict[str, float] = {}
    videos: dict[str, list[dict]] = {}
    raw: dict[str, Any] = {}
    origin: dict[str, Path] = {}
    for path in files:
        for dim, (score, per_video, entry) in _parse_one(path).items():
            if dim in scores:
                if scores[dim] != score:
                    raise InputError(f"dimension {dim} is in both {origin[dim]} ({scores[dim]}) and {path} ({score})",
                                     "merge results of one VBench run only")
                continue
            scores[dim], videos[dim], raw[dim], origin[dim] = score, per_video, entry, path
    return VBenchResults(scores, videos, raw)


# --------------------------------------------------------------------------- the VBench environment
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


# --------------------------------------------------------------------------- VBench's prompt list and file layout
def standard_info(full_info: str | Path) -> list[dict]:
    """The entries of VBench_full_info.json: {"prompt_en", "dimension": [...], "auxiliary_info"?}."""
    path = Path(full_info)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, list) or not all(isinstance(e, dict) and isinstance(e.get("prompt_en"), str)
                                                and isinstance(e.get("dimension"), list) for e in doc):
            raise ValueError("not a list of {prompt_en, dimension} objects")
    except (OSError, ValueError) as exc:
        raise InputError(f"VBench prompt list {path} cannot be read: {exc}",
                         "reinstall vbench in its environment") from exc
    return doc


def standard_prompts(full_info: str | Path) -> list[str]:
    """VBench's standard prompts (each once, in file order)."""
    return list(dict.fromkeys(e["prompt_en"] for e in standard_info(full_info)))


def prompt_dimensions(full_info: str | Path) -> dict[str, set[str]]:
    """prompt -> the VBench dimensions it is used for."""
    out: dict[str, set[str]] = {}
    for entry in standard_info(full_info):
        out.setdefault(entry["prompt_en"], set()).update(_canonical(d) for d in entry["dimension"])
    return out


def layout_name(prompt: str, index: int, suffix: str = ".mp4") -> str:
    """VBench's file name `{prompt}-{index}{suffix}`, with '/' (and NUL) made '_' and an over-long prompt cut to its
    first 180 characters (then further, to fit 255 bytes)."""
    stem = prompt.replace("/", "_").replace("\x00", "_")
    tail = f"-{int(index)}{suffix}"
    if len((stem + tail).encode("utf-8")) > NAME_MAX_BYTES:
        stem = stem[:LONG_PROMPT_CHARS]
        while stem and len((stem + tail).encode("utf-8")) > NAME_MAX_BYTES:
            stem = stem[:-1]
    return stem + tail


class LayoutEntry(NamedTuple):
    name: str  # file name in the layout folder
    path: Path  # the layout file
    prompt: str
    index: int
    source: Path  # the video it links to


def write_layout(videos: Sequence[tuple[str, int, str | Path]], out_dir: str | Path) -> list[LayoutEntry]:
    """Hard-link (or copy, across file systems) each (prompt, index, video) to `out_dir/{prompt}-{index}.mp4`.
    `out_dir` must be new or empty (VBench reads every file in it); all videos need one suffix, .mp4 or .gif
    (vbench_standard takes the suffix of the first file for all)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise InputError(f"VBench video folder {out} is not empty", "use a new folder: VBench reads every file in it")
    suffixes = {Path(src).suffix.lower() for _, _, src in videos}
    if len(suffixes) > 1 or not suffixes <= set(LAYOUT_SUFFIXES):
        raise InputError(f"VBench needs videos of one type, .mp4 or .gif; got {', '.join(sorted(suffixes))}",
                         "re-encode the videos to MP4")
    suffix = suffixes.pop() if suffixes else ".mp4"
    entries: list[LayoutEntry] = []
    seen: dict[str, tuple[str, int]] = {}
    for prompt, index, src in videos:
        src = Path(src)
        if not src.is_file():
            raise InputError(f"video {src} does not exist", "regenerate the samples")
        name = layout_name(prompt, index, suffix)
        if name in seen:
            raise InputError(f"videos ({seen[name][0]!r}, {seen[name][1]}) and ({prompt!r}, {index}) would both be "
                             f"named {name!r}", "give each prompt's videos distinct indices")
        seen[name] = (prompt, index)
        dst = out / name
        refuse_symlink(dst)
        try:
            os.link(src, dst)
        except OSError:
            atomic_write(dst, lambda tmp, src=src: shutil.copyfile(src, tmp))
        entries.append(LayoutEntry(name, dst, prompt, int(index), src))
    return entries


# --------------------------------------------------------------------------- running VBench
def vbench_command(python: str | Path, videos_dir: str | Path, dimensions: Sequence[str], output_dir: str | Path,
                   mode: str = "vbench_standard", *, full_info: str | Path | None = None,
                   prompt_file: str | Path | None = None, ngpus: int = 1) -> list[str]:
    """The command line run_vbench runs (see the module docstring)."""
    cmd = [str(python), "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(int(ngpus)),
           "-m", "vbench.launch.evaluate",
           "--videos_path", str(videos_dir), "--output_path", str(output_dir), "--mode", mode]
    if full_info:
        cmd += ["--full_json_dir", str(full_info)]
    if prompt_file:
        cmd += ["--prompt_file", str(prompt_file)]
    return cmd + ["--dimension", *dimensions]


def _check_request(dimensions: Sequence[str], mode: str) -> list[str]:
    if mode not in MODES:
        raise InputError(f"unknown VBench mode '{mode}'", f"use one of {', '.join(MODES)}")
    dims = [_canonical(d) for d in dimensions]
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown or not dims:
        raise InputError(f"unknown VBench dimension(s) {', '.join(unknown) or '(none given)'}",
                         f"known: {', '.join(DIMENSIONS)}")
    if mode == "custom_input" and set(dims) & CUSTOM_UNSUPPORTED:
        raise InputError(f"VBench cannot score {', '.join(sorted(set(dims) & CUSTOM_UNSUPPORTED))} in custom_input "
                         "mode (they need its standard prompts' metadata)",
                         "generate with VBench's standard prompts (vbench_standard mode) for these dimensions")
    return list(dict.fromkeys(dims))


def _kill_tree(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()


def run_vbench(python: str | Path, videos_dir: str | Path, dimensions: Sequence[str], output_dir: str | Path,
               mode: str = "vbench_standard", timeout: float | None = None, *, full_info: str | Path | None = None,
               prompts: dict[str, str] | None = None, ngpus: int = 1, echo: bool = False) -> VBenchResults:
    """Run VBench on a laid-out folder in its own environment and parse what it wrote. `prompts` ({file name:
    prompt}) is passed as `--prompt_file` (custom_input mode only). Output (stdout and stderr) goes to
    `output_dir/vbench.log` (and the terminal with `echo`); a failure, a timeout or missing results raise
    InputError with the log's tail."""
    return _run_vbench(python, videos_dir, dimensions, output_dir, mode, timeout, full_info=full_info,
                       prompts=prompts, ngpus=ngpus, echo=echo)[0]


def _run_vbench(python: str | Path, videos_dir: str | Path, dimensions: Sequence[str], output_dir: str | Path,
                mode: str, timeout: float | None, *, full_info: str | Path | None, prompts: dict[str, str] | None,
                ngpus: int, echo: bool) -> tuple[VBenchResults, list[str]]:
    python = Path(python)
    dims = _check_request(dimensions, mode)
    if prompts and mode != "custom_input":
        raise InputError("VBench takes a prompt file in custom_input mode only", "pass prompts=None")
    out = Path(output_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.glob("*_eval_results.json"))
    prompt_file = None
    if prompts:
        prompt_file = out / "evalsuite_prompts.json"
        atomic_write_bytes(prompt_file, json.dumps(prompts, ensure_ascii=False, indent=1).encode("utf-8"))
    cmd = vbench_command(python, Path(videos_dir).absolute(), dims, out, mode, full_info=full_info,
                         prompt_file=prompt_file, ngpus=ngpus)
    log_path = out / "vbench.log"
    started = time.monotonic()
    with open_for_writing(log_path) as log:
        log.write(("$ " + " ".join(cmd) + "\n").encode())
        log.flush()
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=_subprocess_env(python), cwd=str(out), start_new_session=True)
        except OSError as exc:
            raise InputError(f"cannot start VBench with {python}: {exc}", SETUP_FIX) from exc

        def pump() -> None:
            assert proc.stdout is not None
            for chunk in iter(lambda: proc.stdout.read1(65536), b""):
                log.write(chunk)
                if echo:
                    sys.stderr.write(chunk.decode("utf-8", "replace"))
                    sys.stderr.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            rc = None
        except BaseException:
            _kill_tree(proc)
            raise
        reader.join(timeout=30)
    text = log_path.read_text(encoding="utf-8", errors="replace")
    if rc is None:
        raise InputError(f"VBench did not finish within {timeout:.0f} s (stopped). Log tail:\n{_tail(text)}",
                         "allow a longer timeout, or run fewer dimensions or videos")
    if rc != 0:
        raise InputError(f"VBench failed (exit {rc}) after {time.monotonic() - started:.0f} s: {' '.join(cmd)}\n"
                         f"log tail:\n{_tail(text)}",
                         "read the log above: missing detectron2 or CUDA, a weights download (needs network into "
                         "~/.cache/vbench), or a broken environment (`evalsuite vbench setup --force`)")
    new = sorted(set(out.glob("*_eval_results.json")) - before)
    if not new:
        raise InputError(f"VBench exited 0 but wrote no *_eval_results.json into {out}. Log tail:\n{_tail(text)}",
                         "check the VBench version of the environment (evalsuite expects 0.1.5)")
    results = parse_results(new)
    absent = [d for d in dims if d not in results.scores]
    if absent:
        raise InputError(f"VBench's results lack the requested dimension(s) {', '.join(absent)}. Log tail:\n"
                         f"{_tail(text)}", "read the log; rerun")
    return results, cmd


# --------------------------------------------------------------------------- the task
_NUMBER_ENDING = re.compile(r"-(\d+)$")


def _folder_prompts(folder: Path, files: list[Path]) -> list[tuple[str, int | None]]:
    """(prompt, index) per video of a folder: prompts.jsonl where it names the file, else VBench's own naming
    (`{prompt}-{i}.mp4`, or the stem as the prompt, as VBench reads custom input)."""
    from evalsuite.models.folder import read_prompts_jsonl

    table = read_prompts_jsonl(folder / "prompts.jsonl") if (folder / "prompts.jsonl").is_file() else {}
    out = []
    for f in files:
        row = table.get(str(f.relative_to(folder))) or table.get(f.name) or {}
        stem = f.stem
        match = _NUMBER_ENDING.search(stem)
        if row.get("prompt"):
            out.append((str(row["prompt"]), None))
        elif match:
            out.append((stem[:match.start()], int(match.group(1))))
        else:
            out.append((stem, None))
    return out


def _index_videos(items: list[tuple[str, int | None]]) -> list[int]:
    """Each video's index among its prompt's videos: the given one, else the next free one in order."""
    used: dict[str, set[int]] = {}
    for prompt, index in items:
        if index is not None:
            used.setdefault(prompt, set()).add(index)
    out = []
    for prompt, index in items:
        if index is None:
            taken = used.setdefault(prompt, set())
            index = next(i for i in range(len(taken) + 1) if i not in taken)
            taken.add(index)
        out.append(index)
    return out


def _pack_error(exc: BaseException) -> tuple:
    if isinstance(exc, TaskSkipped):
        return ("skip", exc.reason, exc.fix)
    if isinstance(exc, EvalsuiteError):
        return ("error", exc.message, exc.fix)
    return ("error", f"{type(exc).__name__}: {exc}", None)


_METRICS = {
    "total": MetricInfo("higher", "VBench Total score: (4·Quality + Semantic)/5 of normalised dimensions",
                        primary=True),
    "quality": MetricInfo("higher", "VBench Quality score: weighted mean of the 7 normalised quality dimensions "
                                    "(dynamic_degree weight 0.5)"),
    "semantic": MetricInfo("higher", "VBench Semantic score: mean of the 9 normalised semantic dimensions"),
    **{d: MetricInfo("higher", f"VBench {d.replace('_', ' ')} (raw score, not normalised)", per_sample=d)
       for d in DIMENSIONS},
}


@register
class VBenchTask(Task):
    name = "vbench"
    version = "1"
    family = "video"
    sample_kind = "video"
    description = (f"VBench {VBENCH_VERSION} (16 dimensions; Quality, Semantic and Total as VBench aggregates them), "
                   "run in its own environment")
    metrics = _METRICS

    @dataclass(frozen=True)
    class Options:
        python: str | None = field(default=None, metadata={
            "help": "interpreter (or virtualenv folder) of a VBench environment; default "
                    "$EVALSUITE_HOME/vbench-env (`evalsuite vbench setup`)"})

    def requirements(self, options) -> Requirements:
        return Requirements(needs="a VBench environment (`evalsuite vbench setup` or -o vbench.python=PATH) and a GPU")

    def run(self, ctx) -> TaskOutput:
        python = find_python(self.options.python)
        env = check_env(python)
        if not env.get("cuda"):
            raise TaskSkipped(f"the VBench environment {python} has no CUDA device (torch {env.get('torch')}); "
                              f"vbench {VBENCH_VERSION} evaluates on CUDA only", "run on a machine with an NVIDIA GPU")
        source = ctx.video_source() if hasattr(ctx, "video_source") else ctx.source
        standard = prompt_dimensions(env["full_info"]) if env.get("full_info") else None
        files, items, prompts_from = self._videos(ctx, source, standard)
        dist = getattr(ctx, "dist", None)
        if dist is None or not dist.enabled:
            return self._score(ctx, python, env, files, items, prompts_from, standard)
        packed: tuple | None = None  # under torchrun: rank 0 runs VBench once, every rank returns its result
        if dist.is_main:
            try:
                packed = ("ok", self._score(ctx, python, env, files, items, prompts_from, standard))
            except Exception as exc:  # noqa: BLE001 (re-raised on every rank below)
                packed = _pack_error(exc)
        packed = dist.broadcast(packed)
        if packed[0] == "skip":
            raise TaskSkipped(packed[1], packed[2])
        if packed[0] == "error":
            raise InputError(packed[1], packed[2])
        return packed[1]

    # ------------------------------------------------------------------ inputs
    def _videos(self, ctx, source, standard: dict | None) -> tuple[list[Path], list[tuple[str, int]], str]:
        """The videos with their (prompt, index): a folder's (prompts.jsonl or VBench names), or a generator's,
        whose prompt i is prompts[i mod len] (the sample store's fixed assignment)."""
        if source.kind == "folder":
            files = ctx.video_files(source)
            raw = _folder_prompts(Path(source.folder), files)
            return files, list(zip([p for p, _ in raw], _index_videos(raw))), "folder"
        inject = (standard is not None and ctx.options.prompts is None and source.kind == "generator"
                  and source.prompts is None)
        # VBench's own prompt list, for a generator without prompts of its own
        files, prompts = ctx.video_samples(source, prompts=list(standard) if inject else None)
        if inject:
            prompts_from = "vbench-standard (the environment's VBench_full_info.json)"
        else:
            prompts_from = f"--prompts {ctx.options.prompts}" if ctx.options.prompts else "the model's prompts"
        raw = [(p, None) for p in prompts]
        return files, list(zip(prompts, _index_videos(raw))), prompts_from

    # ------------------------------------------------------------------ scoring
    def _score(self, ctx, python: Path, env: dict, files: list[Path], items: list[tuple[str, int]],
               prompts_from: str, standard: dict | None) -> TaskOutput:
        mode = "vbench_standard" if standard and all(p in standard for p, _ in items) else "custom_input"
        skipped, chosen = [], []
        for f, (prompt, index) in zip(files, items):
            if mode == "vbench_standard" and index >= VIDEOS_PER_PROMPT:
                skipped.append({"file": str(f), "reason": f"VBench's standard mode reads {VIDEOS_PER_PROMPT} videos "
                                                          "per prompt (indices 0-4)"})
            else:
                chosen.append((prompt, index, f))
        if not chosen:
            raise InputError("no video to score with VBench", "generate or point at some videos")
        not_run: dict[str, str] = {}
        coverage: dict[str, dict] = {}
        if mode == "vbench_standard":
            have = {p for p, _, _ in chosen}
            wanted = [d for d in DIMENSIONS if any(d in standard[p] for p in have)]
            for d in DIMENSIONS:
                if d not in wanted:
                    not_run[d] = "none of the run's prompts is a VBench prompt of this dimension"
            for d in wanted:
                tagged = [p for p in standard if d in standard[p]]
                found = sum(1 for p, _, _ in chosen if d in standard[p])
                coverage[d] = {"prompts": sum(1 for p in tagged if p in have), "of_prompts": len(tagged),
                               "videos": found, "of_videos": VIDEOS_PER_PROMPT * len(tagged)}
        else:
            wanted = list(CUSTOM_DIMENSIONS)
            for d in DIMENSIONS:
                if d not in wanted:
                    not_run[d] = ("needs VBench's standard prompts (custom_input mode)" if d in CUSTOM_UNSUPPORTED
                                  else "depends on VBench's prompts; not run on custom prompts")
        if not env.get("detectron2"):
            for d in [d for d in wanted if d in DETECTRON2_DIMENSIONS]:
                wanted.remove(d)
                not_run[d] = "detectron2 is not installed in the VBench environment"
        if not wanted:
            raise TaskSkipped("no VBench dimension can be run here: " + "; ".join(f"{d}: {r}" for d, r in
                                                                                   not_run.items()),
                              "install detectron2 into the VBench environment, or use VBench's standard prompts")
        partial = any(c["videos"] < c["of_videos"] for c in coverage.values())

        work_root = Path(ctx.store.root) / "vbench-work"
        work_root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="vbench-", dir=work_root))
        try:
            layout = write_layout(chosen, work / "videos")
            prompt_map = ({e.name: e.prompt for e in layout} if mode == "custom_input" else None)
            try:
                results, cmd = _run_vbench(python, work / "videos", wanted, work / "output", mode, None,
                                           full_info=env.get("full_info") if mode == "vbench_standard" else None,
                                           prompts=prompt_map, ngpus=1, echo=bool(ctx.options.progress))
            except InputError as exc:
                kept = _keep_log(work / "output" / "vbench.log")
                raise InputError(exc.message + (f"\nfull log: {kept}" if kept else ""), exc.fix) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
            try:
                work_root.rmdir()
            except OSError:
                pass
        cmd = [c.replace(str(work.absolute()), "$WORK") for c in cmd]  # the work folder is gone
        return self._output(results, layout, wanted, not_run, coverage, partial, mode, env, prompts_from, skipped,
                            cmd)

    def _output(self, results: VBenchResults, layout: list[LayoutEntry], dims: list[str], not_run: dict,
                coverage: dict, partial: bool, mode: str, env: dict, prompts_from: str, skipped: list,
                cmd: list[str]) -> TaskOutput:
        scores = {d: results.scores[d] for d in DIMENSIONS if d in results.scores}
        agg = aggregate(scores)
        metrics = {k: float(agg[k]) for k in ("total", "quality", "semantic") if agg[k] is not None}
        metrics.update(scores)
        names = [e.name for e in layout]
        order = {n: i for i, n in enumerate(names)}
        per_sample: dict[str, list] = {"name": names, "prompt": [e.prompt for e in layout]}
        per_video_counts = {}
        for d in scores:
            rows = [(order.get(os.path.basename(v["video_path"])), v["value"]) for v in results.videos.get(d, [])]
            per_video_counts[d] = len(rows)
            if not rows or any(i is None or v is None for i, v in rows):
                continue  # per-video values that are not numbers, or videos that are not ours: no list
            rows.sort(key=lambda r: r[0])
            per_sample[d] = [v for _, v in rows]
            if len(rows) != len(names):
                per_sample[f"{d}:name"] = [names[i] for i, _ in rows]
        version = env.get("vbench") or "unknown"
        details = {
            "vbench_version": version, "mode": mode, "dimensions_run": dims, "dimensions_not_run": not_run,
            "missing": {g: m for g, m in agg["missing"].items() if m},
            "normalized": agg["normalized"], "prompts": prompts_from, "videos": len(layout),
            "videos_per_dimension": per_video_counts,
            "environment": {k: env.get(k) for k in ("executable", "python", "torch", "cuda", "detectron2")},
            "command": cmd,
        }
        if "temporal_flickering" in dims:
            details["temporal_flickering_static_filter"] = (
                "not applied: VBench's protocol samples 25 videos per temporal_flickering prompt and keeps static "
                "ones with `vbench static_filter` (RAFT) before scoring; these videos were scored as given")
        if coverage:
            details["coverage"] = coverage
            details["complete_standard_suite"] = not partial
            if partial:
                details["note"] = (f"not every prompt of the dimensions run has {VIDEOS_PER_PROMPT} videos: the "
                                   "scores are not VBench's official numbers (the full suite is 944 prompts x 5 "
                                   "videos, --num-samples 4720 with the standard prompt list)")
        protocol = f"vbench-{version}-{mode}" + ("-partial" if partial else "")
        raw = json.dumps(results.raw, ensure_ascii=False, default=_json_default).encode("utf-8")
        return TaskOutput(metrics=metrics, details=details, per_sample=per_sample, skipped_samples=skipped,
                          num_samples=len(layout), protocol=protocol, artifacts={"eval_results.json": raw})


def _json_default(obj: Any) -> Any:
    return str(obj)


def _keep_log(log: Path) -> str | None:
    """A failed run's log, copied outside the store (which gets nothing from a failed run)."""
    if not log.is_file():
        return None
    fd, name = tempfile.mkstemp(prefix="evalsuite-vbench-", suffix=".log")
    with os.fdopen(fd, "wb") as fh:
        fh.write(log.read_bytes())
    return name
