"""The old home of the `vbench` task, kept as a re-export: the task now lives in the package `evalsuite.tasks.vbench`
(environment, layout, invocation, scoring, task). Stored documentation, result provenance notes and users' scripts
import `evalsuite.tasks.video_vbench` (`from evalsuite.tasks import video_vbench as vb`); every public name of the
old module resolves here to the same object. Patch names where they are looked up (e.g.
`evalsuite.tasks.vbench.invocation.subprocess`), not here.
"""

from __future__ import annotations

from evalsuite.tasks.vbench import (
    CUSTOM_DIMENSIONS,
    CUSTOM_UNSUPPORTED,
    DETECTRON2_DIMENSIONS,
    DIM_WEIGHT,
    DIMENSIONS,
    ENV_MARKER,
    LAYOUT_SUFFIXES,
    LONG_PROMPT_CHARS,
    MODES,
    NAME_MAX_BYTES,
    NORMALIZE,
    QUALITY_LIST,
    QUALITY_WEIGHT,
    SEMANTIC_LIST,
    SEMANTIC_WEIGHT,
    SETUP_FIX,
    SETUP_NOTES,
    VBENCH_PINS,
    VBENCH_VERSION,
    VIDEOS_PER_PROMPT,
    LayoutEntry,
    VBenchResults,
    VBenchTask,
    aggregate,
    check_env,
    default_env_dir,
    find_python,
    layout_name,
    normalize,
    parse_results,
    prompt_dimensions,
    run_vbench,
    setup_command,
    setup_commands,
    setup_env,
    standard_info,
    standard_prompts,
    vbench_command,
    write_layout,
)

__all__ = [
    "CUSTOM_DIMENSIONS", "CUSTOM_UNSUPPORTED", "DETECTRON2_DIMENSIONS", "DIMENSIONS", "DIM_WEIGHT", "ENV_MARKER",
    "LAYOUT_SUFFIXES", "LONG_PROMPT_CHARS", "LayoutEntry", "MODES", "NAME_MAX_BYTES", "NORMALIZE", "QUALITY_LIST",
    "QUALITY_WEIGHT", "SEMANTIC_LIST", "SEMANTIC_WEIGHT", "SETUP_FIX", "SETUP_NOTES", "VBENCH_PINS", "VBENCH_VERSION",
    "VBenchResults", "VBenchTask", "VIDEOS_PER_PROMPT", "aggregate", "check_env", "default_env_dir", "find_python",
    "layout_name", "normalize", "parse_results", "prompt_dimensions", "run_vbench", "setup_command", "setup_commands",
    "setup_env", "standard_info", "standard_prompts", "vbench_command", "write_layout",
]
