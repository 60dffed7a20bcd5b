"""The registered `vbench` task: picks the mode and the dimensions, lays the videos out, runs VBench once (on
rank 0 under torchrun) and turns its results into the task's output.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite.errors import EvalsuiteError, InputError, TaskSkipped
from evalsuite.tasks import register
from evalsuite.tasks.base import MetricInfo, Requirements, Task, TaskOutput
from evalsuite.tasks.vbench.checkpoints import describe_missing, expected_weights, missing_weights
from evalsuite.tasks.vbench.environment import VBENCH_VERSION, check_env, find_python
from evalsuite.tasks.vbench.invocation import _keep_log, _run_vbench
from evalsuite.tasks.vbench.layout import (
    VIDEOS_PER_PROMPT,
    LayoutEntry,
    _folder_prompts,
    _index_videos,
    prompt_dimensions,
    write_layout,
)
from evalsuite.tasks.vbench.scoring import (
    CUSTOM_DIMENSIONS,
    CUSTOM_UNSUPPORTED,
    DETECTRON2_DIMENSIONS,
    DIMENSIONS,
    VBenchResults,
    aggregate,
)


def _pack_error(exc: BaseException) -> tuple:
    if isinstance(exc, TaskSkipped):
        return ("skip", exc.reason, exc.fix)
    if isinstance(exc, EvalsuiteError):
        return ("error", exc.message, exc.fix)
    return ("error", f"{type(exc).__name__}: {exc}", None)


_METRICS = {
    "total": MetricInfo("higher", "VBench Total score: (4·Quality + Semantic)/5 of normalised dimensions",
                        primary=True),
    "quality": MetricInfo("higher", "VBench Quality score: weighted mean of the 7 normalised quality dimensions "
                                    "(dynamic_degree weight 0.5)"),
    "semantic": MetricInfo("higher", "VBench Semantic score: mean of the 9 normalised semantic dimensions"),
    **{d: MetricInfo("higher", f"VBench {d.replace('_', ' ')} (raw score, not normalised)", per_sample=d)
       for d in DIMENSIONS},
}


@register
class VBenchTask(Task):
    name = "vbench"
    version = "1"
    family = "video"
    sample_kind = "video"
    description = (f"VBench {VBENCH_VERSION} (16 dimensions; Quality, Semantic and Total as VBench aggregates them), "
                   "run in its own environment")
    metrics = _METRICS

    @dataclass(frozen=True)
    class Options:
        python: str | None = field(default=None, metadata={
            "help": "interpreter (or virtualenv folder) of a VBench environment; default "
                    "$EVALSUITE_HOME/vbench-env (`evalsuite vbench setup`)"})
        device: str = field(default="auto", metadata={
            "help": "auto (CUDA when the environment has it, else the CPU), cuda (vbench.launch.evaluate under "
                    "torchrun, VBench's own launch), or cpu (that script's main() in one process on the CPU)"})
        download: bool = field(default=False, metadata={
            "help": "let VBench download missing weights itself (wget into its cache folder; needs network); "
                    "by default a dimension whose weights are missing is not run, naming the file"})

    def requirements(self, options) -> Requirements:
        return Requirements(needs="a VBench environment (`evalsuite vbench setup` or -o vbench.python=PATH); a GPU "
                                  "for VBench's own launch (the CPU otherwise)")

    def _device(self, python: Path, env: dict) -> str:
        wanted = self.options.device
        if wanted not in ("auto", "cuda", "cpu"):
            raise InputError(f"vbench.device is '{wanted}'", "use auto, cuda or cpu")
        if wanted == "cuda" and not env.get("cuda"):
            raise TaskSkipped(f"the VBench environment {python} has no CUDA device (torch {env.get('torch')}); "
                              f"vbench {VBENCH_VERSION}'s launch script evaluates on CUDA only",
                              "run on a machine with an NVIDIA GPU, or pass -o vbench.device=cpu")
        if wanted == "auto":
            return "cuda" if env.get("cuda") else "cpu"
        return wanted

    def run(self, ctx) -> TaskOutput:
        python = find_python(self.options.python)
        env = check_env(python)
        env["device"] = self._device(python, env)
        source = ctx.video_source() if hasattr(ctx, "video_source") else ctx.source
        standard = prompt_dimensions(env["full_info"]) if env.get("full_info") else None
        files, items, prompts_from = self._videos(ctx, source, standard)
        dist = getattr(ctx, "dist", None)
        if dist is None or not dist.enabled:
            return self._score(ctx, python, env, files, items, prompts_from, standard)
        packed: tuple | None = None  # under torchrun: rank 0 runs VBench once, every rank returns its result
        if dist.is_main:
            try:
                packed = ("ok", self._score(ctx, python, env, files, items, prompts_from, standard))
            except Exception as exc:  # noqa: BLE001 (re-raised on every rank below)
                packed = _pack_error(exc)
        packed = dist.broadcast(packed)
        if packed[0] == "skip":
            raise TaskSkipped(packed[1], packed[2])
        if packed[0] == "error":
            raise InputError(packed[1], packed[2])
        return packed[1]

    # ------------------------------------------------------------------ inputs
    def _videos(self, ctx, source, standard: dict | None) -> tuple[list[Path], list[tuple[str, int]], str]:
        """The videos with their (prompt, index): a folder's (prompts.jsonl or VBench names), or a generator's,
        whose prompt i is prompts[i mod len] (the sample store's fixed assignment)."""
        if source.kind == "folder":
            files = ctx.video_files(source)
            raw = _folder_prompts(Path(source.folder), files)
            return files, list(zip([p for p, _ in raw], _index_videos(raw))), "folder"
        inject = (standard is not None and ctx.options.prompts is None and source.kind == "generator"
                  and source.prompts is None)
        # VBench's own prompt list, for a generator without prompts of its own
        files, prompts = ctx.video_samples(source, prompts=list(standard) if inject and standard is not None else None)
        if inject:
            prompts_from = "vbench-standard (the environment's VBench_full_info.json)"
        else:
            prompts_from = f"--prompts {ctx.options.prompts}" if ctx.options.prompts else "the model's prompts"
        raw = [(p, None) for p in prompts]
        return files, list(zip(prompts, _index_videos(raw))), prompts_from

    # ------------------------------------------------------------------ scoring
    def _score(self, ctx, python: Path, env: dict, files: list[Path], items: list[tuple[str, int]],
               prompts_from: str, standard: dict | None) -> TaskOutput:
        mode = "vbench_standard" if standard and all(p in standard for p, _ in items) else "custom_input"
        skipped, chosen = [], []
        for f, (prompt, index) in zip(files, items):
            if mode == "vbench_standard" and index >= VIDEOS_PER_PROMPT:
                skipped.append({"file": str(f), "reason": f"VBench's standard mode reads {VIDEOS_PER_PROMPT} videos "
                                                          "per prompt (indices 0-4)"})
            else:
                chosen.append((prompt, index, f))
        if not chosen:
            raise InputError("no video to score with VBench", "generate or point at some videos")
        not_run: dict[str, str] = {}
        coverage: dict[str, dict] = {}
        if mode == "vbench_standard" and standard is not None:  # (the mode needs the standard list)
            have = {p for p, _, _ in chosen}
            wanted = [d for d in DIMENSIONS if any(d in standard[p] for p in have)]
            for d in DIMENSIONS:
                if d not in wanted:
                    not_run[d] = "none of the run's prompts is a VBench prompt of this dimension"
            for d in wanted:
                tagged = [p for p in standard if d in standard[p]]
                found = sum(1 for p, _, _ in chosen if d in standard[p])
                coverage[d] = {"prompts": sum(1 for p in tagged if p in have), "of_prompts": len(tagged),
                               "videos": found, "of_videos": VIDEOS_PER_PROMPT * len(tagged)}
        else:
            wanted = list(CUSTOM_DIMENSIONS)
            for d in DIMENSIONS:
                if d not in wanted:
                    not_run[d] = ("needs VBench's standard prompts (custom_input mode)" if d in CUSTOM_UNSUPPORTED
                                  else "depends on VBench's prompts; not run on custom prompts")
        if not env.get("detectron2"):
            for d in [d for d in wanted if d in DETECTRON2_DIMENSIONS]:
                wanted.remove(d)
                not_run[d] = "detectron2 is not installed in the VBench environment"
        weights_missing: dict[str, list[str]] = {}
        if not self.options.download:  # VBench would wget them, and crash (or score nothing) without network
            for d in list(wanted):
                missing = missing_weights(d, env)
                if missing:
                    wanted.remove(d)
                    weights_missing[d] = [e.path for e in missing]
                    not_run[d] = "weights missing: " + describe_missing(missing)
        if not wanted:
            raise TaskSkipped("no VBench dimension can be run here: " + "; ".join(f"{d}: {r}" for d, r in
                                                                                   not_run.items()),
                              "put the weights where VBench expects them (`evalsuite vbench check` lists them) or "
                              "pass -o vbench.download=true on a machine with network; install detectron2 into the "
                              "VBench environment; or use VBench's standard prompts")
        env["weights_missing"] = weights_missing
        partial = any(c["videos"] < c["of_videos"] for c in coverage.values())

        work_root = Path(ctx.store.root) / "vbench-work"
        work_root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="vbench-", dir=work_root))
        try:
            layout = write_layout(chosen, work / "videos")
            prompt_map = ({e.name: e.prompt for e in layout} if mode == "custom_input" else None)
            try:
                results, cmd = _run_vbench(python, work / "videos", wanted, work / "output", mode, None,
                                           full_info=env.get("full_info") if mode == "vbench_standard" else None,
                                           prompts=prompt_map, ngpus=1, echo=bool(ctx.options.progress),
                                           device=env["device"])
            except InputError as exc:
                kept = _keep_log(work / "output" / "vbench.log")
                raise InputError(exc.message + (f"\nfull log: {kept}" if kept else ""), exc.fix) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
            try:
                work_root.rmdir()
            except OSError:
                pass
        cmd = [c.replace(str(work.absolute()), "$WORK") for c in cmd]  # the work folder is gone
        return self._output(results, layout, wanted, not_run, coverage, partial, mode, env, prompts_from, skipped,
                            cmd)

    def _output(self, results: VBenchResults, layout: list[LayoutEntry], dims: list[str], not_run: dict,
                coverage: dict, partial: bool, mode: str, env: dict, prompts_from: str, skipped: list,
                cmd: list[str]) -> TaskOutput:
        scores = {d: results.scores[d] for d in DIMENSIONS if d in results.scores}
        agg = aggregate(scores)
        metrics = {k: float(agg[k]) for k in ("total", "quality", "semantic") if agg[k] is not None}
        metrics.update(scores)
        names = [e.name for e in layout]
        order = {n: i for i, n in enumerate(names)}
        per_sample: dict[str, list] = {"name": names, "prompt": [e.prompt for e in layout]}
        per_video_counts = {}
        for d in scores:
            rows = [(order.get(os.path.basename(v["video_path"])), v["value"]) for v in results.videos.get(d, [])]
            per_video_counts[d] = len(rows)
            ours = [(i, v) for i, v in rows if i is not None and v is not None]
            if not rows or len(ours) != len(rows):
                continue  # per-video values that are not numbers, or videos that are not ours: no list
            ours.sort(key=lambda r: r[0])
            per_sample[d] = [v for _, v in ours]
            if len(ours) != len(names):
                per_sample[f"{d}:name"] = [names[i] for i, _ in ours]
        version = env.get("vbench") or "unknown"
        details = {
            "vbench_version": version, "mode": mode, "dimensions_run": dims, "dimensions_not_run": not_run,
            "missing": {g: m for g, m in agg["missing"].items() if m},
            "normalized": agg["normalized"], "prompts": prompts_from, "videos": len(layout),
            "videos_per_dimension": per_video_counts,
            "environment": {k: env.get(k) for k in ("executable", "python", "torch", "cuda", "detectron2",
                                                    "cache_dir", "packages")},
            "device": env.get("device"),
            "launcher": ("vbench.launch.evaluate under torchrun (VBench's own launch)" if env.get("device") == "cuda"
                         else "vbench.launch.evaluate's main() on the CPU in one process (evalsuite's cpu_launch.py: "
                              "dist_init skipped, torch.device('cuda') -> cpu; VBench's own VBench class and "
                              "dimensions)"),
            "weights": {d: [_file_record(e.path) for e in expected_weights(d, env)] for d in dims},
            "weights_missing": env.get("weights_missing") or {},
            "command": cmd,
        }
        if "temporal_flickering" in dims:
            details["temporal_flickering_static_filter"] = (
                "not applied: VBench's protocol samples 25 videos per temporal_flickering prompt and keeps static "
                "ones with `vbench static_filter` (RAFT) before scoring; these videos were scored as given")
        if coverage:
            details["coverage"] = coverage
            details["complete_standard_suite"] = not partial
            if partial:
                details["note"] = (f"not every prompt of the dimensions run has {VIDEOS_PER_PROMPT} videos: the "
                                   "scores are not VBench's official numbers (the full suite is 944 prompts x 5 "
                                   "videos, --num-samples 4720 with the standard prompt list)")
        protocol = f"vbench-{version}-{mode}" + ("-partial" if partial else "")
        raw = json.dumps(results.raw, ensure_ascii=False, default=_json_default).encode("utf-8")
        return TaskOutput(metrics=metrics, details=details, per_sample=per_sample, skipped_samples=skipped,
                          num_samples=len(layout), protocol=protocol, artifacts={"eval_results.json": raw})


def _file_record(path: str) -> dict[str, Any]:
    """A weights file VBench loaded: its path, size and sha256 (remembered across runs), as provenance records the
    weights actually used; None for a folder or a file that is not there."""
    from evalsuite.hashing import sha256_file_remembered

    p = Path(path)
    present = p.is_file()
    return {"path": path, "bytes": p.stat().st_size if present else None,
            "sha256": sha256_file_remembered(p) if present else None}


def _json_default(obj: Any) -> Any:
    return str(obj)
