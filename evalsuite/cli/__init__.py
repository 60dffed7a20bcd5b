"""The `evalsuite` command: parses arguments and calls the library; every command that reports numbers has --json.

One module per command group (`score`, `references`, `reports`, `device`, `sweep`, `pareto`, `vbench`, `judge`);
`common` holds the Typer apps, the consoles and `friendly`. Importing this package registers every command on `app`."""

# ruff: noqa: I001  (the import order is the order `evalsuite --help` lists the commands in)
from __future__ import annotations

from evalsuite.cli.common import app
from evalsuite.cli import score, references, reports, device, sweep, pareto, vbench, judge  # noqa: F401  (register)
from evalsuite.cli import stream  # noqa: F401,E402  (device time-stream, device stream-history)
from evalsuite.cli import adm  # noqa: F401,E402  (export-npz)


def main() -> None:
    app()


__all__ = ["app", "main"]
