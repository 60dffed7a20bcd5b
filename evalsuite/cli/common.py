"""What every command group shares: the Typer apps, the consoles, common options, and `friendly` (a library error
becomes two lines and exit code 2)."""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evalsuite import config
from evalsuite.errors import EvalsuiteError, InputError

app = typer.Typer(help="Evaluate efficient generative models: quality tasks, reports, on-device speed.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
weights_app = typer.Typer(help="The weights store: list, fetch, import and verify weights files.", no_args_is_help=True)
ref_app = typer.Typer(help="Reference statistics: list, build, import and show.", no_args_is_help=True)
runs_app = typer.Typer(help="Stored runs: list and show.", no_args_is_help=True)
leaderboard_app = typer.Typer(help="The static HTML leaderboard.", no_args_is_help=True)
device_app = typer.Typer(help="On-device speed: Core ML builds, timing backends, history.", no_args_is_help=True)
vbench_app = typer.Typer(help="VBench in its own environment.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")
app.add_typer(ref_app, name="ref")
app.add_typer(runs_app, name="runs")
app.add_typer(leaderboard_app, name="leaderboard")
app.add_typer(device_app, name="device")
app.add_typer(vbench_app, name="vbench")

# printed strings may come from result files: never markup
out = Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)

StoreOpt = typer.Option(None, "--store",
                        help="Results and samples store (default: $EVALSUITE_STORE or ./evalsuite-store).")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table.")
OfflineOpt = typer.Option(None, "--offline/--online", help="Forbid downloads (default: EVALSUITE_OFFLINE).")


_debug = {"on": False}


@app.callback()
def _global_options(debug: bool = typer.Option(
        False, "--debug", help="On an error, also print the full traceback, a python: model's own included "
                               "(or set EVALSUITE_DEBUG=1).")) -> None:
    """Evaluate efficient generative models: quality tasks, reports, on-device speed."""
    _debug["on"] = debug


_format_warning = warnings.formatwarning


def _format_store_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                          line: str | None = None) -> str:
    """A store warning (a file skipped or repaired, named in the message) prints as one line, not a source line."""
    from evalsuite.results import StoreWarning

    if issubclass(category, StoreWarning):
        return f"warning: {message}\n"
    return _format_warning(message, category, filename, lineno, line)


warnings.formatwarning = _format_store_warning


def friendly(fn: Callable) -> Callable:
    """Turn library errors into a two-line message (what, and the fix) and exit code 2, no traceback; under --debug
    the traceback (and the one it was raised from, e.g. a user model's) is printed first."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EvalsuiteError as exc:
            if _debug["on"] or os.environ.get("EVALSUITE_DEBUG", "") not in ("", "0"):
                err.print("".join(traceback.format_exception(exc)), markup=False, highlight=False, soft_wrap=True)
            err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, markup=True, soft_wrap=True)
            if exc.fix:
                err.print(f"[bold]fix:[/] {escape(exc.fix)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=1, default=str) + "\n")


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=escape(title), title_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        # cells come from result files and user input: escaped, never read as console markup
        table.add_row(*["" if v is None else escape(f"{v:.6g}" if isinstance(v, float) else str(v)) for v in row])
    out.print(table)


def _store(store: Optional[Path]) -> Path:
    """--store, else the default store; a file there is a clear error."""
    return config.folder(store, "--store", config.STORE_FIX) if store else config.default_store()


def _refuse_options_with_resume(ctx: typer.Context) -> None:
    """`score --resume` reuses the options stored with the run: other options given are refused, never ignored."""
    given = [p.opts[0] for p in ctx.command.params if p.name not in ("model", "store", "as_json", "resume")
             and getattr(ctx.get_parameter_source(p.name), "name", None) == "COMMANDLINE"]
    if given:
        raise InputError(f"--resume finishes a run with the options stored with it; {', '.join(given)} cannot "
                         "be changed", "drop them (only --store and --json go with --resume), or start a new run")
