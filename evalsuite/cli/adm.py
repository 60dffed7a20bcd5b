"""`evalsuite export-npz RUN`: a run's samples as an ADM sample batch, for guided-diffusion's evaluator.py."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evalsuite.cli.common import JsonOpt, StoreOpt, _print_json, _store, app, friendly, out


@app.command("export-npz")
@friendly
def export_npz(
    run_id: str = typer.Argument(..., help="The run whose samples to export (`evalsuite runs list`)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="The .npz to write (default RUN_ID.npz)."),
    store: Optional[Path] = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Write a run's samples as an ADM sample batch (arr_0 uint8 NHWC images, arr_1 class labels), the file
    guided-diffusion's evaluations/evaluator.py reads."""
    from evalsuite.adm_export import export_run

    written = export_run(_store(store), run_id, output or Path(f"{run_id}.npz"))
    if as_json:
        _print_json(written)
        return
    out.print(f"wrote {written['images']} samples ({written['size'][0]}x{written['size'][1]}"
              f"{', with labels' if written['labels'] else ''}) to {written['path']}; run the official evaluator: "
              f"python evaluator.py VIRTUAL_imagenet256_labeled.npz {written['path']}", soft_wrap=True)
