"""What the files of a results store hold, and the checks that a file read back can be used.

* Result documents (`runs/<run_id>/<task>.json`, schema `evalsuite.result/1`) and run manifests
  (`runs/<run_id>/run.json`, schema `evalsuite.run/1`) are JSON; JSON has no infinity, so ±inf is stored as the
  strings "inf"/"-inf" (`encode_nonfinite` / `decode_nonfinite`), and arrays and paths as lists and strings
  (`json_default`).
* `document_problem` / `manifest_problem` say why a parsed file cannot be used (wrong types, NaN metrics, nested
  more than `MAX_JSON_DEPTH` levels, naming another run), or None; the store skips such a file with a
  `StoreWarning` naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SCHEMA = "evalsuite.result/1"
RUN_SCHEMA = "evalsuite.run/1"
MAX_JSON_DEPTH = 64  # result documents nested deeper are refused (no RecursionError anywhere downstream)


class StoreWarning(UserWarning):
    """A store file that was skipped (unreadable, malformed) or repaired (a damaged index); names the file."""


# ------------------------------------------------------------------ JSON encoding
_NONFINITE = {"inf": float("inf"), "-inf": float("-inf")}


def encode_nonfinite(obj: Any) -> Any:
    """JSON has no infinity: ±inf floats are stored as the strings "inf"/"-inf" (NaN stays an error).

    >>> encode_nonfinite({"fid": float("inf"), "curve": [1.0, float("-inf")]})
    {'fid': 'inf', 'curve': [1.0, '-inf']}
    """
    if isinstance(obj, float) and obj in (float("inf"), float("-inf")):
        return "inf" if obj > 0 else "-inf"
    if isinstance(obj, dict):
        return {k: encode_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode_nonfinite(v) for v in obj]
    return obj


def decode_nonfinite(obj: Any) -> Any:
    """Inverse of encode_nonfinite, for documents read back.

    >>> decode_nonfinite({"fid": "inf", "curve": [1.0, "-inf"]})
    {'fid': inf, 'curve': [1.0, -inf]}
    """
    if isinstance(obj, str) and obj in _NONFINITE:
        return _NONFINITE[obj]
    if isinstance(obj, dict):
        return {k: decode_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_nonfinite(v) for v in obj]
    return obj


def json_default(obj: Any) -> Any:
    """`json.dumps(default=...)` for documents: arrays (anything with `tolist`) as lists, paths as strings."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a result")


# ------------------------------------------------------------------ checks of files read back
def too_deep(obj: Any, limit: int | None = None) -> bool:
    """Whether parsed JSON nests lists and objects more than `limit` (MAX_JSON_DEPTH) levels deep; iterative, so
    it never hits the recursion limit itself.

    >>> too_deep({"a": [[1]]}, limit=4), too_deep({"a": [[1]]}, limit=3)  # the 1 lies 4 levels deep
    (False, True)
    """
    limit = MAX_JSON_DEPTH if limit is None else limit
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


_OPTIONAL_TYPES: dict[str, tuple] = {
    "created_at": (str,), "family": (str,), "protocol": (str,), "reason": (str,), "fix": (str,),
    "task_version": (str, int, float), "num_samples": (int,), "metric_info": (dict,), "details": (dict,),
    "provenance": (dict,), "per_sample": (dict,), "skipped_samples": (dict,), "artifacts": (list,),
    "sample_count": (dict,)}


def document_problem(doc: Any, path: Path) -> str | None:
    """Why a parsed result document cannot be used (as `ResultsStore.write` would have stored it at `path`), or None.

    >>> doc = {"run_id": "r1", "task": "fid", "status": "ok", "model": {"spec": "demo", "id": None}}
    >>> document_problem({**doc, "metrics": {"fid": 3.5}}, Path("runs/r1/fid.json")) is None
    True
    >>> document_problem({**doc, "metrics": {"fid": float("nan")}}, Path("runs/r1/fid.json"))
    "metric 'fid' is nan, not a number"
    >>> document_problem(doc, Path("runs/r2/fid.json"))
    "it names run 'r1' and task 'fid', but lies at runs/r2/fid.json"
    """
    if not isinstance(doc, dict):
        return f"it holds a JSON {type(doc).__name__}, not a result object"
    if too_deep(doc):
        return f"it is nested more than {MAX_JSON_DEPTH} levels deep"
    for key in ("run_id", "task", "status"):
        if not isinstance(doc.get(key), str):
            return f"'{key}' is missing or not a string"
    if (doc["run_id"], doc["task"]) != (path.parent.name, path.stem):
        return (f"it names run {doc['run_id']!r} and task {doc['task']!r}, but lies at "
                f"runs/{path.parent.name}/{path.name}")
    model = doc.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("spec"), str) \
            or not isinstance(model.get("id"), (str, type(None))):
        return "'model' is not an object with a string 'spec' and 'id'"
    metrics = doc.get("metrics", {})
    if not isinstance(metrics, dict):
        return "'metrics' is not an object"
    for name, value in metrics.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN
        if not number and not (isinstance(value, str) and value in _NONFINITE):
            return f"metric {name!r} is {value!r:.60}, not a number"
    for key, kinds in _OPTIONAL_TYPES.items():
        value = doc.get(key)
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            return f"'{key}' is a {type(value).__name__}, not {' or '.join(k.__name__ for k in kinds)}"
    if any(not isinstance(v, dict) for v in (doc.get("metric_info") or {}).values()):
        return "'metric_info' holds something other than objects"
    if any(not isinstance(v, list) for v in (doc.get("per_sample") or {}).values()):
        return "'per_sample' holds something other than lists"
    return None


def manifest_problem(manifest: Any, run_id: str) -> str | None:
    """Why a parsed run manifest cannot be used, or None.

    >>> manifest_problem({"schema": RUN_SCHEMA, "run_id": "r2"}, "r1")
    "it names run 'r2'"
    """
    if not isinstance(manifest, dict) or manifest.get("schema") != RUN_SCHEMA:
        return f"it is not an {RUN_SCHEMA} object"
    if too_deep(manifest):
        return f"it is nested more than {MAX_JSON_DEPTH} levels deep"
    if manifest.get("run_id") != run_id:
        return f"it names run {manifest.get('run_id')!r}"
    model = manifest.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("spec"), str) \
            or not isinstance(model.get("id"), (str, type(None))):
        return "'model' is not an object with a string 'spec' and 'id'"
    tasks = manifest.get("tasks")
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        return "'tasks' is not a list of task names"
    if not isinstance(manifest.get("options"), dict) or not isinstance(manifest.get("created_at"), str):
        return "'options' or 'created_at' is missing"
    return None
