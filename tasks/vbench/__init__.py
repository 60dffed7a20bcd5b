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
results land in `OUT/results_<time>_eval_results.json`. Without CUDA (or with `-o vbench.device=cpu`) the same
script's `main()` runs in one process on the CPU, with the same arguments, through `cpu_launch.py`
(`PYTHON .../tasks/vbench/cpu_launch.py --videos_path ...`): its `dist_init` is skipped and its
`torch.device("cuda")` gives the CPU; VBench's own `VBench` class and dimension code do the rest (the class takes the
device, "cuda or cpu"). The device and launcher are recorded in the details.

Weights. VBench loads its checkpoints from its cache folder (`$VBENCH_CACHE_DIR`, default `~/.cache/vbench`),
`clip.load`'s `~/.cache/clip` and torch.hub's folder, and wgets missing ones itself. evalsuite checks first
(`checkpoints.expected_weights`, the paths of vbench 0.1.5's `init_submodules`): a dimension whose files are missing
is not run, its reason naming each file and where it comes from (`-o vbench.download=true` leaves the downloads to
VBench). `evalsuite vbench check` lists them per dimension.

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

The package, one module per seam (each re-exported here, and by the old module `evalsuite.tasks.video_vbench`):

* `environment`: VBench's own environment: `find_python`, `check_env`, `setup_env` / `setup_command` (steps shown,
  failures named, idempotent), `check_report`, the pins;
* `checkpoints`: the weight files VBench expects per dimension, and which are present;
* `cpu_launch.py`: VBench's launch script on the CPU (run in VBench's environment, not imported);
* `layout`: VBench's prompt list and file names, `write_layout`, reading a folder already in VBench's layout;
* `invocation`: `vbench_command`, `run_vbench` (the subprocess, its log, timeout and kill);
* `scoring`: VBench's constants (`DIMENSIONS`, `NORMALIZE`, the weights), `normalize`, `aggregate`,
  `parse_results`;
* `task`: the registered `vbench` task (`VBenchTask`).
"""

from __future__ import annotations

from evalsuite.tasks.vbench.environment import (
    ENV_MARKER,
    SETUP_FIX,
    SETUP_NOTES,
    VBENCH_PINS,
    VBENCH_VERSION,
    check_env,
    check_report,
    default_base_python,
    default_env_dir,
    find_python,
    pip_failure,
    setup_command,
    setup_commands,
    setup_env,
    setup_steps,
)
from evalsuite.tasks.vbench.invocation import CPU_LAUNCH, run_vbench, vbench_command
from evalsuite.tasks.vbench.layout import (
    LAYOUT_SUFFIXES,
    LONG_PROMPT_CHARS,
    NAME_MAX_BYTES,
    VIDEOS_PER_PROMPT,
    LayoutEntry,
    layout_name,
    prompt_dimensions,
    standard_info,
    standard_prompts,
    write_layout,
)
from evalsuite.tasks.vbench.scoring import (
    CUSTOM_DIMENSIONS,
    CUSTOM_UNSUPPORTED,
    DETECTRON2_DIMENSIONS,
    DIM_WEIGHT,
    DIMENSIONS,
    MODES,
    NORMALIZE,
    QUALITY_LIST,
    QUALITY_WEIGHT,
    SEMANTIC_LIST,
    SEMANTIC_WEIGHT,
    VBenchResults,
    aggregate,
    normalize,
    parse_results,
)
from evalsuite.tasks.vbench.task import VBenchTask

__all__ = [
    "CPU_LAUNCH", "CUSTOM_DIMENSIONS", "CUSTOM_UNSUPPORTED", "DETECTRON2_DIMENSIONS", "DIMENSIONS", "DIM_WEIGHT",
    "ENV_MARKER", "LAYOUT_SUFFIXES", "LONG_PROMPT_CHARS", "LayoutEntry", "MODES", "NAME_MAX_BYTES", "NORMALIZE",
    "QUALITY_LIST", "QUALITY_WEIGHT", "SEMANTIC_LIST", "SEMANTIC_WEIGHT", "SETUP_FIX", "SETUP_NOTES", "VBENCH_PINS",
    "VBENCH_VERSION", "VBenchResults", "VBenchTask", "VIDEOS_PER_PROMPT", "aggregate", "check_env", "check_report",
    "default_base_python", "default_env_dir", "find_python", "layout_name", "normalize", "parse_results",
    "pip_failure", "prompt_dimensions", "run_vbench", "setup_command", "setup_commands", "setup_env", "setup_steps",
    "standard_info", "standard_prompts", "vbench_command", "write_layout",
]
