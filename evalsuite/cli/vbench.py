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
    python: str = typer.Option("python3", "--python", help="Interpreter for the venv (Python <= 3.11)."),
    force: bool = typer.Option(False, "--force", help="Recreate an existing environment."),
    torch_index_url: Optional[str] = typer.Option(None, "--torch-index-url", help="Index for a CUDA build of torch."),
) -> None:
    """Create the separate VBench environment (vbench 0.1.5 with its pins); needs the package registries."""
    from evalsuite.tasks.vbench.environment import setup_command

    setup_command(path=path, python=python, force=force, torch_index_url=torch_index_url, echo=out.print)


@vbench_app.command("check")
@friendly
def vbench_check(python: Optional[str] = typer.Option(None, "--vbench-python")) -> None:
    """Report what the VBench environment has (vbench version, torch, CUDA, detectron2)."""
    from evalsuite.tasks.vbench.environment import check_env, find_python

    _print_json(check_env(find_python(python)))
