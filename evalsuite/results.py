"""Results store: one JSON document per (run, task), written atomically and never overwritten, plus a SQLite
index (WAL) for listing and querying, and a pandas loader for reports and the leaderboard.

Layout: `<store>/runs/<run_id>/<task>.json`, `<store>/runs/<run_id>/run.json` (the run's manifest: model, tasks,
options; `running` until the last task is stored, then `complete`), `<store>/index.sqlite`. The JSON files are the
truth: every read reconciles the index with them file by file, and a damaged index is moved aside
(`index.sqlite.damaged-*`) and rebuilt from them with a warning. A result file that cannot be used is skipped with a
StoreWarning naming it.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import sqlite3
import time
import warnings
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from evalsuite.errors import InputError
from evalsuite.fsutil import atomic_write_bytes, check_name, inside, refuse_symlink

SCHEMA = "evalsuite.result/1"
RUN_SCHEMA = "evalsuite.run/1"
RUN_MANIFEST = "run.json"  # runs/<run_id>/run.json: what the run is to score, written at its start
RUN_LOCK = "run.lock"  # flock-ed by the process scoring the run
_COLUMNS = ("run_id", "task", "status", "model_spec", "model_id", "created_at", "path", "metrics")
_INDEX_VERSION = 2  # PRAGMA user_version of the index layout; an index of another version is rebuilt
MAX_JSON_DEPTH = 64  # result documents nested deeper are refused (no RecursionError anywhere downstream)
T = TypeVar("T")


class StoreWarning(UserWarning):
    """A store file that was skipped (unreadable, malformed) or repaired (a damaged index); names the file."""


def new_run_id(model_label: str) -> str:
    """Sortable, unique run id: UTC time, a slug of the model, and random bits."""
    slug = "".join(c if c.isalnum() else "-" for c in model_label.lower()).strip("-")[:32] or "model"
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{slug}-{secrets.token_hex(3)}"


class ResultsStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.index_path = self.root / "index.sqlite"
        self._checked = False  # the index passed PRAGMA quick_check once through this object
        self._bad: dict[str, str] = {}  # unusable result files (relative path -> file signature), warned once

    # ------------------------------------------------------------------ writing
    def write(self, doc: dict) -> Path:
        """Store one result document; refuses to overwrite an existing (run, task)."""
        for key in ("run_id", "task", "status"):
            if key not in doc:
                raise ValueError(f"result document lacks '{key}'")
        doc = {"schema": SCHEMA, **doc}
        path = self.run_path(doc["run_id"], f"{check_name(doc['task'], 'task')}.json")
        data = json.dumps(encode_nonfinite(doc), indent=1, sort_keys=False, default=_json_default,
                          allow_nan=False).encode()
        try:
            atomic_write_bytes(path, data, overwrite=False, durable=True)  # results are never overwritten
        except FileExistsError:
            raise InputError(f"result {path} already exists", "results are immutable; start a new run") from None
        self._index(doc, path)
        return path

    def write_artifact(self, run_id: str, name: str, data: bytes) -> str:
        """Store a file (a plot) beside a run's results; returns its path relative to the store root."""
        path = self.run_path(run_id, name)
        try:
            atomic_write_bytes(path, data, overwrite=False, durable=True)
        except FileExistsError:
            raise InputError(f"artifact {path} already exists", "results are immutable; start a new run") from None
        return str(path.relative_to(self.root))

    def _connect(self) -> sqlite3.Connection:
        self.root.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):  # sqlite opens these by name: never through a link
            refuse_symlink(f"{self.index_path}{suffix}")
        con = sqlite3.connect(self.index_path, timeout=60)
        try:
            for attempt in range(600):  # switching a new index to WAL fails at once, without the busy wait, while
                try:                     # another process holds a lock on it: retry for up to the same 60 s
                    con.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError as exc:
                    if attempt == 599 or "locked" not in str(exc):
                        raise
                    time.sleep(0.1)
            con.execute("PRAGMA busy_timeout=60000")
            if con.execute("PRAGMA user_version").fetchone()[0] != _INDEX_VERSION:  # an older layout: rebuilt
                con.execute("DROP TABLE IF EXISTS results")
                con.execute(f"PRAGMA user_version = {_INDEX_VERSION}")
            con.execute(
                "CREATE TABLE IF NOT EXISTS results (run_id TEXT, task TEXT, status TEXT, model_spec TEXT, "
                "model_id TEXT, created_at TEXT, path TEXT, metrics TEXT, file_sig TEXT, PRIMARY KEY (run_id, task))")
        except BaseException:
            con.close()
            raise
        return con

    def _with_index(self, use: Callable[[sqlite3.Connection], T]) -> T:
        """`use(connection)`; a damaged index (random bytes, a bad page: SQLite's DatabaseError, or a failed
        quick_check on this object's first use) is moved aside, rebuilt from the result files with a warning, and
        `use` retried once."""
        for attempt in range(2):
            try:
                with closing(self._connect()) as con:
                    if not self._checked:
                        check = con.execute("PRAGMA quick_check").fetchone()[0]
                        if check != "ok":
                            raise sqlite3.DatabaseError(f"integrity check failed: {check.splitlines()[-1]}")
                        self._checked = True
                    return use(con)
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
                    raise
                if attempt:
                    raise InputError(f"the index {self.index_path} cannot be used even after a rebuild ({exc})",
                                     f"check the disk and permissions of {self.root}; the index is rebuilt from "
                                     "the result files whenever it is missing") from exc
                self._heal(exc)
        raise AssertionError("unreachable")

    def _heal(self, exc: Exception) -> None:
        """Move a damaged index and its WAL aside (once, however many processes notice) and rebuild it."""
        with _flock(self.root / ".index.lock"):
            if self._healthy():  # another process already replaced it
                return
            stamp = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
            aside = self.root / f"index.sqlite.damaged-{stamp}"
            for suffix in ("", "-wal", "-shm", "-journal"):
                try:
                    os.rename(f"{self.index_path}{suffix}", f"{aside}{suffix}")
                except FileNotFoundError:
                    pass
            with closing(self._connect()) as con:
                count = self._reconcile(con)
            self._checked = True
        warnings.warn(f"the results index {self.index_path} was damaged ({exc}); moved aside to {aside.name} and "
                      f"rebuilt from the {count} result files", StoreWarning, stacklevel=4)

    def _healthy(self) -> bool:
        if not self.index_path.exists():
            return True
        try:
            with closing(self._connect()) as con:
                return con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        except sqlite3.DatabaseError:
            return False

    def _index(self, doc: dict, path: Path) -> None:
        """Add one just-written document to the index. The file is already safe: an index that cannot take the
        row is healed, or left for the next read to reconcile, with a warning; a write never fails here."""
        row = _row(doc, str(path.relative_to(self.root)), _file_sig(os.stat(path)))
        try:
            self._with_index(lambda con: _upsert(con, [row]))
        except (InputError, sqlite3.DatabaseError) as exc:
            warnings.warn(f"result {path} is stored, but the index could not take it ({exc}); it is added when "
                          "the store is next read", StoreWarning, stacklevel=3)

    def reindex(self) -> int:
        """Rebuild the index from the JSON documents (after a copy, or if the index was lost); returns the count."""
        def rebuild(con: sqlite3.Connection) -> int:
            with con:
                con.execute("DELETE FROM results")
            return self._reconcile(con)

        return self._with_index(rebuild) if self.runs_dir.is_dir() else 0

    def _reconcile(self, con: sqlite3.Connection) -> int:
        """Make the index match the result files, file by file: rows of files that are gone or changed (size,
        mtime, ctime or inode differ) are dropped, files without an up-to-date row are read, checked and indexed.
        Unusable files are skipped with a warning. Returns the number of indexed documents."""
        indexed = dict(con.execute("SELECT path, file_sig FROM results").fetchall())  # before listing the files
        on_disk = {}
        for path in self._result_files():
            try:
                on_disk[str(path.relative_to(self.root))] = _file_sig(os.stat(path))
            except OSError:
                continue
        stale = [(p, sig) for p, sig in indexed.items() if p not in on_disk or on_disk[p] != sig]
        fresh = [p for p, sig in on_disk.items() if indexed.get(p) != sig and self._bad.get(p) != sig]
        rows = []
        for rel in fresh:
            doc = self.read_document(self.root / rel)
            if doc is None:
                self._bad[rel] = on_disk[rel]
            else:
                rows.append(_row(doc, rel, on_disk[rel]))
        if stale or rows:
            with con:
                con.executemany("DELETE FROM results WHERE path = ? AND file_sig IS ?", stale)
            _upsert(con, rows)
        return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]

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
            problem = _document_problem(doc, path)
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
        """Index rows (newest first), optionally for one run. The index is first reconciled with the result files
        (`_reconcile`), and rebuilt if it is damaged, so rows always describe the files as they are now."""
        if not self.runs_dir.is_dir():
            return []

        def select(con: sqlite3.Connection) -> list[tuple]:
            self._reconcile(con)
            query = f"SELECT {', '.join(_COLUMNS)} FROM results" + (" WHERE run_id = ?" if run_id else "") + \
                " ORDER BY created_at DESC, task"
            return con.execute(query, (run_id,) if run_id else ()).fetchall()

        return [dict(zip(_COLUMNS, r), metrics=decode_nonfinite(json.loads(r[7]))) for r in self._with_index(select)]

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
        data = json.dumps({"schema": RUN_SCHEMA, **manifest}, indent=1, default=_json_default).encode()
        try:
            return atomic_write_bytes(path, data, overwrite=not new, durable=True)
        except FileExistsError:
            raise InputError(f"run manifest {path} already exists", "start a new run") from None

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
            problem = _manifest_problem(manifest, run_id)
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
        with _flock(self.run_path(run_id, RUN_LOCK), blocking=False, create=False) as free:
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
        path = self.run_path(run_id, RUN_LOCK)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _flock(path, blocking=False) as free:
            if not free:
                raise InputError(f"run {run_id} is being scored by another process (it holds {path})",
                                 "wait for it to finish; `evalsuite runs list` shows the run as running")
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


_NONFINITE = {"inf": float("inf"), "-inf": float("-inf")}


def encode_nonfinite(obj: Any) -> Any:
    """JSON has no infinity: ±inf floats are stored as the strings "inf"/"-inf" (NaN stays an error)."""
    if isinstance(obj, float) and obj in (float("inf"), float("-inf")):
        return "inf" if obj > 0 else "-inf"
    if isinstance(obj, dict):
        return {k: encode_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode_nonfinite(v) for v in obj]
    return obj


def decode_nonfinite(obj: Any) -> Any:
    """Inverse of encode_nonfinite, for documents read back."""
    if isinstance(obj, str) and obj in _NONFINITE:
        return _NONFINITE[obj]
    if isinstance(obj, dict):
        return {k: decode_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_nonfinite(v) for v in obj]
    return obj


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a result")


# ------------------------------------------------------------------ index rows, checks, locks
def _file_sig(st: os.stat_result) -> str:
    """What identifies one version of a file: replacing or copying it in changes its ctime or inode."""
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"


def _row(doc: dict, rel: str, sig: str) -> tuple:
    model = doc.get("model") or {}
    return (doc["run_id"], doc["task"], doc["status"], model.get("spec"), model.get("id"), doc.get("created_at"),
            rel, json.dumps(encode_nonfinite(doc.get("metrics", {})), allow_nan=False), sig)


def _upsert(con: sqlite3.Connection, rows: list[tuple]) -> None:
    with con:
        con.executemany(f"INSERT OR REPLACE INTO results VALUES ({','.join('?' * (len(_COLUMNS) + 1))})", rows)


def too_deep(obj: Any, limit: int | None = None) -> bool:
    """Whether parsed JSON nests lists and objects more than `limit` (MAX_JSON_DEPTH) levels deep; iterative, so
    it never hits the recursion limit itself."""
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
    "provenance": (dict,), "per_sample": (dict,), "skipped_samples": (dict,), "artifacts": (list,)}


def _document_problem(doc: Any, path: Path) -> str | None:
    """Why a parsed result document cannot be used (as `write` would have stored it), or None."""
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


def _manifest_problem(manifest: Any, run_id: str) -> str | None:
    """Why a parsed run manifest cannot be used, or None."""
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


@contextmanager
def _flock(path: Path, *, blocking: bool = True, create: bool = True) -> Iterator[bool | None]:
    """An exclusive flock on the lock file `path` (never through a link) for the block; yields True when held,
    False when another process holds it (non-blocking), None when it cannot be opened and `create` is off."""
    flags = (os.O_RDWR | os.O_CREAT if create else os.O_RDONLY) | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError:
        if create:
            raise
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
