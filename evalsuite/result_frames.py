"""Scoring runs as pandas DataFrames: `RunResult` (what `evalsuite.score` returns) and `load_results` (a results
store read back, like `evalsuite runs`), one row per model x task x metric with provenance columns
(`RESULT_COLUMNS`). Both are exported by `evalsuite.api` and `evalsuite`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from evalsuite import sample_count
from evalsuite.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RESULT_COLUMNS", "RunResult", "load_results"]

#: Columns of `RunResult.metrics()` and `load_results()`: one row per model x task x metric, with provenance.
RESULT_COLUMNS = [
    "run_id", "model_spec", "model_id", "task", "task_version", "metric", "value", "direction", "primary",
    "status", "reason", "num_samples", "protocol_samples", "comparable", "skipped_samples", "protocol", "extractor",
    "preprocessing",
    "weights_sha256", "reference", "seed", "evalsuite_version", "git_sha", "device", "wall_time_s", "created_at",
]


def _rows(doc: dict) -> list[dict]:
    """The DataFrame rows of one result document (a skipped task: one row without a metric)."""
    prov = doc.get("provenance") or {}
    hardware = prov.get("hardware") or {}
    model = doc.get("model") or {}
    extractors_used = (prov.get("extractors") or {}).values()
    common = {
        "run_id": doc.get("run_id"), "model_spec": model.get("spec"), "model_id": model.get("id"),
        "task": doc.get("task"), "task_version": doc.get("task_version"), "status": doc.get("status"),
        "reason": doc.get("reason"), "num_samples": doc.get("num_samples"),
        "protocol_samples": (doc.get("sample_count") or {}).get("protocol"),
        "comparable": None if not doc.get("sample_count") else sample_count.comparable(doc),
        "skipped_samples": (doc.get("skipped_samples") or {}).get("count"), "protocol": doc.get("protocol"),
        "extractor": ", ".join(str(k.get("extractor")) for k in extractors_used) or None,
        "preprocessing": ", ".join(str(k.get("preprocessing")) for k in extractors_used) or None,
        "weights_sha256": ", ".join(f"{k}={v}" for k, v in (prov.get("weights_sha256") or {}).items()) or None,
        "reference": ", ".join(str(r.get("id")) for r in prov.get("reference_stats") or []) or None,
        "seed": (prov.get("seeds") or {}).get("sample_seed_start"),
        "evalsuite_version": prov.get("evalsuite_version"), "git_sha": hardware.get("evalsuite_git_sha"),
        "device": hardware.get("device"), "wall_time_s": prov.get("wall_time_s"), "created_at": doc.get("created_at"),
    }
    info = doc.get("metric_info") or {}
    metrics = doc.get("metrics") or {}
    if not metrics:
        return [{**common, "metric": None, "value": None, "direction": None, "primary": None}]
    return [{**common, "metric": name, "value": value, "direction": (info.get(name) or {}).get("direction"),
             "primary": (info.get(name) or {}).get("primary")} for name, value in metrics.items()]


def _frame(docs: Sequence[dict], include_skipped: bool) -> pd.DataFrame:
    import pandas as pd

    rows = [row for doc in docs for row in _rows(doc) if include_skipped or doc.get("status") == "ok"]
    frame = pd.DataFrame.from_records(rows, columns=RESULT_COLUMNS)
    frame["value"] = frame["value"].astype(float)
    return frame


@dataclass
class RunResult:
    """One scoring run: its id, the store it was written to (None: not stored) and its result documents (schema
    `evalsuite.result/1`, as stored)."""

    run_id: str
    store: Path | None
    results: list[dict]

    def metrics(self, include_skipped: bool = True) -> pd.DataFrame:
        """A DataFrame with one row per model x task x metric and provenance columns (`RESULT_COLUMNS`); a task that
        was skipped is one row with `status` "skipped", no metric and the `reason` (dropped by
        `include_skipped=False`).

        >>> from evalsuite.api import RunResult
        >>> doc = {"run_id": "r1", "task": "fid", "status": "ok", "model": {"spec": "demo", "id": "demo@1"},
        ...        "metrics": {"fid": 12.5}, "metric_info": {"fid": {"direction": "lower", "primary": True}}}
        >>> RunResult("r1", None, [doc]).metrics()[["model_spec", "task", "metric", "value", "direction"]]
          model_spec task metric  value direction
        0       demo  fid    fid   12.5     lower
        """
        return _frame(self.results, include_skipped)

    def __getitem__(self, task: str) -> dict:
        """The result document of one task."""
        for doc in self.results:
            if doc.get("task") == task:
                return doc
        raise KeyError(f"run {self.run_id} has no result for task {task!r}; it has "
                       f"{', '.join(d.get('task', '?') for d in self.results)}")


def load_results(store: str | os.PathLike, *, runs: str | Sequence[str] | None = None,
                 include_skipped: bool = True) -> pd.DataFrame:
    """Every result in a results store (or only `runs`, by id or unique prefix) as a DataFrame with one row per
    model x task x metric and the provenance columns of `RunResult.metrics()`, oldest run first. Unusable result
    files are skipped with a StoreWarning naming them, as `evalsuite runs` does.

    >>> import tempfile, torch
    >>> from evalsuite import load_results, score
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.GroupNorm(1, 3), torch.nn.Conv2d(3, 8, 3, stride=4), torch.nn.Tanh(),
    ...                           torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    >>> net.preprocessing = {"resize": "none", "input_dtype": "float255"}
    >>> with tempfile.TemporaryDirectory() as store:
    ...     run = score("demo", tasks=["fid", "kid"], num_samples=6, ref="model:demo", extractor=net,
    ...                 store=store, progress=False)
    ...     df = load_results(store)
    >>> df[["task", "metric", "status"]]
      task   metric status
    0  fid      fid     ok
    1  kid      kid     ok
    2  kid  kid_std     ok
    >>> bool((df["run_id"] == run.run_id).all())
    True
    """
    from evalsuite.results import ResultsStore

    root = Path(store).expanduser()
    if not root.is_dir():
        raise InputError(f"results store {root} does not exist or is not a folder",
                         "pass the folder given as --store (or score(..., store=PATH))")
    results = ResultsStore(root)
    wanted = [runs] if isinstance(runs, str) else list(runs) if runs is not None else None
    run_ids = [r["run_id"] for r in reversed(results.runs())] if wanted is None else wanted  # oldest run first
    docs = []
    for run_id in run_ids:
        stored = results.load_run(run_id)
        manifest = results.read_manifest(stored[0]["run_id"]) if stored else None
        order = {t: i for i, t in enumerate((manifest or {}).get("tasks", []))}
        docs += sorted(stored, key=lambda d: (order.get(d["task"], len(order)), d["task"]))
    return _frame(docs, include_skipped)
