"""VBench's own environment: setup and check."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evalsuite.cli.common import (
    _print_json,
    friendly,
    out,
    vbench_app,
)


# ------------------------------------------------------------------------------------------------ vbench
@vbench_app.command("setup")
@friendly
def vbench_setup(
    path: Optional[Path] = typer.Option(None, "--path",
                                        help="Where to create it (default $EVALSUITE_HOME/vbench-env)."),
    python: Optional[str] = typer.Option(None, "--python", help="Interpreter for the venv (Python 3.9-3.11; default "
                                                                "the first of python3.11, python3.10, python3.9, "
                                                                "python3 on PATH)."),
    force: bool = typer.Option(False, "--force", help="Recreate an existing environment from nothing."),
    torch: Optional[str] = typer.Option(None, "--torch", help="torch requirement(s) to install, e.g. "
                                                              "'torch==2.14.1 torchvision==0.29.1' (default: the "
                                                              "newest torch torchvision); recorded in the env."),
    torch_index_url: Optional[str] = typer.Option(None, "--torch-index-url", help="Index for a CUDA build of torch."),
) -> None:
    """Create the separate VBench environment (vbench 0.1.5 with its pins), or complete / keep an existing one;
    needs the package registries. Shows each step ([k/n]) and pip's output; a failure names the step and package."""
    from evalsuite.tasks.vbench.environment import setup_command

    setup_command(path=path, python=python, force=force, torch_index_url=torch_index_url, torch_spec=torch,
                  echo=out.print)


@vbench_app.command("check")
@friendly
def vbench_check(python: Optional[str] = typer.Option(None, "--vbench-python")) -> None:
    """Report what the VBench environment has (versions of vbench, torch and VBench's pins, CUDA, detectron2) and,
    per dimension, whether it can run offline: the weight files VBench expects and whether each is present."""
    from evalsuite.tasks.vbench.environment import check_report, find_python

    _print_json(check_report(find_python(python)))
