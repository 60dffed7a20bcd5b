"""Stored runs, the leaderboard and comparison reports."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from evalsuite.cli.common import (
    JsonOpt,
    StoreOpt,
    _print_json,
    _store,
    _table,
    app,
    err,
    friendly,
    leaderboard_app,
    out,
    runs_app,
)


# ------------------------------------------------------------------------------------------------ runs
@runs_app.command("list")
@friendly
def runs_list(store: Optional[Path] = StoreOpt, as_json: bool = JsonOpt) -> None:
    """Runs in the store, newest first."""
    from evalsuite.results import ResultsStore

    rows = ResultsStore(_store(store)).runs()
    if as_json:
        _print_json(rows)
        return
    _table(f"runs in {_store(store)}", ["run", "model", "created", "state", "tasks"],
           [[r["run_id"], r["model_spec"], r["created_at"], _state(r),
             ", ".join(f"{t}:{s}" for t, s in r["tasks"].items())] for r in rows])
    if any(r["state"] == "incomplete" for r in rows):
        out.print("finish an incomplete run with `evalsuite score --resume RUN_ID`", soft_wrap=True)


def _state(run: dict) -> str:
    """complete | running | incomplete (missing: ...) | '' for a run without a manifest."""
    missing = f" (missing: {', '.join(run['missing_tasks'])})" if run["state"] == "incomplete" else ""
    return f"{run['state'] or ''}{missing}"


@runs_app.command("show")
@friendly
def runs_show(run_id: str, store: Optional[Path] = StoreOpt, as_json: bool = JsonOpt) -> None:
    """Every result of one run, with provenance."""
    from evalsuite.results import ResultsStore

    results = ResultsStore(_store(store))
    docs = results.load_run(run_id)
    if as_json:
        _print_json(docs)
        return
    rows = []
    for d in docs:
        weights = (d.get("provenance") or {}).get("weights_sha256")
        weights = ", ".join(map(str, weights.values()))[:20] if isinstance(weights, dict) else ""
        if d["status"] == "ok":
            from evalsuite.sample_count import note

            status = "ok, not comparable" if note(d) else "ok"  # fewer samples than its protocol's
            rows += [[d["task"], k, v, d.get("num_samples"), status, weights] for k, v in d["metrics"].items()]
        else:
            rows.append([d["task"], None, None, None, d["status"], d.get("reason")])
    run = results.run_info(docs[0]["run_id"] if docs else run_id)
    state = f" · {_state(run)}" if run["state"] else ""
    _table(f"run {run['run_id']} · {run['model_spec']}{state}", ["task", "metric", "value", "n", "status",
                                                                 "weights/reason"], rows)


# ------------------------------------------------------------------------------------------------ leaderboard, compare
@leaderboard_app.command("build")
@friendly
def leaderboard_build(
    store: Optional[Path] = StoreOpt,
    out_dir: Path = typer.Option(Path("leaderboard-site"), "--out", help="Output folder (publish it as it is)."),
    published: Optional[Path] = typer.Option(None, "--published", help="Paper-reported results (YAML); "
                                             "default: the file shipped with evalsuite."),
) -> None:
    """Merge every stored result, the published figures and the on-device history into one static site."""
    from evalsuite.leaderboard.site import build

    index = build(_store(store), out_dir, published)
    out.print(f"leaderboard written to {index}", soft_wrap=True)


@app.command()
@friendly
def compare(
    run_ids: list[str] = typer.Argument(..., help="Two or more run ids (the first is the baseline)."),
    store: Optional[Path] = StoreOpt,
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write an HTML report here."),
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown report."),
    n_boot: int = typer.Option(2000, "--n-boot", min=100, help="Bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    as_json: bool = JsonOpt,
) -> None:
    """Per-task deltas between runs with 95% bootstrap confidence intervals where per-sample results exist."""
    from evalsuite.leaderboard import compare as cmp

    if len(run_ids) < 2:
        raise typer.BadParameter("give at least two run ids", param_hint="RUN_IDS")
    report = cmp.compare(_store(store), run_ids, n_boot=n_boot, seed=seed)
    if out_file:
        path = cmp.write_html(report, out_file)
        err.print(f"report written to {path}", markup=False, highlight=False, soft_wrap=True)
    if as_json:
        _print_json(report.to_json())
    elif markdown:
        sys.stdout.write(cmp.to_markdown(report))
    elif not out_file:
        _table("comparison (delta vs the first run)", ["task", "metric", "run", "value", "delta", "95% CI", ""],
               [[r.task, r.metric, c.run_id, c.value, c.delta, c.ci_text, "*" if c.significant else ""]
                for r in report.rows for c in r.cells])
