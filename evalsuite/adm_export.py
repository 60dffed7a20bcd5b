"""A scored run's samples as an ADM sample batch (`evalsuite export-npz RUN`), for guided-diffusion's evaluator.py:
the sample files of the run's ADM tasks, in order, with their class labels, written by `evalsuite.adm_npz`."""

from __future__ import annotations

from pathlib import Path

from evalsuite.errors import InputError


def run_samples(store_root: Path, run_id: str) -> tuple[list[Path], list[int] | None, dict]:
    """The sample files of a run scored with the ADM tasks, with their class labels (None for a folder of samples):
    the class requests its result recorded (seed, count, classes) rebuilt, their files found in the sample store."""
    from evalsuite.models import class_conditional as cc
    from evalsuite.results import ResultsStore
    from evalsuite.samples import SampleStore

    results = ResultsStore(store_root)
    manifest = results.read_manifest(run_id, required=True)
    docs = [d for d in results.load_run(run_id) if str(d.get("task", "")).startswith("adm-") and d["status"] == "ok"]
    info = next((d["details"]["samples"] for d in docs if "samples" in (d.get("details") or {})), None)
    if info is None:
        raise InputError(f"run {run_id} has no successful ADM task result (adm-is, adm-fid, ...) to take its "
                         "samples from", "score the model with --suite imagenet-adm first")
    if "num_classes" in info:
        requests = cc.class_requests(int(info["num_samples"]), int(info["seed"]), int(info["num_classes"]))
        store = SampleStore(store_root / "samples", str(info.get("model_id") or manifest["model"]["id"]))
        files = [store.path_for(r) for r in requests]
        labels: list[int] | None = [cc.label_of(r.prompt) for r in requests]
    else:
        from evalsuite.imageio import list_images

        spec = manifest["model"]["spec"]
        if not str(spec).startswith("folder:"):
            raise InputError(f"run {run_id} scored {spec}, whose samples it did not record",
                             "score it again with --suite imagenet-adm")
        n = (manifest.get("options") or {}).get("num_samples")
        files = list_images(str(spec)[len("folder:"):])
        files, labels = (files[:n] if n else files), None
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise InputError(f"{len(missing)} of the run's {len(files)} samples are not in the store (e.g. {missing[0]})",
                         "score the run again (`evalsuite score --resume RUN_ID` regenerates nothing it has)")
    return files, labels, info


def export_run(store_root: Path, run_id: str, path: Path) -> dict:
    """Write a run's samples as an ADM sample batch (arr_0 uint8 NHWC, arr_1 labels); returns what was written."""
    import numpy as np

    from evalsuite import adm_npz
    from evalsuite.imageio import read_rgb

    files, labels, _ = run_samples(store_root, run_id)
    if not files:
        raise InputError(f"run {run_id} has no samples", "score the model first")
    first = read_rgb(files[0])
    size = (int(first.shape[0]), int(first.shape[1]))
    digest = adm_npz.write_sample_batch(path, (read_rgb(f) for f in files), len(files), size,
                                        None if labels is None else np.asarray(labels, dtype=np.int64))
    return {"path": str(path), "sha256": digest, "images": len(files), "size": list(size),
            "labels": labels is not None, "run_id": run_id}
