"""The `evalsuite` command: parses arguments and calls the library; every command that reports numbers has --json."""

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


# ------------------------------------------------------------------------------------------------ score
@app.command()
@friendly
def score(
    ctx: typer.Context,
    model: Optional[str] = typer.Argument(None, help="demo | folder:PATH | python:pkg.module:factory | "
                                          "diffusers:PATH (omit with --resume)"),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="Comma-separated task names (see `evalsuite tasks`)."),
    suite: Optional[str] = typer.Option(None, "--suite", help="A named suite of tasks (default: the model's)."),
    num_samples: Optional[int] = typer.Option(None, "--num-samples", min=2, help="Samples to score."),
    seed: int = typer.Option(0, "--seed", help="Sample i uses seed SEED+i; also seeds KID's subsets."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda[:N]"),
    store: Optional[Path] = StoreOpt,
    extractor: Optional[str] = typer.Option(None, "--extractor", help="inception[:clean|legacy_tensorflow|"
                                            "legacy_pytorch] | clip | vgg16 | python:module:factory"),
    ref: Optional[str] = typer.Option(None, "--ref", help="Reference: NAME | FILE.npz | folder:PATH | model:SPEC"),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="Prompts file (.txt or .jsonl) for generation."),
    offline: Optional[bool] = OfflineOpt,
    strict: bool = typer.Option(False, "--strict", help="Make skipped (unreadable) samples an error."),
    biased_cov: bool = typer.Option(False, "--biased-cov", help="Covariance divided by N (StyleGAN-V style)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="DataLoader worker processes."),
    pr_k: int = typer.Option(3, "--pr-k", min=1, help="Precision/recall: k of the k-nearest-neighbour balls."),
    pr_extractor: str = typer.Option("vgg16", "--pr-extractor", help="Precision/recall features: vgg16 (the "
                                     "paper's and torch-fidelity's fc2_relu) | inception | clip | python:..."),
    autoencoder: Optional[str] = typer.Option(None, "--autoencoder", help="Autoencoder for the autoencoder tasks "
                                              "when MODEL is a generator: demo-ae | diffusers-ae:PATH | python:..."),
    data: Optional[str] = typer.Option(None, "--data", help="Autoencoder data: skimage (default) | folder:PATH"),
    resolution: int = typer.Option(256, "--resolution", min=8, help="Autoencoder data: square crop size."),
    frames: int = typer.Option(16, "--frames", min=1, help="Autoencoder video data: frames per clip."),
    dct_block: int = typer.Option(8, "--dct-block", min=2, help="Spectral task: DCT block size."),
    images_per_prompt: int = typer.Option(4, "--images-per-prompt", min=1, help="Text-image tasks: images per prompt."),
    detector: str = typer.Option("torchvision-maskrcnn", "--detector", help="GenEval/counting detector: "
                                 "torchvision-maskrcnn | mask2former:CONFIG,CHECKPOINT | python:module:factory"),
    color: str = typer.Option("clip-vit-l-14", "--color", help="GenEval colour classifier."),
    vqa: Optional[str] = typer.Option(None, "--vqa", help="DPG-Bench VQA: mplug | transformers:PATH | python:..."),
    dpg: Optional[str] = typer.Option(None, "--dpg", help="DPG-Bench folder (ELLA's dpg_bench) or its CSV."),
    clip_backbone: str = typer.Option("ViT-B-32", "--clip-backbone", help="CLIPScore backbone: ViT-B-32 | ViT-L-14"),
    max_prompts: Optional[int] = typer.Option(None, "--max-prompts", min=1, help="Text-image tasks: first N prompts."),
    geneval_missing_as_failure: bool = typer.Option(False, "--geneval-missing-as-failure", help="GenEval: count "
                                                    "missing images as failures (the official script skips them)."),
    frame_stride: int = typer.Option(1, "--frame-stride", min=1, help="Video tasks: take every k-th frame."),
    frame_start: int = typer.Option(0, "--frame-start", min=0, help="Video tasks: first frame index."),
    vbench_frames: Optional[int] = typer.Option(None, "--vbench-frames", min=2, help="Native VBench dimensions: "
                                                "sample N frames (--frame-stride/--frame-start) instead of every "
                                                "frame as VBench does; recorded in the protocol name."),
    fvd_max_real: int = typer.Option(2048, "--fvd-max-real", min=2, help="FVD: reference videos used (StyleGAN-V's "
                                     "max_real=2048); another count changes the protocol name."),
    vbench_python: Optional[str] = typer.Option(None, "--vbench-python", help="Interpreter of a VBench environment "
                                                "(default: $EVALSUITE_HOME/vbench-env, see `evalsuite vbench setup`)."),
    video_model: Optional[str] = typer.Option(None, "--video-model", help="Video generator for the video tasks when "
                                              "MODEL makes no videos (the demo suite uses demo-video)."),
    fast: bool = typer.Option(False, "--fast", help="TF32 + autocast feature extraction; the measured deviation "
                              "from exact mode is recorded (off by default: fidelity first)."),
    graph_opt: bool = typer.Option(True, "--graph-opt/--no-graph-opt", help="Fold conv+BatchNorm, channels_last, "
                                   "frozen TorchScript; checked against the network as written on the first batch "
                                   "of each shape (deviation recorded). --no-graph-opt runs the network as written."),
    video_ref: Optional[str] = typer.Option(None, "--video-ref", help="FVD reference when it differs from --ref: "
                                            "folder:PATH (videos) | model:SPEC | FILE.npz | NAME"),
    resume: Optional[str] = typer.Option(None, "--resume", help="Finish the interrupted run RUN_ID (see `runs "
                                         "list`): only its missing tasks, with the options stored with the run."),
    as_json: bool = JsonOpt,
) -> None:
    """Score MODEL on tasks; prints a results table and where the results were stored."""
    from evalsuite import distributed
    from evalsuite.runner import ScoreOptions
    from evalsuite.runner import resume as resume_run
    from evalsuite.runner import score as run_score

    if resume is not None:
        _refuse_options_with_resume(ctx)
    elif not model:
        raise InputError("no MODEL was given", "pass a model spec (see `evalsuite score --help`), or --resume RUN_ID "
                         "to finish an interrupted run")
    with distributed.session() as dist:
        options = ScoreOptions(
            tasks=[t.strip() for t in tasks.split(",") if t.strip()] if tasks is not None else None, suite=suite,
            num_samples=num_samples, seed=seed, batch_size=batch_size, device=device, store=_store(store),
            extractor=extractor, ref=ref, prompts=prompts, offline=offline, strict=strict, biased_cov=biased_cov,
            pr_neighbourhood=pr_k, pr_extractor=pr_extractor, num_workers=workers,
            progress=not as_json and dist.is_main,
            autoencoder=autoencoder, data=data, resolution=resolution,
            frames=frames, dct_block=dct_block, images_per_prompt=images_per_prompt, detector=detector, color=color,
            vqa=vqa, dpg=dpg, clip_backbone=clip_backbone, max_prompts=max_prompts, frame_stride=frame_stride,
            frame_start=frame_start, vbench_frames=vbench_frames, fvd_max_real=fvd_max_real,
            geneval_missing_as_failure=geneval_missing_as_failure, vbench_python=vbench_python,
            video_model=video_model, video_ref=video_ref,
            fast=fast, optimize_graph=graph_opt,
        )
        summary = run_score(model, options) if resume is None else \
            resume_run(resume, options.store, model, progress=options.progress)
    if not dist.is_main:
        return
    if as_json:
        _print_json({"run_id": summary.run_id, "store": str(summary.store), "results": summary.rows()})
        return
    _table(f"run {summary.run_id}", ["task", "model", "metric", "value", "n", "status", "note"],
           [[r["task"], r["model"], r["metric"], r["value"], r["n"], r["status"], r["note"]] for r in summary.rows()])
    for artifact in summary.artifacts():
        out.print(f"plot: {summary.store / artifact}", soft_wrap=True)
    fixes = list(dict.fromkeys(r["fix"] for r in summary.rows() if r.get("fix")))
    for fix in fixes:
        out.print(f"to run the skipped tasks: {fix}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"results stored in {summary.store / 'runs' / summary.run_id}", markup=False, highlight=False,
              soft_wrap=True)


# ------------------------------------------------------------------------------------------------ tasks
@app.command("tasks")
@friendly
def list_tasks(as_json: bool = JsonOpt, offline: Optional[bool] = OfflineOpt) -> None:
    """Every registered task: what it needs and whether it can run here and now."""
    from evalsuite.catalog import task_rows

    rows = task_rows(offline)
    if as_json:
        _print_json(rows)
        return
    _table("tasks", ["task", "family", "samples", "weights", "reference", "runnable now"],
           [[r["task"], r["family"], r["sample_kind"], ", ".join(r["weights"]) or "-",
             "required" if r["reference"] else "-", r["runnable"]] for r in rows])
    if any(r["missing_weights"] for r in rows):
        out.print("missing weights: `evalsuite weights fetch NAME`, or `evalsuite weights import NAME FILE` offline",
                  markup=False, highlight=False)


# ------------------------------------------------------------------------------------------------ weights
@weights_app.command("list")
@friendly
def weights_list(as_json: bool = JsonOpt) -> None:
    """Registered weights files and whether each is in the local store."""
    from evalsuite import weights

    rows = weights.list_weights()
    if as_json:
        _print_json(rows)
        return
    _table(f"weights (store: {config.weights_dir()})", ["name", "file", "present", "licence", "sha256"],
           [[r["name"], r["filename"], r["present"], r["licence"],
             r["sha256"][:16] + "…" if r["sha256"]
             else f"unpublished; pinned {(r['pinned_sha256'] or 'on first use')[:16]}"]
            for r in rows])


@weights_app.command("fetch")
@friendly
def weights_fetch(name: str, offline: Optional[bool] = OfflineOpt) -> None:
    """Download NAME into the store (progress bar) and verify its sha256."""
    from evalsuite import weights

    out.print(f"{name}: {weights.fetch(name, offline=offline)}", markup=False, highlight=False)


@weights_app.command("import")
@friendly
def weights_import(name: str, file: Path) -> None:
    """Copy a local FILE into the store as NAME after checking its sha256 (for machines without internet)."""
    from evalsuite import weights

    out.print(f"{name}: imported to {weights.import_file(name, file)}", markup=False, highlight=False)


@weights_app.command("verify")
@friendly
def weights_verify(as_json: bool = JsonOpt) -> None:
    """Re-hash every stored weights file against the registry; exit 1 if any differs."""
    from evalsuite import weights

    rows = weights.verify()
    if as_json:
        _print_json(rows)
    else:
        _table("weights verification", ["name", "present", "sha256 ok", "file"],
               [[r["name"], r["present"], r["ok"], r["file"]] for r in rows])
    if any(r["ok"] is False for r in rows):
        raise typer.Exit(1)


# ------------------------------------------------------------------------------------------------ reference statistics
@ref_app.command("list")
@friendly
def ref_list(as_json: bool = JsonOpt) -> None:
    """Known reference statistics (shipped and user-built)."""
    from evalsuite import refstats

    rows = refstats.entries()
    if as_json:
        _print_json(rows)
        return
    _table("reference statistics", ["name", "extractor", "preprocessing", "n", "source"],
           [[e["name"], e.get("extractor"), e.get("preprocessing"), e.get("n"), e.get("source")] for e in rows])


@ref_app.command("build")
@friendly
def ref_build(
    name: str,
    from_: Path = typer.Option(..., "--from", help="Folder of reference images."),
    extractor: str = typer.Option("inception", "--extractor"),
    device: str = typer.Option("auto", "--device"),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    workers: Optional[int] = typer.Option(None, "--workers", min=0),
    offline: Optional[bool] = OfflineOpt,
    strict: bool = typer.Option(False, "--strict"),
    frames: int = typer.Option(16, "--frames", min=1, help="Video extractors: frames per clip."),
    frame_stride: int = typer.Option(1, "--frame-stride", min=1),
    frame_start: int = typer.Option(0, "--frame-start", min=0),
    as_json: bool = JsonOpt,
) -> None:
    """Compute statistics (and features) of a folder of images, or of videos with a video extractor (i3d,
    videomae:PATH), and register them as NAME."""
    from evalsuite import refstats
    from evalsuite.runner import resolve_device

    entry = refstats.build(name, from_, extractor, device=resolve_device(device), batch_size=batch_size,
                           num_workers=workers, offline=offline, strict=strict, progress=not as_json,
                           sampling={"num_frames": frames, "stride": frame_stride, "start": frame_start})
    if as_json:
        _print_json(entry)
    else:
        out.print(f"reference '{name}' built from {entry['n']} images -> {config.user_reference_dir() / entry['file']}",
                  highlight=False, soft_wrap=True)


@ref_app.command("import")
@friendly
def ref_import(
    name: str,
    file: Path,
    extractor: str = typer.Option("inception", "--extractor", help="The extractor the statistics were made with."),
    source: str = typer.Option("", "--source", help="Where they come from (dataset, split, resolution)."),
    covariance: str = typer.Option("unbiased", "--covariance", help="unbiased (clean-fid, pytorch-fid) or biased"),
) -> None:
    """Import a clean-fid / pytorch-fid / evalsuite .npz as NAME (no network: the key is taken from the registry)."""
    from evalsuite import refstats
    from evalsuite.catalog import extractor_key

    if covariance not in ("unbiased", "biased"):
        raise typer.BadParameter("use unbiased or biased", param_hint="--covariance")
    entry = refstats.import_npz(name, file, extractor_key(extractor), source, covariance)
    out.print(f"reference '{name}' imported ({entry.get('n') or 'unknown'} samples, {entry['extractor']})",
              markup=False, highlight=False)


@ref_app.command("show")
@friendly
def ref_show(name: str, as_json: bool = JsonOpt) -> None:
    """Metadata and shape of one reference (a name or an .npz path)."""
    from evalsuite import refstats

    ref = refstats.resolve_file_or_name(name)
    info = {"name": ref.name, "id": ref.id, "dim": ref.dim, "n": ref.n, "has_features": ref.feats is not None,
            "path": str(ref.path), **ref.meta}
    if as_json:
        _print_json(info)
        return
    _table(f"reference {ref.name}", ["field", "value"], [[k, v] for k, v in info.items()])


# ------------------------------------------------------------------------------------------------ fd
@app.command("fd")
@friendly
def fd(
    stats_a: str = typer.Argument(..., help="Statistics file (.npz) or reference name."),
    stats_b: str = typer.Argument(..., help="Statistics file (.npz) or reference name."),
    biased_cov: bool = typer.Option(False, "--biased-cov"),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="Compare statistics of different extractors."),
    as_json: bool = JsonOpt,
) -> None:
    """Fréchet distance between two statistics files."""
    from evalsuite import refstats

    result = refstats.distance(stats_a, stats_b, biased_cov=biased_cov, allow_mismatch=allow_mismatch)
    if as_json:
        _print_json(result)
    else:
        out.print(f"Fréchet distance: {result['fd']:.6f}  (d={result['dim']}, {result['covariance']} covariance)")


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
            rows += [[d["task"], k, v, d.get("num_samples"), "ok", weights] for k, v in d["metrics"].items()]
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


# ------------------------------------------------------------------------------------------------ device runner
def _git(*args: str) -> str:
    import subprocess

    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _release(release: Optional[str]) -> tuple[str, str]:
    """--release, else `git describe` of the working directory, else 'unreleased'; and the git sha."""
    return release or _git("describe", "--tags", "--always", "--dirty") or "unreleased", _git("rev-parse", "HEAD")


def _records_table(records: list) -> None:
    _table("timing", ["model", "variant", "backend", "unit", "device", "median ms", "p90 ms", "trimmed ms",
                      "throughput", "release"],
           [[r.model, r.variant, r.backend, r.compute_unit, r.device_model, r.median_ms, r.p90_ms, r.trimmed_mean_ms,
             f"{r.throughput:.4g} {r.throughput_unit}", r.release] for r in records])


@device_app.command("build")
@friendly
def device_build(
    model: str = typer.Argument(..., help="demo | python:package.module:factory"),
    variants: str = typer.Option("fp16,palettize4,palettize6,int8", "--variants"),
    out_dir: Path = typer.Option(Path("coreml-builds"), "--out"),
    as_json: bool = JsonOpt,
) -> None:
    """Convert to Core ML ML programs and compress each variant; one manifest per variant. Exit 1 if any failed."""
    from evalsuite.device import build, models

    results = build.build(models.resolve(model), [v for v in variants.split(",") if v.strip()], out_dir)
    if as_json:
        _print_json([{"variant": r.variant, "package": str(r.package) if r.package else None, "error": r.error,
                      "manifest": r.manifest} for r in results])
    else:
        _table(f"Core ML builds in {out_dir}", ["variant", "size (bytes)", "weight bits", "model hash", "conversion",
                                               "error"],
               [[r.variant, r.manifest.get("size_bytes"), r.manifest.get("weight_bits"),
                 (r.manifest.get("model_hash") or "")[:16], r.manifest.get("conversion"), r.error] for r in results])
    if any(r.error for r in results):
        raise typer.Exit(1)


@device_app.command("time")
@friendly
def device_time(
    model: str = typer.Argument(..., help="demo | python:package.module:factory"),
    backend: str = typer.Option("host-torch", "--backend", help="host-torch | coreml-mac | iphone"),
    package: Optional[Path] = typer.Option(None, "--package", help=".mlpackage for coreml-mac / iphone."),
    variant: Optional[str] = typer.Option(None, "--variant", help="Variant name recorded (default: from the "
                                          "package's manifest, else fp32)."),
    iterations: int = typer.Option(50, "--iterations", min=1),
    warmup: int = typer.Option(5, "--warmup", min=0),
    compute_unit: str = typer.Option("ALL", "--compute-unit", help="ALL | CPU_AND_NE | CPU_AND_GPU | CPU_ONLY | each"),
    device: str = typer.Option("cpu", "--device", help="host-torch: cpu or cuda"),
    release: Optional[str] = typer.Option(None, "--release", help="Release tag (default: git describe)."),
    timeout: float = typer.Option(600.0, "--timeout", help="iphone: seconds to wait for the app's result."),
    store: Optional[Path] = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Time a model with one backend and store the timing records."""
    from evalsuite.device import backends, build, models, records

    tag, sha = _release(release)
    settings = backends.TimingSettings(iterations=iterations, warmup=warmup, compute_unit=compute_unit,
                                       release=tag, git_sha=sha, timeout_s=timeout, device=device)
    chosen = backends.get(backend)
    chosen.check_available()
    target = backends.TimingTarget(model=model, variant=variant or "fp32")
    if package is not None:
        manifest_file = package.with_name(package.name.replace(".mlpackage", ".manifest.json"))
        manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
        target.package, target.model_hash = package, build.package_hash(package)
        target.variant = variant or manifest.get("variant", "fp32")
        target.model = manifest.get("model", model)
    if backend == "host-torch":
        resolved = models.resolve(model)
        target.module, target.example_inputs = resolved.module, resolved.example_inputs
        target.model_hash = target.model_hash or resolved.weights_sha256
    recs = chosen.time(target, settings)
    paths = [records.write(_store(store), r) for r in recs]
    if as_json:
        _print_json([{**r.__dict__, "path": str(p)} for r, p in zip(recs, paths)])
    else:
        _records_table(recs)
        out.print(f"{len(paths)} record(s) stored in {_store(store) / 'device'}", soft_wrap=True)


@device_app.command("time-generation")
@friendly
def device_time_generation(
    model: str = typer.Argument("demo", help="demo | python:package.module:factory (a GenerationPipeline)"),
    steps: int = typer.Option(4, "--steps", min=1),
    iterations: int = typer.Option(10, "--iterations", min=1),
    warmup: int = typer.Option(2, "--warmup", min=0),
    device: str = typer.Option("cpu", "--device"),
    release: Optional[str] = typer.Option(None, "--release"),
    store: Optional[Path] = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """End-to-end generation time on the host: text encoder + steps × denoiser + decoder."""
    from evalsuite.device import backends, models, records
    from evalsuite.device.generation import time_generation

    tag, sha = _release(release)
    rec = time_generation(models.resolve_pipeline(model), steps, backends.TimingSettings(
        iterations=iterations, warmup=warmup, release=tag, git_sha=sha, device=device))
    path = records.write(_store(store), rec)
    if as_json:
        _print_json({**rec.__dict__, "path": str(path)})
    else:
        _records_table([rec])
        parts = ", ".join(f"{k} {v:.3g} ms" for k, v in (rec.components_ms or {}).items())
        out.print(f"{rec.median_ms / 1000:.3f} s per sample at {steps} steps ({parts})", soft_wrap=True)


@device_app.command("ingest")
@friendly
def device_ingest(
    file: Path = typer.Argument(..., help="The benchmark app's result JSON, or an ExecuTorch benchmark JSON."),
    release: Optional[str] = typer.Option(None, "--release"),
    store: Optional[Path] = StoreOpt,
) -> None:
    """Store timing records produced elsewhere (all or nothing)."""
    from evalsuite.device import protocol

    paths = protocol.ingest(file, _store(store), release=release)
    out.print(f"{len(paths)} record(s) ingested into {_store(store) / 'device'}", soft_wrap=True)


@device_app.command("history")
@friendly
def device_history(
    model: str,
    device: Optional[str] = typer.Option(None, "--device", help="Device model code, e.g. iPhone17,2."),
    backend: Optional[str] = typer.Option(None, "--backend"),
    threshold: float = typer.Option(1.15, "--threshold", min=1.0, help="Slower than this × the window median."),
    window: int = typer.Option(5, "--window", min=1, help="Earlier releases whose median is the baseline."),
    consecutive: int = typer.Option(2, "--consecutive", min=1, help="Latest releases that must all be slow."),
    plot_file: Optional[Path] = typer.Option(None, "--out",
                                             help="Plot file (default: <store>/device/<model>-history.png)."),
    fail_on_regression: bool = typer.Option(False, "--fail-on-regression",
                                            help="Exit 1 if the latest release regressed."),
    store: Optional[Path] = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Latency across releases per device/backend/variant; flags regressions and writes a plot."""
    from evalsuite.device import history as hist
    from evalsuite.errors import InputError
    from evalsuite.fsutil import atomic_write_bytes

    series = hist.history(_store(store), model, device=device, backend=backend, threshold=threshold, window=window,
                          consecutive=consecutive)
    if not series:
        raise InputError(f"no timing records for model '{model}' in {_store(store) / 'device'}",
                         "time it with `evalsuite device time` or import records with `evalsuite device ingest`")
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in model)
    path = plot_file or _store(store) / "device" / f"{slug}-history.png"
    atomic_write_bytes(path, hist.plot(series, f"{model}: median latency across releases"))
    regressed = [s for s in series if s.latest_is_regression]
    if as_json:
        _print_json({"plot": str(path), "series": [s.__dict__ | {"label": s.label} for s in series]})
    else:
        for s in series:
            _table(s.label, ["release", "median ms", "measurements", "vs window", "flag"],
                   [[rel, ms, n, "slow" if bad else "", "REGRESSION" if i in s.regression_events else ""]
                    for i, (rel, ms, n, bad) in enumerate(zip(s.releases, s.median_ms, s.measurements, s.violations))])
        out.print(f"plot: {path}", soft_wrap=True)
        for s in regressed:
            err.print(f"regression: {s.label} at {s.releases[-1]}", markup=False, highlight=False)
    if regressed and fail_on_regression:
        raise typer.Exit(1)


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
    from evalsuite.tasks.video_vbench import setup_command

    setup_command(path=path, python=python, force=force, torch_index_url=torch_index_url, echo=out.print)


@vbench_app.command("check")
@friendly
def vbench_check(python: Optional[str] = typer.Option(None, "--vbench-python")) -> None:
    """Report what the VBench environment has (vbench version, torch, CUDA, detectron2)."""
    from evalsuite.runner import ScoreOptions
    from evalsuite.tasks.video_vbench import check_env, find_python

    _print_json(check_env(find_python(ScoreOptions(vbench_python=python))))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
