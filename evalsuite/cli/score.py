"""`evalsuite score` and `evalsuite tasks`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evalsuite.cli.common import (
    JsonOpt,
    OfflineOpt,
    StoreOpt,
    _print_json,
    _refuse_options_with_resume,
    _store,
    _table,
    app,
    friendly,
    out,
)
from evalsuite.errors import InputError


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
    judge: Optional[str] = typer.Option(None, "--judge", help="VLM judge (vlm-judge task): transformers:PATH (a local "
                                        "vision-language model folder) | python:module:factory"),
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
    option: Optional[list[str]] = typer.Option(None, "-o", "--option", help="A task's option: TASK.NAME=VALUE "
                                               "(e.g. geneval.detector=torchvision-maskrcnn), or NAME=VALUE for "
                                               "every task of the run that has it; repeatable. `evalsuite tasks "
                                               "--options` lists them. The task flags above are aliases of these."),
    as_json: bool = JsonOpt,
) -> None:
    """Score MODEL on tasks; prints a results table and where the results were stored."""
    from evalsuite import api, distributed, task_options
    from evalsuite.runner import RunSummary

    if resume is not None:
        _refuse_options_with_resume(ctx)
    elif not model:
        raise InputError("no MODEL was given", "pass a model spec (see `evalsuite score --help`), or --resume RUN_ID "
                         "to finish an interrupted run")
    # the task flags (aliases of -o settings) count only when given: their defaults are the tasks' own
    aliases = {"biased_cov": biased_cov, "pr_neighbourhood": pr_k, "pr_extractor": pr_extractor, "data": data,
               "resolution": resolution, "frames": frames, "dct_block": dct_block,
               "images_per_prompt": images_per_prompt, "detector": detector, "color": color, "vqa": vqa, "dpg": dpg,
               "judge": judge,
               "clip_backbone": clip_backbone, "max_prompts": max_prompts,
               "geneval_missing_as_failure": geneval_missing_as_failure, "frame_stride": frame_stride,
               "frame_start": frame_start, "vbench_frames": vbench_frames, "fvd_max_real": fvd_max_real,
               "vbench_python": vbench_python}
    given = {old: value for old, value in aliases.items() if _given(ctx, _PARAM_OF.get(old, old))}
    settings = task_options.merge(task_options.parse_assignments(option or []), task_options.from_legacy(given))
    with distributed.session() as dist:
        progress = not as_json and dist.is_main
        if resume is None:
            run = api.score(model, [t.strip() for t in tasks.split(",") if t.strip()] if tasks is not None else None,
                            suite=suite, store=_store(store),
                            options={(k if t == task_options.ALL_TASKS else f"{t}.{k}"): v
                                     for t, values in settings.items() for k, v in values.items()},
                            num_samples=num_samples, seed=seed, batch_size=batch_size, device=device,
                            extractor=extractor, ref=ref, prompts=prompts, offline=offline, strict=strict,
                            num_workers=workers, progress=progress, autoencoder=autoencoder, video_model=video_model,
                            video_ref=video_ref, fast=fast, optimize_graph=graph_opt)
        else:
            run = api.resume(resume, _store(store), model=model, progress=progress)
        assert run.store is not None  # the CLI always scores into a store
        summary = RunSummary(run.run_id, run.store, run.results)
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


_PARAM_OF = {"pr_neighbourhood": "pr_k"}  # alias -> the name of its parameter above, where they differ


def _given(ctx: typer.Context, param: str) -> bool:
    """Whether the option `param` was given on the command line (or by the environment), not left at its default."""
    return getattr(ctx.get_parameter_source(param), "name", None) in ("COMMANDLINE", "ENVIRONMENT")


# ------------------------------------------------------------------------------------------------ tasks
@app.command("tasks")
@friendly
def list_tasks(as_json: bool = JsonOpt, offline: Optional[bool] = OfflineOpt,
               options: bool = typer.Option(False, "--options", help="List every task's options (set with "
                                            "`score -o TASK.NAME=VALUE`): type, default, meaning, old flag.")) -> None:
    """Every registered task: what it needs and whether it can run here and now."""
    from evalsuite.catalog import option_rows, task_rows

    if options:
        rows = option_rows()
        if as_json:
            _print_json(rows)
            return
        _table("task options (score -o TASK.NAME=VALUE, or -o NAME=VALUE for every task that has NAME)",
               ["task", "option", "type", "default", "meaning", "alias"],
               [[r["task"], r["option"], r["type"], "-" if r["default"] is None else r["default"], r["help"],
                 ", ".join(r["aliases"]) or "-"] for r in rows])
        return
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


# ------------------------------------------------------------------------------------------------ knobs
@app.command("knobs")
@friendly
def list_knobs(model: str = typer.Argument(..., help="A model spec (demo, python:..., diffusers:PATH)."),
               as_json: bool = JsonOpt) -> None:
    """The knobs of MODEL: what a variant (MODEL?knob=value&..., `evalsuite sweep --grid`) may change."""
    from evalsuite.knobs import describe

    rows = describe(model)
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print(f"{model} declares no knobs", markup=False, highlight=False)
        return
    _table(f"knobs of {model} (select a variant with {model}?knob=value&...)",
           ["knob", "type", "default", "values", "meaning"],
           [[r["knob"], r["type"], "unset" if r["default"] is None else r["default"],
             ", ".join(map(str, r["values"])) if r["values"] else "any", r["help"]] for r in rows])
