"""`evalsuite sweep`: score and time every variant of a knob grid, then print the quality-latency frontier."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evalsuite.cli.common import (
    JsonOpt,
    StoreOpt,
    _print_json,
    _refuse_options_with_resume,
    _store,
    app,
    err,
    friendly,
    out,
)
from evalsuite.errors import InputError


@app.command("sweep")
@friendly
def sweep(
    ctx: typer.Context,
    model: Optional[str] = typer.Argument(None, help="A model with knobs: demo | python:pkg.module:factory (knob "
                                          "values in a ?query hold for every variant; omit with --resume)"),
    grid: Optional[list[str]] = typer.Option(None, "--grid", help="KNOB=V1,V2,... (repeatable): the variants are "
                                             "every combination, e.g. --grid steps=1,2,4 --grid compression=fp16,int8"),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="Comma-separated quality tasks, e.g. variant-fidelity."),
    ref: Optional[str] = typer.Option(None, "--ref", help="Reference statistics for fid/kid: NAME | FILE.npz | "
                                      "folder:PATH | model:SPEC"),
    num_samples: Optional[int] = typer.Option(None, "--num-samples", min=2, help="Samples scored per variant."),
    seed: int = typer.Option(0, "--seed", help="Sample i uses seed SEED+i (the same for every variant)."),
    extractor: Optional[str] = typer.Option(None, "--extractor", help="Feature extractor of the fid/kid tasks."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    option: Optional[list[str]] = typer.Option(None, "-o", "--option", help="A task's option: TASK.NAME=VALUE "
                                               "(repeatable; `evalsuite tasks --options` lists them)."),
    backend: str = typer.Option("host-torch", "--backend", help="Where each variant is timed end to end: host-torch "
                                "(coreml-mac / iphone records come in through `evalsuite device ingest`)."),
    device: str = typer.Option("cpu", "--device", help="host-torch: cpu or cuda."),
    iterations: int = typer.Option(10, "--iterations", min=1, help="Timed generations per variant."),
    warmup: int = typer.Option(2, "--warmup", min=0),
    release: Optional[str] = typer.Option(None, "--release", help="Release tag recorded (default: git describe)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Finish the interrupted sweep SWEEP_ID: only what "
                                         "is missing, with the settings stored in its manifest."),
    store: Optional[Path] = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Score every variant of MODEL on a knob grid, time each end to end, store both (joined by variant id) and
    print the Pareto frontier of each task's primary metric against latency, per device."""
    from evalsuite import task_options
    from evalsuite.cli.device import _release
    from evalsuite.device import sweep as sweeps
    from evalsuite.knobs import parse_grid

    def say(message: str) -> None:
        if not as_json:
            err.print(message, markup=False, highlight=False, soft_wrap=True)

    if resume is not None:
        _refuse_options_with_resume(ctx)
        result = sweeps.resume_sweep(resume, _store(store), progress=not as_json, on_progress=say)
    else:
        if not model:
            raise InputError("no MODEL was given", "pass a model with knobs (e.g. demo), or --resume SWEEP_ID")
        if not grid:
            raise InputError("no --grid was given", "pass --grid KNOB=V1,V2 (e.g. --grid steps=1,2,4)")
        if not tasks:
            raise InputError("no --tasks were given", "pass comma-separated quality tasks, e.g. --tasks "
                             "variant-fidelity (see `evalsuite tasks`)")
        tag, sha = _release(release)
        parsed = task_options.parse_assignments(option or [])
        options = {(k if t == task_options.ALL_TASKS else f"{t}.{k}"): v for t, values in parsed.items()
                   for k, v in values.items()}
        settings = sweeps.SweepSettings(num_samples=num_samples, seed=seed, ref=ref, extractor=extractor,
                                        batch_size=batch_size, options=options, iterations=iterations, warmup=warmup,
                                        release=tag, git_sha=sha)
        result = sweeps.run_sweep(model, parse_grid(grid), [t.strip() for t in tasks.split(",") if t.strip()],
                                  store=_store(store), backend=backend, device=device, settings=settings,
                                  progress=not as_json, on_progress=say)
    if as_json:
        _print_json(result.to_dict())
        return
    out.print(result.to_markdown(), soft_wrap=True)
    out.print(f"sweep {result.sweep_id}: manifest {result.manifest_path}", soft_wrap=True)
