"""`evalsuite judge-eval`: correlate a VLM judge's scores with a lab's human labels, per aspect."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evalsuite.cli.common import JsonOpt, _print_json, _table, app, friendly, out


@app.command("judge-eval")
@friendly
def judge_eval(
    labels: Path = typer.Option(..., "--labels", help="CSV with columns file,prompt,aspect,label (optional question)."),
    judge: str = typer.Option(..., "--judge", help="The judge: transformers:PATH (a local VLM folder) | "
                                                   "python:module:factory"),
    device: Optional[str] = typer.Option(None, "--device", help="cpu | cuda (default: cuda where available)."),
    video_frames: int = typer.Option(8, "--video-frames", min=1, help="Frames of each video shown to the judge."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Questions per forward pass."),
    n_boot: int = typer.Option(2000, "--n-boot", min=100, help="Bootstrap resamples for the CIs."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    as_json: bool = JsonOpt,
) -> None:
    """Spearman and Kendall correlations (95% bootstrap CIs) of the judge's scores with human labels, per aspect."""
    from evalsuite.tasks.judge.meta_eval import judge_eval as run

    report = run(labels, judge, device=device, video_frames=video_frames, batch_size=batch_size, n_boot=n_boot,
                 seed=seed, progress=not as_json)
    if as_json:
        _print_json(report.to_json())
        return

    def fmt(value, ci) -> str:
        if value is None:
            return "undefined (constant)"
        return f"{value:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")

    _table(f"judge {report.judge} ({report.fingerprint[:12]}) against {labels}",
           ["aspect", "n", "Spearman ρ [95% CI]", "Kendall τ-b [95% CI]"],
           [[aspect, r["n"], fmt(r["spearman"], r["spearman_ci"]), fmt(r["kendall"], r["kendall_ci"])]
            for aspect, r in report.aspects.items()])
    out.print("pin the judge you choose: its fingerprint is part of every vlm-judge number", markup=False,
              highlight=False)
