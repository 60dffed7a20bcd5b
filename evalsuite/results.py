"""Results store: one JSON document per (run, task), written atomically and never overwritten, plus a SQLite
index (WAL) for listing and querying, and a pandas loader for reports and the leaderboard.

Layout: `<store>/runs/<run_id>/<task>.json`, `<store>/index.sqlite`. The JSON files are the truth; the index can
be rebuilt from them (`ResultsStore.reindex`).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from evalsuite.errors import InputError
from evalsuite.fsutil import atomic_write_bytes, check_name, inside, refuse_symlink

SCHEMA = "evalsuite.result/1"
_COLUMNS = ("run_id", "task", "status", "model_spec", "model_id", "created_at", "path", "metrics")


def new_run_id(model_label: str) -> str:
    """Sortable, unique run id: UTC time, a slug of the model, and random bits."""
    slug = "".join(c if c.isalnum() else "-" for c in model_label.lower()).strip("-")[:32] or "model"
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{slug}-{secrets.token_hex(3)}"


class ResultsStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.index_path = self.root / "index.sqlite"

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
        for attempt in range(600):  # switching a new index to WAL fails at once, without the busy wait, while
            try:                     # another process holds a lock on it: retry for up to the same 60 s
                con.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if attempt == 599 or "locked" not in str(exc):
                    con.close()
                    raise
                time.sleep(0.1)
        con.execute("PRAGMA busy_timeout=60000")
        con.execute(
            "CREATE TABLE IF NOT EXISTS results (run_id TEXT, task TEXT, status TEXT, model_spec TEXT, "
            "model_id TEXT, created_at TEXT, path TEXT, metrics TEXT, PRIMARY KEY (run_id, task))")
        return con

    def _index(self, doc: dict, path: Path) -> None:
        row = (doc["run_id"], doc["task"], doc["status"], doc.get("model", {}).get("spec"),
               doc.get("model", {}).get("id"), doc.get("created_at"), str(path.relative_to(self.root)),
               json.dumps(encode_nonfinite(doc.get("metrics", {})), allow_nan=False))
        with closing(self._connect()) as con, con:
            con.execute("INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?)", row)

    def reindex(self) -> int:
        """Rebuild the index from the JSON documents (after a copy, or if the index was lost)."""
        count = 0
        for doc, path in self._iter_files():
            self._index(doc, path)
            count += 1
        return count

    # ------------------------------------------------------------------ reading
    def _iter_files(self) -> Iterator[tuple[dict, Path]]:
        for path in sorted(self.runs_dir.glob("*/*.json")):
            try:
                yield json.loads(path.read_text()), path
            except json.JSONDecodeError:
                continue

    def rows(self, run_id: str | None = None) -> list[dict]:
        """Index rows (newest first), optionally for one run. An index that misses documents (a writer died
        between the file and the index) is rebuilt from the files first."""
        if not self.runs_dir.is_dir():
            return []
        with closing(self._connect()) as con:
            indexed = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        if indexed != sum(1 for _ in self.runs_dir.glob("*/*.json")):
            self.reindex()
        with closing(self._connect()) as con:
            query = "SELECT * FROM results" + (" WHERE run_id = ?" if run_id else "") + " ORDER BY created_at DESC, task"
            cur = con.execute(query, (run_id,) if run_id else ())
            return [dict(zip(_COLUMNS, r), metrics=decode_nonfinite(json.loads(r[7]))) for r in cur.fetchall()]

    def runs(self) -> list[dict]:
        """One row per run: id, model, time, tasks with their status."""
        out: dict[str, dict] = {}
        for row in self.rows():
            run = out.setdefault(row["run_id"], {"run_id": row["run_id"], "model_spec": row["model_spec"],
                                                 "created_at": row["created_at"], "tasks": {}})
            run["tasks"][row["task"]] = row["status"]
        return list(out.values())

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
        files = [self.run_path(run_dir.name, p.name) for p in sorted(run_dir.glob("*.json"))]
        return [decode_nonfinite(json.loads(p.read_text())) for p in files]

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
