"""Results store: one JSON document per (run, task), written atomically and never overwritten, run manifests and
run locks, and a pandas loader for reports and the leaderboard.

Layout: `<store>/runs/<run_id>/<task>.json`, `<store>/runs/<run_id>/run.json` (the run's manifest: model, tasks,
options; `running` until the last task is stored, then `complete`), `<store>/index.sqlite`. The JSON files are the
truth; the SQLite index that lists them is `evalsuite.results_index.ResultsIndex` (reconciled with the files on
every read, rebuilt when damaged), and what a file must hold to be used is checked by `evalsuite.result_schema`. A
result file that cannot be used is skipped with a StoreWarning naming it.
"""

from __future__ import annotations

import json
import secrets
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, overload

from evalsuite.errors import InputError
from evalsuite.filelock import flock, held_by_this_process
from evalsuite.fsutil import atomic_write_bytes, check_name, inside, refuse_symlink
from evalsuite.result_schema import (
    MAX_JSON_DEPTH,
    RUN_SCHEMA,
    SCHEMA,
    StoreWarning,
    decode_nonfinite,
    document_problem,
    encode_nonfinite,
    json_default,
    manifest_problem,
    too_deep,
)
from evalsuite.results_index import ResultsIndex

# the store's names that callers import from here (the formats and checks live in evalsuite.result_schema)
__all__ = ["MAX_JSON_DEPTH", "RUN_LOCK", "RUN_MANIFEST", "RUN_SCHEMA", "SCHEMA", "ResultsStore", "StoreWarning",
           "decode_nonfinite", "encode_nonfinite", "new_run_id", "too_deep"]

RUN_MANIFEST = "run.json"  # runs/<run_id>/run.json: what the run is to score, written at its start
RUN_LOCK = "run.lock"  # flock-ed by the process scoring the run


def new_run_id(model_label: str) -> str:
    """Sortable, unique run id: UTC time, a slug of the model, and random bits."""
    slug = "".join(c if c.isalnum() else "-" for c in model_label.lower()).strip("-")[:32] or "model"
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{slug}-{secrets.token_hex(3)}"


class ResultsStore:
    """The results store at `root`: its documents, run manifests and locks; `index` is its SQLite index."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.index = ResultsIndex(self.root, self._result_files, self.read_document)
        self.index_path = self.index.path

    # ------------------------------------------------------------------ writing
    def write(self, doc: dict) -> Path:
        """Store one result document; refuses to overwrite an existing (run, task)."""
        for key in ("run_id", "task", "status"):
            if key not in doc:
                raise ValueError(f"result document lacks '{key}'")
        doc = {"schema": SCHEMA, **doc}
        path = self.run_path(doc["run_id"], f"{check_name(doc['task'], 'task')}.json")
        data = json.dumps(encode_nonfinite(doc), indent=1, sort_keys=False, default=json_default,
                          allow_nan=False).encode()
        try:
            atomic_write_bytes(path, data, overwrite=False, durable=True)  # results are never overwritten
        except FileExistsError:
            raise InputError(f"result {path} already exists", "results are immutable; start a new run") from None
        self.index.add(doc, path)
        return path

    def write_artifact(self, run_id: str, name: str, data: bytes) -> str:
        """Store a file (a plot) beside a run's results; returns its path relative to the store root."""
        path = self.run_path(run_id, name)
        try:
            atomic_write_bytes(path, data, overwrite=False, durable=True)
        except FileExistsError:
            raise InputError(f"artifact {path} already exists", "results are immutable; start a new run") from None
        return str(path.relative_to(self.root))

    def reindex(self) -> int:
        """Rebuild the index from the JSON documents (after a copy, or if the index was lost); returns the count."""
        return self.index.rebuild() if self.runs_dir.is_dir() else 0

    # ------------------------------------------------------------------ reading
    def _result_files(self, run_dir: Path | None = None) -> list[Path]:
        """Result documents (`<task>.json`) of one run folder, or of every run; not run manifests or temp files."""
        found = run_dir.glob("*.json") if run_dir is not None else self.runs_dir.glob("*/*.json")
        return sorted(p for p in found if p.name != RUN_MANIFEST and not p.name.startswith("."))

    def read_document(self, path: str | Path) -> dict | None:
        """The result document at `path`, checked (a JSON object at most 64 levels deep, naming the run and task
        of its path, with a model and numeric metrics); None, with a StoreWarning naming the file, when it cannot
        be used, so that one damaged file never stops a listing, a leaderboard or a comparison."""
        path = Path(path)
        try:
            inside(self.root, path, "the store")
            doc = json.loads(path.read_bytes())
            problem = document_problem(doc, path)
        except InputError as exc:
            problem = exc.message
        except UnicodeDecodeError:
            problem = "it is not UTF-8 text"
        except json.JSONDecodeError as exc:
            problem = f"it is not valid JSON ({exc})"
        except RecursionError:
            problem = f"it is nested more than {MAX_JSON_DEPTH} levels deep"
        except (OSError, ValueError) as exc:
            problem = f"it cannot be read ({exc})"
        if problem:
            warnings.warn(f"skipped result file {path}: {problem}; fix or remove the file", StoreWarning,
                          stacklevel=2)
            return None
        return decode_nonfinite(doc)

    def rows(self, run_id: str | None = None) -> list[dict]:
        """Index rows (newest first), optionally for one run. The index is first reconciled with the result files,
        and rebuilt if it is damaged, so rows always describe the files as they are now."""
        if not self.runs_dir.is_dir():
            return []
        return self.index.rows(run_id)

    def runs(self) -> list[dict]:
        """One row per run, newest first: id, the run's model (its manifest's; a run from before manifests lists
        the models its results name), start time, tasks with their status, `state` (complete, incomplete,
        running; None without a manifest) and `missing_tasks` (tasks of the manifest without a result)."""
        grouped: dict[str, list[dict]] = {}
        for row in reversed(self.rows()):  # oldest first
            grouped.setdefault(row["run_id"], []).append(row)
        for path in self.runs_dir.glob(f"*/{RUN_MANIFEST}") if self.runs_dir.is_dir() else []:
            grouped.setdefault(path.parent.name, [])  # a run killed before its first result
        out = [self._run_entry(run_id, rows) for run_id, rows in grouped.items()]
        out = [r for r in out if r["tasks"] or r["state"]]  # not a folder with only a damaged manifest (warned)
        return sorted(out, key=lambda r: r["created_at"] or "", reverse=True)

    def run_info(self, run_id: str) -> dict:
        """The `runs()` entry of one run (by its exact id)."""
        return self._run_entry(run_id, list(reversed(self.rows(run_id))))

    def _run_entry(self, run_id: str, rows: list[dict]) -> dict:
        manifest = self.read_manifest(run_id)
        tasks = {r["task"]: r["status"] for r in rows}
        if manifest:
            model, created = manifest["model"]["spec"], manifest["created_at"]
            order = {t: i for i, t in enumerate(manifest["tasks"])}
            tasks = dict(sorted(tasks.items(), key=lambda kv: order.get(kv[0], len(order))))
        else:  # a run from before manifests: its results name the models they scored
            model = ", ".join(dict.fromkeys(str(r["model_spec"]) for r in rows))
            created = rows[0]["created_at"] if rows else None
        return {"run_id": run_id, "model_spec": model, "created_at": created, "tasks": tasks,
                **self.run_state(run_id, manifest, tasks)}

    # ------------------------------------------------------------------ run manifests
    def write_manifest(self, manifest: dict, *, new: bool) -> Path:
        """Write `runs/<run_id>/run.json` atomically: `new` at a run's start (never replacing one), else updated."""
        path = self.run_path(manifest["run_id"], RUN_MANIFEST)
        data = json.dumps({"schema": RUN_SCHEMA, **manifest}, indent=1, default=json_default).encode()
        try:
            return atomic_write_bytes(path, data, overwrite=not new, durable=True)
        except FileExistsError:
            raise InputError(f"run manifest {path} already exists", "start a new run") from None

    @overload
    def read_manifest(self, run_id: str, *, required: Literal[True]) -> dict: ...
    @overload
    def read_manifest(self, run_id: str, *, required: bool = False) -> dict | None: ...

    def read_manifest(self, run_id: str, *, required: bool = False) -> dict | None:
        """A run's manifest (schema evalsuite.run/1: run_id, model {spec, id}, tasks, options, created_at, status),
        or None when it has none; a damaged one is None with a warning, or an InputError when `required`."""
        try:
            path = self.run_path(run_id, RUN_MANIFEST)
            if not path.is_file():
                if required:
                    raise InputError(f"run {run_id} in store {self.root} has no manifest {RUN_MANIFEST} (it was "
                                     "written by an older evalsuite, or is not a run)",
                                     "score the model again in a new run")
                return None
            manifest = json.loads(path.read_bytes())
            problem = manifest_problem(manifest, run_id)
        except InputError:
            if required:
                raise
            return None
        except (OSError, ValueError, RecursionError) as exc:
            problem = f"it cannot be read ({type(exc).__name__}: {exc})"
        if problem:
            message = f"run manifest {path} is damaged: {problem}"
            if required:
                raise InputError(message, "score the model again in a new run")
            warnings.warn(f"{message}; the run is listed without it", StoreWarning, stacklevel=2)
            return None
        return manifest

    def run_state(self, run_id: str, manifest: dict | None, stored: Iterable[str]) -> dict:
        """`state` and `missing_tasks` of a run: running (another process holds its lock), incomplete (tasks of its
        manifest have no result: interrupted, or failed), complete, or None for a run without a manifest."""
        if manifest is None:
            return {"state": None, "missing_tasks": []}
        stored = set(stored)
        missing = [t for t in manifest["tasks"] if t not in stored]
        with flock(self.run_path(run_id, RUN_LOCK), blocking=False, create=False) as free:
            running = free is False
        return {"state": "running" if running else "incomplete" if missing else "complete",
                "missing_tasks": missing}

    def discard_run(self, run_id: str) -> bool:
        """Remove a run that stored no result (its manifest and lock file): a run that fails, e.g. on bad input,
        before its first result leaves nothing behind. Returns whether it was removed."""
        run_dir = self.run_path(run_id)
        if self._result_files(run_dir):
            return False
        for name in (RUN_MANIFEST, RUN_LOCK):
            self.run_path(run_id, name).unlink(missing_ok=True)
        try:
            run_dir.rmdir()
        except OSError:  # something else is in it (an artifact): kept
            pass
        return True

    @contextmanager
    def run_lock(self, run_id: str) -> Iterator[None]:
        """Held while a process scores the run (released by the kernel if it dies); InputError if another holds it."""
        with held_by_this_process(self.run_path(run_id, RUN_LOCK), f"run {run_id} is being scored by another "
                                  "process", "wait for it to finish; `evalsuite runs list` shows the run as running"):
            yield

    def run_path(self, run_id: str, name: str | None = None) -> Path:
        """`runs/<run_id>[/<name>]`: both must be plain names (`fsutil.check_name`), the file no link, and the path
        must lie inside the store once links are resolved; anything else (`../x`, `/abs/dir`, a run folder linked
        elsewhere) is an InputError."""
        path = self.runs_dir / check_name(run_id, "run id")
        if name is not None:
            path = refuse_symlink(path / check_name(name, "result file"))
        return inside(self.root, path, "the store")

    def document_path(self, relative: str) -> Path:
        """The file of an index row's `path` column (`runs/<run>/<task>.json`), checked like `run_path`."""
        parts = Path(relative).parts
        if len(parts) != 3 or parts[0] != "runs" or Path(relative).is_absolute():
            raise InputError(f"the index of store {self.root} names {relative!r}, not a file runs/<run>/<task>.json",
                             "rebuild the index: delete index.sqlite and rerun")
        return self.run_path(parts[1], parts[2])

    def load_run(self, run_id: str) -> list[dict]:
        """Every document of a run, by its id or a unique prefix of it; an unknown id names the store and how to
        list runs. Ids are names, never paths: nothing outside the store's `runs/` folder is read."""
        run_dir = self.run_path(run_id)
        if not run_dir.is_dir():
            matches = [p.name for p in self.runs_dir.glob(f"{run_id}*")] if self.runs_dir.is_dir() else []
            if len(matches) == 1:
                run_dir = self.run_path(matches[0])
            else:
                raise InputError(f"no run '{run_id}' in store {self.root}",
                                 "list runs with `evalsuite runs list --store DIR`")
        files = [self.run_path(run_dir.name, p.name) for p in self._result_files(run_dir)]
        return [doc for p in files if (doc := self.read_document(p)) is not None]  # unusable files: warned

    def table(self, status: str | None = "ok") -> Any:
        """A pandas DataFrame with one row per (run, task, metric): the input of reports and the leaderboard."""
        import pandas as pd

        records = []
        for row in self.rows():
            if status and row["status"] != status:
                continue
            for metric, value in row["metrics"].items():
                records.append({"run_id": row["run_id"], "task": row["task"], "model_spec": row["model_spec"],
                                "model_id": row["model_id"], "created_at": row["created_at"], "metric": metric,
                                "value": value})
        columns = ["run_id", "task", "model_spec", "model_id", "created_at", "metric", "value"]
        return pd.DataFrame.from_records(records, columns=columns)

